//! The task model: ids, the state machine's states, reasons and faults, progress, and the
//! legacy `DownloadInfo` mapping (reference A.6, A.8, C.1, C.14).

mod legacy;
mod reason;

pub use legacy::{DownloadInfo, legacy_fail_code, legacy_paused_reason, legacy_status};
pub use reason::{Fault, Reason};

use std::time::{SystemTime, UNIX_EPOCH};

/// A task id: a u32, shown to apps as its decimal string.
pub type TaskId = u32;

/// Parses a tid string as the service does: anything that is not a u32 in decimal is
/// "not found" (reference C.13).
pub fn parse_tid(s: &str) -> Option<TaskId> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    Download = 0,
    Upload = 1,
}

impl Action {
    pub fn from_u8(v: u8) -> Option<Action> {
        match v {
            0 => Some(Action::Download),
            1 => Some(Action::Upload),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Background = 0,
    Foreground = 1,
}

/// Which API created the task: the legacy API 9 or `request.agent` (API 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Version {
    Api9 = 1,
    Api10 = 2,
}

/// Network a task may use (agent `Network`; legacy `networkType` maps onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Network {
    Any = 0,
    Wifi = 1,
    Cellular = 2,
}

impl Network {
    /// Values other than 0/1/2 silently become ANY (reference A.5).
    pub fn from_u32_lenient(v: u32) -> Network {
        match v {
            1 => Network::Wifi,
            2 => Network::Cellular,
            _ => Network::Any,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    Initialized = 0x00,
    Waiting = 0x10,
    Running = 0x20,
    Retrying = 0x21,
    Paused = 0x30,
    Stopped = 0x31,
    Completed = 0x40,
    Failed = 0x41,
    Removed = 0x50,
}

impl State {
    pub fn from_u8(v: u8) -> Option<State> {
        Some(match v {
            0x00 => State::Initialized,
            0x10 => State::Waiting,
            0x20 => State::Running,
            0x21 => State::Retrying,
            0x30 => State::Paused,
            0x31 => State::Stopped,
            0x40 => State::Completed,
            0x41 => State::Failed,
            0x50 => State::Removed,
            _ => return None,
        })
    }

    /// A task in one of these states holds (or waits for) a transfer slot.
    pub fn is_active(self) -> bool {
        matches!(self, State::Waiting | State::Running | State::Retrying)
    }

    /// The task's run has ended for good; a later `start` may begin a new one.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Completed | State::Failed | State::Removed | State::Stopped
        )
    }
}

/// Progress of a task (reference A.7, C.9). Sizes are -1 while unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub state: State,
    pub index: u32,
    /// Bytes of the current file.
    pub processed: u64,
    /// Bytes over all files (legacy upload progress).
    pub total_processed: u64,
    pub sizes: Vec<i64>,
}

impl Progress {
    pub fn new(files: usize) -> Progress {
        Progress {
            state: State::Initialized,
            index: 0,
            processed: 0,
            total_processed: 0,
            sizes: vec![-1; files.max(1)],
        }
    }
}

/// One task as the service knows it: who owns it, what to do, and how far it got.
/// Persisted whole by `store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub uid: u64,
    pub bundle: String,
    pub config: std::sync::Arc<crate::config::TaskConfig>,
    pub state: State,
    pub reason: Reason,
    pub ctime: u64,
    pub mtime: u64,
    /// Network retries in the current run.
    pub tries: u32,
    pub mime_type: String,
    pub progress: Progress,
    /// Last response headers, names lower-cased.
    pub extras: Vec<(String, String)>,
    /// Validators of the resource being resumed (from the last response).
    pub etag: String,
    pub last_modified: String,
    /// Bytes of the part file known to be on disk (synced): the resume point.
    pub durable_offset: u64,
    /// Diagnostics of the last run: HTTP status and CURLcode (0 when none).
    pub http_status: u32,
    pub curl_code: i32,
    pub detail: String,
    /// Upload: the outcome of each file (legacy `TaskState`), filled as responses arrive.
    pub file_states: Vec<FileState>,
}

/// How one file of an upload ended: the reason code (0 = success) and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    pub reason: Reason,
    pub message: String,
}

impl TaskRecord {
    /// A new task in INITIALIZED; upload sizes are the files' (range-adjusted) lengths.
    pub fn new(
        id: TaskId,
        uid: u64,
        bundle: &str,
        config: crate::config::TaskConfig,
        now: u64,
    ) -> TaskRecord {
        // Files before `index` are not part of the upload; the others are pending.
        let file_states = (0..config.files.len())
            .map(|i| FileState {
                reason: if i < config.index as usize {
                    Reason::Ok
                } else {
                    Reason::UploadFileError
                },
                message: if i < config.index as usize {
                    String::new()
                } else {
                    "not uploaded".into()
                },
            })
            .collect();
        let mut progress = Progress::new(config.files.len());
        for (i, f) in config.files.iter().enumerate() {
            let len = std::fs::metadata(&f.path).map_or(0, |m| m.len());
            progress.sizes[i] = upload_span(&config, i, len).1 as i64;
        }
        TaskRecord {
            id,
            uid,
            bundle: bundle.to_owned(),
            config: std::sync::Arc::new(config),
            state: State::Initialized,
            reason: Reason::Ok,
            ctime: now,
            mtime: now,
            tries: 0,
            mime_type: String::new(),
            progress,
            extras: Vec::new(),
            etag: String::new(),
            last_modified: String::new(),
            durable_offset: 0,
            http_status: 0,
            curl_code: 0,
            detail: String::new(),
            file_states,
        }
    }

    /// The part file a download writes before it is published at the target.
    pub fn part_path(&self) -> std::path::PathBuf {
        part_path_of(&self.config.target)
    }
}

/// The bytes of upload file `i` (of length `len`) to send, as (offset, length): `begins` and
/// inclusive `ends` apply to the file at `index` only; `ends` < 0 or ≥ size means to the end,
/// `begins` > `ends` the whole file (reference C.8).
pub fn upload_span(config: &crate::config::TaskConfig, i: usize, len: u64) -> (u64, u64) {
    if i != config.index as usize {
        return (0, len);
    }
    let end = if config.ends < 0 || config.ends as u64 >= len {
        len
    } else {
        config.ends as u64 + 1
    };
    let begin = config.begins;
    if begin >= end {
        (0, len)
    } else {
        (begin, end - begin)
    }
}

/// `<target>.ohreq-part` (DESIGN §6).
pub fn part_path_of(target: &std::path::Path) -> std::path::PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".ohreq-part");
    std::path::PathBuf::from(s)
}

/// Milliseconds since the Unix epoch, as TaskInfo's ctime/mtime.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_spans() {
        let mut c = crate::config::TaskConfig::defaults(Action::Upload, Version::Api9);
        c.index = 1;
        c.begins = 5;
        c.ends = 10;
        assert_eq!(upload_span(&c, 0, 100), (0, 100));
        assert_eq!(upload_span(&c, 1, 100), (5, 6)); // ends is inclusive
        c.ends = -1;
        assert_eq!(upload_span(&c, 1, 100), (5, 95));
        c.ends = 500;
        assert_eq!(upload_span(&c, 1, 100), (5, 95));
        c.begins = 50;
        c.ends = 10;
        assert_eq!(upload_span(&c, 1, 100), (0, 100)); // begins > ends: whole file
    }

    #[test]
    fn tid_parsing_follows_u32_rule() {
        assert_eq!(parse_tid("123"), Some(123));
        assert_eq!(parse_tid("4294967295"), Some(u32::MAX));
        assert_eq!(parse_tid("4294967296"), None);
        assert_eq!(parse_tid(""), None);
        assert_eq!(parse_tid("-1"), None);
        assert_eq!(parse_tid("12a"), None);
        assert_eq!(parse_tid(" 12"), None);
    }

    #[test]
    fn state_values_are_the_reference_values() {
        for (s, v) in [
            (State::Initialized, 0x00),
            (State::Waiting, 0x10),
            (State::Running, 0x20),
            (State::Retrying, 0x21),
            (State::Paused, 0x30),
            (State::Stopped, 0x31),
            (State::Completed, 0x40),
            (State::Failed, 0x41),
            (State::Removed, 0x50),
        ] {
            assert_eq!(s as u8, v);
            assert_eq!(State::from_u8(v), Some(s));
        }
        assert_eq!(State::from_u8(0x60), None);
    }

    #[test]
    fn network_values_outside_range_become_any() {
        assert_eq!(Network::from_u32_lenient(0), Network::Any);
        assert_eq!(Network::from_u32_lenient(1), Network::Wifi);
        assert_eq!(Network::from_u32_lenient(2), Network::Cellular);
        assert_eq!(Network::from_u32_lenient(3), Network::Any);
    }
}
