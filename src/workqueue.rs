//! A FIFO between threads whose consumers park at once when it is empty, and a one-shot
//! reply slot. crossbeam's channels spin and yield a few times before they block; on a
//! 2-core device with a handful of busy threads those yields were thousands of wasted
//! context switches per thousand small downloads.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// While a consumer lingers: the queue length at which it wants to be woken.
    wake_at: Option<usize>,
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                wake_at: None,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> WorkQueue<T> {
    /// Appends `item`; gives it back once the queue is closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(item);
        }
        s.items.push_back(item);
        let wake = s.items.len() == 1 || s.wake_at == Some(s.items.len());
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Appends `item` and wakes a consumer even if items are queued already: one that
    /// `linger`s for more wakes for this one.
    pub fn push_wake(&self, item: T) -> Result<(), T> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(item);
        }
        s.items.push_back(item);
        drop(s);
        self.ready.notify_all();
        Ok(())
    }

    /// Waits up to `dur` for items to gather, returning early once `max` are queued, one
    /// is `urgent`, or the queue is closed. A consumer that got a lazy item calls this before
    /// `take_more`, to handle many items in one go instead of waking for each.
    pub fn linger(&self, dur: Duration, max: usize, urgent: impl Fn(&T) -> bool) {
        let deadline = Instant::now() + dur;
        let mut s = self.state.lock();
        s.wake_at = Some(max);
        while !s.closed && s.items.len() < max && !s.items.iter().any(&urgent) {
            if self.ready.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        s.wake_at = None;
    }

    /// The next item, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                if !s.items.is_empty() {
                    // Another consumer may be waiting: this one woke for one item only.
                    self.ready.notify_one();
                }
                return Some(item);
            }
            if s.closed {
                return None;
            }
            self.ready.wait(&mut s);
        }
    }

    /// Moves up to `max` queued items to `out` without waiting.
    pub fn take_more(&self, out: &mut Vec<T>, max: usize) {
        let mut s = self.state.lock();
        let n = max.min(s.items.len());
        out.extend(s.items.drain(..n));
    }

    /// Refuses further items and drops the queued ones (when their consumer is gone).
    pub fn close_and_clear(&self) {
        let dropped = {
            let mut s = self.state.lock();
            s.closed = true;
            std::mem::take(&mut s.items)
        };
        drop(dropped); // outside the lock: dropping an item may wake someone
        self.ready.notify_all();
    }

    /// Refuses further items; consumers get what is queued, then `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

/// The sending half of a one-shot reply. Dropped without sending, it tells the receiver
/// that no answer will come.
pub struct ReplyTx<T>(Arc<Slot<T>>);

pub struct ReplyRx<T>(Arc<Slot<T>>);

struct Slot<T> {
    value: Mutex<(Option<T>, bool)>,
    done: Condvar,
}

pub fn reply<T>() -> (ReplyTx<T>, ReplyRx<T>) {
    let slot = Arc::new(Slot {
        value: Mutex::new((None, false)),
        done: Condvar::new(),
    });
    (ReplyTx(slot.clone()), ReplyRx(slot))
}

impl<T> ReplyTx<T> {
    pub fn send(self, v: T) {
        self.0.value.lock().0 = Some(v);
        // Drop marks it done and wakes the receiver.
    }
}

impl<T> Drop for ReplyTx<T> {
    fn drop(&mut self) {
        self.0.value.lock().1 = true;
        self.0.done.notify_all();
    }
}

impl<T> ReplyRx<T> {
    /// Waits for the answer; `None` if the sender went away without one.
    pub fn recv(self) -> Option<T> {
        let mut v = self.0.value.lock();
        while !v.1 {
            self.0.done.wait(&mut v);
        }
        v.0.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_close_drains_first() {
        let q = Arc::new(WorkQueue::default());
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(i) = q.pop() {
                        got.push(i);
                    }
                    got
                })
            })
            .collect();
        for i in 0..3000 {
            q.push(i).unwrap();
        }
        q.close();
        assert_eq!(q.push(-1), Err(-1));
        let mut all: Vec<i32> = Vec::new();
        for c in consumers {
            let got = c.join().unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "each consumer sees FIFO order"
            );
            all.extend(got);
        }
        all.sort();
        assert_eq!(all, (0..3000).collect::<Vec<_>>());
    }

    #[test]
    fn linger_waits_for_more_unless_something_urgent_comes() {
        let q = Arc::new(WorkQueue::default());
        // Nothing urgent: the whole time passes (bounded by the deadline).
        q.push(1).unwrap();
        let t0 = Instant::now();
        q.linger(Duration::from_millis(50), 100, |&i| i < 0);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        // An urgent item pushed meanwhile ends it early, although items were queued.
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            q2.push_wake(-1).unwrap();
        });
        let t0 = Instant::now();
        q.linger(Duration::from_secs(10), 100, |&i| i < 0);
        assert!(t0.elapsed() < Duration::from_secs(5));
        pusher.join().unwrap();
        // Enough items end it too, also when they arrive while it waits.
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            q2.push(2).unwrap();
            q2.push(3).unwrap();
        });
        let t0 = Instant::now();
        q.linger(Duration::from_secs(10), 4, |_| false);
        assert!(t0.elapsed() < Duration::from_secs(5));
        pusher.join().unwrap();
        let mut got = Vec::new();
        q.take_more(&mut got, 10);
        assert_eq!(got, vec![1, -1, 2, 3]);
    }

    #[test]
    fn a_reply_arrives_or_its_sender_is_gone() {
        let (tx, rx) = reply();
        std::thread::spawn(move || tx.send(7));
        assert_eq!(rx.recv(), Some(7));
        let (tx, rx) = reply::<i32>();
        std::thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), None);
        // A queued reply whose consumer died is answered "none" by clearing the queue.
        let q = WorkQueue::default();
        let (tx, rx) = reply::<i32>();
        q.push(tx).ok().unwrap();
        q.close_and_clear();
        assert_eq!(rx.recv(), None);
        assert!(q.pop().is_none());
    }
}
