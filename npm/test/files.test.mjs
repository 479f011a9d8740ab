// A shard file written by one Node backend opens in the other, each in a new process (run by
// npm/scripts/pack-and-test.sh with the packed packages installed): native writes a WAL file
// and closes it, wasm opens it as a snapshot; wasm writes a snapshot, native opens it as its
// file. Count and exact top 10 (ids and scores) must be the same everywhere.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const pkg = process.env.SQLITE_VECTOR_PKG ?? '../sqlite-vector/dist/node.js';
const seeded = pathToFileURL(fileURLToPath(new URL('./seeded.mjs', import.meta.url))).href;
// A bare name resolves from the test's directory (the temporary project); a relative path from
// this file.
const target = pkg.startsWith('.') ? new URL(pkg, import.meta.url).href : pkg;

function script(path, body) {
  return `
    import { open, sqliteVersion } from ${JSON.stringify(target)};
    import { randomVectors as vectors } from ${JSON.stringify(seeded)};
    const path = ${JSON.stringify(path)};
    const out = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify({ ...out, sqlite: await sqliteVersion() }));
  `;
}

// Runs `body` (an async function's text, given `open`, `sqliteVersion`, `vectors`, `path`) in
// a new node process with `backend`; returns what it prints (JSON).
function inProcess(backend, path, body) {
  const text = execFileSync(process.execPath, ['--input-type=module', '-e', script(path, body)], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    env: { ...process.env, SQLITE_VECTOR_BACKEND: backend },
    encoding: 'utf8',
  });
  return JSON.parse(text);
}

const write = `
  const db = await open({ path, dim: 64 });
  const vs = vectors(1000, 64, 7);
  await db.insertBatch(vs.map((vector, i) => ({ id: 'v' + i, vector, text: 'note ' + i })));
  const top = await db.search(vectors(1, 64, 8)[0], { k: 10 });
  const info = { backend: db.backend, storage: db.storage, count: (await db.stats()).count, top };
  await db.close();
  return info;`;
const read = `
  const db = await open({ path });
  const top = await db.search(vectors(1, 64, 8)[0], { k: 10 });
  const info = { backend: db.backend, storage: db.storage, count: (await db.stats()).count, top };
  await db.close();
  return info;`;

test('a file written natively opens in wasm, and a wasm snapshot opens natively', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sv-files-'));
  try {
    const a = join(dir, 'a.db');
    const w1 = inProcess('native', a, write);
    assert.deepEqual([w1.backend, w1.storage, w1.count], ['native', 'file', 1000]);
    assert.ok(!existsSync(`${a}-wal`), 'native close leaves no -wal');
    const r1 = inProcess('wasm', a, read);
    assert.deepEqual([r1.backend, r1.storage, r1.count], ['wasm', 'snapshot', 1000]);
    assert.deepEqual(r1.top.map((h) => h.id), w1.top.map((h) => h.id));
    r1.top.forEach((h, i) => assert.ok(Math.abs(h.score - w1.top[i].score) <= 1e-5));

    const b = join(dir, 'b.db');
    const w2 = inProcess('wasm', b, write);
    assert.deepEqual([w2.backend, w2.storage, w2.count], ['wasm', 'snapshot', 1000]);
    const r2 = inProcess('native', b, read);
    assert.deepEqual([r2.backend, r2.storage, r2.count], ['native', 'file', 1000]);
    assert.deepEqual(r2.top.map((h) => h.id), w2.top.map((h) => h.id));
    r2.top.forEach((h, i) => assert.ok(Math.abs(h.score - w2.top[i].score) <= 1e-5));
    console.log(`# SQLite: native ${w1.sqlite}, wasm ${r1.sqlite}`);
    assert.match(w1.sqlite, /^3\.\d+\.\d+$/);
    assert.match(r1.sqlite, /^3\.\d+\.\d+$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('native: several processes write one file at once, and nothing is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sv-files-'));
  try {
    const path = join(dir, 'shared.db');
    inProcess('native', path, 'const db = await open({ path, dim: 16 }); await db.close(); return {};');
    const writer = (w) => `
      const db = await open({ path });
      const vs = vectors(200, 16, ${w});
      for (let i = 0; i < vs.length; i++) await db.insert({ id: 'w${w}-' + i, vector: vs[i] });
      const count = (await db.stats()).count;
      await db.close();
      return { count };`;
    const run = promisify(execFile);
    const outs = await Promise.all(
      [1, 2, 3].map((w) =>
        run(process.execPath, ['--input-type=module', '-e', script(path, writer(w))], {
          cwd: fileURLToPath(new URL('.', import.meta.url)),
          env: { ...process.env, SQLITE_VECTOR_BACKEND: 'native' },
        }),
      ),
    );
    for (const { stdout } of outs) assert.ok(JSON.parse(stdout).count >= 200);
    const all = inProcess('native', path, 'const db = await open({ path }); const s = await db.stats(); await db.close(); return { count: s.count };');
    assert.equal(all.count, 600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
