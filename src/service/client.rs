//! A calling application: identity, permissions, sandbox, network-security settings.

use crate::sandbox::{CleartextPolicy, Sandbox};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) const PERMISSION_INTERNET: &str = "ohos.permission.INTERNET";
pub(crate) const PERMISSION_DOWNLOAD_SESSION_MANAGER: &str =
    "ohos.permission.DOWNLOAD_SESSION_MANAGER";

/// Every task belongs to the uid of the client that created it.
pub struct Client {
    pub uid: u64,
    pub bundle: String,
    pub system_app: bool,
    pub permissions: HashSet<String>,
    pub sandbox: Sandbox,
    pub cleartext: CleartextPolicy,
    /// Extra trust anchors (PEM) for private servers, used beside the system store.
    pub ca_file: Option<PathBuf>,
    /// The embedder's `dataability://` resolver (URI → readable path), if any.
    pub resolver: Option<Arc<ResolverFn>>,
    foreground: AtomicBool,
}

/// Resolves a `dataability://` URI to a readable path; `None` when it cannot.
pub type ResolverFn = dyn Fn(&str) -> Option<PathBuf> + Send + Sync;

impl Client {
    pub fn new(
        uid: u64,
        bundle: String,
        system_app: bool,
        permissions: HashSet<String>,
        sandbox: Sandbox,
        cleartext: CleartextPolicy,
        ca_file: Option<PathBuf>,
    ) -> Client {
        Client {
            uid,
            bundle,
            system_app,
            permissions,
            sandbox,
            cleartext,
            ca_file,
            resolver: None,
            foreground: AtomicBool::new(true),
        }
    }

    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    pub fn is_foreground(&self) -> bool {
        self.foreground.load(Ordering::SeqCst)
    }

    pub fn set_foreground(&self, fg: bool) {
        self.foreground.store(fg, Ordering::SeqCst);
    }
}
