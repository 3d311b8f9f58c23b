//! Minimal HTTP/1.1: request-head parsing, request-body draining and
//! response writing with fault injection (throttle, drop, stall).

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::sha::Sha256;
use openssl::ssl::SslStream;

/// Body write size: big writes keep the server from being the bottleneck.
pub const CHUNK: usize = 256 * 1024;
const MAX_LINE: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 200;

/// A client connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Conn {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Orderly close: TLS close_notify, FIN, then briefly drain whatever the
    /// peer still sends so the kernel does not answer it with a RST (which
    /// could make the client discard response data it has not read yet).
    pub fn close_gracefully(&mut self) {
        if let Conn::Tls(s) = self {
            let _ = s.shutdown();
        }
        let mut tcp = self.tcp();
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match tcp.read(&mut buf) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    /// Abrupt close used by the `drop` fault: no close_notify, no draining.
    pub fn abort(&self) {
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

pub struct Request {
    pub method: String,
    /// Request target exactly as received (path + query).
    pub target: String,
    /// Path part of the target, still percent-encoded.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub raw_query: String,
    /// Request line and header lines as received, without CRLF.
    pub raw_lines: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub http10: bool,
    pub body: BodyFraming,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked us to close after this exchange.
    pub fn wants_close(&self) -> bool {
        let has_token = |tok: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(tok)))
        };
        if self.http10 {
            !has_token("keep-alive")
        } else {
            has_token("close")
        }
    }

    /// Decoded query parameters, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        parse_query(&self.raw_query)
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Splits a request target into its (still percent-encoded) path and raw query.
pub fn split_target(target: &str) -> (String, String) {
    match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    }
}

pub enum HeadError {
    /// Connection-level failure or timeout: just close.
    Io,
    /// Malformed request: answer 400 and close.
    Bad(&'static str),
}

impl From<io::Error> for HeadError {
    fn from(_: io::Error) -> Self {
        HeadError::Io
    }
}

/// Reads one line (terminated by LF, CR stripped) of at most `max` bytes.
/// Returns `Ok(None)` on EOF before any byte.
fn read_line<R: BufRead>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, HeadError> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(HeadError::Io)
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if line.len() > max {
            return Err(HeadError::Bad("line too long"));
        }
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads a request head. `Ok(None)` means the client closed (or idled out)
/// cleanly between requests.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Option<Request>, HeadError> {
    // RFC 9112 2.2: tolerate a few empty lines before the request line.
    let mut line = None;
    for _ in 0..8 {
        match read_line(r, MAX_LINE) {
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => {
                line = Some(l);
                break;
            }
            Ok(None) => return Ok(None),
            Err(HeadError::Io) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    let line = line.ok_or(HeadError::Bad("no request line"))?;
    let request_line =
        String::from_utf8(line).map_err(|_| HeadError::Bad("non-UTF-8 request line"))?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(HeadError::Bad("malformed request line")),
    };
    if !is_token(method) || !target.starts_with('/') {
        return Err(HeadError::Bad("malformed request line"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(HeadError::Bad("unsupported HTTP version")),
    };
    let (path, raw_query) = split_target(target);

    let mut raw_lines = vec![request_line.clone()];
    let mut headers = Vec::new();
    let mut total = request_line.len();
    loop {
        let l = read_line(r, MAX_LINE)?.ok_or(HeadError::Io)?;
        if l.is_empty() {
            break;
        }
        total += l.len();
        if total > MAX_HEAD || headers.len() >= MAX_HEADERS {
            return Err(HeadError::Bad("request head too large"));
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(HeadError::Bad("obsolete line folding"));
        }
        let l = String::from_utf8_lossy(&l).into_owned();
        let (name, value) = l
            .split_once(':')
            .ok_or(HeadError::Bad("header without colon"))?;
        if !is_token(name) {
            return Err(HeadError::Bad("bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
        raw_lines.push(l);
    }

    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        path,
        raw_query,
        raw_lines,
        headers,
        http10,
        body: BodyFraming::None,
    };
    req.body = body_framing(&req)?;
    Ok(Some(req))
}

fn body_framing(req: &Request) -> Result<BodyFraming, HeadError> {
    if let Some(te) = req.header("transfer-encoding") {
        // Chunked must be the final coding; anything else has no length.
        let last = te.rsplit(',').next().unwrap_or("").trim();
        return if last.eq_ignore_ascii_case("chunked") {
            Ok(BodyFraming::Chunked)
        } else {
            Err(HeadError::Bad("unsupported transfer-encoding"))
        };
    }
    let mut len: Option<u64> = None;
    for (n, v) in &req.headers {
        if n.eq_ignore_ascii_case("content-length") {
            let v: u64 = v
                .parse()
                .map_err(|_| HeadError::Bad("bad content-length"))?;
            if len.is_some_and(|l| l != v) {
                return Err(HeadError::Bad("conflicting content-length"));
            }
            len = Some(v);
        }
    }
    Ok(match len {
        Some(0) | None => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// A request body as a byte stream: decodes `Content-Length` or chunked
/// framing on top of the connection's reader and stops at the body's end,
/// so the connection stays in sync for the next request.
///
/// Malformed chunked framing reads as an `InvalidData` error; `bad` then
/// says why (the connection must be answered 400 and closed).
pub struct BodyReader<'a, R: BufRead> {
    r: &'a mut R,
    /// Bytes left in the current chunk (or the whole length-framed body).
    remaining: u64,
    chunked: bool,
    /// A chunk's data was read and its CRLF is still due.
    chunk_open: bool,
    done: bool,
    pub bad: Option<&'static str>,
}

impl<'a, R: BufRead> BodyReader<'a, R> {
    pub fn new(r: &'a mut R, framing: BodyFraming) -> BodyReader<'a, R> {
        let (remaining, chunked, done) = match framing {
            BodyFraming::None => (0, false, true),
            BodyFraming::Length(n) => (n, false, n == 0),
            BodyFraming::Chunked => (0, true, false),
        };
        BodyReader {
            r,
            remaining,
            chunked,
            chunk_open: false,
            done,
            bad: None,
        }
    }

    fn fail(&mut self, e: HeadError) -> io::Error {
        match e {
            HeadError::Io => io::Error::from(io::ErrorKind::UnexpectedEof),
            HeadError::Bad(why) => {
                self.bad = Some(why);
                io::Error::new(io::ErrorKind::InvalidData, why)
            }
        }
    }

    /// Moves to the next chunk when the current one is used up; false at
    /// the end of the body.
    fn next_chunk(&mut self) -> Result<bool, HeadError> {
        if self.done {
            return Ok(false);
        }
        if self.remaining > 0 {
            return Ok(true);
        }
        if !self.chunked {
            self.done = true;
            return Ok(false);
        }
        if self.chunk_open {
            if !read_line(self.r, 2)?.ok_or(HeadError::Io)?.is_empty() {
                return Err(HeadError::Bad("missing CRLF after chunk"));
            }
            self.chunk_open = false;
        }
        let line = read_line(self.r, MAX_LINE)?.ok_or(HeadError::Io)?;
        let line = String::from_utf8_lossy(&line);
        let size = line.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > 15 {
            return Err(HeadError::Bad("bad chunk size"));
        }
        let size = u64::from_str_radix(size, 16).map_err(|_| HeadError::Bad("bad chunk size"))?;
        if size == 0 {
            // Trailer section, ends with an empty line.
            for _ in 0..MAX_HEADERS {
                if read_line(self.r, MAX_LINE)?
                    .ok_or(HeadError::Io)?
                    .is_empty()
                {
                    self.done = true;
                    return Ok(false);
                }
            }
            return Err(HeadError::Bad("too many trailers"));
        }
        self.remaining = size;
        self.chunk_open = true;
        Ok(true)
    }
}

impl<R: BufRead> BufRead for BodyReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.next_chunk() {
            Ok(true) => {}
            Ok(false) => return Ok(&[]),
            Err(e) => return Err(self.fail(e)),
        }
        let remaining = self.remaining;
        let buf = self.r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let n = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        Ok(&buf[..n])
    }

    fn consume(&mut self, n: usize) {
        self.r.consume(n);
        self.remaining -= n as u64;
    }
}

impl<R: BufRead> Read for BodyReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Reads and discards the request body, feeding it to `hasher` if given.
/// Returns the body length.
pub fn read_body<R: BufRead>(
    r: &mut R,
    framing: BodyFraming,
    mut hasher: Option<&mut Sha256>,
) -> Result<u64, HeadError> {
    let mut body = BodyReader::new(r, framing);
    let mut total = 0u64;
    loop {
        let buf = match body.fill_buf() {
            Ok(b) => b,
            Err(_) => return Err(body.bad.map_or(HeadError::Io, HeadError::Bad)),
        };
        if buf.is_empty() {
            return Ok(total);
        }
        let k = buf.len();
        if let Some(h) = hasher.as_deref_mut() {
            h.update(buf);
        }
        body.consume(k);
        total += k as u64;
    }
}

/// Writes `100 Continue` if the client waits for it before sending a body
/// (libcurl does for large uploads; otherwise it stalls for a second).
pub fn maybe_continue(conn: &mut Conn, req: &Request) -> io::Result<()> {
    let expects = req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects && !req.http10 && req.body != BodyFraming::None {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    Ok(())
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    File { file: File, offset: u64, len: u64 },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

/// How the end of the response body is signalled.
#[derive(Clone, Copy, PartialEq)]
pub enum Framing {
    Length,
    Chunked,
    /// No length: the body ends when we close the connection.
    Close,
}

#[derive(Default, Clone, Copy)]
pub struct Faults {
    /// Throttle the body to about this many bytes per second.
    pub rate: Option<u64>,
    /// Abort the connection after this many body bytes.
    pub drop_after: Option<u64>,
    /// Stop sending after this many body bytes and hold the connection.
    pub stall_after: Option<u64>,
    pub stall_secs: u64,
}

/// How a response body ends once the faults are applied.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Ending {
    /// The whole body is sent.
    Complete,
    /// Stop after the cut and hold the connection (or stream) open.
    Stall,
    /// Abort the connection (or reset the stream) after the cut.
    Drop,
}

impl Faults {
    /// How many of a `total`-byte body's bytes are sent, and what happens
    /// then. The earliest fault wins; a stall at the same offset beats a drop.
    pub fn cut(&self, total: u64) -> (u64, Ending) {
        let stall = self.stall_after.map(|n| n.min(total));
        let drop = self.drop_after.map(|n| n.min(total));
        match (stall, drop) {
            (Some(s), Some(d)) if d < s => (d, Ending::Drop),
            (Some(s), _) => (s, Ending::Stall),
            (None, Some(d)) => (d, Ending::Drop),
            (None, None) => (total, Ending::Complete),
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub framing: Framing,
    pub faults: Faults,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            framing: Framing::Length,
            faults: Faults::default(),
        }
    }

    pub fn text(status: u16, text: impl Into<String>) -> Response {
        let mut r = Response::new(status).header("Content-Type", "text/plain; charset=utf-8");
        r.body = Body::Bytes(text.into().into_bytes());
        r
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What the connection loop should do after a response.
#[derive(PartialEq, Debug)]
pub enum After {
    KeepAlive,
    /// Close gracefully.
    Close,
    /// The connection was already torn down (drop/stall fault).
    Aborted,
}

/// Buffers the response head so it goes out with the first body bytes in
/// one write; adds chunked framing; counts body bytes written.
struct Sink<'a> {
    conn: &'a mut Conn,
    pending: Vec<u8>,
    chunked: bool,
    served: &'a AtomicU64,
}

impl Sink<'_> {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.chunked {
            write!(self.pending, "{:x}\r\n", data.len())?;
            self.pending.extend_from_slice(data);
            self.pending.extend_from_slice(b"\r\n");
        } else if self.pending.is_empty() {
            self.conn.write_all(data)?;
            self.served.fetch_add(data.len() as u64, Ordering::SeqCst);
            return Ok(());
        } else {
            self.pending.extend_from_slice(data);
        }
        self.flush()?;
        self.served.fetch_add(data.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.conn.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.conn.flush()
    }
}

/// Writes a full response. `head_only` is for HEAD requests; `close` when
/// the client asked for `Connection: close`.
pub fn write_response(
    conn: &mut Conn,
    resp: Response,
    head_only: bool,
    close: bool,
    served: &AtomicU64,
) -> io::Result<After> {
    // 204 and 304 never carry a body (RFC 9110 6.4.1).
    let no_body = matches!(resp.status, 204 | 304);
    let framing = if no_body {
        Framing::Length
    } else {
        resp.framing
    };
    let close = close || framing == Framing::Close;

    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    head.push_str(&format!(
        "Date: {}\r\nServer: ohreq-testserver\r\n",
        http_date(SystemTime::now())
    ));
    for (n, v) in &resp.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    match framing {
        Framing::Length if resp.status != 204 && !(no_body && resp.body.len() == 0) => {
            head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");

    let mut sink = Sink {
        conn,
        pending: head.into_bytes(),
        chunked: framing == Framing::Chunked,
        served,
    };
    if head_only || no_body {
        sink.flush()?;
        return Ok(if close {
            After::Close
        } else {
            After::KeepAlive
        });
    }

    let faults = resp.faults;
    let (cut, ending) = faults.cut(resp.body.len());

    send_body(&mut sink, resp.body, cut, faults.rate)?;
    sink.flush()?;

    match ending {
        Ending::Stall => {
            stall_connection(sink.conn, faults.stall_secs);
            sink.conn.abort();
            return Ok(After::Aborted);
        }
        Ending::Drop => {
            sink.conn.abort();
            return Ok(After::Aborted);
        }
        Ending::Complete => {}
    }
    if framing == Framing::Chunked {
        sink.conn.write_all(b"0\r\n\r\n")?;
    }
    Ok(if close {
        After::Close
    } else {
        After::KeepAlive
    })
}

/// Sends the first `limit` bytes of `body`, throttled to `rate` bytes/s.
fn send_body(sink: &mut Sink<'_>, body: Body, limit: u64, rate: Option<u64>) -> io::Result<()> {
    // At most ~50 ms worth of data per write when throttling.
    let slice = match rate {
        Some(r) => (r / 20).clamp(1, CHUNK as u64) as usize,
        None => CHUNK,
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut buf = Vec::new();
    let mut file = None;
    let bytes = match body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b,
        Body::File {
            file: mut f,
            offset,
            ..
        } => {
            f.seek(SeekFrom::Start(offset))?;
            file = Some(f);
            buf = vec![0u8; slice.min(limit as usize)];
            Vec::new()
        }
    };
    while sent < limit {
        let n = (limit - sent).min(slice as u64) as usize;
        match file.as_mut() {
            Some(f) => {
                // A file truncated underneath us surfaces as an error here,
                // which closes the connection: the length was already sent.
                f.read_exact(&mut buf[..n])?;
                sink.send(&buf[..n])?;
            }
            None => sink.send(&bytes[sent as usize..sent as usize + n])?,
        }
        sent += n as u64;
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            let elapsed = start.elapsed();
            if due > elapsed {
                // Flush first so the client sees the bytes before we sleep.
                sink.flush()?;
                thread::sleep(due - elapsed);
            }
        }
    }
    Ok(())
}

/// Holds the connection open without sending, for up to `secs` seconds, but
/// gives up early once the client has gone away (so threads do not pile up).
fn stall_connection(conn: &Conn, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tcp = conn.tcp();
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
    let mut probe = [0u8; 1];
    while Instant::now() < deadline {
        match tcp.peek(&mut probe) {
            Ok(0) => return,
            // The client sent something (e.g. a pipelined request); we are
            // not reading it, so avoid spinning on peek.
            Ok(_) => thread::sleep(Duration::from_millis(50)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let wd = (days + 4).rem_euclid(7) as usize;
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[wd],
        d,
        MONTHS[m as usize - 1],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Result of interpreting a `Range` header against a resource size.
#[derive(Debug, PartialEq)]
pub enum RangeSpec {
    /// Not a single valid byte range: serve the full body.
    Ignore,
    Unsatisfiable,
    /// Inclusive byte range.
    Range(u64, u64),
}

pub fn parse_range(h: &str, total: u64) -> RangeSpec {
    let h = h.trim();
    let Some(spec) = h
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("bytes="))
        .map(|_| &h[6..])
    else {
        return RangeSpec::Ignore;
    };
    // Multiple ranges would need multipart/byteranges; ignoring is allowed.
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if a.is_empty() {
        return match num(b) {
            None => RangeSpec::Ignore,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if total == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Range(total.saturating_sub(n), total - 1),
        };
    }
    let Some(start) = num(a) else {
        return RangeSpec::Ignore;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(e) if e >= start => e,
            _ => return RangeSpec::Ignore,
        }
    };
    if start >= total {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Range(start, end.min(total - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn date_format() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(t), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn ranges() {
        use RangeSpec::*;
        assert_eq!(parse_range("bytes=0-9", 100), Range(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range(90, 99));
        assert_eq!(parse_range("bytes=90-200", 100), Range(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Range(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Ignore);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), Ignore);
        assert_eq!(parse_range("items=0-1", 100), Ignore);
        assert_eq!(parse_range("bytes=x-1", 100), Ignore);
    }

    #[test]
    fn fault_cut() {
        let f = |stall, drop| Faults {
            stall_after: stall,
            drop_after: drop,
            ..Faults::default()
        };
        assert_eq!(f(None, None).cut(10), (10, Ending::Complete));
        assert_eq!(f(None, Some(4)).cut(10), (4, Ending::Drop));
        assert_eq!(f(None, Some(40)).cut(10), (10, Ending::Drop));
        assert_eq!(f(Some(3), Some(4)).cut(10), (3, Ending::Stall));
        assert_eq!(f(Some(4), Some(4)).cut(10), (4, Ending::Stall));
        assert_eq!(f(Some(5), Some(4)).cut(10), (4, Ending::Drop));
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("to=%2Ffiles%2Fa%20b.txt&x=1+2&flag&bad=%zz%4");
        assert_eq!(q[0], ("to".into(), "/files/a b.txt".into()));
        assert_eq!(q[1], ("x".into(), "1 2".into()));
        assert_eq!(q[2], ("flag".into(), "".into()));
        assert_eq!(q[3], ("bad".into(), "%zz%4".into()));
    }

    #[test]
    fn head_parsing() {
        let raw = b"GET /files/a?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc";
        let mut r = BufReader::new(&raw[..]);
        let req = match read_head(&mut r) {
            Ok(Some(r)) => r,
            _ => panic!("parse failed"),
        };
        assert_eq!(req.path, "/files/a");
        assert_eq!(req.raw_query, "x=1");
        assert!(req.wants_close());
        assert_eq!(req.body, BodyFraming::Length(3));
        assert_eq!(read_body(&mut r, req.body, None).ok(), Some(3));

        let raw = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let req = match read_head(&mut r) {
            Ok(Some(r)) => r,
            _ => panic!("parse failed"),
        };
        assert_eq!(read_body(&mut r, req.body, None).ok(), Some(5));

        for bad in [
            &b"GET / HTTP/2\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        ] {
            assert!(matches!(
                read_head(&mut BufReader::new(bad)),
                Err(HeadError::Bad(_))
            ));
        }
    }
}
