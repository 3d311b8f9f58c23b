//! Which origins multiplex: where a new transfer should wait for a shared connection.

use std::collections::HashSet;

/// Origins (`scheme://host:port` as written in the URL, lowercased) whose last response came
/// over HTTP/2 or later. A transfer to one of them sets CURLOPT_PIPEWAIT, so that transfers
/// started together share one multiplexed connection. To any other origin it connects at
/// once: libcurl's wait lasts until the first connection is free again when that one turns
/// out to be HTTP/1.1, which runs downloads meant to be parallel one after another.
#[derive(Default)]
pub(super) struct MultiplexOrigins(HashSet<String>);

/// Enough for the hosts a device talks to; past it the set starts over (the cost of
/// forgetting is a few extra connections, not a wrong transfer).
const MAX_ORIGINS: usize = 1024;

impl MultiplexOrigins {
    pub(super) fn multiplexes(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| self.0.contains(&o))
    }

    /// Records how `url`'s origin answered (`version`: the status line's "HTTP/1.1", "HTTP/2").
    pub(super) fn learn(&mut self, url: &str, version: &str) {
        let Some(o) = origin(url) else {
            return;
        };
        let multiplexed = version
            .strip_prefix("HTTP/")
            .and_then(|v| v.split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 2);
        if !multiplexed {
            self.0.remove(&o);
        } else if !self.0.contains(&o) {
            if self.0.len() >= MAX_ORIGINS {
                self.0.clear();
            }
            self.0.insert(o);
        }
    }
}

/// `scheme://authority` of a URL, lowercased; None without "://".
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(format!("{scheme}://{}", &rest[..end]).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_per_origin_from_the_response_version() {
        let mut o = MultiplexOrigins::default();
        assert!(!o.multiplexes("https://h:8443/a"));
        o.learn("https://H:8443/x?y", "HTTP/2");
        assert!(o.multiplexes("https://h:8443/a"));
        assert!(
            !o.multiplexes("https://h:9443/a"),
            "another port is another origin"
        );
        assert!(
            !o.multiplexes("http://h:8443/a"),
            "another scheme is another origin"
        );
        o.learn("https://h:8443/b", "HTTP/1.1");
        assert!(
            !o.multiplexes("https://h:8443/a"),
            "an HTTP/1.1 answer unlearns it"
        );
        o.learn("https://h3/", "HTTP/3");
        assert!(o.multiplexes("https://h3/z"));
        o.learn("no-scheme", "HTTP/2");
        assert!(!o.multiplexes("no-scheme"));
    }

    #[test]
    fn starts_over_when_full() {
        let mut o = MultiplexOrigins::default();
        for i in 0..MAX_ORIGINS {
            o.learn(&format!("https://h{i}/"), "HTTP/2");
        }
        assert!(o.multiplexes("https://h0/"));
        o.learn("https://new/", "HTTP/2");
        assert!(o.multiplexes("https://new/"));
        assert!(!o.multiplexes("https://h0/"));
        assert_eq!(o.0.len(), 1);
    }
}
