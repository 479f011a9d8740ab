//! The wall clock on wasm32-unknown-unknown, which has no system clock: JavaScript's
//! `Date.now()`.

/// A [`sqlite_vector::Clock`] reading `Date.now()` (Unix milliseconds).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsClock;

impl sqlite_vector::Clock for JsClock {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}
