#!/usr/bin/env bash
# The npm packages as users get them (issue 15): `npm pack` of the main package (built by
# build-wasm.sh) and of the platform package (build-native.sh), installed from the tarballs
# into fresh projects, then:
#   - the tarballs: no install scripts, no binding.gyp, the CLI executable, main ≤ 1.5 MB;
#   - the API suite with SQLITE_VECTOR_BACKEND=native and =wasm, the parity test (both
#     backends in one process), the files test (each backend's file opened by the other in a
#     new process; several native writers on one file) and the shard manager (native);
#   - `tsc --noEmit` of a consumer under moduleResolution bundler and node16; publint;
#   - `npx --no sqlite-vector mcp` driven by the Python MCP client ($SQLITE_VECTOR_MCP_PYTHON),
#     native and wasm;
#   - a project installed with --omit=optional: wasm chosen and saying why, `native` refused.
# Needs: node/npm, npm/node_modules (npm ci), the built packages. Network: the npm registry only
# (npm looks the optional platform package up there).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
npm_dir="$(dirname "$here")"
main="$npm_dir/sqlite-vector"
plat="$npm_dir/platforms/linux-x64-gnu"
bin="$npm_dir/node_modules/.bin"
python="${SQLITE_VECTOR_MCP_PYTHON:-python3}"

[ -f "$main/dist/node.js" ] && [ -f "$main/dist/mcp.js" ] || { echo "build the main package first (npm/scripts/build-wasm.sh)" >&2; exit 1; }
[ -f "$plat/sqlite-vector.node" ] && [ -x "$plat/sqlite-vector" ] || { echo "build the platform package first (npm/scripts/build-native.sh)" >&2; exit 1; }
"$python" -c 'import mcp' 2>/dev/null || { echo "$python has no mcp package (pip install mcp==2.3.0)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sv-pack-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
echo "node $(node --version), npm $(npm --version), work dir $work"

fail() { echo "FAILED: $*" >&2; exit 1; }

# Runs node --test on the given files in the current directory; fails unless every test passed
# and at least $1 ran.
run_tests() {
  local min="$1"; shift
  local log="$work/test.log" status=0
  node --test --test-reporter=tap "$@" >"$log" 2>&1 || status=$?
  local pass fail
  pass="$(awk '/^# pass /{print $3}' "$log")"
  fail="$(awk '/^# fail /{print $3}' "$log")"
  grep -E '^(not )?ok |^# (pass|fail|skipped|SQLite)|^# \\# ' "$log" | sed 's/^/    /'
  if [ "$status" != 0 ] || [ "${fail:-1}" != 0 ] || [ "${pass:-0}" -lt "$min" ]; then
    cat "$log" >&2
    fail "node --test $* (${SQLITE_VECTOR_BACKEND:-default backend}): ${pass:-0} passed (≥ $min needed), ${fail:-?} failed"
  fi
}

echo "== npm pack"
(cd "$work" && npm pack --json --pack-destination "$work" "$main" "$plat" >"$work/pack.json")
node - "$work/pack.json" <<'EOF'
const [entries] = [JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'))];
for (const e of entries) {
  console.log(`   ${e.filename}: ${e.size} B packed, ${e.unpackedSize} B unpacked, ${e.entryCount} files`);
  const gyp = e.files.filter((f) => f.path.endsWith('binding.gyp'));
  if (gyp.length) throw new Error(`${e.name} ships ${gyp[0].path}: npm would add node-gyp rebuild as an install script`);
  if (e.name === 'sqlite-vector' && e.size > 1_500_000) throw new Error(`${e.filename} is ${e.size} B packed (limit 1,500,000)`);
  if (e.name === '@sqlite-vector/linux-x64-gnu' && e.size > 15_000_000) {
    console.log(`   NOTE: ${e.filename} is over the 15 MB target of a release build (this may be a dev build)`);
  }
}
EOF
main_tgz="$work/sqlite-vector-0.1.0.tgz"
plat_tgz="$work/sqlite-vector-linux-x64-gnu-0.1.0.tgz"
for t in "$main_tgz" "$plat_tgz"; do
  scripts="$(tar -xOzf "$t" package/package.json | node -e 'const p = JSON.parse(require("node:fs").readFileSync(0, "utf8")); console.log(Object.keys(p.scripts ?? {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s)).join(" "))')"
  [ -z "$scripts" ] || fail "$(basename "$t") has install scripts: $scripts"
done
tar -tvzf "$plat_tgz" | grep -E ' package/sqlite-vector$' | grep -q '^-rwx' || fail "the CLI in $(basename "$plat_tgz") is not executable"
echo "   no install scripts, no binding.gyp; the CLI is executable"

echo "== publint"
"$bin/publint" run "$main" --strict
"$bin/publint" run "$plat" --strict

echo "== a project with both packages (npm install <main.tgz> <platform.tgz>)"
proj="$work/app"
mkdir -p "$proj" && cd "$proj"
npm init -y >/dev/null
npm install "$main_tgz" "$plat_tgz" >/dev/null
cp "$npm_dir/test/api.test.mjs" "$npm_dir/test/parity.test.mjs" "$npm_dir/test/files.test.mjs" \
  "$npm_dir/test/manager.test.mjs" "$npm_dir/test/seeded.mjs" .
info="$(node --input-type=module -e "import('sqlite-vector').then((m) => console.log(JSON.stringify(m.backendInfo())))")"
echo "   default backend: $info"
[ "$info" = '{"backend":"native","reason":null}' ] || fail "the installed platform package is not picked: $info"
for backend in native wasm; do
  echo "-- API suite, SQLITE_VECTOR_BACKEND=$backend"
  SQLITE_VECTOR_PKG=sqlite-vector SQLITE_VECTOR_BACKEND=$backend run_tests 9 api.test.mjs
done
echo "-- parity (both backends, one process) and files (each backend's file in the other, new processes)"
SQLITE_VECTOR_PKG=sqlite-vector run_tests 3 parity.test.mjs files.test.mjs
echo "-- the shard manager (native)"
SQLITE_VECTOR_PKG=sqlite-vector run_tests 2 manager.test.mjs
bad="$(SQLITE_VECTOR_BACKEND=fast node --input-type=module -e "import('sqlite-vector').then((m) => m.open({dim: 2})).then(() => console.log('opened'), (e) => console.log(e.kind))")"
[ "$bad" = InvalidInput ] || fail "SQLITE_VECTOR_BACKEND=fast: expected InvalidInput, got $bad"

echo "-- tsc --noEmit (bundler, node16)"
cp "$npm_dir/test/types/"* .
for cfg in tsconfig.bundler.json tsconfig.node16.json; do
  "$bin/tsc" -p "$cfg" || fail "tsc -p $cfg"
  echo "    $cfg: ok"
done

echo "-- the shim: exit status and signals of the native CLI passed on"
status=0
npx --no sqlite-vector stats "$work/missing.db" 2>"$work/err" || status=$?
[ "$status" = 2 ] && grep -q 'no such file' "$work/err" || fail "npx sqlite-vector stats <missing>: exit $status ($(cat "$work/err"))"
# stdin a fifo held open here, so that the server waits for input and $! is node's pid.
mkfifo "$work/stdin"
node node_modules/.bin/sqlite-vector mcp --root "$work/root-signal" <"$work/stdin" &
shim=$!
exec 3>"$work/stdin"
for _ in $(seq 50); do pgrep -f "linux-x64-gnu/sqlite-vector mcp --root $work/root-signal" >/dev/null && break; sleep 0.1; done
child="$(pgrep -f "linux-x64-gnu/sqlite-vector mcp --root $work/root-signal")" || fail "the shim did not start the native CLI"
kill -TERM "$shim"
status=0
wait "$shim" || status=$?
sleep 0.2
exec 3>&-
[ "$status" = 143 ] || fail "SIGTERM to the shim: exit $status, expected 143 (died of SIGTERM)"
! kill -0 "$child" 2>/dev/null || fail "the native CLI (pid $child) outlived the shim"
echo "    exit status 2 passed on; SIGTERM forwarded (the CLI gone, the shim died of SIGTERM: 143)"

echo "-- npx --no sqlite-vector mcp (Python MCP client): native, then SQLITE_VECTOR_BACKEND=wasm"
"$python" "$npm_dir/test/mcp_npx.py" "$proj" "$work/root-native" native
"$python" "$npm_dir/test/mcp_npx.py" "$proj" "$work/root-wasm" wasm

echo "-- npx straight from the tarballs (no project): both packages, then the main one alone (wasm fallback)"
(cd "$work" && SQLITE_VECTOR_NPX_ARGS='["-y", "--package", "./sqlite-vector-0.1.0.tgz", "--package", "./sqlite-vector-linux-x64-gnu-0.1.0.tgz", "sqlite-vector"]' \
  "$python" "$npm_dir/test/mcp_npx.py" "$work" "$work/root-npx-native" native)
(cd "$work" && SQLITE_VECTOR_NPX_ARGS='["-y", "./sqlite-vector-0.1.0.tgz"]' \
  "$python" "$npm_dir/test/mcp_npx.py" "$work" "$work/root-npx-wasm" fallback)

echo "== a project without the platform package (npm install --omit=optional <main.tgz>)"
proj2="$work/app-wasm"
mkdir -p "$proj2" && cd "$proj2"
npm init -y >/dev/null
npm install --omit=optional "$main_tgz" >/dev/null
[ ! -e node_modules/@sqlite-vector/linux-x64-gnu ] || fail "--omit=optional installed the platform package"
info="$(node --input-type=module -e "import('sqlite-vector').then((m) => console.log(JSON.stringify(m.backendInfo())))")"
echo "   default backend: $info"
case "$info" in *'"backend":"wasm"'*'not installed'*) ;; *) fail "expected wasm, saying the platform package is missing: $info" ;; esac
forced="$(SQLITE_VECTOR_BACKEND=native node --input-type=module -e "import('sqlite-vector').then((m) => m.open({dim: 2})).then(() => console.log('opened'), (e) => console.log(e.kind))")"
[ "$forced" = BackendUnavailable ] || fail "SQLITE_VECTOR_BACKEND=native without the platform package: expected BackendUnavailable, got $forced"
status=0
SQLITE_VECTOR_BACKEND=native npx --no sqlite-vector mcp --root "$work/x" </dev/null >"$work/out" 2>"$work/err" || status=$?
[ "$status" != 0 ] && [ ! -s "$work/out" ] || fail "npx sqlite-vector mcp with SQLITE_VECTOR_BACKEND=native and no platform package: exit $status, stdout $(head -c 200 "$work/out")"
echo "   SQLITE_VECTOR_BACKEND=native: exit $status, stderr: $(head -n 1 "$work/err")"
echo "-- npx --no sqlite-vector mcp without the platform package (the wasm fallback, nothing forced)"
"$python" "$npm_dir/test/mcp_npx.py" "$proj2" "$work/root-fallback" fallback

echo "pack-and-test: all passed"
