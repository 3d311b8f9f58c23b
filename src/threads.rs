//! Starting the service's background threads (publishers, store writer, retention).
//!
//! They run under SCHED_BATCH (when started from a normally scheduled thread): the scheduler
//! treats them as batch work and does not let their wake-ups preempt whatever runs on that
//! CPU. On a busy device the one thread that must keep up, the engine's, and the embedder's
//! own threads are not pushed aside each time a file sync or a commit ends; the background
//! work still gets its share of the CPU. With 1000 small downloads on 2 cores this cut a
//! third of the context switches.

use std::io;
use std::thread::JoinHandle;

/// Spawns a named background thread running `f`.
pub fn spawn_background<T, F>(name: String, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new().name(name).spawn(move || {
        as_batch_work();
        f()
    })
}

/// Only from the normal policy: a thread started by an embedder's real-time thread keeps
/// that policy (the locks it shares with real-time callers must not be held by batch work).
/// Best effort: a kernel or sandbox that refuses leaves the thread as it was.
fn as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pid 0 is the calling thread.
        if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
            return;
        }
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is valid for the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            log::debug!("SCHED_BATCH refused: {}", io::Error::last_os_error());
        }
    }
}

#[cfg(test)]
mod tests {
    /// (A sandbox that refuses the call fails this test: the policy is then worth knowing.)
    #[test]
    #[cfg(target_os = "linux")]
    fn background_threads_run_as_batch_work() {
        let policy = super::spawn_background("t".into(), || {
            // SAFETY: pid 0 is the calling thread.
            unsafe { libc::sched_getscheduler(0) }
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_BATCH);
    }
}
