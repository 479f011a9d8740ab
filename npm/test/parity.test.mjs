// The two Node backends side by side in one process (run by npm/scripts/pack-and-test.sh, with
// the packed packages installed): the same 5,000 seeded 384-d vectors give the same exact
// top-10 ids and scores within 1e-5, and the same BM25 ranking. FMA (native AVX-512/AVX2)
// against mul+add (wasm simd128) can swap two hits whose scores are within 1e-6: such a pair at
// the cut (10th/11th) is compared as a set.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { randomVectors } from './seeded.mjs';

const { open, importShard } = await import(process.env.SQLITE_VECTOR_PKG ?? '../sqlite-vector/dist/node.js');

const N = 5000;
const DIM = 384;
const WORDS = ['vector', 'shard', 'agent', 'memory', 'search', 'index', 'browser', 'native', 'sync', 'filter'];

async function fill(backend, vectors) {
  const db = await open({ dim: DIM, backend });
  assert.equal(db.backend, backend);
  const items = vectors.map((vector, i) => ({
    id: `v${String(i).padStart(4, '0')}`,
    vector,
    metadata: { group: i % 7 },
    text: `${WORDS[i % 10]} ${WORDS[(i * 7) % 10]} item ${i}`,
  }));
  for (let i = 0; i < items.length; i += 1000) await db.insertBatch(items.slice(i, i + 1000));
  return db;
}

// Hits equal up to a swap of near-ties: ids in order, except runs of scores within 1e-6, which
// are compared as sets (and at the cut, only as far as both lists go).
function assertSameHits(a, b, what) {
  assert.equal(a.length, b.length, `${what}: hit count`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i].score - b[i].score) <= 1e-5, `${what}: score ${i}: ${a[i].score} vs ${b[i].score}`);
    if (a[i].id !== b[i].id) {
      const near = (h) => Math.abs(h.score - a[i].score) <= 1e-6;
      const sa = new Set(a.filter(near).map((h) => h.id));
      const sb = new Set(b.filter(near).map((h) => h.id));
      const cut = i === a.length - 1 || near(a[a.length - 1]);
      assert.ok(
        sa.size > 1 && (cut || [...sa].every((id) => sb.has(id))),
        `${what}: hit ${i} is ${a[i].id} (${a[i].score}) natively, ${b[i].id} (${b[i].score}) in wasm`,
      );
    }
  }
}

test('native and wasm agree: exact top-10 ids and scores (1e-5), filtered search, BM25', async () => {
  const vectors = randomVectors(N, DIM, 42);
  const queries = randomVectors(20, DIM, 4242);
  const native = await fill('native', vectors);
  const wasm = await fill('wasm', vectors);
  assert.equal((await native.stats()).count, N);
  assert.equal((await wasm.stats()).count, N);
  for (const [qi, q] of queries.entries()) {
    const a = await native.search(q, { k: 10 });
    const b = await wasm.search(q, { k: 10 });
    assert.equal(a.length, 10);
    assertSameHits(a, b, `query ${qi}`);
    const fa = await native.search(q, { k: 10, filter: { group: { $in: [1, 3] } } });
    const fb = await wasm.search(q, { k: 10, filter: { group: { $in: [1, 3] } } });
    assert.ok(fa.every((h) => h.metadata.group === 1 || h.metadata.group === 3));
    assertSameHits(fa, fb, `filtered query ${qi}`);
  }
  for (const words of ['agent memory', 'browser', 'sync shard item']) {
    const a = await native.searchText(words, { k: 10 });
    const b = await wasm.searchText(words, { k: 10 });
    assert.ok(a.length > 0, words);
    assertSameHits(a, b, `text ${JSON.stringify(words)}`);
  }
  // Each one's exported bytes open in the other, with the same answers.
  const inWasm = await importShard(await native.export(), { backend: 'wasm' });
  const inNative = await importShard(await wasm.export(), { backend: 'native' });
  assert.equal(inWasm.backend, 'wasm');
  assert.equal(inNative.backend, 'native');
  assert.deepEqual(await inWasm.search(queries[0], { k: 10 }), await wasm.search(queries[0], { k: 10 }));
  assert.deepEqual(await inNative.search(queries[0], { k: 10 }), await native.search(queries[0], { k: 10 }));
  await inWasm.close();
  await inNative.close();
  await native.close();
  await wasm.close();
});
