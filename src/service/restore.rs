//! Restoring the store's tasks at service start (reference C.12, DESIGN §6): unfinished
//! transfers are re-queued and resume from their last durable checkpoint (or, when the
//! embedder asked, wait PAUSED for it to resume them).

use super::Inner;
use crate::task::{Reason, State, TaskRecord, Version};

impl Inner {
    pub(super) fn restore(&self, tasks: Vec<TaskRecord>) {
        let mut reg = self.reg.lock();
        for mut rec in tasks {
            // A legacy task is created started: one still INITIALIZED was stored by a create
            // whose start did not reach the store.
            let started = rec.state == State::Initialized && rec.config.version == Version::Api9;
            if started || matches!(rec.state, State::Running | State::Retrying | State::Waiting) {
                if finished_before_crash(&rec) {
                    // The rename happened but the COMPLETED row did not reach the disk.
                    rec.state = State::Completed;
                    rec.reason = Reason::Ok;
                    rec.progress.processed = rec.progress.sizes[0] as u64;
                } else if self.opts.restart_unfinished {
                    rec.state = State::Waiting;
                    rec.reason = Reason::RunningTaskMeetLimits;
                    rec.tries = 0;
                } else {
                    // Kept for the embedder to resume (or remove): nothing is sent meanwhile.
                    rec.state = State::Paused;
                    rec.reason = Reason::AppBackgroundOrTerminate;
                    rec.tries = 0;
                }
                rec.progress.state = rec.state;
                self.store.save(&rec);
            }
            reg.ids.insert(rec.id);
            if rec.state.is_final() {
                continue; // finished tasks stay in the store until asked for
            }
            reg.count_live(rec.uid, rec.config.mode, true);
            log::info!("restored task {} in state {:?}", rec.id, rec.state);
            reg.add(rec);
        }
    }
}

fn finished_before_crash(rec: &TaskRecord) -> bool {
    let size = rec.progress.sizes.first().copied().unwrap_or(-1);
    rec.config.action == crate::task::Action::Download
        && size >= 0
        && !rec.part_path().exists()
        && rec
            .config
            .target
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() == size as u64)
}
