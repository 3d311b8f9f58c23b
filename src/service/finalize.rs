//! Publishing a finished download: the part file is synced and renamed onto the target, and
//! the directory synced, so the target is either absent or whole (DESIGN §6).

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub fn publish(file: &File, part: &Path, target: &Path) -> io::Result<()> {
    file.sync_all()?;
    rename_noreplace(part, target)?;
    if let Some(dir) = target.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Renames without clobbering: a file that appeared at the target meanwhile is not lost.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (f, t) = (c(from)?, c(to)?);
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
}
