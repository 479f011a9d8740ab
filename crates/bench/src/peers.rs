//! The peer libraries' recall/QPS points for `sqlite-vector-bench hnsw` and `exact`, measured in
//! the same run as ours by `tools/peer_sweep.py` with the same k, M, ef_construction and query set (which reuses the shared peer harness `peers.py`: its
//! adapters, single-thread environment and timing loop; see the script's docstring).
//!
//! [`run_peer_sweep`] runs the script with the peers' Python (a venv with numpy, hnswlib,
//! usearch: [`default_python`]), passes its progress (stderr) through to ours and parses its
//! stdout, one JSON object per (library, ef_search), with [`parse_points`]. [`peer_series`]
//! turns the points into the lines of the chart in [`crate::plot`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Deserialize;

use crate::plot::Series;

/// Environment variable naming the Python interpreter of the peers' venv.
pub const PYTHON_ENV: &str = "SQLITE_VECTOR_PEERS_PYTHON";
/// Where the peers' venv is set up (`../shared/peers/README.md`), relative to `$HOME`.
const VENV_PYTHON: &str = ".cache/peers-venv/bin/python";
/// The sweep script, relative to the repository root.
pub const SCRIPT: &str = "tools/peer_sweep.py";
/// Lines of the script's stderr kept for [`PeerError::ScriptFailed`].
const STDERR_TAIL_LINES: usize = 20;

/// One (library, ef_search) point of the peer sweep: a line of `tools/peer_sweep.py`'s output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PeerPoint {
    /// Library key as given to `--libs`: `hnswlib`, `usearch` or `usearch-f32`.
    pub lib: String,
    /// Search expansion (hnswlib `ef`, usearch `expansion_search`); `None` for an exact library.
    pub ef_search: Option<usize>,
    /// recall@10 against the exact ground truth, by ids, mean over the queries, in [0, 1].
    pub recall10: f64,
    /// Median single-query latency, µs (Python call included).
    pub p50_us: f64,
    /// 95th percentile single-query latency, µs.
    pub p95_us: f64,
    /// 99th percentile single-query latency, µs.
    pub p99_us: f64,
    /// Queries per second on one thread: 1e6 / mean latency in µs.
    pub qps: f64,
    /// Time to build the index over the base set, s (single thread, shared by all efs).
    pub build_s: f64,
    /// Insert rate of the build, vectors/s (`None` when the build took no measurable time).
    pub insert_vps: Option<f64>,
    /// The library's parameters (M, ef_construction, dtype, …) as the script reports them.
    pub params: serde_json::Value,
}

/// Why the peer sweep produced no points.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The Python interpreter could not be started (missing venv, see `../shared/peers/README.md`).
    #[error("cannot run python {}: {source} (set {PYTHON_ENV} or create the peers venv)", path.display())]
    PythonNotFound {
        /// The interpreter tried.
        path: PathBuf,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// The script file does not exist.
    #[error("peer sweep script not found: {}", path.display())]
    ScriptNotFound {
        /// The path tried.
        path: PathBuf,
    },
    /// The script exited unsuccessfully; carries the last lines of its stderr.
    #[error("peer sweep failed ({status}):\n{stderr_tail}")]
    ScriptFailed {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// A line of the script's stdout is not a valid point.
    #[error("peer sweep output line {line}: {message}")]
    MalformedLine {
        /// 1-based line number in the script's stdout.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Reading the script's output or waiting for it failed.
    #[error("peer sweep i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The parameters of one peer run: those of the sqlite-vector run it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepParams {
    /// The harness's metric name: `cos` or `l2`.
    pub metric: String,
    /// Neighbours per query (recall@k).
    pub k: usize,
    /// Query set: `""` for `queries.npy`, `"short"` for `queries_short.npy`.
    pub qset: String,
    /// HNSW `M` (hnswlib `M`, usearch `connectivity`).
    pub m: usize,
    /// HNSW `ef_construction` (usearch `expansion_add`).
    pub ef_construction: usize,
    /// `ef_search` values to sweep (ignored by exact libraries).
    pub efs: Vec<usize>,
}

/// Runs `python script --data DATA --libs L1,L2 --ef E1,E2 --metric M --k K --qset Q --m M
/// --ef-construction C` and returns its points, in output order (library by library, ef
/// ascending as given).
///
/// The script's stderr (progress, a few lines per
/// library and ef) is copied to ours as it comes. This takes minutes on a real data set: each
/// library builds its index once (single thread) then times every query at every ef. With no
/// `libs` nothing is run and no points are returned.
///
/// # Errors
/// [`PeerError::ScriptNotFound`], [`PeerError::PythonNotFound`] if `python` cannot be started,
/// [`PeerError::ScriptFailed`] with the tail of its stderr on a non-zero exit (bad arguments, a
/// library not installed, a timeout), [`PeerError::MalformedLine`] for output that is not a
/// point, [`PeerError::Io`] if its pipes fail.
pub fn run_peer_sweep(
    python: &Path,
    script: &Path,
    data: &Path,
    libs: &[String],
    params: &SweepParams,
) -> Result<Vec<PeerPoint>, PeerError> {
    if libs.is_empty() {
        return Ok(Vec::new());
    }
    if !script.is_file() {
        return Err(PeerError::ScriptNotFound {
            path: script.to_owned(),
        });
    }
    let efs = params
        .efs
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut child = Command::new(python)
        .arg(script)
        .arg("--data")
        .arg(data)
        .args([
            "--libs",
            &libs.join(","),
            "--ef",
            &efs,
            "--metric",
            &params.metric,
        ])
        .args(["--k", &params.k.to_string(), "--qset", &params.qset])
        .args(["--m", &params.m.to_string()])
        .args(["--ef-construction", &params.ef_construction.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PeerError::PythonNotFound {
            path: python.to_owned(),
            source,
        })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let tail = std::thread::spawn(move || echo_and_keep_tail(stderr));
    let mut out = String::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut out);
    if read.is_err() {
        // Do not leave the script running (and blocked on a full pipe) behind us.
        let _ = child.kill();
    }
    let status = child.wait()?;
    let stderr_tail = tail.join().unwrap_or_default();
    read?;
    if !status.success() {
        return Err(PeerError::ScriptFailed {
            status,
            stderr_tail,
        });
    }
    parse_points(&out)
}

/// Copies `stderr` line by line to our stderr and returns its last [`STDERR_TAIL_LINES`] lines.
fn echo_and_keep_tail(stderr: impl Read) -> String {
    let mut reader = BufReader::new(stderr);
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let mut buf = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut buf) {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        eprintln!("{line}");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
        buf.clear();
    }
    Vec::from(tail).join("\n")
}

/// Parses the script's stdout: one JSON [`PeerPoint`] per line, blank lines ignored; unknown
/// fields are ignored (the script also writes mean_us, Q, params, load average, …).
///
/// # Errors
/// [`PeerError::MalformedLine`] with the 1-based line number for a line that is not JSON, lacks
/// a field, or has a recall outside [0, 1] or a QPS that is not positive and finite.
pub fn parse_points(text: &str) -> Result<Vec<PeerPoint>, PeerError> {
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let malformed = |message: String| PeerError::MalformedLine {
            line: i + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let p: PeerPoint = serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
        if !(0.0..=1.0).contains(&p.recall10) {
            return Err(malformed(format!("recall10 {} not in [0, 1]", p.recall10)));
        }
        if !(p.qps.is_finite() && p.qps > 0.0) {
            return Err(malformed(format!("qps {} not positive", p.qps)));
        }
        points.push(p);
    }
    Ok(points)
}

/// The chart lines of the peers: one [`Series`] per library in order of first appearance,
/// labelled with the library key and its main parameters, points labelled `ef=N`.
pub fn peer_series(points: &[PeerPoint]) -> Vec<Series> {
    let mut libs: Vec<&str> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    for p in points {
        let idx = match libs.iter().position(|lib| *lib == p.lib) {
            Some(i) => i,
            None => {
                libs.push(&p.lib);
                series.push(Series {
                    label: format!("{} ({})", p.lib, describe_params(&p.params)),
                    points: Vec::new(),
                });
                series.len() - 1
            }
        };
        series[idx].points.push((
            p.recall10,
            p.qps,
            match p.ef_search {
                Some(ef) => format!("ef={ef}"),
                None => "exact".into(),
            },
        ));
    }
    series
}

/// The build parameters worth a legend: hnswlib's `M`, `ef_construction`; usearch's
/// `connectivity`, `expansion_add`, `dtype`. Search-time ef is on the points.
fn describe_params(params: &serde_json::Value) -> String {
    let keys = [
        ("M", "M"),
        ("ef_construction", "efC"),
        ("connectivity", "M"),
        ("expansion_add", "efC"),
        ("dtype", "dtype"),
    ];
    keys.iter()
        .filter_map(|(key, short)| {
            let v = params.get(key)?;
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_lowercase);
            Some(format!("{short}={v}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The peers' Python: `$SQLITE_VECTOR_PEERS_PYTHON` if set, else the venv of
/// `../shared/peers/README.md` (`$HOME/.cache/peers-venv/bin/python`), else `python3` on PATH.
pub fn default_python() -> PathBuf {
    python_from(std::env::var_os(PYTHON_ENV), std::env::var_os("HOME"))
}

/// [`default_python`] with its environment passed in (testable without touching the process's).
fn python_from(env_override: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (env_override, home) {
        (Some(p), _) if !p.is_empty() => PathBuf::from(p),
        (_, Some(home)) if !home.is_empty() => Path::new(&home).join(VENV_PYTHON),
        _ => PathBuf::from("python3"),
    }
}

/// `tools/peer_sweep.py`, looked for in the current directory and its ancestors (so the binary
/// finds it when run anywhere inside the repository), then in the source tree this binary was
/// built from. `None` if neither has it.
pub fn default_script() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let from_cwd = cwd
        .iter()
        .flat_map(|d| d.ancestors())
        .map(|d| d.join(SCRIPT))
        .find(|p| p.is_file());
    from_cwd.or_else(|| {
        let built = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(SCRIPT);
        built.is_file().then_some(built)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE_HNSWLIB: &str = r#"{"lib": "hnswlib", "library": "hnswlib", "ef_search": 16, "recall10": 0.88, "p50_us": 16.9, "p95_us": 23.4, "p99_us": 28.9, "mean_us": 17.2, "qps": 58155.2, "build_s": 0.148, "insert_vps": 13468, "params": {"M": 16, "ef_construction": 200, "ef_search": 16}}"#;
    const LINE_USEARCH: &str = r#"{"lib": "usearch", "ef_search": 64, "recall10": 0.994, "p50_us": 68.6, "p95_us": 77.5, "p99_us": 124.3, "qps": 14028.4, "build_s": 0.129, "insert_vps": null, "params": {"dtype": "BF16", "connectivity": 16, "expansion_add": 128, "expansion_search": 64}}"#;

    #[test]
    fn parses_good_lines_and_skips_blank_ones() {
        let text = format!("{LINE_HNSWLIB}\n\n{LINE_USEARCH}\n");
        let points = parse_points(&text).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].lib, "hnswlib");
        assert_eq!(points[0].ef_search, Some(16));
        assert_eq!(points[0].insert_vps, Some(13468.0));
        assert_eq!(points[1].recall10, 0.994);
        assert_eq!(points[1].insert_vps, None);
        assert_eq!(points[1].params["connectivity"], 16);
        assert!(parse_points("").unwrap().is_empty());
    }

    #[test]
    fn malformed_json_names_its_line() {
        let text = format!("{LINE_HNSWLIB}\n{{\"lib\": \n{LINE_USEARCH}");
        match parse_points(&text) {
            Err(PeerError::MalformedLine { line: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_field_is_named() {
        let text = LINE_USEARCH.replace(r#""qps": 14028.4, "#, "");
        match parse_points(&format!("\n{text}")) {
            Err(PeerError::MalformedLine { line: 2, message }) => {
                assert!(message.contains("qps"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn out_of_range_values_are_malformed() {
        for (from, to) in [
            (r#""recall10": 0.994"#, r#""recall10": 1.5"#),
            (r#""qps": 14028.4"#, r#""qps": 0"#),
        ] {
            let text = LINE_USEARCH.replace(from, to);
            assert!(matches!(
                parse_points(&text),
                Err(PeerError::MalformedLine { line: 1, .. })
            ));
        }
    }

    #[test]
    fn series_group_by_library_in_order() {
        let mut more = LINE_HNSWLIB.replace(r#""ef_search": 16"#, r#""ef_search": 64"#);
        more = more.replace(r#""recall10": 0.88"#, r#""recall10": 0.99"#);
        let f32 = LINE_USEARCH.replace(r#""lib": "usearch""#, r#""lib": "usearch-f32""#);
        let text = [LINE_HNSWLIB, &more, LINE_USEARCH, &f32].join("\n");
        let series = peer_series(&parse_points(&text).unwrap());
        let labels: Vec<_> = series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "hnswlib (M=16, efC=200)",
                "usearch (M=16, efC=128, dtype=bf16)",
                "usearch-f32 (M=16, efC=128, dtype=bf16)",
            ]
        );
        assert_eq!(series[0].points[1], (0.99, 58155.2, "ef=64".to_string()));
    }

    #[test]
    fn python_defaults() {
        let p = python_from(Some("/opt/py".into()), Some("/home/u".into()));
        assert_eq!(p, PathBuf::from("/opt/py"));
        let p = python_from(None, Some("/home/u".into()));
        assert_eq!(p, PathBuf::from("/home/u/.cache/peers-venv/bin/python"));
        let p = python_from(Some("".into()), None);
        assert_eq!(p, PathBuf::from("python3"));
    }

    #[test]
    fn default_python_is_a_path() {
        assert!(!default_python().as_os_str().is_empty());
    }

    #[test]
    fn default_script_is_found_from_the_crate() {
        let script = default_script().expect("tools/peer_sweep.py");
        assert!(script.ends_with(SCRIPT) && script.is_file(), "{script:?}");
    }

    fn sweep(efs: &[usize]) -> SweepParams {
        SweepParams {
            metric: "cos".into(),
            k: 10,
            qset: String::new(),
            m: 16,
            ef_construction: 200,
            efs: efs.to_vec(),
        }
    }

    /// The script gets the run's parameters: the same k, M, ef_construction and query set as
    /// the sqlite-vector run it is compared with.
    #[cfg(unix)]
    #[test]
    fn the_script_gets_the_runs_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_script(dir.path(), "echo \"args: $*\" >&2\nexit 1\n");
        let params = SweepParams {
            metric: "l2".into(),
            k: 5,
            qset: "short".into(),
            m: 32,
            ef_construction: 100,
            efs: vec![8, 40],
        };
        let err = run_peer_sweep(
            Path::new("sh"),
            &script,
            dir.path(),
            &["hnswlib".into()],
            &params,
        )
        .unwrap_err();
        let PeerError::ScriptFailed { stderr_tail, .. } = err else {
            panic!("{err}")
        };
        for want in [
            "--ef 8,40",
            "--metric l2",
            "--k 5",
            "--qset short",
            "--m 32",
            "--ef-construction 100",
        ] {
            assert!(stderr_tail.contains(want), "{want}: {stderr_tail}");
        }
    }

    /// A fake "python" (`sh`) running a shell script stands in for the venv.
    #[cfg(unix)]
    fn fake_script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake_sweep.sh");
        std::fs::write(&path, body).unwrap();
        path
    }

    #[cfg(unix)]
    #[test]
    fn runs_a_script_and_parses_its_points() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("echo progress >&2\ncat <<'EOF'\n{LINE_HNSWLIB}\n{LINE_USEARCH}\nEOF\n");
        let script = fake_script(dir.path(), &body);
        let libs = ["hnswlib".to_string(), "usearch".to_string()];
        let points = run_peer_sweep(
            Path::new("sh"),
            &script,
            dir.path(),
            &libs,
            &sweep(&[16, 64]),
        )
        .unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].lib, "usearch");
    }

    #[cfg(unix)]
    #[test]
    fn script_failure_carries_its_stderr_tail() {
        let dir = tempfile::tempdir().unwrap();
        let body = "for i in $(seq 1 50); do echo line$i >&2; done\necho 'no module named hnswlib' >&2\nexit 3\n";
        let script = fake_script(dir.path(), body);
        let err = run_peer_sweep(
            Path::new("sh"),
            &script,
            dir.path(),
            &["hnswlib".into()],
            &sweep(&[16]),
        )
        .unwrap_err();
        match &err {
            PeerError::ScriptFailed {
                status,
                stderr_tail,
            } => {
                assert_eq!(status.code(), Some(3));
                assert!(stderr_tail.ends_with("no module named hnswlib"), "{err}");
                assert_eq!(stderr_tail.lines().count(), STDERR_TAIL_LINES);
                assert!(!stderr_tail.contains("line30\n"), "{err}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn missing_python_and_missing_script() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_script(dir.path(), "true\n");
        let libs = ["hnswlib".to_string()];
        let err = run_peer_sweep(
            &dir.path().join("no-python"),
            &script,
            dir.path(),
            &libs,
            &sweep(&[16]),
        )
        .unwrap_err();
        assert!(matches!(err, PeerError::PythonNotFound { .. }), "{err}");
        let err = run_peer_sweep(
            Path::new("sh"),
            &dir.path().join("nope.py"),
            dir.path(),
            &libs,
            &sweep(&[16]),
        )
        .unwrap_err();
        assert!(matches!(err, PeerError::ScriptNotFound { .. }), "{err}");
        assert!(
            run_peer_sweep(Path::new("sh"), &script, dir.path(), &[], &sweep(&[16]))
                .unwrap()
                .is_empty()
        );
    }
}
