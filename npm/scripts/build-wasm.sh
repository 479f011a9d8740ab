#!/usr/bin/env bash
# Builds the sqlite-vector wasm package into npm/sqlite-vector/dist and checks it:
#   cargo build (-p sqlite-vector-wasm, --profile wasm, +simd128, std rebuilt for size by a
#   pinned nightly) → wasm-bindgen --target web
#   → wasm-opt -Oz (npm binaryen, never Debian's) → copy src/ → smoke test of the optimised
#   module in Node → import check (wasm-bindgen's module only) → size gates.
#
# Environment (all optional):
#   CARGO_TARGET_DIR      cargo's target dir (default: <repo>/target)
#   WASM_SIMD=0           build the scalar kernels (no +simd128; for the kernel benchmark)
#   WASM_OPT_LEVEL=s|z|3  override the profile's opt-level (measurements)
#   WASM_OUT=<dir>        output directory (default npm/sqlite-vector/dist); size gates and the
#                         copy of src/ apply to the default package only
#   WASM_STD=prebuilt     link stable Rust's prebuilt std instead of the size-optimised rebuild
#                         (measurements; the package is built with WASM_STD=build, the default)
#   WASM_NIGHTLY          the nightly toolchain of that rebuild (default: the pinned one below)
#   SQLITE_WASM_RS_FLAGS  SQLite compile flags (default: the trimmed set below; set it to
#                         " " to build SQLite with sqlite-wasm-rs's defaults)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
npm_dir="$(dirname "$here")"
root="$(dirname "$npm_dir")"
pkg="$npm_dir/sqlite-vector"
out="${WASM_OUT:-$pkg/dist}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
wasm_opt="$npm_dir/node_modules/.bin/wasm-opt"

# SQLite features the core does not use (sqlite-wasm-rs turns them on), and OMITs that SQLite
# documents as safe with the amalgamation (none that changes the parser). The core's SQL has no
# date/time functions, UTF-16 APIs, math functions, rtree, sessions, introspection or schema
# pragmas (table_info, index_list, …), generated columns or case_sensitive_like; no
# auto_vacuum (a shard never sets it), no foreign keys (no REFERENCES, never PRAGMA
# foreign_keys), and it needs no automatic indexes (its joins and IN subqueries are on rowids,
# primary keys, FTS5 and json_each): those three -20.8 KB raw / -8.7 KB brotli.
# Then, together about -6 KB raw / -1.5 KB brotli (see npm/README.md): no mmap (the core
# sets no mmap_size without its `mmap` feature), no 0x… integer or X'…' blob literals in SQL
# (the core binds its values), and no optimizations the core's queries do not need: BETWEEN
# and LIKE rewrites (it writes neither), DELETE without WHERE as a truncation, the lookaside
# allocator (small allocations go to Rust's allocator) and the quick balance for appends
# (inserts split pages the general way). Measured and not kept: SQLITE_OMIT_XFER_OPT
# (VACUUM INTO, the export, would copy row by row), -flto for the C code (-3.6 KB raw /
# -0.6 KB brotli, but it needs Debian's clang and Rust's LLVM to agree on bitcode).
# Kept: FTS5, JSON, WAL, deserialize; never omitted: progress callback, authorizer, trace
# (rusqlite's `hooks`). Not omittable: INCRBLOB (FTS5 reads its index through sqlite3_blob_*)
# and DATETIME_FUNCS (CURRENT_TIMESTAMP then needs libc's gmtime/strftime: `env` imports).
# -U cancels a -D of sqlite-wasm-rs (its flags come first); the import check below catches a
# removed symbol that something still references (it would become an `env` import).
default_sqlite_flags="\
-USQLITE_ENABLE_SESSION -USQLITE_ENABLE_PREUPDATE_HOOK -USQLITE_ENABLE_RTREE \
-USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_DBPAGE_VTAB -USQLITE_ENABLE_BYTECODE_VTAB \
-USQLITE_ENABLE_STMTVTAB -USQLITE_ENABLE_COLUMN_METADATA -USQLITE_ENABLE_UNLOCK_NOTIFY \
-USQLITE_ENABLE_OFFSET_SQL_FUNC -USQLITE_ENABLE_API_ARMOR -USQLITE_ENABLE_MATH_FUNCTIONS \
-USQLITE_ENABLE_UNKNOWN_SQL_FUNCTION \
-DSQLITE_OMIT_LOCALTIME -DSQLITE_OMIT_COMPILEOPTION_DIAGS \
-DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_GET_TABLE -DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_COMPLETE \
-DSQLITE_OMIT_INTROSPECTION_PRAGMAS -DSQLITE_UNTESTABLE \
-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_OMIT_DECLTYPE \
-DSQLITE_OMIT_SCHEMA_PRAGMAS -DSQLITE_OMIT_GENERATED_COLUMNS -DSQLITE_OMIT_CASE_SENSITIVE_LIKE_PRAGMA \
-DSQLITE_OMIT_AUTOVACUUM -DSQLITE_OMIT_FOREIGN_KEY -DSQLITE_OMIT_AUTOMATIC_INDEX \
-DSQLITE_MAX_MMAP_SIZE=0 -DSQLITE_OMIT_HEX_INTEGER -DSQLITE_OMIT_BLOB_LITERAL \
-DSQLITE_OMIT_BETWEEN_OPTIMIZATION -DSQLITE_OMIT_LIKE_OPTIMIZATION \
-DSQLITE_OMIT_TRUNCATE_OPTIMIZATION -DSQLITE_OMIT_LOOKASIDE -DSQLITE_OMIT_QUICKBALANCE -DSQLITE_OMIT_WAL \
-DSQLITE_OMIT_XFER_OPT -DSQLITE_OMIT_OR_OPTIMIZATION"
export SQLITE_WASM_RS_FLAGS="${SQLITE_WASM_RS_FLAGS-$default_sqlite_flags}"

rustflags=""
[ "${WASM_SIMD:-1}" = 1 ] && rustflags="-C target-feature=+simd128"

# Rust's standard library rebuilt with the module, for size: -Zbuild-std with the
# `optimize_for_size` feature (smaller sort, fmt and other code paths in core/alloc/std) and
# the whole std under the wasm profile's opt-level z and fat LTO. Measured on the shipped
# module: see npm/README.md. It needs a nightly toolchain with rust-src; the date is pinned
# so a nightly regression cannot change the module unnoticed. The toolchain is installed
# (rustup, minimal profile) when missing, and a failure to get it fails the build: there is
# no silent fallback to the prebuilt std (WASM_STD=prebuilt asks for that explicitly).
pinned_nightly="nightly-2026-05-20"
cargo_cmd=(cargo)
rustc_cmd=(rustc)
build_std=()
case "${WASM_STD:-build}" in
  build)
    nightly="${WASM_NIGHTLY:-$pinned_nightly}"
    if ! rustup component list --toolchain "$nightly" --installed 2>/dev/null | grep -q '^rust-src'; then
      echo "== rustup toolchain install $nightly --profile minimal --component rust-src"
      timeout 900 rustup toolchain install "$nightly" --profile minimal --component rust-src >&2 \
        || { echo "could not install $nightly with rust-src (needed for -Zbuild-std; WASM_STD=prebuilt builds without it)" >&2; exit 1; }
    fi
    cargo_cmd=(rustup run "$nightly" cargo)
    rustc_cmd=(rustup run "$nightly" rustc)
    build_std=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
    # Nightly mangles with v0 by default: wasm-bindgen names its closure shims after the
    # symbols, which then take ~250 bytes each in the module's exports and in the JS glue
    # (+1.2 KB of glue). Legacy mangling, as stable does.
    rustflags="$rustflags -Zunstable-options -Csymbol-mangling-version=legacy"
    # No panic locations (file, line, column): −20.4 KB raw / −4.9 KB brotli, the Location
    # records and the source paths (with std rebuilt, absolute paths of the build machine's
    # rust-src). A panic's message stays (lastPanic: "panicked at <redacted>:0:0:\n<message>").
    rustflags="$rustflags -Zlocation-detail=none"
    # Derived Debug impls print only the type or variant name (−10.5 KB raw / −2.6 KB brotli):
    # they are reached only through panics (unwrap/expect on an Err) and a few Corrupt
    # messages of the core that format an Option or a derived type with {:?} (the HNSW entry
    # point, e.g. "entry point Some is not a loaded node" instead of "Some(12)"). Debug of
    # strings and numbers, which the core's other messages use ("unknown id: \"x\""), is
    # unchanged. -Zfmt-debug=none would break those.
    rustflags="$rustflags -Zfmt-debug=shallow"
    ;;
  prebuilt) ;;
  *) echo "WASM_STD must be build or prebuilt, not ${WASM_STD}" >&2; exit 1 ;;
esac

profile_override=()
if [ -n "${WASM_OPT_LEVEL:-}" ]; then
  profile_override=(--config "profile.wasm.opt-level=$( [ "$WASM_OPT_LEVEL" = 3 ] && echo 3 || echo "\"$WASM_OPT_LEVEL\"")")
fi

command -v wasm-bindgen >/dev/null || { echo "wasm-bindgen not on PATH (cargo install wasm-bindgen-cli --version 0.2.130)" >&2; exit 1; }
[ -x "$wasm_opt" ] || { echo "$wasm_opt missing: run npm ci in $npm_dir" >&2; exit 1; }
want_wbg="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/, "", $3); print $3}' "$root/Cargo.lock")"
have_wbg="$(wasm-bindgen --version | awk '{print $2}')"
[ "$want_wbg" = "$have_wbg" ] || { echo "wasm-bindgen CLI $have_wbg differs from the crate's $want_wbg" >&2; exit 1; }

t0=$SECONDS
echo "== cargo build ($("${rustc_cmd[@]}" --version), std ${WASM_STD:-build}, simd128=${WASM_SIMD:-1}, opt-level=${WASM_OPT_LEVEL:-profile}, target dir $target_dir)"
( cd "$root" && CARGO_TARGET_DIR="$target_dir" RUSTFLAGS="$rustflags" \
    "${cargo_cmd[@]}" build -q -p sqlite-vector-wasm --target wasm32-unknown-unknown --profile wasm \
    "${build_std[@]}" "${profile_override[@]}" )
cargo_wasm="$target_dir/wasm32-unknown-unknown/wasm/sqlite_vector_wasm.wasm"
echo "   $(stat -c %s "$cargo_wasm") bytes from cargo ($((SECONDS - t0)) s)"

echo "== wasm-bindgen --target web"
rm -rf "$out/wasm"
mkdir -p "$out/wasm"
wasm-bindgen --target web --out-dir "$out/wasm" "$cargo_wasm"
bg="$out/wasm/sqlite_vector_wasm_bg.wasm"
echo "   $(stat -c %s "$bg") bytes"

echo "== wasm-opt -Oz --converge (binaryen $("$wasm_opt" --version | awk '{print $3}'))"
t1=$SECONDS
# Features: the module's target_features section (rustc's defaults: bulk-memory, multivalue,
# mutable-globals, nontrapping-fptoint, reference-types, sign-ext) plus simd128, named
# explicitly so that wasm-opt never lowers or refuses what the module uses.
# --converge repeats -Oz until the module stops shrinking: 1.5 KB raw, 0.9 KB brotli for
# twice the time (about 90 s on 2 cores). --low-memory-unused lets wasm-opt fold constant
# address offsets into loads and stores (−12.0 KB raw / −4.1 KB brotli, measured without
# --converge): it assumes that no access reaches the lowest 1 KB of memory by wrapping around,
# which Rust's code never does (address 0 is null; the stack, first in memory, would have
# overflowed to get there).
# Measured and not kept: --zero-filled-memory (no change), --gufa before -Oz (+0.7 KB),
# --optimize-added-constants-propagate (+0.1 KB over --low-memory-unused alone).
"$wasm_opt" -Oz --converge --low-memory-unused --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  --strip-debug --strip-producers "$bg" -o "$bg.opt"
mv "$bg.opt" "$bg"
echo "   $(stat -c %s "$bg") bytes ($((SECONDS - t1)) s)"

# The generated d.ts stays internal (the package's API is src/index.d.ts).
rm -f "$out/wasm/package.json" "$out/wasm/.gitignore"
gates=()
if [ -z "${WASM_OUT:-}" ]; then
  cp "$pkg"/src/*.js "$pkg"/src/*.json "$pkg"/src/*.d.ts "$out/"
  gates=(--gates)
else
  # The glue is ESM: mark a directory outside the package as such.
  echo '{"type":"module","private":true}' > "$out/package.json"
fi

echo "== smoke test, imports and sizes of the optimised module"
status=0
node "$here/check-wasm.mjs" "$out" "${gates[@]}" || status=$?
echo "== built $out in $((SECONDS - t0)) s"
# 3: only the raw size target is missed; 4: a hard size limit is exceeded (the module works in
# both cases); anything else: broken.
exit "$status"
