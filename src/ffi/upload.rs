//! `ohreq_upload_config` (the legacy `UploadConfig`) and `ohreq_upload`.

use super::client::ohreq_client;
use super::error::ohreq_code;
use super::handle::{Castable, into_raw, take, try_mut, try_str};
use super::task::{create_legacy, ohreq_task};
use crate::config::{FileEntry, UploadConfigBuilder};
use crate::error::Result;
use crate::service::Inner;
use std::ffi::c_char;

/// A legacy upload configuration (seed "UploadConfig"). Methods: `_new`, `_set_url`,
/// `_add_header`, `_set_method`, `_add_file`, `_add_data`, `_set_index`, `_set_begins`,
/// `_set_ends`, and the ohreq extensions `_set_timeout`, `_set_min_speed`; `_free`.
/// Not thread-safe.
pub struct ohreq_upload_config {
    _private: [u8; 0],
}

impl Castable for ohreq_upload_config {
    type Rust = UploadConfigBuilder;
}

/// Creates a config with the defaults (POST, index 0, begins 0, ends -1, no files). Free
/// with `ohreq_upload_config_free`; `ohreq_upload` only borrows it. Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_upload_config_new() -> *mut ohreq_upload_config {
    into_raw::<ohreq_upload_config>(UploadConfigBuilder::default())
}

/// Frees a config (NULL is a no-op).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_free(config: *mut ohreq_upload_config) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_upload_config_new`.
        drop(unsafe { take(config) });
    })
}

unsafe fn with(
    config: *mut ohreq_upload_config,
    f: impl FnOnce(&mut UploadConfigBuilder),
) -> Result<()> {
    // SAFETY: caller contract.
    f(unsafe { try_mut(config, "config")? });
    Ok(())
}

/// The upload URL (required; checked by `ohreq_upload`). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_url(
    config: *mut ohreq_upload_config,
    url: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let u = unsafe { try_str(url, "url")? };
        unsafe { with(config, |c| c.url = Some(u)) }
    })
}

/// Adds a request header. A `Content-Type` header makes a PUT body use it; multipart bodies
/// always carry their own. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_add_header(
    config: *mut ohreq_upload_config,
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

/// "POST" (default: one multipart/form-data request with the data fields and every file) or
/// "PUT" (one request per file, the file's bytes as the body), case-insensitive; any other
/// value silently becomes POST, as in the real service. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_method(
    config: *mut ohreq_upload_config,
    method: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let m = unsafe { try_str(method, "method")? };
        unsafe { with(config, |c| c.method = m) }
    })
}

/// Adds a `File`: `uri` is `internal://cache/<path>`, a path relative to the cache dir, or a
/// `dataability://` URI for the client's resolver. `filename` ("" = the file's name), `name`
/// (form field, "" = "file") and `type` ("" = from the extension) may be empty strings but
/// not NULL. Checked by `ohreq_upload`. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_add_file(
    config: *mut ohreq_upload_config,
    filename: *const c_char,
    name: *const c_char,
    uri: *const c_char,
    r#type: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let entry = unsafe {
            FileEntry {
                filename: try_str(filename, "filename")?,
                name: try_str(name, "name")?,
                uri: try_str(uri, "uri")?,
                content_type: try_str(r#type, "type")?,
            }
        };
        unsafe { with(config, |c| c.files.push(entry)) }
    })
}

/// Adds a form field (`RequestData`), sent before the files in a multipart body.
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_add_data(
    config: *mut ohreq_upload_config,
    name: *const c_char,
    value: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let n = unsafe { try_str(name, "name")? };
        let v = unsafe { try_str(value, "value")? };
        unsafe { with(config, |c| c.data.push((n, v))) }
    })
}

/// The first file to upload (API 11 `index`); must be below the number of files (checked
/// by `ohreq_upload`, 401). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_index(
    config: *mut ohreq_upload_config,
    index: i64,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.index = index) } })
}

/// First byte of the file at `index` to send (API 11 `begins`); negative means 0.
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_begins(
    config: *mut ohreq_upload_config,
    begins: i64,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.begins = begins) } })
}

/// Last byte (inclusive) of the file at `index` to send (API 11 `ends`); negative or past
/// the end means to the end. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_ends(
    config: *mut ohreq_upload_config,
    ends: i64,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with(config, |c| c.ends = ends) } })
}

/// ohreq extension: connect timeout per attempt and total running time (each 1..=604800 s),
/// as for downloads. Checked by `ohreq_upload` (401). Returns 0 or 401 (NULL).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_timeout(
    config: *mut ohreq_upload_config,
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

/// ohreq extension: fail when the speed stays below `bytes_per_sec` for `duration_s`
/// seconds (at most 604800; 0 restores the built-in stall rule). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload_config_set_min_speed(
    config: *mut ohreq_upload_config,
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

/// `request.upload` / `uploadFile`: creates a legacy upload from `config` (borrowed) and
/// starts it. Free the handle with `ohreq_task_free` (the upload goes on).
///
/// Returns 0 and writes `*task_out`, or: 401 (NULL, bad url or header, no files, index not
/// below the file count, a uri that escapes the cache dir), 13400002 (a file is missing or
/// a directory, or a `dataability://` uri cannot be resolved), 201 (no INTERNET permission),
/// 21900004 (too many live tasks), 13400003 (service shut down). Event delivery before the
/// first `ohreq_task_on` is as for `ohreq_download`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_upload(
    client: *mut ohreq_client,
    config: *const ohreq_upload_config,
    task_out: *mut *mut ohreq_task,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { create_legacy(client, config, task_out, Inner::create_legacy_upload) } })
}
