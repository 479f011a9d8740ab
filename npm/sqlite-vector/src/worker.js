// The worker behind browser.js: one open store per worker. It loads the wasm module, takes the
// store's Web Lock (one tab or worker owns a store at a time), installs the OPFS `sahpool` VFS
// over the store's directory and opens its shard file there; or keeps the shard in memory.
//
// Messages: {id, op, args} in; {id, ok: true, value} or {id, ok: false, error: {name, message,
// kind}} out. `open` and `import` come first; then the Db methods of core.js; `close` last.

import init, * as glue from './wasm/sqlite_vector_wasm.js';
import { createApi } from './core.js';
import { SqliteVectorError, StorageBusyError, invalidInput } from './errors.js';

// A store's name: it names the OPFS directory `sqlite-vector/<name>` and the Web Lock.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

let apiReady = null;
let db = null;
let releaseLock = null;

function api(wasmUrl) {
  apiReady ??= init(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl }).then(() =>
    createApi(() => glue),
  );
  return apiReady;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function opfsMissing() {
  if (!self.isSecureContext) return 'not a secure context (OPFS needs https or localhost)';
  if (typeof navigator.storage?.getDirectory !== 'function') return 'this browser has no OPFS';
  if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) {
    return 'this browser has no OPFS sync access handles';
  }
  return null;
}

// Takes the store's exclusive Web Lock, retrying every 50 ms until `timeoutMs` (a reloading
// page's old worker may hold it for a few tens of ms). Returns the function that releases it.
async function lock(name, timeoutMs) {
  if (!navigator.locks) return () => {};
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const release = await new Promise((resolve) => {
      navigator.locks
        .request(`sqlite-vector:${name}`, { ifAvailable: true }, (held) => {
          if (!held) return resolve(null);
          return new Promise((done) => resolve(done));
        })
        .catch(() => resolve(null));
    });
    if (release) return release;
    if (performance.now() >= deadline) {
      throw new StorageBusyError(
        `the store ${JSON.stringify(name)} is open in another tab or worker (its lock was not free within ${timeoutMs} ms)`,
      );
    }
    await sleep(50);
  }
}

// Runs `attempt` until it does not fail with StorageBusy (OPFS access handles that a closing
// or reloading context has not released yet), backing off from 25 to 400 ms, until `timeoutMs`.
async function retryBusy(attempt, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  for (let wait = 25; ; wait = Math.min(wait * 2, 400)) {
    try {
      return await attempt();
    } catch (e) {
      if (e?.kind !== 'StorageBusy' || performance.now() + wait > deadline) throw e;
      await sleep(wait);
    }
  }
}

function checkName(name) {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalidInput(
      `name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`,
    );
  }
}

// Removes the store's OPFS directory, under its lock; `false` when there was none.
async function deleteStore(args) {
  const { name, busyTimeoutMs = 3000 } = args ?? {};
  checkName(name);
  const missing = opfsMissing();
  if (missing) throw new SqliteVectorError(`OPFS is unavailable: ${missing}`, 'StorageUnavailable');
  const release = await lock(name, busyTimeoutMs);
  try {
    const root = await navigator.storage.getDirectory();
    let parent;
    try {
      parent = await root.getDirectoryHandle('sqlite-vector');
      await parent.getDirectoryHandle(name);
    } catch (e) {
      if (e?.name === 'NotFoundError') return false;
      throw e;
    }
    await retryBusy(async () => {
      try {
        await parent.removeEntry(name, { recursive: true });
      } catch (e) {
        // Access handles a closing tab has not released yet.
        if (e?.name === 'NoModificationAllowedError' || e?.name === 'InvalidModificationError') {
          throw new StorageBusyError(`the store ${JSON.stringify(name)} is in use: ${e.message}`);
        }
        throw new SqliteVectorError(`deleting the store ${JSON.stringify(name)}: ${e?.message ?? e}`, 'Io');
      }
    }, busyTimeoutMs);
    return true;
  } finally {
    release();
  }
}

async function openStore(args, bytes) {
  const { name, storage = 'auto', busyTimeoutMs = 3000, wasmUrl, opfs = true, ...rest } = args ?? {};
  checkName(name);
  if (!['auto', 'opfs', 'memory'].includes(storage)) {
    throw invalidInput(`storage must be 'auto', 'opfs' or 'memory', got ${JSON.stringify(storage)}`);
  }
  if (typeof busyTimeoutMs !== 'number' || !(busyTimeoutMs >= 0)) {
    throw invalidInput(`busyTimeoutMs must be a number ≥ 0, got ${busyTimeoutMs}`);
  }
  const a = await api(wasmUrl);
  const missing = opfs === false ? 'OPFS is not available in the page that opened the store' : opfsMissing();
  if (storage === 'memory' || (storage === 'auto' && missing)) {
    db = bytes === undefined ? await a.open({ ...rest, storage: 'memory' }) : await a.importShard(bytes, rest);
    const reason = storage === 'memory' ? null : missing;
    if (reason) console.warn(`sqlite-vector: store ${name} is in memory: ${reason}`);
    return { name, storage: 'memory', reason };
  }
  if (missing) throw new SqliteVectorError(`storage 'opfs' is unavailable: ${missing}`, 'StorageUnavailable');
  releaseLock = await lock(name, busyTimeoutMs);
  try {
    db = await retryBusy(
      () => (bytes === undefined ? a.openOpfs(name, rest) : a.importOpfs(name, bytes, rest)),
      busyTimeoutMs,
    );
  } catch (e) {
    releaseLock();
    releaseLock = null;
    // OPFS exists but refuses sync access handles here (e.g. Safari private browsing).
    if (storage === 'auto' && e?.kind === 'StorageUnavailable') {
      db = bytes === undefined ? await a.open({ ...rest, storage: 'memory' }) : await a.importShard(bytes, rest);
      console.warn(`sqlite-vector: store ${name} is in memory: ${e.message}`);
      return { name, storage: 'memory', reason: e.message };
    }
    throw e;
  }
  return { name, storage: 'opfs', reason: null };
}

async function handle(op, args) {
  switch (op) {
    case 'open':
      if (db) throw invalidInput('this worker already has a store open');
      return openStore(args[0]);
    case 'import': {
      if (db) throw invalidInput('this worker already has a store open');
      const { bytes, ...rest } = args[0] ?? {};
      if (!(bytes instanceof Uint8Array)) throw invalidInput('bytes must be a Uint8Array');
      return openStore(rest, bytes);
    }
    case 'deleteStore':
      if (db) throw invalidInput('this worker has a store open');
      return deleteStore(args[0]);
    case 'sqliteVersion':
      return (await api(args[0]?.wasmUrl)).sqliteVersion();
    case 'close':
      if (db) {
        const d = db;
        db = null;
        await d.close();
      }
      releaseLock?.();
      releaseLock = null;
      return null;
    default:
      if (!db) throw invalidInput('the database is closed');
      if (typeof db[op] !== 'function' || op.startsWith('_')) throw invalidInput(`unknown operation ${op}`);
      return db[op](...args);
  }
}

self.onmessage = async (ev) => {
  const { id, op, args } = ev.data ?? {};
  try {
    const value = await handle(op, Array.isArray(args) ? args : []);
    const transfer = value instanceof Uint8Array ? [value.buffer] : [];
    self.postMessage({ id, ok: true, value }, transfer);
  } catch (e) {
    self.postMessage({
      id,
      ok: false,
      error: { name: e?.name ?? 'Error', message: e?.message ?? String(e), kind: e?.kind ?? 'Internal' },
    });
  }
};
