//! sqlite-vector as a WebAssembly module (wasm-bindgen, `wasm32-unknown-unknown`).
//!
//! The JS package `sqlite-vector` (npm/sqlite-vector) wraps this module; its hand-written
//! `index.d.ts` is the public API. Here every value crossing the boundary is a plain one:
//! vectors as `Float32Array` (`&[f32]`, copied into wasm memory), options and results as JSON
//! text, with the semantics of `sqlite-vector-jsapi` (shared with the Node addon). Errors are
//! thrown as JS `Error`s carrying the core's message and a `kind` property (the core's
//! `ErrorKind` name: `InvalidInput`, `NotFound`, `AlreadyExists`, …).
//!
//! On every other target this crate is empty, so native workspace builds are unaffected.

#![warn(missing_docs)]

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod clock;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod db;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod opfs;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod panic;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use db::{sqlite_version, Db};
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use opfs::{import_opfs, open_opfs};
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use panic::{last_panic, test_panic};
