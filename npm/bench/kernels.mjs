// Kernel benchmark of issue 14: exact top-10 search over 20,000 × 384 (cosine, seeded random
// vectors) in a simd128 build against a scalar build (no +simd128: the core's scalar
// kernels), both through wasm-opt -Oz, each in a fresh Node process. Prints the median ms of
// each and the ratio (target: simd128 ≥ 1.5× faster), and checks both return the same hits.
//
//   node npm/bench/kernels.mjs [--no-build] [--queries N]
//
// It builds both variants with scripts/build-wasm.sh into $TMPDIR/sqlite-vector-kernels/{simd128,
// scalar}; the scalar build uses its own cargo target dir ($CARGO_TARGET_DIR-scalar, or
// target-scalar), so the two RUSTFLAGS do not rebuild each other's artifacts.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { rng } from '../test/seeded.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const base = join(tmpdir(), 'sqlite-vector-kernels');
const N = 20_000, DIM = 384, K = 10;

async function measure(dir, queries) {
  const glue = await import(pathToFileURL(join(dir, 'wasm', 'sqlite_vector_wasm.js')).href);
  const { readFileSync } = await import('node:fs');
  glue.initSync({ module: readFileSync(join(dir, 'wasm', 'sqlite_vector_wasm_bg.wasm')) });
  const db = new glue.Db(DIM, 'cosine', '{}');
  const r = rng(20_000);
  const chunk = 2_000;
  for (let start = 0; start < N; start += chunk) {
    const flat = new Float32Array(chunk * DIM);
    for (let i = 0; i < flat.length; i++) flat[i] = r() * 2 - 1;
    db.insertBatch(flat, JSON.stringify(Array.from({ length: chunk }, (_, i) => ({ id: `v${start + i}` }))));
  }
  const qr = rng(384);
  const qs = Array.from({ length: queries }, () => Float32Array.from({ length: DIM }, () => qr() * 2 - 1));
  const opts = JSON.stringify({ k: K, exact: true });
  for (let i = 0; i < 5; i++) db.search(qs[i % qs.length], opts);
  const times = [];
  const tops = [];
  for (const q of qs) {
    const t = performance.now();
    const hits = db.search(q, opts);
    times.push(performance.now() - t);
    tops.push(JSON.parse(hits).map((h) => h.id).join(','));
  }
  times.sort((a, b) => a - b);
  const stats = JSON.parse(db.stats());
  return { median: times[times.length >> 1], min: times[0], max: times.at(-1), method: stats.search_method, tops };
}

if (process.argv[2] === '--child') {
  const result = await measure(process.argv[3], Number(process.argv[4]));
  process.stdout.write(JSON.stringify(result));
} else {
  const args = process.argv.slice(2);
  const queries = args.includes('--queries') ? Number(args[args.indexOf('--queries') + 1]) : 31;
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
  const variants = [
    { name: 'simd128', dir: join(base, 'simd128'), env: { WASM_SIMD: '1', CARGO_TARGET_DIR: targetDir } },
    { name: 'scalar', dir: join(base, 'scalar'), env: { WASM_SIMD: '0', CARGO_TARGET_DIR: `${targetDir}-scalar` } },
  ];
  for (const v of variants) {
    if (args.includes('--no-build') && existsSync(join(v.dir, 'wasm'))) continue;
    console.log(`building ${v.name} (${v.env.CARGO_TARGET_DIR})`);
    execFileSync('bash', [join(root, 'npm', 'scripts', 'build-wasm.sh')], {
      stdio: 'inherit',
      env: { ...process.env, ...v.env, WASM_OUT: v.dir },
    });
  }
  const results = {};
  for (const v of variants) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', v.dir, String(queries)]);
    results[v.name] = JSON.parse(out);
    const r = results[v.name];
    console.log(`${v.name}: ${r.method}, exact top-${K} over ${N} × ${DIM}: median ${r.median.toFixed(2)} ms (min ${r.min.toFixed(2)}, max ${r.max.toFixed(2)}, ${queries} queries)`);
  }
  const same = results.simd128.tops.every((t, i) => t === results.scalar.tops[i]);
  const ratio = results.scalar.median / results.simd128.median;
  console.log(`speed-up simd128 vs scalar: ${ratio.toFixed(2)}× (target ≥ 1.5×); same top-${K} ids: ${same}`);
  if (!results.simd128.method.includes('simd128') || results.scalar.method.includes('simd128')) {
    console.error('FAIL: the builds did not use the expected kernels');
    process.exit(1);
  }
  if (!same) process.exit(1);
}
