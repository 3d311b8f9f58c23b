//! End-to-end tests: start the real binary on a temp root and talk to it
//! with a tiny raw HTTP/1.1 client (plain TCP and openssl TLS), and over
//! HTTP/2 with the system curl (when it has HTTP2 support).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream};

mod common;
use common::{Server, curl_has_http2, temp_dir};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const DATA_LEN: usize = 300_000;

/// Deterministic, non-repeating-looking content so offsets are checkable.
fn data() -> Vec<u8> {
    (0..DATA_LEN)
        .map(|i| ((i * 7 + i / 251) % 256) as u8)
        .collect()
}

impl Server {
    fn start() -> Server {
        let dir = temp_dir("test");
        let root = dir.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("hello.txt"), "hello world\n").unwrap();
        fs::write(root.join("data.bin"), data()).unwrap();
        fs::write(root.join("sub/page.html"), "<p>hi</p>").unwrap();
        Server::start_in(dir)
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(name)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// One request on a fresh connection with `Connection: close`.
    fn get(&self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", target, headers, b"")
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut r = BufReader::new(self.connect());
        send(r.get_mut(), method, target, headers, body, true);
        read_response(&mut r, method == "HEAD").unwrap()
    }

    fn text(&self, target: &str) -> String {
        String::from_utf8(self.get(target, &[]).body).unwrap()
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// False when the connection ended before the framed body did.
    complete: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn send<W: Write>(
    w: &mut W,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    w.write_all(req.as_bytes()).unwrap();
    w.write_all(body).unwrap();
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut l = String::new();
    r.read_line(&mut l)?;
    Ok(l.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one response; the body may be Content-Length, chunked or
/// close-delimited. A connection cut short yields `complete: false`.
fn read_response<R: BufRead>(r: &mut R, head_only: bool) -> io::Result<Resp> {
    let status_line = read_line(r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let l = read_line(r)?;
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        complete: true,
    };
    if head_only || status == 204 || status == 304 {
        return Ok(resp);
    }
    if let Some(len) = resp.header("content-length") {
        let len: u64 = len.parse().unwrap();
        r.take(len).read_to_end(&mut resp.body)?;
        resp.complete = resp.body.len() as u64 == len;
    } else if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = match read_line(r).map(|l| usize::from_str_radix(&l, 16)) {
                Ok(Ok(n)) => n,
                _ => {
                    resp.complete = false;
                    break;
                }
            };
            if size == 0 {
                read_line(r)?;
                break;
            }
            let before = resp.body.len();
            r.take(size as u64).read_to_end(&mut resp.body)?;
            if resp.body.len() - before != size || read_line(r).is_err() {
                resp.complete = false;
                break;
            }
        }
    } else {
        r.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

fn stats(s: &Server) -> (u64, u64) {
    let t = s.text("/__stats");
    let get = |k: &str| -> u64 {
        t.split_whitespace()
            .find_map(|p| p.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    (get("connections="), get("requests="))
}

#[test]
fn full_get_and_headers() {
    let s = Server::start();
    let r = s.get("/files/hello.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello world\n");
    assert_eq!(r.header("content-length"), Some("12"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with("\"c-") && etag.ends_with('"'), "{etag}");
    let lm = r.header("last-modified").unwrap();
    assert!(lm.ends_with(" GMT") && lm.len() == 29, "{lm}");

    let r = s.get("/files/data.bin", &[]);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, data());
    assert_eq!(
        s.get("/files/sub/page.html", &[]).header("content-type"),
        Some("text/html")
    );

    let r = s.request("HEAD", "/files/data.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));

    assert_eq!(s.get("/files/missing.txt", &[]).status, 404);
    assert_eq!(s.get("/files/sub", &[]).status, 404);
    assert_eq!(s.get("/files/../ports", &[]).status, 403);
    assert_eq!(s.get("/files/sub/%2e%2e/%2e%2e/ports", &[]).status, 403);
    assert_eq!(s.request("POST", "/files/hello.txt", &[], b"x").status, 405);
    assert_eq!(s.get("/nothing/here", &[]).status, 404);
}

#[test]
fn ranges() {
    let s = Server::start();
    let d = data();
    let r = s.get("/files/data.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/300000"));
    assert_eq!(r.body, &d[10..20]);

    let r = s.get("/files/data.bin", &[("Range", "bytes=299990-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &d[299_990..]);

    let r = s.get("/files/data.bin", &[("Range", "bytes=-5")]);
    assert_eq!(
        r.header("content-range"),
        Some("bytes 299995-299999/300000")
    );
    assert_eq!(r.body, &d[299_995..]);

    let r = s.get("/files/data.bin", &[("Range", "bytes=300000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */300000"));

    // Multiple ranges are not supported: full body.
    let r = s.get("/files/data.bin", &[("Range", "bytes=0-1,5-6")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), DATA_LEN);

    let r = s.get("/files/data.bin?norange=1", &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), None);
    assert_eq!(r.body, d);
}

#[test]
fn if_range() {
    let s = Server::start();
    let head = s.request("HEAD", "/files/data.bin", &[], b"");
    let etag = head.header("etag").unwrap().to_string();
    let lm = head.header("last-modified").unwrap().to_string();

    let r = s.get(
        "/files/data.bin",
        &[("Range", "bytes=100-"), ("If-Range", &etag)],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), DATA_LEN - 100);

    let r = s.get(
        "/files/data.bin",
        &[("Range", "bytes=100-"), ("If-Range", &lm)],
    );
    assert_eq!(r.status, 206);

    let r = s.get(
        "/files/data.bin",
        &[("Range", "bytes=100-"), ("If-Range", "\"other\"")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), DATA_LEN);

    // A resource "changing" between requests via the etag override.
    let r = s.get("/files/data.bin?etag=v1", &[]);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let r = s.get(
        "/files/data.bin?etag=v1",
        &[("Range", "bytes=5-9"), ("If-Range", "\"v1\"")],
    );
    assert_eq!(r.status, 206);
    let r = s.get(
        "/files/data.bin?etag=v2",
        &[("Range", "bytes=5-9"), ("If-Range", "\"v1\"")],
    );
    assert_eq!(r.status, 200);

    let r = s.get("/files/data.bin?noetag=1&nolm=1", &[]);
    assert_eq!(r.header("etag"), None);
    assert_eq!(r.header("last-modified"), None);
}

#[test]
fn drop_with_times_and_key() {
    let s = Server::start();
    let target = "/files/data.bin?drop=1000&times=1&key=k1";
    let r = s.get(target, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));
    assert!(!r.complete);
    assert_eq!(r.body, &data()[..1000]);

    let r = s.get(target, &[]);
    assert!(r.complete);
    assert_eq!(r.body, data());

    // Without `times`, every request drops.
    for _ in 0..2 {
        let r = s.get("/files/data.bin?drop=10", &[]);
        assert!(!r.complete);
        assert_eq!(r.body.len(), 10);
    }
    // Drop also applies to the partial body of a range request.
    let r = s.get("/files/data.bin?drop=7", &[("Range", "bytes=100-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data()[100..107]);
}

#[test]
fn stall_then_close() {
    let s = Server::start();
    let start = Instant::now();
    let r = s.get(
        "/files/data.bin?stall=2000&stall_secs=1&times=1&key=st",
        &[],
    );
    let elapsed = start.elapsed();
    assert!(!r.complete);
    assert_eq!(r.body.len(), 2000);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(
        s.get("/files/data.bin?stall=2000&times=1&key=st", &[])
            .complete
    );
}

#[test]
fn framing_variants_rate_and_delay() {
    let s = Server::start();
    let r = s.get("/files/data.bin?chunked=1", &[]);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    assert_eq!(r.body, data());

    let r = s.get("/files/data.bin?nolength=1", &[]);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, data());

    let start = Instant::now();
    let r = s.get("/files/data.bin?rate=200000", &[("Range", "bytes=0-99999")]);
    assert_eq!(r.body.len(), 100_000);
    let t = start.elapsed();
    assert!(
        t >= Duration::from_millis(400) && t < Duration::from_secs(3),
        "{t:?}"
    );

    let start = Instant::now();
    assert_eq!(s.get("/files/hello.txt?delay_ms=300", &[]).status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn redirects() {
    let s = Server::start();
    let r = s.get("/redirect/2?code=301&to=%2Ffiles%2Fdata.bin", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("/redirect/1?code=301&to=%2Ffiles%2Fdata.bin")
    );
    let r = s.get("/redirect/0?code=301&to=%2Ffiles%2Fdata.bin", &[]);
    assert_eq!(r.header("location"), Some("/files/data.bin"));

    // Follow a default chain to the end.
    let mut target = "/redirect/3".to_string();
    let mut hops = 0;
    loop {
        let r = s.get(&target, &[]);
        if r.status != 302 {
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"hello world\n");
            break;
        }
        target = r.header("location").unwrap().to_string();
        hops += 1;
    }
    assert_eq!(hops, 4);

    for code in ["303", "307", "308"] {
        assert_eq!(
            s.get(&format!("/redirect/1?code={code}"), &[])
                .status
                .to_string(),
            code
        );
    }
    let r = s.get("/loop", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/loop")));
}

#[test]
fn status_codes() {
    let s = Server::start();
    for code in [200, 400, 403, 404, 408, 410, 500, 503] {
        let r = s.get(&format!("/status/{code}"), &[]);
        assert_eq!(r.status, code);
        assert_eq!(r.body, format!("status {code}\n").as_bytes());
    }
    assert_eq!(s.get("/status/101", &[]).status, 500);
    let r = s.get("/status/204", &[]);
    assert_eq!(r.status, 204);
    assert_eq!(s.get("/status/abc", &[]).status, 400);

    // Fault status on a file, only for the first two requests of the key.
    for _ in 0..2 {
        let r = s.get("/files/hello.txt?status=503&times=2&key=st", &[]);
        assert_eq!((r.status, r.body.as_slice()), (503, &b"status 503\n"[..]));
    }
    assert_eq!(
        s.get("/files/hello.txt?status=503&times=2&key=st", &[])
            .status,
        200
    );
}

#[test]
fn echo_and_bodies() {
    let s = Server::start();
    let body = b"some upload body";
    let r = s.request("POST", "/echo", &[("X-Test", "a: b")], body);
    let text = String::from_utf8(r.body).unwrap();
    let sha = openssl::sha::sha256(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(
        text.starts_with("POST /echo HTTP/1.1\nHost: 127.0.0.1\nX-Test: a: b\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("\n\nbody-length: 16\nbody-sha256: {sha}\n")),
        "{text}"
    );

    // Chunked upload with Expect: 100-continue on a kept-alive connection.
    let mut r = BufReader::new(s.connect());
    let req = "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    r.get_mut().write_all(req.as_bytes()).unwrap();
    let cont = read_response(&mut r, true).unwrap();
    assert_eq!(cont.status, 100);
    r.get_mut()
        .write_all(b"5\r\nsome \r\nb\r\nupload body\r\n0\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut r, false).unwrap();
    assert!(
        String::from_utf8(resp.body)
            .unwrap()
            .contains(&format!("body-length: 16\nbody-sha256: {sha}"))
    );
    // Request bodies of other endpoints are discarded, keeping the stream in sync.
    send(r.get_mut(), "POST", "/files/hello.txt", &[], b"junk", false);
    assert_eq!(read_response(&mut r, false).unwrap().status, 405);
    send(r.get_mut(), "GET", "/files/hello.txt", &[], b"", false);
    assert_eq!(read_response(&mut r, false).unwrap().body, b"hello world\n");
}

#[test]
fn keep_alive_log_and_stats() {
    let s = Server::start();
    s.text("/__log?clear=1");
    let (c0, q0) = stats(&s);

    let mut r = BufReader::new(s.connect());
    send(
        r.get_mut(),
        "GET",
        "/files/hello.txt",
        &[("Range", "bytes=0-4")],
        b"",
        false,
    );
    assert_eq!(read_response(&mut r, false).unwrap().body, b"hello");
    send(
        r.get_mut(),
        "GET",
        "/files/hello.txt?x=1",
        &[("If-Range", "\"e\"")],
        b"",
        false,
    );
    assert_eq!(read_response(&mut r, false).unwrap().status, 200);
    drop(r);

    let (c1, q1) = stats(&s);
    // One connection for the two requests plus one for the second /__stats.
    assert_eq!((c1 - c0, q1 - q0), (2, 3));

    let log = s.text("/__log");
    let lines: Vec<&str> = log.lines().collect();
    // Both /__stats requests are logged, the /__log ones are not.
    assert_eq!(lines.len(), 4, "{log}");
    let conn = lines[1].split(' ').next().unwrap();
    assert_eq!(
        lines[1],
        format!("{conn} GET /files/hello.txt range=bytes=0-4 if-range=- tls=0 served=5")
    );
    assert_eq!(
        lines[2],
        format!("{conn} GET /files/hello.txt?x=1 range=- if-range=\"e\" tls=0 served=12")
    );
    assert!(lines[0].contains(" GET /__stats ") && lines[3].contains(" GET /__stats "));
    // clear=1 returns the log, then clears it.
    assert_eq!(s.text("/__log?clear=1"), log);
    assert_eq!(s.text("/__log"), "");
}

#[test]
fn malformed_requests_close_only_that_connection() {
    let s = Server::start();
    for garbage in [
        &b"NONSENSE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\xff\xfe\x00 / HTTP/1.1\r\n\r\n",
    ] {
        let mut c = s.connect();
        c.write_all(garbage).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        assert!(
            out.starts_with(b"HTTP/1.1 400 "),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
    // A client vanishing mid-head or mid-body is harmless too.
    let mut c = s.connect();
    c.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    drop(c);
    assert_eq!(s.get("/files/hello.txt", &[]).status, 200);
}

fn tls_connect(s: &Server, ca: &str, name: &str) -> Result<SslStream<TcpStream>, String> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_ca_file(s.cert(ca)).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", s.https)).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    b.build().connect(name, tcp).map_err(|e| e.to_string())
}

#[test]
fn https_with_generated_ca() {
    let s = Server::start();
    for name in ["localhost", "127.0.0.1"] {
        let tls = tls_connect(&s, "ca.pem", name).unwrap();
        let version = tls.ssl().version_str();
        assert!(version == "TLSv1.2" || version == "TLSv1.3", "{version}");
        let mut r = BufReader::new(tls);
        send(
            r.get_mut(),
            "GET",
            "/files/data.bin",
            &[("Range", "bytes=1-10")],
            b"",
            false,
        );
        let resp = read_response(&mut r, false).unwrap();
        assert_eq!(resp.status, 206);
        assert_eq!(resp.body, &data()[1..11]);
        send(r.get_mut(), "GET", "/files/data.bin", &[], b"", true);
        assert_eq!(read_response(&mut r, false).unwrap().body, data());
    }
    let err = tls_connect(&s, "other-ca.pem", "localhost").unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    // The certificate does not cover other names.
    assert!(tls_connect(&s, "ca.pem", "example.com").is_err());

    let log = s.text("/__log");
    assert!(
        log.contains("GET /files/data.bin range=bytes=1-10 if-range=- tls=1 served=10"),
        "{log}"
    );
    for f in ["ca.pem", "server.pem", "server.key", "other-ca.pem"] {
        assert!(s.cert(f).exists(), "{f}");
    }
}

#[test]
fn missing_root_fails() {
    let dir = temp_dir("test");
    let status = Command::new(env!("CARGO_BIN_EXE_testserver"))
        .arg("--root")
        .arg(dir.join("nope"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    let _ = fs::remove_dir_all(dir);
}

// ---- HTTP/2 (curl --http2 against the h2 listener) ----

macro_rules! require_curl_http2 {
    () => {
        if !curl_has_http2() {
            eprintln!("SKIP: system curl lacks HTTP2 support");
            return;
        }
    };
}

struct Curl {
    code: Option<i32>,
    /// `-w` output.
    info: String,
    stderr: String,
}

impl Server {
    fn h2_url(&self, target: &str) -> String {
        format!("https://127.0.0.1:{}{target}", self.h2)
    }

    /// Runs curl over HTTP/2 against the h2 listener, bounded in time.
    fn curl(&self, args: &[&str]) -> Curl {
        let out = Command::new("curl")
            .args(["-sS", "--http2", "--noproxy", "*"])
            .args(["--connect-timeout", "10", "--max-time", "60"])
            .arg("--cacert")
            .arg(self.cert("ca.pem"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Curl {
            code: out.status.code(),
            info: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Header lines curl dumped with -D (lower-case names over h2).
fn dumped_header(path: &PathBuf, name: &str) -> Option<String> {
    fs::read_to_string(path).unwrap().lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn h2_get_range_status_and_log() {
    require_curl_http2!();
    let s = Server::start();
    s.text("/__log?clear=1");
    let (body, head) = (s.out("body"), s.out("head"));
    let (body_s, head_s) = (body.to_str().unwrap(), head.to_str().unwrap());
    let fmt = "%{http_version} %{http_code}";

    // Full GET: HTTP/2, no reason phrase, same headers as HTTP/1.1.
    let url = s.h2_url("/files/data.bin");
    let c = s.curl(&["-o", body_s, "-D", head_s, "-w", fmt, &url]);
    assert_eq!(
        (c.code, c.info.as_str()),
        (Some(0), "2 200"),
        "{}",
        c.stderr
    );
    assert_eq!(fs::read(&body).unwrap(), data());
    let first = fs::read_to_string(&head).unwrap();
    assert!(first.starts_with("HTTP/2 200 \r\n"), "{first}");
    let len = DATA_LEN.to_string();
    assert_eq!(
        dumped_header(&head, "content-length").as_deref(),
        Some(&*len)
    );
    assert_eq!(
        dumped_header(&head, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        dumped_header(&head, "accept-ranges").as_deref(),
        Some("bytes")
    );
    let etag = dumped_header(&head, "etag").unwrap();
    let lm = dumped_header(&head, "last-modified").unwrap();
    // HTTP/1.1 advertises the same validators.
    let h1 = s.get("/files/data.bin", &[]);
    assert_eq!(h1.header("etag"), Some(etag.as_str()));
    assert_eq!(h1.header("last-modified"), Some(lm.as_str()));

    // Range, then If-Range with the right and a wrong validator.
    for (if_range, code, want) in [
        (None, "206", &data()[1000..2000]),
        (Some(etag.as_str()), "206", &data()[1000..2000]),
        (Some("\"other\""), "200", &data()[..]),
    ] {
        let mut args = vec!["-o", body_s, "-D", head_s, "-w", fmt];
        args.extend(["-H", "Range: bytes=1000-1999"]);
        let ir = if_range.map(|v| format!("If-Range: {v}"));
        if let Some(h) = &ir {
            args.extend(["-H", h]);
        }
        args.push(&url);
        let c = s.curl(&args);
        assert_eq!(c.info, format!("2 {code}"), "{if_range:?} {}", c.stderr);
        assert_eq!(fs::read(&body).unwrap(), want, "{if_range:?}");
        if code == "206" {
            let cr = format!("bytes 1000-1999/{DATA_LEN}");
            assert_eq!(dumped_header(&head, "content-range"), Some(cr));
        }
    }
    let c = s.curl(&["-o", body_s, "-D", head_s, "-w", fmt, "-r", "999999-", &url]);
    assert_eq!(c.info, "2 416");
    let cr = format!("bytes */{DATA_LEN}");
    assert_eq!(dumped_header(&head, "content-range"), Some(cr));

    // Query switches, status codes, 404, redirects.
    let q = s.h2_url("/files/data.bin?norange&noetag&nolm");
    let c = s.curl(&[
        "-o",
        body_s,
        "-D",
        head_s,
        "-H",
        "Range: bytes=0-9",
        "-w",
        fmt,
        &q,
    ]);
    assert_eq!(c.info, "2 200");
    for h in ["accept-ranges", "etag", "last-modified"] {
        assert_eq!(dumped_header(&head, h), None, "{h}");
    }
    for (target, want) in [
        ("/files/nope.bin", "2 404"),
        ("/files/../etc/passwd", "2 403"),
        ("/status/503", "2 503"),
        ("/status/204", "2 204"),
        ("/files/hello.txt?status=410", "2 410"),
        ("/redirect/1", "2 302"),
    ] {
        let c = s.curl(&["-o", body_s, "-w", fmt, "--path-as-is", &s.h2_url(target)]);
        assert_eq!(c.info, want, "{target}: {}", c.stderr);
    }
    let url = s.h2_url("/redirect/2?to=/files/hello.txt");
    let c = s.curl(&[
        "-L",
        "-o",
        body_s,
        "-w",
        "%{http_version} %{num_redirects}",
        &url,
    ]);
    assert_eq!(c.info, "2 3");
    assert_eq!(fs::read(&body).unwrap(), b"hello world\n");
    // HEAD: headers (with the length) and no body.
    let c = s.curl(&["-I", "-o", head_s, "-w", fmt, &s.h2_url("/files/hello.txt")]);
    assert_eq!(c.info, "2 200");
    assert_eq!(
        dumped_header(&head, "content-length").as_deref(),
        Some("12")
    );
    // Request bodies reach /echo.
    let c = s.curl(&["--data-binary", "abc", &s.h2_url("/echo")]);
    assert!(c.info.contains("POST /echo HTTP/2\n"), "{}", c.info);
    assert!(c.info.contains("body-length: 3\n"), "{}", c.info);

    // The log marks h2 requests with tls=1 and a trailing h2=1.
    s.get("/files/hello.txt?plain", &[]);
    let log = s.text("/__log");
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {log}"))
            .to_string()
    };
    assert!(
        line(" GET /files/data.bin range=- ")
            .ends_with(&format!(" range=- if-range=- tls=1 served={DATA_LEN} h2=1")),
        "{log}"
    );
    assert!(
        line("range=bytes=1000-1999 if-range=-").ends_with(" tls=1 served=1000 h2=1"),
        "{log}"
    );
    assert!(line("?plain").ends_with(" tls=0 served=12"), "{log}");
}

#[test]
fn h2_concurrent_streams_share_a_connection() {
    require_curl_http2!();
    let s = Server::start();
    s.text("/__log?clear=1");
    let (a, b) = (s.out("a"), s.out("b"));
    // Throttled to ~0.5 s each, so the two transfers overlap.
    let (ua, ub) = (
        s.h2_url("/files/data.bin?rate=600000&n=a"),
        s.h2_url("/files/data.bin?rate=600000&n=b"),
    );
    let t0 = Instant::now();
    let c = s.curl(&[
        "-Z",
        "--parallel-max",
        "2",
        "-w",
        "%{http_version}\n",
        "-o",
        a.to_str().unwrap(),
        &ua,
        "-o",
        b.to_str().unwrap(),
        &ub,
    ]);
    let took = t0.elapsed();
    assert_eq!(
        (c.code, c.info.as_str()),
        (Some(0), "2\n2\n"),
        "{}",
        c.stderr
    );
    assert_eq!(fs::read(&a).unwrap(), data());
    assert_eq!(fs::read(&b).unwrap(), data());
    // Sequential would take about a second.
    assert!(took < Duration::from_millis(900), "{took:?}");

    let log = s.text("/__log");
    let conns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/files/data.bin") && l.ends_with(" h2=1"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(conns.len(), 2, "{log}");
    assert_eq!(conns[0], conns[1], "not multiplexed: {log}");

    // Separate clients at once work too.
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let out = s.out(&format!("p{i}"));
            let url = s.h2_url(&format!("/files/data.bin?p={i}"));
            let ca = s.cert("ca.pem");
            thread::spawn(move || {
                let st = Command::new("curl")
                    .args(["-sS", "--http2", "--noproxy", "*", "--max-time", "60"])
                    .arg("--cacert")
                    .arg(ca)
                    .arg("-o")
                    .arg(&out)
                    .arg(url)
                    .status()
                    .unwrap();
                (st.success(), fs::read(&out).unwrap_or_default())
            })
        })
        .collect();
    for r in runs {
        let (ok, body) = r.join().unwrap();
        assert!(ok);
        assert_eq!(body, data());
    }
}

#[test]
fn h2_faults_reset_the_stream() {
    require_curl_http2!();
    let s = Server::start();
    s.text("/__log?clear=1");
    let body = s.out("body");
    let body_s = body.to_str().unwrap();
    let fmt = "%{http_code} %{size_download}";

    // drop=N: N bytes, then RST_STREAM INTERNAL_ERROR (curl exit 92).
    let url = s.h2_url("/files/data.bin?drop=100000");
    let c = s.curl(&["-o", body_s, "-w", fmt, &url]);
    assert_eq!(c.code, Some(92), "{}", c.stderr);
    assert!(c.stderr.contains("INTERNAL_ERROR"), "{}", c.stderr);
    assert_eq!(c.info, "200 100000");
    assert_eq!(fs::read(&body).unwrap(), &data()[..100_000]);

    // times/key: only the first request with the key is faulty, and the
    // counter is shared with HTTP/1.1.
    let target = "/files/data.bin?drop=10&times=2&key=k";
    let c = s.curl(&["-o", body_s, "-w", fmt, &s.h2_url(target)]);
    assert_eq!((c.code, c.info.as_str()), (Some(92), "200 10"));
    assert!(!s.get(target, &[]).complete);
    let c = s.curl(&["-o", body_s, "-w", fmt, &s.h2_url(target)]);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert_eq!(fs::read(&body).unwrap(), data());

    // The connection survives a reset stream: later streams on it work.
    let c = s.curl(&[
        "-o",
        body_s,
        &s.h2_url("/files/data.bin?drop=5"),
        "-o",
        body_s,
        "-w",
        "%{http_code} %{size_download}\n",
        &s.h2_url("/files/hello.txt"),
    ]);
    assert!(c.info.ends_with("200 12\n"), "{:?} {}", c.info, c.stderr);

    // stall: bytes, then silence until stall_secs, then a reset.
    let t0 = Instant::now();
    let url = s.h2_url("/files/data.bin?stall=1000&stall_secs=1");
    let c = s.curl(&["-o", body_s, "-w", fmt, &url]);
    assert_eq!((c.code, c.info.as_str()), (Some(92), "200 1000"));
    assert!(t0.elapsed() >= Duration::from_millis(900));

    // rate throttles.
    let t0 = Instant::now();
    let c = s.curl(&[
        "-o",
        body_s,
        "-w",
        fmt,
        &s.h2_url("/files/data.bin?rate=1000000"),
    ]);
    assert_eq!(c.info, format!("200 {DATA_LEN}"));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");

    // Without "h2" in the client's ALPN the handshake fails.
    let c = s.curl(&["--http1.1", &s.h2_url("/files/hello.txt")]);
    assert_eq!(c.code, Some(35), "{}", c.stderr);

    let log = s.text("/__log");
    assert!(
        log.lines()
            .any(|l| l.contains("?drop=100000 ") && l.ends_with(" tls=1 served=100000 h2=1")),
        "{log}"
    );
}
