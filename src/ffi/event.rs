//! `ohreq_event`: what a callback receives. Borrowed for the duration of the callback; every
//! getter returns a typed default for NULL.

use super::handle::{Castable, try_ref};
use crate::events::Event;

/// An event passed to a callback; valid only during that callback. Getters:
/// `ohreq_event_kind`, `_task_id`, `_state`, `_index`, `_processed`, `_total`, `_code`.
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
