//! Helpers shared by the unit tests.

use std::path::{Path, PathBuf};

/// An empty directory of one test's own under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `name` tells the tests apart; the process id, concurrent runs.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ohreq-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
