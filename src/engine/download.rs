//! The download sink: libcurl's callbacks for one transfer, writing the body into the part
//! file and deciding, per response, whether its body belongs there (reference C.7).

use super::response::{HeadParser, ResponseHead};
use super::{Reporter, Ticket};
use crate::task::Reason;
use curl::easy::{Handler, WriteError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Body bytes are gathered up to this size before a write (TLS hands them over in 16 KiB).
const WRITE_BATCH: usize = 512 << 10;

/// A failure the callbacks detected themselves (curl then reports a write error).
#[derive(Debug)]
pub enum LocalFailure {
    /// The final response was not 2xx.
    Status(u32),
    /// A user range was asked for and the server ignored it.
    RangeIgnored,
    /// `precise` and no Content-Length.
    SizeUnknown,
    /// A 206 for a different range than asked.
    RangeMismatch,
    Io(std::io::Error),
}

impl LocalFailure {
    pub fn reason(&self) -> Reason {
        match self {
            LocalFailure::Status(_) | LocalFailure::RangeMismatch => Reason::ProtocolError,
            LocalFailure::RangeIgnored => Reason::UnsupportRangeRequest,
            LocalFailure::SizeUnknown => Reason::GetFilesizeFailed,
            LocalFailure::Io(e) if super::errors::is_no_space(e) => Reason::InsufficientSpace,
            LocalFailure::Io(_) => Reason::IoError,
        }
    }
}

/// The part file, opened when bytes first have to go to disk: a body that ends within one
/// write batch never costs the engine thread a file creation (the publisher writes it).
pub struct PartFile {
    pub path: PathBuf,
    file: Option<Arc<File>>,
    /// Bytes of an existing part file to keep when it is opened; the rest is cut off.
    keep: u64,
}

impl PartFile {
    /// A part file of which the first `keep` bytes are valid (0: start afresh).
    pub fn new(path: PathBuf, keep: u64) -> PartFile {
        PartFile {
            path,
            file: None,
            keep,
        }
    }

    /// The open file, creating it (and cutting it to `keep` bytes) on first use. When bytes
    /// are to be kept the file must already hold them: a part file that vanished or shrank
    /// since the resume point was chosen is an error, never padded with zeros.
    pub fn open(&mut self) -> std::io::Result<&Arc<File>> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(self.keep == 0)
                .append(true)
                .read(true)
                .open(&self.path)?;
            let len = f.metadata()?.len();
            if len < self.keep {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("part file holds {len} bytes, {} were to be kept", self.keep),
                ));
            }
            f.set_len(self.keep)?;
            self.file = Some(Arc::new(f));
        }
        Ok(self.file.as_ref().expect("just opened"))
    }

    /// The file, if it has been opened.
    pub fn opened(&self) -> Option<Arc<File>> {
        self.file.clone()
    }

    /// Keeps only the first `keep` bytes: an open file is cut now, an unopened one when
    /// it is opened.
    pub fn keep_only(&mut self, keep: u64) -> std::io::Result<()> {
        self.keep = keep;
        match &self.file {
            Some(f) => f.set_len(keep),
            None => Ok(()),
        }
    }

    /// Nothing of this run's body is on disk and nothing before it is kept.
    fn untouched(&self) -> bool {
        self.file.is_none() && self.keep == 0
    }
}

/// A complete body: still in memory (never flushed), or in the part file.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<u8>),
    File(Arc<File>),
}

pub struct DownloadSink {
    pub ticket: Ticket,
    pub part: PartFile,
    /// Bytes of the body so far (the part file's length once `pending` is flushed).
    pub written: u64,
    /// Body bytes not yet handed to the kernel: few large writes instead of many small ones.
    pending: Vec<u8>,
    /// Where this attempt asked the server to start (0 for a plain GET).
    requested_from: u64,
    /// Offset into the resource of the part file's first byte (user range `begins`).
    pub base: u64,
    user_range: bool,
    precise: bool,
    parser: HeadParser,
    /// The head whose body is being written.
    pub head: Option<ResponseHead>,
    pub total: Option<u64>,
    pub etag: String,
    pub last_modified: String,
    pub failure: Option<LocalFailure>,
    /// The server answered a resume with 416 for a resource exactly as long as the part
    /// file: it already holds the whole body.
    complete_on_disk: bool,
    reporter: Arc<dyn Reporter>,
}

impl DownloadSink {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ticket: Ticket,
        part: PartFile,
        written: u64,
        requested_from: u64,
        base: u64,
        user_range: bool,
        precise: bool,
        validators: (String, String),
        reporter: Arc<dyn Reporter>,
    ) -> DownloadSink {
        DownloadSink {
            ticket,
            part,
            written,
            pending: Vec::new(),
            requested_from,
            base,
            user_range,
            precise,
            parser: HeadParser::default(),
            head: None,
            total: None,
            etag: validators.0,
            last_modified: validators.1,
            failure: None,
            complete_on_disk: false,
            reporter,
        }
    }

    /// Hands buffered body bytes to the kernel; afterwards the file holds `written` bytes.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self
            .part
            .open()
            .and_then(|f| (&**f).write_all(&self.pending));
        self.pending.clear();
        r
    }

    /// The complete body, once the transfer has ended well: the buffered bytes themselves
    /// when nothing reached the part file, else the part file with everything flushed.
    pub fn take_body(&mut self) -> std::io::Result<Body> {
        if self.part.untouched() {
            return Ok(Body::Memory(std::mem::take(&mut self.pending)));
        }
        self.flush()?;
        Ok(Body::File(self.part.open()?.clone()))
    }

    /// A final status the body is accepted for: 2xx, or the 416 of a complete part file.
    pub fn accepted(&self, status: u32) -> bool {
        (200..300).contains(&status) || (status == 416 && self.complete_on_disk)
    }

    /// A resume (not a user range) that asked from exactly the resource's end gets 416 with
    /// `bytes */length`: the part file is the whole resource (the last run got every byte
    /// but not the end of the response). If-Range is evaluated before Range, so a changed
    /// resource would have come back whole with 200 instead.
    fn note_416(&mut self, head: &ResponseHead) {
        if !self.user_range
            && self.requested_from > 0
            && self.written == self.requested_from
            && head.unsatisfied_range_total() == Some(self.requested_from)
        {
            self.complete_on_disk = true;
            self.total = Some(self.written);
        }
    }

    pub fn got_response(&self) -> bool {
        self.head.is_some()
    }

    /// Decides what to do with the body of a final 2xx response.
    fn accept(&mut self, head: &ResponseHead) -> Result<(), LocalFailure> {
        let asked_range = self.requested_from > 0 || self.user_range;
        let length = head.content_length();
        if head.status == 206 && asked_range {
            let (start, _, full) = head.content_range().ok_or(LocalFailure::RangeMismatch)?;
            if start != self.requested_from {
                return Err(LocalFailure::RangeMismatch);
            }
            self.total = match (length, full) {
                (Some(l), _) => Some(self.written + l),
                (None, Some(f)) if !self.user_range => Some(f - self.base),
                _ => None,
            };
        } else {
            if asked_range && self.user_range {
                return Err(LocalFailure::RangeIgnored);
            }
            if self.written > 0 {
                // The server sent the whole resource (changed, or ranges unsupported).
                self.pending.clear();
                self.part.keep_only(0).map_err(LocalFailure::Io)?;
                self.written = 0;
                // The stored resume point no longer describes the file.
                self.reporter.checkpoint(self.ticket, None, 0, "", "");
            }
            self.total = length;
        }
        if self.total.is_none() && self.precise {
            return Err(LocalFailure::SizeUnknown);
        }
        self.etag = head.header("etag").unwrap_or("").to_owned();
        self.last_modified = head.header("last-modified").unwrap_or("").to_owned();
        Ok(())
    }
}

impl Handler for DownloadSink {
    fn header(&mut self, data: &[u8]) -> bool {
        let Some(head) = self.parser.feed(data) else {
            return true;
        };
        self.reporter.response(self.ticket, &head);
        if (200..300).contains(&head.status)
            && let Err(f) = self.accept(&head)
        {
            self.failure = Some(f);
            return false;
        }
        if head.status == 416 {
            self.note_416(&head);
        }
        if head.status >= 200 {
            self.head = Some(head);
        }
        true
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if self.failure.is_some() {
            return Ok(0); // a failed flush: abort the transfer
        }
        let status = self.head.as_ref().map_or(0, |h| h.status);
        if self.complete_on_disk {
            return Ok(data.len()); // the 416's own text, not the resource
        }
        if !(200..300).contains(&status) {
            // An error or unfollowed redirect body never reaches the part file.
            self.failure = Some(LocalFailure::Status(status));
            return Ok(0);
        }
        self.written += data.len() as u64;
        let result = if self.pending.is_empty() && data.len() >= WRITE_BATCH {
            self.part.open().and_then(|f| (&**f).write_all(data))
        } else {
            self.pending.extend_from_slice(data);
            if self.pending.len() >= WRITE_BATCH {
                self.flush()
            } else {
                Ok(())
            }
        };
        match result {
            Ok(()) => Ok(data.len()),
            Err(e) => {
                self.failure = Some(LocalFailure::Io(e));
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_file_is_never_padded_to_the_resume_point() {
        let dir = std::env::temp_dir().join(format!("ohreq-partfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.ohreq-part");
        let _ = std::fs::remove_file(&p);
        // Gone since the resume point was chosen: an error, and no file is made.
        assert!(PartFile::new(p.clone(), 10).open().is_err());
        assert!(!p.exists());
        // Shorter than the resume point: an error, the file untouched.
        std::fs::write(&p, b"12345").unwrap();
        assert!(PartFile::new(p.clone(), 10).open().is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"12345");
        // Longer: cut to the resume point, and writes go after it.
        std::fs::write(&p, b"0123456789abcdef").unwrap();
        let mut part = PartFile::new(p.clone(), 10);
        (&**part.open().unwrap()).write_all(b"XY").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"0123456789XY");
        // Nothing kept: created when missing.
        std::fs::remove_file(&p).unwrap();
        assert!(PartFile::new(p.clone(), 0).open().is_ok());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
