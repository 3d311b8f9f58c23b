//! The service: the registry of tasks, ownership and permission checks, the public
//! operations, and the bridge that turns engine reports into state, store rows and events.

mod bridge;
mod client;
mod finalize;
mod index;
mod legacy;
mod restore;
mod retention;

pub use client::Client;
pub(crate) use client::{PERMISSION_DOWNLOAD_SESSION_MANAGER, PERMISSION_INTERNET};
pub use legacy::legacy_info;

use crate::engine::{Engine, FilePart, TransferSpec, UploadPlan, UploadRequest};
use crate::error::{Code, Error, Result};
use crate::events::{DispatchMode, Event, EventHub, EventKind, Reply, TaskState};
use crate::scheduler::{self, NetworkState};
use crate::store::{Filter, Store, StoreOwner};
use crate::task::{Action, Mode, Reason, State, TaskId, TaskRecord, now_ms};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Per-uid live-task limits (reference B.1): the 1002nd background / 2002nd foreground
/// concurrent task of one app is refused with 21900004.
const MAX_BACKGROUND_TASKS: u32 = 1001;
const MAX_FOREGROUND_TASKS: u32 = 2001;

#[derive(Clone, Debug)]
pub struct ServiceOptions {
    pub data_dir: PathBuf,
    pub dispatch: DispatchMode,
    pub max_running: usize,
    pub user_agent: String,
    /// Trust store used when a client brings no CA of its own; `None` = the system default.
    pub ca_bundle: Option<PathBuf>,
    /// Unfinished tasks of the store are queued again at start (else they come back PAUSED).
    pub restart_unfinished: bool,
}

impl ServiceOptions {
    pub fn new(data_dir: PathBuf) -> ServiceOptions {
        ServiceOptions {
            data_dir,
            dispatch: DispatchMode::Thread,
            max_running: scheduler::DEFAULT_MAX_RUNNING,
            user_agent: format!("ohreq/{}", env!("CARGO_PKG_VERSION")),
            ca_bundle: None,
            restart_unfinished: true,
        }
    }
}

/// Finished tasks that stay in memory after they end, for the queries that usually follow;
/// older ones live only in the store and are read back when asked for.
const WARM_FINISHED: usize = 256;

/// How many evictions `Registry::recent_evictions` remembers.
const RECENT_EVICTIONS: usize = 4096;

/// A task in memory: its record plus what only a live service knows.
struct Entry {
    rec: TaskRecord,
    /// The current run; engine reports for other runs are stale.
    run: u64,
    /// The engine holds a run of this task (its `finished` has not arrived): the entry must
    /// stay in memory to take the reports.
    in_engine: bool,
    /// The run's body is complete and with a publisher: only the local publish remains, so
    /// a network change must not send the task back to WAITING.
    publishing: bool,
    /// A sync of the part file failed: nothing in it is to be resumed from or checkpointed
    /// again. The next run starts the file over.
    part_bad: bool,
    /// Runs begun in this process. A task read from the store counts as run once: a part
    /// file of an earlier run may be on disk.
    launches: u32,
}

impl Entry {
    fn new(rec: TaskRecord) -> Entry {
        Entry {
            rec,
            run: 0,
            in_engine: false,
            publishing: false,
            part_bad: false,
            launches: 1,
        }
    }
}

struct Registry {
    /// Every live task, plus the most recently finished ones (listed in `finished`).
    tasks: HashMap<TaskId, Entry>,
    /// Finished tasks still in `tasks`, oldest first.
    finished: VecDeque<TaskId>,
    /// Every task id in the store, so that a new task never reuses a stored one.
    ids: HashSet<TaskId>,
    /// Ids whose rows the last retention pass deleted; they stay in `ids` until the next.
    deleted: Vec<TaskId>,
    /// Tasks being created: booked (id, target, live count) while their rows are written
    /// without the lock, not yet in `tasks`, and not to be read back from the store.
    creating: HashSet<TaskId>,
    /// Counts evictions from `tasks`; the latest ones, numbered, are in `recent_evictions`.
    /// A row read from the store without the lock is current unless its task was evicted
    /// meanwhile.
    evictions: u64,
    recent_evictions: VecDeque<(u64, TaskId)>,
    /// When the last retention pass began (Unix ms; 0 = never).
    last_pass: u64,
    net: NetworkState,
    /// Transfers handed to the engine whose `finished` has not arrived.
    in_engine: usize,
    next_run: u64,
    live: HashMap<u64, (u32, u32)>,
    index: index::TaskIndex,
}

/// The registry's lock: std's mutex, which spins briefly and then sleeps. parking_lot's
/// yields the CPU while it spins, and with five threads taking this lock on two cores those
/// yields were thousands of extra context switches. A panic while it is held leaves the
/// registry as the panicking call left it (as parking_lot would).
struct RegistryLock {
    mutex: std::sync::Mutex<Registry>,
    /// Signalled when a create ends: its task adopted or its booking given back.
    create_ended: std::sync::Condvar,
}

type RegistryGuard<'a> = std::sync::MutexGuard<'a, Registry>;

/// How long a call waits for a create in flight (one row commit, normally).
const CREATE_WAIT: Duration = Duration::from_secs(5);

impl RegistryLock {
    fn new(reg: Registry) -> RegistryLock {
        RegistryLock {
            mutex: std::sync::Mutex::new(reg),
            create_ended: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> RegistryGuard<'_> {
        self.mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits, with the lock released meanwhile, until none of `ids` is being created (or
    /// `CREATE_WAIT` has passed).
    fn wait_for_creates<'a>(
        &'a self,
        mut reg: RegistryGuard<'a>,
        ids: &[TaskId],
    ) -> RegistryGuard<'a> {
        let deadline = std::time::Instant::now() + CREATE_WAIT;
        while ids.iter().any(|id| reg.creating.contains(id)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            reg = self
                .create_ended
                .wait_timeout(reg, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        reg
    }
}

impl Registry {
    /// Puts a task in memory (new, restored, or read back from the store).
    fn add(&mut self, rec: TaskRecord) {
        self.index.update(&rec, None);
        self.tasks.insert(rec.id, Entry::new(rec));
    }

    /// Counts a task of app `uid` in or out of its live tasks (the per-app limit).
    fn count_live(&mut self, uid: u64, mode: Mode, add: bool) {
        let (bg, fg) = self.live.entry(uid).or_default();
        let c = if mode == Mode::Background { bg } else { fg };
        *c = if add { *c + 1 } else { c.saturating_sub(1) };
    }

    /// Takes a task out of memory.
    fn take(&mut self, id: TaskId) -> Option<Entry> {
        let e = self.tasks.remove(&id)?;
        self.index.remove(&e.rec);
        Some(e)
    }

    /// Whether task `id` may have left memory after eviction number `seen` (also when the
    /// record of evictions no longer reaches back that far).
    fn evicted_since(&self, seen: u64, id: TaskId) -> bool {
        if self.evictions == seen {
            return false;
        }
        match self.recent_evictions.front() {
            Some(&(first, _)) if first <= seen + 1 => self
                .recent_evictions
                .iter()
                .any(|&(n, e)| n > seen && e == id),
            _ => true,
        }
    }
}

pub struct Inner {
    me: Weak<Inner>,
    opts: ServiceOptions,
    reg: RegistryLock,
    pub hub: Arc<EventHub>,
    store: Store,
    engine: Mutex<Option<Engine>>,
    publisher: Mutex<Option<finalize::Publisher>>,
    store_owner: Mutex<Option<StoreOwner>>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    /// The thread of the latest retention pass.
    retention: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    next_handle: AtomicU64,
}

/// The owning handle of a service; dropping it shuts the service down.
pub struct Service {
    pub inner: Arc<Inner>,
}

impl Service {
    /// Opens the store in the data dir, restores its tasks, starts the engine (and the
    /// dispatcher thread in thread mode), and re-queues unfinished transfers.
    pub fn new(opts: ServiceOptions) -> Result<Service> {
        let (owner, tasks) = StoreOwner::open(&opts.data_dir)?;
        let hub = Arc::new(EventHub::new(opts.dispatch).map_err(|e| {
            Error::new(Code::Service, format!("cannot create the event queue: {e}"))
        })?);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            reg: RegistryLock::new(Registry {
                tasks: HashMap::new(),
                finished: VecDeque::new(),
                ids: HashSet::new(),
                deleted: Vec::new(),
                creating: HashSet::new(),
                evictions: 0,
                recent_evictions: VecDeque::new(),
                last_pass: 0,
                net: NetworkState::default(),
                in_engine: 0,
                next_run: 1,
                live: HashMap::new(),
                index: index::TaskIndex::default(),
            }),
            hub: hub.clone(),
            store: owner.store.clone(),
            engine: Mutex::new(None),
            publisher: Mutex::new(None),
            store_owner: Mutex::new(Some(owner)),
            dispatcher: Mutex::new(None),
            retention: Mutex::new(None),
            closed: AtomicBool::new(false),
            next_handle: AtomicU64::new(1),
            opts,
        });
        let bridge = Arc::new(bridge::Bridge {
            inner: Arc::downgrade(&inner),
        });
        let engine = Engine::start(bridge).map_err(|e| {
            Error::new(
                Code::Service,
                format!("cannot start the engine thread: {e}"),
            )
        })?;
        *inner.engine.lock() = Some(engine);
        let publisher = finalize::Publisher::start().map_err(|e| {
            Error::new(
                Code::Service,
                format!("cannot start the publisher threads: {e}"),
            )
        })?;
        *inner.publisher.lock() = Some(publisher);
        if inner.opts.dispatch == DispatchMode::Thread {
            let h = hub.clone();
            let t = std::thread::Builder::new()
                .name("ohreq-events".into())
                .spawn(move || h.run_dispatcher())
                .map_err(|e| {
                    Error::new(Code::Service, format!("cannot start the dispatcher: {e}"))
                })?;
            *inner.dispatcher.lock() = Some(t);
        }
        inner.restore(tasks);
        inner.schedule();
        Ok(Service { inner })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

impl Inner {
    /// Stops transfers (their progress checkpointed, so they resume at the next start),
    /// flushes the store, and stops the dispatcher after it delivered what was queued.
    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Taken first and joined after the slot's lock is released: a `schedule` holding the
        // registry may be waiting for that lock, and the pass may be waiting for the registry.
        let pass = self.retention.lock().take();
        if let Some(t) = pass {
            let _ = t.join();
        }
        let engine = self.engine.lock().take();
        drop(engine); // joins the engine thread; its Cancelled reports checkpoint
        let publisher = self.publisher.lock().take();
        drop(publisher); // publishes what finished, then joins
        if !self.store.flush() {
            log::error!("the last writes before shutdown could not be committed");
        }
        self.hub.close();
        if let Some(t) = self.dispatcher.lock().take() {
            let _ = t.join();
        }
        drop(self.store_owner.lock().take());
    }

    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(Code::Service, "the service has been shut down"));
        }
        Ok(())
    }

    pub fn new_handle_id(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    pub fn options(&self) -> &ServiceOptions {
        &self.opts
    }

    pub fn set_network(&self, net: NetworkState) {
        {
            let mut reg = self.reg.lock();
            if reg.net == net {
                return;
            }
            reg.net = net;
            // Running tasks the new network no longer allows stop (reference C.4): downloads
            // go back to WAITING and resume with Range when it matches again; legacy uploads
            // fail.
            let lost: Vec<(TaskId, Reason, Action)> = reg
                .tasks
                .values()
                .filter(|e| e.rec.state == State::Running && !e.publishing)
                .filter_map(|e| {
                    let reason = scheduler::network_allows(&e.rec.config, &net).err()?;
                    Some((e.rec.id, reason, e.rec.config.action))
                })
                .collect();
            for (id, reason, action) in lost {
                match action {
                    Action::Download => self.set_state(&mut reg, id, State::Waiting, reason),
                    Action::Upload => self.fail(&mut reg, id, reason),
                }
                self.engine_cancel(id);
            }
            // Waiting tasks say now whether the network is what they wait for; schedule()
            // only looks at those it can start.
            let changed: Vec<(TaskId, Reason)> = reg
                .index
                .waiting()
                .filter_map(|id| {
                    let rec = &reg.tasks[&id].rec;
                    let r = match scheduler::network_allows(&rec.config, &net) {
                        Err(r) => r,
                        Ok(()) if rec.reason.is_network() => Reason::RunningTaskMeetLimits,
                        Ok(()) => return None,
                    };
                    (r != rec.reason).then_some((id, r))
                })
                .collect();
            for (id, reason) in changed {
                self.set_state(&mut reg, id, State::Waiting, reason);
            }
        }
        self.schedule();
    }

    /// Locks the registry with task `id` in memory (read back from the store if it had left),
    /// when the client may operate on it: its own task, or any with the session-manager
    /// permission. Others' tasks are "not found" (21900006), as in the reference.
    fn lock_task(&self, client: &Client, id: TaskId) -> Result<RegistryGuard<'_>> {
        let mut reg = self.reg.lock();
        // A task being created is there once its create ends (a search may already have
        // found its row).
        if reg.creating.contains(&id) {
            reg = self.reg.wait_for_creates(reg, &[id]);
        }
        let mut tries = 0;
        while !reg.tasks.contains_key(&id) && Self::stored_not_booked(&reg, id) {
            // The store is read without the registry lock (it may be busy syncing a part
            // file, and the engine must not wait for that). If this very task was read back,
            // changed and evicted by another caller meanwhile, the row read may be older
            // than what memory had: read it again.
            tries += 1;
            if tries > 8 {
                return Err(Error::new(
                    Code::Service,
                    format!("task {id} keeps changing while it is read; try again"),
                ));
            }
            let seen = reg.evictions;
            drop(reg);
            let loaded = self.store.load(id);
            reg = self.reg.lock();
            if reg.evicted_since(seen, id) {
                continue;
            }
            if let Some(rec) = loaded
                && !reg.tasks.contains_key(&id)
                && Self::stored_not_booked(&reg, id)
            {
                reg.add(rec);
                reg.finished.push_back(id);
                Self::evict_finished(&mut reg, Some(id));
            }
            break;
        }
        match reg.tasks.get(&id) {
            Some(e)
                if e.rec.uid == client.uid || client.has(PERMISSION_DOWNLOAD_SESSION_MANAGER) =>
            {
                Ok(reg)
            }
            _ => Err(Error::new(
                Code::TaskNotFound,
                format!("task {id} not found"),
            )),
        }
    }

    /// Whether task `id` has a row that may be read back into memory: not one being created,
    /// nor one whose deletion the last retention pass queued.
    fn stored_not_booked(reg: &Registry, id: TaskId) -> bool {
        reg.ids.contains(&id) && !reg.creating.contains(&id) && !reg.deleted.contains(&id)
    }

    /// A copy of a task's record, if the client may see it.
    pub fn record(&self, client: &Client, id: TaskId) -> Result<TaskRecord> {
        self.check_open()?;
        let reg = self.lock_task(client, id)?;
        Ok(reg.tasks[&id].rec.clone())
    }

    /// Ids of the client's tasks created in `[after, before]` (ms), optionally filtered.
    pub fn search(
        &self,
        client: &Client,
        after: u64,
        before: u64,
        state: Option<State>,
        action: Option<Action>,
        mode: Option<Mode>,
    ) -> Result<Vec<TaskId>> {
        self.check_open()?;
        // Every state change is saved, and the store answers after the saves queued before
        // the question: it knows every task, in memory or not, as it is now.
        self.store.search(Filter {
            uid: client.uid,
            after,
            before,
            state,
            action,
            mode,
        })
    }

    /// 21900004 when the app already has as many live tasks of this mode as allowed.
    fn check_live_limit(&self, reg: &Registry, uid: u64, mode: Mode) -> Result<()> {
        let (bg, fg) = reg.live.get(&uid).copied().unwrap_or_default();
        let (count, limit) = match mode {
            Mode::Background => (bg, MAX_BACKGROUND_TASKS),
            Mode::Foreground => (fg, MAX_FOREGROUND_TASKS),
        };
        if count >= limit {
            return Err(Error::new(
                Code::TaskQueueFull,
                format!("app {uid} already has {limit} live tasks"),
            ));
        }
        Ok(())
    }

    /// Books a task being created, before its row is written: its id, its target (for the
    /// conflict check of other creates) and its place under its app's live-task limit,
    /// which the caller has checked under the same lock. `adopt` or `unreserve` follows.
    fn reserve(&self, reg: &mut Registry, rec: &TaskRecord) {
        reg.count_live(rec.uid, rec.config.mode, true);
        reg.ids.insert(rec.id);
        reg.creating.insert(rec.id);
        reg.index.update(rec, None);
    }

    /// Undoes `reserve` for a task whose row could not be written.
    fn unreserve(&self, reg: &mut Registry, rec: &TaskRecord) {
        reg.count_live(rec.uid, rec.config.mode, false);
        reg.ids.remove(&rec.id);
        reg.creating.remove(&rec.id);
        reg.index.remove(rec);
        self.reg.create_ended.notify_all();
    }

    /// Puts a reserved task, now stored, in the registry.
    fn adopt(&self, reg: &mut Registry, rec: TaskRecord) {
        let id = rec.id;
        reg.creating.remove(&id);
        reg.add(rec);
        if let Some(e) = reg.tasks.get_mut(&id) {
            e.launches = 0; // new: no part file of it exists yet
        }
        self.reg.create_ended.notify_all();
    }

    /// A fresh task id: u32, unused (reference C.13).
    fn new_task_id(reg: &Registry) -> TaskId {
        let mut id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        while id == 0 || reg.ids.contains(&id) {
            id = id.wrapping_mul(2654435761).wrapping_add(1);
        }
        id
    }

    /// Changes a task's state and reason, stamps mtime, saves, and releases its live-task
    /// count when the task leaves the live set.
    fn set_state(&self, reg: &mut Registry, id: TaskId, state: State, reason: Reason) {
        let Some(e) = reg.tasks.get_mut(&id) else {
            return;
        };
        let old = e.rec.state;
        let was_live = !old.is_final();
        // A task that waits on the network says so from the start, also while every slot
        // is taken (schedule() only looks as far as it can start tasks).
        let reason = match state {
            State::Waiting => scheduler::network_allows(&e.rec.config, &reg.net)
                .err()
                .unwrap_or(reason),
            _ => reason,
        };
        e.rec.state = state;
        e.rec.progress.state = state;
        e.rec.reason = reason;
        e.rec.mtime = now_ms();
        self.store.save(&e.rec);
        reg.index.update(&e.rec, Some(old));
        let (uid, mode) = (e.rec.uid, e.rec.config.mode);
        if was_live && state.is_final() {
            reg.finished.push_back(id);
            reg.count_live(uid, mode, false);
        }
    }

    /// Lets the oldest finished tasks beyond `WARM_FINISHED` leave memory (their rows are
    /// saved), except `keep`. Not done inside `set_state`, whose callers still use the entry
    /// afterwards.
    fn evict_finished(reg: &mut Registry, keep: Option<TaskId>) {
        let mut budget = reg.finished.len();
        while reg.finished.len() > WARM_FINISHED && budget > 0 {
            budget -= 1;
            let Some(id) = reg.finished.pop_front() else {
                break;
            };
            match reg.tasks.get(&id) {
                // A removed task whose run the engine has not let go of yet: later.
                Some(e) if e.in_engine || keep == Some(id) => reg.finished.push_back(id),
                Some(e) if e.rec.state.is_final() => {
                    reg.take(id);
                    reg.evictions += 1;
                    let n = reg.evictions;
                    reg.recent_evictions.push_back((n, id));
                    if reg.recent_evictions.len() > RECENT_EVICTIONS {
                        reg.recent_evictions.pop_front();
                    }
                }
                _ => {} // started again, or already gone
            }
        }
    }

    fn emit(&self, rec: &TaskRecord, kind: EventKind, code: i32) {
        self.emit_with(rec, kind, code, None, None);
    }

    fn emit_with(
        &self,
        rec: &TaskRecord,
        kind: EventKind,
        code: i32,
        reply: Option<Arc<Reply>>,
        states: Option<Arc<Vec<TaskState>>>,
    ) {
        self.hub.push(Event {
            kind,
            task_id: rec.id,
            progress: rec.progress.clone(),
            code,
            reply,
            states,
            seq: 0,
        });
    }

    fn engine_cancel(&self, id: TaskId) {
        if let Some(e) = self.engine.lock().as_ref() {
            e.cancel(id);
        }
    }

    /// `start`: INITIALIZED (and, for downloads, FAILED/STOPPED) → WAITING, then scheduled.
    pub fn start(&self, client: &Client, id: TaskId) -> Result<()> {
        self.check_open()?;
        self.need_internet(client)?;
        {
            let mut reg = self.lock_task(client, id)?;
            let e = reg.tasks.get_mut(&id).expect("checked by lock_task");
            let ok = match e.rec.state {
                State::Initialized => true,
                State::Failed | State::Stopped => e.rec.config.action == Action::Download,
                _ => false,
            };
            if !ok {
                return Err(state_error("start", e.rec.state));
            }
            let was_final = e.rec.state.is_final();
            e.rec.tries = 0;
            let (uid, mode) = (e.rec.uid, e.rec.config.mode);
            if was_final {
                reg.count_live(uid, mode, true);
            }
            self.set_state(&mut reg, id, State::Waiting, Reason::RunningTaskMeetLimits);
        }
        self.schedule();
        Ok(())
    }

    /// `pause` (legacy `suspend`): WAITING/RUNNING/RETRYING → PAUSED, keeping the part file.
    pub fn pause(&self, client: &Client, id: TaskId) -> Result<()> {
        self.check_open()?;
        let mut reg = self.lock_task(client, id)?;
        let e = &reg.tasks[&id];
        if !e.rec.state.is_active() {
            return Err(state_error("pause", e.rec.state));
        }
        let running = e.rec.state != State::Waiting;
        self.set_state(&mut reg, id, State::Paused, Reason::UserOperation);
        let rec = &reg.tasks[&id].rec;
        self.emit(rec, EventKind::Pause, 0);
        if running {
            self.engine_cancel(id);
        }
        Ok(())
    }

    /// `resume` (legacy `restore`): PAUSED → WAITING, then scheduled (continues with Range).
    pub fn resume(&self, client: &Client, id: TaskId) -> Result<()> {
        self.check_open()?;
        self.need_internet(client)?;
        {
            let mut reg = self.lock_task(client, id)?;
            let e = &reg.tasks[&id];
            if e.rec.state != State::Paused {
                return Err(state_error("resume", e.rec.state));
            }
            self.set_state(&mut reg, id, State::Waiting, Reason::RunningTaskMeetLimits);
            let rec = &reg.tasks[&id].rec;
            if rec.config.version == crate::task::Version::Api10 {
                self.emit(rec, EventKind::Resume, 0);
            }
        }
        self.schedule();
        Ok(())
    }

    /// `remove` (legacy `delete`): any state → REMOVED; the transfer is aborted and the part
    /// file deleted. A second remove is "not found".
    pub fn remove(&self, client: &Client, id: TaskId) -> Result<()> {
        self.check_open()?;
        let mut reg = self.lock_task(client, id)?;
        let e = &reg.tasks[&id];
        if e.rec.state == State::Removed {
            return Err(Error::new(
                Code::TaskNotFound,
                format!("task {id} is already removed"),
            ));
        }
        let running = matches!(e.rec.state, State::Running | State::Retrying);
        let part = (e.rec.config.action == Action::Download).then(|| e.rec.part_path());
        self.set_state(&mut reg, id, State::Removed, Reason::UserOperation);
        // As for pause: `remove` now, the run's final progress when the engine lets go.
        self.emit(&reg.tasks[&id].rec, EventKind::Remove, 0);
        if running {
            self.engine_cancel(id); // the part file goes when the engine lets go of it
        } else if let Some(p) = part {
            remove_part(&p);
        }
        Ok(())
    }

    fn need_internet(&self, client: &Client) -> Result<()> {
        if client.has(PERMISSION_INTERNET) {
            Ok(())
        } else {
            Err(Error::new(
                Code::Permission,
                format!("{PERMISSION_INTERNET} is required"),
            ))
        }
    }

    /// Starts waiting tasks while slots are free and the network allows them.
    pub fn schedule(&self) {
        let mut reg = self.reg.lock();
        self.schedule_locked(&mut reg);
    }

    /// `schedule` for a caller that holds the registry already: one lock round instead of
    /// two for the calls that change a task and then let others start (create, a transfer's
    /// end, a publish), each of which happens once per task.
    fn schedule_locked(&self, reg: &mut Registry) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let net = reg.net;
        let free = self.opts.max_running.saturating_sub(reg.in_engine);
        let mut start = Vec::new();
        let mut blocked = Vec::new();
        for id in reg.index.waiting() {
            if start.len() >= free {
                break;
            }
            let e = &reg.tasks[&id];
            match scheduler::network_allows(&e.rec.config, &net) {
                Ok(()) => start.push(id),
                Err(r) if r != e.rec.reason => blocked.push((id, r)),
                Err(_) => {}
            }
        }
        for (id, reason) in blocked {
            self.set_state(reg, id, State::Waiting, reason);
        }
        for id in start {
            self.launch(reg, id);
        }
        Self::evict_finished(reg, None);
        self.maybe_start_retention(reg);
    }

    /// WAITING → RUNNING: builds the transfer and hands it to the engine.
    fn launch(&self, reg: &mut Registry, id: TaskId) {
        let run = reg.next_run;
        reg.next_run += 1;
        let Some(e) = reg.tasks.get_mut(&id) else {
            return;
        };
        e.run = run;
        e.launches += 1;
        e.in_engine = true;
        e.part_bad = false; // its offset was reset: this run starts the part file over
        let (part, resume_from) = if e.rec.config.action == Action::Download {
            let part = e.rec.part_path();
            // Resume from what is both recorded and still on disk (nothing recorded: no
            // need to look).
            let resume_from = match e.rec.durable_offset {
                0 => 0,
                recorded => std::fs::metadata(&part).map_or(0, |m| m.len().min(recorded)),
            };
            (part, resume_from)
        } else {
            (std::path::PathBuf::new(), 0)
        };
        let cfg = &e.rec.config;
        let upload = (cfg.action == Action::Upload).then(|| upload_plan(&e.rec));
        let mut headers = cfg.headers.clone();
        if cfg.multipart {
            // The multipart body brings its own Content-Type (with the boundary).
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        }
        let spec = TransferSpec {
            id,
            run,
            url: cfg.url.clone(),
            method: cfg.method.clone(),
            headers,
            body: cfg.data.clone(),
            part,
            resume_from,
            etag: e.rec.etag.clone(),
            last_modified: e.rec.last_modified.clone(),
            begins: cfg.begins,
            ends: cfg.ends,
            redirect: cfg.redirect,
            precise: cfg.precise,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_s),
            total_timeout: Duration::from_secs(cfg.total_timeout_s),
            min_speed: cfg.min_speed,
            min_speed_duration: Duration::from_secs(cfg.min_speed_duration_s),
            max_speed: cfg.max_speed,
            ca_file: if cfg.ca_file.is_empty() {
                self.opts.ca_bundle.clone()
            } else {
                Some(cfg.ca_file.clone().into())
            },
            user_agent: self.opts.user_agent.clone(),
            upload,
        };
        if cfg.action == Action::Download {
            e.rec.progress.processed = resume_from;
            e.rec.durable_offset = resume_from;
        }
        self.set_state(reg, id, State::Running, Reason::Ok);
        reg.in_engine += 1;
        match self.engine.lock().as_ref() {
            Some(engine) => engine.start_transfer(spec),
            None => reg.in_engine -= 1,
        }
    }
}

/// What an upload sends this run: from the first file (at or after `index`) that has not
/// been answered with success yet. POST with multipart sends one form with every remaining
/// file; otherwise each file is one request with its bytes as the body (reference C.8).
fn upload_plan(rec: &TaskRecord) -> UploadPlan {
    let cfg = &rec.config;
    let ok = |i: usize| {
        rec.file_states
            .get(i)
            .is_some_and(|f| f.reason == Reason::Ok)
    };
    let first = (cfg.index as usize..cfg.files.len())
        .find(|&i| !ok(i))
        .unwrap_or(cfg.files.len());
    let parts: Vec<FilePart> = (first..cfg.files.len())
        .map(|i| {
            let f = &cfg.files[i];
            let len = std::fs::metadata(&f.path).map_or(0, |m| m.len());
            let (offset, len) = crate::task::upload_span(cfg, i, len);
            let content_type = if cfg.multipart {
                f.content_type.clone()
            } else {
                "application/octet-stream".into()
            };
            FilePart {
                index: i,
                path: f.path.clone(),
                name: f.name.clone(),
                filename: f.filename.clone(),
                content_type,
                offset,
                len,
            }
        })
        .collect();
    let requests = if parts.is_empty() {
        Vec::new()
    } else if cfg.multipart {
        vec![UploadRequest::Multipart {
            fields: cfg.form.clone(),
            files: parts,
        }]
    } else {
        parts.into_iter().map(UploadRequest::Raw).collect()
    };
    UploadPlan { requests, first: 0 }
}

/// Deletes a download's part file; a missing one is fine. Called with the registry locked,
/// at once rather than queued: a task created on the same target right after must not lose
/// its own part file to a deletion that ran late. (An unlink does not wait for the disk.)
fn remove_part(p: &std::path::Path) {
    remove_file_logged(p, "part file");
}

/// Deletes `p` (the `what` of a task); a missing one is fine, any other failure is logged.
fn remove_file_logged(p: &std::path::Path, what: &str) {
    if let Err(e) = std::fs::remove_file(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("cannot delete {what} {}: {e}", p.display());
    }
}

fn state_error(op: &str, state: State) -> Error {
    Error::new(
        Code::TaskState,
        format!("cannot {op} a task in state {state:?}"),
    )
}

pub(crate) type WeakInner = Weak<Inner>;
