//! The panic boundary: every exported body runs inside one of these macros (used inside a
//! normal fn so cbindgen sees the fn). A panic becomes 13499999 and is logged; it never
//! unwinds into C.

/// For functions returning `ohreq_code`: the body yields `Result<()>`.
macro_rules! ffi_code {
    ($body:block) => {{
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || -> $crate::error::Result<()> { $body },
        ));
        $crate::ffi::error::code_of(r)
    }};
}

/// For infallible getters: a panic yields `$default`.
macro_rules! ffi_value {
    ($default:expr, $body:block) => {{
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => {
                log::error!("ohreq: a panic was caught at the C boundary");
                $default
            }
        }
    }};
}
