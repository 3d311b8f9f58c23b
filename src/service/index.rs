//! Indexes over the registry's tasks, kept in step with every state change: which tasks are
//! WAITING, in the order they may start, and which live download writes to which target.
//! Creating a task and finishing one each look these up, so neither scans every task (with
//! thousands queued, the scans and sorts made starting N tasks cost O(N²)).

use crate::scheduler::WaitKey;
use crate::task::{Action, State, TaskId, TaskRecord};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub(super) struct TaskIndex {
    waiting: BTreeSet<WaitKey>,
    /// Live downloads by target; more than one only if the store held such tasks already.
    targets: HashMap<PathBuf, Vec<TaskId>>,
}

impl TaskIndex {
    /// Records that `rec` is now in `rec.state` and was in `old` (`None`: it was not in the
    /// registry).
    pub fn update(&mut self, rec: &TaskRecord, old: Option<State>) {
        let key = WaitKey::of(rec);
        if old == Some(State::Waiting) && rec.state != State::Waiting {
            self.waiting.remove(&key);
        }
        if rec.state == State::Waiting {
            self.waiting.insert(key);
        }
        if rec.config.action != Action::Download {
            return;
        }
        let was_live = old.is_some_and(|s| !s.is_final());
        let live = !rec.state.is_final();
        if was_live && !live {
            self.release_target(rec);
        } else if live && !was_live {
            let owners = self.targets.entry(rec.config.target.clone()).or_default();
            if !owners.contains(&rec.id) {
                owners.push(rec.id);
            }
        }
    }

    /// Forgets `rec`, which leaves the registry.
    pub fn remove(&mut self, rec: &TaskRecord) {
        self.waiting.remove(&WaitKey::of(rec));
        if rec.config.action == Action::Download && !rec.state.is_final() {
            self.release_target(rec);
        }
    }

    fn release_target(&mut self, rec: &TaskRecord) {
        if let Some(owners) = self.targets.get_mut(&rec.config.target) {
            owners.retain(|&id| id != rec.id);
            if owners.is_empty() {
                self.targets.remove(&rec.config.target);
            }
        }
    }

    /// WAITING tasks, the first to start first.
    pub fn waiting(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.waiting.iter().map(|k| k.id)
    }

    /// The live download that writes to `target`, if any.
    pub fn owner_of(&self, target: &Path) -> Option<TaskId> {
        self.targets.get(target).and_then(|o| o.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConfig;
    use crate::task::{Mode, Version};

    fn rec(id: TaskId, mode: Mode, priority: u32, ctime: u64, target: &str) -> TaskRecord {
        let mut cfg = TaskConfig::defaults(Action::Download, Version::Api9);
        cfg.mode = mode;
        cfg.priority = priority;
        cfg.target = PathBuf::from(target);
        TaskRecord::new(id, 1, "b", cfg, ctime)
    }

    fn set(ix: &mut TaskIndex, r: &mut TaskRecord, s: State) {
        let old = r.state;
        r.state = s;
        ix.update(r, Some(old));
    }

    #[test]
    fn waiting_in_start_order_and_targets_of_live_downloads() {
        let mut ix = TaskIndex::default();
        let mut rs = vec![
            rec(1, Mode::Background, 0, 1, "/d/a"),
            rec(2, Mode::Foreground, 5, 2, "/d/b"),
            rec(3, Mode::Background, 0, 0, "/d/c"),
            rec(4, Mode::Foreground, 1, 3, "/d/d"),
        ];
        for r in &mut rs {
            ix.update(r, None);
            set(&mut ix, r, State::Waiting);
        }
        assert_eq!(ix.waiting().collect::<Vec<_>>(), vec![4, 2, 3, 1]);
        assert_eq!(ix.owner_of(Path::new("/d/b")), Some(2));

        set(&mut ix, &mut rs[1], State::Running);
        assert_eq!(ix.waiting().collect::<Vec<_>>(), vec![4, 3, 1]);
        assert_eq!(ix.owner_of(Path::new("/d/b")), Some(2));
        set(&mut ix, &mut rs[1], State::Completed);
        assert_eq!(ix.owner_of(Path::new("/d/b")), None);

        // Back to live (start after failing): indexed again.
        set(&mut ix, &mut rs[1], State::Waiting);
        assert_eq!(ix.owner_of(Path::new("/d/b")), Some(2));
        assert_eq!(ix.waiting().collect::<Vec<_>>(), vec![4, 2, 3, 1]);

        ix.remove(&rs[0]);
        assert_eq!(ix.waiting().collect::<Vec<_>>(), vec![4, 2, 3]);
        assert_eq!(ix.owner_of(Path::new("/d/a")), None);

        // Two live tasks on one target (only from an old store): either finishing leaves the
        // other as the owner.
        let mut other = rec(9, Mode::Background, 0, 9, "/d/c");
        ix.update(&other, None);
        assert_eq!(ix.owner_of(Path::new("/d/c")), Some(3));
        set(&mut ix, &mut rs[2], State::Failed);
        assert_eq!(ix.owner_of(Path::new("/d/c")), Some(9));
        set(&mut ix, &mut other, State::Removed);
        assert_eq!(ix.owner_of(Path::new("/d/c")), None);
    }
}
