//! Where a client's files may live and which URLs it may use: path and URI resolution inside
//! the client's roots (reference B.3) and the cleartext policy (B.4).

mod url;

#[cfg(test)]
pub(crate) use url::URL_MAX_BYTES;
pub use url::{CleartextPolicy, DomainRule, check_url, last_url_segment, url_host, wire_url};

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// The directories a client owns. Every path a task reads or writes must lie inside one.
#[derive(Clone, Debug)]
pub struct Sandbox {
    cache_dir: PathBuf,
    files_dir: Option<PathBuf>,
    /// All roots (cache, files and any extra base dirs), canonical.
    roots: Vec<PathBuf>,
}

const INTERNAL_CACHE: &str = "internal://cache/";

impl Sandbox {
    /// Builds a sandbox from existing directories; each is canonicalized so that symlinked
    /// roots still compare correctly.
    pub fn new(
        cache_dir: &Path,
        files_dir: Option<&Path>,
        base_dirs: &[PathBuf],
    ) -> Result<Sandbox> {
        let canon = |what: &str, p: &Path| -> Result<PathBuf> {
            if !p.is_absolute() {
                return Err(Error::param(format!(
                    "{what} must be an absolute path: {}",
                    p.display()
                )));
            }
            let c = p
                .canonicalize()
                .map_err(|e| Error::param(format!("{what} {} is not usable: {e}", p.display())))?;
            if !c.is_dir() {
                return Err(Error::param(format!(
                    "{what} {} is not a directory",
                    p.display()
                )));
            }
            Ok(c)
        };
        let cache_dir = canon("cache dir", cache_dir)?;
        let files_dir = files_dir.map(|p| canon("files dir", p)).transpose()?;
        let mut roots = vec![cache_dir.clone()];
        roots.extend(files_dir.clone());
        for b in base_dirs {
            roots.push(canon("base dir", b)?);
        }
        Ok(Sandbox {
            cache_dir,
            files_dir,
            roots,
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn files_dir(&self) -> Option<&Path> {
        self.files_dir.as_deref()
    }

    /// Resolves a legacy `DownloadConfig.filePath` (seed + reference B.3):
    /// none/"" → cache dir + last URL segment; `internal://cache/x` and relative names → cache
    /// dir; a trailing "/" names a directory for the URL's file name; absolute paths must lie
    /// in the client's roots. Nothing is created here.
    pub fn resolve_legacy_download(&self, file_path: Option<&str>, url: &str) -> Result<PathBuf> {
        let raw = file_path.unwrap_or("").trim();
        let url_name = || {
            last_url_segment(url).ok_or_else(|| {
                Error::param("cannot derive a file name from the url: its path ends with '/'")
            })
        };
        let path = if raw.is_empty() {
            self.cache_dir.join(url_name()?)
        } else if raw.starts_with('/') {
            normalize_absolute(raw)?
        } else {
            let rel = raw.strip_prefix(INTERNAL_CACHE).unwrap_or(raw);
            if rel.is_empty() || rel.ends_with('/') {
                let dir = join_relative(&self.cache_dir, rel)?;
                dir.join(url_name()?)
            } else {
                join_relative(&self.cache_dir, rel)?
            }
        };
        self.check_inside(&path)?;
        Ok(path)
    }

    /// Resolves a legacy upload `File.uri`: `internal://cache/<name>` or a bare name, both in
    /// the cache dir (reference B.3).
    pub fn resolve_legacy_upload(&self, uri: &str) -> Result<PathBuf> {
        let rel = uri.strip_prefix(INTERNAL_CACHE).unwrap_or(uri);
        if rel.trim().is_empty() {
            return Err(Error::param("file uri names no file"));
        }
        let path = join_relative(&self.cache_dir, rel)?;
        self.check_inside(&path)?;
        Ok(path)
    }

    /// Fails with 401 unless `path` (absolute, normalized) lies inside a root, both lexically
    /// and after resolving the symlinks of its deepest existing ancestor.
    pub fn check_inside(&self, path: &Path) -> Result<()> {
        let outside = || {
            Error::param(format!(
                "path {} is outside the app's sandbox",
                path.display()
            ))
        };
        if !self.roots.iter().any(|r| path.starts_with(r)) {
            return Err(outside());
        }
        // A root itself is inside: it is a directory, which the caller's file checks refuse
        // with their own code (13400001 for a download target, reference B.6).
        if self.roots.iter().any(|r| path == r.as_path()) {
            return Ok(());
        }
        // A symlinked directory inside a root must not lead out of it.
        let mut existing = path.parent();
        while let Some(p) = existing {
            if p.exists() {
                let real = p.canonicalize().map_err(|_| outside())?;
                if !self.roots.iter().any(|r| real.starts_with(r)) {
                    return Err(outside());
                }
                break;
            }
            existing = p.parent();
        }
        Ok(())
    }
}

/// Lexical normalization of an absolute path: "." dropped, ".." pops, "//" collapsed;
/// ".." above the root is an error (401).
pub fn normalize_absolute(raw: &str) -> Result<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in Path::new(raw).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(Error::param(format!("path {raw} climbs above the root")));
                }
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => {
                return Err(Error::param(format!("path {raw} is not supported")));
            }
        }
    }
    Ok(out)
}

/// Joins a relative path under `base`, refusing ".." that would leave `base`.
fn join_relative(base: &Path, rel: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(Error::param(format!("path {rel} escapes the cache dir")));
                }
                depth -= 1;
                out.pop();
            }
            Component::Normal(n) => {
                depth += 1;
                out.push(n);
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::param(format!("path {rel} is not relative")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (Sandbox, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "ohreq-sbx-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        std::fs::create_dir_all(dir.join("files")).unwrap();
        let s = Sandbox::new(&dir.join("cache"), Some(&dir.join("files")), &[]).unwrap();
        (s, dir.canonicalize().unwrap())
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn default_target_is_cache_dir_plus_url_name() {
        let (s, d) = sandbox();
        let p = s
            .resolve_legacy_download(None, "http://h/a/b.bin?x=1")
            .unwrap();
        assert_eq!(p, d.join("cache/b.bin"));
        assert_eq!(
            s.resolve_legacy_download(Some(""), "http://h/x").unwrap(),
            d.join("cache/x")
        );
        let e = s
            .resolve_legacy_download(None, "http://h/dir/")
            .unwrap_err();
        assert_eq!(e.code, crate::error::Code::Param);
    }

    #[test]
    fn relative_and_internal_paths_land_in_cache() {
        let (s, d) = sandbox();
        let u = "https://h/f.txt";
        assert_eq!(
            s.resolve_legacy_download(Some("test.txt"), u).unwrap(),
            d.join("cache/test.txt")
        );
        assert_eq!(
            s.resolve_legacy_download(Some("workspace/test.txt"), u)
                .unwrap(),
            d.join("cache/workspace/test.txt")
        );
        assert_eq!(
            s.resolve_legacy_download(Some("workspace/"), u).unwrap(),
            d.join("cache/workspace/f.txt")
        );
        assert_eq!(
            s.resolve_legacy_download(Some("internal://cache/a/b.txt"), u)
                .unwrap(),
            d.join("cache/a/b.txt")
        );
        assert_eq!(
            s.resolve_legacy_download(Some("./a/../b.txt"), u).unwrap(),
            d.join("cache/b.txt")
        );
    }

    #[test]
    fn escapes_are_refused() {
        let (s, d) = sandbox();
        let u = "https://h/f.txt";
        for bad in [
            "../x",
            "a/../../x",
            "internal://cache/../x",
            "/etc/passwd",
            "/../x",
        ] {
            let e = s.resolve_legacy_download(Some(bad), u).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Param, "{bad}");
        }
        let inside = format!("{}/files/./sub//x.bin", d.display());
        assert_eq!(
            s.resolve_legacy_download(Some(&inside), u).unwrap(),
            d.join("files/sub/x.bin")
        );
        let up = format!("{}/files/../cache/x", d.display());
        assert_eq!(
            s.resolve_legacy_download(Some(&up), u).unwrap(),
            d.join("cache/x")
        );
        // A root resolves to itself (in the sandbox): the create then refuses the directory.
        let root = format!("{}/cache", d.display());
        assert_eq!(
            s.resolve_legacy_download(Some(&root), u).unwrap(),
            d.join("cache")
        );
        assert_eq!(
            s.resolve_legacy_download(Some("."), u).unwrap(),
            d.join("cache")
        );
    }

    #[test]
    fn symlink_out_of_the_sandbox_is_refused() {
        let (s, d) = sandbox();
        std::os::unix::fs::symlink("/tmp", d.join("cache/out")).unwrap();
        let e = s
            .resolve_legacy_download(Some("out/x.bin"), "https://h/f")
            .unwrap_err();
        assert_eq!(e.code, crate::error::Code::Param);
    }

    #[test]
    fn normalize_absolute_rules() {
        assert_eq!(
            normalize_absolute("/a/./b//c/../d").unwrap(),
            PathBuf::from("/a/b/d")
        );
        assert!(normalize_absolute("/a/../../b").is_err());
    }
}
