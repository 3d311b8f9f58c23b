'use strict';
// Runs EACH JavaScript example of the seed document as written. Adaptations: the URLs
// ('https://patch', 'https://xxxx/...') point at testserver over HTTPS, and the default
// context trusts testserver's CA and owns the cache dir where the examples' files live
// (internal://cache/test.jpg). The examples that end in a stray `});` were cut from inside
// a callback; they are run inside one (`__run(() => {` + example). Each example's
// console.info / console.error output is captured and checked.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const request = require('..');
const examples = require('../support/seed-examples');
const { tmpdir, startServer, writeFile, withTimeout, outcome, sleep } = require('../support/helpers');

let srv;
let cache;
let ctx;
const cleanup = [];

test.before(async () => {
  srv = await startServer();
  writeFile(path.join(srv.root, 'app.hap'), 300000, 11);
  writeFile(path.join(srv.root, 'big.bin'), 4 * 1024 * 1024, 12);
  cache = tmpdir('ohreq-napi-seed-');
  // 4 MiB, so that an upload outlives the start-before-subscribe window of ohreq_upload.
  writeFile(path.join(cache, 'test.jpg'), 4194304, 13);
  ctx = request.createContext({ bundleName: 'com.example.seed', uid: 20020000, cacheDir: cache, caFile: srv.caFile });
  request.setDefaultContext(ctx);
});
test.after(async () => {
  for (const t of cleanup) await t.remove();
  if (srv) srv.stop();
});

function adapt(code) {
  return code
    .replace(/'https:\/\/patch'/g, `'${srv.surl('/upload/multipart')}'`)
    .replace(/'https:\/\/xxxx\/xxxx\.hap'/g, `'${srv.surl('/files/app.hap')}'`)
    .replace(/'https:\/\/xxxx\/xxxxx\.hap'/g, `'${srv.surl('/files/app.hap')}'`);
}

// Runs example `i` with `vars` in scope; returns {logs, errors, result}. `result` is the
// value of `resultVar` (declared by the example) after it ran, through a getter.
function run(i, vars = {}, resultVar) {
  const ex = examples[i];
  const logs = [];
  const errors = [];
  const cons = {
    info: (...a) => logs.push(a.join(' ')),
    log: (...a) => logs.push(a.join(' ')),
    error: (...a) => errors.push(a.join(' ')),
  };
  let code = adapt(ex.code);
  if (/\}\);\s*$/.test(code) && /^\s*\);\s*\n\s*\}\);\s*$/m.test(code)) code = `__run(() => {\n${code}`;
  const names = ['request', 'console', '__run', ...Object.keys(vars)];
  const values = [request, cons, (f) => f(), ...Object.values(vars)];
  const tail = resultVar ? `\n;return () => ${resultVar};` : '';
  const getter = new Function(...names, code + tail)(...values);
  return { logs, errors, get result() { return getter && getter(); } };
}

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms: ${what}`);
    await sleep(10);
  }
}

// The example's task was handed over after the loop turned (the harness polls for it), so
// its events are past (they are not replayed): read the outcome from query().
async function succeeded(task) {
  let status;
  const deadline = Date.now() + 15000;
  async function poll() { while (status !== 0 && status !== 4 && Date.now() < deadline) { status = (await task.query()).status; await sleep(20); } }
  poll();
  await until(() => status === 0 || status === 4, 15000, 'task end');
  assert.equal(status, request.SESSION_SUCCESSFUL);
}

let nfile = 0;
async function download(rate, urlPath = '/files/big.bin') {
  const t = await request.downloadFile(ctx, { url: srv.surl(`${urlPath}${rate ? `?rate=${rate}` : ''}`), filePath: `seed-${++nfile}.bin` });
  cleanup.push(t);
  return t;
}
async function upload() {
  const t = await request.uploadFile(ctx, { url: srv.surl('/upload/multipart'), header: {}, method: 'POST', files: [{ filename: 'test', name: 'test', uri: 'internal://cache/test.jpg', type: 'jpg' }], data: [] });
  cleanup.push(t);
  return t;
}

test('the fixture holds every js example of the seed, verbatim', () => {
  assert.equal(examples.length, 27);
  const seed = '/work/shared/seeds/legacy-upload-download.md';
  if (fs.existsSync(seed)) {
    const md = fs.readFileSync(seed, 'utf8');
    for (const ex of examples) assert.ok(md.includes(ex.code), ex.section);
  }
});

test('#0 import request from \'@ohos.request\'', () => {
  const dir = tmpdir('ohreq-napi-esm-');
  const file = path.join(dir, 'app.mjs');
  fs.writeFileSync(file, `${examples[0].code}\nconsole.log(typeof request.download, request.SESSION_FAILED);\n`);
  const out = execFileSync(process.execPath, ['--import', path.join(__dirname, '..', 'support', 'ohos-request.mjs'), file],
    { encoding: 'utf8', timeout: 15000 });
  assert.equal(out.trim(), 'function 4');
});

test('#1 request.upload (promise)', async () => {
  const r = run(1, {}, 'uploadTask');
  await until(() => r.result !== undefined || r.errors.length, 10000, 'uploadTask');
  assert.deepEqual(r.errors, []);
  assert.ok(r.result instanceof request.UploadTask);
  cleanup.push(r.result);
  await succeeded(r.result);
});

test('#2 request.upload (callback)', async () => {
  const r = run(2, {}, 'uploadTask');
  await until(() => r.result !== undefined || r.errors.length, 10000, 'uploadTask');
  assert.deepEqual(r.errors, []);
  assert.ok(r.result instanceof request.UploadTask);
  cleanup.push(r.result);
  await succeeded(r.result);
});

test('#3 uploadTask.on(\'progress\')', async () => {
  const uploadTask = await upload();
  const r = run(3, { uploadTask });
  await until(() => r.logs.some((l) => l.startsWith('upload totalSize:4194304  uploadedSize:4194304')), 10000, 'progress log');
  assert.deepEqual(r.errors, []);
});

test('#4 uploadTask.on(\'headerReceive\')', async () => {
  const uploadTask = await upload();
  const r = run(4, { uploadTask });
  try {
    await until(() => r.logs.some((l) => l.startsWith('upOnHeader headers:{"headers":{')), 10000, 'headerReceive log');
  } catch (e) {
    e.message += ` (task: ${JSON.stringify(await uploadTask.query())}, logs: ${JSON.stringify(r.logs)})`;
    throw e;
  }
  assert.deepEqual(r.errors, []);
});

test('#5 #6 uploadTask.off(\'progress\' | \'headerReceive\')', async () => {
  const uploadTask = await upload();
  const a = run(5, { uploadTask });
  const b = run(6, { uploadTask });
  await outcome(uploadTask);
  assert.deepEqual([...a.logs, ...a.errors, ...b.logs, ...b.errors], []);
});

test('#7 #8 uploadTask.remove (promise, callback)', async () => {
  for (const i of [7, 8]) {
    const uploadTask = await upload();
    const r = run(i, { uploadTask });
    await until(() => r.logs.length || r.errors.length, 10000, 'remove result');
    assert.deepEqual(r.errors, []);
    assert.match(r.logs[0], /^Upload task removed successfully\./);
  }
});

test('#9 request.download (promise)', async () => {
  const r = run(9, {}, 'downloadTask');
  await until(() => r.result !== undefined || r.errors.length, 10000, 'downloadTask');
  assert.deepEqual(r.errors, []);
  assert.ok(r.result instanceof request.DownloadTask);
  cleanup.push(r.result);
  await succeeded(r.result);
  assert.equal(fs.statSync(path.join(cache, 'app.hap')).size, 300000);
});

test('#10 request.download (callback, filePath xxx/xxxxx.hap)', async () => {
  const r = run(10, {}, 'downloadTask');
  await until(() => r.result !== undefined || r.errors.length, 10000, 'downloadTask');
  assert.deepEqual(r.errors, []);
  cleanup.push(r.result);
  await succeeded(r.result);
  assert.equal(fs.statSync(path.join(cache, 'xxx', 'xxxxx.hap')).size, 300000);
});

test('#11 #12 downloadTask.on/off(\'progress\')', async () => {
  const downloadTask = await download(2000000);
  const r = run(11, { downloadTask });
  await until(() => r.logs.some((l) => /^download receivedSize:\d+ totalSize:4194304$/.test(l)), 10000, 'progress log');
  const off = run(12, { downloadTask });
  assert.deepEqual([...r.errors, ...off.errors, ...off.logs], []);
});

test('#13 #14 downloadTask.on/off(\'complete\')', async () => {
  const downloadTask = await download(0, '/files/app.hap');
  const r = run(13, { downloadTask });
  await until(() => r.logs.includes('Download task completed.'), 10000, 'complete log');
  const off = run(14, { downloadTask });
  assert.deepEqual([...r.errors, ...off.errors, ...off.logs], []);
});

test('#15 #16 downloadTask.on/off(\'fail\')', async () => {
  const downloadTask = await download(0, '/files/missing.hap');
  const r = run(15, { downloadTask });
  await until(() => r.logs.length, 10000, 'fail log');
  assert.deepEqual(r.logs, [`Download task failed. Cause:${request.ERROR_UNHANDLED_HTTP_CODE}`]);
  const off = run(16, { downloadTask });
  assert.deepEqual([...r.errors, ...off.errors, ...off.logs], []);
});

test('#17 #18 downloadTask.remove (promise, callback)', async () => {
  for (const i of [17, 18]) {
    const downloadTask = await download(200000);
    const r = run(i, { downloadTask });
    await until(() => r.logs.length || r.errors.length, 10000, 'remove result');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.logs, ['Download task removed.']);
  }
});

test('#19 #20 downloadTask.query (promise, callback)', async () => {
  const downloadTask = await download(0, '/files/app.hap');
  await outcome(downloadTask);
  const a = run(19, { downloadTask });
  const b = run(20, { downloadTask });
  await until(() => a.logs.length && b.logs.length, 10000, 'query logs');
  assert.deepEqual([...a.errors, ...b.errors], []);
  const info = JSON.parse(a.logs[0].slice('Download task queried. Data:'.length));
  assert.equal(info.status, request.SESSION_SUCCESSFUL);
  assert.equal(info.downloadedBytes, 300000);
  assert.ok(b.logs[0].startsWith('download query success. data:{"downloadId":'));
});

test('#21 #22 downloadTask.queryMimeType (promise, callback)', async () => {
  const downloadTask = await download(0, '/files/app.hap');
  await outcome(downloadTask);
  const a = run(21, { downloadTask });
  const b = run(22, { downloadTask });
  await until(() => a.logs.length && b.logs.length, 10000, 'mime logs');
  assert.deepEqual([...a.errors, ...b.errors], []);
  assert.deepEqual(a.logs, ['Download task queried. Data:"application/octet-stream"']);
  assert.deepEqual(b.logs, ['Download task queried. data:"application/octet-stream"']);
});

test('#23 #24 #25 #26 downloadTask.pause / resume (promise, callback)', async () => {
  for (const [p, r] of [[23, 25], [24, 26]]) {
    const downloadTask = await download(300000);
    const paused = new Promise((res) => downloadTask.on('pause', res));
    const a = run(p, { downloadTask });
    await until(() => a.logs.length || a.errors.length, 10000, 'pause result');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(a.logs, ['Download task paused. ']);
    await withTimeout(paused, 10000, 'pause event');
    assert.equal((await downloadTask.query()).status, request.SESSION_PAUSED);
    const b = run(r, { downloadTask });
    await until(() => b.logs.length || b.errors.length, 10000, 'resume result');
    assert.deepEqual(b.errors, []);
    assert.equal(b.logs[0], 'Download task resumed.');
    assert.notEqual((await downloadTask.query()).status, request.SESSION_PAUSED);
  }
});
