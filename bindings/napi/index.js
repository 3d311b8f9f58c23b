'use strict';
// @ohos.request (legacy upload/download, API 6-9) for Node.js over the ohreq C library.
// The native addon (../../build/ohreq.node, sources in this directory) does the C calls and
// delivers events on the JS thread; this file holds the JS-visible policy: which errors are
// thrown and which are delivered through the promise/callback, and in which shape.
// See README.md.

const fs = require('fs');
const os = require('os');
const path = require('path');

const native = require(path.join(__dirname, '..', '..', 'build', 'ohreq.node'));

// ---------------------------------------------------------------- constants (reference A.1)

const CONSTANTS = {
  EXCEPTION_PERMISSION: 201,
  EXCEPTION_PARAMCHECK: 401,
  EXCEPTION_UNSUPPORTED: 801,
  EXCEPTION_FILEIO: 13400001,
  EXCEPTION_FILEPATH: 13400002,
  EXCEPTION_SERVICE: 13400003,
  EXCEPTION_OTHERS: 13499999,
  NETWORK_MOBILE: 0x00000001,
  NETWORK_WIFI: 0x00010000,
  ERROR_CANNOT_RESUME: 0,
  ERROR_DEVICE_NOT_FOUND: 1,
  ERROR_FILE_ALREADY_EXISTS: 2,
  ERROR_FILE_ERROR: 3,
  ERROR_HTTP_DATA_ERROR: 4,
  ERROR_INSUFFICIENT_SPACE: 5,
  ERROR_TOO_MANY_REDIRECTS: 6,
  ERROR_UNHANDLED_HTTP_CODE: 7,
  ERROR_UNKNOWN: 8,
  ERROR_OFFLINE: 9,
  ERROR_UNSUPPORTED_NETWORK_TYPE: 10,
  PAUSED_QUEUED_FOR_WIFI: 0,
  PAUSED_WAITING_FOR_NETWORK: 1,
  PAUSED_WAITING_TO_RETRY: 2,
  PAUSED_BY_USER: 3,
  PAUSED_UNKNOWN: 4,
  SESSION_SUCCESSFUL: 0,
  SESSION_RUNNING: 1,
  SESSION_PENDING: 2,
  SESSION_PAUSED: 3,
  SESSION_FAILED: 4,
};

// OHREQ_EVENT_* of the legacy events.
const EVENTS = { progress: 0, complete: 1, pause: 2, remove: 3, fail: 4, headerReceive: 5 };
const COMPLETE = 1;
const FAIL = 4;

const E_PERMISSION = 201;
const E_PARAM = 401;
const E_FILE_IO = 13400001;
const E_FILE_PATH = 13400002;
const E_SERVICE = 13400003;

// ---------------------------------------------------------------- errors

// A BusinessError-shaped Error: {code, message}; `message` is made enumerable so that
// JSON.stringify(err) (as the seed's examples log errors) shows it. `withCode` false gives
// the API 8 shape (no `code`).
function businessError(code, message, withCode = true) {
  const err = new Error(message);
  err.name = 'BusinessError';
  Object.defineProperty(err, 'message', { value: message, enumerable: true, writable: true, configurable: true });
  if (withCode) err.code = code;
  return err;
}

function paramError(detail, withCode = true) {
  return businessError(E_PARAM, native.message(E_PARAM, detail), withCode);
}

// Runs a native call that throws {code, message}; returns {value} or {code, message}.
function attempt(fn) {
  try {
    return { value: fn() };
  } catch (e) {
    if (e && typeof e.code === 'number') return { code: e.code, message: e.message };
    throw e;
  }
}

// Promise or AsyncCallback delivery. The callback runs as a microtask: after the caller's
// code, before the loop delivers any task event (so listeners added there miss nothing).
function settle(callback, err, value) {
  if (typeof callback === 'function') {
    queueMicrotask(() => (err ? callback(err) : callback(undefined, value)));
    return undefined;
  }
  return err ? Promise.reject(err) : Promise.resolve(value);
}

function lastFunction(args) {
  const last = args[args.length - 1];
  return typeof last === 'function' ? last : undefined;
}

// ---------------------------------------------------------------- service and contexts

let dataDir = null;
let autoDataDir = false;
let serviceOptions = {};
let started = false;

function configure(options = {}) {
  if (options === null || typeof options !== 'object') throw paramError('Incorrect parameter type, options is not of object type');
  if (started) {
    if (options.dataDir !== undefined && path.resolve(options.dataDir) !== dataDir) {
      throw businessError(E_SERVICE, native.message(E_SERVICE, 'configure() after the service started'));
    }
    return;
  }
  if (options.dataDir !== undefined) {
    if (typeof options.dataDir !== 'string' || options.dataDir === '') throw paramError('Incorrect parameter type, dataDir is not a path');
    dataDir = path.resolve(options.dataDir);
    autoDataDir = false;
  }
  serviceOptions = { ...serviceOptions };
  for (const k of ['maxRunning', 'userAgent', 'caBundle', 'logLevel']) if (options[k] !== undefined) serviceOptions[k] = options[k];
}

function ensureService() {
  if (started) return;
  if (!dataDir) {
    if (process.env.OHREQ_DATA_DIR) {
      dataDir = path.resolve(process.env.OHREQ_DATA_DIR);
    } else {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ohreq-node-'));
      autoDataDir = true;
    }
  }
  fs.mkdirSync(dataDir, { recursive: true });
  native.start(dataDir, serviceOptions);
  started = true;
  process.once('exit', () => {
    native.shutdown();
    if (autoDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
}

class Context {
  constructor(token) {
    if (token !== CTOR_TOKEN) throw new TypeError('Illegal constructor: use request.createContext()');
  }
}
const CTOR_TOKEN = Symbol('ohreq');

const CONTEXT_FIELDS = ['bundleName', 'uid', 'cacheDir', 'filesDir', 'baseDirs', 'permissions', 'systemApp', 'cleartextPermitted', 'caFile'];

// createContext({bundleName, uid, cacheDir, filesDir, permissions, systemApp,
// cleartextPermitted, caFile, baseDirs}): an application identity and sandbox (an
// ohreq_client). Defaults: uid 100000, bundle "ohreq.node", cacheDir <dataDir>/cache,
// permissions ["ohos.permission.INTERNET"], HTTPS only.
function createContext(options = {}) {
  if (options === null || typeof options !== 'object') throw paramError('Incorrect parameter type, options is not of object type');
  ensureService();
  const o = {};
  for (const k of CONTEXT_FIELDS) if (options[k] !== undefined) o[k] = options[k];
  if (o.uid === undefined) o.uid = 100000;
  if (o.bundleName === undefined) o.bundleName = 'ohreq.node';
  if (o.cacheDir === undefined) {
    o.cacheDir = path.join(dataDir, 'cache', String(o.uid));
    fs.mkdirSync(o.cacheDir, { recursive: true });
  }
  if (o.permissions === undefined) o.permissions = ['ohos.permission.INTERNET'];
  if (o.cleartextPermitted === undefined) o.cleartextPermitted = false;
  for (const k of ['cacheDir', 'filesDir', 'caFile']) if (typeof o[k] === 'string') o[k] = path.resolve(o[k]);
  const ctx = new Context(CTOR_TOKEN);
  native.createClient(ctx, o);
  for (const k of CONTEXT_FIELDS) if (o[k] !== undefined) Object.defineProperty(ctx, k, { value: o[k], enumerable: true });
  return ctx;
}

let defaultContext = null;

function setDefaultContext(ctx) {
  if (!(ctx instanceof Context)) throw paramError('Incorrect parameter type, context is not a context made by createContext');
  defaultContext = ctx;
}

function getDefaultContext() {
  if (!defaultContext) defaultContext = createContext();
  return defaultContext;
}

// A context argument: one made by createContext, or a plain object of the same fields
// (made into a context once, then reused).
const adopted = new WeakMap();
function resolveContext(ctx) {
  if (ctx instanceof Context) return ctx;
  if (ctx === null || typeof ctx !== 'object') return null;
  let c = adopted.get(ctx);
  if (!c) {
    c = createContext(ctx);
    adopted.set(ctx, c);
  }
  return c;
}

// ---------------------------------------------------------------- tasks

const LISTENERS = Symbol('listeners');

class RequestTask {
  constructor(token) {
    if (token !== CTOR_TOKEN) throw new TypeError('Illegal constructor: tasks come from request.download/upload');
    // Strong references to the listeners (the native side only holds weak ones).
    Object.defineProperty(this, LISTENERS, { value: new Map() });
  }

  on(type, callback) {
    checkEvent(type, callback, true);
    let list = this[LISTENERS].get(type);
    if (!list) this[LISTENERS].set(type, (list = []));
    if (list.includes(callback)) return; // the same callback twice is registered once
    native.on(this, EVENTS[type], callback);
    list.push(callback);
  }

  off(type, callback) {
    checkEvent(type, callback, false);
    const list = this[LISTENERS].get(type);
    if (!list) return;
    if (typeof callback === 'function') {
      const i = list.indexOf(callback);
      if (i < 0) return;
      native.off(this, EVENTS[type], callback);
      list.splice(i, 1);
    } else {
      native.off(this, EVENTS[type]);
      list.length = 0;
    }
  }

  // delete/remove: Promise<boolean>. Only 201 is an error; other failures resolve false.
  delete(...args) { return boolMethod(this, native.delete, lastFunction(args)); }
  remove(...args) { return boolMethod(this, native.delete, lastFunction(args)); }
  suspend(...args) { return boolMethod(this, native.suspend, lastFunction(args)); }
  pause(...args) { return boolMethod(this, native.suspend, lastFunction(args)); }
  restore(...args) { return boolMethod(this, native.restore, lastFunction(args)); }
  resume(...args) { return boolMethod(this, native.restore, lastFunction(args)); }
  getTaskInfo(...args) { return infoMethod(this, lastFunction(args)); }
  query(...args) { return infoMethod(this, lastFunction(args)); }
  getTaskMimeType(...args) { return mimeMethod(this, lastFunction(args)); }
  queryMimeType(...args) { return mimeMethod(this, lastFunction(args)); }
}

class DownloadTask extends RequestTask {}
class UploadTask extends RequestTask {}

// on/off argument errors are thrown without `code` for legacy tasks (reference A.2).
function checkEvent(type, callback, required) {
  if (typeof type !== 'string') throw paramError('Incorrect parameter type, event is not of string type', false);
  if (!Object.prototype.hasOwnProperty.call(EVENTS, type)) throw paramError('Parameter verification failed, event parse error', false);
  if (required ? typeof callback !== 'function' : callback !== undefined && typeof callback !== 'function') {
    throw paramError(required ? 'Missing mandatory parameters, callback is not of function type'
      : 'Incorrect parameter type, callback is not of function type', false);
  }
}

function permissionError() {
  return businessError(E_PERMISSION, native.message(E_PERMISSION));
}

function boolMethod(task, fn, callback) {
  const code = fn(task);
  if (code === E_PERMISSION) return settle(callback, permissionError());
  return settle(callback, undefined, code === 0);
}

function infoMethod(task, callback) {
  const r = native.info(task);
  if (typeof r !== 'number') return settle(callback, undefined, r);
  if (r === E_PERMISSION) return settle(callback, permissionError());
  // Other failures are swallowed as in the legacy service: an empty DownloadInfo.
  return settle(callback, undefined, {
    downloadId: native.taskId(task), failedReason: -1, fileName: '', filePath: '', pausedReason: -1,
    status: -1, targetURI: '', downloadTitle: '', downloadTotalBytes: -1, description: '', downloadedBytes: 0,
  });
}

function mimeMethod(task, callback) {
  const r = native.mimeType(task);
  if (typeof r === 'string') return settle(callback, undefined, r);
  if (r === E_PERMISSION) return settle(callback, permissionError());
  return settle(callback, undefined, '');
}

// Creates and starts a task. Returns {task} or {code, message}.
function createTask(ctx, config, upload) {
  const task = upload ? new UploadTask(CTOR_TOKEN) : new DownloadTask(CTOR_TOKEN);
  const r = attempt(() => native.createTask(ctx, config, task, upload));
  if (r.code !== undefined) return r;
  if (r.value >= 0) {
    // It ended before the binding could subscribe: deliver complete/fail on the next turn,
    // once the caller has had a chance to add listeners.
    setImmediate(() => native.emitMissed(task));
  }
  return { task };
}

// ---------------------------------------------------------------- entry points

// API 9: downloadFile(context, config[, callback]) / uploadFile(...). Both are one function
// in the real service: a config with `method`, `files` or `data` is an upload.
// 401, 13400001, 13400002 are thrown; 201, 13400003 and the rest go to the promise/callback
// (for uploads 13400003 comes without `code`).
function requestFile(args) {
  const callback = lastFunction(args);
  const argc = callback ? args.length - 1 : args.length;
  if (argc < 2) throw paramError('Missing mandatory parameters, Wrong number of arguments');
  const [context, config] = args;
  if (context === null || typeof context !== 'object') throw paramError('Incorrect parameter type, context is not of object type');
  if (config === null || typeof config !== 'object') throw paramError('Incorrect parameter type, config is not of object type');
  const upload = ['method', 'files', 'data'].some((k) => k in config);
  const ctx = resolveContext(context);
  const r = createTask(ctx, config, upload);
  if (r.task) return settle(callback, undefined, r.task);
  if (r.code === E_PARAM || r.code === E_FILE_IO || r.code === E_FILE_PATH) throw businessError(r.code, r.message);
  return settle(callback, businessError(r.code, r.message, !(upload && r.code === E_SERVICE)));
}

function downloadFile(...args) { return requestFile(args); }
function uploadFile(...args) { return requestFile(args); }

// FA model (API 6-8, deprecated since 9): download(config[, callback]) / upload(...) with
// the default context. Parameter and file errors are thrown without `code` (API 8 shape);
// 201 (with `code`) and service errors (without) go to the promise/callback.
function legacy(args, upload) {
  const callback = lastFunction(args);
  const argc = callback ? args.length - 1 : args.length;
  if (argc < 1) throw paramError('Missing mandatory parameters, Wrong number of arguments', false);
  const config = args[0];
  if (config === null || typeof config !== 'object') throw paramError('Incorrect parameter type, config is not of object type', false);
  const r = createTask(getDefaultContext(), config, upload);
  if (r.task) return settle(callback, undefined, r.task);
  if (r.code === E_PARAM || r.code === E_FILE_IO || r.code === E_FILE_PATH) throw businessError(r.code, r.message, false);
  return settle(callback, businessError(r.code, r.message, r.code === E_PERMISSION));
}

function download(...args) { return legacy(args, false); }
function upload(...args) { return legacy(args, true); }

// ---------------------------------------------------------------- the module

const request = {};
for (const [k, v] of Object.entries(CONSTANTS)) {
  Object.defineProperty(request, k, { value: v, enumerable: true, writable: false, configurable: false });
}
Object.assign(request, {
  download,
  upload,
  downloadFile,
  uploadFile,
  createContext,
  setDefaultContext,
  configure,
  DownloadTask,
  UploadTask,
});
// Diagnostics for tests and tools (not part of @ohos.request).
Object.defineProperty(request, 'native', {
  value: Object.freeze({
    stats: () => native.stats(),
    version: () => native.version(),
    dataDir: () => dataDir,
  }),
  enumerable: false,
});

module.exports = request;
