//! The error every layer returns: an OpenHarmony result code plus a detail message.
//!
//! The codes are the service's own numbers (reference B.5) so a binding can pass them
//! straight through as `BusinessError.code`.

use std::fmt;

/// OpenHarmony request error codes (reference B.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Code {
    Permission = 201,
    NotSystemApp = 202,
    Param = 401,
    Unsupported = 801,
    FileIo = 13400001,
    FilePath = 13400002,
    Service = 13400003,
    Others = 13499999,
    TaskQueueFull = 21900004,
    TaskMode = 21900005,
    TaskNotFound = 21900006,
    TaskState = 21900007,
    GroupNotFound = 21900008,
}

impl Code {
    /// The static message prefix of the real service for this code.
    pub fn message(self) -> &'static str {
        match self {
            Code::Permission => "The permissions check fails",
            Code::NotSystemApp => {
                "permission verification failed, application which is not a system application uses system API"
            }
            Code::Param => "The parameters check fails",
            Code::Unsupported => "Call unsupported api",
            Code::FileIo => "Invalid file or file system error",
            Code::FilePath => "File path not supported or invalid",
            Code::Service => "Task service ability error",
            Code::Others => "Others error",
            Code::TaskQueueFull => "The application task queue is full",
            Code::TaskMode => "Operation with wrong task mode",
            Code::TaskNotFound => "Task removed or not found",
            Code::TaskState => "Operation with wrong task state",
            Code::GroupNotFound => "Group deleted or not found",
        }
    }

    pub fn from_i32(v: i32) -> Option<Code> {
        Some(match v {
            201 => Code::Permission,
            202 => Code::NotSystemApp,
            401 => Code::Param,
            801 => Code::Unsupported,
            13400001 => Code::FileIo,
            13400002 => Code::FilePath,
            13400003 => Code::Service,
            13499999 => Code::Others,
            21900004 => Code::TaskQueueFull,
            21900005 => Code::TaskMode,
            21900006 => Code::TaskNotFound,
            21900007 => Code::TaskState,
            21900008 => Code::GroupNotFound,
            _ => return None,
        })
    }
}

/// A failed call: the code the caller sees and a sentence saying what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub detail: String,
}

impl Error {
    pub fn new(code: Code, detail: impl Into<String>) -> Error {
        Error {
            code,
            detail: detail.into(),
        }
    }
    pub fn param(detail: impl Into<String>) -> Error {
        Error::new(Code::Param, detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The real service joins prefix and detail with three spaces.
        write!(f, "{}   {}", self.code.message(), self.detail)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
