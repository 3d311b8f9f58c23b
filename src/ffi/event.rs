//! `ohreq_event`: what a callback receives. Borrowed for the duration of the callback; every
//! getter returns a typed default for NULL.

use super::handle::{Castable, try_ref};
use super::{ohreq_bytes, ohreq_str};
use crate::events::Event;

/// An event passed to a callback; valid only during that callback. Getters:
/// `ohreq_event_kind`, `_task_id`, `_state`, `_index`, `_processed`, `_total`, `_code`,
/// `_total_processed`, `_total_size`; for responses `_http_status`, `_http_version`,
/// `_http_reason`, `_header_count`, `_header_name`, `_header_value`, `_body`; for legacy
/// upload outcomes `_task_state_count`, `_task_state_path`, `_task_state_code`,
/// `_task_state_message`.
pub struct ohreq_event {
    _private: [u8; 0],
}

impl Castable for ohreq_event {
    type Rust = Event;
}

fn with<T>(ev: *const ohreq_event, default: T, f: impl FnOnce(&Event) -> T) -> T {
    // SAFETY: callers pass the pointer their callback received (or NULL).
    match unsafe { try_ref(ev, "ev") } {
        Ok(e) => f(e),
        Err(_) => default,
    }
}

/// The event kind (OHREQ_EVENT_*); `UINT32_MAX` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_kind(ev: *const ohreq_event) -> u32 {
    ffi_value!(u32::MAX, { with(ev, u32::MAX, |e| e.kind as u32) })
}

/// The id of the task the event is about; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_task_id(ev: *const ohreq_event) -> u32 {
    ffi_value!(0, { with(ev, 0, |e| e.task_id) })
}

/// The task state when the event was produced (OHREQ_STATE_*); `UINT32_MAX` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_state(ev: *const ohreq_event) -> u32 {
    ffi_value!(u32::MAX, {
        with(ev, u32::MAX, |e| e.progress.state as u32)
    })
}

/// Index of the file being transferred (0 for downloads); 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_index(ev: *const ohreq_event) -> u32 {
    ffi_value!(0, { with(ev, 0, |e| e.progress.index) })
}

/// Bytes transferred of the current file (legacy download progress: received bytes);
/// 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_processed(ev: *const ohreq_event) -> u64 {
    ffi_value!(0, { with(ev, 0, |e| e.progress.processed) })
}

/// Size of the current file in bytes, -1 while unknown (legacy download progress: total);
/// -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_total(ev: *const ohreq_event) -> i64 {
    ffi_value!(-1, {
        with(ev, -1, |e| {
            e.progress
                .sizes
                .get(e.progress.index as usize)
                .copied()
                .unwrap_or(-1)
        })
    })
}

/// The event's code: OHREQ_ERROR_* for `fail`, OHREQ_WAITING_* for `wait`, OHREQ_FAULT_*
/// for `faultOccur`, else 0; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_code(ev: *const ohreq_event) -> i32 {
    ffi_value!(-1, { with(ev, -1, |e| e.code) })
}

/// Bytes transferred over all files of the task (legacy upload progress: uploaded size);
/// 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_total_processed(ev: *const ohreq_event) -> u64 {
    ffi_value!(0, { with(ev, 0, |e| e.progress.total_processed) })
}

/// Sum of all file sizes (legacy upload progress: total size), -1 if any is unknown or for
/// NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_total_size(ev: *const ohreq_event) -> i64 {
    ffi_value!(-1, {
        with(ev, -1, |e| {
            if e.progress.sizes.iter().any(|s| *s < 0) {
                -1
            } else {
                e.progress.sizes.iter().sum()
            }
        })
    })
}

/// headerReceive / response: the HTTP status; 0 for other events and NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_http_status(ev: *const ohreq_event) -> u32 {
    ffi_value!(0, {
        with(ev, 0, |e| e.reply.as_ref().map_or(0, |r| r.status))
    })
}

/// headerReceive / response: the protocol version ("HTTP/1.1", "HTTP/2"). Borrowed for the
/// callback; "" for other events and NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_http_version(ev: *const ohreq_event) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.reply
                .as_ref()
                .map_or(ohreq_str::empty(), |r| ohreq_str::from_cstring(&r.version))
        })
    })
}

/// headerReceive / response: the status phrase ("" on HTTP/2). Borrowed for the callback.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_http_reason(ev: *const ohreq_event) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.reply
                .as_ref()
                .map_or(ohreq_str::empty(), |r| ohreq_str::from_cstring(&r.reason))
        })
    })
}

/// headerReceive / response: the number of response headers; 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_header_count(ev: *const ohreq_event) -> usize {
    ffi_value!(0, {
        with(ev, 0, |e| e.reply.as_ref().map_or(0, |r| r.headers.len()))
    })
}

/// The name of response header `i` as sent. Borrowed for the callback; "" when out of range.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_header_name(ev: *const ohreq_event, i: usize) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.reply
                .as_ref()
                .and_then(|r| r.headers.get(i))
                .map_or(ohreq_str::empty(), |h| ohreq_str::from_cstring(&h.0))
        })
    })
}

/// The value of response header `i`. Borrowed for the callback; "" when out of range.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_header_value(ev: *const ohreq_event, i: usize) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.reply
                .as_ref()
                .and_then(|r| r.headers.get(i))
                .map_or(ohreq_str::empty(), |h| ohreq_str::from_cstring(&h.1))
        })
    })
}

/// headerReceive: the response body (at most 1 MiB is kept). Borrowed for the callback;
/// `{NULL, 0}` for other events.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_body(ev: *const ohreq_event) -> ohreq_bytes {
    let none = ohreq_bytes {
        data: std::ptr::null(),
        len: 0,
    };
    ffi_value!(none, {
        with(ev, none, |e| match &e.reply {
            Some(r) if !r.body.is_empty() => ohreq_bytes {
                data: r.body.as_ptr(),
                len: r.body.len(),
            },
            _ => none,
        })
    })
}

/// Legacy upload complete / fail: the number of `TaskState`s (one per file); 0 otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_task_state_count(ev: *const ohreq_event) -> usize {
    ffi_value!(0, {
        with(ev, 0, |e| e.states.as_ref().map_or(0, |s| s.len()))
    })
}

/// `TaskState.path` of file `i`. Borrowed for the callback; "" when out of range.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_task_state_path(ev: *const ohreq_event, i: usize) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.states
                .as_ref()
                .and_then(|s| s.get(i))
                .map_or(ohreq_str::empty(), |s| ohreq_str::from_cstring(&s.path))
        })
    })
}

/// `TaskState.responseCode` of file `i`: 0 on success, else the reason code (17 for an HTTP
/// error status); -1 when out of range.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_task_state_code(ev: *const ohreq_event, i: usize) -> i32 {
    ffi_value!(-1, {
        with(ev, -1, |e| {
            e.states
                .as_ref()
                .and_then(|s| s.get(i))
                .map_or(-1, |s| s.code)
        })
    })
}

/// `TaskState.message` of file `i` ("" on success, "Http protocol error: 500 Internal Server
/// Error", ...). Borrowed for the callback; "" when out of range.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_event_task_state_message(ev: *const ohreq_event, i: usize) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(ev, ohreq_str::empty(), |e| {
            e.states
                .as_ref()
                .and_then(|s| s.get(i))
                .map_or(ohreq_str::empty(), |s| ohreq_str::from_cstring(&s.message))
        })
    })
}
