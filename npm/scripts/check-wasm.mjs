// Checks a built wasm package directory (argument 1): loads the OPTIMISED module in Node with
// initSync (a broken wasm-opt shows up here, not at load in a user's app), runs a small
// insert/search round trip, checks that the module imports nothing but wasm-bindgen's glue (a
// SQLite symbol removed by SQLITE_WASM_RS_FLAGS but still referenced would be an `env`
// import), and prints the sizes. With --gates it exits 4 when a size is over a hard limit
// (issue 14: the .wasm never above 1,150,000 B raw, brotli -q11 ≤ 471,040 B, the JS glue ≤
// 61,440 B), else 3 when only the target of < 1,000,000 B raw is missed.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const dir = process.argv[2];
const gates = process.argv.includes('--gates');
const wasmPath = join(dir, 'wasm', 'sqlite_vector_wasm_bg.wasm');
const bytes = readFileSync(wasmPath);
const failures = [];

// 1. Imports: only the glue module (checked before the glue is loaded, which would fail on them).
const module = new WebAssembly.Module(bytes);
const modules = [...new Set(WebAssembly.Module.imports(module).map((i) => i.module))];
if (modules.length !== 1 || modules[0] !== './sqlite_vector_wasm_bg.js') {
  const foreign = WebAssembly.Module.imports(module).filter((i) => i.module !== './sqlite_vector_wasm_bg.js');
  console.error(`FAIL: imports ${JSON.stringify(foreign)}: only ./sqlite_vector_wasm_bg.js is allowed`);
  process.exit(1);
}

// 2. Smoke test of the optimised module through the generated glue.
const glue = await import(pathToFileURL(join(dir, 'wasm', 'sqlite_vector_wasm.js')).href);
glue.initSync({ module });
const db = new glue.Db(4, 'cosine', '{}');
db.insert(new Float32Array([1, 0, 0, 0]), '{"id":"a","text":"hello world"}');
db.insert(new Float32Array([0, 1, 0, 0]), '{"id":"b","metadata":{"n":2}}');
const hits = JSON.parse(db.search(new Float32Array([0.9, 0.1, 0, 0]), '{"k":2}'));
const text = JSON.parse(db.searchText('hello', '{}'));
const stats = JSON.parse(db.stats());
let kind;
try {
  db.insert(new Float32Array([1, 2, 3]), '{}');
} catch (e) {
  kind = e.kind;
}
db.close();
const ok =
  hits.length === 2 && hits[0].id === 'a' && hits[1].id === 'b' &&
  text.length === 1 && text[0].id === 'a' && stats.count === 2 && kind === 'InvalidInput';
if (!ok) failures.push(`smoke test: ${JSON.stringify({ hits, text, stats, kind })}`);
console.log(`   smoke: sqlite ${glue.sqliteVersion()}, search method ${stats.search_method}`);

// 3. Sizes.
const raw = bytes.length;
const gz = gzipSync(bytes, { level: 9 }).length;
const br = brotliCompressSync(bytes, {
  params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw },
}).length;
// The JS glue: what wasm-bindgen generates. Reported beside it: all the JS a browser loads
// (the glue and the package's browser.js, worker.js, core.js, errors.js).
const glueFiles = readdirSync(join(dir, 'wasm')).filter((f) => f.endsWith('.js')).map((f) => join(dir, 'wasm', f));
const glueBytes = glueFiles.reduce((n, f) => n + statSync(f).size, 0);
const browserFiles = ['browser.js', 'worker.js', 'core.js', 'errors.js'].map((f) => join(dir, f)).filter((f) => {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
});
const browserBytes = glueBytes + browserFiles.reduce((n, f) => n + statSync(f).size, 0);
console.log(
  `   wasm: ${raw} B raw, ${gz} B gzip -9, ${br} B brotli -q11; JS glue: ${glueBytes} B; ` +
    `JS a browser loads: ${browserBytes} B`,
);
if (failures.length) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
// Size gates last, with their own exit codes (4: a hard limit; 3: only the raw target), so a
// caller can still run the tests on a module that works but is too big.
const over = [];
const missed = [];
if (gates) {
  if (raw > 1_150_000) over.push(`wasm is ${raw} B raw, the ceiling is 1,150,000`);
  if (br > 471_040) over.push(`wasm is ${br} B brotli, the limit is 471,040`);
  if (glueBytes > 61_440) over.push(`the JS glue is ${glueBytes} B, the limit is 61,440`);
  if (raw >= 1_000_000) missed.push(`wasm is ${raw} B raw, the target is < 1,000,000`);
}
for (const f of over) console.error(`FAIL (size gate): ${f}`);
for (const f of missed) console.error(`MISSED (size target): ${f}`);
if (over.length) process.exit(4);
if (missed.length) process.exit(3);
