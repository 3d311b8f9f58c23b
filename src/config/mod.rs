//! Validated task configurations. Callers fill a builder (the C setters); `validate` runs the
//! reference's checks in its order and yields a `TaskConfig` that the service persists.

mod headers;
mod legacy_download;
mod legacy_upload;

pub use headers::check_header;
pub use legacy_download::{DownloadConfigBuilder, validate_legacy_download};
#[cfg(test)]
pub(crate) use legacy_download::{NETWORK_MOBILE, NETWORK_WIFI};
pub use legacy_upload::{FileEntry, UploadConfigBuilder, UriResolver, validate_legacy_upload};

use crate::task::{Action, Mode, Network, Version};
use std::path::PathBuf;

/// Default connect timeout per connection attempt (reference A.5 `timeout`).
pub(crate) const DEFAULT_CONNECT_TIMEOUT_S: u64 = 60;
/// Default and maximum total (accumulated running) time.
pub(crate) const MAX_TOTAL_TIMEOUT_S: u64 = 604_800;
/// The built-in stall rule: a download body below 1 B/s for 60 s fails with LOW_SPEED.
pub(crate) const STALL_SPEED: u64 = 1;
pub(crate) const STALL_SECONDS: u64 = 60;

/// The URL (required, reference rules) and the header checks every config starts with.
pub(crate) fn check_request<'a>(
    url: Option<&'a str>,
    headers: &[(String, String)],
    policy: &crate::sandbox::CleartextPolicy,
) -> crate::error::Result<&'a str> {
    let url = url.ok_or_else(|| crate::error::Error::param("url is required"))?;
    crate::sandbox::check_url(url, policy)?;
    for (k, v) in headers {
        check_header(k, v)?;
    }
    Ok(url)
}

/// The timeout and minimum-speed settings every legacy builder carries (the agent Config's
/// `timeout` and `minSpeed`, ohreq extensions for the legacy API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub connect_timeout_s: u64,
    pub total_timeout_s: u64,
    pub min_speed: u64,
    pub min_speed_duration_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout_s: DEFAULT_CONNECT_TIMEOUT_S,
            total_timeout_s: MAX_TOTAL_TIMEOUT_S,
            min_speed: 0,
            min_speed_duration_s: 0,
        }
    }
}

impl Limits {
    /// The agent `timeout` rules: connect ≥ 1 s, total within 1..=604800 s.
    pub(crate) fn check(&self) -> crate::error::Result<()> {
        // No upper bound in the reference; one past the longest total run could never
        // matter, and libcurl takes these as a C long.
        if !(1..=MAX_TOTAL_TIMEOUT_S).contains(&self.connect_timeout_s) {
            return Err(crate::error::Error::param(format!(
                "connection timeout must be within 1..={MAX_TOTAL_TIMEOUT_S} seconds"
            )));
        }
        if !(1..=MAX_TOTAL_TIMEOUT_S).contains(&self.total_timeout_s) {
            return Err(crate::error::Error::param(format!(
                "total timeout must be within 1..={MAX_TOTAL_TIMEOUT_S} seconds"
            )));
        }
        if self.min_speed_duration_s > MAX_TOTAL_TIMEOUT_S {
            return Err(crate::error::Error::param(format!(
                "minimum speed duration must be within 0..={MAX_TOTAL_TIMEOUT_S} seconds"
            )));
        }
        Ok(())
    }

    pub(crate) fn apply(&self, c: &mut TaskConfig) {
        c.connect_timeout_s = self.connect_timeout_s;
        c.total_timeout_s = self.total_timeout_s;
        c.min_speed = self.min_speed;
        c.min_speed_duration_s = self.min_speed_duration_s;
    }
}

/// Everything a task needs to run, whatever API created it. Persisted as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskConfig {
    pub action: Action,
    pub version: Version,
    pub mode: Mode,
    pub url: String,
    pub title: String,
    pub description: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// Download request body (agent `data` string); empty for none.
    pub data: String,
    /// Download target (resolved, absolute).
    pub target: PathBuf,
    pub network: Network,
    pub metered: bool,
    pub roaming: bool,
    pub retry: bool,
    pub redirect: bool,
    pub background: bool,
    pub precise: bool,
    pub overwrite: bool,
    pub begins: u64,
    /// Inclusive end of a user range; -1 for none.
    pub ends: i64,
    pub priority: u32,
    pub token: String,
    pub proxy: String,
    pub connect_timeout_s: u64,
    pub total_timeout_s: u64,
    /// LOW_SPEED rule: below `min_speed` B/s for `min_speed_duration_s` seconds; 0 disables.
    pub min_speed: u64,
    pub min_speed_duration_s: u64,
    /// Speed cap in B/s; 0 for none.
    pub max_speed: u64,
    /// Extra trust anchors (PEM file) from the creating client; empty for the default.
    pub ca_file: String,
    /// Upload: the files, in order, and the form fields sent before them.
    pub files: Vec<UploadFile>,
    pub form: Vec<(String, String)>,
    /// Upload: all files in one multipart/form-data request (else one raw request per file).
    pub multipart: bool,
    /// Upload: the first file to send; `begins`/`ends` apply to it.
    pub index: u32,
    /// Download: the expected SHA-256 (lowercase hex) of the whole file; empty for none.
    pub sha256: String,
}

/// A file of an upload task, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFile {
    pub path: PathBuf,
    /// Form field name (default "file").
    pub name: String,
    /// `filename` in the part header (default: the file's name).
    pub filename: String,
    pub content_type: String,
}

impl TaskConfig {
    /// A config with the service defaults for the given action and API version.
    pub fn defaults(action: Action, version: Version) -> TaskConfig {
        TaskConfig {
            action,
            version,
            mode: Mode::Background,
            url: String::new(),
            title: match action {
                Action::Download => "download".into(),
                Action::Upload => "upload".into(),
            },
            description: String::new(),
            method: match (action, version) {
                (Action::Download, _) => "GET".into(),
                (Action::Upload, Version::Api9) => "POST".into(),
                (Action::Upload, Version::Api10) => "PUT".into(),
            },
            headers: Vec::new(),
            data: String::new(),
            target: PathBuf::new(),
            network: Network::Any,
            metered: false,
            roaming: version == Version::Api10,
            retry: true,
            redirect: true,
            background: false,
            precise: false,
            overwrite: false,
            begins: 0,
            ends: -1,
            priority: 0,
            token: "null".into(),
            proxy: String::new(),
            connect_timeout_s: DEFAULT_CONNECT_TIMEOUT_S,
            total_timeout_s: MAX_TOTAL_TIMEOUT_S,
            min_speed: 0,
            min_speed_duration_s: 0,
            max_speed: 0,
            ca_file: String::new(),
            files: Vec::new(),
            form: Vec::new(),
            multipart: false,
            index: 0,
            sha256: String::new(),
        }
    }
}
