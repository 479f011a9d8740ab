// The shard manager in Node (native backend only; run by npm/scripts/pack-and-test.sh with the
// packed packages installed): named shards under a root, the CLI's layout, searches across
// shards against a brute-force merge, and the wasm backend's refusal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

import { cosine, randomVectors } from './seeded.mjs';

const { openManager, SqliteVectorError } = await import(process.env.SQLITE_VECTOR_PKG ?? '../sqlite-vector/dist/node.js');


test('manager: create, list, search across shards, drop; the CLI reads the root', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sv-manager-'));
  try {
    const m = await openManager({ root, capacity: 2, backend: 'native' });
    const all = [];
    for (const [s, name] of ['team-a/notes', 'team-a/code', 'team-b/notes'].entries()) {
      const db = await m.create(name, { dim: 32 });
      assert.equal(db.backend, 'native');
      assert.equal(db.storage, 'file');
      const vs = randomVectors(300, 32, 10 + s);
      await db.insertBatch(vs.map((vector, i) => ({ id: `x${i}`, vector, text: i === 5 ? `needle in ${name}` : undefined })));
      vs.forEach((v, i) => all.push({ shard: name, id: `x${i}`, v }));
      await db.close(); // the manager keeps the shard
    }
    await assert.rejects(m.create('team-a/notes', { dim: 32 }), (e) => e.kind === 'AlreadyExists');
    await assert.rejects(m.create('../escape', { dim: 32 }), (e) => e.kind === 'InvalidInput');
    await assert.rejects(m.open('nope'), (e) => e instanceof SqliteVectorError && e.kind === 'UnknownShard');
    assert.deepEqual((await m.list('team-a/')).map((s) => s.name), ['team-a/code', 'team-a/notes']);
    assert.equal((await m.list()).length, 3);

    const q = randomVectors(1, 32, 99)[0];
    const got = await m.search(q, { prefix: 'team-a/', k: 10 });
    const want = all
      .filter((x) => x.shard.startsWith('team-a/'))
      .map((x) => ({ shard: x.shard, id: x.id, score: cosine(x.v, q) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10);
    assert.deepEqual(got.hits.map((h) => `${h.shard}:${h.id}`), want.map((h) => `${h.shard}:${h.id}`));
    got.hits.forEach((h, i) => assert.ok(Math.abs(h.score - want[i].score) < 1e-5));
    assert.deepEqual(got.failures, []);
    const some = await m.search(q, { shards: ['team-b/notes', 'missing'], k: 3 });
    assert.ok(some.hits.every((h) => h.shard === 'team-b/notes'));
    assert.deepEqual(some.failures.map((f) => f.shard), ['missing']);
    await assert.rejects(m.search(q, { k: 3 }), (e) => e.kind === 'InvalidInput');
    const text = await m.searchText('needle', { prefix: '', k: 5 });
    assert.deepEqual(text.hits.map((h) => h.shard).sort(), ['team-a/code', 'team-a/notes', 'team-b/notes']);
    const hybrid = await m.searchHybrid(q, 'needle', { prefix: 'team-b/', k: 3 });
    assert.equal(hybrid.hits.length, 3);

    await m.drop('team-a/code');
    assert.deepEqual((await m.list()).map((s) => s.name), ['team-a/notes', 'team-b/notes']);
    const db = await m.open('team-b/notes');
    assert.equal((await db.stats()).count, 300);
    await db.close();
    await m.close();
    await assert.rejects(m.list(), (e) => e.kind === 'InvalidInput');

    // The native CLI reads the same root (the platform package's, when installed: the pack test).
    let pkg = null;
    try {
      pkg = createRequire(join(process.cwd(), 'x.js')).resolve('@sqlite-vector/linux-x64-gnu/package.json');
    } catch (e) {
      if (process.env.SQLITE_VECTOR_PKG) throw e;
      console.log('# no platform package here: the CLI check is left to the pack test');
    }
    if (pkg) {
      const out = execFileSync(join(dirname(pkg), 'sqlite-vector'), ['stats', '--root', root, '--shard', 'team-a/notes', '--json'], { encoding: 'utf8' });
      assert.equal(JSON.parse(out).count, 300);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('manager: the wasm backend has none, and says so', async () => {
  await assert.rejects(openManager({ root: tmpdir(), backend: 'wasm' }), (e) => e.kind === 'BackendUnavailable' && /native backend/.test(e.message));
});
