//! The legacy `UploadConfig` (seed "UploadConfig", "File", "RequestData"; reference A.2, B.3):
//! builder and checks.

use super::{TaskConfig, UploadFile};
use crate::error::{Code, Error, Result};
use crate::sandbox::{CleartextPolicy, Sandbox};
use crate::task::{Action, Version};
use std::path::PathBuf;

/// One `File` entry as the caller gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileEntry {
    pub filename: String,
    pub name: String,
    pub uri: String,
    pub content_type: String,
}

/// What the caller set; nothing is checked until `validate_legacy_upload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadConfigBuilder {
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    pub method: String,
    pub files: Vec<FileEntry>,
    pub data: Vec<(String, String)>,
    pub index: i64,
    pub begins: i64,
    pub ends: i64,
    pub limits: super::Limits,
}

impl Default for UploadConfigBuilder {
    fn default() -> Self {
        UploadConfigBuilder {
            url: None,
            headers: Vec::new(),
            method: "POST".into(),
            files: Vec::new(),
            data: Vec::new(),
            index: 0,
            begins: 0,
            ends: -1,
            limits: super::Limits::default(),
        }
    }
}

/// Resolves a `dataability://` URI to a readable path (the embedder's hook); `None` when it
/// cannot.
pub type UriResolver<'a> = &'a dyn Fn(&str) -> Option<PathBuf>;

/// Checks a legacy upload config in the reference's order (url, files, index, then the
/// files on disk) and resolves every file. 401 for bad fields; 13400002 for a file that is
/// missing or a directory. Touches no file.
pub fn validate_legacy_upload(
    b: &UploadConfigBuilder,
    policy: &CleartextPolicy,
    sandbox: &Sandbox,
    resolver: Option<UriResolver<'_>>,
) -> Result<TaskConfig> {
    let url = super::check_request(b.url.as_deref(), &b.headers, policy)?;
    if b.files.is_empty() {
        return Err(Error::param("files must hold at least one file"));
    }
    if b.index < 0 || b.index as u64 >= b.files.len() as u64 {
        return Err(Error::param(format!(
            "index {} is not below the number of files ({})",
            b.index,
            b.files.len()
        )));
    }
    b.limits.check()?;
    // Sandbox paths first (401), then what the resolver makes of dataability URIs and
    // whether the files exist (13400002): a syntax error anywhere wins over a missing file.
    let mut local = Vec::with_capacity(b.files.len());
    for f in &b.files {
        let is_data = f.uri.starts_with(DATAABILITY);
        local.push(if is_data {
            None
        } else {
            Some(sandbox.resolve_legacy_upload(&f.uri)?)
        });
    }
    let mut files = Vec::with_capacity(b.files.len());
    for (f, path) in b.files.iter().zip(local) {
        let path = match path {
            Some(p) => p,
            None => resolve_dataability(&f.uri, resolver)?,
        };
        files.push((f, path));
    }
    let mut out = Vec::with_capacity(files.len());
    for (f, path) in files {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::new(
                    Code::FilePath,
                    format!("{} is not a regular file", f.uri),
                ));
            }
            Err(e) => {
                return Err(Error::new(
                    Code::FilePath,
                    format!("cannot read {}: {e}", f.uri),
                ));
            }
        }
        let last = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let filename = if f.filename.is_empty() {
            last
        } else {
            f.filename.clone()
        };
        out.push(UploadFile {
            name: if f.name.is_empty() {
                "file".into()
            } else {
                f.name.clone()
            },
            content_type: if f.content_type.is_empty() {
                crate::engine::mime_from_name(&filename).into()
            } else {
                f.content_type.clone()
            },
            filename,
            path,
        });
    }
    let mut c = TaskConfig::defaults(Action::Upload, Version::Api9);
    c.url = url.to_owned();
    c.headers = b.headers.clone();
    // Only POST and PUT; anything else silently becomes POST (reference A.2).
    c.method = if b.method.eq_ignore_ascii_case("PUT") {
        "PUT".into()
    } else {
        "POST".into()
    };
    c.multipart = c.method == "POST";
    c.files = out;
    c.form = b.data.clone();
    c.index = b.index as u32;
    c.begins = b.begins.max(0) as u64;
    c.ends = b.ends;
    b.limits.apply(&mut c);
    Ok(c)
}

const DATAABILITY: &str = "dataability://";

fn resolve_dataability(uri: &str, resolver: Option<UriResolver<'_>>) -> Result<PathBuf> {
    let r = resolver.ok_or_else(|| {
        Error::new(
            Code::FilePath,
            format!("{uri}: no dataability resolver is registered"),
        )
    })?;
    r(uri).ok_or_else(|| Error::new(Code::FilePath, format!("{uri} could not be resolved")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Sandbox, PathBuf) {
        let dir = std::env::temp_dir().join(format!("ohreq-up-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"hello").unwrap();
        (
            Sandbox::new(&dir, None, &[]).unwrap(),
            dir.canonicalize().unwrap(),
        )
    }

    fn file(uri: &str) -> FileEntry {
        FileEntry {
            uri: uri.into(),
            ..Default::default()
        }
    }

    fn builder(files: Vec<FileEntry>) -> UploadConfigBuilder {
        UploadConfigBuilder {
            url: Some("https://h/up".into()),
            files,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_coercions() {
        let (s, d) = setup();
        let p = CleartextPolicy::default();
        let mut b = builder(vec![file("internal://cache/a.txt")]);
        b.method = "delete".into();
        b.begins = -5;
        let c = validate_legacy_upload(&b, &p, &s, None).unwrap();
        assert_eq!(c.method, "POST");
        assert!(c.multipart);
        assert_eq!(c.begins, 0);
        assert_eq!(c.ends, -1);
        assert_eq!(c.files[0].path, d.join("a.txt"));
        assert_eq!(c.files[0].name, "file");
        assert_eq!(c.files[0].filename, "a.txt");
        assert_eq!(c.files[0].content_type, "text/plain");
        b.method = "put".into();
        let c = validate_legacy_upload(&b, &p, &s, None).unwrap();
        assert_eq!(c.method, "PUT");
        assert!(!c.multipart);
    }

    #[test]
    fn errors_in_order() {
        let (s, _) = setup();
        let p = CleartextPolicy::default();
        let code =
            |b: &UploadConfigBuilder| validate_legacy_upload(b, &p, &s, None).unwrap_err().code;
        assert_eq!(code(&builder(vec![])), Code::Param);
        let mut b = builder(vec![file("a.txt")]);
        b.index = 1;
        assert_eq!(code(&b), Code::Param);
        b.index = -1;
        assert_eq!(code(&b), Code::Param);
        assert_eq!(code(&builder(vec![file("missing.txt")])), Code::FilePath);
        assert_eq!(code(&builder(vec![file("sub")])), Code::FilePath);
        assert_eq!(code(&builder(vec![file("../x")])), Code::Param);
        assert_eq!(code(&builder(vec![file("")])), Code::Param);
        // A syntax error in a later file wins over a missing earlier one.
        assert_eq!(
            code(&builder(vec![file("missing.txt"), file("../x")])),
            Code::Param
        );
        assert_eq!(
            code(&builder(vec![file("dataability:///x")])),
            Code::FilePath
        );
        let mut b = builder(vec![file("a.txt")]);
        b.url = Some("ftp://x".into());
        b.files.clear();
        assert_eq!(code(&b), Code::Param);
    }

    #[test]
    fn resolver_hook() {
        let (s, d) = setup();
        let p = CleartextPolicy::default();
        let target = d.join("a.txt");
        let r = move |u: &str| (u == "dataability:///ok").then(|| target.clone());
        let b = builder(vec![file("dataability:///ok")]);
        assert_eq!(
            validate_legacy_upload(&b, &p, &s, Some(&r)).unwrap().files[0].path,
            d.join("a.txt")
        );
        let b = builder(vec![file("dataability:///nope")]);
        assert_eq!(
            validate_legacy_upload(&b, &p, &s, Some(&r))
                .unwrap_err()
                .code,
            Code::FilePath
        );
    }
}
