// The browser test of issue 14, in Debian's Chromium driven by puppeteer-core (no browser
// download), against the built package (npm/sqlite-vector/dist) served from 127.0.0.1 without
// COOP/COEP headers:
//   1. a page opens a persistent store (OPFS), inserts 1,000 items, reloads, and finds the same
//      count and top 10 (ids and scores);
//   2. a second page gets StorageBusyError while the first holds the store, and opens it once
//      the first closes it;
//   3. the exported bytes open in the native CLI with the same count and top 10;
//   4. without OPFS the store falls back to memory and says so; storage 'memory' and
//      importShard work; hostile names are refused.
// Chromium runs with the two lockdown flags of BROWSER-TEST.md, so nothing leaves loopback.
// Usage: node test/browser.mjs [--cli PATH_TO_sqlite-vector]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

import { serve } from './server.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const started = performance.now();
const args = process.argv.slice(2);
const cli = args.includes('--cli') ? args[args.indexOf('--cli') + 1] : null;
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

let failures = 0;
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
  if (!ok) failures++;
}

const { server, url } = await serve({ '/pkg/': join(here, '../sqlite-vector'), '/': join(here, 'browser') });
const profile = mkdtempSync(join(tmpdir(), 'sv-chromium-'));
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: profile,
  args: ['--no-sandbox', '--disable-component-update', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});

// Seeded vectors (mulberry32), the same in every page.
const PAGE_LIB = `
  window.rng = (seed) => () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  window.vectors = (n, dim, seed) => {
    const r = rng(seed);
    return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => r() * 2 - 1));
  };
  window.errorOf = async (p) => {
    try { await p; return null; } catch (e) { return { name: e.name, kind: e.kind, message: e.message }; }
  };
`;

async function newPage(setup) {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`  [page console] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  if (setup) await page.evaluateOnNewDocument(setup);
  await page.evaluateOnNewDocument(PAGE_LIB);
  await page.goto(`${url}/`);
  await page.waitForFunction(() => window.__ready === true, { timeout: 15000 });
  return page;
}

const DIM = 384;
const topOf = `async (db) => {
  const q = vectors(1, ${DIM}, 999)[0];
  return (await db.search(q, { k: 10 })).map((h) => [h.id, h.score]);
}`;

try {
  // 1. Persist, reload, find the same data.
  const a = await newPage();
  const filled = await a.evaluate(
    async (DIM, topOf) => {
      const top = eval(topOf);
      const db = await sv.open({ name: 't', dim: DIM });
      window.db = db;
      const vs = vectors(1000, DIM, 7);
      const items = vs.map((vector, i) => ({
        id: `doc-${i}`,
        vector,
        metadata: { even: i % 2 === 0 },
        text: i % 10 === 0 ? `note number ${i} about browsers` : undefined,
      }));
      const t0 = performance.now();
      await db.insertBatch(items.slice(0, 500));
      for (const it of items.slice(500)) await db.insert(it);
      const insertMs = performance.now() - t0;
      return {
        isolated: crossOriginIsolated,
        storage: db.storage,
        count: (await db.stats()).count,
        top: await top(db),
        insertMs,
      };
    },
    DIM,
    topOf,
  );
  check(filled.isolated === false, 'no cross-origin isolation needed (no COOP/COEP)');
  check(filled.storage === 'opfs', 'store is in OPFS', filled.storage);
  check(filled.count === 1000, 'count after 1,000 inserts', String(filled.count));
  console.log(`  1,000 inserts (500 batched, 500 one by one): ${filled.insertMs.toFixed(0)} ms`);

  await a.reload();
  await a.waitForFunction(() => window.__ready === true, { timeout: 15000 });
  const reloaded = await a.evaluate(
    async (DIM, topOf) => {
      const top = eval(topOf);
      const db = await sv.open({ name: 't', dim: DIM });
      window.db = db;
      return { storage: db.storage, count: (await db.stats()).count, top: await top(db) };
    },
    DIM,
    topOf,
  );
  check(reloaded.storage === 'opfs', 'reopened from OPFS after a reload');
  check(reloaded.count === 1000, 'same count after the reload', String(reloaded.count));
  check(JSON.stringify(reloaded.top) === JSON.stringify(filled.top), 'same top 10 (ids and scores) after the reload');

  // 2. A second page gets "storage busy" while the first holds the store.
  const b = await newPage();
  const busy = await b.evaluate(async (DIM) => errorOf(sv.open({ name: 't', dim: DIM, busyTimeoutMs: 300 })), DIM);
  check(busy?.kind === 'StorageBusy' && busy?.name === 'StorageBusyError', 'second page: StorageBusyError', JSON.stringify(busy));
  await a.evaluate(async () => window.db.close());
  const second = await b.evaluate(
    async (DIM, topOf) => {
      const top = eval(topOf);
      const db = await sv.open({ name: 't', dim: DIM });
      const bytes = await db.export();
      const out = { storage: db.storage, count: (await db.stats()).count, top: await top(db) };
      out.image = btoa(Array.from(bytes, (c) => String.fromCharCode(c)).join(''));
      await db.close();
      return out;
    },
    DIM,
    topOf,
  );
  check(second.storage === 'opfs' && second.count === 1000, 'second page opens the store once the first closed it');
  check(JSON.stringify(second.top) === JSON.stringify(filled.top), 'second page: same top 10');

  // A tab closed while it holds the store (no db.close()): the next tab gets it, though
  // Chromium releases the dead worker's OPFS access handles a little late (the open retries).
  const e = await newPage();
  await e.evaluate(async (DIM) => {
    window.db = await sv.open({ name: 't', dim: DIM });
  }, DIM);
  await e.close();
  const f = await newPage();
  const afterClose = await f.evaluate(async () => {
    const t0 = performance.now();
    const db = await sv.open({ name: 't' });
    const out = { count: (await db.stats()).count, ms: performance.now() - t0 };
    await db.close();
    return out;
  });
  check(afterClose.count === 1000, 'a tab closed without close(): the next tab opens the store', `${afterClose.ms.toFixed(0)} ms`);
  await f.close();

  // 3. The exported bytes open in the native CLI.
  const image = Buffer.from(second.image, 'base64');
  check(image.subarray(0, 16).toString('latin1') === 'SQLite format 3\0', 'export is a SQLite file', `${image.length} bytes`);
  if (cli) {
    const dir = mkdtempSync(join(tmpdir(), 'sv-export-'));
    const file = join(dir, 'browser.db');
    writeFileSync(file, image);
    const stats = JSON.parse(execFileSync(cli, ['stats', file, '--check', '--json'], { encoding: 'utf8' }));
    check(stats.count === 1000, 'native CLI: count of the exported shard', String(stats.count));
    const q = await b.evaluate((DIM) => Array.from(vectors(1, DIM, 999)[0]), DIM);
    const hits = JSON.parse(
      execFileSync(cli, ['search', file, '--vector', JSON.stringify(q), '--k', '10', '--json'], { encoding: 'utf8' }),
    );
    const list = Array.isArray(hits) ? hits : hits.hits;
    check(
      JSON.stringify(list.map((h) => h.id)) === JSON.stringify(filled.top.map(([id]) => id)),
      'native CLI: same top-10 ids',
    );
    const worst = Math.max(...list.map((h, i) => Math.abs(h.score - filled.top[i][1])));
    check(worst <= 1e-5, 'native CLI: scores within 1e-5', worst.toExponential(2));
    rmSync(dir, { recursive: true, force: true });
  } else {
    console.log('  (no --cli given: the native check is skipped)');
    if (process.env.CI) check(false, 'the native CLI check runs in CI (pass --cli)');
  }

  // 4. Memory: no OPFS in the page → memory, said so; explicit memory; import; bad names.
  const c = await newPage(() => {
    delete StorageManager.prototype.getDirectory;
  });
  const fallback = await c.evaluate(async () => {
    const db = await sv.open({ name: 'm', dim: 4 });
    await db.insert({ id: 'x', vector: new Float32Array([1, 0, 0, 0]) });
    const hit = (await db.search(new Float32Array([1, 0, 0, 0]), { k: 1 }))[0].id;
    return { storage: db.storage, reason: db.storageReason, hit };
  });
  check(fallback.storage === 'memory' && !!fallback.reason && fallback.hit === 'x', 'no OPFS: memory, with the reason', fallback.reason);
  const opfsForced = await c.evaluate(async () => errorOf(sv.open({ name: 'm2', dim: 4, storage: 'opfs' })));
  check(opfsForced?.kind === 'StorageUnavailable', "no OPFS and storage 'opfs': StorageUnavailable", opfsForced?.message);

  const d = await newPage();
  const more = await d.evaluate(
    async (image) => {
      const bytes = Uint8Array.from(atob(image), (ch) => ch.charCodeAt(0));
      const mem = await sv.open({ name: 'mem', dim: 3, storage: 'memory' });
      await mem.insert({ id: 'a', vector: new Float32Array([0, 0, 1]) });
      const memOk = mem.storage === 'memory' && (await mem.stats()).count === 1;
      await mem.close();
      const imported = await sv.importShard(bytes, { name: 'imported' });
      const importedCount = (await imported.stats()).count;
      const importedStorage = imported.storage;
      await imported.close();
      const again = await sv.open({ name: 'imported' });
      const againCount = (await again.stats()).count;
      await again.close();
      const exists = await errorOf(sv.importShard(bytes, { name: 'imported' }));
      const garbage = await errorOf(sv.importShard(new Uint8Array(5000), { name: 'junk' }));
      const names = [];
      for (const name of ['../x', '/abs', '', 'a/b', '.hidden', 'x'.repeat(200)]) {
        names.push(await errorOf(sv.open({ name, dim: 3 })));
      }
      const wrongDim = await errorOf(sv.open({ name: 'imported', dim: 5 }));
      const version = await sv.sqliteVersion();
      // Deleting a store: busy while open, then gone (a new open starts empty).
      const held = await sv.open({ name: 'imported' });
      const deleteBusy = await errorOf(sv.deleteStore('imported', { busyTimeoutMs: 200 }));
      await held.close();
      const deleted = await sv.deleteStore('imported');
      const deletedAgain = await sv.deleteStore('imported');
      const fresh = await sv.open({ name: 'imported', dim: 2 });
      const freshCount = (await fresh.stats()).count;
      await fresh.close();
      const deleteName = await errorOf(sv.deleteStore('../t'));
      const deleteResult = { deleteBusy, deleted, deletedAgain, freshCount, deleteName };
      return { memOk, importedCount, importedStorage, againCount, exists, garbage, names, wrongDim, version, deleteResult };
    },
    second.image,
  );
  check(more.memOk, "storage 'memory' works");
  check(more.importedStorage === 'opfs' && more.importedCount === 1000 && more.againCount === 1000, 'importShard into OPFS, reopened by name');
  check(more.exists?.kind === 'AlreadyExists', 'importShard over an existing store: AlreadyExists', more.exists?.message);
  check(more.garbage?.kind === 'NotAShard', 'importShard of garbage: NotAShard', more.garbage?.message);
  check(more.names.every((e) => e?.kind === 'InvalidInput'), 'hostile store names refused', JSON.stringify(more.names.map((e) => e?.kind)));
  check(/^3\.\d+\.\d+$/.test(more.version), 'sqliteVersion()', more.version);
  const del = more.deleteResult;
  check(del.deleteBusy?.kind === 'StorageBusy', 'deleteStore of an open store: StorageBusy', del.deleteBusy?.message);
  check(del.deleted === true && del.deletedAgain === false && del.freshCount === 0, 'deleteStore removes the store', JSON.stringify(del));
  check(del.deleteName?.kind === 'InvalidInput', 'deleteStore refuses a hostile name');
  // The store 't' of step 1 is untouched by deleting another.
  const untouched = await d.evaluate(async () => {
    const db = await sv.open({ name: 't' });
    const n = (await db.stats()).count;
    await db.close();
    return n;
  });
  check(untouched === 1000, "deleting one store leaves the others", String(untouched));
  check(more.wrongDim?.kind === 'ProfileMismatch', 'reopening with another dimension: ProfileMismatch', more.wrongDim?.message);
} catch (e) {
  console.log(`FAIL ${e.stack ?? e}`);
  failures++;
} finally {
  await browser.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}

const secs = (performance.now() - started) / 1000;
console.log(`browser test: ${failures === 0 ? 'passed' : `${failures} failed`} in ${secs.toFixed(1)} s`);
process.exit(failures === 0 ? 0 : 1);
