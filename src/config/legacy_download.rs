//! The legacy `DownloadConfig` (seed "DownloadConfig", reference A.2): builder and checks.

use super::TaskConfig;
use crate::error::{Error, Result};
use crate::sandbox::{CleartextPolicy, Sandbox};
use crate::task::{Action, Network, Version};

/// Legacy `networkType` bits (reference A.1).
pub(crate) const NETWORK_MOBILE: u32 = 0x0000_0001;
pub(crate) const NETWORK_WIFI: u32 = 0x0001_0000;

/// What the caller set; nothing is checked until `validate_legacy_download`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadConfigBuilder {
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    pub enable_metered: bool,
    pub enable_roaming: bool,
    pub description: String,
    pub network_type: u32,
    pub file_path: Option<String>,
    pub title: Option<String>,
    pub background: bool,
    pub limits: super::Limits,
    /// ohreq extension: the expected SHA-256 of the file (hex), checked before publishing.
    pub sha256: Option<String>,
}

impl Default for DownloadConfigBuilder {
    fn default() -> Self {
        DownloadConfigBuilder {
            url: None,
            headers: Vec::new(),
            enable_metered: false,
            enable_roaming: false,
            description: String::new(),
            network_type: NETWORK_MOBILE | NETWORK_WIFI,
            file_path: None,
            title: None,
            background: false,
            limits: super::Limits::default(),
            sha256: None,
        }
    }
}

/// Checks a legacy download config in the reference's order (url, then headers, timeouts,
/// then the target path) and resolves the target inside the sandbox. Touches no file.
pub fn validate_legacy_download(
    b: &DownloadConfigBuilder,
    policy: &CleartextPolicy,
    sandbox: &Sandbox,
) -> Result<TaskConfig> {
    let url = super::check_request(b.url.as_deref(), &b.headers, policy)?;
    b.limits.check()?;
    let sha256 = match &b.sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
            h.to_ascii_lowercase()
        }
        Some(_) => return Err(Error::param("sha256 must be 64 hexadecimal digits")),
        None => String::new(),
    };
    let target = sandbox.resolve_legacy_download(b.file_path.as_deref(), url)?;

    let mut c = TaskConfig::defaults(Action::Download, Version::Api9);
    c.url = url.to_owned();
    c.headers = b.headers.clone();
    c.metered = b.enable_metered;
    c.roaming = b.enable_roaming;
    c.description = b.description.clone();
    // Only the two exact constants select a network; anything else (their OR too) is ANY.
    c.network = match b.network_type {
        NETWORK_MOBILE => Network::Cellular,
        NETWORK_WIFI => Network::Wifi,
        _ => Network::Any,
    };
    // An empty title is no title (the service's ParseTitle does the same).
    c.title = b
        .title
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "download".into());
    c.background = b.background;
    c.target = target;
    b.limits.apply(&mut c);
    c.sha256 = sha256;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn sandbox() -> Sandbox {
        let dir = std::env::temp_dir().join(format!("ohreq-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox::new(&dir, None, &[]).unwrap()
    }

    fn builder(url: &str) -> DownloadConfigBuilder {
        DownloadConfigBuilder {
            url: Some(url.into()),
            ..Default::default()
        }
    }

    #[test]
    fn network_type_only_exact_constants() {
        let s = sandbox();
        let p = CleartextPolicy::default();
        let mut b = builder("https://h/f");
        for (v, n) in [
            (NETWORK_MOBILE, Network::Cellular),
            (NETWORK_WIFI, Network::Wifi),
            (NETWORK_MOBILE | NETWORK_WIFI, Network::Any),
            (0, Network::Any),
            (7, Network::Any),
        ] {
            b.network_type = v;
            assert_eq!(validate_legacy_download(&b, &p, &s).unwrap().network, n);
        }
    }

    #[test]
    fn defaults_are_legacy_defaults() {
        let c = validate_legacy_download(
            &builder("https://h/f"),
            &CleartextPolicy::default(),
            &sandbox(),
        )
        .unwrap();
        assert_eq!(c.title, "download");
        assert!(!c.roaming && !c.metered && !c.background);
        let mut b = builder("https://h/f");
        b.title = Some(String::new());
        let c = validate_legacy_download(&b, &CleartextPolicy::default(), &sandbox()).unwrap();
        assert_eq!(c.title, "download", "an empty title is the default");
        assert_eq!(c.method, "GET");
        assert_eq!(c.version, Version::Api9);
        assert_eq!(c.token, "null");
    }

    #[test]
    fn url_is_checked_before_path() {
        let mut b = builder("ftp://h/f");
        b.file_path = Some("../escape".into());
        let e = validate_legacy_download(&b, &CleartextPolicy::default(), &sandbox()).unwrap_err();
        assert_eq!(e.code, Code::Param);
        assert!(e.detail.contains("http"), "{}", e.detail);
        let b = DownloadConfigBuilder {
            file_path: Some("x".into()),
            ..Default::default()
        };
        assert!(validate_legacy_download(&b, &CleartextPolicy::default(), &sandbox()).is_err());
    }

    #[test]
    fn bad_header_and_timeouts_are_401() {
        let s = sandbox();
        let p = CleartextPolicy::default();
        let mut b = builder("https://h/f");
        b.headers.push(("X".into(), "a\r\nb".into()));
        assert_eq!(
            validate_legacy_download(&b, &p, &s).unwrap_err().code,
            Code::Param
        );
        let mut b = builder("https://h/f");
        b.limits.total_timeout_s = super::super::MAX_TOTAL_TIMEOUT_S + 1;
        assert_eq!(
            validate_legacy_download(&b, &p, &s).unwrap_err().code,
            Code::Param
        );
        b.limits.total_timeout_s = super::super::MAX_TOTAL_TIMEOUT_S;
        assert!(validate_legacy_download(&b, &p, &s).is_ok());
        for (connect, min_speed_duration) in [(0, 0), (u64::MAX, 0), (1, u64::MAX)] {
            b.limits.connect_timeout_s = connect;
            b.limits.min_speed_duration_s = min_speed_duration;
            assert_eq!(
                validate_legacy_download(&b, &p, &s).unwrap_err().code,
                Code::Param,
                "{connect} {min_speed_duration}"
            );
        }
        b.limits.connect_timeout_s = super::super::MAX_TOTAL_TIMEOUT_S;
        b.limits.min_speed_duration_s = super::super::MAX_TOTAL_TIMEOUT_S;
        assert!(validate_legacy_download(&b, &p, &s).is_ok());
    }
}
