//! `ohreq_download_info`: the legacy `DownloadInfo` snapshot, plus diagnostics.

use super::handle::{Castable, take, try_ref};
use super::ohreq_str;
use crate::task::{DownloadInfo, TaskRecord};
use std::ffi::CString;

/// A snapshot of a legacy download (seed "DownloadInfo"), owned by the caller: free with
/// `ohreq_download_info_free`. Getters: `_id`, `_failed_reason`, `_file_name`, `_file_path`,
/// `_paused_reason`, `_status`, `_target_uri`, `_title`, `_total_bytes`, `_description`,
/// `_downloaded_bytes`, and diagnostics `_http_status`, `_curl_code`, `_detail`.
/// Immutable: safe to read from several threads.
pub struct ohreq_download_info {
    _private: [u8; 0],
}

pub(crate) struct InfoData {
    info: DownloadInfo,
    file_name: CString,
    file_path: CString,
    target_uri: CString,
    title: CString,
    description: CString,
    detail: CString,
    http_status: u32,
    curl_code: i32,
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

impl InfoData {
    pub(crate) fn new(info: DownloadInfo, rec: &TaskRecord) -> InfoData {
        InfoData {
            file_name: cstring(&info.file_name),
            file_path: cstring(&info.file_path),
            target_uri: cstring(&info.target_uri),
            title: cstring(&info.download_title),
            description: cstring(&info.description),
            detail: cstring(&rec.detail),
            http_status: rec.http_status,
            curl_code: rec.curl_code,
            info,
        }
    }
}

impl Castable for ohreq_download_info {
    type Rust = InfoData;
}

fn with<T>(p: *const ohreq_download_info, default: T, f: impl FnOnce(&InfoData) -> T) -> T {
    // SAFETY: callers pass NULL or a live info from `ohreq_task_get_download_info`.
    match unsafe { try_ref(p, "info") } {
        Ok(i) => f(i),
        Err(_) => default,
    }
}

/// Frees an info (NULL is a no-op); strings borrowed from it become invalid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_download_info_free(info: *mut ohreq_download_info) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_task_get_download_info`.
        drop(unsafe { take(info) });
    })
}

/// `downloadId`: the task id; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_id(info: *const ohreq_download_info) -> u32 {
    ffi_value!(0, { with(info, 0, |i| i.info.download_id) })
}

/// `failedReason`: an OHREQ_ERROR_* value when the status is OHREQ_SESSION_FAILED, else -1.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_failed_reason(info: *const ohreq_download_info) -> i32 {
    ffi_value!(-1, { with(info, -1, |i| i.info.failed_reason) })
}

/// `pausedReason`: an OHREQ_PAUSED_* value when the status is OHREQ_SESSION_PAUSED, else -1.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_paused_reason(info: *const ohreq_download_info) -> i32 {
    ffi_value!(-1, { with(info, -1, |i| i.info.paused_reason) })
}

/// `status`: an OHREQ_SESSION_* value; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_status(info: *const ohreq_download_info) -> i32 {
    ffi_value!(-1, { with(info, -1, |i| i.info.status) })
}

/// `downloadTotalBytes`: the file size, -1 while unknown (and for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_total_bytes(info: *const ohreq_download_info) -> i64 {
    ffi_value!(-1, { with(info, -1, |i| i.info.download_total_bytes) })
}

/// `downloadedBytes`; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_downloaded_bytes(info: *const ohreq_download_info) -> u64 {
    ffi_value!(0, { with(info, 0, |i| i.info.downloaded_bytes) })
}

/// `fileName`: the target's file name. Borrowed until the info is freed; "" for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_file_name(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.file_name)
        })
    })
}

/// `filePath`: the target's absolute path. Borrowed until the info is freed; "" for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_file_path(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.file_path)
        })
    })
}

/// `targetURI`: the download URL. Borrowed until the info is freed; "" for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_target_uri(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.target_uri)
        })
    })
}

/// `downloadTitle`. Borrowed until the info is freed; "" for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_title(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.title)
        })
    })
}

/// `description`. Borrowed until the info is freed; "" for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_description(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.description)
        })
    })
}

/// Diagnostics: the last HTTP status of the task's last run (0 if none); 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_http_status(info: *const ohreq_download_info) -> u32 {
    ffi_value!(0, { with(info, 0, |i| i.http_status) })
}

/// Diagnostics: libcurl's CURLcode of the last failure (0 if none); 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_curl_code(info: *const ohreq_download_info) -> i32 {
    ffi_value!(0, { with(info, 0, |i| i.curl_code) })
}

/// Diagnostics: a sentence on the last failure ("Http protocol error: 404 Not Found", curl's
/// error text, ...), "" if none. Borrowed until the info is freed.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_download_info_detail(info: *const ohreq_download_info) -> ohreq_str {
    ffi_value!(ohreq_str::empty(), {
        with(info, ohreq_str::empty(), |i| {
            ohreq_str::from_cstring(&i.detail)
        })
    })
}
