// The JS API over the wasm module, independent of how the module is loaded (Node reads the
// file next to it; the browser build will proxy these calls to a worker). Every method is
// async: the browser version answers over postMessage, and both must look the same.
//
// Across the boundary vectors go as Float32Arrays (wasm-bindgen copies them into wasm memory)
// and everything else as JSON text, parsed by the Rust side (crate sqlite-vector-jsapi), which
// refuses unknown option names. Results come back as JSON text, so nothing returned is a view
// into wasm memory (views detach when the memory grows).

import { SqliteVectorError, invalidInput, invalidType } from './errors.js';

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}

function checkVector(v, what) {
  if (!(v instanceof Float32Array)) {
    throw invalidType(`${what} must be a Float32Array, got ${describe(v)}`);
  }
  return v;
}

function checkString(v, what) {
  if (typeof v !== 'string') throw invalidType(`${what} must be a string, got ${describe(v)}`);
  return v;
}

function checkObject(v, what) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw invalidType(`${what} must be an object, got ${describe(v)}`);
  }
  return v;
}

// JSON text of `value`; NaN and ±Infinity (which JSON.stringify would turn into null, silently
// dropping an option) are refused.
function toJson(value, what) {
  return JSON.stringify(value, (key, v) => {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw invalidInput(`${what}: ${key || 'value'} must be a finite number, got ${v}`);
    }
    return v;
  });
}

function checkDim(dim) {
  if (typeof dim !== 'number') throw invalidType(`dim must be a number, got ${describe(dim)}`);
  if (!Number.isInteger(dim) || dim < 0 || dim > 0xffffffff) {
    throw invalidInput(`dim must be a positive integer, got ${dim}`);
  }
}

function splitItem(item, what) {
  const { vector, ...rest } = checkObject(item, what);
  checkVector(vector, `${what}.vector`);
  return { vector, rest };
}

function toItem(o) {
  return { id: o.id, vector: Float32Array.from(o.vector), metadata: o.metadata, text: o.text };
}

/**
 * Makes the API over a module with the `Db` class of the wasm build: the wasm-bindgen module
 * or the native addon (crates/node), whose methods answer with promises. `load()` returns the
 * initialised module; it is called on the first `open`. `backend`: `'wasm'` or `'native'`;
 * `backendReason`: why this one was picked, when nobody asked for it.
 */
export function createApi(load, { backend = 'wasm', backendReason = null, health = { dead: null } } = {}) {
  let wasm = null;
  // health.dead is set after a panic: the module's state is undefined from then on (shared by
  // the APIs made over one module).

  function call(fn) {
    if (health.dead) throw new SqliteVectorError(health.dead, 'Internal');
    try {
      return fn();
    } catch (e) {
      throw mapError(e);
    }
  }

  // For calls that may answer with a promise (the native addon's all do; the wasm module's
  // OPFS calls).
  async function callAsync(fn) {
    if (health.dead) throw new SqliteVectorError(health.dead, 'Internal');
    try {
      return await fn();
    } catch (e) {
      throw mapError(e);
    }
  }

  function mapError(e) {
    {
      if (e instanceof WebAssembly.RuntimeError) {
        let panic = null;
        try {
          panic = wasm.lastPanic() ?? null;
        } catch {
          // The message is best effort.
        }
        health.dead =
          `wasm panicked: ${panic ?? e.message}; this module instance cannot be used again ` +
          '(start a new process or worker)';
        return new SqliteVectorError(health.dead, 'Internal', { cause: e });
      }
      if (e instanceof Error && typeof e.kind === 'string' && !(e instanceof SqliteVectorError)) {
        return new SqliteVectorError(e.message, e.kind);
      }
      return e;
    }
  }

  class Db {
    #db;

    constructor(inner) {
      this.#db = inner;
    }

    /** `'native'` (the napi addon) or `'wasm'`. */
    get backend() {
      return backend;
    }

    /** Why this backend although none was asked for (`null` when the native one runs or was asked for). */
    get backendReason() {
      return backendReason;
    }

    /** Where the data lives: `'memory'`, `'opfs'` (browser worker) or `'file'` (native). */
    get storage() {
      return this.#db === null ? this.#storage : (this.#storage = this.#db.storage);
    }

    #storage = 'memory';

    #live() {
      if (this.#db === null) throw invalidInput('the database is closed');
      return this.#db;
    }

    async insert(item) {
      const { vector, rest } = splitItem(item, 'item');
      const json = toJson(rest, 'item');
      return callAsync(() => this.#live().insert(vector, json));
    }

    async upsert(item) {
      const { vector, rest } = splitItem(item, 'item');
      const json = toJson(rest, 'item');
      return callAsync(() => this.#live().upsert(vector, json));
    }

    async insertBatch(items) {
      if (!Array.isArray(items)) throw invalidType(`items must be an array, got ${describe(items)}`);
      const parts = items.map((item, i) => splitItem(item, `items[${i}]`));
      const dim = parts.length ? parts[0].vector.length : 0;
      parts.forEach(({ vector }, i) => {
        if (vector.length !== dim) {
          throw invalidInput(
            `dimension mismatch: items[${i}].vector has ${vector.length} values, items[0].vector ${dim}`,
          );
        }
      });
      // One new buffer: the callers' arrays are never touched.
      const flat = new Float32Array(parts.length * dim);
      parts.forEach(({ vector }, i) => flat.set(vector, i * dim));
      const json = toJson(
        parts.map((p) => p.rest),
        'items',
      );
      return JSON.parse(await callAsync(() => this.#live().insertBatch(flat, json)));
    }

    async get(id) {
      checkString(id, 'id');
      return toItem(JSON.parse(await callAsync(() => this.#live().get(id))));
    }

    async update(id, patch) {
      checkString(id, 'id');
      const { vector, ...rest } = checkObject(patch, 'patch');
      if (vector !== undefined && vector !== null) checkVector(vector, 'patch.vector');
      const json = toJson(rest, 'patch');
      await callAsync(() => this.#live().update(id, vector ?? undefined, json));
    }

    async delete(id) {
      checkString(id, 'id');
      await callAsync(() => this.#live().delete(id));
    }

    async search(vector, options) {
      checkVector(vector, 'vector');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(await callAsync(() => this.#live().search(vector, json)));
    }

    async searchText(text, options) {
      checkString(text, 'text');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(await callAsync(() => this.#live().searchText(text, json)));
    }

    async searchHybrid(vector, text, options) {
      checkVector(vector, 'vector');
      checkString(text, 'text');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(await callAsync(() => this.#live().searchHybrid(vector, text, json)));
    }

    async createIndex(options) {
      const json = toJson(checkObject(options, 'options'), 'index options');
      await callAsync(() => this.#live().createIndex(json));
    }

    async stats() {
      return JSON.parse(await callAsync(() => this.#live().stats()));
    }

    /** The database as the bytes of one shard file (a new Uint8Array). */
    async export() {
      const bytes = await callAsync(() => this.#live().export());
      // The native addon answers with a Buffer: hand out a plain Uint8Array, as the wasm build.
      return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    }

    async close() {
      const db = this.#db;
      if (db === null) return;
      this.#db = null;
      call(() => {
        db.close();
        db.free?.();
      });
    }
  }

  async function open(options) {
    const { dim, metric = 'cosine', storage = 'memory', ...rest } = checkObject(options, 'options');
    checkDim(dim);
    checkString(metric, 'metric');
    if (storage !== 'memory' && storage !== 'auto') {
      throw invalidInput(`storage ${JSON.stringify(storage)} is not available in this build: use 'memory'`);
    }
    const json = toJson(rest, 'open options');
    const m = module();
    return new Db(call(() => new m.Db(dim, metric, json)));
  }

  /** A copy of a shard image (bytes of a shard file), in memory. */
  async function importShard(bytes, options) {
    if (!(bytes instanceof Uint8Array)) throw invalidType(`bytes must be a Uint8Array, got ${describe(bytes)}`);
    const { storage = 'memory', ...rest } = checkObject(options, 'options');
    if (storage !== 'memory' && storage !== 'auto') {
      throw invalidInput(`storage ${JSON.stringify(storage)} is not available here: use 'memory'`);
    }
    const json = toJson(rest, 'import options');
    const m = module();
    return new Db(await callAsync(() => m.Db.fromImage(bytes, json)));
  }

  /**
   * The shard file at `path` (native addon only): WAL mode, every write durable when it
   * resolves; created when missing (needs `dim`).
   */
  async function openFile(path, options) {
    checkString(path, 'path');
    const json = toJson(checkObject(options, 'options'), 'open options');
    const m = module();
    if (typeof m.Db.openFile !== 'function') throw invalidInput('shard files need the native backend');
    return new Db(await callAsync(() => m.Db.openFile(path, json)));
  }

  /** The persistent store `name` in OPFS (dedicated workers only; see worker.js). */
  async function openOpfs(name, options) {
    const json = toJson(checkObject(options, 'options'), 'open options');
    const m = module();
    return new Db(await callAsync(() => m.openOpfs(name, json)));
  }

  /** A new persistent store `name` in OPFS from a shard image. */
  async function importOpfs(name, bytes, options) {
    if (!(bytes instanceof Uint8Array)) throw invalidType(`bytes must be a Uint8Array, got ${describe(bytes)}`);
    const json = toJson(checkObject(options, 'options'), 'open options');
    const m = module();
    return new Db(await callAsync(() => m.importOpfs(name, bytes, json)));
  }

  function module() {
    if (wasm === null) wasm = load();
    return wasm;
  }

  return {
    backend,
    backendReason,
    /** A `Db` over a module-level database object (the native manager's shards). */
    wrapDb: (inner) => new Db(inner),
    callAsync,
    toJson,
    checkObject,
    checkVector,
    checkString,
    open,
    openFile,
    importShard,
    openOpfs,
    importOpfs,
    sqliteVersion: () => call(() => module().sqliteVersion()),
    /** Loads the module now (throws what loading throws). */
    load: () => module(),
    testPanic: (message) => call(() => module().__testPanic(String(message))),
  };
}
