//! SQLite persistence of tasks and their progress. One writer thread batches writes into
//! transactions; part-file syncs run there too, so the engine never waits on an fsync. A new
//! task's row is the exception: the creating thread commits it itself (see `Store::create`).

mod codec;
mod query;

pub use query::{Expired, Filter};

use crate::error::{Code, Error, Result};
use crate::task::{TaskId, TaskRecord};
use crate::workqueue::{ReplyTx, WorkQueue, reply};
use parking_lot::Mutex;
use rusqlite::Connection;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Work for the writer thread, run inside a transaction with the others of its batch.
type Job = Box<dyn FnOnce(&Connection) + Send>;

enum Msg {
    /// Write a task's state and progress (its whole row if it has none). Of several saves
    /// of one task in a batch with nothing else between them, only the last is written.
    Save(Box<TaskRecord>),
    /// Sync the part file, tell `Synced`, then save the row whose `durable_offset` it backs.
    Checkpoint(Option<Arc<File>>, Box<TaskRecord>, Option<Synced>),
    Run(Job),
    /// Answered once everything before it is committed: whether that worked.
    Flush(ReplyTx<bool>),
}

impl Msg {
    fn is_urgent(&self) -> bool {
        matches!(self, Msg::Run(_) | Msg::Flush(_))
    }
}

/// How long the writer lets row saves gather before it commits them, unless a flush or a
/// job comes first. Saves of a busy service then cost one transaction per few milliseconds
/// (a task's several state changes often coalesce into one row write) instead of one
/// wake-up and one commit each.
const LINGER: Duration = Duration::from_millis(5);

/// How many row writes and commits may go to the WAL between two checkpoints (each is a
/// page or a few; SQLite's own automatic checkpoint comes after 1000 pages). SQLite's is off:
/// it runs in whichever commit crosses the line, which could be a create holding the
/// registry lock through the checkpoint's fsyncs; the writer thread runs them instead.
const CHECKPOINT_EVERY: u64 = 1000;

/// Told whether a checkpoint's part-file data reached the disk, on the writer thread, before
/// its row is written (which it is only if it did) and without the connection held.
pub type Synced = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    queue: Arc<WorkQueue<Msg>>,
    /// The one connection: the writer holds it for a batch's transaction, `create` for its
    /// insert. Nothing that waits on the disk (a part-file sync) runs while it is held.
    /// The writer closes it (`None`) when it stops, so the file is free for the next owner.
    conn: Arc<Mutex<Option<Connection>>>,
    /// Row writes and commits since the store opened, by the writer and by creates: the
    /// writer checkpoints the WAL every `CHECKPOINT_EVERY` of them.
    writes: Arc<AtomicU64>,
}

/// Holds the store's connection while a task is being created (see `Store::creator`).
pub struct Creator<'a>(
    parking_lot::MutexGuard<'a, Option<Connection>>,
    &'a AtomicU64,
);

impl Creator<'_> {
    /// Commits the row of a task that is not stored yet.
    pub fn insert(&self, rec: &TaskRecord) -> Result<()> {
        let Some(c) = self.0.as_ref() else {
            return Err(stopped());
        };
        // Only in autocommit mode is the insert committed when it returns (a failed COMMIT
        // whose ROLLBACK failed too would leave the writer's transaction open).
        if !c.is_autocommit() && c.execute_batch("ROLLBACK").is_err() {
            return Err(Error::new(
                Code::Service,
                "task store error: a transaction is stuck open",
            ));
        }
        codec::upsert(c, rec).map_err(db_err)?;
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Owns the writer thread and the data-dir lock; dropping it flushes and joins.
pub struct StoreOwner {
    pub store: Store,
    thread: Option<JoinHandle<()>>,
    _lock: File,
}

const SCHEMA_VERSION: i64 = 2;

impl StoreOwner {
    /// Opens (creating if needed) `<data_dir>/ohreq.db`, takes the data-dir lock and loads
    /// every task. A data dir already held by a live service gives 13400003.
    pub fn open(data_dir: &Path) -> Result<(StoreOwner, Vec<TaskRecord>)> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::new(
                Code::Service,
                format!("cannot create data dir {}: {e}", data_dir.display()),
            )
        })?;
        let lock = lock_data_dir(data_dir)?;
        let path: PathBuf = data_dir.join("ohreq.db");
        let conn = Connection::open(&path).map_err(|e| {
            Error::new(
                Code::Service,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
        init_schema(&conn).map_err(db_err)?;
        let tasks = codec::load_all(&conn).map_err(db_err)?;
        let queue = Arc::new(WorkQueue::default());
        let conn = Arc::new(Mutex::new(Some(conn)));
        let writes = Arc::new(AtomicU64::new(0));
        let (q, c, w) = (queue.clone(), conn.clone(), writes.clone());
        let thread =
            crate::threads::spawn_background("ohreq-store".into(), move || writer_loop(&c, &q, &w))
                .map_err(|e| {
                    Error::new(Code::Service, format!("cannot start store thread: {e}"))
                })?;
        Ok((
            StoreOwner {
                store: Store {
                    queue,
                    conn,
                    writes,
                },
                thread: Some(thread),
                _lock: lock,
            },
            tasks,
        ))
    }
}

impl Drop for StoreOwner {
    fn drop(&mut self) {
        // The writer commits everything queued before the stop message, then ends; later
        // writes through other `Store` clones are dropped with a warning.
        self.store.queue.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// Queues a write of the task's state and progress to its row.
    pub fn save(&self, rec: &TaskRecord) {
        self.send(Msg::Save(Box::new(rec.clone())));
    }

    fn send(&self, m: Msg) {
        // Someone waits for a flush or a job's answer: wake the writer at once. Row saves
        // wait for the next batch (see `LINGER`).
        let sent = if m.is_urgent() {
            self.queue.push_wake(m)
        } else {
            self.queue.push(m)
        };
        if sent.is_err() {
            log::warn!("store: writer already stopped; a write was dropped");
        }
    }

    /// The connection, for committing the rows of new tasks on the calling thread: a create
    /// returns only once its task is stored, and a round trip through the writer thread cost
    /// more than the insert (two thread switches, and the wait for whatever batch was
    /// running). Taken without the registry lock, so neither waiting for the writer's batch
    /// nor the commit holds up anyone else. Later saves of the task are queued as usual and
    /// land after this.
    pub fn creator(&self) -> Creator<'_> {
        Creator(self.conn.lock(), &self.writes)
    }

    /// Makes `file`'s data durable, tells `synced` how that went, then saves `rec` (whose
    /// `durable_offset` says how much of the file that covers) if it worked. Only after both
    /// may a resume start from that offset.
    pub fn checkpoint(&self, file: Option<Arc<File>>, rec: &TaskRecord, synced: Synced) {
        self.send(Msg::Checkpoint(file, Box::new(rec.clone()), Some(synced)));
    }

    pub fn delete(&self, id: TaskId) {
        self.run(move |c| {
            if let Err(e) = c.execute("DELETE FROM tasks WHERE task_id = ?1", [id]) {
                log::error!("store: deleting task {id} failed: {e}");
            }
        });
    }

    /// Runs arbitrary work on the writer thread, after everything queued before it.
    pub fn run(&self, job: impl FnOnce(&Connection) + Send + 'static) {
        self.send(Msg::Run(Box::new(job)));
    }

    /// Runs `f` on the writer thread after everything queued before it and returns its
    /// answer, so a read sees every write queued so far. `None` once the writer has stopped.
    /// Do not call this (or `flush`) holding the service's registry lock: the writer may be
    /// syncing part files or committing a large batch, and every task's reports wait on
    /// that lock meanwhile.
    fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = reply();
        self.run(move |c| tx.send(f(c)));
        rx.recv()
    }

    /// The stored row of task `id`, if there is one.
    pub fn load(&self, id: TaskId) -> Option<TaskRecord> {
        self.ask(move |c| codec::load_one(c, id))?
            .unwrap_or_else(|e| {
                log::error!("store: loading task {id} failed: {e}");
                None
            })
    }

    /// Ids of the stored tasks matching `f`, oldest first.
    pub fn search(&self, f: Filter) -> Result<Vec<TaskId>> {
        self.ask(move |c| query::search(c, &f))
            .ok_or_else(stopped)?
            .map_err(db_err)
    }

    /// Rows the retention rules let go at `now` (ms); see `query::expired`.
    pub fn expired(&self, now: u64) -> Result<Vec<Expired>> {
        self.ask(move |c| query::expired(c, now))
            .ok_or_else(stopped)?
            .map_err(db_err)
    }

    /// Blocks until everything queued so far is committed; false if that failed (or the
    /// writer has stopped).
    pub fn flush(&self) -> bool {
        let (tx, rx) = reply();
        self.send(Msg::Flush(tx));
        rx.recv().unwrap_or(false)
    }
}

fn stopped() -> Error {
    Error::new(Code::Service, "the task store has been closed")
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::new(Code::Service, format!("task store error: {e}"))
}

fn lock_data_dir(dir: &Path) -> Result<File> {
    let path = dir.join("ohreq.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Error::new(
                Code::Service,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    // SAFETY: flock on a valid, owned descriptor.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(Error::new(
            Code::Service,
            format!(
                "data dir {} is in use by another live service",
                dir.display()
            ),
        ));
    }
    Ok(f)
}

fn init_schema(c: &Connection) -> rusqlite::Result<()> {
    // One connection in one process owns the file (the data-dir lock says so): holding the
    // lock for good saves the file-lock calls of every transaction, and set before the WAL
    // is first opened, it keeps the WAL index in memory instead of a shared-memory file.
    c.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    // WAL + NORMAL: a commit survives a killed process at once and a power cut after the next
    // WAL sync. That is enough: a part file is synced before its offset is written, so a lost
    // commit only means resuming from an older (still valid) offset.
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "wal_autocheckpoint", 0)?; // the writer checkpoints (CHECKPOINT_EVERY)
    // Closing does not fold the WAL into the database (a checkpoint: two fsyncs and a
    // copy, several ms at every shutdown); the next open reads the WAL instead.
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    c.execute_batch(codec::SCHEMA)?;
    let v: Option<i64> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .ok();
    match v {
        None => {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "store schema {v} is newer than this library ({SCHEMA_VERSION})"
            )));
        }
        Some(v) => {
            if v < 2 {
                for (col, ty) in codec::V2_COLUMNS {
                    c.execute_batch(&format!("ALTER TABLE tasks ADD COLUMN {col} {ty}"))?;
                }
            }
            c.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [SCHEMA_VERSION],
            )?;
        }
    }
    Ok(())
}

/// Appends `m` to the batch. `saves` maps each task saved since the last job to its save's
/// slot, which a later save of that task empties. A job (a checkpoint's sync, a read) keeps
/// the order around it intact; a flush does not need to, as it is answered only after the
/// whole batch is committed.
fn add_to_batch(batch: &mut Vec<Option<Msg>>, saves: &mut HashMap<TaskId, usize>, m: Msg) {
    match &m {
        Msg::Save(rec) => {
            if let Some(prev) = saves.insert(rec.id, batch.len()) {
                batch[prev] = None;
            }
        }
        // A checkpoint's row is saved only if its sync works: a save before it must stay.
        Msg::Run(_) | Msg::Checkpoint(..) => saves.clear(),
        Msg::Flush(_) => {}
    }
    batch.push(Some(m));
}

/// Closes the queue and drops what waits in it if the writer thread dies of a panic, so
/// that nobody blocks forever on an answer that cannot come.
struct AbandonOnPanic<'a>(&'a WorkQueue<Msg>);

impl Drop for AbandonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!("store: the writer thread failed; later writes are dropped");
            self.0.close_and_clear();
        }
    }
}

fn writer_loop(db: &Mutex<Option<Connection>>, queue: &WorkQueue<Msg>, writes: &AtomicU64) {
    let mut checkpointed_at = 0u64;
    let _guard = AbandonOnPanic(queue);
    // Closed when the writer ends, however it ends.
    struct CloseOnExit<'a>(&'a Mutex<Option<Connection>>);
    impl Drop for CloseOnExit<'_> {
        fn drop(&mut self) {
            let Some(conn) = self.0.lock().take() else {
                return;
            };
            // Closing checkpoints nothing (see init_schema) and with synchronous=NORMAL only
            // checkpoints sync the WAL: one fsync of it makes the last commits survive a
            // power cut after a clean shutdown.
            if let Some(db) = conn.path() {
                let wal = format!("{db}-wal");
                match File::open(&wal).and_then(|f| f.sync_data()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        log::warn!("store: cannot sync {wal}: {e}")
                    }
                    _ => {}
                }
            }
        }
    }
    let _close = CloseOnExit(db);
    let mut more = Vec::new();
    while let Some(first) = queue.pop() {
        if !first.is_urgent() {
            queue.linger(LINGER, 511, Msg::is_urgent);
        }
        let mut batch = Vec::new();
        let mut saves = HashMap::new();
        add_to_batch(&mut batch, &mut saves, first);
        queue.take_more(&mut more, 511);
        for m in more.drain(..) {
            add_to_batch(&mut batch, &mut saves, m);
        }
        // Part files first, without the connection: a create must not wait for an fsync.
        // A checkpoint whose sync failed saves nothing (its offset is not durable).
        for m in &mut batch {
            let Some(Msg::Checkpoint(file, rec, synced)) = m else {
                continue;
            };
            let result = file.as_ref().map_or(Ok(()), |f| f.sync_data());
            let ok = result.is_ok();
            if let Err(e) = &result {
                log::warn!("store: sync of task {} part file failed: {e}", rec.id);
            }
            if let Some(tell) = synced.take() {
                // Service code on this thread: a panic in it must not stop the store.
                let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tell(result)));
                if told.is_err() {
                    log::error!("store: the checkpoint report of task {} panicked", rec.id);
                }
            }
            if !ok {
                *m = None;
            }
        }
        let guard = db.lock();
        let Some(conn) = guard.as_ref() else {
            return;
        };
        let mut flushes = Vec::new();
        writes.fetch_add(1 + batch.len() as u64, Ordering::Relaxed);
        let began = conn.execute_batch("BEGIN");
        if let Err(e) = &began {
            log::error!("store: cannot begin a transaction: {e}");
        }
        for m in batch.into_iter().flatten() {
            match m {
                Msg::Save(rec) | Msg::Checkpoint(_, rec, _) => {
                    // A task's row exists from its create on; a record that has none yet
                    // (a test's, say) is written whole.
                    let saved = match codec::update_status(conn, &rec) {
                        Ok(true) => Ok(()),
                        Ok(false) => codec::upsert(conn, &rec),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = saved {
                        log::error!("store: saving task {} failed: {e}", rec.id);
                    }
                }
                Msg::Run(job) => job(conn),
                Msg::Flush(tx) => flushes.push(tx),
            }
        }
        let committed = match (&began, conn.execute_batch("COMMIT")) {
            (Ok(()), Ok(())) => true,
            (_, Err(e)) => {
                log::error!("store: commit failed: {e}");
                // Leave no transaction open, or every later BEGIN would fail too.
                let _ = conn.execute_batch("ROLLBACK");
                false
            }
            (Err(_), Ok(())) => false,
        };
        drop(guard);
        // Only now: a flush promises that what came before it is committed.
        for tx in flushes {
            tx.send(committed);
        }
        let now = writes.load(Ordering::Relaxed);
        if now - checkpointed_at >= CHECKPOINT_EVERY {
            checkpointed_at = now;
            if let Some(c) = db.lock().as_ref() {
                checkpoint_wal(c);
            }
        }
    }
}

/// Copies the WAL into the database, then starts the WAL over with a write of its own:
/// the first commit after a complete checkpoint rewinds the WAL and fsyncs its new header,
/// and that must not be a create's commit (the caller waits for it, and other creates and
/// the writer wait for the connection).
fn checkpoint_wal(c: &Connection) {
    if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        log::warn!("store: WAL checkpoint failed: {e}");
        return;
    }
    // A count of checkpoints: the write must change a byte, or SQLite commits nothing.
    if let Err(e) = c.execute(
        "INSERT INTO meta (key, value) VALUES ('checkpoints', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    ) {
        log::warn!("store: cannot restart the WAL: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConfig;
    use crate::task::{Action, Progress, Reason, State, Version};

    pub fn sample(id: TaskId) -> TaskRecord {
        let mut config = TaskConfig::defaults(Action::Download, Version::Api9);
        config.url = "https://h/f".into();
        config.headers = vec![("A".into(), "b: c".into()), ("X".into(), "".into())];
        config.target = "/tmp/x".into();
        config.files = vec![crate::config::UploadFile {
            path: "/tmp/a\tb\nc.txt".into(),
            name: "file".into(),
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
        }];
        config.form = vec![("k".into(), "v\\w".into())];
        config.multipart = true;
        config.index = 0;
        TaskRecord {
            id,
            uid: 20010001,
            bundle: "com.example".into(),
            config: config.into(),
            state: State::Paused,
            reason: Reason::UserOperation,
            ctime: 1,
            mtime: 2,
            tries: 3,
            mime_type: "text/plain".into(),
            progress: Progress {
                state: State::Paused,
                index: 0,
                processed: 10,
                total_processed: 10,
                sizes: vec![100],
            },
            extras: vec![("etag".into(), "\"x\"".into())],
            etag: "\"x\"".into(),
            last_modified: String::new(),
            durable_offset: 10,
            http_status: 206,
            curl_code: 0,
            detail: String::new(),
            file_states: vec![crate::task::FileState {
                reason: Reason::ProtocolError,
                message: "Http protocol error: 500".into(),
            }],
        }
    }

    /// A checkpoint is told how its part-file sync went, and its row (its offset) is
    /// written only when the sync worked. A pipe stands for a file whose sync fails (fsync
    /// of a pipe is EINVAL).
    #[test]
    fn a_checkpoint_row_needs_its_sync() {
        let dir = crate::testing::TempDir::new("store-ckpt");
        let (owner, _) = StoreOwner::open(dir.path()).unwrap();
        let store = owner.store.clone();
        let mut rec = sample(5);
        rec.durable_offset = 10;
        store.save(&rec);
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tell = |told: &Arc<std::sync::Mutex<Vec<bool>>>| -> Synced {
            let told = told.clone();
            Box::new(move |r: std::io::Result<()>| told.lock().unwrap().push(r.is_ok()))
        };
        let mut fds = [0; 2];
        // SAFETY: a valid two-int array; the write end is owned by the File below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: a fresh descriptor nobody else owns.
        let pipe = Arc::new(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) });
        // SAFETY: the read end is ours and no longer needed.
        unsafe { libc::close(fds[0]) };
        rec.durable_offset = 20;
        store.checkpoint(Some(pipe), &rec, tell(&told));
        assert!(store.flush());
        assert_eq!(
            store.load(5).unwrap().durable_offset,
            10,
            "unsynced offset stored"
        );
        let file = Arc::new(File::create(dir.join("part")).unwrap());
        rec.durable_offset = 30;
        store.checkpoint(Some(file), &rec, tell(&told));
        assert!(store.flush());
        assert_eq!(store.load(5).unwrap().durable_offset, 30);
        assert_eq!(*told.lock().unwrap(), vec![false, true]);
        drop(owner);
    }

    /// SQLite's automatic checkpoint is off; the writer's keeps the WAL from growing without
    /// bound, also when most commits are creates on other threads.
    #[test]
    fn the_writer_keeps_the_wal_bounded() {
        let dir = crate::testing::TempDir::new("store-wal");
        let (owner, _) = StoreOwner::open(dir.path()).unwrap();
        let store = owner.store.clone();
        for id in 1..=4000 {
            store.creator().insert(&sample(id)).unwrap();
            if id % 50 == 0 {
                let mut r = sample(id);
                r.durable_offset = 99;
                store.save(&r);
                assert!(store.flush());
            }
        }
        let wal = std::fs::metadata(dir.join("ohreq.db-wal")).unwrap().len();
        eprintln!("WAL after 4000 creates: {} KiB", wal / 1024);
        assert!(wal < 12 << 20, "WAL grew to {} KiB", wal / 1024);
        assert_eq!(store.load(4000).unwrap().durable_offset, 99);
        drop(owner);
    }

    /// A save after the create rewrites only the state and progress columns, and what it
    /// writes reads back whole; a record without a row is written whole.
    #[test]
    fn saves_update_the_status_of_an_existing_row() {
        let dir = crate::testing::TempDir::new("store-status");
        let (owner, _) = StoreOwner::open(dir.path()).unwrap();
        let store = owner.store.clone();
        store.creator().insert(&sample(1)).unwrap();
        let mut r = sample(1);
        r.state = State::Failed;
        r.progress.state = State::Failed;
        r.reason = Reason::ProtocolError;
        r.mtime = 77;
        r.tries = 1;
        r.mime_type = "image/png".into();
        r.progress.processed = 60;
        r.progress.total_processed = 60;
        r.progress.sizes = vec![100, 5];
        r.extras = vec![("server".into(), "nginx".into())];
        r.etag = "\"y\"".into();
        r.last_modified = "Mon, 07 Dec 2026 01:00:00 GMT".into();
        r.durable_offset = 60;
        r.http_status = 500;
        r.curl_code = 22;
        r.detail = "HTTP 500".into();
        r.file_states.clear();
        let expected = r.clone();
        // The config is not rewritten (it never changes after the create).
        let mut other = (*r.config).clone();
        other.url = "https://elsewhere/f".into();
        r.config = other.into();
        store.save(&r);
        store.save(&sample(2));
        assert!(store.flush());
        assert_eq!(store.load(1).unwrap(), expected);
        assert_eq!(store.load(2).unwrap(), sample(2));
        drop(owner);
    }

    /// The writer's checkpoint starts the WAL over itself (a new header: checkpoint count and
    /// salts), so the fsync that goes with it is never a create's.
    #[test]
    fn a_checkpoint_restarts_the_wal_itself() {
        let dir = crate::testing::TempDir::new("store-restart");
        let (owner, _) = StoreOwner::open(dir.path()).unwrap();
        let store = owner.store.clone();
        for id in 1..=20 {
            store.creator().insert(&sample(id)).unwrap();
        }
        let header = || std::fs::read(dir.join("ohreq.db-wal")).unwrap()[12..24].to_vec();
        let before = header();
        checkpoint_wal(store.conn.lock().as_ref().unwrap());
        assert_ne!(
            header(),
            before,
            "the WAL was left for the next commit to restart"
        );
        let restarted = header();
        store.creator().insert(&sample(21)).unwrap();
        assert_eq!(header(), restarted);
        drop(owner);
        let (_owner, tasks) = StoreOwner::open(dir.path()).unwrap();
        assert_eq!(tasks.len(), 21);
    }

    #[test]
    fn a_version_1_store_is_migrated() {
        let dir = std::env::temp_dir().join(format!("ohreq-store-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            let c = Connection::open(dir.join("ohreq.db")).unwrap();
            let v1: String = codec::SCHEMA
                .lines()
                .filter(|l| {
                    !codec::V2_COLUMNS
                        .iter()
                        .any(|(col, _)| l.trim_start().starts_with(col))
                })
                .collect::<Vec<_>>()
                .join("\n")
                .replace("detail TEXT NOT NULL,", "detail TEXT NOT NULL");
            c.execute_batch(&v1).unwrap();
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', 1)",
                [],
            )
            .unwrap();
        }
        let (owner, tasks) = StoreOwner::open(&dir).unwrap();
        assert!(tasks.is_empty());
        owner.store.save(&sample(9));
        drop(owner);
        let (_owner, tasks) = StoreOwner::open(&dir).unwrap();
        assert_eq!(tasks, vec![sample(9)]);
    }

    #[test]
    fn tasks_survive_a_reopen_and_the_lock_is_exclusive() {
        let dir = std::env::temp_dir().join(format!("ohreq-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (owner, tasks) = StoreOwner::open(&dir).unwrap();
        assert!(tasks.is_empty());
        assert_eq!(
            StoreOwner::open(&dir).err().map(|e| e.code),
            Some(Code::Service)
        );
        owner.store.save(&sample(7));
        owner.store.save(&sample(8));
        owner.store.delete(8);
        drop(owner);
        let (_owner, tasks) = StoreOwner::open(&dir).unwrap();
        assert_eq!(tasks, vec![sample(7)]);
    }
}
