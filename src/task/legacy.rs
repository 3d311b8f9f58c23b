//! The legacy (API 6-9) view of a task: `DownloadInfo`, SESSION_*/PAUSED_*/ERROR_* values
//! (reference A.1, C.14, with DESIGN §9's specific fail codes).

use super::{Reason, State, TaskId};

pub(crate) const SESSION_SUCCESSFUL: i32 = 0;
pub(crate) const SESSION_RUNNING: i32 = 1;
pub(crate) const SESSION_PENDING: i32 = 2;
pub(crate) const SESSION_PAUSED: i32 = 3;
pub(crate) const SESSION_FAILED: i32 = 4;

pub(crate) const PAUSED_WAITING_FOR_NETWORK: i32 = 1;
pub(crate) const PAUSED_BY_USER: i32 = 3;
pub(crate) const PAUSED_UNKNOWN: i32 = 4;

pub(crate) const ERROR_CANNOT_RESUME: i32 = 0;
pub(crate) const ERROR_FILE_ALREADY_EXISTS: i32 = 2;
pub(crate) const ERROR_FILE_ERROR: i32 = 3;
pub(crate) const ERROR_HTTP_DATA_ERROR: i32 = 4;
pub(crate) const ERROR_INSUFFICIENT_SPACE: i32 = 5;
pub(crate) const ERROR_TOO_MANY_REDIRECTS: i32 = 6;
pub(crate) const ERROR_UNHANDLED_HTTP_CODE: i32 = 7;
pub(crate) const ERROR_UNKNOWN: i32 = 8;
pub(crate) const ERROR_OFFLINE: i32 = 9;
pub(crate) const ERROR_UNSUPPORTED_NETWORK_TYPE: i32 = 10;

/// `DownloadInfo.status` for a task state (C.14).
pub fn legacy_status(state: State) -> i32 {
    match state {
        State::Initialized => SESSION_PENDING,
        State::Waiting | State::Paused => SESSION_PAUSED,
        State::Running | State::Retrying => SESSION_RUNNING,
        State::Completed => SESSION_SUCCESSFUL,
        State::Stopped | State::Failed | State::Removed => SESSION_FAILED,
    }
}

/// The ERROR_* code of a failed legacy task, also the `fail` event's argument.
///
/// The reference maps most transport failures to ERROR_UNKNOWN; DESIGN §9 names the cause
/// where a constant exists for it.
pub fn legacy_fail_code(reason: Reason) -> i32 {
    use Reason::*;
    match reason {
        Ok => ERROR_FILE_ALREADY_EXISTS, // (sic) the reference maps REASON_OK to 2
        IoError => ERROR_FILE_ERROR,
        InsufficientSpace => ERROR_INSUFFICIENT_SPACE,
        RedirectError => ERROR_TOO_MANY_REDIRECTS,
        ProtocolError => ERROR_UNHANDLED_HTTP_CODE,
        NetworkOffline | NetworkApp | NetworkAccount | NetworkAppAccount => ERROR_OFFLINE,
        UnsupportedNetworkType => ERROR_UNSUPPORTED_NETWORK_TYPE,
        UnsupportRangeRequest => ERROR_CANNOT_RESUME,
        ConnectError
        | RequestError
        | Dns
        | Tcp
        | Ssl
        | OthersError
        | LowSpeed
        | ContinuousTaskTimeout => ERROR_HTTP_DATA_ERROR,
        _ => ERROR_UNKNOWN,
    }
}

/// `DownloadInfo.pausedReason`: -1 unless the task is WAITING or PAUSED.
pub fn legacy_paused_reason(state: State, reason: Reason) -> i32 {
    match (state, reason) {
        (State::Waiting, Reason::NetworkOffline | Reason::UnsupportedNetworkType) => {
            PAUSED_WAITING_FOR_NETWORK
        }
        (State::Paused, Reason::UserOperation) => PAUSED_BY_USER,
        (State::Waiting | State::Paused, _) => PAUSED_UNKNOWN,
        _ => -1,
    }
}

/// The 11 fields of the legacy `DownloadInfo` (seed "DownloadInfo").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadInfo {
    pub download_id: TaskId,
    /// ERROR_* when FAILED, else -1.
    pub failed_reason: i32,
    pub file_name: String,
    pub file_path: String,
    /// PAUSED_* when WAITING/PAUSED, else -1.
    pub paused_reason: i32,
    pub status: i32,
    pub target_uri: String,
    pub download_title: String,
    /// -1 while unknown.
    pub download_total_bytes: i64,
    pub description: String,
    pub downloaded_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_is_c14() {
        assert_eq!(legacy_status(State::Initialized), SESSION_PENDING);
        assert_eq!(legacy_status(State::Waiting), SESSION_PAUSED);
        assert_eq!(legacy_status(State::Running), SESSION_RUNNING);
        assert_eq!(legacy_status(State::Retrying), SESSION_RUNNING);
        assert_eq!(legacy_status(State::Paused), SESSION_PAUSED);
        assert_eq!(legacy_status(State::Completed), SESSION_SUCCESSFUL);
        assert_eq!(legacy_status(State::Stopped), SESSION_FAILED);
        assert_eq!(legacy_status(State::Failed), SESSION_FAILED);
    }

    #[test]
    fn fail_codes_name_the_cause() {
        assert_eq!(legacy_fail_code(Reason::IoError), ERROR_FILE_ERROR);
        assert_eq!(
            legacy_fail_code(Reason::InsufficientSpace),
            ERROR_INSUFFICIENT_SPACE
        );
        assert_eq!(
            legacy_fail_code(Reason::RedirectError),
            ERROR_TOO_MANY_REDIRECTS
        );
        assert_eq!(
            legacy_fail_code(Reason::ProtocolError),
            ERROR_UNHANDLED_HTTP_CODE
        );
        assert_eq!(legacy_fail_code(Reason::NetworkOffline), ERROR_OFFLINE);
        assert_eq!(
            legacy_fail_code(Reason::UnsupportedNetworkType),
            ERROR_UNSUPPORTED_NETWORK_TYPE
        );
        assert_eq!(
            legacy_fail_code(Reason::UnsupportRangeRequest),
            ERROR_CANNOT_RESUME
        );
        assert_eq!(legacy_fail_code(Reason::Ssl), ERROR_HTTP_DATA_ERROR);
        assert_eq!(legacy_fail_code(Reason::GetFilesizeFailed), ERROR_UNKNOWN);
        assert_eq!(legacy_fail_code(Reason::Ok), ERROR_FILE_ALREADY_EXISTS);
    }

    #[test]
    fn paused_reason_only_for_waiting_or_paused() {
        assert_eq!(
            legacy_paused_reason(State::Paused, Reason::UserOperation),
            PAUSED_BY_USER
        );
        assert_eq!(
            legacy_paused_reason(State::Waiting, Reason::NetworkOffline),
            PAUSED_WAITING_FOR_NETWORK
        );
        assert_eq!(
            legacy_paused_reason(State::Waiting, Reason::RunningTaskMeetLimits),
            PAUSED_UNKNOWN
        );
        assert_eq!(legacy_paused_reason(State::Running, Reason::Ok), -1);
    }
}
