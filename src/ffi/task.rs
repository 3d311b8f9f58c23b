//! `ohreq_task`: a handle on a task (not the task itself), the legacy download calls, and
//! event subscriptions.

use super::client::ohreq_client;
use super::config::ohreq_download_config;
use super::error::ohreq_code;
use super::event::ohreq_event;
use super::handle::{Castable, check_out, into_raw, take, try_ref, write_str_out};
use super::info::{InfoData, ohreq_download_info};
use super::service::ohreq_userdata_free;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventKind, Listener};
use crate::service::{Client, Inner, legacy_info};
use crate::task::{TaskId, Version};
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// A handle on one task. Freeing it drops its subscriptions; the task keeps running and can
/// be opened again (`ohreq_task_open`). Calls may come from any thread, but
/// `ohreq_task_free` must not race other calls on the same handle.
pub struct ohreq_task {
    _private: [u8; 0],
}

const TASK_MAGIC: u32 = 0x6f68_7471;

pub(crate) struct TaskData {
    magic: u32,
    inner: Arc<Inner>,
    client: Arc<Client>,
    id: TaskId,
    handle: u64,
    version: Version,
}

impl Castable for ohreq_task {
    type Rust = TaskData;
}

impl Drop for TaskData {
    fn drop(&mut self) {
        self.magic = 0;
    }
}

/// An event callback: `ev` is borrowed for the duration of the call (read it with the
/// `ohreq_event_*` getters). Runs on the service's dispatcher thread, or inside
/// `ohreq_service_dispatch` in poll mode; never concurrently for one service, never under a
/// library lock. It may call back into the library (even `ohreq_task_off` / `_free`).
pub type ohreq_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, ev: *const ohreq_event)>;

struct CListener {
    cb: unsafe extern "C" fn(*mut c_void, *const ohreq_event),
    userdata: *mut c_void,
    free: ohreq_userdata_free,
}

// SAFETY: callbacks are documented to run on the dispatcher thread; the embedder's userdata
// is theirs to make safe for that.
unsafe impl Send for CListener {}
unsafe impl Sync for CListener {}

impl Listener for CListener {
    fn call(&self, ev: &Event) {
        let p: *const ohreq_event = (ev as *const Event).cast();
        // A panic cannot cross the C callback; a C callback cannot unwind into us.
        // SAFETY: the embedder's callback with its userdata and a borrowed event.
        unsafe { (self.cb)(self.userdata, p) };
    }
    fn key(&self) -> (usize, usize) {
        (self.cb as usize, self.userdata as usize)
    }
}

impl Drop for CListener {
    fn drop(&mut self) {
        if let Some(f) = self.free {
            // SAFETY: released exactly once, after the last call.
            unsafe { f(self.userdata) };
        }
    }
}

/// # Safety
/// `task` is NULL or a live task handle.
unsafe fn task_ref<'a>(task: *const ohreq_task) -> Result<&'a TaskData> {
    // SAFETY: caller contract.
    let t = unsafe { try_ref(task, "task")? };
    debug_assert_eq!(t.magic, TASK_MAGIC, "ohreq_task used after ohreq_task_free");
    Ok(t)
}

fn new_handle(
    inner: &Arc<Inner>,
    client: &Arc<Client>,
    id: TaskId,
    version: Version,
) -> *mut ohreq_task {
    inner.hub.handle_opened(id);
    adopt_handle(inner, client, id, version)
}

/// A handle whose hub registration was already made (by the create call).
fn adopt_handle(
    inner: &Arc<Inner>,
    client: &Arc<Client>,
    id: TaskId,
    version: Version,
) -> *mut ohreq_task {
    into_raw::<ohreq_task>(TaskData {
        magic: TASK_MAGIC,
        inner: inner.clone(),
        client: client.clone(),
        id,
        handle: inner.new_handle_id(),
        version,
    })
}

/// `request.download` / `downloadFile`: creates a legacy download from `config` (borrowed)
/// and starts it. Free the handle with `ohreq_task_free` (the download goes on).
///
/// Returns 0 and writes `*task_out`, or: 401 (NULL, bad url, bad header, bad or escaping
/// file path), 13400002 (the target file exists, or another live task is downloading it),
/// 13400001 (the target is a directory or cannot be created), 201 (no INTERNET permission),
/// 21900004 (the app has too many live tasks), 13400003 (service shut down).
/// On failure nothing is created on disk. The task is durable (it survives a killed
/// process) when this returns. It starts at once: in poll mode its events wait in the queue
/// while the handle is open, so callbacks registered before the next
/// `ohreq_service_dispatch` miss nothing; in thread mode an event may be delivered before
/// you subscribe — read `ohreq_task_get_download_info` after `ohreq_task_on` to catch up.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download(
    client: *mut ohreq_client,
    config: *const ohreq_download_config,
    task_out: *mut *mut ohreq_task,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { create_legacy(client, config, task_out, Inner::create_legacy_download) } })
}

/// The body of `ohreq_download` / `ohreq_upload`: checks the pointers, creates the task with
/// `create`, and hands out a handle on it.
///
/// # Safety
/// The pointers are NULL or valid, as the calling functions document.
pub(crate) unsafe fn create_legacy<C: Castable>(
    client: *mut ohreq_client,
    config: *const C,
    task_out: *mut *mut ohreq_task,
    create: impl FnOnce(&Inner, &Client, &C::Rust) -> Result<TaskId>,
) -> Result<()> {
    // SAFETY: caller contract.
    let c = unsafe { try_ref(client, "client")? };
    let cfg = unsafe { try_ref(config, "config")? };
    unsafe { check_out(task_out, "task_out")? };
    let id = create(&c.inner, &c.client, cfg)?;
    // SAFETY: checked non-NULL.
    unsafe { *task_out = adopt_handle(&c.inner, &c.client, id, Version::Api9) };
    Ok(())
}

/// ohreq extension: opens a new handle on an existing task of this client by id (legacy or
/// agent, no token rule), e.g. to follow downloads restored after a restart.
/// Returns 0 and writes `*task_out`, or 401 (NULL), 21900006 (no such task for this client)
/// or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_open(
    client: *mut ohreq_client,
    id: u32,
    task_out: *mut *mut ohreq_task,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let c = unsafe { try_ref(client, "client")? };
        unsafe { check_out(task_out, "task_out")? };
        let rec = c.inner.record(&c.client, id)?;
        // SAFETY: checked non-NULL.
        unsafe { *task_out = new_handle(&c.inner, &c.client, id, rec.config.version) };
        Ok(())
    })
}

/// The task id (legacy `downloadId`; agent `tid` is its decimal string). 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_id(task: *const ohreq_task) -> u32 {
    // SAFETY: caller contract.
    ffi_value!(0, { unsafe { task_ref(task) }.map_or(0, |t| t.id) })
}

/// Subscribes `cb` to events of `kind` (OHREQ_EVENT_*) on this handle. The same
/// (kind, cb, userdata) twice is stored once. The library owns `userdata` from a successful
/// call on: `userdata_free` (may be NULL) runs exactly once, after the last call of `cb`
/// (at `ohreq_task_off` or `ohreq_task_free`). On failure nothing is kept.
/// Legacy tasks accept the legacy kinds (PROGRESS .. HEADER_RECEIVE).
/// Nothing is missed between creating a task and subscribing: while a handle on the task is
/// open, the last event of each kind that found no listener of its kind is kept, and the
/// first listener of that kind gets it (before the task's later events). A kind that was
/// heard is not replayed to later listeners.
/// Returns 0, 401 (NULL task or cb, unknown kind or one this task never emits) or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_on(
    task: *mut ohreq_task,
    kind: u32,
    cb: ohreq_event_callback,
    userdata: *mut c_void,
    userdata_free: ohreq_userdata_free,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        let cb = cb.ok_or_else(|| Error::param("cb is NULL"))?;
        let k = event_kind(t, kind)?;
        t.inner.check_open()?;
        let key = (cb as usize, userdata as usize);
        t.inner.hub.on(t.id, t.handle, k, key, || {
            Box::new(CListener {
                cb,
                userdata,
                free: userdata_free,
            })
        });
        Ok(())
    })
}

fn event_kind(t: &TaskData, kind: u32) -> Result<EventKind> {
    let k = EventKind::from_u32(kind)
        .ok_or_else(|| Error::param(format!("event kind {kind} is unknown")))?;
    let legacy = t.version == Version::Api9;
    let ok = match k {
        EventKind::Pause | EventKind::Remove | EventKind::Progress => true,
        _ => k.is_legacy() == legacy,
    };
    if !ok {
        return Err(Error::param(format!(
            "event kind {kind} is not emitted by this task"
        )));
    }
    Ok(k)
}

/// Unsubscribes: `cb` with `userdata` from `kind`, or every callback of `kind` when `cb` is
/// NULL. Removing a callback that is not subscribed is a no-op. When it returns, the removed
/// callbacks are not running on another thread and never run again; called from inside a
/// removed callback, that callback finishes first. Their `userdata_free` runs before this
/// returns, or when that running callback returns.
/// Returns 0 or 401 (NULL task, unknown kind).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_off(
    task: *mut ohreq_task,
    kind: u32,
    cb: ohreq_event_callback,
    userdata: *mut c_void,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        let k = event_kind(t, kind)?;
        let key = cb.map(|cb| (cb as usize, userdata as usize));
        t.inner.hub.off(t.id, t.handle, Some(k), key);
        Ok(())
    })
}

/// Frees a handle (NULL is a no-op): its subscriptions end as with `ohreq_task_off` (a
/// barrier: no callback of this handle runs after it returns, except the one it is called
/// from, which finishes). The task itself is not affected.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_free(task: *mut ohreq_task) {
    ffi_value!((), {
        // SAFETY: NULL or a live handle, not used again.
        if let Some(t) = unsafe { take(task) } {
            debug_assert_eq!(t.magic, TASK_MAGIC, "ohreq_task freed twice");
            t.inner.hub.off(t.id, t.handle, None, None);
            t.inner.hub.handle_closed(t.id);
        }
    })
}

fn legacy_only(t: &TaskData, op: &str) -> Result<()> {
    if t.version == Version::Api9 {
        Ok(())
    } else {
        Err(Error::new(
            Code::TaskState,
            format!("{op} is a legacy API call; this is an API 10 task"),
        ))
    }
}

/// Legacy `suspend` (`pause`): stops the transfer and keeps what was downloaded; emits
/// `pause`. Returns 0, 401 (NULL), 201 (no INTERNET), 21900006 (not this client's task, or
/// gone from the store), 21900007 (not waiting or running: removed included, reference C.1)
/// or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_suspend(task: *mut ohreq_task) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        legacy_only(t, "suspend")?;
        need_internet(&t.client)?;
        t.inner.pause(&t.client, t.id)
    })
}

/// Legacy `restore` (`resume`): continues a suspended download where it stopped (Range +
/// If-Range; a changed resource restarts from zero). Returns 0, 401, 201, 21900006,
/// 21900007 (not paused) or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_restore(task: *mut ohreq_task) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        legacy_only(t, "restore")?;
        t.inner.resume(&t.client, t.id)
    })
}

/// Legacy `delete` (`remove`): aborts the task from any state, deletes its partial data (a
/// completed file stays), emits `remove`. Returns 0, 401, 201, 21900006 (already removed or
/// not found) or 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_delete(task: *mut ohreq_task) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        legacy_only(t, "delete")?;
        need_internet(&t.client)?;
        t.inner.remove(&t.client, t.id)
    })
}

fn need_internet(c: &Client) -> Result<()> {
    if c.has(crate::service::PERMISSION_INTERNET) {
        Ok(())
    } else {
        Err(Error::new(
            Code::Permission,
            "ohos.permission.INTERNET is required",
        ))
    }
}

/// Legacy `getTaskInfo` (`query`): a snapshot of the task as `DownloadInfo`. Free it with
/// `ohreq_download_info_free`. A removed task (until retention drops it) reads as
/// SESSION_FAILED with failed_reason -1: the C.14 table has no row for REMOVED, and it did
/// not fail. Returns 0 and writes `*info_out`, or 401, 21900006, 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_get_download_info(
    task: *const ohreq_task,
    info_out: *mut *mut ohreq_download_info,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        unsafe { check_out(info_out, "info_out")? };
        let rec = t.inner.record(&t.client, t.id)?;
        let data = InfoData::new(legacy_info(&rec), &rec);
        // SAFETY: checked non-NULL.
        unsafe { *info_out = into_raw::<ohreq_download_info>(data) };
        Ok(())
    })
}

/// Legacy `getTaskMimeType` (`queryMimeType`): the server's Content-Type ("" before the
/// response), copied into `buf` with a NUL; `*out_n` gets its length. `(NULL, 0)` asks for
/// the length only. Returns 0, 401 (NULL task or out_n, buffer too small), 201, 21900006,
/// 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_task_get_mime_type(
    task: *const ohreq_task,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { task_ref(task)? };
        let mime = t.inner.legacy_mime_type(&t.client, t.id)?;
        unsafe { write_str_out(&mime, buf, len, out_n) }
    })
}
