//! Endpoints. Each handler turns a parsed request into a `Response`; it is
//! transport-independent: the HTTP/1.1 connection loop in main.rs and the
//! HTTP/2 streams in http2.rs do the I/O.

use std::fs::File;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use openssl::sha::Sha256;

use crate::http::{
    Body, Faults, Framing, RangeSpec, Request, Response, http_date, parse_range, percent_decode,
};
use crate::log::Shared;

/// Upper bounds for client-chosen sleeps, so a typo cannot wedge a thread.
const MAX_DELAY_MS: u64 = 600_000;
const MAX_STALL_SECS: u64 = 3600;
const DEFAULT_STALL_SECS: u64 = 120;

/// Request-body summary, only computed for `/echo`.
pub struct EchoBody {
    pub len: u64,
    pub sha256_hex: String,
}

impl EchoBody {
    pub fn new(len: u64, hasher: Sha256) -> EchoBody {
        EchoBody {
            len,
            sha256_hex: hasher.finish().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

pub fn handle(shared: &Shared, req: &Request, echo: Option<EchoBody>) -> Response {
    let path = req.path.as_str();
    if path == "/__log" {
        let clear = req.query_param("clear").is_some_and(|v| v == "1");
        return Response::text(200, shared.render_log(clear));
    }
    if path == "/__stats" {
        return Response::text(200, shared.render_stats());
    }
    if path == "/echo" {
        return echo_response(req, echo);
    }
    if path == "/loop" {
        return Response::text(302, "redirecting\n").header("Location", "/loop");
    }
    if let Some(rel) = path.strip_prefix("/files/") {
        return files(shared, req, rel);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return status_response(code);
    }
    if let Some(n) = path.strip_prefix("/redirect/") {
        return redirect(req, n);
    }
    not_found()
}

fn not_found() -> Response {
    Response::text(404, "not found\n")
}

/// Maps a requested status to the one we send: 1xx cannot be sent as a
/// final response, so it becomes 500; out-of-range values are rejected.
pub fn effective_status(code: &str) -> Option<u16> {
    match code.parse::<u16>() {
        Ok(c @ 200..=599) => Some(c),
        Ok(100..=199) => Some(500),
        _ => None,
    }
}

fn status_response(code: &str) -> Response {
    match effective_status(code) {
        Some(c) => Response::text(c, format!("status {c}\n")),
        None => Response::text(400, "bad status code\n"),
    }
}

fn redirect(req: &Request, n: &str) -> Response {
    let Ok(n) = n.parse::<u32>() else {
        return not_found();
    };
    let code = match req.query_param("code").as_deref() {
        Some("301") => 301,
        Some("303") => 303,
        Some("307") => 307,
        Some("308") => 308,
        _ => 302,
    };
    let location = if n > 0 {
        // Pass the query on verbatim so `to` and `code` survive the chain.
        if req.raw_query.is_empty() {
            format!("/redirect/{}", n - 1)
        } else {
            format!("/redirect/{}?{}", n - 1, req.raw_query)
        }
    } else {
        req.query_param("to")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "/files/hello.txt".to_string())
    };
    Response::text(code, "redirecting\n").header("Location", location)
}

fn echo_response(req: &Request, echo: Option<EchoBody>) -> Response {
    let mut out = String::new();
    for line in &req.raw_lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    let (len, hex) = match echo {
        Some(e) => (e.len, e.sha256_hex),
        None => (0, String::new()),
    };
    out.push_str(&format!("body-length: {len}\nbody-sha256: {hex}\n"));
    Response::text(200, out)
}

fn content_type(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// Maps the percent-encoded path below `/files/` to a file under the root,
/// refusing anything that could escape it.
fn resolve(root: &std::path::Path, rel: &str) -> Result<PathBuf, Response> {
    let mut path = root.to_path_buf();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(seg, false);
        if seg == ".." || seg.contains(['/', '\\', '\0']) {
            return Err(Response::text(403, "forbidden\n"));
        }
        if seg != "." {
            path.push(seg);
        }
    }
    Ok(path)
}

/// Query flags are on when present with any value except "0"/"false".
fn flag(req: &Request, name: &str) -> bool {
    req.query_param(name)
        .is_some_and(|v| v != "0" && v != "false")
}

pub fn num(req: &Request, name: &str) -> Option<u64> {
    req.query_param(name).and_then(|v| v.parse().ok())
}

fn files(shared: &Shared, req: &Request, rel: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD");
    }
    // `times=T&key=K`: only the first T requests with key K get the
    // drop/stall/status faults; the key defaults to the path.
    let faulty = match num(req, "times") {
        Some(t) => {
            let key = req.query_param("key").unwrap_or_else(|| req.path.clone());
            shared.fault_active(&key, t)
        }
        None => true,
    };
    if let Some(ms) = num(req, "delay_ms") {
        thread::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS)));
    }
    if faulty && let Some(code) = req.query_param("status") {
        return status_response(&code);
    }

    let path = match resolve(&shared.root, rel) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let meta = match file.metadata() {
        Ok(m) if m.is_file() => m,
        _ => return not_found(),
    };
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let nanos = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);

    let etag = match req.query_param("etag") {
        _ if flag(req, "noetag") => None,
        Some(v) => Some(format!("\"{v}\"")),
        None => Some(format!("\"{size:x}-{nanos:x}\"")),
    };
    let last_modified = (!flag(req, "nolm")).then(|| http_date(mtime));
    let norange = flag(req, "norange");

    let mut resp = Response::new(200).header("Content-Type", content_type(&path));
    if !norange {
        resp = resp.header("Accept-Ranges", "bytes");
    }
    if let Some(e) = &etag {
        resp = resp.header("ETag", e.clone());
    }
    if let Some(lm) = &last_modified {
        resp = resp.header("Last-Modified", lm.clone());
    }

    // If-Range uses strong comparison against what we actually advertise.
    let if_range_ok = match req.header("if-range") {
        None => true,
        Some(v) => etag.as_deref() == Some(v) || last_modified.as_deref() == Some(v),
    };
    let range = match req.header("range") {
        Some(h) if !norange && if_range_ok => parse_range(h, size),
        _ => RangeSpec::Ignore,
    };
    let (offset, len) = match range {
        RangeSpec::Ignore => (0, size),
        RangeSpec::Range(a, b) => {
            resp.status = 206;
            resp = resp.header("Content-Range", format!("bytes {a}-{b}/{size}"));
            (a, b - a + 1)
        }
        RangeSpec::Unsatisfiable => {
            resp.status = 416;
            resp.headers.retain(|(n, _)| n != "Content-Type");
            resp = resp
                .header("Content-Type", "text/plain")
                .header("Content-Range", format!("bytes */{size}"));
            resp.body = Body::Bytes(b"range not satisfiable\n".to_vec());
            return resp;
        }
    };

    resp.body = Body::File { file, offset, len };
    resp.framing = if flag(req, "chunked") {
        Framing::Chunked
    } else if flag(req, "nolength") {
        Framing::Close
    } else {
        Framing::Length
    };
    resp.faults = Faults {
        rate: num(req, "rate").filter(|&r| r > 0),
        drop_after: num(req, "drop").filter(|_| faulty),
        stall_after: num(req, "stall").filter(|_| faulty),
        stall_secs: num(req, "stall_secs")
            .unwrap_or(DEFAULT_STALL_SECS)
            .min(MAX_STALL_SECS),
    };
    resp
}
