#![allow(non_camel_case_types)]
// The safety contract of every exported fn is the C header's: pointers are NULL or live
// handles of the named type, buffers hold the stated length.
#![allow(clippy::missing_safety_doc)]
//! Every `extern "C"` item. This layer converts and checks arguments and nothing else: the
//! logic lives in `service` and below. One file per C object family.

#[macro_use]
mod panic;
mod handle;

pub mod client;
pub mod config;
pub mod constants;
pub mod error;
pub mod event;
pub mod info;
pub mod search;
pub mod service;
pub mod task;
pub mod upload;
pub mod version;

use std::ffi::c_char;

/// A borrowed UTF-8 string: `data` points at `len` bytes followed by a NUL. Its lifetime is
/// stated by the function that returns it. An empty string has `len` 0 (never a NULL `data`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ohreq_str {
    pub data: *const c_char,
    pub len: usize,
}

/// Borrowed bytes: `len` bytes at `data` (`data` may be NULL when `len` is 0). Its lifetime
/// is stated by the function that returns it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ohreq_bytes {
    pub data: *const u8,
    pub len: usize,
}

impl ohreq_str {
    pub(crate) fn from_cstring(s: &std::ffi::CString) -> ohreq_str {
        ohreq_str {
            data: s.as_ptr(),
            len: s.as_bytes().len(),
        }
    }

    pub(crate) fn empty() -> ohreq_str {
        ohreq_str {
            data: c"".as_ptr(),
            len: 0,
        }
    }
}
