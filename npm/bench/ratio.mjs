// WebAssembly vs native, issue 14's speed targets: (a) exact top-10 over 20,000 × 384 (cosine):
// wasm ≤ 3× native; (b) HNSW search at recall@10 ≥ 0.95 against exact search: wasm ≤ 3× native;
// (c) inserting 10,000 items with text: wasm ≤ 4× native. The wasm side runs here through the
// npm package's Node entry (dist/node.js, the public async API); the native side is
// crates/jsapi/examples/wasm_ratio.rs, the same workload through sqlite_vector_jsapi::Db (the
// layer the wasm module wraps). Data: the first rows of ../shared/data/debian-minilm/base.npy
// (real MiniLM vectors), queries.npy, and the base items' texts from texts.jsonl.
//
//   # wasm alone (one JSON object; the same options as the example):
//   node npm/bench/ratio.mjs --child [--layer api|glue] [--dist DIR] [--n 20000] [--queries 31] [--hnsw-queries 200]
//        [--runs 5] [--m 16] [--ef-construction 200] [--ef 16,32,64] [--insert-n 10000] [--batch 1000]
//   # native and wasm alternately, each run in a fresh process, and the ratios:
//   cargo build --release -p sqlite-vector-jsapi --example wasm_ratio
//   cp target/release/examples/wasm_ratio /tmp/wasm_ratio-1t
//   cargo build --release -p sqlite-vector-jsapi --example wasm_ratio --features sqlite-vector/default
//   cp target/release/examples/wasm_ratio /tmp/wasm_ratio-default
//   node npm/bench/ratio.mjs --rounds 3 --native 1t=/tmp/wasm_ratio-1t --native default=/tmp/wasm_ratio-default
//
// Native Node backend (issue 15: napi search within 1.2× of the native in-process number):
//   cp target/dist/libsqlite_vector_node.so /tmp/napi-dist.node   # require() needs .node
//   node npm/bench/ratio.mjs --rounds 3 --backend wasm,native --addon /tmp/napi-dist.node \
//        --native default=/tmp/wasm_ratio-default
// `--backend wasm` (default), `native` or `wasm,native`: which backend(s) the Node child runs.
// `native` runs it with SQLITE_VECTOR_BACKEND=native and SQLITE_VECTOR_ADDON=`--addon PATH`
// (without `--addon`, the platform package); the child checks `db.backend` and its rows are
// labelled `napi`. With `--layer glue` the native child calls the addon's raw `Db` class (JSON
// text, awaiting its promises) instead of the public API. The children's order alternates
// from round to round. The child also times round trips of near no-op calls on the 20,000-row
// shard: `miss_ms`, get() of a missing id (for napi mostly the cost of one AsyncTask hop: a
// libuv pool thread woken, then the JS thread), and `stats_ms` (stats() counts: not free).
// After the rounds: medians over the rounds of each side's numbers, and their ratios.
//
// `--dist DIR` measures another copy of the package's dist/ (default ../sqlite-vector/dist).
// `--layer api` (default) calls the public API of dist/node.js; `--layer glue` the wasm-bindgen
// class under it with JSON text, as the native side calls sqlite_vector_jsapi::Db (what the JS
// API itself costs); `--layer api,glue` runs both. Every other option is passed to both sides.
// Per round: each native binary, then a fresh Node child per layer.
// Medians: per-query samples over queries × runs; inserts over the runs' totals. The JSON of the
// items is built inside the timing on both sides (the JS API stringifies inside its call; the
// native side serialises with serde_json), and both sides parse each search's JSON hits.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const DIM = 384, K = 10;

function parseArgs(argv) {
  const a = {
    data: resolve(here, '..', '..', '..', 'shared', 'data', 'debian-minilm'),
    dist: resolve(here, '..', 'sqlite-vector', 'dist'),
    n: 20_000, queries: 31, hnsw_queries: 200, runs: 5, m: 16, ef_construction: 200,
    ef: [16, 32, 64], insert_n: 10_000, batch: 1_000,
    layer: 'api', layers: ['api'], child: false, rounds: 3, native: [], pass: [],
    backend: 'wasm', backends: ['wasm'], addon: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--child') { a.child = true; continue; }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const key = flag.replace(/^--/, '').replaceAll('-', '_');
    if (key === 'native') {
      const [label, bin] = value.split('=');
      a.native.push({ label, bin: resolve(bin) });
    } else if (key === 'dist' || key === 'data') {
      a[key] = resolve(value);
    } else if (key === 'ef') {
      a.ef = value.split(',').map(Number);
      a.pass.push(flag, value);
    } else if (key === 'layer') {
      a.layers = value.split(',');
      a.layer = a.layers[0];
    } else if (key === 'backend') {
      a.backends = value.split(',');
      for (const b of a.backends) if (b !== 'wasm' && b !== 'native') throw new Error(`--backend wasm or native, not ${b}`);
      a.backend = a.backends[0];
    } else if (key === 'addon') {
      a.addon = resolve(value);
    } else if (key === 'rounds') {
      a.rounds = Number(value);
    } else if (key in a) {
      a[key] = Number(value);
      a.pass.push(flag, value);
    } else {
      throw new Error(`unknown option ${flag}`);
    }
  }
  return a;
}

// The first `rows` rows of a little-endian f32 .npy file of DIM columns.
function readNpy(path, rows) {
  const bytes = readFileSync(path);
  if (bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const [headerLen, start] = bytes[6] === 1 ? [bytes.readUInt16LE(8), 10] : [bytes.readUInt32LE(8), 12];
  const header = bytes.toString('latin1', start, start + headerLen);
  if (!header.includes("'<f4'") || !header.includes('False')) throw new Error(header);
  const off = start + headerLen;
  const out = new Float32Array(rows * DIM);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(off + 4 * i);
  return out;
}

function readTexts(path, rows) {
  return readFileSync(path, 'utf8').split('\n').slice(0, rows).map((l) => JSON.parse(l).text);
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1];
}

// FNV-1a (32 bits) over UTF-8 bytes, as the Rust example.
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

// The calls of the workload through the package's public API (`--layer api`, default: async
// methods, options and items as JS objects) or straight through the wasm-bindgen class
// (`--layer glue`: JSON text in and out, as the native example calls sqlite_vector_jsapi::Db).
async function layer(a) {
  if (a.layer === 'api') {
    const { open } = await import(pathToFileURL(join(a.dist, 'node.js')).href);
    return {
      open: async () => {
        const db = await open({ dim: DIM, metric: 'cosine' });
        if (db.backend !== a.backend) throw new Error(`db.backend is ${db.backend}, not ${a.backend}`);
        return db;
      },
      insertRange: (db, vectors, start, end, item) => {
        const items = [];
        for (let i = start; i < end; i++) items.push({ ...item(i), vector: vectors.subarray(i * DIM, (i + 1) * DIM) });
        return db.insertBatch(items);
      },
      insert: (db, vector, item) => db.insert({ ...item, vector }),
      search: async (db, q, options) => (await db.search(q, options)).map((h) => h.id),
      createIndex: (db, options) => db.createIndex(options),
      stats: (db) => db.stats(),
      miss: (db) => db.get('missing').then(() => { throw new Error('found missing'); }, () => {}),
      close: (db) => db.close(),
    };
  }
  if (a.layer !== 'glue') throw new Error(`--layer api or glue, not ${a.layer}`);
  if (a.backend === 'native') {
    // The napi addon's raw class: the same JSON text calls, each answering with a promise.
    const path = process.env.SQLITE_VECTOR_ADDON ?? a.addon;
    if (!path) throw new Error('--backend native --layer glue needs --addon PATH');
    const addon = createRequire(import.meta.url)(resolve(path));
    const json = new Map();
    const text = (options) => json.get(options) ?? json.set(options, JSON.stringify(options)).get(options);
    return {
      open: async () => new addon.Db(DIM, 'cosine', '{}'),
      insertRange: async (db, vectors, start, end, item) => {
        const items = [];
        for (let i = start; i < end; i++) items.push(item(i));
        return db.insertBatch(vectors.subarray(start * DIM, end * DIM), JSON.stringify(items));
      },
      insert: (db, vector, item) => db.insert(vector, JSON.stringify(item)),
      search: async (db, q, options) => JSON.parse(await db.search(q, text(options))).map((h) => h.id),
      createIndex: (db, options) => db.createIndex(JSON.stringify(options)),
      stats: async (db) => JSON.parse(await db.stats()),
      miss: (db) => db.get('missing').then(() => { throw new Error('found missing'); }, () => {}),
      close: async (db) => db.close(),
    };
  }
  const glue = await import(pathToFileURL(join(a.dist, 'wasm', 'sqlite_vector_wasm.js')).href);
  glue.initSync({ module: readFileSync(join(a.dist, 'wasm', 'sqlite_vector_wasm_bg.wasm')) });
  const json = new Map();
  const text = (options) => json.get(options) ?? json.set(options, JSON.stringify(options)).get(options);
  return {
    open: async () => new glue.Db(DIM, 'cosine', '{}'),
    insertRange: async (db, vectors, start, end, item) => {
      const items = [];
      for (let i = start; i < end; i++) items.push(item(i));
      return db.insertBatch(vectors.subarray(start * DIM, end * DIM), JSON.stringify(items));
    },
    insert: async (db, vector, item) => db.insert(vector, JSON.stringify(item)),
    search: async (db, q, options) => JSON.parse(db.search(q, text(options))).map((h) => h.id),
    createIndex: async (db, options) => db.createIndex(JSON.stringify(options)),
    stats: async (db) => JSON.parse(db.stats()),
    miss: async (db) => {
      try {
        db.get('missing');
      } catch {
        return;
      }
      throw new Error('found missing');
    },
    close: async (db) => {
      db.close();
      db.free();
    },
  };
}

async function measure(a) {
  const L = await layer(a);
  const nq = Math.max(a.queries, a.hnsw_queries);
  const base = readNpy(join(a.data, 'base.npy'), Math.max(a.n, a.insert_n));
  const queries = readNpy(join(a.data, 'queries.npy'), nq);
  const texts = readTexts(join(a.data, 'texts.jsonl'), a.insert_n);
  const row = (v, i) => v.subarray(i * DIM, (i + 1) * DIM);
  const query = (i) => row(queries, i).slice();
  const search = L.search;

  // 1. The search shard.
  const db = await L.open();
  let t = performance.now();
  for (let start = 0; start < a.n; start += 2_000) {
    await L.insertRange(db, base, start, Math.min(start + 2_000, a.n), (i) => ({ id: `b${i}` }));
  }
  const load_ms = performance.now() - t;

  // 2. Exact top-10.
  const exact = { k: K, exact: true };
  for (let i = 0; i < 5; i++) await search(db, query(i % a.queries), exact);
  let samples = [];
  const tops = [];
  for (let run = 0; run < a.runs; run++) {
    for (let i = 0; i < a.queries; i++) {
      const q = query(i);
      t = performance.now();
      const ids = await search(db, q, exact);
      samples.push(performance.now() - t);
      if (run === 0) tops.push(ids.join(','));
    }
  }
  const exact_ms = median(samples);
  const exact_checksum = fnv1a(tops.join(';'));
  const exact_method = (await L.stats(db)).search_method;
  // Round trips of near no-op calls: get() of a missing id (one index probe, then a NotFound
  // error) and stats() (which counts: about 1 ms native on this shard).
  const roundTrip = async (f, n) => {
    for (let i = 0; i < 20; i++) await f(db);
    const xs = [];
    for (let i = 0; i < n; i++) {
      t = performance.now();
      await f(db);
      xs.push(performance.now() - t);
    }
    return median(xs);
  };
  const miss_ms = await roundTrip(L.miss, 1000);
  const stats_ms = await roundTrip(L.stats, 100);

  // 3. HNSW.
  const truth = [];
  for (let i = 0; i < a.hnsw_queries; i++) truth.push(new Set(await search(db, query(i), exact)));
  t = performance.now();
  await L.createIndex(db, { m: a.m, ef_construction: a.ef_construction, ef_search: a.ef[0] });
  const build_ms = performance.now() - t;
  const hnsw_method = (await L.stats(db)).search_method;
  const hnsw = [];
  for (const ef of a.ef) {
    const options = { k: K, ef_search: ef };
    for (let i = 0; i < 5; i++) await search(db, query(i), options);
    samples = [];
    let found = 0;
    for (let run = 0; run < a.runs; run++) {
      for (let i = 0; i < truth.length; i++) {
        const q = query(i);
        t = performance.now();
        const ids = await search(db, q, options);
        samples.push(performance.now() - t);
        if (run === 0) found += ids.filter((id) => truth[i].has(id)).length;
      }
    }
    hnsw.push({ ef, recall: found / (K * a.hnsw_queries), ms: median(samples) });
  }
  await L.close(db);

  // 4. Inserting items with text.
  const batchMs = [], singleMs = [];
  for (let run = 0; run < a.runs; run++) {
    const item = (i) => ({ id: `t${i}`, text: texts[i] });
    let db = await L.open();
    t = performance.now();
    for (let start = 0; start < a.insert_n; start += a.batch) {
      await L.insertRange(db, base, start, Math.min(start + a.batch, a.insert_n), item);
    }
    batchMs.push(performance.now() - t);
    if ((await L.stats(db)).count !== a.insert_n) throw new Error('count after insertBatch');
    await L.close(db);

    db = await L.open();
    t = performance.now();
    for (let i = 0; i < a.insert_n; i++) await L.insert(db, row(base, i), item(i));
    singleMs.push(performance.now() - t);
    if ((await L.stats(db)).count !== a.insert_n) throw new Error('count after insert');
    await L.close(db);
  }
  const textChars = texts.reduce((s, x) => s + [...x].length, 0);

  return {
    side: a.backend === 'native' ? 'napi' : 'wasm', layer: a.layer, node: process.version,
    n: a.n, dim: DIM, queries: a.queries, hnsw_queries: a.hnsw_queries, runs: a.runs,
    load_ms, exact_ms, exact_method, exact_checksum, miss_ms, stats_ms,
    m: a.m, ef_construction: a.ef_construction, build_ms, hnsw_method, hnsw,
    insert_n: a.insert_n, batch: a.batch, mean_text_chars: textChars / a.insert_n,
    insert_batch_ms: median(batchMs), insert_single_ms: median(singleMs),
  };
}

const a = parseArgs(process.argv.slice(2));
if (a.child) {
  process.stdout.write(`${JSON.stringify(await measure(a))}\n`);
} else {
  const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  const sideOf = (backend) => (backend === 'native' ? 'napi' : 'wasm');
  // The Node children: one per backend and layer, keyed `wasm-api`, `napi-api`, ...
  const children = a.backends.flatMap((backend) => a.layers.map((layer) => ({ backend, layer, key: `${sideOf(backend)}-${layer}` })));
  // Targets: issue 14 for wasm (search ≤ 3×, inserts ≤ 4×), issue 15 for napi (search ≤ 1.2×).
  const targets = { wasm: { search: 3, insert: 4 }, napi: { search: 1.2, insert: null } };
  const rowsOf = (nat, w) => [
    ['exact top-10', nat.exact_ms, w.exact_ms, 'search'],
    ...nat.hnsw.map((h, i) => [`hnsw ef ${h.ef} (recall ${h.recall.toFixed(3)} / ${w.hnsw[i].recall.toFixed(3)})`, h.ms, w.hnsw[i].ms, 'search']),
    ['hnsw build', nat.build_ms, w.build_ms, null],
    [`insert ${a.insert_n} with text, batches of ${a.batch}`, nat.insert_batch_ms, w.insert_batch_ms, 'insert'],
    [`insert ${a.insert_n} with text, one by one`, nat.insert_single_ms, w.insert_single_ms, 'insert'],
  ];
  const printRows = (label, key, nat, w) => {
    const side = key.split('-')[0];
    for (const [what, n, w2, kind] of rowsOf(nat, w)) {
      const ratio = w2 / n;
      const target = kind === null ? null : targets[side][kind];
      const verdict = target === null ? '' : ratio <= target ? `≤ ${target}× met` : `> ${target}× MISSED`;
      console.log(`  ${label.padEnd(8)} ${key.padEnd(9)} ${what.padEnd(44)} native ${fmt(n).padStart(8)} ms  ${side} ${fmt(w2).padStart(8)} ms  ${ratio.toFixed(2)}×  ${verdict}`);
    }
  };
  const rounds = [];
  for (let r = 1; r <= a.rounds; r++) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`round ${r} (load ${load})`);
    const res = {};
    for (const { label, bin } of a.native) {
      res[label] = JSON.parse(execFileSync(bin, ['--data', a.data, ...a.pass, '--json'], { maxBuffer: 1 << 24 }).toString());
      console.log(`  native ${label}: ${JSON.stringify(res[label])}`);
    }
    // Alternate the children's order from round to round.
    const shift = (r - 1) % children.length;
    for (const { backend, layer, key } of [...children.slice(shift), ...children.slice(0, shift)]) {
      const child = [fileURLToPath(import.meta.url), '--child', '--backend', backend, '--layer', layer, '--dist', a.dist, '--data', a.data, ...a.pass];
      const env = { ...process.env, SQLITE_VECTOR_BACKEND: backend };
      if (backend === 'native' && a.addon) env.SQLITE_VECTOR_ADDON = a.addon;
      res[key] = JSON.parse(execFileSync(process.execPath, child, { maxBuffer: 1 << 24, env }).toString());
      console.log(`  ${key}: ${JSON.stringify(res[key])}`);
    }
    rounds.push(res);
    for (const { label } of a.native) {
      for (const { key } of children) {
        const nat = res[label], w = res[key];
        if (nat.exact_checksum !== w.exact_checksum) console.log(`  WARNING: exact top-${K} ids differ (${label} vs ${key})`);
        printRows(label, key, nat, w);
      }
    }
  }
  // Medians over the rounds, field by field.
  const med = (key) => {
    const rs = rounds.map((res) => res[key]);
    const m = (f) => median(rs.map(f));
    return {
      exact_ms: m((x) => x.exact_ms), build_ms: m((x) => x.build_ms), stats_ms: m((x) => x.stats_ms), miss_ms: m((x) => x.miss_ms),
      insert_batch_ms: m((x) => x.insert_batch_ms), insert_single_ms: m((x) => x.insert_single_ms),
      hnsw: rs[0].hnsw.map((h, i) => ({ ef: h.ef, recall: h.recall, ms: m((x) => x.hnsw[i].ms) })),
    };
  };
  console.log(`medians over ${a.rounds} rounds`);
  for (const { key } of children) {
    const { miss_ms, stats_ms } = med(key);
    console.log(`  ${key.padEnd(9)} round trips: get() of a missing id ${fmt(miss_ms)} ms, stats() ${fmt(stats_ms)} ms`);
  }
  for (const { label } of a.native) {
    for (const { key } of children) printRows(label, key, med(label), med(key));
  }
}
