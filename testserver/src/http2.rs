//! HTTP/2 over TLS (ALPN "h2" only) with the `h2` crate, on a small tokio
//! runtime of its own so the HTTP/1.1 listeners stay plain std threads.
//!
//! Requests go through the same `routes::handle` as HTTP/1.1 (on a blocking
//! thread, since it opens files and may sleep for `delay_ms`); this module
//! only maps the transport: response head, flow-controlled streaming of the
//! body, and the faults (`rate`, `drop`/`stall` end the stream with
//! RST_STREAM INTERNAL_ERROR instead of cutting the connection).

use std::fs::File;
use std::future::poll_fn;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use h2::server::{self, SendResponse};
use h2::{Reason, RecvStream, SendStream};
use openssl::sha::Sha256;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

use crate::http::{self, Body, BodyFraming, CHUNK, Ending, Framing, Request, Response};
use crate::log::{Entry, Shared};
use crate::routes::{self, EchoBody};
use crate::upload::{self, Outcome};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-stream limit on data queued inside h2 but not yet written. Capacity
/// is never more than this, so it also bounds what one stream buffers.
const MAX_SEND_BUFFER: usize = 1 << 20;
/// How long a `drop` waits for the bytes before the cut to leave h2's queue
/// (RST_STREAM discards whatever is still queued).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// ... or until its capacity has stood still this long.
const DRAIN_SETTLE: Duration = Duration::from_millis(50);
/// An upload body that sends nothing for this long is given up (as the
/// HTTP/1.1 read timeout does).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the runtime thread serving HTTP/2 on `listener`.
pub fn spawn(
    listener: StdListener,
    shared: Arc<Shared>,
    acceptor: Arc<SslAcceptor>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("h2")
        .enable_io()
        .enable_time()
        .build()?;
    thread::Builder::new()
        .name("h2-accept".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("testserver: h2 listener: {e}"),
                };
                accept_loop(listener, shared, acceptor).await
            })
        })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, acceptor: Arc<SslAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(serve_connection(tcp, shared.clone(), acceptor.clone()));
            }
            // E.g. EMFILE: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(tcp: TcpStream, shared: Arc<Shared>, acceptor: Arc<SslAcceptor>) {
    let conn_id = shared.next_conn_id();
    let _ = tcp.set_nodelay(true);
    let Ok(mut tls) = Ssl::new(acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp)) else {
        return;
    };
    // Failed handshakes are expected (wrong CA, no "h2" in the client's ALPN).
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut tls).accept()).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    let handshake = server::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .max_concurrent_streams(256)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .handshake::<_, Bytes>(tls);
    let mut conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(c)) => c,
        _ => return,
    };
    // Accepting also drives the connection, which the stream tasks rely on.
    while let Some(next) = conn.accept().await {
        let Ok((req, respond)) = next else { break };
        tokio::spawn(serve_stream(req, respond, shared.clone(), conn_id));
    }
}

/// The transport-independent view of an h2 request, for `routes::handle`.
fn to_request(parts: &::http::request::Parts) -> Request {
    let method = parts.method.as_str().to_string();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let (path, raw_query) = http::split_target(&target);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
            (n.as_str().to_string(), v)
        })
        .collect();
    let mut raw_lines = vec![format!("{method} {target} HTTP/2")];
    if let Some(authority) = parts.uri.authority() {
        raw_lines.push(format!(":authority: {authority}"));
    }
    raw_lines.extend(headers.iter().map(|(n, v)| format!("{n}: {v}")));
    Request {
        method,
        target,
        path,
        raw_query,
        raw_lines,
        headers,
        http10: false,
        body: BodyFraming::None,
    }
}

async fn serve_stream(
    req: ::http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
    conn_id: u64,
) {
    let (parts, mut body) = req.into_parts();
    let req = to_request(&parts);
    shared.count_request();
    let served = Arc::new(AtomicU64::new(0));
    let recv = upload::is_upload(&req.path).then(|| Arc::new(AtomicU64::new(0)));
    if req.path != "/__log" {
        shared.push(Entry {
            conn_id,
            method: req.method.clone(),
            target: req.target.clone(),
            range: req.header("range").map(str::to_string),
            if_range: req.header("if-range").map(str::to_string),
            tls: true,
            h2: true,
            served: served.clone(),
            recv: recv.clone(),
        });
    }

    if let Some(recv) = recv {
        // The upload handlers read the body as it streams in, on a
        // blocking thread that waits for each DATA frame.
        let head_only = req.method == "HEAD";
        let rt = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut body = H2Body {
                body,
                pending: Bytes::new(),
                rt,
            };
            upload::handle(&shared, &req, &mut body, &recv)
        })
        .await;
        match outcome {
            Ok(Outcome::Respond(resp)) => send_response(respond, resp, head_only, &served).await,
            // BadFraming is HTTP/1.1-only.
            _ => respond.send_reset(Reason::INTERNAL_ERROR),
        }
        return;
    }

    // Read (and for /echo, hash) the request body, returning the window.
    let mut hasher = (req.path == "/echo").then(Sha256::new);
    let mut len = 0u64;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        len += chunk.len() as u64;
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let echo = hasher.map(|h| EchoBody::new(len, h));

    let head_only = req.method == "HEAD";
    let decided = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || routes::handle(&shared, &req, echo)).await
    };
    let Ok(resp) = decided else {
        respond.send_reset(Reason::INTERNAL_ERROR);
        return;
    };
    send_response(respond, resp, head_only, &served).await;
}

/// A request stream's body as a blocking `Read`, for a `spawn_blocking`
/// thread. Flow-control capacity is released as frames are taken, so the
/// client is held back by the window while the reader is slow.
struct H2Body {
    body: RecvStream,
    pending: Bytes,
    rt: tokio::runtime::Handle,
}

impl Read for H2Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let next = self
                .rt
                .block_on(tokio::time::timeout(BODY_TIMEOUT, self.body.data()));
            match next {
                Err(_) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                Ok(None) => return Ok(0),
                Ok(Some(Err(e))) => return Err(io::Error::other(e)),
                Ok(Some(Ok(data))) => {
                    let _ = self.body.flow_control().release_capacity(data.len());
                    self.pending = data;
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// The response head: HTTP/1.1's headers minus the connection-level ones
/// (h2 names are lower-case; the `http` crate lower-cases them).
fn head(resp: &Response) -> Option<::http::Response<()>> {
    let mut b = ::http::Response::builder()
        .status(resp.status)
        .header("date", http::http_date(SystemTime::now()))
        .header("server", "ohreq-testserver");
    for (n, v) in &resp.headers {
        b = b.header(n.as_str(), v.as_str());
    }
    // Chunked and close-delimited HTTP/1.1 bodies simply have no length
    // here; 204 never has one, an empty 304 neither (as in HTTP/1.1).
    let no_body = matches!(resp.status, 204 | 304);
    let len = resp.body.len();
    if resp.framing == Framing::Length && resp.status != 204 && !(no_body && len == 0) {
        b = b.header("content-length", len);
    }
    b.body(()).ok()
}

async fn send_response(
    mut respond: SendResponse<Bytes>,
    resp: Response,
    head_only: bool,
    served: &AtomicU64,
) {
    let Some(head) = head(&resp) else {
        respond.send_reset(Reason::INTERNAL_ERROR);
        return;
    };
    let faults = resp.faults;
    let no_body = head_only || matches!(resp.status, 204 | 304);
    let (cut, ending) = if no_body {
        (0, Ending::Complete)
    } else {
        faults.cut(resp.body.len())
    };
    let end_with_head = cut == 0 && ending == Ending::Complete;
    let Ok(mut stream) = respond.send_response(head, end_with_head) else {
        return;
    };
    if end_with_head {
        return;
    }
    let complete = ending == Ending::Complete;
    if send_body(&mut stream, resp.body, cut, faults.rate, complete, served)
        .await
        .is_err()
    {
        // The client reset the stream or the connection died.
        return;
    }
    match ending {
        Ending::Complete => {}
        Ending::Drop => {
            wait_drained(&mut stream).await;
            stream.send_reset(Reason::INTERNAL_ERROR);
        }
        Ending::Stall => {
            wait_drained(&mut stream).await;
            hold(&mut stream, Duration::from_secs(faults.stall_secs)).await;
            stream.send_reset(Reason::INTERNAL_ERROR);
        }
    }
}

/// Where the body bytes come from.
enum Source {
    Bytes(Bytes),
    File(File),
}

impl Source {
    fn open(body: Body) -> io::Result<Source> {
        Ok(match body {
            Body::Empty => Source::Bytes(Bytes::new()),
            Body::Bytes(b) => Source::Bytes(Bytes::from(b)),
            Body::File {
                mut file, offset, ..
            } => {
                file.seek(SeekFrom::Start(offset))?;
                Source::File(file)
            }
        })
    }

    /// The next `n` bytes. Files are read synchronously: they are local and
    /// almost always in the page cache, and chunks are at most `CHUNK`.
    fn next(&mut self, n: usize) -> io::Result<Bytes> {
        match self {
            Source::Bytes(b) => Ok(b.split_to(n.min(b.len()))),
            Source::File(f) => {
                let mut buf = vec![0u8; n];
                // A file truncated underneath us ends the stream with a reset.
                f.read_exact(&mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

/// Waits for send capacity (flow control: the peer's stream and connection
/// windows, bounded by `MAX_SEND_BUFFER`), at most `want` bytes.
async fn capacity(stream: &mut SendStream<Bytes>, want: usize) -> Result<usize, h2::Error> {
    stream.reserve_capacity(want);
    loop {
        let cap = stream.capacity();
        if cap > 0 {
            return Ok(cap.min(want));
        }
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(Reason::CANCEL)),
        }
    }
}

/// Streams the first `limit` bytes of `body` as capacity is granted,
/// throttled to `rate` bytes/s; ends the stream after them if `end`.
async fn send_body(
    stream: &mut SendStream<Bytes>,
    body: Body,
    limit: u64,
    rate: Option<u64>,
    end: bool,
    served: &AtomicU64,
) -> Result<(), h2::Error> {
    let internal = |_| h2::Error::from(Reason::INTERNAL_ERROR);
    // At most ~50 ms worth of data per send when throttling.
    let slice = match rate {
        Some(r) => (r / 20).clamp(1, CHUNK as u64) as usize,
        None => CHUNK,
    };
    let mut source = Source::open(body).map_err(internal)?;
    let start = Instant::now();
    let mut sent = 0u64;
    if limit == 0 {
        return stream.send_data(Bytes::new(), end);
    }
    while sent < limit {
        let want = (limit - sent).min(slice as u64) as usize;
        let n = capacity(stream, want).await?;
        let data = match source.next(n) {
            Ok(d) => d,
            Err(e) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return Err(internal(e));
            }
        };
        sent += n as u64;
        stream.send_data(data, end && sent == limit)?;
        served.fetch_add(n as u64, Ordering::SeqCst);
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            let elapsed = start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
    Ok(())
}

/// Waits (bounded) until the data queued on the stream has been handed to
/// the connection, so a following RST_STREAM does not discard it.
///
/// h2 has no "flushed" signal, but with `MAX_SEND_BUFFER` reserved the
/// stream's capacity is `min(window, MAX_SEND_BUFFER) - queued`: it reaches
/// `MAX_SEND_BUFFER` once the queue is empty whenever the peer's window
/// allows that much (libcurl's does). With a smaller window the wait ends
/// once the capacity has not moved for a while (loopback drains at once).
async fn wait_drained(stream: &mut SendStream<Bytes>) {
    stream.reserve_capacity(MAX_SEND_BUFFER);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut last = stream.capacity();
    let mut since = Instant::now();
    loop {
        let cap = stream.capacity();
        if cap >= MAX_SEND_BUFFER || Instant::now() >= deadline {
            break;
        }
        if cap != last {
            (last, since) = (cap, Instant::now());
        } else if since.elapsed() >= DRAIN_SETTLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Give the connection task a moment to write what it took.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Holds the stream without sending for up to `secs`, or until the client
/// resets it (so stalled streams do not pile up).
async fn hold(stream: &mut SendStream<Bytes>, secs: Duration) {
    let reset = poll_fn(|cx| stream.poll_reset(cx));
    let _ = tokio::time::timeout(secs, reset).await;
}
