//! libcurl: one engine thread per service drives a multi handle with every running transfer
//! (curl_multi_poll + wakeup; no thread per transfer). The engine knows nothing of clients or
//! permissions: it runs `TransferSpec`s and reports through a `Reporter`.

mod body;
mod download;
mod errors;
mod origins;
mod response;
mod upload;

pub use body::{FilePart, mime_from_name};
pub use errors::{is_no_space, is_retryable, reason_for_curl};
pub use response::ResponseHead;

use crate::task::{Reason, TaskId};
use crossbeam_channel::{Receiver, Sender, unbounded};
use curl::MultiError;
use curl::easy::{Easy2, List, SslVersion};
use curl::multi::{Easy2Handle, Multi, MultiWaker};
pub use download::Body;
use download::{DownloadSink, PartFile};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Network retries per run, and their spacing (reference B.1).
const RETRY_TIMES: u32 = 4;
const RETRY_INTERVAL: Duration = Duration::from_millis(400);
/// Extra attempts after an HTTP 408.
const RETRY_408: u32 = 2;
/// Progress reports at most this often per transfer.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// A checkpoint (sync + stored offset) after this many new bytes or this much time.
const CHECKPOINT_BYTES: u64 = 16 << 20;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);
/// libcurl's receive buffer: large writes, few syscalls.
const BUFFER_SIZE: usize = 512 << 10;
/// Redirect cap (DESIGN §9: a loop fails instead of running forever).
const MAX_REDIRECTS: u32 = 30;

/// Names one run of a task: reports for an older run of the same task are stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: TaskId,
    pub run: u64,
}

/// Everything needed to run one download attempt sequence.
#[derive(Clone, Debug)]
pub struct TransferSpec {
    pub id: TaskId,
    pub run: u64,
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub part: PathBuf,
    /// Bytes of the part file to keep (the durable resume point); the rest is cut off.
    pub resume_from: u64,
    pub etag: String,
    pub last_modified: String,
    /// User range: `begins` and inclusive `ends` (-1 = to the end).
    pub begins: u64,
    pub ends: i64,
    pub redirect: bool,
    pub precise: bool,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub min_speed: u64,
    pub min_speed_duration: Duration,
    pub max_speed: u64,
    pub ca_file: Option<PathBuf>,
    pub user_agent: String,
    /// Some for uploads: the requests to send, in order (the download fields are unused).
    pub upload: Option<UploadPlan>,
}

/// What an upload sends: requests run one after another, starting at `first`.
#[derive(Clone, Debug)]
pub struct UploadPlan {
    pub requests: Vec<UploadRequest>,
    pub first: usize,
}

/// One upload request: a multipart form carrying fields and files, or one file's bytes.
#[derive(Clone, Debug)]
pub enum UploadRequest {
    Multipart {
        fields: Vec<(String, String)>,
        files: Vec<FilePart>,
    },
    Raw(FilePart),
}

impl UploadRequest {
    /// Indices (in the task's file list) of the files this request carries.
    pub fn file_indices(&self) -> Vec<usize> {
        match self {
            UploadRequest::Multipart { files, .. } => files.iter().map(|f| f.index).collect(),
            UploadRequest::Raw(f) => vec![f.index],
        }
    }
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every upload request got a 2xx answer; `bytes` of file content were sent.
    Uploaded {
        bytes: u64,
    },
    /// The whole body is in memory or in the part file (written, not yet synced).
    Done {
        body: Body,
        bytes: u64,
    },
    Failed(Failure),
    /// Stopped by a `cancel` (pause, stop, remove, shutdown), with the validators of the
    /// response the part file's bytes came from.
    Cancelled {
        file: Option<Arc<File>>,
        bytes: u64,
        /// The resource's length when a response told it.
        total: Option<u64>,
        etag: String,
        last_modified: String,
    },
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: Reason,
    pub http_status: u32,
    pub curl_code: i32,
    pub detail: String,
    pub bytes: u64,
    /// Upload: the files of the request that failed (empty for downloads).
    pub files: Vec<usize>,
}

/// Where the engine reports; called on the engine thread, so it must not block.
/// Every `start_transfer` gets exactly one `finished`.
pub trait Reporter: Send + Sync {
    fn response(&self, t: Ticket, head: &ResponseHead);
    fn progress(&self, t: Ticket, bytes: u64, total: Option<u64>);
    /// `bytes` of `file` should be made durable and recorded with these validators (no file:
    /// nothing to sync, as when the offset goes back to 0).
    fn checkpoint(
        &self,
        t: Ticket,
        file: Option<Arc<File>>,
        bytes: u64,
        etag: &str,
        last_modified: &str,
    );
    /// A retry is due after a network error; return false to fail instead (e.g. offline).
    fn retry(&self, t: Ticket, tries: u32) -> bool;
    fn finished(&self, t: Ticket, outcome: Outcome);
    /// Upload progress: file-content bytes sent so far in this run, per file index.
    fn upload_progress(&self, t: Ticket, sent: &[(usize, u64)]);
    /// An upload request was answered (any status): its files, head and (bounded) body.
    fn upload_reply(&self, t: Ticket, files: &[usize], head: &ResponseHead, body: &[u8]);
}

enum Command {
    Start(Box<TransferSpec>),
    Cancel(TaskId),
    SetMaxSpeed(TaskId, u64),
    Shutdown,
}

/// The service's side of the engine thread.
pub struct Engine {
    tx: Sender<Command>,
    waker: MultiWaker,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    pub fn start(reporter: Arc<dyn Reporter>) -> std::io::Result<Engine> {
        let (tx, rx) = unbounded();
        let (wtx, wrx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("ohreq-engine".into())
            .spawn(move || {
                // Multi is not Send: it is built and driven here only.
                let multi = Multi::new();
                let _ = wtx.send(multi.waker());
                Loop::new(multi, rx, reporter).run();
            })?;
        let waker = wrx
            .recv()
            .map_err(|_| std::io::Error::other("engine thread died at start"))?;
        Ok(Engine {
            tx,
            waker,
            thread: Some(thread),
        })
    }

    fn send(&self, c: Command) {
        if self.tx.send(c).is_ok() {
            let _ = self.waker.wakeup();
        }
    }

    pub fn start_transfer(&self, spec: TransferSpec) {
        self.send(Command::Start(Box::new(spec)));
    }

    /// Stops a task's transfer; its `finished(Cancelled)` report follows (none if the task
    /// had no transfer in flight).
    pub fn cancel(&self, id: TaskId) {
        self.send(Command::Cancel(id));
    }

    pub fn set_max_speed(&self, id: TaskId, bytes_per_sec: u64) {
        self.send(Command::SetMaxSpeed(id, bytes_per_sec));
    }

    /// Cancels everything (each reported as Cancelled) and joins the thread.
    pub fn shutdown(&mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A transfer between attempts or in flight.
struct Active {
    spec: Box<TransferSpec>,
    handle: Option<Easy2Handle<DownloadSink>>,
    /// The easy handle inside `handle`, for options libcurl lets us change mid-transfer.
    raw: *mut curl_sys::CURL,
    /// Set while waiting for a retry (the sink's state lives on in `parked`).
    retry_at: Option<Instant>,
    parked: Option<Easy2<DownloadSink>>,
    tries: u32,
    tries_408: u32,
    deadline: Instant,
    last_progress: Instant,
    last_checkpoint_bytes: u64,
    last_checkpoint_at: Instant,
    /// (time, bytes) samples over the last `min_speed_duration`, for the LOW_SPEED rule.
    speed_samples: VecDeque<(Instant, u64)>,
}

impl Active {
    /// The user's minimum-speed rule (reference A.7 `MinSpeed`): true when the average over
    /// the last `min_speed_duration` is below `min_speed`. Samples are kept about every 250 ms.
    fn too_slow(&mut self, now: Instant, written: u64) -> bool {
        let (speed, window) = (self.spec.min_speed, self.spec.min_speed_duration);
        if speed == 0 || window.is_zero() {
            return false;
        }
        if self
            .speed_samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(250))
        {
            self.speed_samples.push_back((now, written));
        }
        while self.speed_samples.len() > 1 && now.duration_since(self.speed_samples[1].0) >= window
        {
            self.speed_samples.pop_front();
        }
        let Some(&(t0, b0)) = self.speed_samples.front() else {
            return false;
        };
        let span = now.duration_since(t0);
        span >= window && (written.saturating_sub(b0) as f64) < speed as f64 * span.as_secs_f64()
    }

    fn ticket(&self) -> Ticket {
        Ticket {
            id: self.spec.id,
            run: self.spec.run,
        }
    }
}

struct Loop {
    multi: Multi,
    rx: Receiver<Command>,
    reporter: Arc<dyn Reporter>,
    active: HashMap<TaskId, Active>,
    uploads: HashMap<TaskId, upload::ActiveUpload>,
    shutting_down: bool,
    origins: origins::MultiplexOrigins,
}

impl Loop {
    fn new(multi: Multi, rx: Receiver<Command>, reporter: Arc<dyn Reporter>) -> Loop {
        Loop {
            multi,
            rx,
            reporter,
            active: HashMap::new(),
            uploads: HashMap::new(),
            shutting_down: false,
            origins: origins::MultiplexOrigins::default(),
        }
    }

    fn run(mut self) {
        loop {
            while let Ok(cmd) = self.rx.try_recv() {
                self.command(cmd);
            }
            if self.shutting_down {
                let ids: Vec<TaskId> = self
                    .active
                    .keys()
                    .chain(self.uploads.keys())
                    .copied()
                    .collect();
                for id in ids {
                    self.cancel(id);
                }
                return;
            }
            self.start_due_retries();
            self.start_due_upload_retries();
            if let Err(e) = self.multi.perform() {
                log::error!("engine: curl_multi_perform failed: {e}");
            }
            self.collect_finished();
            self.tick();
            let timeout = self.next_timeout();
            if let Err(e) = self.multi.poll(&mut [], timeout) {
                log::error!("engine: curl_multi_poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Start(spec) => self.begin(spec),
            Command::Cancel(id) => self.cancel(id),
            Command::SetMaxSpeed(id, speed) => {
                if let Some(u) = self.uploads.get_mut(&id) {
                    u.set_max_speed(speed);
                }
                if let Some(a) = self.active.get_mut(&id) {
                    a.spec.max_speed = speed;
                    if a.handle.is_some() {
                        // SAFETY: `raw` is the live easy handle of `a.handle`, used on this
                        // thread only; the option takes a curl_off_t.
                        unsafe {
                            curl_sys::curl_easy_setopt(
                                a.raw,
                                curl_sys::CURLOPT_MAX_RECV_SPEED_LARGE,
                                speed as curl_sys::curl_off_t,
                            );
                        }
                    }
                }
            }
            Command::Shutdown => self.shutting_down = true,
        }
    }

    fn begin(&mut self, spec: Box<TransferSpec>) {
        let id = spec.id;
        if self.active.contains_key(&id) || self.uploads.contains_key(&id) {
            log::warn!("engine: task {id} is already transferring");
            return;
        }
        if spec.upload.is_some() {
            return self.begin_upload(spec);
        }
        let now = Instant::now();
        let mut a = Active {
            deadline: now + spec.total_timeout,
            spec,
            handle: None,
            raw: std::ptr::null_mut(),
            retry_at: None,
            parked: None,
            tries: 0,
            tries_408: 0,
            last_progress: now,
            last_checkpoint_bytes: 0,
            last_checkpoint_at: now,
            speed_samples: VecDeque::new(),
        };
        match self.attempt(&mut a, None) {
            Ok(()) => {
                a.last_checkpoint_bytes = a.spec.resume_from;
                self.active.insert(id, a);
            }
            Err(f) => self.reporter.finished(a.ticket(), Outcome::Failed(f)),
        }
    }

    /// Starts one HTTP attempt: from the spec's resume point, or from what an earlier
    /// attempt of this run left in `prev`.
    fn attempt(
        &mut self,
        a: &mut Active,
        prev: Option<Easy2<DownloadSink>>,
    ) -> Result<(), Failure> {
        let spec = &a.spec;
        let fail = |reason, detail: String, bytes| Failure {
            reason,
            http_status: 0,
            curl_code: 0,
            detail,
            bytes,
            files: Vec::new(),
        };
        let (mut part, written, etag, lm) = match prev {
            Some(mut easy) => {
                let s = easy.get_mut();
                if let Err(e) = s.flush() {
                    let reason = if errors::is_no_space(&e) {
                        Reason::InsufficientSpace
                    } else {
                        Reason::IoError
                    };
                    return Err(fail(
                        reason,
                        format!("writing {}: {e}", spec.part.display()),
                        s.written,
                    ));
                }
                (
                    std::mem::replace(&mut s.part, PartFile::new(spec.part.clone(), 0)),
                    s.written,
                    s.etag.clone(),
                    s.last_modified.clone(),
                )
            }
            // The part file is opened when bytes first go to disk (see PartFile).
            None => (
                PartFile::new(spec.part.clone(), spec.resume_from),
                spec.resume_from,
                spec.etag.clone(),
                spec.last_modified.clone(),
            ),
        };
        // Resume only what the server can prove unchanged; otherwise start over.
        let can_resume = written > 0 && (!etag.is_empty() || !lm.is_empty());
        let keep = if can_resume { written } else { 0 };
        let user_range = spec.begins > 0 || spec.ends >= 0;
        if written > 0 && !can_resume && user_range {
            return Err(fail(
                Reason::UnsupportRangeRequest,
                "cannot resume a range download without an ETag or Last-Modified".into(),
                written,
            ));
        }
        part.keep_only(keep).map_err(|e| {
            fail(
                Reason::IoError,
                format!("cannot truncate part file: {e}"),
                keep,
            )
        })?;
        if keep > 0 {
            // A resume: hold the part file from now on, so the bytes the Range request
            // builds on cannot go away before the first write.
            part.open().map_err(|e| {
                fail(
                    Reason::IoError,
                    format!("cannot reopen {}: {e}", spec.part.display()),
                    0,
                )
            })?;
        }
        if keep < written {
            self.reporter.checkpoint(a.ticket(), None, 0, "", "");
        }
        let from = spec.begins + keep;
        let range = if user_range || keep > 0 {
            Some(if spec.ends >= 0 {
                format!("{from}-{}", spec.ends)
            } else {
                format!("{from}-")
            })
        } else {
            None
        };
        let validator = if keep > 0 {
            if etag.is_empty() {
                lm.clone()
            } else {
                etag.clone()
            }
        } else {
            String::new()
        };
        let sink = DownloadSink::new(
            a.ticket(),
            part,
            keep,
            if range.is_some() { from } else { 0 },
            spec.begins,
            user_range,
            spec.precise,
            (etag, lm),
            self.reporter.clone(),
        );
        let pipewait = self.origins.multiplexes(&spec.url);
        let easy = configure(
            spec,
            sink,
            range.as_deref(),
            &validator,
            a.deadline,
            pipewait,
        )
        .map_err(|e| {
            fail(
                Reason::BuildRequestFailed,
                format!("cannot build the request: {e}"),
                keep,
            )
        })?;
        a.raw = easy.raw();
        let mut handle = self.multi.add2(easy).map_err(|e: MultiError| {
            fail(
                Reason::BuildClientFailed,
                format!("cannot add transfer: {e}"),
                keep,
            )
        })?;
        let _ = handle.set_token(spec.id as usize);
        a.handle = Some(handle);
        a.retry_at = None;
        Ok(())
    }

    fn cancel(&mut self, id: TaskId) {
        if self.uploads.contains_key(&id) {
            return self.cancel_upload(id);
        }
        let Some(mut a) = self.active.remove(&id) else {
            return;
        };
        let mut easy = match a.handle.take() {
            Some(h) => self.multi.remove2(h).ok(),
            None => a.parked.take(),
        };
        let outcome = match &mut easy {
            Some(e) => {
                let s = e.get_mut();
                // What reached the file is what a resume may keep.
                let flushed = s.flush();
                let file = s.part.opened();
                let bytes = match (flushed, &file) {
                    (Ok(()), _) => s.written,
                    (Err(_), Some(f)) => f.metadata().map_or(0, |m| m.len()).min(s.written),
                    (Err(_), None) => 0,
                };
                Outcome::Cancelled {
                    file,
                    bytes,
                    total: s.total,
                    etag: s.etag.clone(),
                    last_modified: s.last_modified.clone(),
                }
            }
            None => Outcome::Cancelled {
                file: None,
                bytes: a.spec.resume_from,
                total: None,
                etag: a.spec.etag.clone(),
                last_modified: a.spec.last_modified.clone(),
            },
        };
        self.reporter.finished(a.ticket(), outcome);
    }

    fn collect_finished(&mut self) {
        let mut done: Vec<(TaskId, Result<(), curl::Error>)> = Vec::new();
        self.multi.messages(|m| {
            if let (Ok(token), Some(r)) = (m.token(), m.result()) {
                done.push((token as TaskId, r));
            }
        });
        for (id, result) in done {
            if self.uploads.contains_key(&id) {
                self.finish_upload_request(id, result);
                continue;
            }
            let Some(mut a) = self.active.remove(&id) else {
                continue;
            };
            let Some(handle) = a.handle.take() else {
                continue;
            };
            let mut easy = match self.multi.remove2(handle) {
                Ok(e) => e,
                Err(e) => {
                    log::error!("engine: cannot remove finished transfer {id}: {e}");
                    continue;
                }
            };
            if let (Some(head), Ok(Some(url))) =
                (easy.get_ref().head.as_ref(), easy.effective_url())
            {
                self.origins.learn(url, &head.version);
            }
            let status = easy.response_code().unwrap_or(0);
            match self.judge(&mut a, &mut easy, result, status) {
                Verdict::Finished(outcome) => self.reporter.finished(a.ticket(), outcome),
                Verdict::Retry(after) => {
                    a.retry_at = Some(Instant::now() + after);
                    a.parked = Some(easy);
                    self.active.insert(id, a);
                }
            }
        }
    }

    /// Turns a finished attempt into an outcome or a retry.
    fn judge(
        &self,
        a: &mut Active,
        easy: &mut Easy2<DownloadSink>,
        result: Result<(), curl::Error>,
        status: u32,
    ) -> Verdict {
        let sink = easy.get_mut();
        let bytes = sink.written;
        let failed = |reason: Reason, curl_code: i32, detail: String| {
            Verdict::Finished(Outcome::Failed(Failure {
                reason,
                http_status: status,
                curl_code,
                detail,
                bytes,
                files: Vec::new(),
            }))
        };
        if let Some(f) = sink.failure.take() {
            let reason = f.reason();
            if let download::LocalFailure::Status(408) = f
                && a.tries_408 < RETRY_408
            {
                a.tries_408 += 1;
                return Verdict::Retry(Duration::ZERO);
            }
            let detail = match &f {
                download::LocalFailure::Status(s) => http_error_text(*s, sink.head.as_ref()),
                download::LocalFailure::Io(e) => format!("writing {}: {e}", a.spec.part.display()),
                download::LocalFailure::RangeIgnored => {
                    "the server ignored the requested range".into()
                }
                download::LocalFailure::SizeUnknown => {
                    "the server sent no Content-Length and precise is set".into()
                }
                download::LocalFailure::RangeMismatch => {
                    "the server answered a different range than asked".into()
                }
            };
            return failed(reason, 0, detail);
        }
        match result {
            Ok(()) => {
                if !sink.accepted(status) {
                    if status == 408 && a.tries_408 < RETRY_408 {
                        a.tries_408 += 1;
                        return Verdict::Retry(Duration::ZERO);
                    }
                    return failed(
                        Reason::ProtocolError,
                        0,
                        http_error_text(status, sink.head.as_ref()),
                    );
                }
                if let Some(total) = sink.total
                    && bytes < total
                {
                    return failed(
                        Reason::OthersError,
                        0,
                        format!("body ended after {bytes} of {total} bytes"),
                    );
                }
                match sink.take_body() {
                    Ok(body) => Verdict::Finished(Outcome::Done { body, bytes }),
                    Err(e) => {
                        let reason = if errors::is_no_space(&e) {
                            Reason::InsufficientSpace
                        } else {
                            Reason::IoError
                        };
                        failed(reason, 0, format!("writing {}: {e}", a.spec.part.display()))
                    }
                }
            }
            Err(e) => {
                let code = e.code();
                let detail = match e.extra_description() {
                    Some(x) => format!("{} ({x})", e.description()),
                    None => e.description().to_owned(),
                };
                let out_of_time = Instant::now() >= a.deadline;
                if is_retryable(code) && !out_of_time && a.tries < RETRY_TIMES {
                    a.tries += 1;
                    if self.reporter.retry(a.ticket(), a.tries) {
                        return Verdict::Retry(RETRY_INTERVAL);
                    }
                    return failed(
                        Reason::NetworkOffline,
                        code as i32,
                        format!("{detail}; network is offline"),
                    );
                }
                let reason = if out_of_time && code == curl_sys::CURLE_OPERATION_TIMEDOUT {
                    Reason::ContinuousTaskTimeout
                } else {
                    reason_for_curl(code, sink.got_response(), true)
                };
                failed(reason, code as i32, detail)
            }
        }
    }

    fn start_due_retries(&mut self) {
        let now = Instant::now();
        let due: Vec<TaskId> = self
            .active
            .iter()
            .filter(|(_, a)| a.retry_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut a) = self.active.remove(&id) else {
                continue;
            };
            let prev = a.parked.take();
            match self.attempt(&mut a, prev) {
                Ok(()) => {
                    self.active.insert(id, a);
                }
                Err(f) => self.reporter.finished(a.ticket(), Outcome::Failed(f)),
            }
        }
    }

    /// Progress reports and checkpoints for running transfers.
    fn tick(&mut self) {
        self.tick_uploads();
        let now = Instant::now();
        let mut slow = Vec::new();
        for a in self.active.values_mut() {
            let ticket = a.ticket();
            let written = match &a.handle {
                Some(h) => h.get_ref().written,
                None => continue,
            };
            if a.too_slow(now, written) {
                slow.push(ticket.id);
                continue;
            }
            let Some(h) = &mut a.handle else { continue };
            let s = h.get_mut();
            if s.written < a.last_checkpoint_bytes {
                a.last_checkpoint_bytes = 0; // the server restarted the body from zero
            }
            if now.duration_since(a.last_progress) >= PROGRESS_INTERVAL && s.got_response() {
                a.last_progress = now;
                self.reporter.progress(ticket, s.written, s.total);
            }
            let fresh = s.written.saturating_sub(a.last_checkpoint_bytes);
            if fresh >= CHECKPOINT_BYTES
                || (fresh > 0 && now.duration_since(a.last_checkpoint_at) >= CHECKPOINT_INTERVAL)
            {
                a.last_checkpoint_bytes = s.written;
                a.last_checkpoint_at = now;
                if let Err(e) = s.flush() {
                    s.failure = Some(download::LocalFailure::Io(e));
                    continue;
                }
                self.reporter.checkpoint(
                    ticket,
                    s.part.opened(),
                    s.written,
                    &s.etag,
                    &s.last_modified,
                );
            }
        }
        for id in slow {
            self.fail_slow(id);
        }
    }

    /// Ends a transfer that broke the minimum-speed rule (libcurl's own window is ~5 s wide,
    /// too coarse for short durations).
    fn fail_slow(&mut self, id: TaskId) {
        let Some(mut a) = self.active.remove(&id) else {
            return;
        };
        let bytes = match a.handle.take().and_then(|h| self.multi.remove2(h).ok()) {
            Some(e) => e.get_ref().written,
            None => 0,
        };
        let detail = format!(
            "below {} B/s for {} s",
            a.spec.min_speed,
            a.spec.min_speed_duration.as_secs()
        );
        let failure = Failure {
            reason: Reason::LowSpeed,
            http_status: 0,
            curl_code: 0,
            detail,
            bytes,
            files: Vec::new(),
        };
        self.reporter.finished(a.ticket(), Outcome::Failed(failure));
    }

    fn next_timeout(&self) -> Duration {
        let now = Instant::now();
        let mut t = if self.active.is_empty() && self.uploads.is_empty() {
            Duration::from_secs(5)
        } else {
            PROGRESS_INTERVAL
        };
        let retries = self
            .active
            .values()
            .map(|a| a.retry_at)
            .chain(self.uploads.values().map(|u| u.retry_at));
        for at in retries.flatten() {
            t = t.min(at.saturating_duration_since(now));
        }
        t
    }
}

enum Verdict {
    Finished(Outcome),
    Retry(Duration),
}

/// "Http protocol error: 404 Not Found", as the per-file message of the real service.
fn http_error_text(status: u32, head: Option<&ResponseHead>) -> String {
    let phrase = head.map(|h| h.reason.as_str()).unwrap_or("");
    format!("Http protocol error: {status} {phrase}")
        .trim_end()
        .to_owned()
}

fn configure(
    spec: &TransferSpec,
    sink: DownloadSink,
    range: Option<&str>,
    if_range: &str,
    deadline: Instant,
    pipewait: bool,
) -> Result<Easy2<DownloadSink>, curl::Error> {
    let mut e = Easy2::new(sink);
    common_options(&mut e, spec, deadline, false, pipewait)?;
    if spec.max_speed > 0 {
        e.max_recv_speed(spec.max_speed)?;
    }
    if let Some(r) = range {
        e.range(r)?;
    }
    let extra: Vec<String> = (!if_range.is_empty())
        .then(|| format!("If-Range: {if_range}"))
        .into_iter()
        .collect();
    e.http_headers(header_list(spec, &extra)?)?;
    if !spec.body.is_empty() {
        e.post_fields_copy(spec.body.as_bytes())?;
    }
    if spec.method != "GET" || !spec.body.is_empty() {
        e.custom_request(&spec.method)?;
    }
    Ok(e)
}

/// Options every request shares: URL, redirects, timeouts, the stall rule, TLS, user agent.
fn common_options<H: curl::easy::Handler>(
    e: &mut Easy2<H>,
    spec: &TransferSpec,
    deadline: Instant,
    curl_min_speed: bool,
    pipewait: bool,
) -> Result<(), curl::Error> {
    e.url(&crate::sandbox::wire_url(&spec.url))?;
    e.buffer_size(BUFFER_SIZE)?;
    e.useragent(&spec.user_agent)?;
    e.follow_location(spec.redirect)?;
    e.max_redirections(MAX_REDIRECTS)?;
    e.connect_timeout(spec.connect_timeout)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    e.timeout(left)?;
    // The built-in stall rule (below 1 B/s for 60 s); a user minimum speed is enforced by
    // the engine's own window (`too_slow`) for downloads, and by libcurl for uploads.
    let user_rule = spec.min_speed > 0 && !spec.min_speed_duration.is_zero();
    if user_rule && curl_min_speed {
        e.low_speed_limit(spec.min_speed.min(u32::MAX as u64) as u32)?;
        e.low_speed_time(spec.min_speed_duration)?;
    } else {
        e.low_speed_limit(crate::config::STALL_SPEED as u32)?;
        e.low_speed_time(Duration::from_secs(crate::config::STALL_SECONDS))?;
    }
    e.ssl_min_max_version(SslVersion::Tlsv12, SslVersion::Default)?;
    if let Some(ca) = &spec.ca_file {
        e.cainfo(ca)?;
    }
    e.signal(false)?;
    e.tcp_nodelay(true)?;
    // To an origin known to multiplex, wait for a connection to share instead of opening
    // another (see `origins`).
    e.pipewait(pipewait)?;
    Ok(())
}

/// The config's headers plus `extra` lines ("Name: value").
fn header_list(spec: &TransferSpec, extra: &[String]) -> Result<List, curl::Error> {
    let mut list = List::new();
    for (k, v) in &spec.headers {
        // libcurl reads "Name:" with nothing after it as "remove this header"; "Name;" is
        // its way to send the header with an empty value, which is what the config asked.
        if v.trim().is_empty() {
            list.append(&format!("{k};"))?;
        } else {
            list.append(&format!("{k}: {v}"))?;
        }
    }
    for line in extra {
        list.append(line)?;
    }
    Ok(list)
}
