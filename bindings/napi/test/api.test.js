'use strict';
// Every method and event of DownloadTask/UploadTask, promise and callback forms, and the
// error codes and shapes of the entry points, against testserver on 127.0.0.1.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const request = require('..');
const { tmpdir, startServer, nextEvent, outcome, writeFile, withTimeout, sleep } = require('../support/helpers');

let srv;
let cache;
let ctx;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

test.before(async () => {
  srv = await startServer();
  writeFile(path.join(srv.root, 'small.bin'), 4096, 7);
  writeFile(path.join(srv.root, 'big.bin'), 2 * 1024 * 1024, 9);
  fs.writeFileSync(path.join(srv.root, 'hello.txt'), 'hello\n');
  cache = tmpdir('ohreq-napi-cache-');
  ctx = request.createContext({ bundleName: 'com.example.api', uid: 20010001, cacheDir: cache, cleartextPermitted: true, caFile: srv.caFile });
});
test.after(() => srv && srv.stop());

let n = 0;
const fresh = (ext = 'bin') => `f${++n}.${ext}`;

test('constants have the reference values and are read-only', () => {
  const want = {
    NETWORK_MOBILE: 1, NETWORK_WIFI: 65536, ERROR_CANNOT_RESUME: 0, ERROR_DEVICE_NOT_FOUND: 1, ERROR_FILE_ALREADY_EXISTS: 2,
    ERROR_FILE_ERROR: 3, ERROR_HTTP_DATA_ERROR: 4, ERROR_INSUFFICIENT_SPACE: 5, ERROR_TOO_MANY_REDIRECTS: 6,
    ERROR_UNHANDLED_HTTP_CODE: 7, ERROR_UNKNOWN: 8, ERROR_OFFLINE: 9, ERROR_UNSUPPORTED_NETWORK_TYPE: 10,
    PAUSED_QUEUED_FOR_WIFI: 0, PAUSED_WAITING_FOR_NETWORK: 1, PAUSED_WAITING_TO_RETRY: 2, PAUSED_BY_USER: 3, PAUSED_UNKNOWN: 4,
    SESSION_SUCCESSFUL: 0, SESSION_RUNNING: 1, SESSION_PENDING: 2, SESSION_PAUSED: 3, SESSION_FAILED: 4,
    EXCEPTION_PERMISSION: 201, EXCEPTION_PARAMCHECK: 401, EXCEPTION_UNSUPPORTED: 801, EXCEPTION_FILEIO: 13400001,
    EXCEPTION_FILEPATH: 13400002, EXCEPTION_SERVICE: 13400003, EXCEPTION_OTHERS: 13499999,
  };
  for (const [k, v] of Object.entries(want)) assert.equal(request[k], v, k);
  assert.throws(() => { 'use strict'; request.NETWORK_WIFI = 3; }, TypeError);
});

test('downloadFile: progress, complete, query, queryMimeType, getTaskInfo, getTaskMimeType', async () => {
  const name = fresh();
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=4000000'), filePath: name, title: 't1', description: 'd1' });
  assert.ok(task instanceof request.DownloadTask);
  const progress = [];
  task.on('progress', (r, t) => progress.push([r, t]));
  const [kind] = await outcome(task);
  assert.equal(kind, 'complete');
  assert.ok(progress.length >= 1, 'progress events');
  assert.deepEqual(progress[progress.length - 1], [2097152, 2097152]);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0]);
  assert.equal(sha(fs.readFileSync(path.join(cache, name))), sha(fs.readFileSync(path.join(srv.root, 'big.bin'))));
  const info = await task.query();
  assert.deepEqual(Object.keys(info).sort(), ['description', 'downloadId', 'downloadTitle', 'downloadTotalBytes', 'downloadedBytes',
    'failedReason', 'fileName', 'filePath', 'pausedReason', 'status', 'targetURI'].sort());
  assert.equal(info.status, request.SESSION_SUCCESSFUL);
  assert.equal(info.fileName, name);
  assert.equal(info.filePath, path.join(cache, name));
  assert.equal(info.targetURI, srv.url('/files/big.bin?rate=4000000'));
  assert.equal(info.downloadTitle, 't1');
  assert.equal(info.description, 'd1');
  assert.equal(info.downloadTotalBytes, 2097152);
  assert.equal(info.downloadedBytes, 2097152);
  assert.equal(typeof info.downloadId, 'number');
  assert.deepEqual(await task.getTaskInfo(), info);
  assert.equal(await task.queryMimeType(), 'application/octet-stream');
  assert.equal(await task.getTaskMimeType(), 'application/octet-stream');
  await new Promise((resolve, reject) => task.query((err, i) => { try { assert.equal(err, undefined); assert.deepEqual(i, info); resolve(); } catch (e) { reject(e); } }));
  await new Promise((resolve, reject) => task.queryMimeType((err, m) => { try { assert.equal(err, undefined); assert.equal(m, 'application/octet-stream'); resolve(); } catch (e) { reject(e); } }));
});

test('pause/resume and suspend/restore: events, states, byte-exact result, promise and callback', async () => {
  const name = fresh();
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=300000'), filePath: name });
  await nextEvent(task, 'progress', 10000);
  const paused = nextEvent(task, 'pause');
  assert.equal(await task.pause(), true);
  await paused;
  let info = await task.query();
  assert.equal(info.status, request.SESSION_PAUSED);
  assert.equal(info.pausedReason, request.PAUSED_BY_USER);
  assert.equal(await task.suspend(), false, 'suspending a paused task resolves false');
  assert.equal(await task.resume(), true);
  info = await task.query();
  assert.notEqual(info.status, request.SESSION_PAUSED);
  // callback forms
  await nextEvent(task, 'progress', 10000);
  const paused2 = nextEvent(task, 'pause');
  await new Promise((resolve, reject) => task.suspend((err, ok) => (err ? reject(err) : ok ? resolve() : reject(new Error('suspend false')))));
  await paused2;
  const done = outcome(task, 30000);
  await new Promise((resolve, reject) => task.restore((err, ok) => (err ? reject(err) : ok ? resolve() : reject(new Error('restore false')))));
  assert.equal(await task.restore(), false, 'restoring a running task resolves false');
  const [kind] = await done;
  assert.equal(kind, 'complete');
  assert.equal(sha(fs.readFileSync(path.join(cache, name))), sha(fs.readFileSync(path.join(srv.root, 'big.bin'))));
});

test('remove/delete: remove event, true then false, partial data gone; callback form', async () => {
  const name = fresh();
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=200000'), filePath: name });
  await nextEvent(task, 'progress');
  const removed = nextEvent(task, 'remove');
  assert.equal(await task.remove(), true);
  await removed;
  assert.equal(await task.delete(), false, 'a removed task cannot be removed again');
  assert.equal(typeof (await task.query()).downloadId, 'number');
  assert.equal(fs.existsSync(path.join(cache, name)), false);
  assert.equal(await task.pause(), false);
  assert.equal(await task.resume(), false);

  const t2 = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=200000'), filePath: fresh() });
  const rm2 = nextEvent(t2, 'remove');
  const ok = await new Promise((resolve, reject) => t2.delete((err, r) => (err ? reject(err) : resolve(r))));
  assert.equal(ok, true);
  await rm2;
});

test('fail event: HTTP 404 gives ERROR_UNHANDLED_HTTP_CODE, query shows SESSION_FAILED', async () => {
  const task = await request.downloadFile(ctx, { url: srv.url('/files/nope.bin'), filePath: fresh() });
  const [kind, code] = await outcome(task);
  assert.equal(kind, 'fail');
  assert.equal(code, request.ERROR_UNHANDLED_HTTP_CODE);
  const info = await task.query();
  assert.equal(info.status, request.SESSION_FAILED);
  assert.equal(info.failedReason, request.ERROR_UNHANDLED_HTTP_CODE);
  // redirect loop
  const t2 = await request.downloadFile(ctx, { url: srv.url('/loop'), filePath: fresh() });
  assert.deepEqual(await outcome(t2, 30000), ['fail', request.ERROR_TOO_MANY_REDIRECTS]);
});

test('https: trusted with the context caFile; untrusted without it', async () => {
  const task = await request.downloadFile(ctx, { url: srv.surl('/files/hello.txt'), filePath: fresh('txt') });
  assert.deepEqual(await outcome(task), ['complete']);
  const other = request.createContext({ uid: 20010002, cacheDir: tmpdir('ohreq-napi-c2-') });
  const t2 = await request.downloadFile(other, { url: srv.surl('/files/hello.txt') });
  const [kind] = await outcome(t2);
  assert.equal(kind, 'fail');
});

test('header option: string and non-string values are accepted', async () => {
  const name = fresh('json');
  const task = await request.downloadFile(ctx, { url: srv.url('/files/hello.txt'), filePath: name, header: { 'X-One': 'v1', 'X-Two': 2 } });
  assert.deepEqual(await outcome(task), ['complete']);
});

test('uploadFile multipart: progress, headerReceive {headers, body}, complete with TaskState[]', async () => {
  // 4 MiB: longer than the window in which ohreq_upload has started the transfer but the
  // binding has not subscribed yet (events produced then are dropped by the library).
  const data = writeFile(path.join(cache, 'up1.bin'), 4194304, 3);
  const task = await request.uploadFile(ctx, {
    url: srv.url('/upload/multipart'), header: { 'X-Test': 'yes' }, method: 'POST',
    files: [{ filename: 'up1.bin', name: 'file', uri: 'internal://cache/up1.bin', type: '' }],
    data: [{ name: 'field', value: 'value1' }],
  });
  assert.ok(task instanceof request.UploadTask);
  const progress = [];
  task.on('progress', (u, t) => progress.push([u, t]));
  const header = nextEvent(task, 'headerReceive');
  const [kind, states] = await outcome(task);
  assert.equal(kind, 'complete');
  assert.deepEqual(states, [{ path: path.join(cache, 'up1.bin'), responseCode: 0, message: '' }]);
  const [h] = await header;
  assert.equal(h.headers['content-type'], 'application/json');
  const body = JSON.parse(h.body);
  const filePart = body.parts.find((p) => p.filename === 'up1.bin');
  assert.equal(filePart.sha256, sha(data));
  assert.equal(filePart.name, 'file');
  assert.equal(body.parts.find((p) => p.name === 'field').value, 'value1');
  assert.deepEqual(progress[progress.length - 1], [4194304, 4194304]);
});

test('uploadFile PUT raw and callback form; fail with TaskState on HTTP 500', async () => {
  const data = writeFile(path.join(cache, 'up2.bin'), 4194304, 4); // see up1.bin
  const task = await new Promise((resolve, reject) => request.uploadFile(ctx, {
    url: srv.url('/upload/raw/up2.bin'), header: {}, method: 'PUT',
    files: [{ filename: 'up2.bin', name: 'file', uri: 'internal://cache/up2.bin', type: '' }], data: [],
  }, (err, t) => (err ? reject(err) : resolve(t))));
  const hdr = nextEvent(task, 'headerReceive');
  assert.equal((await outcome(task))[0], 'complete');
  assert.equal(JSON.parse((await hdr)[0].body).sha256, sha(data));

  const t2 = await request.uploadFile(ctx, {
    url: srv.url('/upload/multipart?status=500'), header: {}, method: 'POST',
    files: [{ filename: 'up2.bin', name: 'file', uri: 'internal://cache/up2.bin', type: '' }], data: [],
  });
  const [kind, states] = await outcome(t2);
  assert.equal(kind, 'fail');
  assert.equal(states.length, 1);
  assert.equal(states[0].responseCode, 17);
  assert.match(states[0].message, /500/);
});

test('downloadFile with method/files/data is an upload (the service infers the action)', async () => {
  writeFile(path.join(cache, 'up3.bin'), 10, 5);
  const task = await request.downloadFile(ctx, {
    url: srv.url('/upload/multipart'), header: {}, files: [{ filename: 'a', name: 'file', uri: 'internal://cache/up3.bin', type: '' }], data: [],
  });
  assert.ok(task instanceof request.UploadTask);
  assert.equal((await outcome(task))[0], 'complete');
});

test('on/off: same callback once, off one, off all, bad arguments thrown without code', async () => {
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=1000000'), filePath: fresh() });
  let a = 0, b = 0;
  const fa = () => { a++; };
  const fb = () => { b++; };
  task.on('complete', fa);
  task.on('complete', fa);
  task.on('complete', fb);
  task.off('complete', fb);
  task.off('complete', () => {}); // not subscribed: no-op
  let p = 0;
  task.on('progress', () => { p++; });
  task.on('progress', () => { p++; });
  task.off('progress');
  await outcome(task);
  await sleep(50);
  assert.equal(a, 1);
  assert.equal(b, 0);
  assert.equal(p, 0);
  for (const [args, re] of [[['nope', fa], /event parse error/], [[1, fa], /event is not of string type/], [['complete'], /callback/], [['complete', 3], /callback/]]) {
    assert.throws(() => task.on(...args), (e) => e.code === undefined && re.test(e.message));
  }
  try { task.on('nope', fa); } catch (e) { assert.equal(e.code, undefined); assert.match(e.message, /^The parameters check fails/); }
  assert.throws(() => task.off('nope'), /event parse error/);
  assert.throws(() => task.off('complete', 5), /callback/);
  // headerReceive is accepted on a download task (the map is shared) and never fires.
  task.on('headerReceive', fa);
  task.off('headerReceive', fa);
});

test('a listener may remove itself; a throwing listener is an uncaughtException, others still run', async () => {
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=2000000'), filePath: fresh() });
  let self = 0;
  const once = () => { self++; task.off('progress', once); };
  task.on('progress', once);
  assert.equal((await outcome(task))[0], 'complete');
  assert.equal(self, 1);
  // The throwing case runs in a child process: the test runner fails any file that sees
  // an uncaughtException, even a handled one.
  const script = `
    const request = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const ctx = request.createContext({ uid: 1, cacheDir: ${JSON.stringify(tmpdir('ohreq-napi-c8-'))}, cleartextPermitted: true });
    const seen = [];
    process.on('uncaughtException', (e) => seen.push(e.message));
    request.downloadFile(ctx, { url: ${JSON.stringify(srv.url('/files/hello.txt'))} }).then((t) => {
      t.on('complete', () => { throw new Error('listener boom'); });
      t.on('complete', () => seen.push('second listener ran'));
    });
    setTimeout(() => {}, 3000).unref();
    process.on('exit', () => console.log(JSON.stringify(seen)));`;
  const { execFileSync } = require('child_process');
  const out = execFileSync(process.execPath, ['-e', script], { timeout: 15000, encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim()), ['listener boom', 'second listener ran']);
});

test('API 9 errors: 401/13400001/13400002 thrown with code; 201 through promise and callback', async () => {
  const check = (fn, code, re) => {
    assert.throws(fn, (err) => err.code === code && re.test(err.message));
  };
  check(() => request.downloadFile(ctx, { url: 'ftp://127.0.0.1/x' }), 401, /^The parameters check fails {3}\S/);
  check(() => request.downloadFile(ctx, {}), 401, /url/);
  check(() => request.downloadFile(ctx, { url: 5 }), 401, /url/);
  check(() => request.downloadFile(ctx, { url: srv.url('/files/' + 'a'.repeat(8200)) }), 401, /8192/);
  check(() => request.downloadFile(ctx, { url: srv.url('/x'), header: { 'Bad\r\nName': 'v' } }), 401, /./);
  check(() => request.downloadFile(ctx, { url: srv.url('/x'), filePath: '../escape.bin' }), 401, /./);
  check(() => request.downloadFile(ctx), 401, /Missing mandatory parameters/);
  check(() => request.downloadFile(null, { url: srv.url('/x') }), 401, /context/);
  check(() => request.downloadFile(ctx, 'cfg'), 401, /config/);
  // https only without cleartext permission
  const strict = request.createContext({ uid: 20010003, cacheDir: tmpdir('ohreq-napi-c3-') });
  check(() => request.downloadFile(strict, { url: srv.url('/files/hello.txt') }), 401, /./);
  // target exists -> 13400002; target is a directory -> 13400001
  fs.writeFileSync(path.join(cache, 'exists.bin'), 'x');
  check(() => request.downloadFile(ctx, { url: srv.url('/files/hello.txt'), filePath: 'exists.bin' }), 13400002, /^File path not supported or invalid/);
  fs.mkdirSync(path.join(cache, 'adir'), { recursive: true });
  check(() => request.downloadFile(ctx, { url: srv.url('/files/hello.txt'), filePath: 'adir' }), 13400001, /^Invalid file or file system error/);
  // uploads: missing file 13400002; no files / missing data / bad index 401
  const f = [{ filename: 'm', name: 'file', uri: 'internal://cache/missing.bin', type: '' }];
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: f, data: [] }), 13400002, /./);
  fs.writeFileSync(path.join(cache, 'u.bin'), 'u');
  const ok = [{ filename: 'u', name: 'file', uri: 'internal://cache/u.bin', type: '' }];
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: [], data: [] }), 401, /files/);
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', data: [] }), 401, /files/);
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: ok }), 401, /data/);
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: ok, data: [], index: 1 }), 401, /./);
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: [{ uri: 'internal://cache/u.bin' }], data: [] }), 401, /./);
  check(() => request.uploadFile(ctx, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: [{ filename: 'u', name: 'file', uri: 'internal://cache/../../etc/passwd', type: '' }], data: [] }), 401, /./);

  // 201: no INTERNET permission -> rejected / callback error, with code
  const noNet = request.createContext({ uid: 20010004, cacheDir: tmpdir('ohreq-napi-c4-'), permissions: [], cleartextPermitted: true });
  const e1 = await request.downloadFile(noNet, { url: srv.url('/files/hello.txt') }).then(() => null, (e) => e);
  assert.equal(e1.code, 201);
  assert.match(e1.message, /^The permissions check fails/);
  const e2 = await new Promise((resolve) => request.downloadFile(noNet, { url: srv.url('/files/hello.txt') }, (err, t) => resolve(err || t)));
  assert.equal(e2.code, 201);
  fs.writeFileSync(path.join(noNet.cacheDir, 'u.bin'), 'u');
  const e3 = await request.uploadFile(noNet, { url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: ok, data: [] }).then(() => null, (e) => e);
  assert.equal(e3.code, 201);
  assert.equal(JSON.parse(JSON.stringify(e3)).code, 201);
  assert.match(JSON.parse(JSON.stringify(e3)).message, /permissions/);
});

test('FA model download/upload: default context, API 8 error shapes', async () => {
  const dctx = request.createContext({ uid: 20010005, cacheDir: tmpdir('ohreq-napi-c5-'), cleartextPermitted: true });
  request.setDefaultContext(dctx);
  const t = await request.download({ url: srv.url('/files/hello.txt') });
  assert.ok(t instanceof request.DownloadTask);
  assert.deepEqual(await outcome(t), ['complete']);
  assert.equal(fs.readFileSync(path.join(dctx.cacheDir, 'hello.txt'), 'utf8'), 'hello\n');
  const t2 = await new Promise((resolve, reject) => request.download({ url: srv.url('/files/hello.txt'), filePath: 'cb/hello.txt' }, (err, d) => (err ? reject(err) : resolve(d))));
  assert.deepEqual(await outcome(t2), ['complete']);
  assert.ok(fs.existsSync(path.join(dctx.cacheDir, 'cb', 'hello.txt')));
  // parameter and file errors: thrown, without code
  for (const cfg of [{ url: 'bad' }, {}, { url: srv.url('/files/hello.txt') } /* exists now */]) {
    assert.throws(() => request.download(cfg), (err) => err.code === undefined && err.message.length > 0);
  }
  assert.throws(() => request.upload({ url: srv.url('/upload/multipart'), files: [], data: [] }), (e) => e.code === undefined);
  // upload through the default context
  fs.writeFileSync(path.join(dctx.cacheDir, 'u.txt'), 'upload me');
  const u = await request.upload({ url: srv.url('/upload/multipart'), header: {}, method: 'POST', files: [{ filename: 'u.txt', name: 'file', uri: 'internal://cache/u.txt', type: 'text/plain' }], data: [] });
  assert.ok(u instanceof request.UploadTask);
  assert.equal((await outcome(u))[0], 'complete');
  // 201 keeps its code
  request.setDefaultContext(request.createContext({ uid: 20010006, cacheDir: tmpdir('ohreq-napi-c6-'), permissions: [], cleartextPermitted: true }));
  const e = await request.download({ url: srv.url('/files/hello.txt') }).then(() => null, (err) => err);
  assert.equal(e.code, 201);
  request.setDefaultContext(dctx);
  assert.throws(() => request.setDefaultContext({}), (err) => err.code === 401);
});

test('plain-object contexts are adopted; configure() after start is refused for another dir', async () => {
  const plain = { uid: 20010007, cacheDir: tmpdir('ohreq-napi-c7-'), cleartextPermitted: true };
  const t = await request.downloadFile(plain, { url: srv.url('/files/hello.txt') });
  assert.deepEqual(await outcome(t), ['complete']);
  assert.ok(fs.existsSync(path.join(plain.cacheDir, 'hello.txt')));
  assert.throws(() => request.configure({ dataDir: tmpdir('ohreq-napi-other-') }), (e) => e.code === 13400003);
  request.configure({ dataDir: request.native.dataDir() });
});

test('the loop is not kept alive by finished or paused tasks', async () => {
  const s = request.native.stats();
  assert.equal(s.active, 0);
  assert.equal(s.loopRef, 0);
  const task = await request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=200000'), filePath: fresh() });
  assert.equal(request.native.stats().loopRef, 1);
  const paused = nextEvent(task, 'pause');
  await task.pause();
  await paused;
  assert.equal(request.native.stats().loopRef, 0);
  await task.resume();
  assert.equal(request.native.stats().loopRef, 1);
  const removed = nextEvent(task, 'remove');
  await task.remove();
  await removed;
  await sleep(10);
  assert.equal(request.native.stats().loopRef, 0);
});

test('a task nobody references still delivers its events', async () => {
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  request.downloadFile(ctx, { url: srv.url('/files/big.bin?rate=3000000'), filePath: fresh() })
    .then((t) => t.on('complete', () => resolve('complete')));
  if (global.gc) global.gc();
  assert.equal(await withTimeout(done, 15000, 'complete of an unreferenced task'), 'complete');
});
