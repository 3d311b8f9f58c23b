//! The upload source: libcurl's callbacks for one upload request, streaming the body from disk
//! and capturing the response (head and a bounded body) for `headerReceive`.

use super::body::Body;
use super::response::{HeadParser, ResponseHead};
use super::{Reporter, Ticket};
use curl::easy::{Handler, ReadError, SeekResult, WriteError};
use std::io::SeekFrom;
use std::sync::Arc;

/// Response bodies larger than this are cut (the app sees the first bytes).
const MAX_REPLY_BODY: usize = 1 << 20;

pub struct UploadSink {
    ticket: Ticket,
    body: Body,
    /// File-content bytes sent by this request, per file index.
    pub sent: Vec<(usize, u64)>,
    parser: HeadParser,
    pub head: Option<ResponseHead>,
    pub reply: Vec<u8>,
    pub read_error: Option<std::io::Error>,
    reporter: Arc<dyn Reporter>,
}

impl UploadSink {
    pub fn new(ticket: Ticket, body: Body, reporter: Arc<dyn Reporter>) -> UploadSink {
        UploadSink {
            ticket,
            body,
            sent: Vec::new(),
            parser: HeadParser::default(),
            head: None,
            reply: Vec::new(),
            read_error: None,
            reporter,
        }
    }

    pub fn body_len(&self) -> u64 {
        self.body.len
    }

    pub fn content_type(&self) -> &str {
        &self.body.content_type
    }
}

impl Handler for UploadSink {
    fn read(&mut self, data: &mut [u8]) -> Result<usize, ReadError> {
        match self.body.read(data) {
            Ok((n, progress)) => {
                if let Some((index, k)) = progress {
                    match self.sent.iter_mut().find(|(i, _)| *i == index) {
                        Some(e) => e.1 += k,
                        None => self.sent.push((index, k)),
                    }
                }
                Ok(n)
            }
            Err(e) => {
                self.read_error = Some(e);
                Err(ReadError::Abort)
            }
        }
    }

    fn seek(&mut self, whence: SeekFrom) -> SeekResult {
        // libcurl rewinds to resend the body (redirects, auth); only the start is needed.
        if whence == SeekFrom::Start(0) {
            self.body.rewind();
            self.sent.clear();
            SeekResult::Ok
        } else {
            SeekResult::CantSeek
        }
    }

    fn header(&mut self, data: &[u8]) -> bool {
        if let Some(head) = self.parser.feed(data) {
            self.reporter.response(self.ticket, &head);
            if head.status >= 200 {
                self.reply.clear();
                self.head = Some(head);
            }
        }
        true
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        let room = MAX_REPLY_BODY.saturating_sub(self.reply.len());
        self.reply.extend_from_slice(&data[..data.len().min(room)]);
        Ok(data.len())
    }
}

// ---- the engine loop's upload side ----

use super::body::FilePart;
use super::{
    Failure, Loop, Outcome, PROGRESS_INTERVAL, RETRY_408, RETRY_INTERVAL, RETRY_TIMES,
    TransferSpec, UploadPlan, UploadRequest, common_options, header_list, http_error_text,
    is_retryable, reason_for_curl,
};
use crate::task::{Reason, TaskId};
use curl::easy::Easy2;
use curl::multi::Easy2Handle;
use std::time::Instant;

/// An upload between requests or in flight.
pub(super) struct ActiveUpload {
    spec: Box<TransferSpec>,
    plan: UploadPlan,
    /// The request being sent (index into `plan.requests`).
    request: usize,
    handle: Option<Easy2Handle<UploadSink>>,
    raw: *mut curl_sys::CURL,
    pub(super) retry_at: Option<Instant>,
    tries: u32,
    tries_408: u32,
    deadline: Instant,
    last_progress: Instant,
    /// File-content bytes of the requests already answered, per file index.
    done: Vec<(usize, u64)>,
}

impl ActiveUpload {
    fn ticket(&self) -> Ticket {
        Ticket {
            id: self.spec.id,
            run: self.spec.run,
        }
    }

    /// Bytes sent so far in this run, per file: finished requests plus the current one.
    fn sent(&self) -> Vec<(usize, u64)> {
        let mut all = self.done.clone();
        if let Some(h) = &self.handle {
            all.extend(h.get_ref().sent.iter().copied());
        }
        all
    }

    pub(super) fn set_max_speed(&mut self, speed: u64) {
        self.spec.max_speed = speed;
        if self.handle.is_some() {
            // SAFETY: `raw` is the live easy handle of `handle`, used on the engine thread only.
            unsafe {
                curl_sys::curl_easy_setopt(
                    self.raw,
                    curl_sys::CURLOPT_MAX_SEND_SPEED_LARGE,
                    speed as curl_sys::curl_off_t,
                );
            }
        }
    }
}

fn boundary(id: TaskId) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("----ohreq-{id:08x}-{nanos:x}")
}

fn build_body(req: &UploadRequest, id: TaskId) -> std::io::Result<Body> {
    match req {
        UploadRequest::Multipart { fields, files } => Body::multipart(fields, files, &boundary(id)),
        UploadRequest::Raw(part) => Body::raw(part),
    }
}

fn part_paths(req: &UploadRequest) -> Vec<&FilePart> {
    match req {
        UploadRequest::Multipart { files, .. } => files.iter().collect(),
        UploadRequest::Raw(p) => vec![p],
    }
}

impl Loop {
    pub(super) fn begin_upload(&mut self, mut spec: Box<TransferSpec>) {
        let Some(plan) = spec.upload.take() else {
            return;
        };
        let now = Instant::now();
        let mut u = ActiveUpload {
            deadline: now + spec.total_timeout,
            request: plan.first,
            plan,
            spec,
            handle: None,
            raw: std::ptr::null_mut(),
            retry_at: None,
            tries: 0,
            tries_408: 0,
            last_progress: now,
            done: Vec::new(),
        };
        if u.request >= u.plan.requests.len() {
            return self
                .reporter
                .finished(u.ticket(), Outcome::Uploaded { bytes: 0 });
        }
        match self.attempt_upload(&mut u) {
            Ok(()) => {
                self.uploads.insert(u.spec.id, u);
            }
            Err(f) => self.reporter.finished(u.ticket(), Outcome::Failed(f)),
        }
    }

    /// Starts the current request of `u` from the beginning of its body.
    fn attempt_upload(&mut self, u: &mut ActiveUpload) -> Result<(), Failure> {
        let req = &u.plan.requests[u.request];
        let sent: u64 = u.done.iter().map(|(_, n)| n).sum();
        let files = req.file_indices();
        let fail = |reason, detail: String| Failure {
            reason,
            http_status: 0,
            curl_code: 0,
            detail,
            bytes: sent,
            files: files.clone(),
        };
        let body = build_body(req, u.spec.id).map_err(|e| {
            let path = part_paths(req)
                .first()
                .map(|p| p.path.display().to_string())
                .unwrap_or_default();
            fail(Reason::IoError, format!("cannot open {path}: {e}"))
        })?;
        let sink = UploadSink::new(u.ticket(), body, self.reporter.clone());
        let pipewait = self.origins.multiplexes(&u.spec.url);
        let easy = configure_upload(&u.spec, sink, u.deadline, pipewait).map_err(|e| {
            fail(
                Reason::BuildRequestFailed,
                format!("cannot build the request: {e}"),
            )
        })?;
        u.raw = easy.raw();
        let mut handle = self.multi.add2(easy).map_err(|e| {
            fail(
                Reason::BuildClientFailed,
                format!("cannot add transfer: {e}"),
            )
        })?;
        let _ = handle.set_token(u.spec.id as usize);
        u.handle = Some(handle);
        u.retry_at = None;
        Ok(())
    }

    pub(super) fn cancel_upload(&mut self, id: TaskId) {
        let Some(mut u) = self.uploads.remove(&id) else {
            return;
        };
        let bytes = u.sent().iter().map(|(_, n)| n).sum();
        if let Some(h) = u.handle.take() {
            let _ = self.multi.remove2(h);
        }
        let outcome = Outcome::Cancelled {
            file: None,
            bytes,
            total: None,
            etag: String::new(),
            last_modified: String::new(),
        };
        self.reporter.finished(u.ticket(), outcome);
    }

    /// One request of an upload ended: on to the next, a retry, or the task's outcome.
    pub(super) fn finish_upload_request(&mut self, id: TaskId, result: Result<(), curl::Error>) {
        let Some(mut u) = self.uploads.remove(&id) else {
            return;
        };
        let Some(handle) = u.handle.take() else {
            return;
        };
        let mut easy = match self.multi.remove2(handle) {
            Ok(e) => e,
            Err(e) => {
                log::error!("engine: cannot remove finished upload {id}: {e}");
                return;
            }
        };
        let status = easy.response_code().unwrap_or(0);
        let files = u.plan.requests[u.request].file_indices();
        let sink = easy.get_mut();
        let bytes_before: u64 = u.done.iter().map(|(_, n)| n).sum();
        let failed = |reason, curl_code: i32, detail: String, bytes: u64| {
            Outcome::Failed(Failure {
                reason,
                http_status: status,
                curl_code,
                detail,
                files: files.clone(),
                bytes,
            })
        };
        if let Some(e) = sink.read_error.take() {
            let path = part_paths(&u.plan.requests[u.request])
                .first()
                .map(|p| p.path.display().to_string())
                .unwrap_or_default();
            let outcome = failed(
                Reason::IoError,
                0,
                format!("reading {path}: {e}"),
                bytes_before,
            );
            return self.reporter.finished(u.ticket(), outcome);
        }
        match result {
            Ok(()) => {
                let head = sink.head.clone().unwrap_or_default();
                if status == 408 && u.tries_408 < RETRY_408 {
                    u.tries_408 += 1;
                    u.retry_at = Some(Instant::now());
                    self.uploads.insert(id, u);
                    return;
                }
                self.reporter
                    .upload_reply(u.ticket(), &files, &head, &sink.reply);
                if !(200..300).contains(&status) {
                    let outcome = failed(
                        Reason::ProtocolError,
                        0,
                        http_error_text(status, Some(&head)),
                        bytes_before,
                    );
                    return self.reporter.finished(u.ticket(), outcome);
                }
                u.done.extend(sink.sent.iter().copied());
                u.request += 1;
                u.tries = 0;
                u.tries_408 = 0;
                if u.request >= u.plan.requests.len() {
                    let bytes = u.done.iter().map(|(_, n)| n).sum();
                    self.reporter.upload_progress(u.ticket(), &u.done);
                    return self
                        .reporter
                        .finished(u.ticket(), Outcome::Uploaded { bytes });
                }
                match self.attempt_upload(&mut u) {
                    Ok(()) => {
                        self.uploads.insert(id, u);
                    }
                    Err(f) => self.reporter.finished(u.ticket(), Outcome::Failed(f)),
                }
            }
            Err(e) => {
                let code = e.code();
                let detail = match e.extra_description() {
                    Some(x) => format!("{} ({x})", e.description()),
                    None => e.description().to_owned(),
                };
                let out_of_time = Instant::now() >= u.deadline;
                if is_retryable(code) && !out_of_time && u.tries < RETRY_TIMES {
                    u.tries += 1;
                    if self.reporter.retry(u.ticket(), u.tries) {
                        u.retry_at = Some(Instant::now() + RETRY_INTERVAL);
                        self.uploads.insert(id, u);
                        return;
                    }
                    let outcome = failed(
                        Reason::NetworkOffline,
                        code as i32,
                        format!("{detail}; network is offline"),
                        bytes_before,
                    );
                    return self.reporter.finished(u.ticket(), outcome);
                }
                let reason = if out_of_time && code == curl_sys::CURLE_OPERATION_TIMEDOUT {
                    Reason::ContinuousTaskTimeout
                } else {
                    reason_for_curl(code, sink.head.is_some(), true)
                };
                self.reporter.finished(
                    u.ticket(),
                    failed(reason, code as i32, detail, bytes_before),
                );
            }
        }
    }

    pub(super) fn start_due_upload_retries(&mut self) {
        let now = Instant::now();
        let due: Vec<TaskId> = self
            .uploads
            .iter()
            .filter(|(_, u)| u.retry_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut u) = self.uploads.remove(&id) else {
                continue;
            };
            match self.attempt_upload(&mut u) {
                Ok(()) => {
                    self.uploads.insert(id, u);
                }
                Err(f) => self.reporter.finished(u.ticket(), Outcome::Failed(f)),
            }
        }
    }

    pub(super) fn tick_uploads(&mut self) {
        let now = Instant::now();
        for u in self.uploads.values_mut() {
            if u.handle.is_some() && now.duration_since(u.last_progress) >= PROGRESS_INTERVAL {
                u.last_progress = now;
                self.reporter.upload_progress(u.ticket(), &u.sent());
            }
        }
    }
}

fn configure_upload(
    spec: &TransferSpec,
    sink: UploadSink,
    deadline: Instant,
    pipewait: bool,
) -> Result<Easy2<UploadSink>, curl::Error> {
    let len = sink.body_len();
    let content_type = sink.content_type().to_owned();
    let mut e = Easy2::new(sink);
    common_options(&mut e, spec, deadline, true, pipewait)?;
    e.upload_buffer_size(super::BUFFER_SIZE.min(2 << 20))?;
    if spec.max_speed > 0 {
        e.max_send_speed(spec.max_speed)?;
    }
    // The caller's Content-Type wins; "Expect:" skips the 100-continue round trip.
    let mut extra = vec!["Expect:".to_owned()];
    if !spec
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        extra.push(format!("Content-Type: {content_type}"));
    }
    e.http_headers(header_list(spec, &extra)?)?;
    if spec.method.eq_ignore_ascii_case("PUT") {
        e.upload(true)?;
        e.in_filesize(len)?;
    } else {
        e.post(true)?;
        e.post_field_size(len)?;
        if !spec.method.eq_ignore_ascii_case("POST") {
            e.custom_request(&spec.method)?;
        }
    }
    Ok(e)
}
