//! Subscriptions and the event queue. Events are delivered in order by one dispatcher thread
//! or, in poll mode, inside `dispatch` on the embedder's thread — never under a library lock
//! that an API call could need.

mod eventfd;

use crate::engine::ResponseHead;
use crate::task::{Progress, TaskId};
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use eventfd::EventFd;

/// What happened. Legacy (API 6-9) and agent (API 10+) kinds share one numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventKind {
    Progress = 0,
    Complete = 1,
    Pause = 2,
    Remove = 3,
    Fail = 4,
    HeaderReceive = 5,
    Completed = 6,
    Failed = 7,
    Resume = 8,
    Response = 9,
    Wait = 10,
    FaultOccur = 11,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<EventKind> {
        use EventKind::*;
        [
            Progress,
            Complete,
            Pause,
            Remove,
            Fail,
            HeaderReceive,
            Completed,
            Failed,
            Resume,
            Response,
            Wait,
            FaultOccur,
        ]
        .get(v as usize)
        .copied()
    }

    /// The kinds a legacy task emits (reference A.2 `supportEventsV9_`).
    pub fn is_legacy(self) -> bool {
        (self as u32) <= EventKind::HeaderReceive as u32
    }
}

/// An event as a callback sees it.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub task_id: TaskId,
    pub progress: Progress,
    /// fail: ERROR_*; wait: WaitingReason; faultOccur: Faults; else 0.
    pub code: i32,
    /// headerReceive / response: the HTTP response.
    pub reply: Option<Arc<Reply>>,
    /// Legacy upload complete / fail: one state per file.
    pub states: Option<Arc<Vec<TaskState>>>,
    /// Order of queueing, set by the hub (the queue is kept in this order).
    pub seq: u64,
}

/// An HTTP response as events carry it; texts are NUL-terminated for the C getters.
#[derive(Debug)]
pub struct Reply {
    pub status: u32,
    pub version: CString,
    pub reason: CString,
    pub headers: Vec<(CString, CString)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(head: &ResponseHead, body: &[u8]) -> Reply {
        Reply {
            status: head.status,
            version: c_text(&head.version),
            reason: c_text(&head.reason),
            headers: head
                .headers
                .iter()
                .map(|(k, v)| (c_text(k), c_text(v)))
                .collect(),
            body: body.to_vec(),
        }
    }
}

/// A legacy `TaskState`: a file's path, its reason code (0 = success) and message.
#[derive(Debug)]
pub struct TaskState {
    pub path: CString,
    pub code: i32,
    pub message: CString,
}

impl TaskState {
    pub fn new(path: &str, code: i32, message: &str) -> TaskState {
        TaskState {
            path: c_text(path),
            code,
            message: c_text(message),
        }
    }
}

/// Text for C: interior NULs (impossible in headers and paths we accept) are dropped.
fn c_text(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// A registered callback. `key` identifies it for de-duplication and `off`; dropping the
/// listener releases the embedder's userdata.
pub trait Listener: Send + Sync {
    fn call(&self, ev: &Event);
    fn key(&self) -> (usize, usize);
}

struct Sub {
    handle: u64,
    kind: EventKind,
    listener: Box<dyn Listener>,
    removed: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchMode {
    Thread,
    Poll,
}

thread_local! {
    /// Set while this thread is delivering events (for re-entrancy rules).
    static DELIVERING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is inside a callback of some service.
pub fn in_callback() -> bool {
    DELIVERING.with(|d| d.get())
}

/// The listeners of one task, and what it said while nobody of a kind listened.
#[derive(Default)]
struct TaskSubs {
    list: Vec<Arc<Sub>>,
    /// The last event of each kind that found no listener of its kind while a handle on the
    /// task was open. The first listener of that kind gets it: a task that fails or ends
    /// between its creation and the embedder's `on` (the dispatcher thread runs meanwhile)
    /// still tells it.
    unheard: Vec<Event>,
}

pub struct EventHub {
    mode: DispatchMode,
    queue: Mutex<VecDeque<Event>>,
    ready: Condvar,
    fd: Option<EventFd>,
    subs: Mutex<HashMap<TaskId, TaskSubs>>,
    /// Open handles per task: their events are queued even before anyone subscribes, and
    /// kept as `unheard` when delivered before anyone did, so an embedder that subscribes
    /// right after creating a task misses nothing.
    handles: Mutex<HashMap<TaskId, usize>>,
    /// Held while callbacks run, so `off` from another thread can wait for them to finish.
    delivery: Mutex<()>,
    next_seq: AtomicU64,
    closed: AtomicBool,
}

impl EventHub {
    pub fn new(mode: DispatchMode) -> std::io::Result<EventHub> {
        let fd = match mode {
            DispatchMode::Poll => Some(EventFd::new()?),
            DispatchMode::Thread => None,
        };
        Ok(EventHub {
            mode,
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            fd,
            subs: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            delivery: Mutex::new(()),
            next_seq: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        })
    }

    pub fn mode(&self) -> DispatchMode {
        self.mode
    }

    /// The descriptor that is readable while events wait (poll mode), else -1.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, |f| f.raw())
    }

    /// Whether anyone listens for `kind` on `task` (lets the service skip building events).
    pub fn has_listener(&self, task: TaskId, kind: EventKind) -> bool {
        self.subs
            .lock()
            .get(&task)
            .is_some_and(|t| t.list.iter().any(|s| s.kind == kind))
    }

    /// Whether some handle on `task` is open.
    pub fn handle_is_open(&self, task: TaskId) -> bool {
        self.handles.lock().contains_key(&task)
    }

    /// A handle on `task` was opened; see `handles`.
    pub fn handle_opened(&self, task: TaskId) {
        *self.handles.lock().entry(task).or_default() += 1;
    }

    pub fn handle_closed(&self, task: TaskId) {
        let last = {
            let mut h = self.handles.lock();
            match h.get_mut(&task) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    h.remove(&task);
                    true
                }
                None => false,
            }
        };
        if last {
            // Nobody can subscribe to this task any more: what it said unheard goes.
            let mut subs = self.subs.lock();
            if let Some(t) = subs.get_mut(&task) {
                t.unheard.clear();
                if t.list.is_empty() {
                    subs.remove(&task);
                }
            }
        }
    }

    pub fn push(&self, ev: Event) {
        let wanted =
            self.has_listener(ev.task_id, ev.kind) || self.handles.lock().contains_key(&ev.task_id);
        if !wanted {
            return;
        }
        self.enqueue(ev, false);
    }

    /// Queues a new event at the end, or an `again` one (kept unheard) back at its place
    /// in the order of queueing. Only the first event of an empty queue wakes the consumer:
    /// it drains the whole queue after it was woken (and after clearing the eventfd), so
    /// later ones ride along.
    fn enqueue(&self, mut ev: Event, again: bool) {
        let was_empty = {
            let mut q = self.queue.lock();
            if again {
                let at = q.partition_point(|e| e.seq < ev.seq);
                q.insert(at, ev);
            } else {
                ev.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                q.push_back(ev);
            }
            q.len() == 1
        };
        if was_empty {
            match &self.fd {
                Some(fd) => fd.signal(),
                None => {
                    self.ready.notify_one();
                }
            }
        }
    }

    /// Registers a listener built by `make`; the same (kind, key) on the same handle is stored
    /// once (`make` is then not called, so nothing is owned twice). Returns whether it was added.
    pub fn on(
        &self,
        task: TaskId,
        handle: u64,
        kind: EventKind,
        key: (usize, usize),
        make: impl FnOnce() -> Box<dyn Listener>,
    ) -> bool {
        let unheard: Vec<Event> = {
            let mut subs = self.subs.lock();
            let t = subs.entry(task).or_default();
            if t.list
                .iter()
                .any(|s| s.handle == handle && s.kind == kind && s.listener.key() == key)
            {
                return false;
            }
            t.list.push(Arc::new(Sub {
                handle,
                kind,
                listener: make(),
                removed: AtomicBool::new(false),
            }));
            let (mine, rest) = std::mem::take(&mut t.unheard)
                .into_iter()
                .partition(|e| e.kind == kind);
            t.unheard = rest;
            mine
        };
        // Back in its place: ahead of the task's later events still queued.
        for ev in unheard {
            self.enqueue(ev, true);
        }
        true
    }

    /// Removes listeners of `handle`: of one kind (and one key, when given), or all of the
    /// handle when `kind` is `None`. On return none of them runs again (see `wait_delivery`).
    pub fn off(
        &self,
        task: TaskId,
        handle: u64,
        kind: Option<EventKind>,
        key: Option<(usize, usize)>,
    ) {
        let removed: Vec<Arc<Sub>> = {
            let mut subs = self.subs.lock();
            let Some(t) = subs.get_mut(&task) else {
                return;
            };
            let (gone, keep): (Vec<_>, Vec<_>) = t.list.drain(..).partition(|s| {
                s.handle == handle
                    && kind.is_none_or(|k| s.kind == k)
                    && key.is_none_or(|k| s.listener.key() == k)
            });
            t.list = keep;
            if t.list.is_empty() && t.unheard.is_empty() {
                subs.remove(&task);
            }
            gone
        };
        for s in &removed {
            s.removed.store(true, Ordering::SeqCst);
        }
        self.wait_delivery();
        // The last reference may be a dispatcher's snapshot: then the userdata is released
        // when that callback returns.
        drop(removed);
    }

    /// Waits until no callback is running on another thread. From inside a callback it
    /// returns at once (the caller's own callback is still on the stack).
    fn wait_delivery(&self) {
        if !in_callback() {
            drop(self.delivery.lock());
        }
    }

    /// Delivers as many events as are queued now, in queue order; returns how many were
    /// taken. Used by the dispatcher thread and by `ohreq_service_dispatch`.
    pub fn dispatch_pending(&self) -> usize {
        if let Some(fd) = &self.fd {
            fd.reset();
        }
        // As many as are queued now, but one at a time from the shared queue rather than
        // a private batch: an unheard event put back by `on` meanwhile is then delivered
        // before the task's later events (and one of those waits for the next round).
        let budget = self.queue.lock().len();
        let mut n = 0;
        while n < budget {
            let Some(ev) = self.queue.lock().pop_front() else {
                return n;
            };
            self.deliver(&ev);
            n += 1;
        }
        if let Some(fd) = &self.fd
            && !self.queue.lock().is_empty()
        {
            fd.signal(); // what is left is delivered at the next dispatch
        }
        n
    }

    fn deliver(&self, ev: &Event) {
        let _guard = self.delivery.lock();
        let targets: Vec<Arc<Sub>> = {
            let mut subs = self.subs.lock();
            let targets: Vec<Arc<Sub>> = subs.get(&ev.task_id).map_or_else(Vec::new, |t| {
                t.list
                    .iter()
                    .filter(|s| s.kind == ev.kind)
                    .cloned()
                    .collect()
            });
            if targets.is_empty() {
                // Decided under the listeners' lock, so an `on` cannot slip in between.
                if self.handles.lock().contains_key(&ev.task_id) {
                    let t = subs.entry(ev.task_id).or_default();
                    t.unheard.retain(|u| u.kind != ev.kind);
                    t.unheard.push(ev.clone());
                }
                return;
            }
            targets
        };
        let was = DELIVERING.with(|d| d.replace(true));
        for s in &targets {
            if !s.removed.load(Ordering::SeqCst) {
                s.listener.call(ev);
            }
        }
        DELIVERING.with(|d| d.set(was));
        drop(targets);
    }

    /// The dispatcher thread's body: deliver until `close`.
    pub fn run_dispatcher(&self) {
        loop {
            {
                let mut q = self.queue.lock();
                while q.is_empty() && !self.closed.load(Ordering::SeqCst) {
                    self.ready.wait(&mut q);
                }
                if q.is_empty() && self.closed.load(Ordering::SeqCst) {
                    return;
                }
            }
            self.dispatch_pending();
        }
    }

    /// Ends the dispatcher after it has delivered what is queued.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _q = self.queue.lock();
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(Arc<AtomicUsize>, Arc<AtomicUsize>, usize);
    impl Listener for Count {
        fn call(&self, _ev: &Event) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn key(&self) -> (usize, usize) {
            (self.2, 0)
        }
    }
    impl Drop for Count {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ev(kind: EventKind) -> Event {
        Event {
            kind,
            task_id: 1,
            progress: Progress::new(1),
            code: 0,
            reply: None,
            states: None,
            seq: 0,
        }
    }

    struct Record(Arc<Mutex<Vec<EventKind>>>, usize);
    impl Listener for Record {
        fn call(&self, ev: &Event) {
            self.0.lock().push(ev.kind);
        }
        fn key(&self) -> (usize, usize) {
            (self.1, 0)
        }
    }

    #[test]
    fn unheard_events_go_to_the_first_listener_of_their_kind_in_order() {
        let hub = EventHub::new(DispatchMode::Poll).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = |k| -> Box<dyn Listener> { Box::new(Record(seen.clone(), k)) };
        hub.push(ev(EventKind::Progress)); // no handle, no listener: dropped
        hub.handle_opened(1);
        hub.push(ev(EventKind::Progress));
        hub.push(ev(EventKind::Progress)); // only the last unheard one of a kind is kept
        hub.push(ev(EventKind::Complete));
        assert_eq!(hub.dispatch_pending(), 3);
        assert!(seen.lock().is_empty());
        // Subscribed in the other order, delivered in the task's order.
        assert!(hub.on(1, 9, EventKind::Complete, (1, 0), || rec(1)));
        assert!(hub.on(1, 9, EventKind::Progress, (2, 0), || rec(2)));
        assert_eq!(hub.dispatch_pending(), 2);
        assert_eq!(*seen.lock(), vec![EventKind::Progress, EventKind::Complete]);
        // Heard kinds are not replayed to a later listener.
        assert!(hub.on(1, 10, EventKind::Progress, (3, 0), || rec(3)));
        assert_eq!(hub.dispatch_pending(), 0);
        // An unheard kind is dropped with the last handle.
        hub.push(ev(EventKind::Pause));
        assert_eq!(hub.dispatch_pending(), 1);
        hub.handle_closed(1);
        assert!(hub.on(1, 9, EventKind::Pause, (4, 0), || rec(4)));
        assert_eq!(hub.dispatch_pending(), 0);
        assert_eq!(seen.lock().len(), 2);
        hub.off(1, 9, None, None);
        hub.off(1, 10, None, None);
        assert!(hub.subs.lock().is_empty());
    }

    #[test]
    fn duplicates_are_stored_once_and_off_releases() {
        let hub = EventHub::new(DispatchMode::Poll).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let freed = Arc::new(AtomicUsize::new(0));
        let mk = |k| -> Box<dyn Listener> { Box::new(Count(calls.clone(), freed.clone(), k)) };
        assert!(hub.on(1, 9, EventKind::Complete, (1, 0), || mk(1)));
        assert!(!hub.on(1, 9, EventKind::Complete, (1, 0), || mk(1)));
        assert_eq!(
            freed.load(Ordering::SeqCst),
            0,
            "a duplicate is never built"
        );
        assert!(hub.on(1, 9, EventKind::Complete, (2, 0), || mk(2)));
        hub.push(ev(EventKind::Complete));
        hub.push(ev(EventKind::Pause)); // nobody listens: not queued
        assert_eq!(hub.dispatch_pending(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        hub.off(1, 9, Some(EventKind::Complete), Some((1, 0)));
        assert_eq!(freed.load(Ordering::SeqCst), 1);
        hub.push(ev(EventKind::Complete));
        hub.dispatch_pending();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        hub.off(1, 9, None, None);
        assert_eq!(freed.load(Ordering::SeqCst), 2);
        assert!(!hub.has_listener(1, EventKind::Complete));
    }
}
