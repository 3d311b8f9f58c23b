//! Upload receivers that check what a client sent, byte for byte:
//!
//! - `POST|PUT /upload/multipart[?store=KEY]` parses `multipart/form-data`
//!   with the `multer` crate (independent of ohreq's own encoder) and
//!   answers with each part's length and SHA-256; `store` also writes the
//!   file parts to `<root>/uploads/<KEY>/<index>-<filename>`.
//! - `PUT|POST /upload/raw/<name>` stores the raw body to
//!   `<root>/uploads/raw/<name>` and answers with its length and SHA-256.
//!
//! Both stream: parts and bodies are hashed (and written) as they arrive,
//! never held whole in memory. Both take `status=CODE` (answer that status,
//! after reading the body) and `drop=N` (abort after N body bytes), limited
//! by `times=T&key=K` as on `/files/`. The body is a blocking `Read`: the
//! connection for HTTP/1.1, the stream (bridged from tokio) for HTTP/2.

use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use openssl::sha::Sha256;

use crate::http::{Body, Request, Response, percent_decode};
use crate::log::Shared;
use crate::routes::{effective_status, num};

const MULTIPART_PATH: &str = "/upload/multipart";
const RAW_PREFIX: &str = "/upload/raw/";
/// Read size for bodies (and so the most one step of parsing buffers).
const READ_CHUNK: usize = 64 * 1024;
/// Parts without a filename shorter than this get their text in `value`.
const MAX_VALUE: usize = 4096;
/// Keeps sanitized names well below NAME_MAX.
const MAX_NAME: usize = 200;

pub fn is_upload(path: &str) -> bool {
    path == MULTIPART_PATH || path.starts_with(RAW_PREFIX)
}

/// What the transport does after an upload request.
pub enum Outcome {
    Respond(Response),
    /// Cut the connection (HTTP/2: reset the stream) without an answer:
    /// the `drop` fault, or the body could not be read (client gone).
    Abort,
    /// Malformed chunked framing: answer 400 and close the connection.
    BadFraming(String),
}

/// Why the request body ended early.
enum Failure {
    Dropped,
    Framing(String),
    Io,
}

/// The request body with the byte count (live, for `/__log`) and the
/// `drop` cut. The first failure sticks: every later read fails too.
struct Counted<'a> {
    inner: &'a mut (dyn Read + Send),
    recv: &'a AtomicU64,
    total: u64,
    drop_at: Option<u64>,
    failed: Option<Failure>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("request body failed"));
        }
        let mut want = buf.len();
        if let Some(cut) = self.drop_at {
            let left = cut - self.total;
            if left == 0 {
                self.failed = Some(Failure::Dropped);
                return Err(io::Error::other("drop fault"));
            }
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        match self.inner.read(&mut buf[..want]) {
            Ok(n) => {
                self.total += n as u64;
                self.recv.fetch_add(n as u64, Ordering::SeqCst);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(if e.kind() == io::ErrorKind::InvalidData {
                    Failure::Framing(e.to_string())
                } else {
                    Failure::Io
                });
                Err(e)
            }
        }
    }
}

impl Counted<'_> {
    /// Reads (and discards) the rest of the body.
    fn drain(&mut self) {
        let _ = io::copy(self, &mut io::sink());
    }
}

pub fn handle(
    shared: &Shared,
    req: &Request,
    body: &mut (dyn Read + Send),
    recv: &AtomicU64,
) -> Outcome {
    // As on /files/: `times=T&key=K` limits the faults to the first T
    // requests with key K (default: the path).
    let faulty = match num(req, "times") {
        Some(t) => {
            let key = req.query_param("key").unwrap_or_else(|| req.path.clone());
            shared.fault_active(&key, t)
        }
        None => true,
    };
    let mut c = Counted {
        inner: body,
        recv,
        total: 0,
        drop_at: num(req, "drop").filter(|_| faulty),
        failed: None,
    };
    let status = match req.query_param("status").filter(|_| faulty) {
        None => Some(200),
        Some(code) => effective_status(&code),
    };
    let resp = match (req.method.as_str(), status) {
        ("POST" | "PUT", Some(status)) => match req.path.strip_prefix(RAW_PREFIX) {
            Some(name) => raw(shared, req, name, &mut c, status),
            None => multipart(shared, req, &mut c, status),
        },
        ("POST" | "PUT", None) => error(400, "bad status code"),
        _ => error(405, "method not allowed").header("Allow", "POST, PUT"),
    };
    // Whatever the answer, the body is read to its end first.
    c.drain();
    match c.failed {
        Some(Failure::Framing(why)) => Outcome::BadFraming(why),
        Some(Failure::Dropped | Failure::Io) => Outcome::Abort,
        // `drop=N` beyond the body's end: cut after all of it.
        None if c.drop_at.is_some() => Outcome::Abort,
        None => Outcome::Respond(resp.header("X-Received-Bytes", c.total.to_string())),
    }
}

fn json_response(status: u16, json: String) -> Response {
    let mut r = Response::new(status).header("Content-Type", "application/json");
    r.body = Body::Bytes(json.into_bytes());
    r
}

fn error(status: u16, why: &str) -> Response {
    json_response(status, format!("{{\"error\":{}}}\n", json_str(why)))
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), json_str)
}

fn hex(digest: [u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file or directory name from client input: characters outside
/// `[A-Za-z0-9._-]` become `_`, and all-dot names (`.`, `..`) or an empty
/// one get a leading `_`, so the result never leaves its directory.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.bytes().all(|b| b == b'.') {
        out.insert(0, '_');
    }
    out
}

// ---- /upload/raw/<name> ----

fn raw(shared: &Shared, req: &Request, name: &str, c: &mut Counted, status: u16) -> Response {
    if name.is_empty() {
        return error(400, "missing name");
    }
    let name = sanitize(&percent_decode(name, false));
    let rel = format!("uploads/raw/{name}");
    let dir = shared.root.join("uploads").join("raw");
    if let Err(e) = fs::create_dir_all(&dir) {
        return error(500, &format!("create {}: {e}", dir.display()));
    }
    // Written aside and renamed when complete, so the file at the final
    // path is always a whole upload.
    static TMP: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}.part",
        TMP.fetch_add(1, Ordering::SeqCst)
    ));
    let mut file = match File::create(&tmp) {
        Ok(f) => Some(f),
        Err(e) => return error(500, &format!("create {}: {e}", tmp.display())),
    };
    let mut write_err = None;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        hasher.update(&buf[..n]);
        if let Some(f) = file.as_mut()
            && let Err(e) = f.write_all(&buf[..n])
        {
            write_err = Some(e);
            file = None;
        }
    }
    drop(file);
    let aborted = c.failed.is_some() || c.drop_at.is_some();
    let stored = if aborted || write_err.is_some() || !(200..300).contains(&status) {
        let _ = fs::remove_file(&tmp);
        None
    } else if let Err(e) = fs::rename(&tmp, dir.join(&name)) {
        let _ = fs::remove_file(&tmp);
        write_err = Some(e);
        None
    } else {
        Some(rel)
    };
    if let Some(e) = write_err {
        return error(500, &format!("store {name}: {e}"));
    }
    json_response(
        status,
        format!(
            "{{\"length\":{},\"sha256\":\"{}\",\"content_type\":{},\"method\":{},\"stored\":{}}}\n",
            c.total,
            hex(hasher.finish()),
            json_opt(req.header("content-type")),
            json_str(&req.method),
            json_opt(stored.as_deref()),
        ),
    )
}

// ---- /upload/multipart ----

struct Part {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    length: u64,
    sha256: String,
    value: Option<String>,
    stored: Option<String>,
}

impl Part {
    fn json(&self) -> String {
        let mut out = format!(
            "{{\"name\":{},\"filename\":{},\"content_type\":{},\"length\":{},\"sha256\":\"{}\"",
            json_opt(self.name.as_deref()),
            json_opt(self.filename.as_deref()),
            json_opt(self.content_type.as_deref()),
            self.length,
            self.sha256
        );
        if let Some(v) = &self.value {
            out.push_str(&format!(",\"value\":{}", json_str(v)));
        }
        if let Some(s) = &self.stored {
            out.push_str(&format!(",\"stored\":{}", json_str(s)));
        }
        out.push('}');
        out
    }
}

enum PartsError {
    Parse(multer::Error),
    Store(io::Error),
}

/// Where `store=KEY` puts file parts: the directory and its name relative
/// to the root.
struct Store {
    dir: PathBuf,
    rel: String,
}

fn multipart(shared: &Shared, req: &Request, c: &mut Counted, status: u16) -> Response {
    let boundary = match req.header("content-type").map(multer::parse_boundary) {
        Some(Ok(b)) => b,
        Some(Err(e)) => return error(400, &format!("content-type: {e}")),
        None => return error(400, "content-type: missing"),
    };
    let store = match req.query_param("store") {
        Some(key) => {
            let rel = format!("uploads/{}", sanitize(&key));
            let dir = shared.root.join(&rel);
            if let Err(e) = fs::create_dir_all(&dir) {
                return error(500, &format!("create {}: {e}", dir.display()));
            }
            Some(Store { dir, rel })
        }
        None => None,
    };
    let parts = {
        let stream = ReadStream {
            reader: &mut *c,
            buf: vec![0u8; READ_CHUNK],
            yield_next: false,
            eof: false,
        };
        let mut mp = multer::Multipart::new(stream, boundary);
        block_on(read_parts(&mut mp, store.as_ref()))
    };
    let parts = match parts {
        Ok(p) => p,
        Err(PartsError::Parse(e)) => return error(400, &format!("malformed multipart body: {e}")),
        Err(PartsError::Store(e)) => return error(500, &format!("store: {e}")),
    };
    // The epilogue after the closing boundary, if any.
    c.drain();
    let parts: Vec<String> = parts.iter().map(Part::json).collect();
    json_response(
        status,
        format!(
            "{{\"parts\":[{}],\"content_length\":{},\"request_content_type\":{},\"method\":{}}}\n",
            parts.join(","),
            c.total,
            json_opt(req.header("content-type")),
            json_str(&req.method),
        ),
    )
}

async fn read_parts(
    mp: &mut multer::Multipart<'_>,
    store: Option<&Store>,
) -> Result<Vec<Part>, PartsError> {
    let mut parts = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(PartsError::Parse)? {
        let index = field.index();
        let name = field.name().map(str::to_string);
        let filename = field.file_name().map(str::to_string);
        let content_type = field
            .headers()
            .get("content-type")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut file = match (&filename, store) {
            (Some(f), Some(store)) => {
                let fname = format!("{index}-{}", sanitize(f));
                let file = File::create(store.dir.join(&fname)).map_err(PartsError::Store)?;
                Some((file, format!("{}/{fname}", store.rel)))
            }
            _ => None,
        };
        let mut hasher = Sha256::new();
        let mut length = 0u64;
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(PartsError::Parse)? {
            hasher.update(&chunk);
            length += chunk.len() as u64;
            if filename.is_none() && value.len() < MAX_VALUE {
                let take = (MAX_VALUE - value.len()).min(chunk.len());
                value.extend_from_slice(&chunk[..take]);
            }
            if let Some((f, _)) = file.as_mut() {
                f.write_all(&chunk).map_err(PartsError::Store)?;
            }
        }
        let value = (filename.is_none() && length < MAX_VALUE as u64)
            .then(|| String::from_utf8_lossy(&value).into_owned());
        parts.push(Part {
            name,
            filename,
            content_type,
            length,
            sha256: hex(hasher.finish()),
            value,
            stored: file.map(|(_, rel)| rel),
        });
    }
    Ok(parts)
}

/// The blocking body as the chunk stream `multer` parses. It yields
/// (`Pending`, waking itself) after every chunk: multer's buffer pulls from
/// the stream until `Pending`, and would otherwise take the whole body.
struct ReadStream<'a, 'b> {
    reader: &'a mut Counted<'b>,
    buf: Vec<u8>,
    yield_next: bool,
    eof: bool,
}

impl Stream for ReadStream<'_, '_> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.eof {
            return Poll::Ready(None);
        }
        if this.yield_next {
            this.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.reader.read(&mut this.buf) {
            Ok(0) => {
                this.eof = true;
                Poll::Ready(None)
            }
            Ok(n) => {
                this.yield_next = true;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(&this.buf[..n]))))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Err(e) => {
                this.eof = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

/// Runs a future whose only `Pending`s are `ReadStream`'s yields (reads
/// block instead), so polling again at once always makes progress.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("a.txt"), "a.txt");
        assert_eq!(sanitize("../x/y z.bin"), ".._x_y_z.bin");
        assert_eq!(sanitize(".."), "_..");
        assert_eq!(sanitize("."), "_.");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("é\\b"), "__b");
        assert_eq!(sanitize(&"x".repeat(300)).len(), MAX_NAME);
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        assert_eq!(json_opt(None), "null");
    }
}
