'use strict';
// Task objects and their listeners are released when JS drops them: many tasks in a loop,
// then global.gc() (in a child started with --expose-gc) — the binding's live task and
// listener counts go back to zero and RSS stays flat from round to round.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('child_process');
const path = require('path');
const { tmpdir, startServer, writeFile } = require('../support/helpers');

test('memory is stable across rounds of created-and-dropped tasks', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  writeFile(path.join(srv.root, 'small.bin'), 8192, 5);
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, '..', 'support', 'memory-child.js')], {
    encoding: 'utf8',
    timeout: 240000,
    env: { ...process.env, OHREQ_MEM_ROUNDS: '24', OHREQ_MEM_PER_ROUND: '300', OHREQ_MEM_URL: srv.url(''), OHREQ_MEM_CACHE: tmpdir('ohreq-napi-mem-'), OHREQ_DATA_DIR: tmpdir('ohreq-napi-memdata-') },
  });
  const rounds = out.trim().split('\n').map((l) => JSON.parse(l));
  const mb = (x) => (x / 1048576).toFixed(1);
  for (const r of rounds) t.diagnostic(`round ${r.round}: rss ${mb(r.rss)} MB heap ${mb(r.heapUsed)} MB tasks ${r.tasks} listeners ${r.listeners}`);
  for (const r of rounds) {
    assert.equal(r.tasks, 0, `round ${r.round}: live task wrappers`);
    assert.equal(r.listeners, 0, `round ${r.round}: live listeners`);
    assert.equal(r.rooted, 0);
    assert.equal(r.active, 0);
  }
  // The binding's own objects are gone (above) and the JS heap must stay flat. RSS moves in
  // malloc-arena steps and carries the service's task records: the library keeps every task
  // it ever created in its in-memory registry (src/service Registry.tasks, never evicted),
  // a few KiB each. So RSS is bounded per task after warm-up, not required to be constant.
  const from = rounds[4];
  const last = rounds[rounds.length - 1];
  const tasks = (last.round - from.round) * 300;
  assert.ok(last.heapUsed - rounds[1].heapUsed < 1048576, `JS heap grew ${mb(last.heapUsed - rounds[1].heapUsed)} MB`);
  const perTask = (last.rss - from.rss) / tasks;
  t.diagnostic(`rss growth after warm-up: ${mb(last.rss - from.rss)} MB over ${tasks} tasks = ${(perTask / 1024).toFixed(2)} KiB/task`);
  assert.ok(perTask < 16 * 1024, `rss grows ${(perTask / 1024).toFixed(1)} KiB per task`);
});
