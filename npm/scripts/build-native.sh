#!/usr/bin/env bash
# Builds the native platform package npm/platforms/linux-x64-gnu: the `sqlite-vector` CLI (the
# MCP server the `npx sqlite-vector` shim runs) and the Node addon (crates/node, loaded by the
# main package's node.js), copied there without their symbols.
#
#   bash npm/scripts/build-native.sh [--profile dev|release|dist]   (default dev)
#
# `dist` is what a release ships (fat LTO, one codegen unit; the size and speed numbers of
# BENCHMARKS.md); CI packs the `dev` build, which reuses the test build's dependencies.
# Environment: CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
npm_dir="$(dirname "$here")"
root="$(dirname "$npm_dir")"
profile=dev
if [ "${1:-}" = --profile ]; then profile="${2:?--profile needs a name}"; fi
case "$profile" in dev) dir=debug ;; *) dir="$profile" ;; esac
target_dir="${CARGO_TARGET_DIR:-$root/target}"
pkg="$npm_dir/platforms/linux-x64-gnu"

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { echo "build-native.sh builds linux-x64-gnu only (this is $(uname -s)-$(uname -m))" >&2; exit 1; }

t0=$SECONDS
# Without the CLI's default feature `demo-data` (the demo's 3.6 MB sample): the package would
# not fit in its 15 MB otherwise; `sqlite-vector demo` then says where to run it.
# Two builds, not one: each then unifies features as the test build and `cargo run -p
# sqlite-vector-cli` do, so that in CI they reuse those builds' dependencies.
(cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo build -q --profile "$profile" -p sqlite-vector-node)
(cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo build -q --profile "$profile" -p sqlite-vector-cli --no-default-features)
echo "cargo build --profile $profile: $((SECONDS - t0)) s"
# strip: the dev and release profiles keep line tables (about 3/4 of the files).
strip -o "$pkg/sqlite-vector" "$target_dir/$dir/sqlite-vector"
strip -o "$pkg/sqlite-vector.node" "$target_dir/$dir/libsqlite_vector_node.so"
chmod 755 "$pkg/sqlite-vector"
chmod 644 "$pkg/sqlite-vector.node"
echo "$pkg: sqlite-vector $(stat -c %s "$pkg/sqlite-vector") B, sqlite-vector.node $(stat -c %s "$pkg/sqlite-vector.node") B ($profile)"
