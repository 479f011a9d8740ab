#!/usr/bin/env python3
"""Recall@k against queries/s of the peer libraries, over a sweep of ef_search.

The peers' points of `sqlite-vector-bench hnsw` (and `exact`), measured in the same run as ours
with the same k, query set, M and ef_construction. It reuses the peer harness
(../shared/peers/peers.py, imported as a module): its library adapters, with the build
parameters set to --m and --ef-construction (hnswlib M and ef_construction; usearch
connectivity and expansion_add, dtype bf16 for `usearch` as its defaults, f32 for
`usearch-f32`), the exact `faiss` IndexFlat (no ef: one pass), its single-thread environment and
its timing loop (20 untimed warm-up queries, then one query at a time, perf_counter_ns around the
adapter's search call, Python call included). Each index is built once; then for each ef in
--ef the search expansion is set (hnswlib set_ef, usearch expansion_search) and the query set is
timed again. recall@k is peers.py's: |returned top-k ∩ true top-k| / k by ids, averaged over the
queries (no tie rule).

As in peers.py, each library runs in its own subprocess with OMP/OPENBLAS/MKL threads = 1.

Usage:
  PY="$HOME/.cache/peers-venv/bin/python"
  $PY tools/peer_sweep.py --data ../shared/data/debian-minilm --libs hnswlib,usearch \
      --ef 16,32,64,128,256 --metric cos --k 10 [--peers-dir ../shared/peers]

Output: one JSON object per (library, ef) on stdout:
  {"lib", "ef_search", "recall10", "p50_us", "p95_us", "p99_us", "qps", "build_s",
   "insert_vps", "params", ...}
Latencies are in µs; qps = 1e6 / mean single-query latency in µs (one thread, queries/s), not
1e6 / p50. "lib" is the key given in --libs (usearch and usearch-f32 are both the library
"usearch"). Extra fields: library, mode, metric, k, N, D, Q (queries timed), Q_total, mean_us, threads,
loadavg1_start_end. Progress and logs go to stderr. Exit status 1 when a library failed (the
other libraries' lines are still printed).
"""
import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEERS = os.path.join(os.path.dirname(REPO), "shared", "peers")
HNSW_LIBS = ("hnswlib", "usearch", "usearch-f32")
EXACT_LIBS = ("faiss",)


def log(msg):
    print(f"peer_sweep: {msg}", file=sys.stderr, flush=True)


def load_peers(peers_dir):
    """Import peers.py from peers_dir as the module `peers`."""
    path = os.path.abspath(peers_dir)
    if not os.path.isfile(os.path.join(path, "peers.py")):
        raise SystemExit(f"peer_sweep: no peers.py in {path} (use --peers-dir)")
    sys.path.insert(0, path)
    return importlib.import_module("peers")


def with_build_params(peers, ad, m, ef_construction):
    """Sets an HNSW adapter's build parameters (the harness's adapters fix M=16, efC=200/128)."""
    if isinstance(ad, peers.HnswlibHNSW):
        def build(base):
            ad.index.init_index(max_elements=len(base), ef_construction=ef_construction, M=m,
                                random_seed=100)
            ad.index.set_num_threads(1)
            ad.index.add_items(base, peers.np.arange(len(base)), num_threads=1)
        ad.build = build
        ad.params = {"M": m, "ef_construction": ef_construction}
    elif isinstance(ad, peers.USearchHNSW):
        from usearch.index import Index
        old = ad.index
        ad.index = Index(ndim=old.ndim, metric=old.metric, dtype=old.dtype, connectivity=m,
                         expansion_add=ef_construction)
        ad.params = dict(ad.params, connectivity=m, expansion_add=ef_construction)
        def build(base):
            ad.index.add(peers.np.arange(len(base), dtype=peers.np.uint64), base, threads=1)
        ad.build = build
    return ad


def set_ef(peers, ad, ef):
    """Set the search expansion of a peers.py HNSW adapter; returns the value read back."""
    if isinstance(ad, peers.HnswlibHNSW):
        ad.set_mode(f"ef={ef}")  # the adapter's own mode switch: index.set_ef(ef)
        return ad.index.ef
    if isinstance(ad, peers.USearchHNSW):
        ad.index.expansion_search = ef
        return ad.index.expansion_search
    raise SystemExit(f"peer_sweep: {type(ad).__name__} has no ef_search to sweep")


def worker(args):
    peers = load_peers(args.peers_dir)
    np = peers.np
    k = args.k
    peers.K = k  # the adapters read the module's K as the number of neighbours to return
    efs = [int(e) for e in args.ef.split(",")]
    # Data loading as in peers.worker.
    base = np.ascontiguousarray(np.load(os.path.join(args.data, "base.npy")), dtype=np.float32)
    qname = f"queries_{args.qset}.npy" if args.qset else "queries.npy"
    queries = np.ascontiguousarray(np.load(os.path.join(args.data, qname)), dtype=np.float32)
    gtname = f"gt_{args.qset + '_' if args.qset else ''}{args.metric}_ids.npy"
    gt = np.load(os.path.join(args.data, gtname))
    if gt.shape[1] < k:
        raise SystemExit(f"peer_sweep: ground truth has {gt.shape[1]} neighbours, k = {k}")
    gt = gt[:, :k]
    n, d = base.shape
    work = os.path.join(peers.ROOT, "work", f"sweep-{args.lib}-{args.metric}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    load0 = os.getloadavg()[0]
    libname, mode, ad = peers.make_adapter(args.lib, args.metric, d, work)
    exact = args.lib in EXACT_LIBS
    if exact:
        efs = [None]
    else:
        ad = with_build_params(peers, ad, args.m, args.ef_construction)
        mode = f"HNSW M={args.m} efC={args.ef_construction}"
    log(f"{args.lib}: building over {n:,} x {d} ({mode}, {ad.threads_note})")
    t0 = time.perf_counter()
    ad.build(base)
    build_s = time.perf_counter() - t0
    log(f"{args.lib}: built in {build_s:.1f} s")
    for ef in efs:
        if ef is not None:
            got = set_ef(peers, ad, ef)
            if got != ef:
                raise SystemExit(f"peer_sweep: {args.lib}: set ef {ef}, index reports {got}")
        # Timing loop as in peers.worker.
        for i in range(min(20, len(queries))):  # warm-up, untimed
            ad.search(queries[i])
        lat, rec = [], []
        deadline = time.perf_counter() + args.budget
        for i in range(len(queries)):
            q = queries[i]
            t = time.perf_counter_ns()
            ids = ad.search(q)
            lat.append((time.perf_counter_ns() - t) / 1000.0)
            rec.append(len(set(int(x) for x in ids[:k]) & set(int(x) for x in gt[i])) / k)
            if time.perf_counter() > deadline:
                break
        lat = np.array(lat)
        mean_us = float(lat.mean())
        params = dict(ad.params)
        if isinstance(ad, peers.USearchHNSW):
            params["expansion_search"] = ef  # params were read at construction
        if ef is not None:
            params["ef_search"] = ef
        row = {
            "lib": args.lib, "library": libname, "mode": mode, "metric": args.metric, "k": k,
            "ef_search": ef, "N": n, "D": d, "Q": len(lat), "Q_total": len(queries),
            "recall10": round(float(np.mean(rec)), 4),
            "p50_us": round(float(np.percentile(lat, 50)), 1),
            "p95_us": round(float(np.percentile(lat, 95)), 1),
            "p99_us": round(float(np.percentile(lat, 99)), 1),
            "mean_us": round(mean_us, 1),
            "qps": round(1e6 / mean_us, 1),  # queries/s = 1e6 / mean latency in µs, one thread
            "build_s": round(build_s, 3),
            "insert_vps": round(n / build_s) if build_s > 0 else None,
            "params": params, "threads": ad.threads_note,
            "loadavg1_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        }
        log(f"{args.lib} ef={ef}: recall@{k} {row['recall10']:.4f}, p50 {row['p50_us']} µs, "
            f"{row['qps']:,.0f} queries/s ({len(lat)} queries)")
        print(json.dumps(row), flush=True)
    shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="data dir: base.npy, queries.npy, gt_*_ids.npy")
    ap.add_argument("--libs", default="hnswlib,usearch", help=f"comma list of {','.join(HNSW_LIBS)}")
    ap.add_argument("--ef", default="16,32,64,128,256", help="ef_search values, comma list")
    ap.add_argument("--metric", default="cos", choices=["cos", "l2"], help="peers.py's metrics")
    ap.add_argument("--k", type=int, default=10, help="neighbours per query (recall@k)")
    ap.add_argument("--qset", default="", help="'' -> queries.npy, 'short' -> queries_short.npy")
    ap.add_argument("--m", type=int, default=16, help="HNSW M (usearch connectivity)")
    ap.add_argument("--ef-construction", type=int, default=200,
                    help="HNSW ef_construction (usearch expansion_add)")
    ap.add_argument("--peers-dir", default=DEFAULT_PEERS, help="dir of peers.py (default %(default)s)")
    ap.add_argument("--budget", type=float, default=60, help="query-time budget per ef (s), as peers.py")
    ap.add_argument("--timeout", type=int, default=900, help="wall-clock cap per library (s)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lib", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    try:
        efs = [int(e) for e in args.ef.split(",")]
    except ValueError:
        raise SystemExit(f"peer_sweep: --ef must be a comma list of integers, got {args.ef!r}")
    if not efs or min(efs) < 1:
        raise SystemExit(f"peer_sweep: --ef values must be >= 1, got {args.ef!r}")
    libs = [l for l in args.libs.split(",") if l]
    for lib in libs:
        if lib not in HNSW_LIBS + EXACT_LIBS:
            raise SystemExit(f"peer_sweep: unknown lib {lib!r}; expected one of "
                             f"{', '.join(HNSW_LIBS + EXACT_LIBS)}")
    peers = load_peers(args.peers_dir)  # fail early, and take its single-thread environment
    env = dict(os.environ, **peers.SINGLE_THREAD_ENV)
    failed = []
    for lib in libs:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--lib", lib,
               "--data", os.path.abspath(args.data), "--ef", ",".join(map(str, efs)),
               "--metric", args.metric, "--k", str(args.k), "--qset", args.qset,
               "--m", str(args.m), "--ef-construction", str(args.ef_construction),
               "--peers-dir", os.path.abspath(args.peers_dir), "--budget", str(args.budget)]
        t0 = time.time()
        try:
            # stderr passes through (progress); stdout is checked line by line.
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
            out, code = p.stdout, p.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            code = f"over the {args.timeout} s cap"
        for line in out.splitlines():
            if line.startswith("{"):
                print(line, flush=True)
            elif line.strip():
                log(f"{lib} (stdout): {line}")
        if code != 0:
            failed.append(lib)
            log(f"{lib} failed: exit {code}")
        log(f"{lib}: {time.time() - t0:.0f} s wall")
    if failed:
        raise SystemExit(f"peer_sweep: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
