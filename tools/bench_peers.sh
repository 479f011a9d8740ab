#!/usr/bin/env bash
# Same-run comparison behind BENCHMARKS.md: sqlite-vector's `bench` and the peer harness
# (../shared/peers: faiss IndexFlatIP, sqlite-vec vec0, hnswlib) on debian-minilm, interleaved
# in ROUNDS rounds so that both sides see the same machine state. Writes JSON lines to $OUT.
#
# Setup of the peers (once, from PyPI):
#   python3 -m venv "$HOME/.cache/peers-venv"
#   "$HOME/.cache/peers-venv/bin/pip" install numpy faiss-cpu hnswlib usearch sqlite-vec pysqlite3-binary psutil
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${DATA:-$ROOT/../shared/data/debian-minilm}
PEERS=${PEERS:-$ROOT/../shared/peers}
PY=${PY:-$HOME/.cache/peers-venv/bin/python}
OUT=${OUT:-$ROOT/bench-out}
ROUNDS=${ROUNDS:-2}
LIBS=${LIBS:-faiss,sqlite-vec}
mkdir -p "$OUT"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p sqlite-vector-cli -p sqlite-vector-bench
BIN=$ROOT/target/release/sqlite-vector
TOOL=$ROOT/target/release/sqlite-vector-bench
uptime | tee "$OUT/uptime-start.txt"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: sqlite-vector exact, cosine"
  "$BIN" bench --data "$DATA" --metric cos --json | tee -a "$OUT/ours.jsonl"
  echo "== round $round: sqlite-vector exact, l2"
  "$BIN" bench --data "$DATA" --metric l2 --single-inserts 0 --json | tee -a "$OUT/ours.jsonl"
  echo "== round $round: sqlite-vector exact, cosine, int8 + f32 rescoring"
  "$BIN" bench --data "$DATA" --metric cos --quantization int8 --single-inserts 0 --json | tee -a "$OUT/ours.jsonl"
  echo "== round $round: peers ($LIBS), cosine"
  (cd "$PEERS" && "$PY" peers.py --data "$DATA" --libs "$LIBS" --metrics cos --out "$OUT/peers.jsonl" >/dev/null)
  tail -n "$(echo "$LIBS" | tr ',' '\n' | wc -l)" "$OUT/peers.jsonl"
  echo "== round $round: sqlite-vector hnsw sweep + hnswlib/usearch with the same k, M, efC, queries, plot"
  "$TOOL" hnsw --data "$DATA" --ef-search 16,32,64,128,256 --peers hnswlib,usearch \
    --peers-python "$PY" --sqlite-vector "$BIN" --plot "$OUT/hnsw-debian-minilm-round$round.svg" \
    --json | tee -a "$OUT/hnsw.jsonl"
  echo "== round $round: search throughput, 2 threads, alone and with a writer"
  "$TOOL" concurrent --data "$DATA" --threads 2 --seconds 5 --json | tee -a "$OUT/concurrent.jsonl"
done
echo "== known-item (vector, BM25, hybrid)"
"$BIN" bench --data "$DATA" --known-item --json | tee -a "$OUT/known-item.jsonl"
echo "== many shards: 200 x 1,000 x 384 (create, reopen, search across shards vs one shard)"
"$BIN" bench --shards 200x1000 --dim 384 --json | tee -a "$OUT/shards.jsonl"
echo "== many shards: 100,000 x 10 x 64 (create rate, memory with 256 open)"
"$BIN" bench --shards 100000x10 --dim 64 --json | tee -a "$OUT/shards.jsonl"
echo "== synthetic 1,000,000 x 128, l2 (bulk insert rate)"
"$BIN" bench --synth 1000000x128 --metric l2 --single-inserts 0 --json | tee -a "$OUT/synth.jsonl"
uptime | tee "$OUT/uptime-end.txt"
