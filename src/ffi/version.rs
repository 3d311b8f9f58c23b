//! Library version.

use std::ffi::c_char;

/// The library version as "MAJOR.MINOR.PATCH" (static, NUL-terminated). Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
