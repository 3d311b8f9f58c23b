//! Loopback HTTP/HTTPS test server with fault injection for ohreq's tests:
//! HTTP/1.1 in plain text and over TLS, and HTTP/2 over TLS (ALPN "h2").
//!
//! Usage: testserver --root DIR [--port-file FILE] [--cert-dir DIR] [--bind ADDR]
//!
//! The ports are printed, and written to the port file, as one line
//! `http=P https=P h2=P`. `/__log` lines of HTTP/2 requests end in ` h2=1`;
//! those of the upload endpoints (`/upload/multipart`, `/upload/raw/NAME`,
//! see upload.rs) end in ` recv=N`, the request-body bytes read.

mod http;
mod http2;
mod log;
mod routes;
mod tls;
mod upload;

use std::io::BufReader;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::Duration;

use openssl::sha::Sha256;
use openssl::ssl::SslAcceptor;

use crate::http::{After, BodyReader, Conn, HeadError, Response};
use crate::log::{Entry, Shared};
use crate::routes::EchoBody;
use crate::upload::Outcome;

/// Idle keep-alive connections (and stuck reads) are closed after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Generous, so a client that pauses a transfer is not cut off too early.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    root: PathBuf,
    port_file: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
    bind: IpAddr,
}

const USAGE: &str =
    "usage: testserver --root DIR [--port-file FILE] [--cert-dir DIR] [--bind 127.0.0.1]";

fn parse_args() -> Result<Args, String> {
    let mut root = None;
    let mut port_file = None;
    let mut cert_dir = None;
    let mut bind: IpAddr = [127, 0, 0, 1].into();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(value()?)),
            "--port-file" => port_file = Some(PathBuf::from(value()?)),
            "--cert-dir" => cert_dir = Some(PathBuf::from(value()?)),
            "--bind" => bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    let root = root.ok_or(format!("--root is required\n{USAGE}"))?;
    Ok(Args {
        root,
        port_file,
        cert_dir,
        bind,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testserver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let root = args
        .root
        .canonicalize()
        .map_err(|e| format!("root {}: {e}", args.root.display()))?;
    if !root.is_dir() {
        return Err(format!("root {} is not a directory", root.display()).into());
    }
    let cert_dir = match (&args.cert_dir, root.parent()) {
        (Some(d), _) => d.clone(),
        (None, Some(parent)) => parent.join("certs"),
        (None, None) => {
            std::env::temp_dir().join(format!("testserver-certs-{}", std::process::id()))
        }
    };
    let certs = tls::generate(&cert_dir)
        .map_err(|e| format!("certificates in {}: {e}", cert_dir.display()))?;
    let acceptor = Arc::new(tls::acceptor(&certs)?);
    let h2_acceptor = Arc::new(tls::h2_acceptor(&certs)?);

    let http = TcpListener::bind((args.bind, 0))?;
    let https = TcpListener::bind((args.bind, 0))?;
    let h2 = TcpListener::bind((args.bind, 0))?;
    // Readers parse the start with `http=%d https=%d`: only ever append.
    let line = format!(
        "http={} https={} h2={}",
        http.local_addr()?.port(),
        https.local_addr()?.port(),
        h2.local_addr()?.port()
    );

    let shared = Arc::new(Shared::new(root));
    let plain = {
        let shared = shared.clone();
        thread::spawn(move || accept_loop(http, shared, None))
    };
    let secure = {
        let shared = shared.clone();
        thread::spawn(move || accept_loop(https, shared, Some(acceptor)))
    };
    let h2 = http2::spawn(h2, shared.clone(), h2_acceptor)?;

    // Listening sockets already accept connections into the backlog, so
    // announcing the ports now is safe.
    if let Some(pf) = &args.port_file {
        tls::write_atomic(pf, format!("{line}\n").as_bytes())?;
    }
    println!("{line}");

    let _ = plain.join();
    let _ = secure.join();
    let _ = h2.join();
    Err("accept loops ended".into())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<SslAcceptor>>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                let tls = tls.clone();
                let spawned = thread::Builder::new()
                    .name("conn".into())
                    .spawn(move || serve_connection(stream, &shared, tls.as_deref()));
                if spawned.is_err() {
                    // Out of threads: dropping the closure closed the socket.
                    thread::sleep(Duration::from_millis(10));
                }
            }
            // E.g. EMFILE: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve_connection(tcp: TcpStream, shared: &Shared, tls: Option<&SslAcceptor>) {
    let conn_id = shared.next_conn_id();
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(READ_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
    let conn = match tls {
        None => Conn::Plain(tcp),
        Some(acceptor) => match acceptor.accept(tcp) {
            Ok(s) => Conn::Tls(Box::new(s)),
            // Failed handshakes are expected (e.g. the wrong-CA test).
            Err(_) => return,
        },
    };
    let mut reader = BufReader::with_capacity(64 * 1024, conn);
    let after = loop {
        match serve_request(&mut reader, shared, conn_id) {
            After::KeepAlive => continue,
            other => break other,
        }
    };
    if after == After::Close {
        reader.get_mut().close_gracefully();
    }
}

/// Reads one request, answers it, and says whether the connection lives on.
fn serve_request(reader: &mut BufReader<Conn>, shared: &Shared, conn_id: u64) -> After {
    let req = match http::read_head(reader) {
        Ok(Some(r)) => r,
        Ok(None) | Err(HeadError::Io) => return After::Aborted,
        Err(HeadError::Bad(why)) => {
            let resp = Response::text(400, format!("bad request: {why}\n"));
            let served = AtomicU64::new(0);
            let _ = http::write_response(reader.get_mut(), resp, false, true, &served);
            return After::Close;
        }
    };
    shared.count_request();
    let tls = reader.get_ref().is_tls();
    let served = Arc::new(AtomicU64::new(0));
    let recv = upload::is_upload(&req.path).then(|| Arc::new(AtomicU64::new(0)));
    if req.path != "/__log" {
        shared.push(Entry {
            conn_id,
            method: req.method.clone(),
            target: req.target.clone(),
            range: req.header("range").map(str::to_string),
            if_range: req.header("if-range").map(str::to_string),
            tls,
            h2: false,
            served: served.clone(),
            recv: recv.clone(),
        });
    }

    if http::maybe_continue(reader.get_mut(), &req).is_err() {
        return After::Aborted;
    }
    if let Some(recv) = recv {
        let outcome = upload::handle(shared, &req, &mut BodyReader::new(reader, req.body), &recv);
        let resp = match outcome {
            Outcome::Respond(resp) => resp,
            Outcome::Abort => {
                reader.get_ref().abort();
                return After::Aborted;
            }
            Outcome::BadFraming(why) => {
                let resp = Response::text(400, format!("bad request: {why}\n"));
                let _ = http::write_response(reader.get_mut(), resp, false, true, &served);
                return After::Close;
            }
        };
        let head_only = req.method == "HEAD";
        return http::write_response(
            reader.get_mut(),
            resp,
            head_only,
            req.wants_close(),
            &served,
        )
        .unwrap_or(After::Aborted);
    }
    let mut hasher = (req.path == "/echo").then(Sha256::new);
    let echo = match http::read_body(reader, req.body, hasher.as_mut()) {
        Ok(len) => hasher.map(|h| EchoBody::new(len, h)),
        Err(HeadError::Bad(why)) => {
            let resp = Response::text(400, format!("bad request: {why}\n"));
            let _ = http::write_response(reader.get_mut(), resp, false, true, &served);
            return After::Close;
        }
        Err(HeadError::Io) => return After::Aborted,
    };

    let resp = routes::handle(shared, &req, echo);
    let head_only = req.method == "HEAD";
    match http::write_response(
        reader.get_mut(),
        resp,
        head_only,
        req.wants_close(),
        &served,
    ) {
        Ok(after) => after,
        Err(_) => After::Aborted,
    }
}
