//! Every enum value and constant of the reference, with its exact number (reference A.1, A.6),
//! plus ohreq's own event kinds, dispatch modes, network types and log levels.

// ---- Legacy network bits (DownloadConfig.networkType) ----
/// Cellular network allowed (legacy `request.NETWORK_MOBILE`).
pub const OHREQ_NETWORK_MOBILE: u32 = 0x0000_0001;
/// Wi-Fi allowed (legacy `request.NETWORK_WIFI`).
pub const OHREQ_NETWORK_WIFI: u32 = 0x0001_0000;

// ---- Legacy download failure codes (`fail` event, DownloadInfo.failedReason) ----
pub const OHREQ_ERROR_CANNOT_RESUME: i32 = 0;
pub const OHREQ_ERROR_DEVICE_NOT_FOUND: i32 = 1;
pub const OHREQ_ERROR_FILE_ALREADY_EXISTS: i32 = 2;
pub const OHREQ_ERROR_FILE_ERROR: i32 = 3;
pub const OHREQ_ERROR_HTTP_DATA_ERROR: i32 = 4;
pub const OHREQ_ERROR_INSUFFICIENT_SPACE: i32 = 5;
pub const OHREQ_ERROR_TOO_MANY_REDIRECTS: i32 = 6;
pub const OHREQ_ERROR_UNHANDLED_HTTP_CODE: i32 = 7;
pub const OHREQ_ERROR_UNKNOWN: i32 = 8;
pub const OHREQ_ERROR_OFFLINE: i32 = 9;
pub const OHREQ_ERROR_UNSUPPORTED_NETWORK_TYPE: i32 = 10;

// ---- Legacy pause reasons (DownloadInfo.pausedReason) ----
pub const OHREQ_PAUSED_QUEUED_FOR_WIFI: i32 = 0;
pub const OHREQ_PAUSED_WAITING_FOR_NETWORK: i32 = 1;
pub const OHREQ_PAUSED_WAITING_TO_RETRY: i32 = 2;
pub const OHREQ_PAUSED_BY_USER: i32 = 3;
pub const OHREQ_PAUSED_UNKNOWN: i32 = 4;

// ---- Legacy session status (DownloadInfo.status) ----
pub const OHREQ_SESSION_SUCCESSFUL: i32 = 0;
pub const OHREQ_SESSION_RUNNING: i32 = 1;
pub const OHREQ_SESSION_PENDING: i32 = 2;
pub const OHREQ_SESSION_PAUSED: i32 = 3;
pub const OHREQ_SESSION_FAILED: i32 = 4;

// ---- Agent enums ----
pub const OHREQ_ACTION_DOWNLOAD: u32 = 0;
pub const OHREQ_ACTION_UPLOAD: u32 = 1;
pub const OHREQ_MODE_BACKGROUND: u32 = 0;
pub const OHREQ_MODE_FOREGROUND: u32 = 1;
pub const OHREQ_NETWORK_ANY: u32 = 0;
pub const OHREQ_NETWORK_WIFI_ONLY: u32 = 1;
pub const OHREQ_NETWORK_CELLULAR: u32 = 2;
pub const OHREQ_STATE_INITIALIZED: u32 = 0x00;
pub const OHREQ_STATE_WAITING: u32 = 0x10;
pub const OHREQ_STATE_RUNNING: u32 = 0x20;
pub const OHREQ_STATE_RETRYING: u32 = 0x21;
pub const OHREQ_STATE_PAUSED: u32 = 0x30;
pub const OHREQ_STATE_STOPPED: u32 = 0x31;
pub const OHREQ_STATE_COMPLETED: u32 = 0x40;
pub const OHREQ_STATE_FAILED: u32 = 0x41;
pub const OHREQ_STATE_REMOVED: u32 = 0x50;
pub const OHREQ_FAULT_DISCONNECTED: u32 = 0x00;
pub const OHREQ_FAULT_TIMEOUT: u32 = 0x10;
pub const OHREQ_FAULT_PROTOCOL: u32 = 0x20;
pub const OHREQ_FAULT_PARAM: u32 = 0x30;
pub const OHREQ_FAULT_FSIO: u32 = 0x40;
pub const OHREQ_FAULT_DNS: u32 = 0x50;
pub const OHREQ_FAULT_TCP: u32 = 0x60;
pub const OHREQ_FAULT_SSL: u32 = 0x70;
pub const OHREQ_FAULT_REDIRECT: u32 = 0x80;
pub const OHREQ_FAULT_LOW_SPEED: u32 = 0x90;
pub const OHREQ_FAULT_OTHERS: u32 = 0xFF;
pub const OHREQ_WAITING_TASK_QUEUE_FULL: u32 = 0x00;
pub const OHREQ_WAITING_NETWORK_NOT_MATCH: u32 = 0x01;
pub const OHREQ_WAITING_APP_BACKGROUND: u32 = 0x02;
pub const OHREQ_WAITING_USER_INACTIVATED: u32 = 0x03;
pub const OHREQ_VISIBILITY_COMPLETION: u32 = 1;
pub const OHREQ_VISIBILITY_PROGRESS: u32 = 2;

// ---- Event kinds (`ohreq_task_on`) ----
/// Legacy: progress (received bytes, total bytes or -1).
pub const OHREQ_EVENT_PROGRESS: u32 = 0;
/// Legacy: the download completed (the file is at its target).
pub const OHREQ_EVENT_COMPLETE: u32 = 1;
/// Legacy and agent: the task was paused.
pub const OHREQ_EVENT_PAUSE: u32 = 2;
/// Legacy and agent: the task was removed.
pub const OHREQ_EVENT_REMOVE: u32 = 3;
/// Legacy: the task failed; `ohreq_event_code` is an OHREQ_ERROR_* value.
pub const OHREQ_EVENT_FAIL: u32 = 4;
/// Legacy upload: a response head (and body) arrived.
pub const OHREQ_EVENT_HEADER_RECEIVE: u32 = 5;
/// Agent: completed.
pub const OHREQ_EVENT_COMPLETED: u32 = 6;
/// Agent: failed.
pub const OHREQ_EVENT_FAILED: u32 = 7;
/// Agent: resumed.
pub const OHREQ_EVENT_RESUME: u32 = 8;
/// Agent: an HTTP response head.
pub const OHREQ_EVENT_RESPONSE: u32 = 9;
/// Agent: parked in WAITING; `ohreq_event_code` is an OHREQ_WAITING_* value.
pub const OHREQ_EVENT_WAIT: u32 = 10;
/// Agent: a fault with `failed`; `ohreq_event_code` is an OHREQ_FAULT_* value.
pub const OHREQ_EVENT_FAULT_OCCUR: u32 = 11;

// ---- Service options ----
/// Callbacks run on the service's dispatcher thread (default).
pub const OHREQ_DISPATCH_THREAD: u32 = 0;
/// Callbacks run inside `ohreq_service_dispatch` on the embedder's thread.
pub const OHREQ_DISPATCH_POLL: u32 = 1;

// ---- Network types for `ohreq_service_set_network` ----
pub const OHREQ_NET_NONE: u32 = 0;
pub const OHREQ_NET_WIFI: u32 = 1;
pub const OHREQ_NET_CELLULAR: u32 = 2;
pub const OHREQ_NET_OTHER: u32 = 3;

// ---- Limits (reference B.1) ----
/// Longest accepted URL, in UTF-8 bytes.
pub const OHREQ_URL_MAX_BYTES: u32 = 8192;
/// Longest total running time of a task, in seconds (also the default).
pub const OHREQ_MAX_TOTAL_TIMEOUT_S: u64 = 604_800;
/// Default connect timeout per connection attempt, in seconds.
pub const OHREQ_DEFAULT_CONNECT_TIMEOUT_S: u64 = 60;
/// Default cap on concurrently running transfers of a service.
pub const OHREQ_DEFAULT_MAX_RUNNING: u32 = 48;

// ---- Log levels ----
pub const OHREQ_LOG_ERROR: u32 = 1;
pub const OHREQ_LOG_WARN: u32 = 2;
pub const OHREQ_LOG_INFO: u32 = 3;
pub const OHREQ_LOG_DEBUG: u32 = 4;
pub const OHREQ_LOG_TRACE: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Fault, State};

    #[test]
    fn constants_match_the_model() {
        assert_eq!(OHREQ_NETWORK_MOBILE, crate::config::NETWORK_MOBILE);
        assert_eq!(OHREQ_NETWORK_WIFI, crate::config::NETWORK_WIFI);
        assert_eq!(OHREQ_STATE_REMOVED, State::Removed as u32);
        assert_eq!(OHREQ_STATE_RETRYING, State::Retrying as u32);
        assert_eq!(OHREQ_FAULT_LOW_SPEED, Fault::LowSpeed as u32);
        assert_eq!(OHREQ_FAULT_OTHERS, Fault::Others as u32);
        assert_eq!(
            OHREQ_EVENT_FAULT_OCCUR,
            crate::events::EventKind::FaultOccur as u32
        );
        assert_eq!(
            OHREQ_SESSION_FAILED,
            crate::task::legacy_status(State::Failed)
        );
        assert_eq!(OHREQ_URL_MAX_BYTES as usize, crate::sandbox::URL_MAX_BYTES);
        assert_eq!(
            OHREQ_MAX_TOTAL_TIMEOUT_S,
            crate::config::MAX_TOTAL_TIMEOUT_S
        );
        assert_eq!(
            OHREQ_DEFAULT_CONNECT_TIMEOUT_S,
            crate::config::DEFAULT_CONNECT_TIMEOUT_S
        );
        assert_eq!(
            OHREQ_DEFAULT_MAX_RUNNING as usize,
            crate::scheduler::DEFAULT_MAX_RUNNING
        );
    }
}
