//! Upload request bodies, streamed from disk as libcurl asks for them: a raw file (or a slice
//! of one), or multipart/form-data built from form fields and file parts (RFC 7578). Memory
//! stays flat whatever the file sizes; the total length is known up front (Content-Length).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// One file of an upload: which bytes to send and how to label them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePart {
    /// Index of the file in the task's file list.
    pub index: usize,
    pub path: PathBuf,
    /// Form field name (multipart).
    pub name: String,
    /// `filename` of the part (multipart).
    pub filename: String,
    pub content_type: String,
    pub offset: u64,
    pub len: u64,
}

enum Segment {
    Bytes(Vec<u8>),
    File {
        index: usize,
        file: File,
        offset: u64,
        len: u64,
    },
}

/// A request body as a sequence of segments, read front to back.
pub struct Body {
    segments: Vec<Segment>,
    /// Current segment and the offset inside it.
    seg: usize,
    pos: u64,
    pub content_type: String,
    pub len: u64,
}

/// Bytes of file content sent so far, per file index (for progress).
pub type FileProgress = (usize, u64);

impl Body {
    /// The raw bytes of one file (PUT, or a non-multipart POST).
    pub fn raw(part: &FilePart) -> io::Result<Body> {
        let file = File::open(&part.path)?;
        Ok(Body {
            len: part.len,
            segments: vec![Segment::File {
                index: part.index,
                file,
                offset: part.offset,
                len: part.len,
            }],
            seg: 0,
            pos: 0,
            content_type: part.content_type.clone(),
        })
    }

    /// multipart/form-data: the fields first, then one part per file.
    pub fn multipart(
        fields: &[(String, String)],
        files: &[FilePart],
        boundary: &str,
    ) -> io::Result<Body> {
        let mut segments = Vec::new();
        for (name, value) in fields {
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                quote(name)
            );
            segments.push(Segment::Bytes(
                [head.as_bytes(), value.as_bytes(), b"\r\n"].concat(),
            ));
        }
        for f in files {
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quote(&f.name),
                quote(&f.filename),
                f.content_type
            );
            segments.push(Segment::Bytes(head.into_bytes()));
            segments.push(Segment::File {
                index: f.index,
                file: File::open(&f.path)?,
                offset: f.offset,
                len: f.len,
            });
            segments.push(Segment::Bytes(b"\r\n".to_vec()));
        }
        segments.push(Segment::Bytes(format!("--{boundary}--\r\n").into_bytes()));
        let len = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File { len, .. } => *len,
            })
            .sum();
        Ok(Body {
            segments,
            seg: 0,
            pos: 0,
            content_type: format!("multipart/form-data; boundary={boundary}"),
            len,
        })
    }

    /// Fills `buf`; returns the bytes written and, if file content was sent, which file and
    /// how much. 0 bytes means the end. A file that shrank underneath us is an error.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<FileProgress>)> {
        while let Some(seg) = self.segments.get(self.seg) {
            let (seg_len, n, progress) = match seg {
                Segment::Bytes(b) => {
                    let rest = &b[self.pos as usize..];
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    (b.len() as u64, n, None)
                }
                Segment::File {
                    index,
                    file,
                    offset,
                    len,
                } => {
                    let want = ((len - self.pos) as usize).min(buf.len());
                    let n = if want == 0 {
                        0
                    } else {
                        file.read_at(&mut buf[..want], offset + self.pos)?
                    };
                    if n == 0 && want > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file shrank during the upload",
                        ));
                    }
                    (*len, n, Some((*index, n as u64)))
                }
            };
            self.pos += n as u64;
            if self.pos >= seg_len {
                self.seg += 1;
                self.pos = 0;
            }
            if n > 0 {
                return Ok((n, progress));
            }
        }
        Ok((0, None))
    }

    /// Back to the start (libcurl rewinds for redirects and retries).
    pub fn rewind(&mut self) {
        self.seg = 0;
        self.pos = 0;
    }
}

/// Escapes a value for a quoted Content-Disposition parameter.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

/// A real MIME type from a file name's extension; unknown → application/octet-stream.
pub fn mime_from_name(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "js" => "text/javascript",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, data: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ohreq-body-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    fn drain(b: &mut Body, chunk: usize) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut file_bytes = 0;
        let mut buf = vec![0u8; chunk];
        loop {
            let (n, p) = b.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            file_bytes += p.map_or(0, |(_, k)| k);
        }
        (out, file_bytes)
    }

    #[test]
    fn multipart_layout_and_length() {
        let p = tmp("a.txt", b"hello world");
        let part = FilePart {
            index: 0,
            path: p,
            name: "file".into(),
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
            offset: 6,
            len: 5,
        };
        let mut b = Body::multipart(&[("k".into(), "v".into())], &[part], "XyZ").unwrap();
        for chunk in [1, 7, 4096] {
            b.rewind();
            let (out, file_bytes) = drain(&mut b, chunk);
            let want = "--XyZ\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nworld\r\n--XyZ--\r\n";
            assert_eq!(String::from_utf8(out).unwrap(), want);
            assert_eq!(b.len, want.len() as u64);
            assert_eq!(file_bytes, 5);
        }
        assert_eq!(b.content_type, "multipart/form-data; boundary=XyZ");
    }

    #[test]
    fn raw_slice_and_shrinking_file() {
        let p = tmp("r.bin", b"0123456789");
        let part = FilePart {
            index: 2,
            path: p.clone(),
            name: String::new(),
            filename: String::new(),
            content_type: "x/y".into(),
            offset: 2,
            len: 5,
        };
        let mut b = Body::raw(&part).unwrap();
        assert_eq!(drain(&mut b, 3).0, b"23456");
        std::fs::write(&p, b"01").unwrap();
        b.rewind();
        let mut buf = [0u8; 8];
        assert!(b.read(&mut buf).is_err());
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_from_name("a.TXT"), "text/plain");
        assert_eq!(mime_from_name("photo.jpg"), "image/jpeg");
        assert_eq!(mime_from_name("noext"), "application/octet-stream");
        assert_eq!(mime_from_name("x.unknownext"), "application/octet-stream");
    }
}
