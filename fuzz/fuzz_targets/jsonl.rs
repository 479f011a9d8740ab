//! One line of a JSONL import (`sqlite-vector import --jsonl`): the CLI's own line parser,
//! compiled from `crates/cli/src/import.rs` (the CLI is a binary crate), with the default field
//! names. An item the parser accepts is inserted into a fresh in-memory shard (dimension 3);
//! the shard may refuse it with an error, never panic, and must give back what it stored.
#![no_main]

use std::sync::OnceLock;

use clap::{Args, FromArgMatches};
use libfuzzer_sys::fuzz_target;
use sqlite_vector::{Metric, Profile, SearchParams, Shard};

/// What `import.rs` takes from the CLI's `main.rs`: its failure type and the user-error helper.
#[allow(dead_code)]
pub(crate) struct Failure {
    msg: String,
    user: bool,
}

impl From<sqlite_vector::Error> for Failure {
    fn from(e: sqlite_vector::Error) -> Self {
        Failure {
            user: e.is_user_error(),
            msg: e.to_string(),
        }
    }
}

impl From<sqlite_vector_dataset::DatasetError> for Failure {
    fn from(e: sqlite_vector_dataset::DatasetError) -> Self {
        Failure {
            user: true,
            msg: e.to_string(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure {
            user: false,
            msg: e.to_string(),
        }
    }
}

impl Failure {
    fn context(self, context: impl std::fmt::Display) -> Failure {
        Failure {
            msg: format!("{context}: {}", self.msg),
            user: self.user,
        }
    }

    fn is_user(&self) -> bool {
        self.user
    }
}

/// The CLI's path checks (used by the import command, not by the line parser fuzzed here).
pub(crate) fn existing_file(path: &std::path::Path) -> CliResult {
    std::fs::metadata(path).map(drop).map_err(Failure::from)
}

/// The CLI's shard opener (used by the import command, not by the line parser fuzzed here).
pub(crate) fn open_shard(path: &std::path::Path) -> CliResult<Shard> {
    Ok(Shard::open(path)?)
}

pub(crate) fn user(msg: impl Into<String>) -> Failure {
    Failure {
        msg: msg.into(),
        user: true,
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

/// The CLI's shard argument (PATH or `--root`/`--shard` there; a file here): used by the import
/// command, not by the line parser fuzzed here.
#[derive(clap::Args)]
pub(crate) struct ShardArg {
    /// Shard file.
    path: Option<std::path::PathBuf>,
}

/// An opened shard that prints as its path, as the CLI's handle does.
pub(crate) struct Opened(Shard, String);

impl std::ops::Deref for Opened {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.0
    }
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl ShardArg {
    pub(crate) fn open(&self) -> CliResult<Opened> {
        let path = self
            .path
            .as_ref()
            .ok_or_else(|| user("give a shard file"))?;
        Ok(Opened(open_shard(path)?, path.display().to_string()))
    }
}

#[allow(dead_code)]
#[path = "../../crates/cli/src/import.rs"]
mod import;

fn args() -> &'static import::ImportArgs {
    static ARGS: OnceLock<import::ImportArgs> = OnceLock::new();
    ARGS.get_or_init(|| {
        let cmd = import::ImportArgs::augment_args(clap::Command::new("import"));
        let matches = cmd
            .try_get_matches_from(["import", "fuzz.db"])
            .expect("default import arguments");
        import::ImportArgs::from_arg_matches(&matches).expect("import arguments")
    })
}

fuzz_target!(|line: &str| {
    // Without a vector field required (the `--npy` + `--jsonl` form) only for the parse.
    let _ = import::item_from_line(args(), line, 1, false);
    let Ok(item) = import::item_from_line(args(), line, 1, true) else {
        return;
    };
    let shard = Shard::in_memory(&Profile::new(3, Metric::Cosine)).expect("in-memory shard");
    let text = item.text.clone();
    let Ok(id) = shard.upsert(item) else {
        return;
    };
    let stored = shard
        .get(&id)
        .expect("an acknowledged item can be read back");
    assert_eq!(stored.id, id);
    assert_eq!(stored.text, text);
    assert!(stored.metadata.is_object(), "{:?}", stored.metadata);
    let hits = shard
        .search(&[1.0, 0.5, -0.25], &SearchParams::k(3))
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].score.is_finite(), "{hits:?}");
});
