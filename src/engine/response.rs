//! Parsing of HTTP response heads as libcurl hands them to the header callback.

/// One HTTP response head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// "HTTP/1.1", "HTTP/2", ...
    pub version: String,
    pub status: u32,
    /// The status phrase ("" on HTTP/2, which has none).
    pub reason: String,
    /// Headers in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// `Content-Range: bytes a-b/total` → (a, b, total if known).
    pub fn content_range(&self) -> Option<(u64, u64, Option<u64>)> {
        let v = self.header("content-range")?.trim();
        let v = v.strip_prefix("bytes")?.trim_start();
        let (range, total) = v.split_once('/')?;
        let (a, b) = range.split_once('-')?;
        Some((
            a.trim().parse().ok()?,
            b.trim().parse().ok()?,
            total.trim().parse().ok(),
        ))
    }

    /// The resource length of a 416 answer, `Content-Range: bytes */total`.
    pub fn unsatisfied_range_total(&self) -> Option<u64> {
        let v = self.header("content-range")?.trim();
        v.strip_prefix("bytes")?
            .trim_start()
            .strip_prefix("*/")?
            .trim()
            .parse()
            .ok()
    }

    /// The headers with lower-cased names, as `Progress.extras` carries them.
    pub fn lowercased(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    }
}

/// Accumulates header lines; `feed` returns a finished head at the blank line.
#[derive(Default)]
pub struct HeadParser {
    current: Option<ResponseHead>,
}

impl HeadParser {
    pub fn feed(&mut self, line: &[u8]) -> Option<ResponseHead> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with("HTTP/") {
            let mut parts = line.splitn(3, ' ');
            let version = parts.next().unwrap_or("").to_owned();
            let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let reason = parts.next().unwrap_or("").to_owned();
            self.current = Some(ResponseHead {
                version,
                status,
                reason,
                headers: Vec::new(),
            });
            return None;
        }
        let head = self.current.as_mut()?;
        if line.is_empty() {
            return self.current.take();
        }
        if let Some((k, v)) = line.split_once(':') {
            head.headers
                .push((k.trim().to_owned(), v.trim().to_owned()));
        } else if line.starts_with([' ', '\t']) {
            // obsolete line folding: continue the previous value
            if let Some(last) = head.headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head() {
        let mut p = HeadParser::default();
        for l in [
            "HTTP/1.1 206 Partial Content\r\n",
            "Content-Length: 10\r\n",
            "Content-Range: bytes 5-14/100\r\n",
            "ETag: \"a\"\r\n",
        ] {
            assert!(p.feed(l.as_bytes()).is_none());
        }
        let h = p.feed(b"\r\n").unwrap();
        assert_eq!(h.status, 206);
        assert_eq!(h.reason, "Partial Content");
        assert_eq!(h.version, "HTTP/1.1");
        assert_eq!(h.content_length(), Some(10));
        assert_eq!(h.content_range(), Some((5, 14, Some(100))));
        assert_eq!(h.header("etag"), Some("\"a\""));
        assert_eq!(h.lowercased()[2].0, "etag");
        assert_eq!(h.unsatisfied_range_total(), None);
    }

    #[test]
    fn unsatisfied_range_total() {
        let head = |v: &str| ResponseHead {
            status: 416,
            headers: vec![("Content-Range".into(), v.into())],
            ..Default::default()
        };
        assert_eq!(
            head("bytes */1048576").unsatisfied_range_total(),
            Some(1048576)
        );
        assert_eq!(head(" bytes  */ 7 ").unsatisfied_range_total(), Some(7));
        assert_eq!(head("bytes */").unsatisfied_range_total(), None);
        assert_eq!(head("bytes 0-1/2").unsatisfied_range_total(), None);
        assert_eq!(head("items */3").unsatisfied_range_total(), None);
    }

    #[test]
    fn http2_status_line_has_no_phrase() {
        let mut p = HeadParser::default();
        p.feed(b"HTTP/2 404 \r\n");
        let h = p.feed(b"\r\n").unwrap();
        assert_eq!((h.status, h.version.as_str()), (404, "HTTP/2"));
    }
}
