//! `ohreq_client`: one calling application (identity, permissions, sandbox, network security).

use super::error::ohreq_code;
use super::handle::{Castable, check_out, into_raw, take, try_mut, try_ref, try_str};
use super::service::ohreq_service;
use super::service::ohreq_userdata_free;
use crate::error::{Error, Result};
use crate::sandbox::{CleartextPolicy, DomainRule, Sandbox};
use crate::service::{Client, Inner};
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;

/// A description of a calling application for `ohreq_client_new`. Methods: `_new`,
/// `_set_uid`, `_set_bundle`, `_set_system_app`, `_add_permission`, `_set_cache_dir`,
/// `_set_files_dir`, `_add_base_dir`, `_set_cleartext_permitted`, `_add_cleartext_domain`,
/// `_set_ca_file`, `_free`. Not thread-safe: use from one thread at a time.
pub struct ohreq_client_options {
    _private: [u8; 0],
}

/// A calling application bound to a service. Every task it creates belongs to its uid.
/// Thread-safe; `ohreq_client_free` must not race other calls on the same client.
pub struct ohreq_client {
    _private: [u8; 0],
}

#[derive(Default)]
pub(crate) struct ClientOptions {
    uid: Option<u64>,
    bundle: String,
    system_app: bool,
    permissions: HashSet<String>,
    cache_dir: Option<PathBuf>,
    files_dir: Option<PathBuf>,
    base_dirs: Vec<PathBuf>,
    cleartext: CleartextPolicy,
    ca_file: Option<PathBuf>,
    resolver: Option<Arc<CResolver>>,
}

/// Resolves a `dataability://` URI for uploads: write a NUL-terminated path of a readable
/// file into `path_buf` (`path_len` bytes) and return 0, or return any other value when the
/// URI cannot be resolved (the upload then fails with 13400002). Called on the thread that
/// calls `ohreq_upload`, inside that call; must not call back into the library.
pub type ohreq_uri_resolver = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        uri: *const c_char,
        path_buf: *mut c_char,
        path_len: usize,
    ) -> ohreq_code,
>;

struct CResolver {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_char, usize) -> ohreq_code,
    userdata: *mut c_void,
    free: ohreq_userdata_free,
}

// SAFETY: the callback's documentation makes it callable from the threads that call
// ohreq_upload; its userdata is the embedder's to protect.
unsafe impl Send for CResolver {}
unsafe impl Sync for CResolver {}

impl CResolver {
    fn resolve(&self, uri: &str) -> Option<PathBuf> {
        let uri = CString::new(uri).ok()?;
        let mut buf = vec![0 as c_char; 4096];
        // SAFETY: the embedder's callback with a NUL-terminated uri and a buffer of the stated size.
        let rc = unsafe { (self.cb)(self.userdata, uri.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: the contract says the callback wrote a NUL-terminated string into `buf`.
        let path = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().ok()?;
        (!path.is_empty()).then(|| PathBuf::from(path))
    }
}

impl Drop for CResolver {
    fn drop(&mut self) {
        if let Some(f) = self.free {
            // SAFETY: released exactly once, after the last call.
            unsafe { f(self.userdata) };
        }
    }
}

pub(crate) struct ClientData {
    pub inner: Arc<Inner>,
    pub client: Arc<Client>,
}

impl Castable for ohreq_client_options {
    type Rust = ClientOptions;
}
impl Castable for ohreq_client {
    type Rust = ClientData;
}

/// Creates an empty client description (uid and cache dir are required). Free with
/// `ohreq_client_options_free`. Never returns NULL.
#[unsafe(no_mangle)]
pub extern "C" fn ohreq_client_options_new() -> *mut ohreq_client_options {
    into_raw::<ohreq_client_options>(ClientOptions::default())
}

/// Frees a client description (NULL is a no-op).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_free(opts: *mut ohreq_client_options) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_client_options_new`.
        drop(unsafe { take(opts) });
    })
}

/// Runs `f` on the options behind `opts` (NULL → 401).
unsafe fn with_opts(
    opts: *mut ohreq_client_options,
    f: impl FnOnce(&mut ClientOptions),
) -> Result<()> {
    // SAFETY: caller contract.
    f(unsafe { try_mut(opts, "opts")? });
    Ok(())
}

/// The application's uid (account id = uid / 200000). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_uid(
    opts: *mut ohreq_client_options,
    uid: u64,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with_opts(opts, |o| o.uid = Some(uid)) } })
}

/// The application's bundle name. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_bundle(
    opts: *mut ohreq_client_options,
    bundle: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let b = unsafe { try_str(bundle, "bundle")? };
        unsafe { with_opts(opts, |o| o.bundle = b) }
    })
}

/// Whether the application is a system app (system APIs answer 202 otherwise). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_system_app(
    opts: *mut ohreq_client_options,
    system_app: bool,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with_opts(opts, |o| o.system_app = system_app) } })
}

/// Grants a permission by name, e.g. "ohos.permission.INTERNET". Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_add_permission(
    opts: *mut ohreq_client_options,
    permission: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = unsafe { try_str(permission, "permission")? };
        unsafe {
            with_opts(opts, |o| {
                o.permissions.insert(p);
            })
        }
    })
}

fn abs_path(p: String, what: &str) -> Result<PathBuf> {
    if p.starts_with('/') {
        Ok(p.into())
    } else {
        Err(Error::param(format!("{what} must be an absolute path")))
    }
}

/// The application's cache dir (`internal://cache`, the default download location). Must be
/// an existing directory when the client is created. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_cache_dir(
    opts: *mut ohreq_client_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = abs_path(unsafe { try_str(path, "path")? }, "cache dir")?;
        unsafe { with_opts(opts, |o| o.cache_dir = Some(p)) }
    })
}

/// The application's files dir (`internal://files`). Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_files_dir(
    opts: *mut ohreq_client_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = abs_path(unsafe { try_str(path, "path")? }, "files dir")?;
        unsafe { with_opts(opts, |o| o.files_dir = Some(p)) }
    })
}

/// Adds another directory the application owns (absolute paths inside it are accepted).
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_add_base_dir(
    opts: *mut ohreq_client_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = abs_path(unsafe { try_str(path, "path")? }, "base dir")?;
        unsafe { with_opts(opts, |o| o.base_dirs.push(p)) }
    })
}

/// The base cleartext rule: whether plain http:// is allowed (default false: HTTPS only).
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_cleartext_permitted(
    opts: *mut ohreq_client_options,
    permitted: bool,
) -> ohreq_code {
    // SAFETY: caller contract.
    ffi_code!({ unsafe { with_opts(opts, |o| o.cleartext.base_permitted = permitted) } })
}

/// A per-domain cleartext rule; the most specific matching rule wins over the base rule.
/// Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_add_cleartext_domain(
    opts: *mut ohreq_client_options,
    domain: *const c_char,
    permitted: bool,
    include_subdomains: bool,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let d = unsafe { try_str(domain, "domain")? };
        if d.is_empty() {
            return Err(Error::param("domain is empty"));
        }
        let rule = DomainRule {
            domain: d,
            permitted,
            include_subdomains,
        };
        unsafe { with_opts(opts, |o| o.cleartext.domains.push(rule)) }
    })
}

/// Trust anchors (PEM file) for the application's private servers; used instead of the
/// service's default bundle for this client's tasks. Returns 0 or 401 (not a readable file).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_ca_file(
    opts: *mut ohreq_client_options,
    path: *const c_char,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let p = abs_path(unsafe { try_str(path, "path")? }, "CA file")?;
        if !p.is_file() {
            return Err(Error::param(format!(
                "CA file {} is not a readable file",
                p.display()
            )));
        }
        unsafe { with_opts(opts, |o| o.ca_file = Some(p)) }
    })
}

/// Registers the resolver for `dataability://` upload URIs. `userdata_free` (may be NULL)
/// runs once, when the options and every client created from them are freed (a later call
/// replaces the resolver and releases the earlier userdata). Returns 0 or 401 (NULL opts/cb).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_options_set_uri_resolver(
    opts: *mut ohreq_client_options,
    cb: ohreq_uri_resolver,
    userdata: *mut c_void,
    userdata_free: ohreq_userdata_free,
) -> ohreq_code {
    ffi_code!({
        let cb = cb.ok_or_else(|| Error::param("cb is NULL"))?;
        let r = Arc::new(CResolver {
            cb,
            userdata,
            free: userdata_free,
        });
        // SAFETY: caller contract.
        unsafe { with_opts(opts, |o| o.resolver = Some(r)) }
    })
}

/// Creates a client of `service` from `opts` (borrowed). Free with `ohreq_client_free`.
/// Returns 0 and writes `*client_out`, or 401 (NULL, no uid, cache dir missing or not a
/// directory) or 13400003 (service shut down).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_new(
    service: *mut ohreq_service,
    opts: *const ohreq_client_options,
    client_out: *mut *mut ohreq_client,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let s = unsafe { try_ref(service, "service")? };
        let o = unsafe { try_ref(opts, "opts")? };
        unsafe { check_out(client_out, "client_out")? };
        let uid = o.uid.ok_or_else(|| Error::param("client has no uid"))?;
        let cache = o
            .cache_dir
            .as_ref()
            .ok_or_else(|| Error::param("client has no cache dir"))?;
        let sandbox = Sandbox::new(cache, o.files_dir.as_deref(), &o.base_dirs)?;
        let mut client = Client::new(
            uid,
            o.bundle.clone(),
            o.system_app,
            o.permissions.clone(),
            sandbox,
            o.cleartext.clone(),
            o.ca_file.clone(),
        );
        if let Some(r) = o.resolver.clone() {
            client.resolver = Some(Arc::new(move |uri: &str| r.resolve(uri)));
        }
        let data = ClientData {
            inner: s.svc.inner.clone(),
            client: Arc::new(client),
        };
        // SAFETY: checked non-NULL.
        unsafe { *client_out = into_raw::<ohreq_client>(data) };
        Ok(())
    })
}

/// Frees a client (NULL is a no-op). Its tasks keep running; task handles stay valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_free(client: *mut ohreq_client) {
    ffi_value!((), {
        // SAFETY: NULL or from `ohreq_client_new`.
        drop(unsafe { take(client) });
    })
}

/// Tells the service whether the application is in the foreground. Returns 0 or 401.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ohreq_client_set_foreground(
    client: *mut ohreq_client,
    foreground: bool,
) -> ohreq_code {
    ffi_code!({
        // SAFETY: caller contract.
        let c = unsafe { try_ref(client, "client")? };
        c.client.set_foreground(foreground);
        Ok(())
    })
}
