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

function splitItem(item, what) {
  const { vector, ...rest } = checkObject(item, what);
  checkVector(vector, `${what}.vector`);
  return { vector, rest };
}

function toItem(o) {
  return { id: o.id, vector: Float32Array.from(o.vector), metadata: o.metadata, text: o.text };
}

/**
 * Makes the API over a wasm-bindgen module. `load()` returns the initialised glue module
 * (its `Db` class, `lastPanic`); it is called on the first `open`.
 */
export function createApi(load) {
  let wasm = null;
  // Set after a panic: the module's state is undefined from then on.
  let dead = null;

  function call(fn) {
    if (dead) throw new SqliteVectorError(dead, 'Internal');
    try {
      return fn();
    } catch (e) {
      throw mapError(e);
    }
  }

  async function callAsync(fn) {
    if (dead) throw new SqliteVectorError(dead, 'Internal');
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
        dead =
          `wasm panicked: ${panic ?? e.message}; this module instance cannot be used again ` +
          '(start a new process or worker)';
        return new SqliteVectorError(dead, 'Internal', { cause: e });
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

    /** Always `'wasm'` in this package build. */
    get backend() {
      return 'wasm';
    }

    /** Where the data lives: `'memory'` or `'opfs'` (browser worker). */
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
      return call(() => this.#live().insert(vector, json));
    }

    async upsert(item) {
      const { vector, rest } = splitItem(item, 'item');
      const json = toJson(rest, 'item');
      return call(() => this.#live().upsert(vector, json));
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
      return JSON.parse(call(() => this.#live().insertBatch(flat, json)));
    }

    async get(id) {
      checkString(id, 'id');
      return toItem(JSON.parse(call(() => this.#live().get(id))));
    }

    async update(id, patch) {
      checkString(id, 'id');
      const { vector, ...rest } = checkObject(patch, 'patch');
      if (vector !== undefined && vector !== null) checkVector(vector, 'patch.vector');
      const json = toJson(rest, 'patch');
      call(() => this.#live().update(id, vector ?? undefined, json));
    }

    async delete(id) {
      checkString(id, 'id');
      call(() => this.#live().delete(id));
    }

    async search(vector, options) {
      checkVector(vector, 'vector');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(call(() => this.#live().search(vector, json)));
    }

    async searchText(text, options) {
      checkString(text, 'text');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(call(() => this.#live().searchText(text, json)));
    }

    async searchHybrid(vector, text, options) {
      checkVector(vector, 'vector');
      checkString(text, 'text');
      const json = toJson(checkObject(options, 'options'), 'search options');
      return JSON.parse(call(() => this.#live().searchHybrid(vector, text, json)));
    }

    async createIndex(options) {
      const json = toJson(checkObject(options, 'options'), 'index options');
      call(() => this.#live().createIndex(json));
    }

    async stats() {
      return JSON.parse(call(() => this.#live().stats()));
    }

    /** The database as the bytes of one shard file (a new Uint8Array). */
    async export() {
      return call(() => this.#live().export());
    }

    async close() {
      const db = this.#db;
      if (db === null) return;
      this.#db = null;
      call(() => {
        db.close();
        db.free();
      });
    }
  }

  async function open(options) {
    const { dim, metric = 'cosine', storage = 'memory', ...rest } = checkObject(options, 'options');
    if (typeof dim !== 'number') throw invalidType(`dim must be a number, got ${describe(dim)}`);
    if (!Number.isInteger(dim) || dim < 0 || dim > 0xffffffff) {
      throw invalidInput(`dim must be a positive integer, got ${dim}`);
    }
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
    return new Db(call(() => m.Db.fromImage(bytes, json)));
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
    open,
    importShard,
    openOpfs,
    importOpfs,
    sqliteVersion: () => call(() => module().sqliteVersion()),
    testPanic: (message) => call(() => module().__testPanic(String(message))),
  };
}
