// Browser entry: a thin async proxy. Each open database runs in a dedicated module Worker that
// this package starts itself (worker.js): the wasm module, SQLite and OPFS live there, since
// OPFS sync access handles exist only in dedicated workers. Nothing here needs COOP/COEP
// headers or SharedArrayBuffer.
//
// Calls go out as {id, op, args} and come back as {id, ok, value} or {id, ok: false, error}.
// Vectors are copied into the message (structured clone): the caller's arrays are never
// detached.

import { SqliteVectorError, StorageBusyError, invalidInput } from './errors.js';

function rethrow(error) {
  const { message, kind, name } = error;
  if (kind === 'StorageBusy') return new StorageBusyError(message);
  if (name === 'TypeError') {
    const e = new TypeError(message);
    e.kind = kind;
    return e;
  }
  return new SqliteVectorError(message, kind ?? 'Internal');
}

function startWorker(options) {
  // The literal `new Worker(new URL('./worker.js', import.meta.url), {type: 'module'})` is the
  // form bundlers (Vite, webpack 5, esbuild, Rollup) recognise and emit with the worker.
  if (options?.worker !== undefined) return new Worker(options.worker, { type: 'module' });
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
}

class Remote {
  #worker;
  #next = 1;
  #pending = new Map();
  #dead = null;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (ev) => {
      const { id, ok, value, error } = ev.data;
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      if (ok) p.resolve(value);
      else p.reject(rethrow(error));
    };
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      this.#fail(`the sqlite-vector worker failed: ${ev.message ?? 'could not load it'}`);
    };
    worker.onmessageerror = () => this.#fail('a message from the sqlite-vector worker could not be read');
  }

  #fail(message) {
    this.#dead = message;
    for (const p of this.#pending.values()) p.reject(new SqliteVectorError(message, 'Internal'));
    this.#pending.clear();
    this.#worker.terminate();
  }

  call(op, ...args) {
    if (this.#dead) return Promise.reject(new SqliteVectorError(this.#dead, 'Internal'));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args });
    });
  }

  terminate() {
    this.#dead = 'the database is closed';
    this.#worker.terminate();
  }
}

class Db {
  #remote;
  #info;
  #closed = false;

  constructor(remote, info) {
    this.#remote = remote;
    this.#info = info;
  }

  /** Always `'wasm'` in the browser. */
  get backend() {
    return 'wasm';
  }

  /** `'opfs'` (persistent, Origin Private File System) or `'memory'`. */
  get storage() {
    return this.#info.storage;
  }

  /** Why the storage is memory when OPFS was asked for with `storage: 'auto'`, else `null`. */
  get storageReason() {
    return this.#info.reason ?? null;
  }

  /** The store's name. */
  get name() {
    return this.#info.name;
  }

  #call(op, ...args) {
    if (this.#closed) return Promise.reject(invalidInput('the database is closed'));
    return this.#remote.call(op, ...args);
  }

  insert(item) {
    return this.#call('insert', item);
  }
  upsert(item) {
    return this.#call('upsert', item);
  }
  insertBatch(items) {
    return this.#call('insertBatch', items);
  }
  get(id) {
    return this.#call('get', id);
  }
  update(id, patch) {
    return this.#call('update', id, patch);
  }
  delete(id) {
    return this.#call('delete', id);
  }
  search(vector, options) {
    return this.#call('search', vector, options);
  }
  searchText(text, options) {
    return this.#call('searchText', text, options);
  }
  searchHybrid(vector, text, options) {
    return this.#call('searchHybrid', vector, text, options);
  }
  createIndex(options) {
    return this.#call('createIndex', options);
  }
  stats() {
    return this.#call('stats');
  }
  export() {
    return this.#call('export');
  }
  async close() {
    if (this.#closed) return;
    try {
      await this.#remote.call('close');
    } finally {
      this.#closed = true;
      this.#remote.terminate();
    }
  }
}

// Whether this page has OPFS at all (the worker checks its own side too): a page without it
// (an insecure origin, a browser without the API) gets a store in memory, which says so.
function pageHasOpfs() {
  return globalThis.isSecureContext === true && typeof navigator.storage?.getDirectory === 'function';
}

async function start(op, arg, options) {
  const remote = new Remote(startWorker(options));
  try {
    const info = await remote.call(op, arg);
    return new Db(remote, info);
  } catch (e) {
    remote.terminate();
    throw e;
  }
}

/**
 * Opens (or creates) the store `name` in a worker of its own. See index.d.ts.
 */
export function open(options) {
  const { worker, ...rest } = options ?? {};
  return start('open', { ...rest, opfs: pageHasOpfs() }, { worker });
}

/**
 * Creates a store from an exported shard image (bytes of a shard file). See index.d.ts.
 */
export function importShard(bytes, options) {
  const { worker, ...rest } = options ?? {};
  return start('import', { ...rest, bytes, opfs: pageHasOpfs() }, { worker });
}

/**
 * Deletes the persistent store `name` (its OPFS directory); resolves to `false` when there was
 * none. Rejects with `StorageBusyError` while a tab or worker has it open.
 */
export async function deleteStore(name, options) {
  const { worker, busyTimeoutMs } = options ?? {};
  const remote = new Remote(startWorker({ worker }));
  try {
    return await remote.call('deleteStore', { name, busyTimeoutMs });
  } finally {
    remote.terminate();
  }
}

/** The SQLite version compiled into the wasm module (loaded in a short-lived worker). */
export async function sqliteVersion(options) {
  const { worker, wasmUrl } = options ?? {};
  const remote = new Remote(startWorker({ worker }));
  try {
    return await remote.call('sqliteVersion', { wasmUrl });
  } finally {
    remote.terminate();
  }
}

export { SqliteVectorError, StorageBusyError } from './errors.js';

/** The browser runs the WebAssembly build, always: `{backend: 'wasm', reason: null}`. */
export function backendInfo() {
  return { backend: 'wasm', reason: null };
}

/** Node only: the browser has no shard manager (kind `BackendUnavailable`). */
export async function openManager() {
  throw new SqliteVectorError('the shard manager needs the native backend (Node with @sqlite-vector/linux-x64-gnu)', 'BackendUnavailable');
}
