//! End-to-end tests: start the real binary on a temp root and talk to it
//! with a tiny raw HTTP/1.1 client (plain TCP and openssl TLS).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const DATA_LEN: usize = 300_000;

struct Server {
    child: Child,
    dir: PathBuf,
    http: u16,
    https: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "testserver-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic, non-repeating-looking content so offsets are checkable.
fn data() -> Vec<u8> {
    (0..DATA_LEN)
        .map(|i| ((i * 7 + i / 251) % 256) as u8)
        .collect()
}

impl Server {
    fn start() -> Server {
        let dir = temp_dir();
        let root = dir.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("hello.txt"), "hello world\n").unwrap();
        fs::write(root.join("data.bin"), data()).unwrap();
        fs::write(root.join("sub/page.html"), "<p>hi</p>").unwrap();
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
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = fs::read_to_string(&port_file) {
                for part in s.split_whitespace() {
                    match part.split_once('=') {
                        Some(("http", p)) => server.http = p.parse().unwrap(),
                        Some(("https", p)) => server.https = p.parse().unwrap(),
                        _ => panic!("bad port file {s:?}"),
                    }
                }
                assert!(server.http != 0 && server.https != 0, "bad port file {s:?}");
                return server;
            }
            assert!(Instant::now() < deadline, "server did not start");
            thread::sleep(Duration::from_millis(20));
        }
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
    let dir = temp_dir();
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
