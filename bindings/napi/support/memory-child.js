'use strict';
// Run with --expose-gc: creates ROUNDS x PER_ROUND tasks (downloads with listeners that close
// over their task, uploads, and downloads removed mid-transfer), drops them, collects, and
// prints one JSON line per round: rss, heap, and the binding's live native objects.
const fs = require('fs');
const path = require('path');
const request = require('..');

const base = process.env.OHREQ_MEM_URL;
const cache = process.env.OHREQ_MEM_CACHE;
const ROUNDS = Number(process.env.OHREQ_MEM_ROUNDS || 8);
const PER_ROUND = Number(process.env.OHREQ_MEM_PER_ROUND || 300);
const ctx = request.createContext({ uid: 20030000, cacheDir: cache, cleartextPermitted: true });
fs.writeFileSync(path.join(cache, 'up.txt'), 'x'.repeat(1000));

function timeout(p, ms) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('timeout')), ms); })])
    .finally(() => clearTimeout(timer));
}
const settleFinalizers = () => new Promise((r) => setImmediate(r));

async function one(i, round) {
  const kind = i % 3;
  if (kind === 0) {
    const t = await request.downloadFile(ctx, { url: `${base}/files/small.bin`, filePath: `r${round}-${i}.bin` });
    const state = { t, n: 0 };
    await timeout(new Promise((resolve) => {
      t.on('progress', (r) => { state.n = r; state.t.toString(); });
      t.on('complete', () => resolve());
      t.on('fail', (e) => resolve(e));
    }), 20000);
  } else if (kind === 1) {
    const t = await request.uploadFile(ctx, { url: `${base}/upload/multipart`, header: {}, method: 'POST',
      files: [{ filename: 'up.txt', name: 'file', uri: 'internal://cache/up.txt', type: '' }], data: [{ name: 'i', value: String(i) }] });
    await timeout(new Promise((resolve) => {
      t.on('headerReceive', (h) => { t.last = h; });
      t.on('complete', resolve);
      t.on('fail', resolve);
    }), 20000);
  } else {
    const t = await request.downloadFile(ctx, { url: `${base}/files/small.bin?rate=1000`, filePath: `r${round}-${i}.bin` });
    const removed = new Promise((resolve) => t.on('remove', resolve));
    t.on('progress', () => t);
    await t.remove();
    await timeout(removed, 20000);
  }
}

(async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const jobs = [];
    for (let i = 0; i < PER_ROUND; i++) jobs.push(one(i, round));
    await Promise.all(jobs);
    for (const f of fs.readdirSync(cache)) if (f.startsWith(`r${round}-`)) fs.rmSync(path.join(cache, f), { force: true });
    for (let k = 0; k < 6; k++) { global.gc(); await settleFinalizers(); }
    const m = process.memoryUsage();
    const s = request.native.stats();
    console.log(JSON.stringify({ round, rss: m.rss, heapUsed: m.heapUsed, tasks: s.tasks, listeners: s.listeners, rooted: s.rooted, active: s.active }));
  }
})().catch((e) => { console.error(e); process.exit(1); });
