//! URL checks shared by every task kind: length, scheme, cleartext policy (reference A.2, B.4).

use crate::error::{Error, Result};

pub(crate) const URL_MAX_BYTES: usize = 8192;

/// One per-domain cleartext rule of the app's network-security config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRule {
    pub domain: String,
    pub permitted: bool,
    pub include_subdomains: bool,
}

/// Whether plain `http://` may be used: a base rule plus per-domain overrides. The default
/// (HTTPS only) is the seed's "Constraints".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleartextPolicy {
    pub base_permitted: bool,
    pub domains: Vec<DomainRule>,
}

impl CleartextPolicy {
    /// The most specific matching domain rule wins; otherwise the base rule.
    pub fn permits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let mut best: Option<&DomainRule> = None;
        for r in &self.domains {
            let d = r.domain.to_ascii_lowercase();
            let hit = host == d || (r.include_subdomains && host.ends_with(&format!(".{d}")));
            if hit && best.is_none_or(|b| b.domain.len() < r.domain.len()) {
                best = Some(r);
            }
        }
        best.map_or(self.base_permitted, |r| r.permitted)
    }
}

/// The host of a URL as the binding extracts it: after "://", backslashes read as "/",
/// leading slashes skipped, up to the first ':', '/' or '?'. IPv6 literals keep their brackets.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.trim_start_matches(['/', '\\']);
    if rest.starts_with('[') {
        return rest.find(']').map_or(rest, |i| &rest[..=i]);
    }
    let end = rest.find([':', '/', '?', '\\', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Validates a task URL: ≤ 8192 bytes, `^https?://.+`, no CR, LF or NUL (a URL split over
/// lines could only inject headers), a host without spaces or control characters, and
/// `https://` only unless the cleartext policy permits the host. All failures are 401.
/// Spaces, other control characters and non-ASCII bytes after the host are fine: they
/// are percent-encoded on the wire (`wire_url`, reference C.6).
pub fn check_url(url: &str, policy: &CleartextPolicy) -> Result<()> {
    if url.len() > URL_MAX_BYTES {
        return Err(Error::param(format!(
            "the length of url exceeds {URL_MAX_BYTES} bytes ({})",
            url.len()
        )));
    }
    let cleartext = if url.starts_with("https://") {
        false
    } else if url.starts_with("http://") {
        true
    } else {
        return Err(Error::param("url must start with http:// or https://"));
    };
    if url.len() <= if cleartext { 7 } else { 8 } {
        return Err(Error::param("url has nothing after the scheme"));
    }
    if url.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::param("url contains a line break or NUL"));
    }
    let host = url_host(url.trim_end_matches(is_trimmed));
    if host.is_empty() {
        return Err(Error::param("url has no host"));
    }
    if host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Error::param(format!(
            "url host {host:?} contains whitespace or control characters"
        )));
    }
    if cleartext && !policy.permits(host.trim_start_matches('[').trim_end_matches(']')) {
        return Err(Error::param(format!(
            "cleartext http is not permitted for host {host}; use https"
        )));
    }
    Ok(())
}

/// Trailing spaces and control characters are not part of a URL (as a browser reads it).
fn is_trimmed(c: char) -> bool {
    c <= ' ' || c == '\x7f'
}

/// The URL as it goes on the wire: trailing spaces and control characters dropped, and
/// every other space, control character or non-ASCII byte after the host percent-encoded
/// (libcurl refuses a URL with a space; reference C.6 encodes). Anything already encoded
/// stays as it is.
pub fn wire_url(url: &str) -> std::borrow::Cow<'_, str> {
    let url = url.trim_end_matches(is_trimmed);
    let needs = |b: u8| b <= b' ' || b >= 0x7f;
    if !url.bytes().any(needs) {
        return url.into();
    }
    // The host ends at the first '/', '?' or '#' after "scheme://" (check_url made sure the
    // host itself has none of these bytes).
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_at = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..path_at]);
    for &b in &url.as_bytes()[path_at..] {
        if needs(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out.into()
}

/// The last path segment of a URL (without query or fragment); `None` if empty.
pub fn last_url_segment(url: &str) -> Option<&str> {
    let url = url.trim_end_matches(is_trimmed);
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path_part = &rest[..end];
    let slash = path_part.find('/')?;
    let path = &path_part[slash..];
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> CleartextPolicy {
        CleartextPolicy {
            base_permitted: true,
            domains: vec![],
        }
    }

    #[test]
    fn url_length_limit_is_inclusive() {
        let base = "https://h/";
        let ok = format!("{base}{}", "a".repeat(URL_MAX_BYTES - base.len()));
        assert!(check_url(&ok, &open()).is_ok());
        let bad = format!("{ok}a");
        assert_eq!(
            check_url(&bad, &open()).unwrap_err().code,
            crate::error::Code::Param
        );
    }

    #[test]
    fn scheme_rules() {
        assert!(check_url("https://x", &CleartextPolicy::default()).is_ok());
        assert!(check_url("http://x", &CleartextPolicy::default()).is_err());
        assert!(check_url("http://x", &open()).is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "http://",
            "HTTPS://x",
            "x",
            "",
            "https://a b",
            "https://a\tb/x",
            "https://a\r\nb",
            "https://h/a\nb",
            "https://h/a\rb",
            "https://h/a\0b",
        ] {
            assert!(check_url(bad, &open()).is_err(), "{bad:?}");
        }
        for good in [
            "https://h/a b.bin",
            "https://h/x.bin\t",
            "https://h/ü?q=a b",
        ] {
            assert!(check_url(good, &open()).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn wire_url_encodes_after_the_host() {
        assert_eq!(wire_url("https://h/a b.bin"), "https://h/a%20b.bin");
        assert_eq!(wire_url("https://h/x.bin\t "), "https://h/x.bin");
        assert_eq!(
            wire_url("https://h:8/a\tb?q=ü v#f g"),
            "https://h:8/a%09b?q=%C3%BC%20v#f%20g"
        );
        assert_eq!(wire_url("https://h?a b"), "https://h?a%20b");
        assert_eq!(wire_url("https://h/a%20b"), "https://h/a%20b");
        assert!(matches!(
            wire_url("https://h/plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn domain_rules_pick_most_specific() {
        let p = CleartextPolicy {
            base_permitted: false,
            domains: vec![
                DomainRule {
                    domain: "example.com".into(),
                    permitted: true,
                    include_subdomains: true,
                },
                DomainRule {
                    domain: "secure.example.com".into(),
                    permitted: false,
                    include_subdomains: false,
                },
            ],
        };
        assert!(p.permits("example.com"));
        assert!(p.permits("a.example.com"));
        assert!(!p.permits("secure.example.com"));
        assert!(!p.permits("other.com"));
        assert!(check_url("http://a.example.com:8080/x", &p).is_ok());
        assert!(check_url("http://127.0.0.1/x", &p).is_err());
    }

    #[test]
    fn host_extraction() {
        assert_eq!(url_host("http://127.0.0.1:80/x"), "127.0.0.1");
        assert_eq!(url_host("https:////h/x"), "h");
        assert_eq!(url_host("http://h?x"), "h");
        assert_eq!(url_host("http://[::1]:8080/x"), "[::1]");
    }

    #[test]
    fn last_segment() {
        assert_eq!(last_url_segment("http://h/a/b.txt?q=1#f"), Some("b.txt"));
        assert_eq!(last_url_segment("http://h/a/"), None);
        assert_eq!(last_url_segment("http://h"), None);
        assert_eq!(last_url_segment("http://h/x"), Some("x"));
        assert_eq!(last_url_segment("http://h/x y.bin\t"), Some("x y.bin"));
    }
}
