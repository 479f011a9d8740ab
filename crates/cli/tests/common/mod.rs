//! Helpers shared by the CLI's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::Path;

/// Every file and directory under `dir` (relative paths), to show a command left it as it was.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Reports a test that cannot run here. libtest hides what a passing test prints, so the
/// notice goes straight to the process's stderr, where `cargo test` shows it. Under `CI=true`
/// (any value but empty, `0` or `false`) a skip is a failure: CI must provide what it needs.
pub fn skip(test: &str, why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    if ci {
        panic!("{test} cannot be skipped under CI=true: {why}");
    }
    let notice = format!("SKIPPED {test}: {why}\n");
    // Best effort: a notice that cannot be written changes nothing about the result.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
}
