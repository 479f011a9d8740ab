//! `sqlite-vector import`: vectors from `.npy` (ids, metadata and text from an aligned JSONL
//! file), or JSONL lines that carry their own vector. Items are written in batches, each one
//! transaction; a bad line (malformed, not UTF-8, or refused by the shard) stops the import with
//! its line number (or its row of the .npy), and the batches committed before it stay.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sqlite_vector::NewItem;
use sqlite_vector_dataset::jsonl::{parse_item, ItemFields};

use crate::{existing_file, user, CliResult, Failure, ShardArg};

/// Options of `import`.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    shard: ShardArg,
    /// Vectors, a .npy f32 array [n, dim].
    #[arg(long)]
    npy: Option<PathBuf>,
    /// JSONL: one object per item (aligned with --npy rows when both are given).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Field of a JSONL line holding the id: a string, or an integer of at most 64 bits (other
    /// numbers, such as 1.5, 1e3 or 2^64, are refused: quote them).
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

/// The field names `args` gives a JSONL line.
fn item_fields(args: &ImportArgs) -> ItemFields {
    ItemFields {
        id: args.id_field.clone(),
        text: args.text_field.clone(),
        metadata: args.metadata_field.clone(),
        vector: args.vector_field.clone(),
    }
}

/// The item of JSONL line `lineno`, `line`, with the field names `fields`
/// ([`sqlite_vector_dataset::jsonl::parse_item`]); `need_vector` requires the vector field.
fn item_from_line(
    fields: &ItemFields,
    line: &str,
    lineno: usize,
    need_vector: bool,
) -> CliResult<NewItem> {
    let it = parse_item(line, lineno, fields, need_vector)?;
    Ok(NewItem {
        id: it.id,
        vector: it.vector,
        metadata: it.metadata,
        text: it.text,
    })
}

/// The lines of a JSONL file, numbered from 1: invalid UTF-8 is the user's error (with the
/// line number), a failed read the system's.
fn jsonl_lines(path: &Path) -> CliResult<impl Iterator<Item = CliResult<(usize, String)>> + '_> {
    existing_file(path)?;
    let file = File::open(path).map_err(|e| Failure::from(e).context(path.display()))?;
    let lines = BufReader::new(file).split(b'\n').enumerate();
    Ok(lines.map(move |(i, line)| {
        let lineno = i + 1;
        let mut bytes = line.map_err(|e| Failure::from(e).context(path.display()))?;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = String::from_utf8(bytes).map_err(|e| {
            user(format!(
                "line {lineno}: invalid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok((lineno, line))
    }))
}

/// Runs the import.
pub fn run(args: ImportArgs) -> CliResult {
    if args.batch == 0 {
        return Err(user("--batch must be at least 1"));
    }
    let shard = args.shard.open()?;
    let fields = item_fields(&args);
    let matrix = match &args.npy {
        Some(p) => {
            existing_file(p)?;
            Some(sqlite_vector_dataset::read_f32(p)?)
        }
        None => None,
    };
    let lines = args.jsonl.as_deref().map(jsonl_lines).transpose()?;
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
    // Each item with where it came from (its JSONL line, else its .npy row), to name the one
    // the shard refuses.
    let place = |n: usize| match args.jsonl {
        Some(_) => format!("line {n}"),
        None => format!("row {n}"),
    };
    let mut batch: Vec<(usize, NewItem)> = Vec::with_capacity(args.batch);
    let mut done = 0usize;
    let flush = |batch: &mut Vec<(usize, NewItem)>, done: &mut usize| -> CliResult {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        let mut at = None;
        shard
            .transaction(|tx| {
                for (place, item) in batch.drain(..) {
                    at = Some(place);
                    if args.upsert {
                        tx.upsert(item)?;
                    } else {
                        tx.insert(item)?;
                    }
                }
                at = None;
                Ok(())
            })
            .map_err(|e| match (Failure::from(e), at) {
                (f, Some(n)) if f.is_user() => f.context(place(n)),
                (f, _) => f.context(format!("items {}..{}", *done + 1, *done + n)),
            })?;
        *done += n;
        bar.set_position(*done as u64);
        Ok(())
    };
    match (matrix, lines) {
        (Some(m), lines) => {
            let mut lines = lines;
            for row in 0..m.rows {
                let mut item = match lines.as_mut().map(Iterator::next) {
                    Some(Some(line)) => {
                        let (lineno, line) = line?;
                        item_from_line(&fields, &line, lineno, false)?
                    }
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
                let n = if lines.is_some() { row + 1 } else { row };
                batch.push((n, item));
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
            for line in lines {
                let (lineno, line) = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let item = item_from_line(&fields, &line, lineno, true)?;
                batch.push((lineno, item));
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
        "imported {done} items into {shard} in {secs:.2} s ({:.0} items/s); shard now holds {}",
        done as f64 / secs.max(1e-9),
        shard.len()
    );
    Ok(())
}
