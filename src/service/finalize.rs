//! Publishing a finished download: the part file is synced and renamed onto the target, and
//! the directory synced, so the target is either absent or whole (DESIGN §6).
//!
//! A few publisher threads do this off the engine and store threads: their fsyncs overlap
//! (the filesystem commits them together), a batch of files in one directory costs one
//! directory sync, and a body that is still in memory (a small file) is written here, so
//! creating its file — an inode allocation — costs the engine nothing and runs in parallel.

use crate::engine::Body;
use crate::workqueue::WorkQueue;
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Called with the outcome once the file is at its target (and durable) or could not be.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

struct Job {
    body: Body,
    part: PathBuf,
    /// An earlier run may have left a part file (this run's body is not in it).
    stale_part: bool,
    target: PathBuf,
    /// Expected SHA-256 (lowercase hex) of the whole file; empty for none.
    sha256: String,
    done: Done,
}

pub struct Publisher {
    queue: Arc<WorkQueue<Job>>,
    threads: Vec<JoinHandle<()>>,
}

const THREADS: usize = 3;
const BATCH: usize = 64;

impl Publisher {
    pub fn start() -> io::Result<Publisher> {
        let queue = Arc::new(WorkQueue::default());
        let dirs = Arc::new(DirSyncs::default());
        let mut threads = Vec::new();
        for i in 0..THREADS {
            let (queue, dirs) = (queue.clone(), dirs.clone());
            threads.push(crate::threads::spawn_background(
                format!("ohreq-publish-{i}"),
                move || worker(&queue, &dirs),
            )?);
        }
        Ok(Publisher { queue, threads })
    }

    /// Queues the publication; `done` runs on a publisher thread. False (and `done` never
    /// runs) once the publisher has stopped: the caller may hold locks `done` would take.
    pub fn publish(
        &self,
        body: Body,
        part: PathBuf,
        stale_part: bool,
        target: PathBuf,
        sha256: String,
        done: Done,
    ) -> bool {
        let job = Job {
            body,
            part,
            stale_part,
            target,
            sha256,
            done,
        };
        self.queue.push(job).is_ok()
    }

    /// Publishes everything queued, then stops the threads.
    pub fn shutdown(&mut self) {
        self.queue.close();
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

fn worker(queue: &WorkQueue<Job>, dirs: &DirSyncs) {
    while let Some(first) = queue.pop() {
        let mut batch = vec![first];
        queue.take_more(&mut batch, BATCH - 1);
        // Every file of the batch is written and its writeback started before any is
        // waited for, so the device gets the whole batch at once (for 1000 small files that
        // halves the time spent syncing); then each is synced and renamed, and each
        // directory synced once, together with what the other publishers renamed there.
        // A batch of one gains nothing from it: its sync submits the same writes.
        let several = batch.len() > 1;
        let staged: Vec<io::Result<Staged>> = batch
            .iter()
            .map(|j| {
                let staged = stage(&j.body, &j.part, &j.target)?;
                check_digest(staged.file(), &j.sha256)?;
                if several {
                    start_writeback(staged.file());
                }
                Ok(staged)
            })
            .collect();
        let mut results: Vec<io::Result<()>> = batch
            .iter()
            .zip(staged)
            .map(|(j, staged)| {
                let staged = staged?;
                staged.file().sync_data()?;
                match staged {
                    Staged::Part(_) => rename_noreplace(&j.part, &j.target),
                    Staged::Anonymous(f) => {
                        link_anonymous(&f, &j.target, &j.body, &j.part)?;
                        // A part file an earlier run left (its bytes were not kept) goes
                        // too; the task is live, so no other task downloads to this path.
                        // Not looked for otherwise: the unlink is a directory lookup.
                        if j.stale_part {
                            let _ = std::fs::remove_file(&j.part);
                        }
                        Ok(())
                    }
                }
            })
            .collect();
        let mut synced: BTreeMap<&Path, io::Result<()>> = BTreeMap::new();
        for (j, r) in batch.iter().zip(&results) {
            if let (Ok(()), Some(dir)) = (r, j.target.parent()) {
                synced.entry(dir).or_insert_with(|| dirs.sync(dir));
            }
        }
        for (j, r) in batch.iter().zip(results.iter_mut()) {
            if let (Ok(()), Some(Err(e))) = (&*r, j.target.parent().and_then(|d| synced.get(d))) {
                *r = Err(io::Error::new(
                    e.kind(),
                    format!("syncing the directory: {e}"),
                ));
            }
        }
        drop(synced);
        for (j, r) in batch.into_iter().zip(results) {
            (j.done)(r);
        }
    }
}

/// Directory syncs as group commits: a caller whose rename is done waits for one sync of
/// the directory that began after it asked. Publishers asking while a sync runs share the
/// next one, so a stream of small files costs a few directory syncs instead of one each.
#[derive(Default)]
struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, DirSync>>,
    changed: Condvar,
}

#[derive(Default)]
struct DirSync {
    /// Requests so far; a sync that begins covers every one made before it.
    asked: u64,
    /// Requests covered by the syncs finished so far.
    covered: u64,
    /// Failed syncs: the requests each one was the first to cover, `(after, upto]`, and why.
    failed: Vec<(u64, u64, io::ErrorKind, String)>,
    running: bool,
    /// Callers inside `sync` for this directory; the entry goes when the last one leaves.
    inside: usize,
}

impl DirSyncs {
    fn sync(&self, dir: &Path) -> io::Result<()> {
        let mut dirs = self.dirs.lock();
        let mine = {
            let d = dirs.entry(dir.to_path_buf()).or_default();
            d.asked += 1;
            d.inside += 1;
            d.asked
        };
        loop {
            let d = dirs.get_mut(dir).expect("entry made above");
            if d.covered >= mine {
                // The outcome of the first sync that began after this request.
                let result = match d.failed.iter().find(|f| f.0 < mine && mine <= f.1) {
                    None => Ok(()),
                    Some((_, _, kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
                };
                d.inside -= 1;
                if d.inside == 0 {
                    dirs.remove(dir); // nobody waits on it: keep the map small
                }
                return result;
            }
            if d.running {
                self.changed.wait(&mut dirs);
                continue;
            }
            d.running = true;
            let covers = d.asked;
            drop(dirs);
            let outcome = File::open(dir).and_then(|f| f.sync_all());
            dirs = self.dirs.lock();
            let d = dirs.get_mut(dir).expect("kept while running");
            d.running = false;
            if let Err(e) = outcome {
                d.failed.push((d.covered, covers, e.kind(), e.to_string()));
            }
            d.covered = covers;
            self.changed.notify_all();
        }
    }
}

/// Asks the kernel to start writing the file's dirty pages now, without waiting; the sync
/// that follows then mostly waits for I/O already under way. Only a hint: errors show up
/// in that sync.
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor; offset 0 and length 0 mean the whole file.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// A body on disk, ready to be synced and published.
enum Staged {
    /// In the part file, published by renaming it.
    Part(Arc<File>),
    /// In a file without a name (O_TMPFILE), published by linking it at the target.
    Anonymous(File),
}

impl Staged {
    fn file(&self) -> &File {
        match self {
            Staged::Part(f) => f,
            Staged::Anonymous(f) => f,
        }
    }
}

/// The body as a file. A body still in memory goes into a new unnamed file in the target's
/// directory: its inode is allocated without the directory's lock, so publishers create
/// files in parallel (a named create serializes them on the directory), and a crash leaves
/// nothing behind. Where unnamed files are not supported it goes into the part file.
fn stage(body: &Body, part: &Path, target: &Path) -> io::Result<Staged> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = match body {
        Body::File(f) => return Ok(Staged::Part(f.clone())),
        Body::Memory(bytes) => bytes,
    };
    if let Some(dir) = target.parent() {
        let anon = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o666)
            .open(dir);
        match anon {
            Ok(mut f) => {
                io::Write::write_all(&mut f, bytes)?;
                return Ok(Staged::Anonymous(f));
            }
            Err(e) if !unnamed_unsupported(&e) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(Staged::Part(Arc::new(write_part(part, bytes)?)))
}

/// Errors that mean "this filesystem (or kernel) has no O_TMPFILE", not a real failure.
fn unnamed_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL) | Some(libc::ENOENT)
    )
}

fn write_part(part: &Path, bytes: &[u8]) -> io::Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .read(true)
        .open(part)?;
    io::Write::write_all(&mut f, bytes)?;
    Ok(f)
}

/// Gives the synced unnamed file its name, failing if the target exists (as the rename
/// does). Without /proc to name the descriptor, the bytes go the part-file way instead.
fn link_anonymous(f: &File, target: &Path, body: &Body, part: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let proc_path = std::ffi::CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .map_err(io::Error::other)?;
    let to = c_path(target)?;
    // SAFETY: two valid NUL-terminated paths; AT_SYMLINK_FOLLOW resolves the /proc link to
    // the open file, which needs no privilege (AT_EMPTY_PATH would).
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match (err.raw_os_error(), body) {
        (Some(libc::ENOENT), Body::Memory(bytes)) if target.parent().is_some_and(Path::is_dir) => {
            let file = write_part(part, bytes)?;
            file.sync_data()?;
            rename_noreplace(part, target)
        }
        _ => Err(err),
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

/// A path as libc takes it (a path with a NUL byte in it is an error).
pub(super) fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Renames without clobbering: a file that appeared at the target meanwhile is not lost.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
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
            let text = format!("file {i}");
            // Odd files come in part files, even ones as bodies still in memory.
            let body = if i % 2 == 1 {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(&part)
                    .unwrap();
                f.write_all(text.as_bytes()).unwrap();
                Body::File(Arc::new(f))
            } else {
                Body::Memory(text.into_bytes())
            };
            // Files 6 and 10 come from memory after an earlier run left a part file, which
            // must go.
            let stale_part = i == 6 || i == 10;
            if stale_part {
                std::fs::write(&part, "an earlier run's bytes").unwrap();
            }
            let tx = tx.clone();
            // File 3 carries a wrong digest and must not be published; file 4's target
            // appears before it is published (a body in memory) and must stay as it is.
            if i == 4 {
                std::fs::write(dir.join("4"), "someone else's").unwrap();
            }
            let digest = if i == 3 {
                "0".repeat(64)
            } else {
                String::new()
            };
            let done: Done = Box::new(move |r: io::Result<()>| tx.send((i, r.is_ok())).unwrap());
            p.publish(
                body,
                part,
                stale_part,
                dir.join(format!("{i}")),
                digest,
                done,
            );
        }
        p.shutdown();
        let mut got: Vec<(i32, bool)> = rx.try_iter().collect();
        got.sort();
        assert_eq!(
            got,
            (0..20).map(|i| (i, i != 3 && i != 4)).collect::<Vec<_>>()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("4")).unwrap(),
            "someone else's"
        );
        assert!(!dir.join("3").exists());
        assert_eq!(std::fs::read_to_string(dir.join("7")).unwrap(), "file 7");
        assert_eq!(std::fs::read_to_string(dir.join("8")).unwrap(), "file 8");
        assert_eq!(std::fs::read_to_string(dir.join("10")).unwrap(), "file 10");
        let parts = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with("-part")
            })
            .count();
        assert_eq!(parts, 1, "only the refused file's part is left"); // file 3's
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

    #[test]
    fn directory_syncs_from_many_threads_all_finish_and_share_errors() {
        let dir = std::env::temp_dir().join(format!("ohreq-dirsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        let syncs = Arc::new(DirSyncs::default());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (syncs, dir, missing) = (syncs.clone(), dir.clone(), missing.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        syncs.sync(&dir).unwrap();
                        if i % 2 == 0 {
                            let e = syncs.sync(&missing).unwrap_err();
                            assert_eq!(e.kind(), io::ErrorKind::NotFound);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(syncs.dirs.lock().is_empty(), "entries left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
