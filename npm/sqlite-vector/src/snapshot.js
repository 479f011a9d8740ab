// Node without the native backend: a database kept in memory (the wasm build) and saved to a
// shard file as a whole — a *snapshot* — on flush() and close(). The write is atomic: the
// bytes go to a temporary file beside it, which is synced and renamed over the old one, and
// the directory is synced; a crash leaves the previous snapshot or the new one, never a mix.
// Writes since the last flush are lost on a crash (unlike the browser's OPFS store and the
// native backend, where every acknowledged write is durable).
//
// One process holds a snapshot file at a time: `<path>.lock/` (a directory made atomically,
// holding the owner's pid; a lock whose process is gone is taken over). A native process does
// not take this lock: a file beside a non-empty `-wal` is refused as busy.

import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';

import { SqliteVectorError, StorageBusyError, invalidInput, invalidType } from './errors.js';

/** Images above this are refused by the wasm build (the core's MAX_IMAGE_BYTES). */
const MAX_BYTES = 512 * 1024 * 1024;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The pid of the live process holding `<path>.lock`, else `null` (`path` absolute). */
export function lockHolder(path) {
  let pid = NaN;
  try {
    pid = Number.parseInt(readFileSync(`${path}.lock/pid`, 'utf8'), 10);
  } catch {
    return existsSync(`${path}.lock`) ? -1 : null;
  }
  return Number.isInteger(pid) && alive(pid) ? pid : null;
}

function takeLock(path) {
  const lock = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(lock);
      writeFileSync(`${lock}/pid`, String(process.pid));
      return lock;
    } catch (e) {
      if (e.code !== 'EEXIST') throw new SqliteVectorError(`cannot lock ${path}: ${e.message}`, 'Io');
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(`${lock}/pid`, 'utf8'), 10);
    } catch {
      // A lock being made right now (no pid yet): busy.
    }
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    break;
  }
  throw new StorageBusyError(`${path} is open in another process or handle (${lock} exists)`);
}

function syncDir(dir) {
  let fd;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems cannot sync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeAtomically(path, bytes) {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dirname(path));
}

const WRITES = new Set(['insert', 'upsert', 'insertBatch', 'update', 'delete', 'createIndex']);

/**
 * Opens the snapshot file `path` (created when missing, which needs `dim`) through `api`
 * (core.js over the wasm module). `options`: dim, metric, searchable, embedding_model.
 */
export async function openSnapshot(api, path, options) {
  if (typeof path !== 'string' || path === '') throw invalidType('path must be a non-empty string');
  path = resolve(path);
  const wal = `${path}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new StorageBusyError(
      `${path} has a write-ahead log beside it: a native process has it open, or did not close it; ` +
        'open it with the native backend (or close that process first)',
    );
  }
  const lock = takeLock(path);
  const unlock = () => rmSync(lock, { recursive: true, force: true });
  process.once('exit', unlock);
  let db;
  try {
    if (existsSync(path)) {
      const size = statSync(path).size;
      if (size > MAX_BYTES) {
        throw invalidInput(
          `${path} is ${size} bytes, over the ${MAX_BYTES}-byte limit of the WebAssembly backend's ` +
            'snapshots: install the native backend (@sqlite-vector/linux-x64-gnu) to open it',
        );
      }
      db = await api.importShard(readFileSync(path), options);
    } else {
      const { dim, ...rest } = options ?? {};
      if (dim === undefined) throw invalidInput(`${path} does not exist, and creating it needs dim`);
      db = await api.open({ dim, ...rest, storage: 'memory' });
      writeAtomically(path, await db.export());
    }
  } catch (e) {
    unlock();
    process.off('exit', unlock);
    throw e;
  }
  return new SnapshotDb(db, path, () => {
    unlock();
    process.off('exit', unlock);
  });
}

class SnapshotDb {
  #db;
  #path;
  #unlock;
  #dirty = false;
  #reason;

  constructor(db, path, unlock) {
    this.#db = db;
    this.#reason = db.backendReason ?? null;
    this.#path = path;
    this.#unlock = unlock;
    for (const op of ['insert', 'upsert', 'insertBatch', 'get', 'update', 'delete', 'search', 'searchText', 'searchHybrid', 'createIndex', 'stats', 'export']) {
      this[op] = async (...args) => {
        if (this.#db === null) throw invalidInput('the database is closed');
        const r = await this.#db[op](...args);
        if (WRITES.has(op)) this.#dirty = true;
        return r;
      };
    }
  }

  get backend() {
    return 'wasm';
  }

  /** Why the wasm backend runs although none was asked for, else `null`. */
  get backendReason() {
    return this.#reason;
  }

  /** `'snapshot'`: in memory, saved to `path` on flush() and close(). */
  get storage() {
    return 'snapshot';
  }

  /** The snapshot file. */
  get path() {
    return this.#path;
  }

  /** Writes the database to its file now (atomically; nothing when nothing changed). */
  async flush() {
    if (this.#db === null) throw invalidInput('the database is closed');
    if (!this.#dirty) return;
    const bytes = await this.#db.export();
    if (bytes.length > MAX_BYTES) {
      throw invalidInput(
        `the database is ${bytes.length} bytes, over the ${MAX_BYTES}-byte limit of snapshots: ` +
          'install the native backend (@sqlite-vector/linux-x64-gnu)',
      );
    }
    writeAtomically(this.#path, bytes);
    this.#dirty = false;
  }

  /** Flushes, then frees the database and releases the file. Idempotent. */
  async close() {
    if (this.#db === null) return;
    try {
      await this.flush();
    } finally {
      const db = this.#db;
      this.#db = null;
      await db.close();
      this.#unlock();
    }
  }
}
