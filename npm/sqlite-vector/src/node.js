// Node entry. Two backends behind one API:
// - `native`: the napi addon of the platform package (@sqlite-vector/linux-x64-gnu), over the
//   Rust core: shard files in WAL mode (every write durable when it resolves; several processes
//   on one file), the core's helper threads, work off the JS thread;
// - `wasm`: the WebAssembly build next to this file, in memory, with `path` files kept as
//   snapshots (snapshot.js).
// Which one: `open({backend})`, else the environment variable SQLITE_VECTOR_BACKEND (`native`
// or `wasm`), else native when the platform package loads and wasm otherwise. A backend that
// was asked for and cannot load is an error (kind `BackendUnavailable`), never a fallback; the
// one in use is `db.backend`, and `db.backendReason` says why wasm runs when nobody asked.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

import { createApi } from './core.js';
import { SqliteVectorError, StorageBusyError, invalidInput } from './errors.js';
import { lockHolder, openSnapshot } from './snapshot.js';
import * as glue from './wasm/sqlite_vector_wasm.js';

// One module instance, shared by the APIs over it (and so is its health after a panic).
const wasmHealth = { dead: null };
const wasmApi = createApi(() => {
  // The glue's default init would fetch() a file: URL, which Node does not support.
  const bytes = readFileSync(new URL('./wasm/sqlite_vector_wasm_bg.wasm', import.meta.url));
  glue.initSync({ module: bytes });
  return glue;
}, { health: wasmHealth });

/** The platform package for this machine, or why there is none. */
function platformPackage() {
  const { platform, arch } = process;
  if (platform !== 'linux') return { reason: `no native build for ${platform}-${arch}` };
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
  if (!glibc) return { reason: `no native build for ${platform}-${arch} with musl (glibc only)` };
  if (arch !== 'x64') return { reason: `no native build for ${platform}-${arch}-gnu` };
  return { name: '@sqlite-vector/linux-x64-gnu' };
}

// The native addon: loaded once; `{addon}` or `{error}` (an Error saying why not).
let native = null;
function loadNative() {
  if (native !== null) return native;
  const override = process.env.SQLITE_VECTOR_ADDON;
  const pkg = platformPackage();
  const require = createRequire(import.meta.url);
  try {
    if (override) {
      native = { addon: require(resolve(override)), from: resolve(override) };
    } else if (pkg.name) {
      native = { addon: require(`${pkg.name}/sqlite-vector.node`), from: pkg.name };
    } else {
      native = { error: pkg.reason };
    }
  } catch (e) {
    native =
      e.code === 'MODULE_NOT_FOUND' && !override
        ? { error: `the platform package ${pkg.name} is not installed (an optional dependency of sqlite-vector)` }
        : { error: `the native addon (${override ?? pkg.name}) does not load: ${e.message}` };
  }
  return native;
}

let nativeApi = null;
function backendApi(asked) {
  const env = process.env.SQLITE_VECTOR_BACKEND;
  const choice = asked ?? (env === undefined || env === '' ? 'auto' : env);
  if (choice !== 'auto' && choice !== 'native' && choice !== 'wasm') {
    const where = asked === undefined ? 'SQLITE_VECTOR_BACKEND' : 'backend';
    throw invalidInput(`${where} must be 'native' or 'wasm', got ${JSON.stringify(choice)}`);
  }
  if (choice === 'wasm') return wasmApi;
  const n = loadNative();
  if (n.addon) {
    nativeApi ??= createApi(() => n.addon, { backend: 'native' });
    return nativeApi;
  }
  if (choice === 'native') {
    throw new SqliteVectorError(`the native backend was asked for and cannot load: ${n.error}`, 'BackendUnavailable');
  }
  autoWasmApi ??= createApi(wasmApi.load, { backend: 'wasm', backendReason: n.error, health: wasmHealth });
  return autoWasmApi;
}
let autoWasmApi = null;

/**
 * Opens a database: with `path`, the shard file there (native: the file itself, WAL mode,
 * every write durable; wasm: a snapshot, saved atomically on flush() and close()), created
 * when missing (needs `dim`); without, a new one in memory.
 */
export async function open(options) {
  const { path, name, storage, backend, ...rest } = options ?? {};
  const api = backendApi(backend);
  if (path === undefined) {
    if (storage === 'snapshot' || storage === 'file') throw invalidInput(`storage '${storage}' needs a path`);
    return api.open({ ...rest, storage: storage ?? 'memory' });
  }
  if (api.backend === 'native') {
    if (storage !== undefined && storage !== 'file' && storage !== 'auto') {
      throw invalidInput(`storage ${JSON.stringify(storage)} cannot take a path with the native backend: use 'file' (or leave it out)`);
    }
    if (typeof path !== 'string' || path === '') return api.openFile(path, rest);
    const full = resolve(path);
    const holder = lockHolder(full);
    if (holder !== null) {
      throw new StorageBusyError(`${full} is open as a snapshot by the wasm backend in process ${holder} (${full}.lock)`);
    }
    return withFileMethods(await api.openFile(full, rest), full);
  }
  if (storage !== undefined && storage !== 'snapshot' && storage !== 'auto') {
    throw invalidInput(`storage ${JSON.stringify(storage)} cannot take a path with the wasm backend: use 'snapshot' (or leave it out)`);
  }
  return openSnapshot(api, path, rest);
}

// A native file database gets `path` and `flush()` (a no-op: its writes are already durable),
// so that code written for snapshots runs unchanged.
function withFileMethods(db, path) {
  if (path !== undefined) Object.defineProperty(db, 'path', { value: path, enumerable: true });
  db.flush = async () => {
    // Nothing to write; a closed database still rejects (InvalidInput), as a snapshot's does.
    await db.stats();
  };
  return db;
}

/** A database in memory from the bytes of a shard file. */
export async function importShard(bytes, options) {
  const { name, backend, ...rest } = options ?? {};
  return backendApi(backend).importShard(bytes, rest);
}

/**
 * Deletes the shard file `path` (and its `-wal`/`-shm`), resolving to `false` when there was
 * none; `StorageBusyError` while a wasm snapshot holds it.
 */
export async function deleteStore(path) {
  if (typeof path !== 'string' || path === '') throw invalidInput('deleteStore needs the path of a shard file');
  const full = resolve(path);
  const holder = lockHolder(full);
  if (holder !== null) throw new StorageBusyError(`${full} is open in process ${holder} (${full}.lock)`);
  const existed = existsSync(full);
  for (const f of [full, `${full}-wal`, `${full}-shm`]) rmSync(f, { force: true });
  return existed;
}

/**
 * Named shards under a root directory (native backend only): the layout of the CLI's
 * `--root` and of the MCP server (a catalog, shard files in WAL mode, up to `capacity` open at
 * once), with searches across shards. The wasm backend has no manager: `BackendUnavailable`.
 */
export async function openManager(options) {
  const { root, backend, capacity } = options ?? {};
  const api = backendApi(backend);
  if (api.backend !== 'native') {
    const why = api.backendReason ?? 'the wasm backend was asked for';
    throw new SqliteVectorError(`the shard manager needs the native backend (${why})`, 'BackendUnavailable');
  }
  api.checkString(root, 'root');
  const addon = api.load();
  const json = api.toJson(capacity === undefined ? {} : { capacity }, 'manager options');
  return new Manager(api, await api.callAsync(() => addon.Manager.open(resolve(root), json)));
}

function splitTargets(api, options, what) {
  const { shards, prefix, ...rest } = api.checkObject(options, what);
  return [api.toJson({ shards, prefix }, what), api.toJson(rest, what)];
}

class Manager {
  #api;
  #m;

  constructor(api, m) {
    this.#api = api;
    this.#m = m;
  }

  /** Creates the shard `name` (`{dim, metric?, searchable?, embedding_model?}`); its `Db`. */
  async create(name, options) {
    const api = this.#api;
    api.checkString(name, 'name');
    const { dim, metric = 'cosine', ...rest } = api.checkObject(options, 'options');
    if (!Number.isInteger(dim) || dim < 0) throw invalidInput(`dim must be a positive integer, got ${dim}`);
    api.checkString(metric, 'metric');
    const json = api.toJson(rest, 'shard options');
    return withFileMethods(api.wrapDb(await api.callAsync(() => this.#m.create(name, dim, metric, json))));
  }

  /** The shard `name` (`UnknownShard` when there is none); closing it leaves it to the manager. */
  async open(name) {
    const api = this.#api;
    api.checkString(name, 'name');
    return withFileMethods(api.wrapDb(await api.callAsync(() => this.#m.openShard(name))));
  }

  /** The shards under `prefix` (all without): `[{name, dim, metric, embedding_model, bytes_on_disk, created_at}]`. */
  async list(prefix) {
    if (prefix !== undefined) this.#api.checkString(prefix, 'prefix');
    return JSON.parse(await this.#api.callAsync(() => this.#m.list(prefix)));
  }

  /** Deletes the shard `name` and its files (`UnknownShard` when there is none). */
  async drop(name) {
    this.#api.checkString(name, 'name');
    await this.#api.callAsync(() => this.#m.dropShard(name));
  }

  /** Vector search across `{shards: [...]}` or `{prefix}`: `{hits (each with its shard), failures}`. */
  async search(vector, options) {
    this.#api.checkVector(vector, 'vector');
    const [targets, json] = splitTargets(this.#api, options, 'search options');
    return JSON.parse(await this.#api.callAsync(() => this.#m.search(vector, targets, json)));
  }

  /** Keyword search (BM25) across shards, as `search`. */
  async searchText(text, options) {
    this.#api.checkString(text, 'text');
    const [targets, json] = splitTargets(this.#api, options, 'search options');
    return JSON.parse(await this.#api.callAsync(() => this.#m.searchText(text, targets, json)));
  }

  /** Hybrid search across shards, as `search` with the options of `Db.searchHybrid`. */
  async searchHybrid(vector, text, options) {
    this.#api.checkVector(vector, 'vector');
    this.#api.checkString(text, 'text');
    const [targets, json] = splitTargets(this.#api, options, 'search options');
    return JSON.parse(await this.#api.callAsync(() => this.#m.searchHybrid(vector, text, targets, json)));
  }

  /** Lets go of the manager (its shards close once no `Db` holds them). Idempotent. */
  async close() {
    this.#m.close();
  }
}

export { SqliteVectorError, StorageBusyError } from './errors.js';

/** The SQLite version compiled into the backend, e.g. `'3.53.4'`. */
export const sqliteVersion = async (options) => backendApi(options?.backend).sqliteVersion();

/**
 * Which backend `open()` picks here without a `backend` option, and why: `{backend, reason}`
 * (`reason` is `null` for native or when asked for). Throws as `open` would.
 */
export function backendInfo(options) {
  const api = backendApi(options?.backend);
  return { backend: api.backend, reason: api === autoWasmApi ? native?.error ?? null : null };
}

/** @internal Test hook: makes the wasm module panic (every later call fails). */
export const __testPanic = wasmApi.testPanic;
