// Node's file storage without the native backend: snapshots (npm/sqlite-vector/src/snapshot.js).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { open } from '../sqlite-vector/dist/node.js';
import { randomVectors as vectors } from './seeded.mjs';

const cli = fileURLToPath(new URL('../../target/debug/sqlite-vector', import.meta.url));

async function rejects(p, kind) {
  await assert.rejects(p, (e) => {
    assert.equal(e.kind, kind, e.message);
    return true;
  });
}

test('a snapshot is written on close, reopened with the same data, and opens natively', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sv-snap-'));
  const path = join(dir, 'notes.db');
  const vs = vectors(300, 16, 1);
  const db = await open({ path, dim: 16, metric: 'cosine' });
  assert.equal(db.storage, 'snapshot');
  assert.equal(db.backend, 'wasm');
  assert.ok(existsSync(path), 'the file exists from the open on');
  await db.insertBatch(vs.map((vector, i) => ({ id: `v${i}`, vector, text: i === 7 ? 'seventh note' : undefined })));
  const q = vectors(1, 16, 2)[0];
  const before = await db.search(q, { k: 10 });
  await db.close();
  await db.close(); // idempotent
  assert.deepEqual(readdirSync(dir).sort(), ['notes.db'], 'no lock or temporary file left');
  assert.equal(readFileSync(path).subarray(0, 16).toString('latin1'), 'SQLite format 3\0');

  const again = await open({ path });
  assert.equal((await again.stats()).count, 300);
  assert.deepEqual(await again.search(q, { k: 10 }), before);
  assert.equal((await again.searchText('seventh'))[0].id, 'v7');
  await again.delete('v0');
  await again.flush();
  await again.close();

  if (existsSync(cli)) {
    const stats = JSON.parse(execFileSync(cli, ['stats', path, '--check', '--json'], { encoding: 'utf8' }));
    assert.equal(stats.count, 299);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('one holder at a time; a stale lock is taken over; a live -wal is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sv-snap-'));
  const path = join(dir, 's.db');
  const db = await open({ path, dim: 4 });
  await rejects(open({ path, dim: 4 }), 'StorageBusy');
  await db.close();
  // A lock left by a process that is gone.
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  mkdirSync(`${path}.lock`);
  writeFileSync(`${path}.lock/pid`, dead.stdout.trim());
  const taken = await open({ path });
  assert.equal((await taken.stats()).count, 0);
  await taken.close();
  // A native process's write-ahead log beside the file.
  writeFileSync(`${path}-wal`, Buffer.alloc(4096, 1));
  await rejects(open({ path }), 'StorageBusy');
  rmSync(`${path}-wal`);
  rmSync(dir, { recursive: true, force: true });
});

test('bad files and options', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sv-snap-'));
  await rejects(open({ path: join(dir, 'new.db') }), 'InvalidInput'); // creating needs dim
  assert.ok(!existsSync(join(dir, 'new.db')) && !existsSync(join(dir, 'new.db.lock')));
  writeFileSync(join(dir, 'junk.db'), Buffer.alloc(8192, 7));
  await rejects(open({ path: join(dir, 'junk.db') }), 'NotAShard');
  const db = await open({ path: join(dir, 'a.db'), dim: 8, metric: 'l2' });
  await db.close();
  await rejects(open({ path: join(dir, 'a.db'), dim: 9 }), 'ProfileMismatch');
  await rejects(open({ path: join(dir, 'a.db'), metric: 'dot' }), 'ProfileMismatch');
  await rejects(open({ path: join(dir, 'a.db'), storage: 'opfs' }), 'InvalidInput');
  await rejects(open({ dim: 3, storage: 'snapshot' }), 'InvalidInput');
  // A snapshot cut short is refused, never opened with part of its items.
  const full = await open({ path: join(dir, 'b.db'), dim: 8 });
  await full.insertBatch(vectors(2000, 8, 3).map((vector, i) => ({ id: String(i), vector })));
  await full.close();
  const bytes = readFileSync(join(dir, 'b.db'));
  writeFileSync(join(dir, 'b.db'), bytes.subarray(0, bytes.length >> 1));
  await assert.rejects(open({ path: join(dir, 'b.db') }), (e) => ['Corrupt', 'NotAShard'].includes(e.kind));
  assert.ok(!existsSync(join(dir, 'b.db.lock')), 'a failed open releases the lock');
  rmSync(dir, { recursive: true, force: true });
});
