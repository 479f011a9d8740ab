//! Panics: the module is built with `panic = "abort"`, so a panic traps (`RuntimeError:
//! unreachable`) and the instance must not be used again. The hook installed at start keeps the
//! panic's message, which the JS wrapper reads with [`last_panic`] to report it.

use std::sync::Mutex;

use wasm_bindgen::prelude::*;

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs the panic hook (runs once, when the module is instantiated).
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(msg);
        }
    }));
}

/// The message of the last panic (`"panicked at <redacted>:0:0:\n<message>"`: the module is
/// built without panic locations, see npm/scripts/build-wasm.sh), or `undefined`
/// when none happened. After a panic the module's state is undefined: the JS wrapper calls this
/// once to build its error, then refuses every further call.
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|last| last.clone())
}

/// Panics with `message`: for tests of the wrapper's panic handling only (not part of the
/// package's API).
#[wasm_bindgen(js_name = __testPanic)]
pub fn test_panic(message: &str) {
    panic!("{message}");
}
