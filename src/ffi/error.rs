//! Result codes (OpenHarmony's own numbers), their messages, and the per-thread detail of the
//! last failing call.

use super::handle::write_str_out;
use crate::error::{Code, Error, Result};
use std::cell::RefCell;
use std::ffi::c_char;

/// A result code: 0 or one of OpenHarmony's request error codes. A binding passes it through
/// as `BusinessError.code`.
pub type ohreq_code = i32;

/// Success.
pub const OHREQ_OK: ohreq_code = 0;
/// Permission check failed (e.g. no ohos.permission.INTERNET).
pub const OHREQ_ERR_PERMISSION: ohreq_code = 201;
/// A system API was called by a non-system application.
pub const OHREQ_ERR_NOT_SYSTEM_APP: ohreq_code = 202;
/// Parameter check failed: NULL, bad UTF-8, out-of-range value, bad URL or path, ...
pub const OHREQ_ERR_PARAMETER: ohreq_code = 401;
/// The API is not supported.
pub const OHREQ_ERR_UNSUPPORTED: ohreq_code = 801;
/// File operation error (agent API: target exists; any API: cannot create a file).
pub const OHREQ_ERR_FILE_IO: ohreq_code = 13400001;
/// Bad file path (legacy API: target exists, upload source missing).
pub const OHREQ_ERR_FILE_PATH: ohreq_code = 13400002;
/// Service error: shut down, or its data dir is in use by another service.
pub const OHREQ_ERR_SERVICE: ohreq_code = 13400003;
/// Other error, including a panic caught at the C boundary.
pub const OHREQ_ERR_OTHERS: ohreq_code = 13499999;
/// The application's task queue is full.
pub const OHREQ_ERR_TASK_QUEUE_FULL: ohreq_code = 21900004;
/// Operation with the wrong task mode.
pub const OHREQ_ERR_TASK_MODE: ohreq_code = 21900005;
/// Task removed or not found (also: another application's task).
pub const OHREQ_ERR_TASK_NOT_FOUND: ohreq_code = 21900006;
/// Operation not allowed in the task's state.
pub const OHREQ_ERR_TASK_STATE: ohreq_code = 21900007;
/// Group deleted or not found.
pub const OHREQ_ERR_GROUP_NOT_FOUND: ohreq_code = 21900008;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(e: &Error) {
    LAST_ERROR.with(|l| *l.borrow_mut() = e.detail.clone());
}

/// Converts a boundary result into a code, recording the detail of failures.
pub(crate) fn code_of(r: std::thread::Result<Result<()>>) -> ohreq_code {
    match r {
        Ok(Ok(())) => OHREQ_OK,
        Ok(Err(e)) => {
            set_last_error(&e);
            e.code as i32
        }
        Err(_) => {
            log::error!("ohreq: a panic was caught at the C boundary");
            set_last_error(&Error::new(
                Code::Others,
                "internal error (panic caught at the C boundary)",
            ));
            OHREQ_ERR_OTHERS
        }
    }
}

/// The static message of a code ("The parameters check fails" for 401, ...).
///
/// Returns a NUL-terminated string with static lifetime; never NULL (unknown codes give
/// "Unknown error code", 0 gives "OK"). Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_code_message(code: ohreq_code) -> *const c_char {
    ffi_value!(c"Unknown error code".as_ptr(), {
        if code == OHREQ_OK {
            return c"OK".as_ptr();
        }
        match Code::from_i32(code) {
            Some(c) => match c {
                Code::Permission => c"The permissions check fails",
                Code::NotSystemApp => {
                    c"permission verification failed, application which is not a system application uses system API"
                }
                Code::Param => c"The parameters check fails",
                Code::Unsupported => c"Call unsupported api",
                Code::FileIo => c"Invalid file or file system error",
                Code::FilePath => c"File path not supported or invalid",
                Code::Service => c"Task service ability error",
                Code::Others => c"Others error",
                Code::TaskQueueFull => c"The application task queue is full",
                Code::TaskMode => c"Operation with wrong task mode",
                Code::TaskNotFound => c"Task removed or not found",
                Code::TaskState => c"Operation with wrong task state",
                Code::GroupNotFound => c"Group deleted or not found",
            }
            .as_ptr(),
            None => c"Unknown error code".as_ptr(),
        }
    })
}

/// Copies the detail message of this thread's last failing call ("url exceeds 8192 bytes")
/// into `buf` (NUL-terminated) and its length (without the NUL) into `*out_n`.
///
/// `(buf = NULL, len = 0)` only reports the length. Returns 0, or 401 when `out_n` is NULL or
/// the buffer is too small (then nothing is written and the stored message is kept). "" when
/// no call on this thread has failed.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> ohreq_code {
    let msg = LAST_ERROR.with(|l| l.borrow().clone());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: caller contract as documented.
        unsafe { write_str_out(&msg, buf, len, out_n) }
    }));
    match r {
        Ok(Ok(())) => OHREQ_OK,
        Ok(Err(e)) => e.code as i32,
        Err(_) => OHREQ_ERR_OTHERS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_constants_match_the_rust_codes() {
        for (c, v) in [
            (Code::Permission, OHREQ_ERR_PERMISSION),
            (Code::NotSystemApp, OHREQ_ERR_NOT_SYSTEM_APP),
            (Code::Param, OHREQ_ERR_PARAMETER),
            (Code::Unsupported, OHREQ_ERR_UNSUPPORTED),
            (Code::FileIo, OHREQ_ERR_FILE_IO),
            (Code::FilePath, OHREQ_ERR_FILE_PATH),
            (Code::Service, OHREQ_ERR_SERVICE),
            (Code::Others, OHREQ_ERR_OTHERS),
            (Code::TaskQueueFull, OHREQ_ERR_TASK_QUEUE_FULL),
            (Code::TaskMode, OHREQ_ERR_TASK_MODE),
            (Code::TaskNotFound, OHREQ_ERR_TASK_NOT_FOUND),
            (Code::TaskState, OHREQ_ERR_TASK_STATE),
            (Code::GroupNotFound, OHREQ_ERR_GROUP_NOT_FOUND),
        ] {
            assert_eq!(c as i32, v);
            let m = unsafe { std::ffi::CStr::from_ptr(ohreq_code_message(v)) };
            assert_eq!(m.to_str().unwrap(), c.message());
        }
    }
}
