//! Shared server state: the request log, connection/request counters and
//! the per-key counters behind the `times=T&key=K` fault injection.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Oldest entries are discarded beyond this, so a long-running server
/// cannot grow without bound.
const MAX_LOG_ENTRIES: usize = 100_000;

/// One logged request. `served` is shared with the writer so the log shows
/// live progress of a response that is still being sent (e.g. a stall).
pub struct Entry {
    pub conn_id: u64,
    pub method: String,
    pub target: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub tls: bool,
    /// Served over HTTP/2: the line gets a trailing ` h2=1`.
    pub h2: bool,
    pub served: Arc<AtomicU64>,
    /// Request-body bytes read so far, for the upload endpoints: the line
    /// gets a trailing ` recv=N` (after ` h2=1`).
    pub recv: Option<Arc<AtomicU64>>,
}

pub struct Shared {
    pub root: PathBuf,
    log: Mutex<Vec<Entry>>,
    connections: AtomicU64,
    requests: AtomicU64,
    fault_counters: Mutex<HashMap<String, u64>>,
}

/// A panicking connection thread must not take the whole server down with
/// it, so poisoned locks are simply reused.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(root: PathBuf) -> Shared {
        Shared {
            root,
            log: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            fault_counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an accepted connection and returns its 1-based id.
    pub fn next_conn_id(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    pub fn push(&self, entry: Entry) {
        let mut log = lock(&self.log);
        if log.len() >= MAX_LOG_ENTRIES {
            log.remove(0);
        }
        log.push(entry);
    }

    /// Renders the log, one line per request; optionally clears it.
    pub fn render_log(&self, clear: bool) -> String {
        let mut log = lock(&self.log);
        let mut out = String::new();
        for e in log.iter() {
            let _ = writeln!(
                out,
                "{} {} {} range={} if-range={} tls={} served={}{}{}",
                e.conn_id,
                e.method,
                e.target,
                e.range.as_deref().unwrap_or("-"),
                e.if_range.as_deref().unwrap_or("-"),
                u8::from(e.tls),
                e.served.load(Ordering::SeqCst),
                if e.h2 { " h2=1" } else { "" },
                match &e.recv {
                    Some(r) => format!(" recv={}", r.load(Ordering::SeqCst)),
                    None => String::new(),
                }
            );
        }
        if clear {
            log.clear();
        }
        out
    }

    pub fn render_stats(&self) -> String {
        format!(
            "connections={} requests={}\n",
            self.connections.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst)
        )
    }

    /// Returns whether a `times`-limited fault applies to this request:
    /// true for the first `times` requests carrying `key`.
    pub fn fault_active(&self, key: &str, times: u64) -> bool {
        let mut counters = lock(&self.fault_counters);
        let count = counters.entry(key.to_string()).or_insert(0);
        let active = *count < times;
        *count += 1;
        active
    }
}
