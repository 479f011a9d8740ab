// The JS API of the built package (npm/sqlite-vector/dist, made by scripts/build-wasm.sh),
// in Node, against brute-force oracles computed here. The same suite runs against both
// backends: SQLITE_VECTOR_BACKEND=native|wasm picks one (unset: the package's own choice,
// which is wasm in the repository, where no platform package is installed), and
// SQLITE_VECTOR_PKG names the package to import (default: the repository's dist/; the pack
// test, npm/scripts/pack-and-test.sh, sets `sqlite-vector`, the installed tarball).
import assert from 'node:assert/strict';
import { test } from 'node:test';

const pkg = process.env.SQLITE_VECTOR_PKG ?? '../sqlite-vector/dist/node.js';
const { open, sqliteVersion, SqliteVectorError, __testPanic } = await import(pkg);
const backend = process.env.SQLITE_VECTOR_BACKEND || 'wasm';
import { cosine, randomVectors } from './seeded.mjs';


function bruteForce(vectors, q, k, keep = () => true) {
  return vectors
    .map((v, i) => ({ id: `v${i}`, score: cosine(v, q), i }))
    .filter((h) => keep(h.i))
    .sort((x, y) => y.score - x.score || (x.id < y.id ? -1 : 1))
    .slice(0, k);
}

async function rejects(promise, kind, ctor = SqliteVectorError) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof ctor, `expected ${ctor.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.kind, kind, e.message);
    return true;
  });
}

const v4 = (...xs) => Float32Array.from(xs);

test('open: backend, storage, sqlite version', async () => {
  const db = await open({ dim: 4 });
  assert.equal(db.backend, backend);
  assert.equal(db.storage, 'memory');
  const s = await db.stats();
  assert.equal(s.dim, 4);
  assert.equal(s.metric, 'cosine');
  assert.equal(s.count, 0);
  assert.match(s.search_method, backend === 'wasm' ? /^exact \(simd128\)$/ : /^exact \((avx512f|avx2|neon|scalar)\)$/);
  assert.match(await sqliteVersion(), /^3\.\d+\.\d+$/);
  await db.close();
  await db.close();
  await rejects(db.stats(), 'InvalidInput');
});

test('open: bad options', async () => {
  await rejects(open({ dim: 4, metric: 'hamming' }), 'InvalidInput');
  await rejects(open({ dim: 0 }), 'InvalidInput');
  await rejects(open({ dim: 2.5 }), 'InvalidInput');
  await rejects(open({ dim: 4, storage: 'opfs' }), 'InvalidInput');
  await rejects(open({ dim: 4, dims: 3 }), 'InvalidInput');
  await rejects(open({ dim: '4' }), 'InvalidInput', TypeError);
  await rejects(open(), 'InvalidInput', TypeError);
});

test('insert, get, upsert, update, delete', async () => {
  const db = await open({ dim: 4, metric: 'l2' });
  assert.equal(await db.insert({ id: 'a', vector: v4(1, 2, 3, 4), metadata: { n: 1 }, text: 'hello' }), 'a');
  const a = await db.get('a');
  assert.deepEqual(a, { id: 'a', vector: v4(1, 2, 3, 4), metadata: { n: 1 }, text: 'hello' });
  assert.ok(a.vector instanceof Float32Array);
  // Values that need all of f32's digits come back exactly.
  const exact = v4(0.1, 1 / 3, -1e-7, 123456.789);
  const gid = await db.insert({ vector: exact });
  assert.match(gid, /^[0-9a-f]{16}$/);
  const g = await db.get(gid);
  assert.deepEqual(g.vector, exact);
  assert.equal(g.text, null);
  assert.deepEqual(g.metadata, {});

  await rejects(db.insert({ id: 'a', vector: v4(0, 0, 0, 0) }), 'AlreadyExists');
  assert.equal(await db.upsert({ id: 'a', vector: v4(4, 3, 2, 1), text: 'again' }), 'a');
  assert.deepEqual(await db.get('a'), { id: 'a', vector: v4(4, 3, 2, 1), metadata: {}, text: 'again' });

  await db.update('a', { metadata: { m: 2 } });
  await db.update('a', { vector: v4(9, 9, 9, 9) });
  assert.deepEqual(await db.get('a'), { id: 'a', vector: v4(9, 9, 9, 9), metadata: { m: 2 }, text: 'again' });
  await rejects(db.update('a', {}), 'InvalidInput');
  await rejects(db.update('zz', { text: 'x' }), 'NotFound');
  await rejects(db.update('a', { vector: [1, 2, 3, 4] }), 'InvalidInput', TypeError);

  await db.delete('a');
  await rejects(db.get('a'), 'NotFound');
  await rejects(db.delete('a'), 'NotFound');
  const s = await db.stats();
  assert.equal(s.count, 1);
  assert.equal(s.tombstones, 1);
  await db.close();
});

test('insertBatch is all or nothing and leaves the inputs alone', async () => {
  const db = await open({ dim: 3 });
  const vs = randomVectors(3, 3, 7);
  const copies = vs.map((v) => v.slice());
  const ids = await db.insertBatch([
    { id: 'x', vector: vs[0], metadata: { k: 'a' } },
    { id: 'y', vector: vs[1], text: 'why' },
    { vector: vs[2] },
  ]);
  assert.equal(ids.length, 3);
  assert.deepEqual(ids.slice(0, 2), ['x', 'y']);
  assert.deepEqual(vs, copies);
  assert.deepEqual((await db.get('y')).vector, vs[1]);
  assert.deepEqual(await db.insertBatch([]), []);
  await rejects(db.insertBatch([{ id: 'new', vector: vs[0] }, { id: 'x', vector: vs[1] }]), 'AlreadyExists');
  await rejects(db.get('new'), 'NotFound');
  await rejects(db.insertBatch([{ vector: v4(1, 2, 3, 4) }]), 'InvalidInput');
  await rejects(db.insertBatch([{ vector: vs[0] }, { vector: v4(1, 2) }]), 'InvalidInput');
  await rejects(db.insertBatch([{ vector: Array.from(vs[0]) }]), 'InvalidInput', TypeError);
  await rejects(db.insertBatch('x'), 'InvalidInput', TypeError);
  assert.equal((await db.stats()).count, 3);
  await db.close();
});

test('exact search matches a brute-force oracle', async () => {
  const dim = 64, n = 2000;
  const vectors = randomVectors(n, dim, 42);
  const db = await open({ dim, metric: 'cosine' });
  await db.insertBatch(vectors.map((vector, i) => ({ id: `v${i}`, vector, metadata: { parity: i % 2 } })));
  for (const q of randomVectors(20, dim, 4242)) {
    const hits = await db.search(q, { k: 10 });
    const want = bruteForce(vectors, q, 10);
    assert.deepEqual(hits.map((h) => h.id), want.map((h) => h.id));
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].score) < 1e-5, `${h.score} vs ${want[i].score}`));
    // Filtered: the true top 10 among the matching items.
    const odd = await db.search(q, { k: 10, filter: { parity: 1 } });
    assert.deepEqual(odd.map((h) => h.id), bruteForce(vectors, q, 10, (i) => i % 2 === 1).map((h) => h.id));
    // min_score keeps exactly the oracle's hits at or above it.
    const cut = want[4].score - 1e-6;
    const above = await db.search(q, { k: 10, min_score: cut });
    assert.deepEqual(above.map((h) => h.id), want.filter((h) => h.score >= cut).map((h) => h.id));
  }
  await db.close();
});

test('HNSW search after createIndex: recall@10 ≥ 0.95 against exact', async () => {
  const dim = 32, n = 6000;
  const vectors = randomVectors(n, dim, 9);
  const db = await open({ dim });
  await db.insertBatch(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
  await db.createIndex({ m: 16, ef_construction: 100 });
  const s = await db.stats();
  assert.match(s.search_method, /^hnsw/);
  assert.equal(s.index.nodes, n);
  assert.equal(s.index.m, 16);
  await rejects(db.createIndex(), 'AlreadyExists');
  let found = 0, total = 0;
  for (const q of randomVectors(50, dim, 99)) {
    const exact = new Set((await db.search(q, { k: 10, exact: true })).map((h) => h.id));
    const approx = await db.search(q, { k: 10, ef_search: 100 });
    found += approx.filter((h) => exact.has(h.id)).length;
    total += 10;
  }
  const recall = found / total;
  assert.ok(recall >= 0.95, `recall@10 = ${recall}`);
  assert.ok(recall <= 1);
  await rejects(db.search(vectors[0], { ef_search: 0 }), 'InvalidInput');
  await db.close();
});

test('filter, min_score, max_distance', async () => {
  const db = await open({ dim: 2, metric: 'l2' });
  await db.insertBatch([
    { id: 'a', vector: v4(0, 0), metadata: { lang: 'rust', stars: 5, tags: ['x'] } },
    { id: 'b', vector: v4(1, 0), metadata: { lang: 'go', stars: 1 } },
    { id: 'c', vector: v4(3, 0), metadata: { lang: 'rust', stars: 3 } },
  ]);
  const q = v4(0, 0);
  const ids = (hits) => hits.map((h) => h.id);
  assert.deepEqual(ids(await db.search(q, { filter: { lang: 'rust' } })), ['a', 'c']);
  assert.deepEqual(ids(await db.search(q, { filter: { stars: { $gte: 2, $lt: 5 } } })), ['c']);
  assert.deepEqual(ids(await db.search(q, { filter: { $or: [{ lang: 'go' }, { stars: 3 }] } })), ['b', 'c']);
  assert.deepEqual(ids(await db.search(q, { max_distance: 1.5 })), ['a', 'b']);
  const hits = await db.search(q, { k: 2 });
  assert.deepEqual(hits.map((h) => h.score), [0, 1]);
  // min_score applies to similarities: the core refuses it on l2 (use max_distance).
  await rejects(db.search(q, { min_score: 0.5 }), 'InvalidInput');
  assert.deepEqual(ids(await db.search(q, { metric: 'dot', min_score: -0.5, k: 3 })).sort(), ['a', 'b', 'c']);
  // Malformed filters and options.
  await rejects(db.search(q, { filter: { stars: { $near: 1 } } }), 'InvalidInput');
  await rejects(db.search(q, { filter: { $and: 'x' } }), 'InvalidInput');
  await rejects(db.search(q, { filter: [] }), 'InvalidInput');
  await rejects(db.search(q, { k: 0 }), 'InvalidInput');
  await rejects(db.search(q, { k: 3.5 }), 'InvalidInput');
  await rejects(db.search(q, { ef: 10 }), 'InvalidInput');
  await rejects(db.search(q, { max_distance: NaN }), 'InvalidInput');
  await rejects(db.search(q, { max_distance: Infinity }), 'InvalidInput');
  await rejects(db.search(q, 'k=3'), 'InvalidInput', TypeError);
  await db.close();
});

test('text and hybrid search', async () => {
  const db = await open({ dim: 3, searchable: ['title'] });
  await db.insertBatch([
    { id: 'a', vector: v4(1, 0, 0), text: 'the quick brown fox', metadata: { title: 'animals' } },
    { id: 'b', vector: v4(0, 1, 0), text: 'a quick sort in rust', metadata: { title: 'code' } },
    { id: 'c', vector: v4(0, 0, 1), text: 'slow and steady', metadata: { title: 'fables' } },
  ]);
  const ids = (hits) => hits.map((h) => h.id);
  const quick = await db.searchText('quick');
  assert.deepEqual(ids(quick).sort(), ['a', 'b']);
  assert.ok(quick.every((h) => h.score > 0));
  assert.deepEqual(ids(await db.searchText('fables')), ['c']);
  assert.deepEqual(ids(await db.searchText('quick', { k: 1, filter: { title: 'code' } })), ['b']);
  await rejects(db.searchText('!!!'), 'InvalidInput');
  await rejects(db.searchText(42), 'InvalidInput', TypeError);

  const hybrid = await db.searchHybrid(v4(0, 1, 0), 'quick fox', { k: 3 });
  assert.equal(hybrid.length, 3);
  assert.equal(hybrid[0].id, 'b');
  for (const h of hybrid) {
    assert.equal(typeof h.vector_score, 'number');
    assert.ok('text_score' in h);
  }
  assert.equal(hybrid.find((h) => h.id === 'c').text_score, null);
  assert.ok(hybrid.find((h) => h.id === 'a').text_score > 0);
  const rrf = await db.searchHybrid(v4(1, 0, 0), 'fox', { fusion: 'rrf', k: 1 });
  assert.deepEqual(ids(rrf), ['a']);
  await rejects(db.searchHybrid(v4(1, 0, 0), 'fox', { fusion: 'max' }), 'InvalidInput');
  await rejects(db.searchHybrid(v4(1, 0, 0), 'fox', { max_distance: 1 }), 'InvalidInput');
  await rejects(db.searchHybrid(v4(1, 0), 'fox'), 'InvalidInput');
  await db.close();
});

test('every error kind we can trigger, with the core message', async () => {
  const db = await open({ dim: 3 });
  await db.insert({ id: 'a', vector: v4(1, 0, 0) });
  // Wrong dimension.
  await assert.rejects(db.insert({ vector: v4(1, 2) }), {
    name: 'SqliteVectorError',
    kind: 'InvalidInput',
    message: 'dimension mismatch: shard has 3, got 2',
  });
  await rejects(db.search(v4(1, 2)), 'InvalidInput');
  // NaN and Infinity in a vector.
  await rejects(db.insert({ vector: v4(1, NaN, 0) }), 'InvalidInput');
  await rejects(db.search(v4(Infinity, 0, 0)), 'InvalidInput');
  // Zero vector on a cosine shard.
  await rejects(db.insert({ vector: v4(0, 0, 0) }), 'InvalidInput');
  // Unknown id, duplicate id, bad id, bad metadata.
  await rejects(db.get('nope'), 'NotFound');
  await rejects(db.insert({ id: 'a', vector: v4(0, 1, 0) }), 'AlreadyExists');
  await rejects(db.insert({ id: '', vector: v4(0, 1, 0) }), 'InvalidInput');
  await rejects(db.insert({ vector: v4(0, 1, 0), metadata: [1, 2] }), 'InvalidInput');
  await rejects(db.insert({ vector: v4(0, 1, 0), meta: {} }), 'InvalidInput');
  // Not a Float32Array: a TypeError with kind InvalidInput.
  for (const bad of [[1, 0, 0], new Float64Array(3), null, undefined, 'v']) {
    await rejects(db.insert({ vector: bad }), 'InvalidInput', TypeError);
    await rejects(db.search(bad), 'InvalidInput', TypeError);
  }
  await rejects(db.get(7), 'InvalidInput', TypeError);
  assert.equal((await db.stats()).count, 1);
  await db.close();
});

// Last: after a panic the module instance is unusable, for every database. (wasm only: the
// native addon catches a panic as an Internal error of that call.)
test('a panic becomes an Internal error with its message, and poisons the module', { skip: backend !== 'wasm' }, async () => {
  const db = await open({ dim: 2 });
  assert.throws(() => __testPanic('boom 42'), (e) => {
    assert.ok(e instanceof SqliteVectorError);
    assert.equal(e.kind, 'Internal');
    assert.match(e.message, /wasm panicked: .*boom 42/s);
    assert.ok(e.cause instanceof WebAssembly.RuntimeError);
    return true;
  });
  await rejects(db.stats(), 'Internal');
  await rejects(open({ dim: 2 }), 'Internal');
});
