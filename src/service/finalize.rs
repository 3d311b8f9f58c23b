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

    pub fn publish(&self, file: Arc<File>, part: PathBuf, target: PathBuf, done: Done) {
        let job = Job {
            file,
            part,
            target,
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
                j.file
                    .sync_data()
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
            let mut f = File::create(&part).unwrap();
            f.write_all(format!("file {i}").as_bytes()).unwrap();
            let tx = tx.clone();
            p.publish(
                Arc::new(f),
                part,
                dir.join(format!("{i}")),
                Box::new(move |r| tx.send((i, r.is_ok())).unwrap()),
            );
        }
        p.shutdown();
        let mut got: Vec<(i32, bool)> = rx.try_iter().collect();
        got.sort();
        assert_eq!(got, (0..20).map(|i| (i, true)).collect::<Vec<_>>());
        assert_eq!(std::fs::read_to_string(dir.join("7")).unwrap(), "file 7");
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
