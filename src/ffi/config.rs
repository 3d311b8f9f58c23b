//! `ohreq_download_config`: the legacy `DownloadConfig` builder. Setters only check encoding;
//! `ohreq_download` checks everything in the reference's order.

use super::error::ohreq_code;
use super::handle::{Castable, into_raw, take, try_mut, try_str};
use crate::config::DownloadConfigBuilder;
use crate::error::Result;
use std::ffi::c_char;

/// A legacy download configuration (seed "DownloadConfig"). Methods: `_new`, `_set_url`,
/// `_add_header`, `_set_enable_metered`, `_set_enable_roaming`, `_set_description`,
/// `_set_network_type`, `_set_file_path`, `_set_title`, `_set_background`, and the ohreq
/// extensions `_set_timeout`, `_set_min_speed`, `_set_sha256`; `_free`. Not thread-safe.
pub struct ohreq_download_config {
    _private: [u8; 0],
}

impl Castable for ohreq_download_config {
    type Rust = DownloadConfigBuilder;
}

/// Creates a config with the seed's defaults (no url yet). Free with
/// `ohreq_download_config_free`; `ohreq_download` only borrows it. Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_config_new() -> *mut ohreq_download_config {
    into_raw::<ohreq_download_config>(DownloadConfigBuilder::default())
}

/// Frees a config (NULL is a no-op).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_free(config: *mut ohreq_download_config) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_download_config_new`.
        drop(unsafe { take(config) });
    })
}

unsafe fn with(
    config: *mut ohreq_download_config,
    f: impl FnOnce(&mut DownloadConfigBuilder),
) -> Result<()> {
    // SAFETY: caller contract.
    f(unsafe { try_mut(config, "config")? });
    Ok(())
}

/// The resource URL (required; http:// or https://, at most 8192 bytes — checked by
/// `ohreq_download`). Returns 0 or 401 (NULL, bad UTF-8).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_url(
    config: *mut ohreq_download_config,
    url: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let u = unsafe { try_str(url, "url")? };
        unsafe { with(config, |c| c.url = Some(u)) }
    })
}

/// Adds a request header (sent as given; a name already added is sent again). Returns 0 or
/// 401 (NULL, bad UTF-8).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_add_header(
    config: *mut ohreq_download_config,
    name: *const c_char,
    value: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let n = unsafe { try_str(name, "name")? };
        let v = unsafe { try_str(value, "value")? };
        unsafe { with(config, |c| c.headers.push((n, v))) }
    })
}

/// Whether the download may run on a metered network (default false). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_enable_metered(
    config: *mut ohreq_download_config,
    enable: bool,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.enable_metered = enable) } })
}

/// Whether the download may run while roaming (default false). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_enable_roaming(
    config: *mut ohreq_download_config,
    enable: bool,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.enable_roaming = enable) } })
}

/// The session description (default ""). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_description(
    config: *mut ohreq_download_config,
    text: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { try_str(text, "text")? };
        unsafe { with(config, |c| c.description = t) }
    })
}

/// The allowed network: exactly OHREQ_NETWORK_MOBILE (cellular) or OHREQ_NETWORK_WIFI; any
/// other value, their OR included, means any network (as the real service). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_network_type(
    config: *mut ohreq_download_config,
    network_type: u32,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.network_type = network_type) } })
}

/// Where to save: a name or relative path in the cache dir ("a.bin", "dir/a.bin"; "dir/"
/// keeps the URL's file name), `internal://cache/...`, or an absolute path inside the
/// client's dirs. Default: the cache dir plus the URL's last segment; "",
/// `internal://cache/` (the seed's stated default) and a path of only spaces give the
/// default too (spaces around the path are trimmed). Checked by `ohreq_download`: a path
/// that leaves the client's dirs is 401, one naming a directory ("." or a root) 13400001.
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_file_path(
    config: *mut ohreq_download_config,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = unsafe { try_str(path, "path")? };
        unsafe { with(config, |c| c.file_path = Some(p)) }
    })
}

/// The session title (default "download"). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_title(
    config: *mut ohreq_download_config,
    title: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let t = unsafe { try_str(title, "title")? };
        unsafe { with(config, |c| c.title = Some(t)) }
    })
}

/// Whether the task is a background session (shows a notification; default false).
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_background(
    config: *mut ohreq_download_config,
    background: bool,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.background = background) } })
}

/// ohreq extension (the agent Config's `timeout`): connect timeout per attempt
/// (1..=604800 s, default 60) and total running time (1..=604800 s, default 604800). Checked
/// by `ohreq_download` (401). Returns 0 or 401 (NULL).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_timeout(
    config: *mut ohreq_download_config,
    connect_s: u64,
    total_s: u64,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        unsafe {
            with(config, |c| {
                c.limits.connect_timeout_s = connect_s;
                c.limits.total_timeout_s = total_s;
            })
        }
    })
}

/// ohreq extension (the agent Config's `minSpeed`): fail with a low-speed error when the
/// average speed stays below `bytes_per_sec` for `duration_s` seconds (at most 604800,
/// checked by `ohreq_download`: 401); 0 in either restores the built-in rule (below 1 B/s
/// for 60 s). Returns 0 or 401 (NULL).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_min_speed(
    config: *mut ohreq_download_config,
    bytes_per_sec: u64,
    duration_s: u64,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        unsafe {
            with(config, |c| {
                c.limits.min_speed = bytes_per_sec;
                c.limits.min_speed_duration_s = duration_s;
            })
        }
    })
}

/// ohreq extension: the expected SHA-256 of the whole file as 64 hex digits. The download is
/// checked before it is published: a mismatch fails the task (OHREQ_ERROR_HTTP_DATA_ERROR,
/// detail "sha256 mismatch ...") and neither the target nor the part file is left.
/// The format is checked by `ohreq_download` (401). Returns 0 or 401 (NULL, bad UTF-8).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_config_set_sha256(
    config: *mut ohreq_download_config,
    hex: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let h = unsafe { try_str(hex, "hex")? };
        unsafe { with(config, |c| c.sha256 = Some(h)) }
    })
}
