'use strict';
// Test helpers: the project's testserver as a child process, bounded waits, sandboxes.
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TESTSERVER = path.join(ROOT, 'target', 'release', 'testserver');

const made = [];
process.once('exit', () => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });
// A fresh directory, removed when the process exits.
function tmpdir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

// Rejects after `ms` unless `promise` settles first.
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts testserver on 127.0.0.1 with a fresh root; resolves {http, https, h2, root, certDir,
// url(path), surl(path), stop()}.
async function startServer() {
  const dir = tmpdir('ohreq-napi-srv-');
  const root = path.join(dir, 'root');
  const certDir = path.join(dir, 'certs');
  const portFile = path.join(dir, 'ports');
  fs.mkdirSync(root);
  const child = spawn(TESTSERVER, ['--root', root, '--port-file', portFile, '--cert-dir', certDir, '--bind', '127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  child.unref();
  const deadline = Date.now() + 15000;
  let line = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`testserver exited with ${child.exitCode}`);
    try { line = fs.readFileSync(portFile, 'utf8').trim(); } catch { /* not yet */ }
    if (/http=\d+ https=\d+ h2=\d+/.test(line)) break;
    await sleep(20);
  }
  if (!/http=\d+/.test(line)) { child.kill(); throw new Error('testserver did not write its port file'); }
  const ports = Object.fromEntries(line.split(/\s+/).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  const stop = () => { try { child.kill(); } catch { /* gone */ } fs.rmSync(dir, { recursive: true, force: true }); };
  process.once('exit', stop);
  return {
    ...ports, root, certDir, caFile: path.join(certDir, 'ca.pem'),
    url: (p) => `http://127.0.0.1:${ports.http}${p}`,
    surl: (p) => `https://127.0.0.1:${ports.https}${p}`,
    stop,
  };
}

// Resolves with the arguments of the next `type` event of `task` (bounded).
function nextEvent(task, type, ms = 10000) {
  let fn;
  return withTimeout(new Promise((resolve) => {
    fn = (...args) => { task.off(type, fn); resolve(args); };
    task.on(type, fn);
  }), ms, `event ${type}`).finally(() => task.off(type, fn));
}

// Resolves 'complete' or ['fail', arg] — whichever comes first (bounded).
function outcome(task, ms = 15000) {
  const fns = {};
  return withTimeout(new Promise((resolve) => {
    fns.complete = (...a) => resolve(['complete', ...a]);
    fns.fail = (...a) => resolve(['fail', ...a]);
    task.on('complete', fns.complete);
    task.on('fail', fns.fail);
  }), ms, 'complete/fail').finally(() => { task.off('complete', fns.complete); task.off('fail', fns.fail); });
}

function writeFile(p, size, seed = 1) {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, b);
  return b;
}

module.exports = { ROOT, tmpdir, withTimeout, sleep, startServer, nextEvent, outcome, writeFile };
