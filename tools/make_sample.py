#!/usr/bin/env python3
"""Build the small real-data sample in data/sample/ from the shared debian-minilm dataset.

What
    Writes data/sample/{base.npy, items.jsonl, queries.npy, queries.jsonl,
    gt_cos_ids.npy, gt_cos_dist.npy, gt_l2_ids.npy, gt_l2_dist.npy, README.md}:
    the first 2,000 base rows of debian-minilm (Debian 12 package descriptions embedded
    with all-MiniLM-L6-v2, 384-d, unit length), their texts with derived metadata, the
    first 50 held-out query vectors and texts, and exact top-10 ground truth over
    the 2,000 sample rows for cosine distance (1 - cos) and squared L2 distance.

Why
    The full dataset (~50 MB) lives outside the repository (../shared/data/) and is not
    always present. The `demo` command and the always-on tests need a small, real,
    checked-in corpus (< 4 MB) with known exact answers.

How to run (from the repository root)
    $HOME/.cache/peers-venv/bin/python tools/make_sample.py --data ../shared/data/debian-minilm

    Options: --data DIR (source dataset, default ../shared/data/debian-minilm relative to the
    repository root), --out DIR (default data/sample under the repository root).
    Needs only NumPy.

Determinism
    No randomness: rows are taken by position (base rows 0..1999, query rows 0..49), texts are
    truncated by a fixed rule, ground truth is brute force in float64 with ties broken by the
    lower row id (stable sort on (distance, id)), and arrays are written with np.save
    (little-endian, C order). Running it twice on the same source gives byte-identical files.

Text truncation
    A text longer than TRUNC (160) characters is cut to its longest prefix of at most 160
    characters that ends at a word boundary (trailing whitespace removed) and "…" is
    appended; so a truncated text is at most 161 characters including the ellipsis. A text of
    160 characters or fewer is kept unchanged. (If the first 160 characters contain no
    whitespace, the cut is made at character 160.)

Metadata "kind" (from the package name; first rule that matches wins)
    ends "-doc" -> doc; starts "python3-"/"python-" -> python; starts "golang-" -> go;
    starts "node-" -> node; starts "ruby-" -> ruby; starts "librust-" -> rust;
    starts "libghc-" -> haskell; ends "-perl" -> perl; starts "fonts-"/"xfonts-" -> font;
    ends "-dev" -> dev; starts "lib" -> lib; otherwise app.
"""

import argparse
import collections
import json
import os
import sys

import numpy as np

N_BASE = 2000
N_QUERIES = 50
K = 10
DIM = 384
TRUNC = 160
ELLIPSIS = "\u2026"

KIND_RULES = [
    (lambda p: p.endswith("-doc"), "doc"),
    (lambda p: p.startswith(("python3-", "python-")), "python"),
    (lambda p: p.startswith("golang-"), "go"),
    (lambda p: p.startswith("node-"), "node"),
    (lambda p: p.startswith("ruby-"), "ruby"),
    (lambda p: p.startswith("librust-"), "rust"),
    (lambda p: p.startswith("libghc-"), "haskell"),
    (lambda p: p.endswith("-perl"), "perl"),
    (lambda p: p.startswith(("fonts-", "xfonts-")), "font"),
    (lambda p: p.endswith("-dev"), "dev"),
    (lambda p: p.startswith("lib"), "lib"),
]


def kind_of(package):
    for rule, kind in KIND_RULES:
        if rule(package):
            return kind
    return "app"


def truncate(text, limit=TRUNC):
    """Cut to at most `limit` characters at a word boundary; append '…' if cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if not text[limit].isspace():
        # Drop the partial last word; keep a hard cut if there is no whitespace at all.
        cut = max((i for i, c in enumerate(head) if c.isspace()), default=-1)
        if cut > 0:
            head = head[:cut]
    return head.rstrip() + ELLIPSIS


def exact_topk(queries, base, metric, k=K):
    """Exact top-k in float64; ties broken by lower row id (stable sort on (dist, id))."""
    q = queries.astype(np.float64)
    b = base.astype(np.float64)
    if metric == "cos":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        dist = 1.0 - qn @ bn.T
    elif metric == "l2":
        # Direct squared differences (no |q|^2 + |b|^2 - 2qb expansion, which loses precision).
        dist = ((q[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    else:
        raise ValueError(metric)
    # Columns are already in id order, so a stable sort on distance == sort on (dist, id).
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    ids = order.astype(np.int32)
    d = np.take_along_axis(dist, order, axis=1).astype(np.float32)
    return np.ascontiguousarray(ids), np.ascontiguousarray(d)


def save_npy(path, arr, dtype):
    arr = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    np.save(path, arr, allow_pickle=False)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


README_TEMPLATE = """\
# data/sample — small real-data sample

A 2,000-item slice of the project's shared `debian-minilm` dataset (`../shared/data/debian-minilm/`),
checked in for the `demo` command and the always-on tests. Total size: {total:,} bytes (all files here,
including this README).

**Provenance.** English descriptions of Debian 12 "bookworm" packages (synopsis + long description,
from Debian's `main/i18n/Translation-en` files), embedded with sentence-transformers
**all-MiniLM-L6-v2** (384-d, mean pooling, L2-normalised; model licensed Apache-2.0).

| file | contents |
|---|---|
| `base.npy` | f32 [2000, 384], unit vectors: base rows 0..1999 of the dataset's `base.npy` |
| `items.jsonl` | 2,000 lines, same order: `{{"id": package, "text": ..., "metadata": {{"package": ..., "kind": ..., "words": N}}}}` |
| `queries.npy` | f32 [50, 384]: query rows 0..49 (held-out items, not in the base set) |
| `queries.jsonl` | 50 lines `{{"package": ..., "text": ...}}` for those queries |
| `gt_cos_ids.npy`, `gt_cos_dist.npy` | i32 / f32 [50, 10]: exact top-10 sample rows per query by cosine distance (1 − cos), nearest first |
| `gt_l2_ids.npy`, `gt_l2_dist.npy` | i32 / f32 [50, 10]: the same for squared L2 distance |

- `text`: the full text cut to at most 160 characters at a word boundary, with "…" appended if cut.
- `words`: number of whitespace-separated words in the **full** text.
- `kind`, from the package name, first rule that matches: ends `-doc` → doc; starts `python3-`/`python-`
  → python; `golang-` → go; `node-` → node; `ruby-` → ruby; `librust-` → rust; `libghc-` → haskell;
  ends `-perl` → perl; starts `fonts-`/`xfonts-` → font; ends `-dev` → dev; starts `lib` → lib;
  otherwise app.
- Ground truth: brute force in float64 over the 2,000 sample rows, distances stored as f32, ties
  broken by lower row id.

**How it was made** (deterministic; from the repository root):

    $HOME/.cache/peers-venv/bin/python tools/make_sample.py --data ../shared/data/debian-minilm
"""


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data", "debian-minilm"))
    ap.add_argument("--out", default=os.path.join(repo, "data", "sample"))
    args = ap.parse_args()

    base_all = np.load(os.path.join(args.data, "base.npy"), mmap_mode="r")
    queries_all = np.load(os.path.join(args.data, "queries.npy"), mmap_mode="r")
    assert base_all.dtype == np.float32 and base_all.shape[1] == DIM, base_all.shape
    assert queries_all.dtype == np.float32 and queries_all.shape[1] == DIM, queries_all.shape
    base = np.array(base_all[:N_BASE], dtype=np.float32)
    queries = np.array(queries_all[:N_QUERIES], dtype=np.float32)

    base_texts = {}
    query_texts = {}
    with open(os.path.join(args.data, "texts.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["set"] == "base" and r["id"] < N_BASE:
                base_texts[r["id"]] = (r["package"], r["text"])
            elif r["set"] == "query" and r["id"] < N_QUERIES:
                query_texts[r["id"]] = (r["package"], r["text"])
    assert sorted(base_texts) == list(range(N_BASE)), "missing base texts"
    assert sorted(query_texts) == list(range(N_QUERIES)), "missing query texts"

    items = []
    for i in range(N_BASE):
        pkg, text = base_texts[i]
        items.append({
            "id": pkg,
            "text": truncate(text),
            "metadata": {"package": pkg, "kind": kind_of(pkg), "words": len(text.split())},
        })
    assert len({it["id"] for it in items}) == N_BASE, "package names must be unique"
    qitems = [{"package": query_texts[i][0], "text": truncate(query_texts[i][1])}
              for i in range(N_QUERIES)]

    cos_ids, cos_dist = exact_topk(queries, base, "cos")
    l2_ids, l2_dist = exact_topk(queries, base, "l2")

    os.makedirs(args.out, exist_ok=True)
    save_npy(os.path.join(args.out, "base.npy"), base, np.float32)
    save_npy(os.path.join(args.out, "queries.npy"), queries, np.float32)
    save_npy(os.path.join(args.out, "gt_cos_ids.npy"), cos_ids, np.int32)
    save_npy(os.path.join(args.out, "gt_cos_dist.npy"), cos_dist, np.float32)
    save_npy(os.path.join(args.out, "gt_l2_ids.npy"), l2_ids, np.int32)
    save_npy(os.path.join(args.out, "gt_l2_dist.npy"), l2_dist, np.float32)
    write_jsonl(os.path.join(args.out, "items.jsonl"), items)
    write_jsonl(os.path.join(args.out, "queries.jsonl"), qitems)

    # README states the total size (including itself): iterate to a fixed point.
    names = ["base.npy", "items.jsonl", "queries.npy", "queries.jsonl", "gt_cos_ids.npy",
             "gt_cos_dist.npy", "gt_l2_ids.npy", "gt_l2_dist.npy"]
    data_bytes = sum(os.path.getsize(os.path.join(args.out, n)) for n in names)
    total = data_bytes
    for _ in range(5):
        readme = README_TEMPLATE.format(total=total).encode("utf-8")
        new_total = data_bytes + len(readme)
        if new_total == total:
            break
        total = new_total
    with open(os.path.join(args.out, "README.md"), "wb") as f:
        f.write(README_TEMPLATE.format(total=total).encode("utf-8"))

    # ---- sanity report ----
    print(f"wrote {args.out}: {total:,} bytes total")
    if total >= 4_000_000:
        print("ERROR: sample exceeds 4,000,000 bytes; reduce TRUNC", file=sys.stderr)
        sys.exit(1)
    norms = np.linalg.norm(base.astype(np.float64), axis=1)
    print(f"base norms: min {norms.min():.6f} max {norms.max():.6f}")
    hist = collections.Counter(it["metadata"]["kind"] for it in items)
    print("kinds:", ", ".join(f"{k} {n}" for k, n in hist.most_common()))
    ntrunc = sum(it["text"].endswith(ELLIPSIS) for it in items)
    print(f"truncated texts: {ntrunc}/{N_BASE}")
    for qi in range(3):
        near = ", ".join(f"{items[j]['id']} ({d:.3f})" for j, d in zip(cos_ids[qi, :3], cos_dist[qi, :3]))
        print(f"query {qi} [{qitems[qi]['package']}] -> {near}")
    top1 = int((cos_ids[:, 0] == l2_ids[:, 0]).sum())
    full = int((cos_ids == l2_ids).all(axis=1).sum())
    print(f"cos vs l2 top-1 agree: {top1}/{N_QUERIES}; full top-10 lists equal: {full}/{N_QUERIES}")
    if top1 != N_QUERIES:
        print("WARNING: cos and l2 top-1 disagree", file=sys.stderr)


if __name__ == "__main__":
    main()
