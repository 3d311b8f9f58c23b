//! Handle casts: every C handle type is an opaque marker mapped to its Rust type here, and
//! raw pointers are cast nowhere else. NULL is a 401 with a message naming the argument.

use crate::error::{Error, Result};
use std::ffi::{CStr, c_char};

/// Maps an opaque C type to the Rust value behind its pointer (always a `Box`).
pub(crate) trait Castable {
    type Rust;
}

pub(crate) fn into_raw<T: Castable>(v: T::Rust) -> *mut T {
    Box::into_raw(Box::new(v)).cast()
}

/// # Safety
/// `p` is NULL or a live pointer returned by `into_raw::<T>`.
pub(crate) unsafe fn try_ref<'a, T: Castable>(p: *const T, name: &str) -> Result<&'a T::Rust> {
    // SAFETY: per the contract, non-NULL pointers came from `into_raw::<T>`.
    unsafe { p.cast::<T::Rust>().as_ref() }.ok_or_else(|| Error::param(format!("{name} is NULL")))
}

/// # Safety
/// As `try_ref`, and no other reference to the value is in use.
pub(crate) unsafe fn try_mut<'a, T: Castable>(p: *mut T, name: &str) -> Result<&'a mut T::Rust> {
    // SAFETY: see above.
    unsafe { p.cast::<T::Rust>().as_mut() }.ok_or_else(|| Error::param(format!("{name} is NULL")))
}

/// Takes ownership back; NULL gives `None`.
///
/// # Safety
/// `p` is NULL or a live pointer from `into_raw::<T>` that is not used again.
pub(crate) unsafe fn take<T: Castable>(p: *mut T) -> Option<Box<T::Rust>> {
    // SAFETY: see above.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p.cast::<T::Rust>()) })
}

/// A NUL-terminated UTF-8 input string, copied.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string.
pub(crate) unsafe fn try_str(p: *const c_char, name: &str) -> Result<String> {
    if p.is_null() {
        return Err(Error::param(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map(str::to_owned)
        .map_err(|_| Error::param(format!("{name} is not valid UTF-8")))
}

/// Writes through an out-pointer, which must not be NULL.
///
/// # Safety
/// `p` is NULL or valid for a write of `V`.
pub(crate) unsafe fn check_out<V>(p: *mut V, name: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::param(format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

/// Copies `s` plus a NUL into a caller buffer. `(NULL, 0)` asks for the length only.
/// A buffer too small is 401; `*out_n` (the length without the NUL) is written on success.
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes; `out_n` is NULL or valid for a write.
pub(crate) unsafe fn write_str_out(
    s: &str,
    buf: *mut c_char,
    cap: usize,
    out_n: *mut usize,
) -> Result<()> {
    // SAFETY: per the contract.
    unsafe { check_out(out_n, "out_n")? };
    if buf.is_null() {
        if cap != 0 {
            return Err(Error::param("buf is NULL but len is not 0"));
        }
    } else {
        if cap < s.len() + 1 {
            return Err(Error::param(format!(
                "buffer too small: {} bytes needed",
                s.len() + 1
            )));
        }
        // SAFETY: `buf` holds at least `s.len() + 1` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
            *buf.add(s.len()) = 0;
        }
    }
    // SAFETY: checked non-NULL above.
    unsafe { *out_n = s.len() };
    Ok(())
}
