#!/usr/bin/env python3
"""Summarise the JSON lines written by tools/bench_peers.sh into the tables of BENCHMARKS.md.

Usage: python3 tools/bench_report.py [OUT_DIR]   (default: bench-out)
Prints Markdown: per round, sqlite-vector's exact search next to faiss IndexFlatIP and sqlite-vec
vec0 measured in the same round, with the ratios; then the other targets.
"""
import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bench-out"
    ours = [o for o in lines(os.path.join(out, "ours.jsonl")) if o.get("metric") == "cosine"]
    ours_l2 = [o for o in lines(os.path.join(out, "ours.jsonl")) if o.get("metric") == "l2"]
    peers = lines(os.path.join(out, "peers.jsonl"))
    faiss = [p for p in peers if p["key"] == "faiss"]
    svec = [p for p in peers if p["key"] == "sqlite-vec"]
    print("| round | sqlite-vector p50 / p99 µs | faiss IndexFlatIP p50 / p99 µs | sqlite-vec vec0 p50 µs "
          "| ours ÷ faiss (p50) | sqlite-vec ÷ ours (p50) | recall@10 (ours) |")
    print("|---|---|---|---|---|---|---|")
    for i, o in enumerate(ours):
        f = faiss[i] if i < len(faiss) else None
        s = svec[i] if i < len(svec) else None
        print(
            f"| {i + 1} | {o['p50_us']:.0f} / {o['p99_us']:.0f} | "
            + (f"{f['p50_us']:.0f} / {f['p99_us']:.0f}" if f else "-")
            + " | "
            + (f"{s['p50_us']:.0f}" if s else "-")
            + " | "
            + (f"{o['p50_us'] / f['p50_us']:.2f}×" if f else "-")
            + " | "
            + (f"{s['p50_us'] / o['p50_us']:.1f}×" if s else "-")
            + f" | {o['recall_at_k']:.4f} |"
        )
    print()
    for i, o in enumerate(ours_l2):
        print(f"- L2 round {i + 1}: p50 {o['p50_us']:.0f} µs, p99 {o['p99_us']:.0f} µs, "
              f"recall@10 {o['recall_at_k']:.4f}")
    print()
    print("| round | batch insert vectors/s | faiss add vectors/s | sqlite-vec insert vectors/s "
          "| single insert p50 / p99 µs | open + 1st query ms | arena ÷ raw |")
    print("|---|---|---|---|---|---|---|")
    for i, o in enumerate(ours):
        f = faiss[i] if i < len(faiss) else None
        s = svec[i] if i < len(svec) else None
        print(
            f"| {i + 1} | {o['insert_vps']:,.0f} | "
            + (f"{f['insert_vps']:,}" if f else "-")
            + " | "
            + (f"{s['insert_vps']:,}" if s else "-")
            + f" | {o['single_insert_p50_us']:.0f} / {o['single_insert_p99_us']:.0f} | "
            f"{o['open_first_query_ms']:.1f} | {o['arena_over_raw']:.3f} |"
        )
    print()
    for o in lines(os.path.join(out, "synth.jsonl")):
        print(f"- {o['dataset']}: build {o['build_s']:.2f} s ({o['insert_vps']:,.0f} vectors/s), "
              f"query p50 {o['p50_us']:.0f} µs, arena ÷ raw {o['arena_over_raw']:.3f}")
    print()
    ki = lines(os.path.join(out, "known-item.jsonl"))
    if ki:
        print("| ranking | MRR@10 | hit@1 | hit@10 | p50 µs |")
        print("|---|---|---|---|---|")
        for o in ki:
            print(f"| {o['ranking']} | {o['mrr_at_10']:.4f} | {o['hit_at_1']:.3f} | "
                  f"{o['hit_at_10']:.3f} | {o['p50_us']:.0f} |")
    print()
    for o in lines(os.path.join(out, "shards.jsonl")):
        print("- shards: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in o.items()))
    for name in ("uptime-start.txt", "uptime-end.txt"):
        p = os.path.join(out, name)
        if os.path.exists(p):
            print(f"- {name}: {open(p).read().strip()}")


if __name__ == "__main__":
    main()
