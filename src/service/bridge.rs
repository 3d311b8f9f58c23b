//! Engine reports → task state, store rows and events. Runs on the engine thread: it takes
//! the registry lock briefly and never waits for the disk (syncs go to the store thread and
//! the publishers; only the unlink of a dead part file happens here).

use super::{Entry, Inner, Registry, WeakInner, finalize, remove_file_logged, remove_part};
use crate::engine::{Outcome, Reporter, ResponseHead, Ticket};
use crate::events::EventKind;
use crate::events::{Reply, TaskState};
use crate::task::{Action, Reason, State, TaskRecord, Version, legacy_fail_code};
use std::fs::File;
use std::sync::Arc;

pub struct Bridge {
    pub inner: WeakInner,
}

/// The entry a report is about, unless the report belongs to an older run.
fn current(reg: &mut Registry, t: Ticket) -> Option<&mut Entry> {
    reg.tasks.get_mut(&t.id).filter(|e| e.run == t.run)
}

impl Reporter for Bridge {
    fn response(&self, t: Ticket, head: &ResponseHead) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        let Some(e) = current(&mut reg, t) else {
            return;
        };
        e.rec.http_status = head.status;
        if (200..300).contains(&head.status) {
            e.rec.extras = head.lowercased();
            if e.rec.config.action == Action::Download {
                e.rec.mime_type = head.header("content-type").unwrap_or("").to_owned();
            }
        }
    }

    fn progress(&self, t: Ticket, bytes: u64, total: Option<u64>) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        let Some(e) = current(&mut reg, t) else {
            return;
        };
        e.rec.progress.processed = bytes;
        e.rec.progress.total_processed = bytes;
        e.rec.progress.sizes[0] = total.map_or(-1, |n| n as i64);
        inner.emit(&e.rec, EventKind::Progress, 0);
    }

    fn checkpoint(
        &self,
        t: Ticket,
        file: Option<Arc<File>>,
        bytes: u64,
        etag: &str,
        last_modified: &str,
    ) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        let Some(e) = current(&mut reg, t) else {
            return;
        };
        e.rec.durable_offset = bytes;
        e.rec.etag = etag.to_owned();
        e.rec.last_modified = last_modified.to_owned();
        inner
            .store
            .checkpoint(file, &e.rec, inner.on_part_synced(t));
    }

    fn retry(&self, t: Ticket, tries: u32) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let mut reg = inner.reg.lock();
        let online = reg.net.online;
        match current(&mut reg, t) {
            Some(e) => {
                e.rec.tries = tries;
                online
            }
            None => false,
        }
    }

    fn upload_progress(&self, t: Ticket, sent: &[(usize, u64)]) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        let Some(e) = current(&mut reg, t) else {
            return;
        };
        let p = &mut e.rec.progress;
        // Files answered in earlier runs keep their full size as progress.
        let earlier: u64 = e
            .rec
            .file_states
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                *i >= e.rec.config.index as usize && f.reason == crate::task::Reason::Ok
            })
            .filter(|(i, _)| !sent.iter().any(|(j, _)| j == i))
            .map(|(i, _)| p.sizes.get(i).copied().unwrap_or(0).max(0) as u64)
            .sum();
        if let Some(&(index, n)) = sent.last() {
            p.index = index as u32;
            p.processed = n;
        }
        p.total_processed = earlier + sent.iter().map(|(_, n)| n).sum::<u64>();
        inner.emit(&e.rec, EventKind::Progress, 0);
    }

    fn upload_reply(&self, t: Ticket, files: &[usize], head: &ResponseHead, body: &[u8]) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        let Some(e) = current(&mut reg, t) else {
            return;
        };
        let ok = (200..300).contains(&head.status);
        let message = if ok {
            String::new()
        } else {
            format!("Http protocol error: {} {}", head.status, head.reason)
                .trim_end()
                .to_owned()
        };
        for &i in files {
            if let Some(f) = e.rec.file_states.get_mut(i) {
                f.reason = if ok {
                    crate::task::Reason::Ok
                } else {
                    crate::task::Reason::ProtocolError
                };
                f.message = message.clone();
            }
        }
        e.rec.extras = head.lowercased();
        let reply = Some(Arc::new(Reply::new(head, body)));
        if e.rec.config.version == Version::Api9 {
            inner.emit_with(&e.rec, EventKind::HeaderReceive, 0, reply, None);
        } else {
            inner.emit_with(&e.rec, EventKind::Response, 0, reply, None);
        }
    }

    fn finished(&self, t: Ticket, outcome: Outcome) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut reg = inner.reg.lock();
        reg.in_engine = reg.in_engine.saturating_sub(1);
        if let Some(e) = current(&mut reg, t) {
            e.in_engine = false;
            inner.run_ended(&mut reg, t, outcome);
        }
        inner.schedule_locked(&mut reg);
    }
}

impl Inner {
    fn run_ended(&self, reg: &mut Registry, t: Ticket, outcome: Outcome) {
        let e = reg.tasks.get_mut(&t.id).expect("checked by caller");
        let part = e.rec.part_path();
        // Ended from outside while the engine still ran it (removed; or failed: a lost
        // network for an upload, a part file that could not be synced): whatever the run
        // got to, it neither completes nor fails the task a second time.
        if matches!(e.rec.state, State::Removed | State::Failed)
            && !matches!(outcome, Outcome::Cancelled { .. })
        {
            if e.rec.config.action == Action::Download {
                remove_part(&part);
            }
            return;
        }
        match outcome {
            Outcome::Uploaded { bytes } => {
                e.rec.progress.total_processed = bytes.max(e.rec.progress.total_processed);
                self.set_state(reg, t.id, State::Completed, Reason::Ok);
                let rec = &reg.tasks[&t.id].rec;
                self.emit(rec, EventKind::Progress, 0);
                let kind = match rec.config.version {
                    Version::Api9 => EventKind::Complete,
                    Version::Api10 => EventKind::Completed,
                };
                self.emit_with(rec, kind, 0, None, Some(task_states(rec)));
            }
            Outcome::Done { body, bytes } => {
                e.rec.progress.processed = bytes;
                e.rec.progress.total_processed = bytes;
                e.rec.progress.sizes[0] = bytes as i64;
                let target = e.rec.config.target.clone();
                let me = self.me.clone();
                let done: finalize::Done = Box::new(move |result| {
                    if let Some(inner) = me.upgrade() {
                        inner.published(t, result);
                    }
                });
                let sha256 = e.rec.config.sha256.clone();
                // A body from memory leaves behind any part file an earlier run made.
                let stale_part = e.launches > 1;
                let queued = match self.publisher.lock().as_ref() {
                    Some(p) => p.publish(body, part, stale_part, target, sha256, done),
                    None => false,
                };
                if queued {
                    e.publishing = true;
                } else {
                    // Stopping: the task stays RUNNING in the store, so the next start
                    // resumes it from its last checkpoint.
                    log::info!(
                        "task {} ended while the service stops; it resumes at the next start",
                        t.id
                    );
                }
            }
            Outcome::Failed(f) => {
                e.rec.progress.processed = f.bytes;
                e.rec.http_status = f.http_status;
                e.rec.curl_code = f.curl_code;
                e.rec.detail = f.detail.clone();
                e.rec.durable_offset = 0;
                e.rec.etag.clear();
                e.rec.last_modified.clear();
                log::info!("task {} failed: {:?}: {}", t.id, f.reason, f.detail);
                let is_download = e.rec.config.action == Action::Download;
                // The files of the failed request that got no answer of their own take its
                // reason; files never sent keep "not uploaded" (UPLOAD_FILE_ERROR).
                for &i in &f.files {
                    if let Some(s) = e
                        .rec
                        .file_states
                        .get_mut(i)
                        .filter(|s| s.reason == Reason::UploadFileError)
                    {
                        s.reason = f.reason;
                        s.message = f.detail.clone();
                    }
                }
                self.fail(reg, t.id, f.reason);
                if is_download {
                    // DESIGN §9: a failed download leaves no part file behind.
                    remove_part(&part);
                }
            }
            Outcome::Cancelled {
                file,
                bytes,
                total,
                etag,
                last_modified,
            } => {
                let state = e.rec.state;
                if e.rec.config.action == Action::Upload {
                    self.emit(&e.rec, EventKind::Progress, 0);
                    return;
                }
                if let Some(n) = total {
                    e.rec.progress.sizes[0] = n as i64;
                }
                // Removed, or failed from outside the engine, or its part file could not be
                // synced: the part file is not to be resumed from.
                if matches!(state, State::Removed | State::Failed) || e.part_bad {
                    remove_part(&part);
                    // A removed run still ends with its final progress (reference C.2).
                    if state == State::Removed && (bytes > 0 || e.rec.progress.sizes[0] >= 0) {
                        e.rec.progress.processed = bytes;
                        e.rec.progress.total_processed = bytes;
                        self.emit(&e.rec, EventKind::Progress, 0);
                    }
                    return;
                }
                e.rec.progress.processed = bytes;
                e.rec.progress.total_processed = bytes;
                if let Some(f) = file {
                    e.rec.durable_offset = bytes;
                    e.rec.etag = etag;
                    e.rec.last_modified = last_modified;
                    self.store
                        .checkpoint(Some(f), &e.rec, self.on_part_synced(t));
                }
                // One final progress for the run, unless nothing is known at all.
                if bytes > 0 || e.rec.progress.sizes[0] >= 0 {
                    self.emit(&e.rec, EventKind::Progress, 0);
                }
            }
        }
    }

    /// FAILED with a reason, plus the end-of-run events.
    pub(super) fn fail(&self, reg: &mut Registry, id: super::TaskId, reason: Reason) {
        self.set_state(reg, id, State::Failed, reason);
        let rec = &reg.tasks[&id].rec;
        if rec.progress.processed > 0 || rec.progress.sizes[0] >= 0 {
            self.emit(rec, EventKind::Progress, 0);
        }
        let states = (rec.config.action == Action::Upload).then(|| task_states(rec));
        match rec.config.version {
            Version::Api9 => {
                self.emit_with(rec, EventKind::Fail, legacy_fail_code(reason), None, states)
            }
            Version::Api10 => {
                self.emit(rec, EventKind::Failed, 0);
                let fault = reason.fault().map_or(0xFF, |f| f as i32);
                self.emit(rec, EventKind::FaultOccur, fault);
            }
        }
    }

    /// What a checkpoint of run `t` tells when its part-file sync is done. A failed sync
    /// makes the whole part file untrustworthy, not only the bytes since the last sync (after
    /// a failed fsync the kernel may have dropped those pages, and a later fsync succeeds
    /// all the same): the recorded offset goes back to 0 and the part file is deleted; a
    /// run still going fails with the error (a paused task starts over when resumed).
    fn on_part_synced(&self, t: Ticket) -> crate::store::Synced {
        let me = self.me.clone();
        Box::new(move |result| {
            if let (Err(err), Some(inner)) = (result, me.upgrade()) {
                inner.part_sync_failed(t, err);
            }
        })
    }

    pub(super) fn part_sync_failed(&self, t: Ticket, err: std::io::Error) {
        let mut reg = self.reg.lock();
        let Some(e) = reg.tasks.get_mut(&t.id) else {
            return;
        };
        // Not only the run that asked: a later one may have resumed from the same file
        // before its sync was done. A finished task has no part file any more.
        if e.rec.state.is_final() {
            return;
        }
        e.part_bad = true;
        e.rec.durable_offset = 0;
        e.rec.etag.clear();
        e.rec.last_modified.clear();
        let part = e.rec.part_path();
        if e.rec.state == State::Running {
            // Still downloading into it, or being published from it (then `published`
            // throws the result away): the download fails.
            e.rec.detail = format!("cannot sync the part file {}: {err}", part.display());
            log::warn!("task {}: {}", t.id, e.rec.detail);
            self.fail(&mut reg, t.id, Reason::IoError);
            self.engine_cancel(t.id);
        } else {
            log::warn!(
                "task {}: part file {} could not be synced ({err}); it starts over",
                t.id,
                part.display()
            );
            self.store.save(&e.rec);
        }
        remove_part(&part);
    }

    /// The part file is now the target (or could not become it).
    pub(super) fn published(&self, t: Ticket, result: std::io::Result<()>) {
        let mut reg = self.reg.lock();
        {
            let Some(e) = reg.tasks.get_mut(&t.id) else {
                return;
            };
            if e.run != t.run {
                return;
            }
            e.publishing = false;
            if matches!(e.rec.state, State::Removed | State::Failed) {
                // Removed before it completed, or failed meanwhile (its part file could not
                // be synced): the file it was publishing goes too (linking and renaming
                // refuse an existing target, so the file there is this one).
                if result.is_ok() {
                    remove_file_logged(&e.rec.config.target, "file of an ended task");
                } else {
                    remove_part(&e.rec.part_path());
                }
                return;
            }
            match result {
                Ok(()) => {
                    e.rec.durable_offset = 0;
                    self.set_state(&mut reg, t.id, State::Completed, Reason::Ok);
                    let rec = &reg.tasks[&t.id].rec;
                    self.emit(rec, EventKind::Progress, 0);
                    let kind = match rec.config.version {
                        Version::Api9 => EventKind::Complete,
                        Version::Api10 => EventKind::Completed,
                    };
                    self.emit(rec, kind, 0);
                }
                Err(err) => {
                    let reason = if crate::engine::is_no_space(&err) {
                        Reason::InsufficientSpace
                    } else if err.kind() == std::io::ErrorKind::InvalidData {
                        Reason::OthersError // the digest did not match
                    } else {
                        Reason::IoError
                    };
                    let part = e.rec.part_path();
                    remove_part(&part);
                    e.rec.detail =
                        format!("cannot publish {}: {err}", e.rec.config.target.display());
                    self.fail(&mut reg, t.id, reason);
                }
            }
        }
        self.schedule_locked(&mut reg);
    }
}

/// The legacy `TaskState` list of an upload: one entry per file.
fn task_states(rec: &TaskRecord) -> Arc<Vec<TaskState>> {
    let states = rec
        .config
        .files
        .iter()
        .zip(&rec.file_states)
        .map(|(f, s)| TaskState::new(&f.path.to_string_lossy(), s.reason as i32, &s.message))
        .collect();
    Arc::new(states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TaskConfig;
    use crate::service::{Service, ServiceOptions};
    use crate::task::{TaskRecord, now_ms};
    use crate::testing::TempDir;

    /// Puts download `id` (target `f<id>` in `dir`) in the registry in `state`, on run 7,
    /// after `adjust`; returns its target and part file paths.
    fn put_download(
        inner: &Inner,
        dir: &TempDir,
        id: u32,
        state: State,
        adjust: impl FnOnce(&mut TaskRecord),
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let mut cfg = TaskConfig::defaults(Action::Download, Version::Api9);
        cfg.target = dir.join(format!("f{id}"));
        let mut rec = TaskRecord::new(id, 1, "b", cfg, now_ms());
        rec.state = state;
        adjust(&mut rec);
        let paths = (rec.config.target.clone(), rec.part_path());
        let mut reg = inner.reg.lock();
        reg.add(rec);
        reg.tasks.get_mut(&id).unwrap().run = 7;
        paths
    }

    /// A part file that could not be synced is not resumed from: a running download fails
    /// (ERROR_FILE_ERROR), also when the report is about an earlier run it resumed from,
    /// and one being published is not completed; a paused one starts over when resumed; a
    /// finished task is left alone.
    #[test]
    fn a_failed_part_sync_discards_the_part_file() {
        let dir = TempDir::new("bridge-sync");
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let inner = &svc.inner;
        let mut parts = Vec::new();
        let mut targets = Vec::new();
        // (id, state, in the engine, publishing)
        for (id, state, in_engine, publishing) in [
            (51, State::Running, true, false),
            (52, State::Paused, false, false),
            (53, State::Completed, false, false),
            (54, State::Running, false, true),
        ] {
            let (target, part) = put_download(inner, &dir, id, state, |r| {
                r.durable_offset = 1000;
                r.etag = "\"e\"".into();
            });
            std::fs::write(&part, vec![7u8; 1000]).unwrap();
            let mut reg = inner.reg.lock();
            let e = reg.tasks.get_mut(&id).unwrap();
            e.in_engine = in_engine;
            e.publishing = publishing;
            targets.push(target);
            parts.push(part);
        }
        let eio = || std::io::Error::from_raw_os_error(libc::EIO);
        // 51's report comes from run 6, which run 7 resumed from.
        inner.part_sync_failed(Ticket { id: 51, run: 6 }, eio());
        inner.part_sync_failed(Ticket { id: 52, run: 7 }, eio());
        inner.part_sync_failed(Ticket { id: 53, run: 7 }, eio());
        inner.part_sync_failed(Ticket { id: 54, run: 7 }, eio());
        // 54's publisher then linked the file at the target and reports success.
        std::fs::write(&targets[3], b"published").unwrap();
        inner.published(Ticket { id: 54, run: 7 }, Ok(()));
        let reg = inner.reg.lock();
        let rec = |id| &reg.tasks[&id].rec;
        for id in [51, 54] {
            assert_eq!(
                (rec(id).state, rec(id).reason),
                (State::Failed, Reason::IoError)
            );
            assert_eq!(legacy_fail_code(rec(id).reason), 3); // ERROR_FILE_ERROR
            assert!(rec(id).detail.contains("cannot sync"), "{}", rec(id).detail);
        }
        assert!(
            !targets[3].exists(),
            "a file from an unsynced part was published"
        );
        assert_eq!(
            (rec(52).state, rec(52).durable_offset, rec(52).etag.as_str()),
            (State::Paused, 0, "")
        );
        assert!(reg.tasks[&52].part_bad);
        assert_eq!(
            (rec(53).state, rec(53).durable_offset),
            (State::Completed, 1000)
        );
        assert!(!parts[0].exists() && !parts[1].exists() && parts[2].exists());
        drop(reg);
        drop(svc);
    }

    /// A download removed while a publisher was making its file the target: the file does
    /// not stay behind (a download removed after it completed keeps its file).
    #[test]
    fn removed_while_publishing_leaves_no_file() {
        let dir = TempDir::new("bridge-publish");
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let inner = &svc.inner;
        let mut targets = Vec::new();
        for (id, state) in [(41, State::Removed), (42, State::Running)] {
            let (target, _) = put_download(inner, &dir, id, state, |_| {});
            std::fs::write(&target, b"published").unwrap();
            inner.reg.lock().tasks.get_mut(&id).unwrap().publishing = true;
            targets.push(target);
        }
        inner.published(Ticket { id: 41, run: 7 }, Ok(()));
        inner.published(Ticket { id: 42, run: 7 }, Ok(()));
        assert!(!targets[0].exists(), "the removed task's file stayed");
        assert!(targets[1].exists(), "the completed task's file went");
        let reg = inner.reg.lock();
        assert_eq!(reg.tasks[&41].rec.state, State::Removed);
        assert_eq!(reg.tasks[&42].rec.state, State::Completed);
        drop(reg);
        drop(svc);
    }
}
