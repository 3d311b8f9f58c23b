//! `ohreq_service`: one instance of the transfer service, and its options.

use super::error::ohreq_code;
use super::handle::{Castable, check_out, into_raw, take, try_mut, try_ref, try_str};
use crate::error::{Code, Error};
use crate::events::DispatchMode;
use crate::logging::{self, FreeFn, LogFn, LogSink};
use crate::scheduler::{NetKind, NetworkState};
use crate::service::{Service, ServiceOptions};
use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Options for `ohreq_service_new`. Methods: `_new`, `_set_data_dir`, `_set_dispatch_mode`,
/// `_set_max_running`, `_set_user_agent`, `_set_ca_bundle`, `_set_restart_unfinished`,
/// `_set_log`, `_free`.
/// Not thread-safe: use from one thread at a time.
pub struct ohreq_service_options {
    _private: [u8; 0],
}

/// One transfer service: engine thread, task store (`<data_dir>/ohreq.db`), scheduler and
/// event queue. Thread-safe: every function taking a `ohreq_service *` may be called from any
/// thread, except `ohreq_service_free`, which must not race other calls on it.
pub struct ohreq_service {
    _private: [u8; 0],
}

pub(crate) struct OptionsData {
    data_dir: Option<PathBuf>,
    dispatch: DispatchMode,
    max_running: usize,
    user_agent: Option<String>,
    ca_bundle: Option<PathBuf>,
    restart_unfinished: bool,
    log: Option<Arc<LogSink>>,
}

pub(crate) struct ServiceData {
    pub svc: Service,
    log_key: u64,
}

impl Castable for ohreq_service_options {
    type Rust = OptionsData;
}
impl Castable for ohreq_service {
    type Rust = ServiceData;
}

/// Log callback: `level` is an OHREQ_LOG_* value; `msg` (NUL-terminated, `len` bytes) is
/// borrowed for the call. May be called on any library thread, possibly concurrently: it must
/// be thread-safe and must not call back into the library.
pub type ohreq_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, msg: *const c_char, len: usize)>;
/// Releases a userdata pointer the library held; called exactly once.
pub type ohreq_userdata_free = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Creates service options with the defaults: no data dir (required), dispatch on a library
/// thread, 48 concurrent transfers, user agent "ohreq/<version>", system trust store,
/// unfinished tasks restarted, no log.
/// Free with `ohreq_service_options_free`. Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_service_options_new() -> *mut ohreq_service_options {
    into_raw::<ohreq_service_options>(OptionsData {
        data_dir: None,
        dispatch: DispatchMode::Thread,
        max_running: crate::scheduler::DEFAULT_MAX_RUNNING,
        user_agent: None,
        ca_bundle: None,
        restart_unfinished: true,
        log: None,
    })
}

/// Frees options (NULL is a no-op). A log userdata not taken by a service is released here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_free(opts: *mut ohreq_service_options) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_service_options_new`.
        drop(unsafe { take(opts) });
    })
}

/// Sets the directory that holds the task store (created if missing). Required.
/// Returns 0, or 401 (NULL, bad UTF-8, empty or relative path).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_data_dir(
    opts: *mut ohreq_service_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        let p = unsafe { try_str(path, "path")? };
        if p.is_empty() || !p.starts_with('/') {
            return Err(Error::param("data dir must be an absolute path"));
        }
        o.data_dir = Some(p.into());
        Ok(())
    })
}

/// Chooses where callbacks run: `OHREQ_DISPATCH_THREAD` (a library thread, default) or
/// `OHREQ_DISPATCH_POLL` (inside `ohreq_service_dispatch`). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_dispatch_mode(
    opts: *mut ohreq_service_options,
    mode: u32,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        o.dispatch = match mode {
            0 => DispatchMode::Thread,
            1 => DispatchMode::Poll,
            _ => {
                return Err(Error::param(format!(
                    "dispatch mode {mode} is not OHREQ_DISPATCH_THREAD or OHREQ_DISPATCH_POLL"
                )));
            }
        };
        Ok(())
    })
}

/// Caps concurrently running transfers (1..=1024). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_max_running(
    opts: *mut ohreq_service_options,
    n: u32,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        if !(1..=1024).contains(&n) {
            return Err(Error::param(format!("max running {n} is outside 1..=1024")));
        }
        o.max_running = n as usize;
        Ok(())
    })
}

/// What happens at `ohreq_service_new` to the store's unfinished tasks (those a stopped or
/// killed process left running or waiting). `true` (the default, as the system service
/// does): they are queued again and resume from their last checkpoint. `false`: they come
/// back PAUSED (reason APP_BACKGROUND_OR_TERMINATE; legacy pausedReason PAUSED_UNKNOWN) and
/// send nothing until the embedder resumes them (`ohreq_task_restore`) or removes them,
/// for an embedder that decides after a restart what is still wanted. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_restart_unfinished(
    opts: *mut ohreq_service_options,
    restart: bool,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        o.restart_unfinished = restart;
        Ok(())
    })
}

/// Sets the User-Agent sent with every request. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_user_agent(
    opts: *mut ohreq_service_options,
    ua: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        let ua = unsafe { try_str(ua, "ua")? };
        crate::config::check_header("User-Agent", &ua)?;
        o.user_agent = Some(ua);
        Ok(())
    })
}

/// Sets the CA bundle (PEM file) for clients that bring no CA file of their own; the default
/// is libcurl's built-in trust store. Returns 0 or 401 (NULL, bad UTF-8, not a readable file).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_ca_bundle(
    opts: *mut ohreq_service_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        let p = unsafe { try_str(path, "path")? };
        if !std::path::Path::new(&p).is_file() {
            return Err(Error::param(format!(
                "CA bundle {p} is not a readable file"
            )));
        }
        o.ca_bundle = Some(p.into());
        Ok(())
    })
}

/// Routes the library's log records with level ≤ `max_level` (OHREQ_LOG_*) to `cb`.
/// `userdata_free` (may be NULL) runs once, after the last call of `cb`: when the options
/// and every service created from them are freed. Replaces an earlier log setting.
/// Returns 0 or 401 (NULL opts or cb, bad level).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_options_set_log(
    opts: *mut ohreq_service_options,
    cb: ohreq_log_callback,
    userdata: *mut c_void,
    userdata_free: ohreq_userdata_free,
    max_level: u32,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_mut(opts, "opts")? };
        let cb: LogFn = cb.ok_or_else(|| Error::param("cb is NULL"))?;
        if !(1..=5).contains(&max_level) {
            return Err(Error::param(format!(
                "log level {max_level} is outside 1..=5"
            )));
        }
        let free: Option<FreeFn> = userdata_free;
        o.log = Some(Arc::new(LogSink {
            cb,
            userdata,
            free,
            max_level,
        }));
        Ok(())
    })
}

static LOG_KEYS: AtomicU64 = AtomicU64::new(1);

/// Creates a service from `opts` (borrowed; may be freed afterwards): opens or creates the
/// store, restores its tasks and resumes unfinished transfers. Free with `ohreq_service_free`.
///
/// Returns 0 and writes `*service_out`, or 401 (NULL, no data dir) or 13400003 (data dir in
/// use by another live service, store unusable, threads could not start).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_new(
    opts: *const ohreq_service_options,
    service_out: *mut *mut ohreq_service,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let o = unsafe { try_ref(opts, "opts")? };
        unsafe { check_out(service_out, "service_out")? };
        let dir = o
            .data_dir
            .clone()
            .ok_or_else(|| Error::param("options have no data dir"))?;
        let mut so = ServiceOptions::new(dir);
        so.dispatch = o.dispatch;
        so.max_running = o.max_running;
        if let Some(ua) = &o.user_agent {
            so.user_agent = ua.clone();
        }
        so.ca_bundle = o.ca_bundle.clone();
        so.restart_unfinished = o.restart_unfinished;
        let log_key = LOG_KEYS.fetch_add(1, Ordering::Relaxed);
        if let Some(sink) = &o.log {
            logging::register(log_key, sink.clone());
        }
        match Service::new(so) {
            Ok(svc) => {
                // SAFETY: checked non-NULL.
                unsafe { *service_out = into_raw::<ohreq_service>(ServiceData { svc, log_key }) };
                Ok(())
            }
            Err(e) => {
                logging::unregister(log_key);
                Err(e)
            }
        }
    })
}

/// Shuts a service down and frees it (NULL is a no-op): running transfers stop with their
/// progress checkpointed (they resume when a service opens the same data dir), queued events
/// are delivered (thread mode), the store is flushed. Client and task handles of this service
/// stay valid to free; their other calls then return 13400003.
/// Called from inside a callback, the shutdown finishes on a helper thread after it returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_free(service: *mut ohreq_service) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_service_new`, not used again.
        let Some(data) = (unsafe { take(service) }) else {
            return;
        };
        let finish = move || {
            let key = data.log_key;
            drop(data);
            logging::unregister(key);
        };
        if crate::events::in_callback() {
            std::thread::spawn(finish);
        } else {
            finish();
        }
    })
}

/// Tells the service about the device network (the embedder's connectivity monitor).
/// `type` is OHREQ_NET_NONE/WIFI/CELLULAR/OTHER. Running tasks the new network does not allow
/// go to WAITING and resume when it does. The default until called: online, Wi-Fi, unmetered,
/// not roaming. Returns 0, 401 (NULL, bad type) or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_set_network(
    service: *mut ohreq_service,
    online: bool,
    r#type: u32,
    metered: bool,
    roaming: bool,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let s = unsafe { try_ref(service, "service")? };
        let kind = NetKind::from_u32(r#type).ok_or_else(|| {
            Error::param(format!(
                "network type {} is not an OHREQ_NET_* value",
                r#type
            ))
        })?;
        s.svc.inner.set_network(NetworkState {
            online,
            kind,
            metered,
            roaming,
        });
        Ok(())
    })
}

/// In poll mode: a descriptor that is readable while events wait; call
/// `ohreq_service_dispatch` when it is. Owned by the service (do not close). -1 in thread
/// mode or for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_event_fd(service: *const ohreq_service) -> i32 {
    ffi_value!(-1, {
        // SAFETY: caller contract.
        match unsafe { try_ref(service, "service") } {
            Ok(s) => s.svc.inner.hub.raw_fd(),
            Err(_) => -1,
        }
    })
}

/// In poll mode: runs the callbacks of the events queued now, on the calling thread, and
/// writes how many events were taken to `*delivered_out` (may be NULL). Events queued while
/// it runs wait for the next call (the descriptor stays readable).
/// Returns 0, 401 (NULL service, or the service is in thread mode) or 13499999 when called
/// from inside a callback (nested dispatch is refused).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_service_dispatch(
    service: *mut ohreq_service,
    delivered_out: *mut usize,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let s = unsafe { try_ref(service, "service")? };
        if s.svc.inner.hub.mode() != DispatchMode::Poll {
            return Err(Error::param("the service is not in poll mode"));
        }
        if crate::events::in_callback() {
            return Err(Error::new(
                Code::Others,
                "ohreq_service_dispatch called from inside a callback",
            ));
        }
        let n = s.svc.inner.hub.dispatch_pending();
        if !delivered_out.is_null() {
            // SAFETY: non-NULL out-pointer per the contract.
            unsafe { *delivered_out = n };
        }
        Ok(())
    })
}
