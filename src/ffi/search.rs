//! `ohreq_search` with its `ohreq_filter` (agent `search`, reference A.3, A.7 `Filter`).

use super::client::ohreq_client;
use super::error::ohreq_code;
use super::handle::{Castable, check_out, into_raw, take, try_mut, try_ref};
use crate::error::{Error, Result};
use crate::task::{Action, Mode, State, now_ms};

/// Search criteria. Methods: `_new`, `_set_before`, `_set_after`, `_set_state`,
/// `_set_action`, `_set_mode`, `_free`. Not thread-safe.
pub struct ohreq_filter {
    _private: [u8; 0],
}

#[derive(Default)]
pub(crate) struct FilterData {
    before: Option<u64>,
    after: Option<u64>,
    state: Option<State>,
    action: Option<Action>,
    mode: Option<Mode>,
}

impl Castable for ohreq_filter {
    type Rust = FilterData;
}

/// A filter matching the last 24 hours of the caller's tasks. Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_filter_new() -> *mut ohreq_filter {
    into_raw::<ohreq_filter>(FilterData::default())
}

/// Frees a filter (NULL is a no-op).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_free(filter: *mut ohreq_filter) {
    // SAFETY: NULL or from `ohreq_filter_new`.
    ffi_value!((), { drop(unsafe { take(filter) }) })
}

unsafe fn with(f: *mut ohreq_filter, op: impl FnOnce(&mut FilterData)) -> Result<()> {
    // SAFETY: caller contract.
    op(unsafe { try_mut(f, "filter")? });
    Ok(())
}

/// Tasks created at or before `ms` (Unix ms; default now). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_set_before(filter: *mut ohreq_filter, ms: u64) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(filter, |f| f.before = Some(ms)) } })
}

/// Tasks created at or after `ms` (Unix ms; default `before` − 24 h). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_set_after(filter: *mut ohreq_filter, ms: u64) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(filter, |f| f.after = Some(ms)) } })
}

/// Only tasks in this OHREQ_STATE_* state. Returns 0 or 401 (not a state value).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_set_state(
    filter: *mut ohreq_filter,
    state: u32,
) -> ohreq_code {
    ffi_code!({
        let s = u8::try_from(state)
            .ok()
            .and_then(State::from_u8)
            .ok_or_else(|| Error::param(format!("state {state} is not an OHREQ_STATE_* value")))?;
        // SAFETY: caller contract.
        unsafe { with(filter, |f| f.state = Some(s)) }
    })
}

/// Only downloads (OHREQ_ACTION_DOWNLOAD) or uploads. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_set_action(
    filter: *mut ohreq_filter,
    action: u32,
) -> ohreq_code {
    ffi_code!({
        let a = u8::try_from(action)
            .ok()
            .and_then(Action::from_u8)
            .ok_or_else(|| {
                Error::param(format!("action {action} is not an OHREQ_ACTION_* value"))
            })?;
        // SAFETY: caller contract.
        unsafe { with(filter, |f| f.action = Some(a)) }
    })
}

/// Only OHREQ_MODE_BACKGROUND or OHREQ_MODE_FOREGROUND tasks. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_filter_set_mode(filter: *mut ohreq_filter, mode: u32) -> ohreq_code {
    ffi_code!({
        let m = match mode {
            0 => Mode::Background,
            1 => Mode::Foreground,
            _ => {
                return Err(Error::param(format!(
                    "mode {mode} is not an OHREQ_MODE_* value"
                )));
            }
        };
        // SAFETY: caller contract.
        unsafe { with(filter, |f| f.mode = Some(m)) }
    })
}

/// Finds the client's tasks matching `filter` (NULL = the defaults), oldest first, writing up
/// to `cap` ids into `ids` and the number found into `*out_n` (which may exceed `cap`: call
/// again with a larger array). `(NULL, 0)` only counts.
/// Returns 0, or 401 (NULL client/out_n, `ids` NULL with `cap` > 0, `before` < `after`),
/// 13400003.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_search(
    client: *mut ohreq_client,
    filter: *const ohreq_filter,
    ids: *mut u32,
    cap: usize,
    out_n: *mut usize,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let c = unsafe { try_ref(client, "client")? };
        unsafe { check_out(out_n, "out_n")? };
        if ids.is_null() && cap > 0 {
            return Err(Error::param("ids is NULL but cap is not 0"));
        }
        let default = FilterData::default();
        let f = if filter.is_null() {
            &default
        } else {
            unsafe { try_ref(filter, "filter")? }
        };
        let before = f.before.unwrap_or_else(now_ms);
        let after = f.after.unwrap_or(before.saturating_sub(24 * 3600 * 1000));
        if before < after {
            return Err(Error::param("filter.before is earlier than filter.after"));
        }
        let found = c
            .inner
            .search(&c.client, after, before, f.state, f.action, f.mode)?;
        for (i, id) in found.iter().take(cap).enumerate() {
            // SAFETY: `ids` holds `cap` elements.
            unsafe { *ids.add(i) = *id };
        }
        // SAFETY: checked non-NULL.
        unsafe { *out_n = found.len() };
        Ok(())
    })
}
