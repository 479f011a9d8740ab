//! Link arguments for a Node addon (napi symbols resolved by the host process at load time).
fn main() {
    napi_build::setup();
}
