//! Publishing a finished download: the part file is synced and renamed onto the target, and
//! the directory synced, so the target is either absent or whole (DESIGN §6).
//!
//! A few publisher threads do this off the engine and store threads: their fsyncs overlap
//! (the filesystem commits them together), and a batch of files in one directory costs one
//! directory sync.

use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Called with the outcome once the file is at its target (and durable) or could not be.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

struct Job {
    file: Arc<File>,
    part: PathBuf,
    target: PathBuf,
    /// Expected SHA-256 (lowercase hex) of the whole file; empty for none.
    sha256: String,
    done: Done,
}

pub struct Publisher {
    tx: Sender<Option<Job>>,
    threads: Vec<JoinHandle<()>>,
}

const THREADS: usize = 8;
const BATCH: usize = 64;

impl Publisher {
    pub fn start() -> io::Result<Publisher> {
        let (tx, rx) = unbounded();
        let mut threads = Vec::new();
        for i in 0..THREADS {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ohreq-publish-{i}"))
                    .spawn(move || worker(rx))?,
            );
        }
        Ok(Publisher { tx, threads })
    }

    pub fn publish(
        &self,
        file: Arc<File>,
        part: PathBuf,
        target: PathBuf,
        sha256: String,
        done: Done,
    ) {
        let job = Job {
            file,
            part,
            target,
            sha256,
            done,
        };
        if let Err(crossbeam_channel::SendError(Some(job))) = self.tx.send(Some(job)) {
            (job.done)(Err(io::Error::other("the publisher has stopped")));
        }
    }

    /// Publishes everything queued, then stops the threads.
    pub fn shutdown(&mut self) {
        for _ in &self.threads {
            let _ = self.tx.send(None);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(rx: Receiver<Option<Job>>) {
    let mut stopping = false;
    while !stopping {
        let Ok(Some(first)) = rx.recv() else { return };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Some(j)) => batch.push(j),
                Ok(None) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // Sync and rename each file, then sync each directory once.
        let mut results: Vec<io::Result<()>> = batch
            .iter()
            .map(|j| {
                check_digest(&j.file, &j.sha256)
                    .and_then(|()| j.file.sync_data())
                    .and_then(|()| rename_noreplace(&j.part, &j.target))
            })
            .collect();
        let mut dirs: BTreeMap<&Path, io::Result<()>> = BTreeMap::new();
        for (j, r) in batch.iter().zip(&results) {
            if let (Ok(()), Some(dir)) = (r, j.target.parent()) {
                dirs.entry(dir)
                    .or_insert_with(|| File::open(dir).and_then(|d| d.sync_all()));
            }
        }
        for (j, r) in batch.iter().zip(results.iter_mut()) {
            if let (Ok(()), Some(Err(e))) = (&*r, j.target.parent().and_then(|d| dirs.get(d))) {
                *r = Err(io::Error::new(
                    e.kind(),
                    format!("syncing the directory: {e}"),
                ));
            }
        }
        drop(dirs);
        for (j, r) in batch.into_iter().zip(results) {
            (j.done)(r);
        }
    }
}

/// Reads the whole file back and compares its SHA-256 with `expected` (skipped when empty).
fn check_digest(file: &File, expected: &str) -> io::Result<()> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::FileExt;
    if expected.is_empty() {
        return Ok(());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got == expected {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sha256 mismatch: expected {expected}, got {got}"),
        ))
    }
}

#[cfg(test)]
pub fn publish(file: &File, part: &Path, target: &Path) -> io::Result<()> {
    file.sync_all()?;
    rename_noreplace(part, target)?;
    if let Some(dir) = target.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Renames without clobbering: a file that appeared at the target meanwhile is not lost.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths; AT_FDCWD for both.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Filesystems without RENAME_NOREPLACE: check, then rename.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "target appeared during the download",
                ));
            }
            std::fs::rename(from, to)
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn publisher_publishes_batches_and_reports_each() {
        let dir = std::env::temp_dir().join(format!("ohreq-pubpool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = Publisher::start().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..20 {
            let part = dir.join(format!("{i}.ohreq-part"));
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&part)
                .unwrap();
            f.write_all(format!("file {i}").as_bytes()).unwrap();
            let tx = tx.clone();
            // File 3 carries a wrong digest and must not be published.
            let digest = if i == 3 {
                "0".repeat(64)
            } else {
                String::new()
            };
            let done: Done = Box::new(move |r: io::Result<()>| tx.send((i, r.is_ok())).unwrap());
            p.publish(Arc::new(f), part, dir.join(format!("{i}")), digest, done);
        }
        p.shutdown();
        let mut got: Vec<(i32, bool)> = rx.try_iter().collect();
        got.sort();
        assert_eq!(got, (0..20).map(|i| (i, i != 3)).collect::<Vec<_>>());
        assert!(!dir.join("3").exists());
        assert_eq!(std::fs::read_to_string(dir.join("7")).unwrap(), "file 7");
    }

    #[test]
    fn digest_check() {
        let p = std::env::temp_dir().join(format!("ohreq-digest-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        let f = File::open(&p).unwrap();
        // SHA-256("abc")
        assert!(
            check_digest(
                &f,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
            .is_ok()
        );
        let e = check_digest(&f, &"0".repeat(64)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(check_digest(&f, "").is_ok());
    }

    #[test]
    fn publish_moves_and_refuses_to_clobber() {
        let dir = std::env::temp_dir().join(format!("ohreq-pub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let part = dir.join("a.ohreq-part");
        let target = dir.join("a");
        let _ = std::fs::remove_file(&target);
        let mut f = File::create(&part).unwrap();
        f.write_all(b"hello").unwrap();
        publish(&f, &part, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        assert!(!part.exists());
        let f2 = File::create(&part).unwrap();
        assert!(publish(&f2, &part, &target).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
    }
}
