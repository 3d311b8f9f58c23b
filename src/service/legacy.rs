//! The legacy API (seed "Upload and Download"): download and upload create-and-start,
//! DownloadInfo, MIME type.

use super::{Client, Inner, PERMISSION_INTERNET};
use crate::config::{
    DownloadConfigBuilder, TaskConfig, UploadConfigBuilder, UriResolver, validate_legacy_download,
    validate_legacy_upload,
};
use crate::error::{Code, Error, Result};
use crate::task::{
    DownloadInfo, Reason, State, TaskId, TaskRecord, legacy_fail_code, legacy_paused_reason,
    legacy_status, now_ms,
};

impl Inner {
    /// `request.download` / `downloadFile`: checks the config (401), the target (13400002 if
    /// it exists or another live task owns it; 13400001 if it cannot be created), INTERNET
    /// (201) and the app's task limit (21900004), then creates the task and starts it.
    /// Nothing on disk changes unless the task is created.
    pub fn create_legacy_download(
        &self,
        client: &Client,
        b: &DownloadConfigBuilder,
    ) -> Result<TaskId> {
        self.check_open()?;
        let cfg = validate_legacy_download(b, &client.cleartext, &client.sandbox)?;
        let target = cfg.target.clone();
        match target.symlink_metadata() {
            Ok(m) if m.is_dir() => {
                return Err(Error::new(
                    Code::FileIo,
                    format!("target {} is a directory", target.display()),
                ));
            }
            Ok(_) => {
                return Err(Error::new(
                    Code::FilePath,
                    format!("file {} already exists", target.display()),
                ));
            }
            Err(_) => {}
        }
        self.admit(
            client,
            cfg,
            |reg| {
                if let Some(other) = reg.index.owner_of(&target) {
                    return Err(Error::new(
                        Code::FilePath,
                        format!(
                            "file {} is already being downloaded by task {other}",
                            target.display(),
                        ),
                    ));
                }
                Ok(())
            },
            || prepare_dir(&target),
        )
    }

    /// `request.upload` / `uploadFile`: checks the config (401), the files (13400002 if one is
    /// missing or a directory), INTERNET (201) and the task limit (21900004), then creates the
    /// task and starts it.
    pub fn create_legacy_upload(&self, client: &Client, b: &UploadConfigBuilder) -> Result<TaskId> {
        self.check_open()?;
        let resolver: Option<UriResolver<'_>> =
            client.resolver.as_deref().map(|r| r as UriResolver<'_>);
        let cfg = validate_legacy_upload(b, &client.cleartext, &client.sandbox, resolver)?;
        self.admit(client, cfg, |_| Ok(()), || Ok(()))
    }

    /// The common tail of every create: INTERNET, conflicts (`check`, under the registry
    /// lock), the live-task limit, `prepare` (the only step that touches the disk), then the
    /// task's row is committed and the task started. A legacy task is started as part of its
    /// creation, so a row that is still INITIALIZED after a crash is restored as WAITING. On
    /// success one handle on the task is already open in the event hub: the caller adopts
    /// it.
    ///
    /// The disk work runs between two short holds of the registry lock, with the task booked
    /// in the first: a create's commit must not hold up every other task's reports (the
    /// engine's above all), which all take that lock. A check that fails while other creates
    /// are in flight is made once more after they end, since one may give back what this
    /// one needs; a lookup of a booked task waits for its create the same way.
    fn admit(
        &self,
        client: &Client,
        mut cfg: TaskConfig,
        check: impl Fn(&super::Registry) -> Result<()>,
        prepare: impl FnOnce() -> Result<()>,
    ) -> Result<TaskId> {
        if !client.has(PERMISSION_INTERNET) {
            return Err(Error::new(
                Code::Permission,
                format!("{PERMISSION_INTERNET} is required"),
            ));
        }
        cfg.ca_file = client
            .ca_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rec = {
            let mut reg = self.reg.lock();
            let mut waited = false;
            loop {
                match check(&reg).and_then(|()| self.check_live_limit(&reg, client.uid, cfg.mode)) {
                    Ok(()) => break,
                    // A create in flight may give back what this one needs (its target, a
                    // place under the limit): judge again once those have ended.
                    Err(_) if !waited && !reg.creating.is_empty() => {
                        let pending: Vec<TaskId> = reg.creating.iter().copied().collect();
                        reg = self.reg.wait_for_creates(reg, &pending);
                        waited = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            let rec = TaskRecord::new(
                Self::new_task_id(&reg),
                client.uid,
                &client.bundle,
                cfg,
                now_ms(),
            );
            self.reserve(&mut reg, &rec);
            rec
        };
        let booking = Booking {
            inner: self,
            rec: &rec,
        };
        // The caller may be killed the moment this returns: the row must be committed.
        prepare()?;
        self.store.creator().insert(&rec).map_err(|e| {
            Error::new(
                Code::Service,
                format!("the task store could not save the task: {e}"),
            )
        })?;
        std::mem::forget(booking);
        let mut reg = self.reg.lock();
        let id = rec.id;
        self.adopt(&mut reg, rec);
        // Started in the same step: from here the task exists (its row is committed),
        // also if the service is shutting down meanwhile; it then runs at the next start.
        self.set_state(&mut reg, id, State::Waiting, Reason::RunningTaskMeetLimits);
        // The caller's handle counts from before the transfer starts, so that in poll
        // mode no event of the task is dropped while the handle is being made (see
        // EventHub::handle_opened).
        self.hub.handle_opened(id);
        self.schedule_locked(&mut reg);
        Ok(id)
    }

    pub fn legacy_mime_type(&self, client: &Client, id: TaskId) -> Result<String> {
        if !client.has(PERMISSION_INTERNET) {
            return Err(Error::new(
                Code::Permission,
                format!("{PERMISSION_INTERNET} is required"),
            ));
        }
        Ok(self.record(client, id)?.mime_type)
    }
}

/// A task booked by `admit` while its row is written; gives the booking back if the create
/// ends any other way than adopting the task (an error, or a panic).
struct Booking<'a> {
    inner: &'a Inner,
    rec: &'a TaskRecord,
}

impl Drop for Booking<'_> {
    fn drop(&mut self) {
        let mut reg = self.inner.reg.lock();
        self.inner.unreserve(&mut reg, self.rec);
    }
}

/// The longest file name Linux file systems take (bytes).
const NAME_MAX: usize = 255;

/// Creates the target's directories and checks that files can be created there: the target
/// is known to be writable before the task exists (13400001 otherwise). The part file itself
/// is made when bytes first go to disk: a file creation on the caller's thread for every
/// task was most of the cost of starting many small downloads.
fn prepare_dir(target: &std::path::Path) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        Error::new(
            Code::FileIo,
            format!("cannot {what} for {}: {e}", target.display()),
        )
    };
    // The part file beside the target needs a name too: one that does not fit fails here
    // (13400001, as the reference has it for a name too long) rather than mid-download.
    let part = crate::task::part_path_of(target);
    if part.file_name().is_some_and(|n| n.len() > NAME_MAX) {
        return Err(Error::new(
            Code::FileIo,
            format!(
                "cannot create {}: its name is longer than {} bytes",
                target.display(),
                NAME_MAX - (part.as_os_str().len() - target.as_os_str().len()),
            ),
        ));
    }
    let Some(dir) = target.parent() else {
        return Ok(());
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory", e))?;
    }
    let c_dir = super::finalize::c_path(dir).map_err(|e| io("use the directory", e))?;
    // SAFETY: a valid NUL-terminated path. AT_EACCESS: the effective ids, as open() uses.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_dir.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if rc != 0 {
        return Err(io(
            "create files in the directory",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The legacy `DownloadInfo` of a task (reference C.14).
pub fn legacy_info(rec: &TaskRecord) -> DownloadInfo {
    let target = &rec.config.target;
    DownloadInfo {
        download_id: rec.id,
        failed_reason: if rec.state == State::Failed {
            legacy_fail_code(rec.reason)
        } else {
            -1
        },
        file_name: target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_path: target.to_string_lossy().into_owned(),
        paused_reason: legacy_paused_reason(rec.state, rec.reason),
        status: legacy_status(rec.state),
        target_uri: rec.config.url.clone(),
        download_title: rec.config.title.clone(),
        download_total_bytes: rec.progress.sizes.first().copied().unwrap_or(-1),
        description: rec.config.description.clone(),
        downloaded_bytes: rec.progress.processed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{CleartextPolicy, Sandbox};
    use crate::service::{Service, ServiceOptions};
    use crate::testing::TempDir;
    use std::sync::Arc;

    fn client(cache: &std::path::Path) -> Client {
        Client::new(
            20010001,
            "com.example".into(),
            false,
            [PERMISSION_INTERNET.to_string()].into(),
            Sandbox::new(cache, None, &[]).unwrap(),
            CleartextPolicy {
                base_permitted: true,
                domains: Vec::new(),
            },
            None,
        )
    }

    fn config(name: &str) -> DownloadConfigBuilder {
        DownloadConfigBuilder {
            // Nothing listens on port 1: the runs fail at once, only the creates matter.
            url: Some("http://127.0.0.1:1/f".into()),
            file_path: Some(name.into()),
            ..Default::default()
        }
    }

    /// A target whose part file's name would be too long fails at the create with
    /// 13400001 and leaves nothing behind; one byte shorter is created.
    #[test]
    fn a_name_too_long_for_its_part_file_fails_at_create() {
        let dir = TempDir::new("legacy-name");
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let client = client(&dir.join("cache"));
        let longest = NAME_MAX - ".ohreq-part".len();
        let e = svc
            .inner
            .create_legacy_download(&client, &config(&"n".repeat(longest + 1)))
            .unwrap_err();
        assert_eq!(e.code, Code::FileIo, "{}", e.detail);
        assert!(e.detail.contains("longer than 244 bytes"), "{}", e.detail);
        assert_eq!(std::fs::read_dir(dir.join("cache")).unwrap().count(), 0);
        assert!(
            svc.inner
                .create_legacy_download(&client, &config(&"n".repeat(longest)))
                .is_ok()
        );
    }

    /// A target that names a sandbox root ("." or the cache dir's own path) is a directory:
    /// 13400001 (reference B.6), not 401, and nothing is created.
    #[test]
    fn a_root_as_the_target_is_a_directory() {
        let dir = TempDir::new("legacy-root");
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let client = client(&dir.join("cache"));
        let root = client.sandbox.cache_dir().to_string_lossy().into_owned();
        for name in [".", "sub/..", root.as_str()] {
            let e = svc
                .inner
                .create_legacy_download(&client, &config(name))
                .unwrap_err();
            assert_eq!(e.code, Code::FileIo, "{name}: {}", e.detail);
            assert!(e.detail.contains("is a directory"), "{}", e.detail);
        }
        assert_eq!(std::fs::read_dir(dir.join("cache")).unwrap().count(), 0);
    }

    /// Creates write their rows without the registry lock, with the task booked: of
    /// concurrent creates for one target exactly one gets it, a create or a lookup that
    /// meets a booking waits for its create to end, and a create that fails on the disk
    /// gives its booking back (id, target, live count).
    #[test]
    fn creates_book_their_target_and_give_it_back_on_failure() {
        let dir = TempDir::new("legacy-book");
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        let svc = Service::new(ServiceOptions::new(dir.join("data"))).unwrap();
        let inner = svc.inner.clone();
        let client = Arc::new(client(&dir.join("cache")));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (inner, client) = (inner.clone(), client.clone());
                std::thread::spawn(move || {
                    inner.create_legacy_download(&client, &config("same.bin"))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.code, Code::FilePath, "{}", e.detail);
            }
        }

        // A create that meets a booked target (its create is writing the row) waits for
        // that create: taken if it succeeds, free if it gives the booking back.
        let booked = |name: &str, id| {
            let cfg = validate_legacy_download(&config(name), &client.cleartext, &client.sandbox)
                .unwrap();
            let rec = TaskRecord::new(id, client.uid, &client.bundle, cfg, now_ms());
            inner.reserve(&mut inner.reg.lock(), &rec);
            rec
        };
        for (name, id, adopted) in [("given-back.bin", 77, false), ("adopted.bin", 78, true)] {
            let rec = booked(name, id);
            let ends = {
                let inner = inner.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    let mut reg = inner.reg.lock();
                    if adopted {
                        inner.adopt(&mut reg, rec);
                    } else {
                        inner.unreserve(&mut reg, &rec);
                    }
                })
            };
            let got = inner.create_legacy_download(&client, &config(name));
            ends.join().unwrap();
            match got {
                Ok(_) => assert!(!adopted, "{name}: created over a task that exists"),
                Err(e) => {
                    assert!(adopted, "{name}: {}", e.detail);
                    assert_eq!(e.code, Code::FilePath, "{}", e.detail);
                }
            }
        }

        // A task found (by a search, say) while its create writes the row is there once the
        // create ends.
        let rec = booked("found.bin", 79);
        inner.store.creator().insert(&rec).unwrap();
        let adopt = {
            let inner = inner.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                inner.adopt(&mut inner.reg.lock(), rec);
            })
        };
        assert_eq!(inner.record(&client, 79).unwrap().id, 79);
        adopt.join().unwrap();

        // "sub" is a file, so the target's directory cannot be made.
        std::fs::write(dir.join("cache/sub"), "").unwrap();
        let live = |inner: &Inner| inner.reg.lock().live.get(&client.uid).copied();
        let ids = inner.reg.lock().ids.len();
        let live_before = live(&inner);
        let err = inner
            .create_legacy_download(&client, &config("sub/x.bin"))
            .unwrap_err();
        assert_eq!(err.code, Code::FileIo, "{}", err.detail);
        let reg = inner.reg.lock();
        assert_eq!(reg.ids.len(), ids);
        assert!(reg.creating.is_empty());
        assert_eq!(reg.index.owner_of(&dir.join("cache/sub/x.bin")), None);
        drop(reg);
        assert_eq!(live(&inner), live_before);
        inner
            .create_legacy_download(&client, &config("sub2/x.bin"))
            .unwrap();
    }
}
