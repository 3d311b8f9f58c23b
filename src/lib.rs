//! ohreq: the OpenHarmony upload/download service (`@ohos.request`) as a library with a C ABI.
//!
//! Data flows one way: C call → `ffi` → `service` (checks) → `scheduler` → `engine`; results
//! come back as events: `engine` → `service` (state, store) → `events` → C callback.

pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod ffi;
pub mod logging;
pub mod sandbox;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod task;
#[cfg(test)]
mod testing;
mod threads;
pub mod workqueue;
