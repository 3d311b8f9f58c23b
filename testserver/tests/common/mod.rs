//! What both end-to-end test files need: a running testserver on a temp root, and whether
//! the system curl speaks HTTP/2.
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The testserver binary, killed and its temp dir removed on drop.
pub struct Server {
    pub child: Child,
    pub dir: PathBuf,
    pub http: u16,
    pub https: u16,
    pub h2: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh empty directory under the system temp dir, named after `what`.
pub fn temp_dir(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "testserver-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

impl Server {
    /// Starts the server on `<dir>/root` (which the caller has filled) and waits for its
    /// port file, checking its format: C readers scan "http=%d https=%d", so that prefix and
    /// the key order must stay.
    pub fn start_in(dir: PathBuf) -> Server {
        let root = dir.join("root");
        let port_file = dir.join("ports");
        let child = Command::new(env!("CARGO_BIN_EXE_testserver"))
            .arg("--root")
            .arg(&root)
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            dir,
            http: 0,
            https: 0,
            h2: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = fs::read_to_string(&port_file) {
                let keys: Vec<&str> = s
                    .split_whitespace()
                    .map(|p| p.split_once('=').map_or(p, |kv| kv.0))
                    .collect();
                assert_eq!(keys, ["http", "https", "h2"], "bad port file {s:?}");
                for part in s.split_whitespace() {
                    match part.split_once('=') {
                        Some(("http", p)) => server.http = p.parse().unwrap(),
                        Some(("https", p)) => server.https = p.parse().unwrap(),
                        Some(("h2", p)) => server.h2 = p.parse().unwrap(),
                        _ => panic!("bad port file {s:?}"),
                    }
                }
                assert!(
                    server.http != 0 && server.https != 0 && server.h2 != 0,
                    "bad port file {s:?}"
                );
                return server;
            }
            assert!(Instant::now() < deadline, "server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

/// Whether the system curl can speak HTTP/2; the h2 tests skip otherwise.
pub fn curl_has_http2() -> bool {
    match Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("Features:") && l.split(' ').any(|f| f == "HTTP2")),
        _ => false,
    }
}
