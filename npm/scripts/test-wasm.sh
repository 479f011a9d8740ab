#!/usr/bin/env bash
# What CI runs for the wasm package: npm tools (npm ci only when node_modules is missing or
# older than the lock file), build-wasm.sh (build, wasm-opt, smoke test, import check, size
# gates), then the Node test suite against the built package, requiring every test to pass
# and at least MIN_TESTS of them to have run. Idempotent: rerunning rebuilds incrementally.
# A failed size gate still runs the tests, then fails the script (SIZE_GATES=report: it only
# reports them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
npm_dir="$(dirname "$here")"
min_tests="${MIN_TESTS:-18}"

cd "$npm_dir"
echo "node $(node --version), npm $(npm --version), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}')"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

build_status=0
bash "$here/build-wasm.sh" || build_status=$?
if [ "$build_status" != 0 ] && [ "$build_status" != 3 ] && [ "$build_status" != 4 ]; then
  echo "build-wasm.sh failed ($build_status)" >&2
  exit "$build_status"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
node --test --test-reporter=tap test/api.test.mjs test/snapshot.test.mjs test/mcp.test.mjs >"$log" 2>&1 || status=$?
grep -E '^(not )?ok |^# (tests|pass|fail)' "$log"
passed="$(awk '/^# pass /{print $3}' "$log")"
failed="$(awk '/^# fail /{print $3}' "$log")"
if [ "$status" != 0 ] || [ "${failed:-1}" != 0 ] || [ "${passed:-0}" -lt "$min_tests" ]; then
  cat "$log" >&2
  echo "node tests failed: exit $status, ${passed:-0} passed (at least $min_tests needed), ${failed:-?} failed" >&2
  exit 1
fi
echo "node tests: $passed passed"
if [ "$build_status" = 4 ]; then
  echo "a hard size limit is exceeded (see above)" >&2
  exit 1
fi
if [ "$build_status" = 3 ]; then
  if [ "${SIZE_GATES:-enforce}" = report ]; then
    echo "the raw size target (< 1,000,000 B) is NOT met (see above; SIZE_GATES=report: reported, not enforced); the hard limits hold"
  else
    echo "size target missed (see above)" >&2
    exit 1
  fi
fi
