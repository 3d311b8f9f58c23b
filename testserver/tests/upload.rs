//! End-to-end tests of the upload receivers (`/upload/multipart`,
//! `/upload/raw/<name>`) with the system curl as the client, over plain
//! HTTP/1.1, TLS and (when curl has it) HTTP/2. Expected lengths and
//! SHA-256 digests are computed here from the files sent.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{Server, curl_has_http2, temp_dir};

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha(b: &[u8]) -> String {
    openssl::sha::sha256(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    Plain,
    Tls,
    H2,
}

struct Curl {
    code: Option<i32>,
    /// `-w` output.
    info: String,
    stderr: String,
}

impl Server {
    fn start() -> Server {
        let dir = temp_dir("upload");
        fs::create_dir_all(dir.join("root")).unwrap();
        Server::start_in(dir)
    }

    /// A file in the test directory (outside the served root).
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    fn url(&self, proto: Proto, target: &str) -> String {
        match proto {
            Proto::Plain => format!("http://127.0.0.1:{}{target}", self.http),
            Proto::Tls => format!("https://127.0.0.1:{}{target}", self.https),
            Proto::H2 => format!("https://127.0.0.1:{}{target}", self.h2),
        }
    }

    /// Runs curl (bounded in time) against `target`; the response body
    /// goes to `<dir>/body`, the head to `<dir>/head`.
    fn curl(&self, proto: Proto, target: &str, args: &[&str]) -> Curl {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--noproxy", "*"])
            .args(["--connect-timeout", "10", "--max-time", "60"])
            .arg("--cacert")
            .arg(self.dir.join("certs/ca.pem"))
            .arg("-o")
            .arg(self.dir.join("body"))
            .arg("-D")
            .arg(self.dir.join("head"))
            .args(["-w", "%{http_code} %{size_upload}"]);
        match proto {
            Proto::H2 => cmd.arg("--http2"),
            _ => cmd.arg("--http1.1"),
        };
        let out = cmd
            .args(args)
            .arg(self.url(proto, target))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Curl {
            code: out.status.code(),
            info: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// curl that must succeed: (status, uploaded bytes, response body).
    fn upload(&self, proto: Proto, target: &str, args: &[&str]) -> (u16, u64, String) {
        let c = self.curl(proto, target, args);
        assert_eq!(c.code, Some(0), "{proto:?} {target}: {}", c.stderr);
        let (status, up) = c.info.split_once(' ').unwrap();
        let body = fs::read_to_string(self.dir.join("body")).unwrap();
        (status.parse().unwrap(), up.parse().unwrap(), body)
    }

    fn received_header(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("head"))
            .unwrap()
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("x-received-bytes")
                    .then(|| v.trim().parse().unwrap())
            })
    }

    /// GET over plain HTTP/1.1 with a raw socket.
    fn text(&self, target: &str) -> String {
        let resp = raw_exchange(
            self,
            &[format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()],
        );
        String::from_utf8(resp[0].2.clone()).unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Status, headers (lower-case names), body.
type RawResp = (u16, Vec<(String, String)>, Vec<u8>);

/// Sends the requests on one keep-alive connection, each followed by
/// reading its response.
fn raw_exchange(s: &Server, requests: &[&[u8]]) -> Vec<RawResp> {
    let tcp = TcpStream::connect(("127.0.0.1", s.http)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(tcp);
    let mut out = Vec::new();
    for req in requests {
        r.get_mut().write_all(req).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: u64 = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = Vec::new();
        (&mut r).take(len).read_to_end(&mut body).unwrap();
        out.push((status, headers, body));
    }
    out
}

fn protos() -> Vec<Proto> {
    let mut p = vec![Proto::Plain, Proto::Tls];
    if curl_has_http2() {
        p.push(Proto::H2);
    } else {
        eprintln!("SKIP h2 variants: system curl lacks HTTP2 support");
    }
    p
}

/// A JSON string literal for the (ASCII, control-free) test strings.
fn q(s: Option<&str>) -> String {
    s.map_or("null".to_string(), |s| {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// The JSON of one part, as the server writes it.
fn part_json(
    name: &str,
    filename: Option<&str>,
    content_type: Option<&str>,
    data: &[u8],
    stored: Option<&str>,
) -> String {
    let mut out = format!(
        "{{\"name\":{},\"filename\":{},\"content_type\":{},\"length\":{},\"sha256\":\"{}\"",
        q(Some(name)),
        q(filename),
        q(content_type),
        data.len(),
        sha(data)
    );
    if filename.is_none() && data.len() < 4096 {
        let value = String::from_utf8(data.to_vec()).unwrap();
        out.push_str(&format!(",\"value\":{}", q(Some(&value))));
    }
    if let Some(s) = stored {
        out.push_str(&format!(",\"stored\":{}", q(Some(s))));
    }
    out.push('}');
    out
}

/// The string value of a top-level `"key":"…"` (no escapes in it).
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":\"");
    let start = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    &json[start..start + json[start..].find('"').unwrap()]
}

fn multipart_json(parts: &[String], content_length: u64, ct: &str, method: &str) -> String {
    format!(
        "{{\"parts\":[{}],\"content_length\":{content_length},\"request_content_type\":\"{ct}\",\"method\":\"{method}\"}}\n",
        parts.join(",")
    )
}

fn raw_json(data: &[u8], ct: Option<&str>, method: &str, stored: Option<&str>) -> String {
    format!(
        "{{\"length\":{},\"sha256\":\"{}\",\"content_type\":{},\"method\":\"{method}\",\"stored\":{}}}\n",
        data.len(),
        sha(data),
        q(ct),
        q(stored)
    )
}

fn log_line(s: &Server, needle: &str) -> String {
    let log = s.text("/__log");
    log.lines()
        .rfind(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {log}"))
        .to_string()
}

/// The log line once it contains `want`: `served` is counted just after
/// each write, so it can lag behind what the client has already read.
fn log_line_with(s: &Server, needle: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = log_line(s, needle);
        if line.contains(want) || Instant::now() >= deadline {
            return line;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn multipart_fields_files_and_store() {
    let s = Server::start();
    let text = b"hello upload\n".to_vec();
    let bin = data(300_000, 1);
    let text_path = s.file("a.txt", &text);
    let bin_path = s.file("data.bin", &bin);
    let text_arg = format!("file=@{};type=text/plain", text_path.display());
    let bin_arg = format!("bin=@{};filename=../evil name.bin", bin_path.display());
    let long = "x".repeat(5000);
    let long_arg = format!("long={long}");

    for (i, proto) in protos().into_iter().enumerate() {
        let key = format!("k{i}");
        let target = format!("/upload/multipart?store={key}");
        let args = [
            "-F",
            "k=v",
            "--form-string",
            "q=a\"b\\c",
            "-F",
            &text_arg,
            "-F",
            &bin_arg,
            "-F",
            &long_arg,
        ];
        let (status, sent, json) = s.upload(proto, &target, &args);
        assert_eq!(status, 200, "{proto:?} {json}");
        let ct = json_field(&json, "request_content_type");
        assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
        let parts = [
            part_json("k", None, None, b"v", None),
            // A value that needs JSON escaping.
            part_json("q", None, None, b"a\"b\\c", None),
            part_json(
                "file",
                Some("a.txt"),
                Some("text/plain"),
                &text,
                Some(&format!("uploads/{key}/2-a.txt")),
            ),
            part_json(
                "bin",
                Some("../evil name.bin"),
                Some("application/octet-stream"),
                &bin,
                Some(&format!("uploads/{key}/3-.._evil_name.bin")),
            ),
            // 5000 bytes: too long for a value.
            part_json("long", None, None, long.as_bytes(), None),
        ];
        assert_eq!(json, multipart_json(&parts, sent, ct, "POST"), "{proto:?}");
        assert_eq!(s.received_header(), Some(sent), "{proto:?}");
        let dir = s.root().join("uploads").join(&key);
        assert_eq!(fs::read(dir.join("2-a.txt")).unwrap(), text);
        assert_eq!(fs::read(dir.join("3-.._evil_name.bin")).unwrap(), bin);
        // Only file parts are stored.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        // cmp(1), as C tests would use it.
        let cmp = Command::new("cmp")
            .arg(&bin_path)
            .arg(dir.join("3-.._evil_name.bin"))
            .status();
        if let Ok(st) = cmp {
            assert!(st.success());
        }

        let served = format!(" served={} ", json.len());
        let line = log_line_with(&s, &format!("?store={key} "), &served);
        assert!(line.contains(&served), "{line}");
        let tail = match proto {
            Proto::H2 => format!(" h2=1 recv={sent}"),
            _ => format!(" recv={sent}"),
        };
        assert!(line.ends_with(&tail), "{line}");
        assert!(line.contains(" POST "), "{line}");
    }

    // PUT, a chunked request body, no store.
    let chunked = ["-X", "PUT", "-H", "Transfer-Encoding: chunked"];
    for proto in [Proto::Plain, Proto::Tls] {
        let mut args = chunked.to_vec();
        args.extend(["-F", &bin_arg]);
        let (status, sent, json) = s.upload(proto, "/upload/multipart", &args);
        assert_eq!(status, 200);
        // curl counts the chunked framing too; the server the decoded body.
        let decoded = s.received_header().unwrap();
        assert!(decoded < sent && sent - decoded < 1000, "{sent} {decoded}");
        let ct = json_field(&json, "request_content_type");
        let part = part_json(
            "bin",
            Some("../evil name.bin"),
            Some("application/octet-stream"),
            &bin,
            None,
        );
        assert_eq!(json, multipart_json(&[part], decoded, ct, "PUT"));
        assert!(
            log_line(&s, "PUT /upload/multipart ").ends_with(&format!(" recv={decoded}")),
            "{proto:?}"
        );
    }
}

#[test]
fn raw_put_post_chunked_and_status() {
    let s = Server::start();
    let body = data(1_000_003, 2);
    let path = s.file("body.bin", &body);
    let path_s = path.to_str().unwrap();
    let at = format!("@{path_s}");

    for proto in protos() {
        let stored_path = s.root().join("uploads/raw/r.bin");
        let _ = fs::remove_file(&stored_path);
        let (status, sent, json) = s.upload(proto, "/upload/raw/r.bin", &["-T", path_s]);
        assert_eq!((status, sent), (200, body.len() as u64), "{proto:?}");
        assert_eq!(
            json,
            raw_json(&body, None, "PUT", Some("uploads/raw/r.bin"))
        );
        assert_eq!(s.received_header(), Some(body.len() as u64));
        assert_eq!(fs::read(&stored_path).unwrap(), body);

        // POST with a content type; a name that needs sanitizing; overwrite.
        let small = b"small body".to_vec();
        let small_path = s.file("small", &small);
        let small_at = format!("@{}", small_path.display());
        let args = [
            "--data-binary",
            &small_at,
            "-X",
            "POST",
            "-H",
            "Content-Type: text/x-test; a=\"b\"",
        ];
        let (status, _, json) = s.upload(proto, "/upload/raw/..%2Fr%20x.bin", &args);
        assert_eq!(status, 200);
        assert_eq!(
            json,
            raw_json(
                &small,
                Some("text/x-test; a=\"b\""),
                "POST",
                Some("uploads/raw/.._r_x.bin")
            )
        );
        assert_eq!(
            fs::read(s.root().join("uploads/raw/.._r_x.bin")).unwrap(),
            small
        );

        // Chunked (HTTP/1.1 only: h2 has no chunked coding).
        if proto != Proto::H2 {
            let args = ["--data-binary", &at, "-H", "Transfer-Encoding: chunked"];
            let (status, _, json) = s.upload(proto, "/upload/raw/r.bin", &args);
            assert_eq!(status, 200);
            let ct = "application/x-www-form-urlencoded";
            assert_eq!(
                json,
                raw_json(&body, Some(ct), "POST", Some("uploads/raw/r.bin"))
            );
            let line = log_line(&s, "POST /upload/raw/r.bin ");
            assert!(line.ends_with(&format!(" recv={}", body.len())), "{line}");
        }

        // status=500 answers 500 with the same JSON (nothing stored); with
        // times=1 only the first request of the key fails.
        let key = format!("/upload/raw/s.bin?status=500&times=1&key={proto:?}");
        let (status, _, json) = s.upload(proto, &key, &["-T", path_s]);
        assert_eq!(status, 500);
        assert_eq!(json, raw_json(&body, None, "PUT", None));
        assert!(!s.root().join("uploads/raw/s.bin").exists());
        let (status, _, json) = s.upload(proto, &key, &["-T", path_s]);
        assert_eq!(status, 200);
        assert_eq!(
            json,
            raw_json(&body, None, "PUT", Some("uploads/raw/s.bin"))
        );
        fs::remove_file(s.root().join("uploads/raw/s.bin")).unwrap();

        let (status, _, _) = s.upload(proto, "/upload/raw/x?status=404", &["-T", path_s]);
        assert_eq!(status, 404);
        let (status, _, json) = s.upload(proto, "/upload/raw/x?status=abc", &["-T", path_s]);
        assert_eq!(
            (status, json.as_str()),
            (400, "{\"error\":\"bad status code\"}\n")
        );
    }

    // Only POST and PUT.
    let r = raw_exchange(&s, &[b"GET /upload/raw/x HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert_eq!(r[0].0, 405);
    assert_eq!(r[0].2, b"{\"error\":\"method not allowed\"}\n");
}

#[test]
fn drop_fault_cuts_the_upload() {
    let s = Server::start();
    let body = data(300_000, 3);
    let path = s.file("body.bin", &body);
    let path_s = path.to_str().unwrap();
    let file_arg = format!("file=@{path_s}");

    for proto in protos() {
        for (endpoint, args) in [
            ("/upload/raw/d.bin", vec!["-T", path_s]),
            ("/upload/multipart", vec!["-F", &file_arg]),
        ] {
            let target = format!("{endpoint}?drop=1000&times=1&key={proto:?}{endpoint}");
            let c = s.curl(proto, &target, &args);
            assert_ne!(c.code, Some(0), "{proto:?} {endpoint}: {}", c.info);
            let line = log_line(&s, &target);
            assert!(line.ends_with(" recv=1000"), "{line}");
            assert!(line.contains(" served=0"), "{line}");
            assert!(!s.root().join("uploads/raw/d.bin").exists());
            // The retry gets through.
            let (status, _, json) = s.upload(proto, &target, &args);
            assert_eq!(status, 200, "{json}");
            assert!(json.contains(&sha(&body)), "{json}");
            let _ = fs::remove_file(s.root().join("uploads/raw/d.bin"));
        }
    }
    // drop beyond the end: the whole body is read, then no answer.
    let c = s.curl(
        Proto::Plain,
        "/upload/raw/e?drop=999999999",
        &["-T", path_s],
    );
    assert_ne!(c.code, Some(0));
    assert!(log_line(&s, "?drop=999999999").ends_with(" recv=300000"));
}

#[test]
fn malformed_multipart_is_400() {
    let s = Server::start();
    let ok_body = b"--XB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XB--\r\n";
    let req = |ct: &str, body: &[u8]| {
        let mut r = format!(
            "POST /upload/multipart HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            req("multipart/form-data; boundary=XB", b"garbage"),
            "malformed multipart body",
        ),
        // Truncated: no closing boundary.
        (
            req(
                "multipart/form-data; boundary=XB",
                b"--XB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n123",
            ),
            "malformed multipart body",
        ),
        (req("multipart/form-data", ok_body), "content-type"),
        (req("text/plain", ok_body), "content-type"),
    ];
    let mut requests: Vec<&[u8]> = cases.iter().map(|(r, _)| r.as_slice()).collect();
    // The connection stays in sync: a good request after the bad ones.
    let good = req("multipart/form-data; boundary=XB", ok_body);
    requests.push(&good);
    let resps = raw_exchange(&s, &requests);
    for ((status, headers, body), (_, want)) in resps.iter().zip(&cases) {
        let body = String::from_utf8_lossy(body);
        assert_eq!(*status, 400, "{body}");
        assert!(body.starts_with(&format!("{{\"error\":\"{want}")), "{body}");
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/json")
        );
        assert!(headers.iter().any(|(n, _)| n == "x-received-bytes"));
    }
    let (status, _, body) = &resps[4];
    assert_eq!(*status, 200);
    assert_eq!(
        String::from_utf8_lossy(body),
        multipart_json(
            &[part_json("a", None, None, b"1", None)],
            ok_body.len() as u64,
            "multipart/form-data; boundary=XB",
            "POST"
        )
    );

    // Bad chunked framing is a 400 that closes the connection.
    let r = raw_exchange(
        &s,
        &[b"PUT /upload/raw/z HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    );
    assert_eq!(r[0].0, 400);
    assert!(!s.root().join("uploads/raw/z").exists());
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    st.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in {st}"))
}

#[test]
fn large_multipart_upload_streams() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIP: no /proc");
        return;
    }
    let s = Server::start();
    let big = data(64 << 20, 4);
    let path = s.file("big.bin", &big);
    let want = sha(&big);
    drop(big);
    let arg = format!("file=@{};type=application/x-big", path.display());
    // Warm up (threads, buffers) so the baseline includes them.
    s.upload(Proto::Plain, "/upload/multipart", &["-F", "k=v"]);

    let mut cases = vec![(Proto::Plain, "/upload/multipart?store=big")];
    if curl_has_http2() {
        cases.push((Proto::H2, "/upload/multipart"));
    }
    for (proto, target) in cases {
        let before = status_kib(s.pid(), "VmRSS:");
        let (status, sent, json) = s.upload(proto, target, &["-F", &arg]);
        let peak = status_kib(s.pid(), "VmHWM:");
        let after = status_kib(s.pid(), "VmRSS:");
        assert_eq!(status, 200, "{json}");
        assert!(
            json.contains(&format!(
                "\"filename\":\"big.bin\",\"content_type\":\"application/x-big\",\"length\":{},\"sha256\":\"{want}\"",
                64 << 20
            )),
            "{json}"
        );
        assert!(json.contains(&format!("\"content_length\":{sent},")));
        // Peak and final resident size stay within 32 MiB of the start.
        let limit = 32 * 1024;
        assert!(
            peak.saturating_sub(before) < limit && after.saturating_sub(before) < limit,
            "{proto:?}: VmRSS {before} kB -> {after} kB, VmHWM {peak} kB"
        );
        eprintln!("{proto:?}: VmRSS {before} kB -> {after} kB, VmHWM {peak} kB");
    }
    let stored = s.root().join("uploads/big/0-big.bin");
    assert_eq!(sha(&fs::read(&stored).unwrap()), want);
}
