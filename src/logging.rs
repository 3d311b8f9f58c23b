//! Routes the `log` crate's records to the embedders' log callbacks. The logger is installed
//! once per process; each service registers its sink while it lives. Records from threads
//! shared by services go to every registered sink.

use parking_lot::RwLock;
use std::ffi::c_void;
use std::sync::{Arc, Once};

pub type LogFn = unsafe extern "C" fn(
    userdata: *mut c_void,
    level: u32,
    msg: *const std::ffi::c_char,
    len: usize,
);
pub type FreeFn = unsafe extern "C" fn(userdata: *mut c_void);

/// An embedder's log callback; dropping the last reference releases its userdata.
pub struct LogSink {
    pub cb: LogFn,
    pub userdata: *mut c_void,
    pub free: Option<FreeFn>,
    pub max_level: u32,
}

// SAFETY: the callback's documentation requires it to be callable from any thread.
unsafe impl Send for LogSink {}
unsafe impl Sync for LogSink {}

impl Drop for LogSink {
    fn drop(&mut self) {
        if let Some(f) = self.free {
            // SAFETY: the embedder handed us userdata with this finalizer; called once.
            unsafe { f(self.userdata) };
        }
    }
}

static SINKS: RwLock<Vec<(u64, Arc<LogSink>)>> = RwLock::new(Vec::new());
static INSTALL: Once = Once::new();

struct Router;

impl log::Log for Router {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        let lvl = m.level() as u32;
        SINKS.read().iter().any(|(_, s)| lvl <= s.max_level)
    }

    fn log(&self, r: &log::Record<'_>) {
        let lvl = r.level() as u32;
        let sinks: Vec<Arc<LogSink>> = SINKS
            .read()
            .iter()
            .filter(|(_, s)| lvl <= s.max_level)
            .map(|(_, s)| s.clone())
            .collect();
        if sinks.is_empty() {
            return;
        }
        let mut msg = format!("{}", r.args()).into_bytes();
        msg.retain(|&b| b != 0);
        msg.push(0);
        for s in sinks {
            // SAFETY: a NUL-terminated buffer valid for the call; the embedder's callback.
            unsafe { (s.cb)(s.userdata, lvl, msg.as_ptr().cast(), msg.len() - 1) };
        }
    }

    fn flush(&self) {}
}

/// Adds a sink under `key` (a service's id).
pub fn register(key: u64, sink: Arc<LogSink>) {
    INSTALL.call_once(|| {
        if log::set_logger(&Router).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    SINKS.write().push((key, sink));
}

/// Removes the sinks registered under `key`.
pub fn unregister(key: u64) {
    let gone: Vec<_> = {
        let mut w = SINKS.write();
        let (gone, keep): (Vec<_>, Vec<_>) = w.drain(..).partition(|(k, _)| *k == key);
        *w = keep;
        gone
    };
    drop(gone); // outside the lock: userdata_free may log
}
