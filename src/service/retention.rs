//! Retention (reference C.12): old finished tasks leave the store. A pass runs on a
//! short-lived thread of its own, at service start, then whenever the engine has gone idle
//! and the last pass is a minute old (every ten minutes on a service that is never idle).

use super::{Inner, Registry, remove_part};
use crate::store::Expired;
use crate::task::{Action, State, now_ms, part_path_of};
use std::path::Path;
use std::sync::atomic::Ordering;

const PASS_WHEN_IDLE_MS: u64 = 60_000;
const PASS_WHEN_BUSY_MS: u64 = 600_000;

impl Inner {
    /// Starts a retention pass if one is due and none is running. Called with the registry
    /// locked (from `schedule`), so it only spawns: the pass reads the store unlocked.
    pub(super) fn maybe_start_retention(&self, reg: &mut Registry) {
        let now = now_ms();
        let every = if reg.in_engine == 0 {
            PASS_WHEN_IDLE_MS
        } else {
            PASS_WHEN_BUSY_MS
        };
        if reg.last_pass != 0 && now.saturating_sub(reg.last_pass) < every {
            return;
        }
        let mut slot = self.retention.lock();
        if self.closed.load(Ordering::SeqCst) || slot.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        reg.last_pass = now;
        let me = self.me.clone();
        let spawned = crate::threads::spawn_background("ohreq-retention".into(), move || {
            if let Some(inner) = me.upgrade() {
                inner.retention_pass(now);
            }
        });
        match spawned {
            Ok(t) => *slot = Some(t), // the previous pass has finished: dropping it detaches nothing
            Err(e) => log::warn!("cannot start a retention pass: {e}"),
        }
    }

    /// Deletes the rows the retention rules let go at `now`, with their part files, and
    /// forgets them in memory. A task that changed since its row was read is left for a
    /// later pass.
    pub(super) fn retention_pass(&self, now: u64) {
        let seen = self.reg.lock().evictions;
        let expired = self.store.expired(now);
        let mut reg = self.reg.lock();
        // The store has run the previous pass's deletions before this read: their ids may
        // now be given to new tasks (whose rows are committed at once, so a deletion still
        // queued would take the new row with it).
        for id in std::mem::take(&mut reg.deleted) {
            reg.ids.remove(&id);
        }
        let expired = match expired {
            Ok(v) => v,
            Err(e) => {
                log::warn!("retention pass skipped: {e}");
                return;
            }
        };
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut deleted = 0usize;
        for x in expired {
            // A task someone still holds a handle on keeps its id (a new task must not take
            // it over under that handle); a later pass deletes it.
            if self.hub.handle_is_open(x.id) {
                continue;
            }
            match reg.tasks.get(&x.id) {
                Some(e) if e.in_engine || e.rec.state != x.state || e.rec.mtime != x.mtime => {
                    continue;
                }
                Some(_) => {}
                // A row of a task that was read back, changed and evicted while the pass
                // read the store may describe an older state: leave it to the next pass.
                // A task being created is not expired, whatever its row says.
                None if reg.evicted_since(seen, x.id)
                    || !reg.ids.contains(&x.id)
                    || reg.creating.contains(&x.id) =>
                {
                    continue;
                }
                None => {}
            }
            if let Some(e) = reg.take(x.id)
                && !e.rec.state.is_final()
            {
                reg.count_live(e.rec.uid, e.rec.config.mode, false);
            }
            reg.deleted.push(x.id);
            self.store.delete(x.id);
            if let Some(part) = leftover_part(&reg, &x) {
                // Now, under the registry lock: a task created on the same target afterwards
                // must not lose its own part file to a deletion still queued.
                remove_part(&part);
            }
            deleted += 1;
        }
        if deleted > 0 {
            let Registry {
                finished, tasks, ..
            } = &mut *reg;
            finished.retain(|id| tasks.contains_key(id));
        }
        if deleted > 0 {
            log::info!("retention: deleted {deleted} expired tasks");
        }
    }
}

/// The part file an expired download may have left (paused, stopped or never started ones
/// keep theirs), unless a live task is downloading to the same target now.
fn leftover_part(reg: &Registry, x: &Expired) -> Option<std::path::PathBuf> {
    // Removed and failed tasks delete their part files, but a kill can come first.
    if x.action != Action::Download
        || !matches!(
            x.state,
            State::Paused | State::Stopped | State::Initialized | State::Removed | State::Failed
        )
    {
        return None;
    }
    let target = Path::new(&x.target);
    reg.index
        .owner_of(target)
        .is_none()
        .then(|| part_path_of(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConfig;
    use crate::service::{Service, ServiceOptions};
    use crate::store::{Filter, StoreOwner};
    use crate::task::{TaskId, TaskRecord, Version};
    use std::path::PathBuf;

    const HOUR: u64 = 3600 * 1000;
    const DAY: u64 = 24 * HOUR;

    /// A stored download in `state`, last changed `age` ms ago, writing to `<dir>/<name>`.
    fn row(dir: &Path, id: TaskId, state: State, age: u64, name: &str) -> TaskRecord {
        let mut cfg = TaskConfig::defaults(Action::Download, Version::Api9);
        cfg.url = "http://127.0.0.1:9/never".into();
        cfg.target = dir.join(name);
        let now = now_ms();
        let mut r = TaskRecord::new(id, 1000, "b", cfg, now - age - 1000);
        r.state = state;
        r.progress.state = state;
        r.mtime = now - age;
        r
    }

    #[test]
    fn the_pass_at_start_deletes_exactly_what_the_rules_let_go() {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("ohreq-retention-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rows = [
            row(&dir, 1, State::Removed, 60_000, "1"),
            row(&dir, 2, State::Removed, 1_000, "2"),
            row(&dir, 3, State::Completed, 2 * DAY, "3"),
            row(&dir, 4, State::Completed, HOUR, "4"),
            row(&dir, 5, State::Failed, 8 * DAY, "5"),
            row(&dir, 6, State::Failed, 6 * DAY, "6"),
            row(&dir, 7, State::Paused, 8 * DAY, "7"),
            // 8 expires, but its target is 9's now: 9's part file must stay.
            row(&dir, 8, State::Stopped, 8 * DAY, "shared"),
            row(&dir, 9, State::Paused, HOUR, "shared"),
            // Active tasks never expire, however old their last state change.
            row(&dir, 10, State::Waiting, 30 * DAY, "10"),
        ];
        for name in ["7", "shared"] {
            std::fs::write(part_path_of(&dir.join(name)), b"partial").unwrap();
        }
        {
            let (owner, _) = StoreOwner::open(&dir.join("data")).unwrap();
            for r in &rows {
                owner.store.save(r);
            }
        }
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let pass = svc
            .inner
            .retention
            .lock()
            .take()
            .expect("a pass starts with the service");
        pass.join().unwrap();
        let left = svc
            .inner
            .store
            .search(Filter {
                uid: 1000,
                after: 0,
                before: u64::MAX,
                state: None,
                action: None,
                mode: None,
            })
            .unwrap();
        let mut left_sorted = left.clone();
        left_sorted.sort();
        assert_eq!(left_sorted, vec![2, 4, 6, 9, 10]);
        {
            let reg = svc.inner.reg.lock();
            for gone in [1, 3, 5, 7, 8] {
                // Not yet free for new tasks: the deletion may still be queued.
                assert!(reg.ids.contains(&gone), "task {gone} released too early");
                assert!(
                    !reg.tasks.contains_key(&gone),
                    "task {gone} still in memory"
                );
            }
            assert!(reg.tasks.contains_key(&9));
        }
        // The next pass reads the store after those deletions, and releases the ids.
        svc.inner.retention_pass(now_ms());
        {
            let reg = svc.inner.reg.lock();
            for gone in [1, 3, 5, 7, 8] {
                assert!(!reg.ids.contains(&gone), "task {gone} still known");
            }
            assert!(reg.ids.contains(&9));
        }
        assert!(svc.inner.store.flush());
        assert!(
            !part_path_of(&dir.join("7")).exists(),
            "the expired paused task's part file"
        );
        assert!(
            part_path_of(&dir.join("shared")).exists(),
            "a live task's part file"
        );
        drop(svc);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
