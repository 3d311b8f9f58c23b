//! Internal reason codes and the `Faults` they report (reference A.8).

/// Why a task is in its state. The numbers are the service's DB values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    Ok = 0,
    TaskSurvivalOneMonth = 1,
    WaitingNetworkOneDay = 2,
    StoppedNewFrontTask = 3,
    RunningTaskMeetLimits = 4,
    UserOperation = 5,
    AppBackgroundOrTerminate = 6,
    NetworkOffline = 7,
    UnsupportedNetworkType = 8,
    BuildClientFailed = 9,
    BuildRequestFailed = 10,
    GetFilesizeFailed = 11,
    ContinuousTaskTimeout = 12,
    ConnectError = 13,
    RequestError = 14,
    UploadFileError = 15,
    RedirectError = 16,
    ProtocolError = 17,
    IoError = 18,
    UnsupportRangeRequest = 19,
    OthersError = 20,
    AccountStopped = 21,
    NetworkChanged = 22,
    Dns = 23,
    Tcp = 24,
    Ssl = 25,
    InsufficientSpace = 26,
    NetworkApp = 27,
    NetworkAccount = 28,
    AppAccount = 29,
    NetworkAppAccount = 30,
    LowSpeed = 31,
}

/// Agent `Faults` values (reference A.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    Disconnected = 0x00,
    Timeout = 0x10,
    Protocol = 0x20,
    Param = 0x30,
    Fsio = 0x40,
    Dns = 0x50,
    Tcp = 0x60,
    Ssl = 0x70,
    Redirect = 0x80,
    LowSpeed = 0x90,
    Others = 0xFF,
}

const ALL: [Reason; 32] = [
    Reason::Ok,
    Reason::TaskSurvivalOneMonth,
    Reason::WaitingNetworkOneDay,
    Reason::StoppedNewFrontTask,
    Reason::RunningTaskMeetLimits,
    Reason::UserOperation,
    Reason::AppBackgroundOrTerminate,
    Reason::NetworkOffline,
    Reason::UnsupportedNetworkType,
    Reason::BuildClientFailed,
    Reason::BuildRequestFailed,
    Reason::GetFilesizeFailed,
    Reason::ContinuousTaskTimeout,
    Reason::ConnectError,
    Reason::RequestError,
    Reason::UploadFileError,
    Reason::RedirectError,
    Reason::ProtocolError,
    Reason::IoError,
    Reason::UnsupportRangeRequest,
    Reason::OthersError,
    Reason::AccountStopped,
    Reason::NetworkChanged,
    Reason::Dns,
    Reason::Tcp,
    Reason::Ssl,
    Reason::InsufficientSpace,
    Reason::NetworkApp,
    Reason::NetworkAccount,
    Reason::AppAccount,
    Reason::NetworkAppAccount,
    Reason::LowSpeed,
];

impl Reason {
    pub fn from_u8(v: u8) -> Option<Reason> {
        ALL.get(v as usize).copied()
    }

    /// The reasons `scheduler::network_allows` gives: a task waits for another network.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Reason::NetworkOffline | Reason::UnsupportedNetworkType
        )
    }

    /// The `Faults` value reported for this reason; `None` for success (TaskInfo.faults null).
    pub fn fault(self) -> Option<Fault> {
        use Reason::*;
        Some(match self {
            Ok => return None,
            NetworkOffline | NetworkApp | NetworkAccount | NetworkAppAccount => Fault::Disconnected,
            BuildClientFailed | BuildRequestFailed => Fault::Param,
            GetFilesizeFailed | IoError => Fault::Fsio,
            ContinuousTaskTimeout => Fault::Timeout,
            ConnectError | Tcp => Fault::Tcp,
            RequestError | ProtocolError | UnsupportRangeRequest => Fault::Protocol,
            RedirectError => Fault::Redirect,
            Dns => Fault::Dns,
            Ssl => Fault::Ssl,
            LowSpeed => Fault::LowSpeed,
            _ => Fault::Others,
        })
    }

    /// The `TaskInfo.reason` text of the real service (typos included).
    pub fn text(self) -> &'static str {
        use Reason::*;
        match self {
            Ok => "Task successful",
            TaskSurvivalOneMonth => "The task has not been completed for a month yet",
            WaitingNetworkOneDay => {
                "The task waiting for network recovery has not been completed for a day yet"
            }
            StoppedNewFrontTask => "Stopped by a new front task",
            RunningTaskMeetLimits => "Too many task in running state",
            UserOperation => "User operation",
            AppBackgroundOrTerminate => "The app is background or terminate",
            NetworkOffline => "NetWork is offline",
            UnsupportedNetworkType => "NetWork type not meet the task config",
            BuildClientFailed => "Build client error",
            BuildRequestFailed => "Build request error",
            GetFilesizeFailed => {
                "Failed because cannot get the file size from the server and the precise is setted true by user"
            }
            ContinuousTaskTimeout => "Continuous processing task time out",
            ConnectError => "Connect error",
            RequestError => "Request error",
            UploadFileError => "There are some files upload failed",
            RedirectError => "Redirect error",
            ProtocolError => "Http protocol error",
            IoError => "Io Error",
            UnsupportRangeRequest => "Range request not supported",
            OthersError => "Some other error occured",
            AccountStopped => "Account stopped",
            NetworkChanged => "Network changed",
            Dns => "DNS error",
            Tcp => "TCP error",
            Ssl => "TSL/SSL error",
            InsufficientSpace => "Insufficient space error",
            NetworkApp => "NetWork is offline and the app is background or terminate",
            NetworkAccount => "NetWork is offline and the account is stopped",
            AppAccount => "The account is stopped and the app is background or terminate",
            NetworkAppAccount => {
                "NetWork is offline and the account is stopped and the app is background or terminate"
            }
            LowSpeed => "Below low speed limit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_their_numbers() {
        for v in 0..32u8 {
            assert_eq!(Reason::from_u8(v).map(|r| r as u8), Some(v));
        }
        assert_eq!(Reason::from_u8(32), None);
    }

    #[test]
    fn faults_follow_the_reference_table() {
        assert_eq!(Reason::Ok.fault(), None);
        assert_eq!(Reason::NetworkOffline.fault(), Some(Fault::Disconnected));
        assert_eq!(Reason::ContinuousTaskTimeout.fault(), Some(Fault::Timeout));
        assert_eq!(Reason::ProtocolError.fault(), Some(Fault::Protocol));
        assert_eq!(Reason::BuildRequestFailed.fault(), Some(Fault::Param));
        assert_eq!(Reason::IoError.fault(), Some(Fault::Fsio));
        assert_eq!(Reason::Dns.fault(), Some(Fault::Dns));
        assert_eq!(Reason::ConnectError.fault(), Some(Fault::Tcp));
        assert_eq!(Reason::Ssl.fault(), Some(Fault::Ssl));
        assert_eq!(Reason::RedirectError.fault(), Some(Fault::Redirect));
        assert_eq!(Reason::LowSpeed.fault(), Some(Fault::LowSpeed));
        assert_eq!(Reason::UserOperation.fault(), Some(Fault::Others));
        assert_eq!(Reason::InsufficientSpace.fault(), Some(Fault::Others));
    }
}
