//! `sqlite-vector import`: vectors from `.npy` (ids, metadata and text from an aligned JSONL
//! file), or JSONL lines that carry their own vector. Items are written in batches, each one
//! transaction; a bad line stops the import with its line number, and the batches committed
//! before it stay.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use sqlite_vector::{NewItem, Shard};

use crate::{user, CliResult};

/// Options of `import`.
#[derive(Args)]
pub struct ImportArgs {
    /// Shard file (created with `create`).
    path: PathBuf,
    /// Vectors, a .npy f32 array [n, dim].
    #[arg(long)]
    npy: Option<PathBuf>,
    /// JSONL: one object per item (aligned with --npy rows when both are given).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Field of a JSONL line holding the id (strings and integers are accepted).
    #[arg(long, default_value = "id")]
    id_field: String,
    /// Field holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Field holding the metadata object; when absent from a line, every other field (except id,
    /// text and vector) becomes its metadata.
    #[arg(long, default_value = "metadata")]
    metadata_field: String,
    /// Field holding the vector (JSONL-only imports).
    #[arg(long, default_value = "vector")]
    vector_field: String,
    /// Replace items whose id already exists instead of failing.
    #[arg(long)]
    upsert: bool,
    /// Items per transaction.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

pub(crate) fn item_from_line(
    args: &ImportArgs,
    line: &str,
    lineno: usize,
    need_vector: bool,
) -> CliResult<NewItem> {
    let at = |m: String| user(format!("line {lineno}: {m}"));
    let mut obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(at("expected a JSON object".into())),
        Err(e) => return Err(at(format!("malformed JSON: {e}"))),
    };
    let id = match obj.remove(&args.id_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(at(format!("{} must be a string or number", args.id_field))),
    };
    let text = match obj.remove(&args.text_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(at(format!("{} must be a string", args.text_field))),
    };
    let vector = match obj.remove(&args.vector_field) {
        Some(v) => serde_json::from_value::<Vec<f32>>(v).map_err(|e| {
            at(format!(
                "{} must be an array of numbers: {e}",
                args.vector_field
            ))
        })?,
        None if need_vector => return Err(at(format!("no {} field", args.vector_field))),
        None => Vec::new(),
    };
    let metadata = match obj.remove(&args.metadata_field) {
        Some(m) => Some(m),
        None if obj.is_empty() => None,
        None => Some(Value::Object(std::mem::replace(&mut obj, Map::new()))),
    };
    Ok(NewItem {
        id,
        vector,
        metadata,
        text,
    })
}

/// Runs the import.
pub fn run(args: ImportArgs) -> CliResult {
    if args.batch == 0 {
        return Err(user("--batch must be at least 1"));
    }
    let shard = Shard::open(&args.path)?;
    let matrix = match &args.npy {
        Some(p) => Some(sqlite_vector_dataset::read_f32(p)?),
        None => None,
    };
    let lines: Option<Box<dyn Iterator<Item = std::io::Result<String>>>> = match &args.jsonl {
        Some(p) => Some(Box::new(BufReader::new(File::open(p)?).lines())),
        None => None,
    };
    if matrix.is_none() && lines.is_none() {
        return Err(user("give --npy FILE, --jsonl FILE, or both"));
    }
    let total = matrix.as_ref().map(|m| m.rows as u64);
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items  {per_sec}  eta {eta}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(args.batch);
    let mut done = 0usize;
    let flush = |batch: &mut Vec<NewItem>, done: &mut usize| -> CliResult {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        let items = std::mem::take(batch);
        if args.upsert {
            shard.upsert_batch(items)
        } else {
            shard.insert_batch(items)
        }
        .map_err(|e| user(format!("items {}..{}: {e}", *done + 1, *done + n)))?;
        *done += n;
        bar.set_position(*done as u64);
        Ok(())
    };
    match (matrix, lines) {
        (Some(m), lines) => {
            let mut lines = lines;
            for row in 0..m.rows {
                let mut item = match lines.as_mut().map(Iterator::next) {
                    Some(Some(line)) => item_from_line(&args, &line?, row + 1, false)?,
                    Some(None) => {
                        return Err(user(format!(
                            "the JSONL file has {row} lines, the .npy has {} rows",
                            m.rows
                        )))
                    }
                    None => NewItem::default(),
                };
                if !item.vector.is_empty() {
                    return Err(user(format!(
                        "line {}: has a vector, but vectors come from --npy",
                        row + 1
                    )));
                }
                item.vector = m.row(row).to_vec();
                batch.push(item);
                if batch.len() == args.batch {
                    flush(&mut batch, &mut done)?;
                }
            }
            if let Some(mut rest) = lines {
                if rest.next().is_some() {
                    return Err(user(format!(
                        "the JSONL file has more lines than the .npy has rows ({})",
                        m.rows
                    )));
                }
            }
        }
        (None, Some(lines)) => {
            for (i, line) in lines.enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                batch.push(item_from_line(&args, &line, i + 1, true)?);
                if batch.len() == args.batch {
                    flush(&mut batch, &mut done)?;
                }
            }
        }
        (None, None) => unreachable!("checked above"),
    }
    flush(&mut batch, &mut done)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {done} items into {} in {secs:.2} s ({:.0} items/s); shard now holds {}",
        args.path.display(),
        done as f64 / secs.max(1e-9),
        shard.len()
    );
    Ok(())
}
