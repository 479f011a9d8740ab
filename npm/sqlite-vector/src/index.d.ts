// The public API of the `sqlite-vector` package (hand-written; the wasm-bindgen d.ts is
// internal). Option names are the ones of the Rust API, the CLI and the MCP server: k, filter,
// metric, min_score, max_distance, ef_search, exact.

/**
 * Which engine runs the database: `'native'` (Node with the platform package
 * `@sqlite-vector/linux-x64-gnu`: the Rust core as a Node addon) or `'wasm'` (the browser, and
 * Node without it).
 */
export type Backend = 'native' | 'wasm';
/**
 * Where the data lives: `'opfs'` (browser: the origin's private file system, kept across
 * reloads and restarts), `'memory'` (gone when the database is closed), `'file'` (Node, native
 * backend: a shard file in WAL mode, every write durable when it resolves) or `'snapshot'`
 * (Node, wasm backend: in memory, written to its file on `flush()` and `close()`).
 */
export type Storage = 'opfs' | 'memory' | 'snapshot' | 'file';
/** `cosine`: cosine similarity in [-1, 1]; `l2`: Euclidean distance; `dot`: inner product. */
export type Metric = 'cosine' | 'l2' | 'dot';
/** The core's error classes (`SqliteVectorError.kind`). */
export type ErrorKind =
  | 'InvalidInput'
  | 'NotFound'
  | 'AlreadyExists'
  | 'ProfileMismatch'
  | 'NotAShard'
  | 'Busy'
  | 'Corrupt'
  | 'Io'
  | 'Internal'
  | 'UnknownShard'
  /** Node: the backend asked for (`backend`, SQLITE_VECTOR_BACKEND) cannot load here. */
  | 'BackendUnavailable'

/** Browser: the store is open in another tab or worker (`StorageBusyError`). */
  | 'StorageBusy'
  /** Browser: `storage: 'opfs'` asked for where OPFS sync access handles do not exist. */
  | 'StorageUnavailable';

/** A metadata object (JSON: strings, numbers, booleans, null, arrays, objects). */
export type Metadata = Record<string, unknown>;

/**
 * A metadata filter, e.g. `{lang: 'rust', stars: {$gte: 3}}`, with `$eq $ne $in $nin $gt $gte
 * $lt $lte $exists $and $or $not`.
 */
export type Filter = Record<string, unknown>;

export interface OpenOptions {
  /**
   * Browser: the store's name (1-128 letters, digits, `.`, `_`, `-`; first a letter or digit):
   * its OPFS directory `sqlite-vector/<name>` and its lock. Ignored in Node.
   */
  name?: string;
  /**
   * Node: the shard file, created when missing (needs `dim`). Native backend: the file itself
   * (`storage: 'file'`, WAL mode: every write is durable when its promise resolves; several
   * processes may open one file). Wasm backend: a *snapshot* (`storage: 'snapshot'`): the
   * database is in memory and written to `path` atomically (temporary file, fsync, rename) by
   * `flush()` and `close()`; writes since the last flush are lost on a crash; one process at a
   * time (`<path>.lock`, `StorageBusyError` otherwise); up to 512 MiB. Both backends read each
   * other's files (a native file once its last writer closed it).
   */
  path?: string;
  /**
   * Node: `'native'` or `'wasm'`, overriding the environment variable `SQLITE_VECTOR_BACKEND`;
   * left out, native when the platform package loads, else wasm (`db.backendReason` says why).
   * A backend asked for that cannot load rejects with kind `BackendUnavailable`. Ignored in
   * the browser (always wasm).
   */
  backend?: Backend;
  /**
   * Vector dimension, 1 ..= 16,384. Required to create a store; an existing browser store
   * must have this one (`ProfileMismatch` otherwise) and may be opened without it.
   */
  dim?: number;
  /** Default `'cosine'` (checked against an existing browser store when given). */
  metric?: Metric;
  /**
   * Browser: `'auto'` (default) keeps the store in OPFS, or in memory where OPFS is missing
   * (`db.storage` and `db.storageReason` say so); `'opfs'` fails with `StorageUnavailable`
   * instead; `'memory'` never persists. Node: `'memory'` without a `path`; with one `'file'`
   * (native) or `'snapshot'` (wasm) (`'auto'` picks).
   */
  storage?: Storage | 'auto';
  /**
   * Browser: how long to wait, in ms, for a store another tab or worker holds before
   * rejecting with `StorageBusyError` (default 3,000).
   */
  busyTimeoutMs?: number;
  /** Browser: where to load the `.wasm` from, when a bundler cannot follow the package's URL. */
  wasmUrl?: string | URL;
  /** Browser: the worker script's URL, when a bundler cannot follow the package's URL. */
  worker?: string | URL;
  /** Metadata fields (dotted paths) indexed for keyword search with the text. */
  searchable?: string[];
  /** The model whose vectors the database holds, recorded in its profile. */
  embedding_model?: string;
}

export interface Item {
  /** 1-512 bytes, no control characters. Absent on insert: generated (16 hex digits). */
  id?: string;
  /** Exactly `dim` finite values (a zero vector is refused by cosine databases). */
  vector: Float32Array;
  /** A JSON object (default `{}`), usable in filters. */
  metadata?: Metadata;
  /** Text, indexed for `searchText` and `searchHybrid`. */
  text?: string;
}

/** A stored item, as `get` returns it. */
export interface StoredItem {
  id: string;
  /** A copy of the stored vector. */
  vector: Float32Array;
  metadata: Metadata;
  /** `null` when the item has none. */
  text: string | null;
}

/** A partial change: fields left out keep their value. */
export interface Patch {
  vector?: Float32Array;
  /** Replaces the whole metadata object. */
  metadata?: Metadata;
  text?: string;
}

export interface SearchOptions {
  /** Number of hits, 1 ..= 10,000 (default 10). Fewer come back when fewer items match. */
  k?: number;
  /** Only items whose metadata matches. */
  filter?: Filter;
  /** Drop hits scoring below this (cosine and dot similarity; BM25 for `searchText`). */
  min_score?: number;
  /** Drop hits farther than this L2 distance (l2 databases, vector search only). */
  max_distance?: number;
  /** Metric of this search instead of the database's. */
  metric?: Metric;
  /** HNSW beam width of this search (databases with an index; default: the index's). */
  ef_search?: number;
  /** Scan exactly even when the database has an index. */
  exact?: boolean;
}

export interface HybridOptions extends Omit<SearchOptions, 'max_distance'> {
  /** `'dbsf'` (default: z-scores of both scores, summed) or `'rrf'` (reciprocal rank fusion). */
  fusion?: 'dbsf' | 'rrf';
  /** RRF's constant (default 60; `'rrf'` only). */
  rrf_k?: number;
  /** Weight of the vector ranking (default 1). */
  vector_weight?: number;
  /** Weight of the BM25 ranking (default 1). */
  text_weight?: number;
  /** Candidates taken from each ranking (default 100, at least `k`). */
  candidates?: number;
}

export interface IndexOptions {
  /** Neighbours per node, 2 ..= 256 (default 16). */
  m?: number;
  /** Beam width while building (default 200). */
  ef_construction?: number;
  /** Default beam width of searches (default 64). */
  ef_search?: number;
}

export interface Hit {
  id: string;
  /**
   * Cosine or dot similarity (higher is closer) or L2 distance (lower is closer); BM25 for
   * `searchText`; the fused score for `searchHybrid`.
   */
  score: number;
  metadata: Metadata;
  text: string | null;
  /** `searchHybrid` only: the vector score. */
  vector_score?: number;
  /** `searchHybrid` only: the BM25 score, `null` when no query word is in the item. */
  text_score?: number | null;
}

export interface Stats {
  dim: number;
  metric: Metric;
  embedding_model: string | null;
  /** Live items. */
  count: number;
  /** Deleted items kept as tombstones. */
  tombstones: number;
  /** Bytes of SQLite's pages. */
  bytes_on_disk: number;
  /** Bytes of the in-memory vector arena. */
  bytes_in_memory: number;
  /** How an unfiltered search runs now, e.g. `'exact (simd128)'` or `'hnsw (simd128)'`. */
  search_method: string;
  /** The HNSW index, or `null`. */
  index: {
    kind: 'hnsw';
    m: number;
    ef_construction: number;
    ef_search: number;
    nodes: number;
    deleted_ratio: number;
    bytes_in_memory: number;
    persisted: boolean;
    unfiltered_path: string;
    rebuilt_on_open: boolean;
  } | null;
  durability: 'memory' | 'normal' | 'full';
  format_version: number;
  /** Damaged derived data found at load (empty when none). */
  damage: string[];
}

/**
 * A vector database. Every method returns a promise, rejected with a `SqliteVectorError` (or a
 * `TypeError` with `kind: 'InvalidInput'` for an argument of the wrong JS type, such as a
 * vector that is not a `Float32Array`).
 */
export interface Db {
  readonly backend: Backend;
  readonly storage: Storage;
  /** Browser: why the store is in memory although `storage` was `'auto'`, else `null`. */
  readonly storageReason?: string | null;
  /** Node: why the wasm backend runs although none was asked for (else `null`). */
  readonly backendReason?: string | null;
  /** Inserts one item; resolves to its id. `AlreadyExists` for a live id. */
  insert(item: Item): Promise<string>;
  /** Inserts items in one transaction (all or none); resolves to their ids, in order. */
  insertBatch(items: Item[]): Promise<string[]>;
  /** Inserts or replaces one item; resolves to its id. */
  upsert(item: Item): Promise<string>;
  /** The stored item. `NotFound` for an unknown id. */
  get(id: string): Promise<StoredItem>;
  /** Changes an item. `NotFound` for an unknown id; `InvalidInput` when nothing changes. */
  update(id: string, patch: Patch): Promise<void>;
  /** Deletes an item. `NotFound` for an unknown id. */
  delete(id: string): Promise<void>;
  /** Nearest items to `vector`, best first. */
  search(vector: Float32Array, options?: SearchOptions): Promise<Hit[]>;
  /** Keyword search (BM25 over text and searchable metadata), best first. */
  searchText(text: string, options?: SearchOptions): Promise<Hit[]>;
  /** The vector and keyword rankings fused, best first. */
  searchHybrid(vector: Float32Array, text: string, options?: HybridOptions): Promise<Hit[]>;
  /**
   * Builds the HNSW index; unfiltered searches of more than 4,096 items then walk the graph
   * (approximate). `AlreadyExists` when there is one.
   */
  createIndex(options?: IndexOptions): Promise<void>;
  stats(): Promise<Stats>;
  /**
   * The database as the bytes of one self-contained shard file: the native CLI and crate open
   * it as a file, `importShard` as a store. It keeps the shard's identity (site id): a move or
   * a backup, not a second replica to sync beside the first.
   */
  export(): Promise<Uint8Array>;
  /**
   * Node databases with a `path`: a snapshot writes itself to its file now (nothing when
   * unchanged); a native file has nothing to do (its writes are durable already).
   */
  flush?(): Promise<void>;
  /** Node databases with a `path`: the file (absolute). */
  readonly path?: string;
  /**
   * Closes the database (a browser store releases its OPFS files and lock, so another tab can
   * open it); later calls reject with `InvalidInput`. Idempotent. Every acknowledged write is
   * already durable: closing saves nothing more.
   */
  close(): Promise<void>;
}

/**
 * Opens a database: in the browser the persistent store `name` (created on first use, in a
 * worker the package starts), in Node a new database in memory.
 */
export function open(options: OpenOptions): Promise<Db>;

/**
 * A database from an exported shard (`db.export()`, or a shard file of a native build): in the
 * browser a new store `name` (`AlreadyExists` when there is one), in memory otherwise.
 * `NotAShard` / `Corrupt` for bytes that are not a sound shard.
 */
export function importShard(bytes: Uint8Array, options?: Omit<OpenOptions, 'dim' | 'metric'> & { dim?: number; metric?: Metric }): Promise<Db>;

/**
 * The SQLite version compiled into the wasm module, e.g. `'3.53.4'` (in the browser it loads
 * the module in a short-lived worker).
 */
export function sqliteVersion(options?: Pick<OpenOptions, 'wasmUrl' | 'worker'>): Promise<string>;

export class SqliteVectorError extends Error {
  readonly kind: ErrorKind;
}

/**
 * Browser: deletes the persistent store `name` (its OPFS directory), resolving to `false` when
 * there was none; `StorageBusyError` while a tab or worker has it open; `StorageUnavailable`
 * without OPFS. Node: `name` is the path of a shard file, deleted with its `-wal` and `-shm`
 * (`StorageBusyError` while a wasm snapshot holds it).
 */
export function deleteStore(name: string, options?: Pick<OpenOptions, 'busyTimeoutMs' | 'worker'>): Promise<boolean>;
export interface ManagerOptions {
  /** The root directory (created when missing): `catalog.db` and the shard files. */
  root: string;
  /** Shards kept open at once (least recently used closed first; default 256). */
  capacity?: number;
  /** Must be `'native'` when given: the wasm backend has no manager. */
  backend?: Backend;
}
export interface ShardOptions {
  /** Vector dimension, 1 ..= 16,384. */
  dim: number;
  /** Default `'cosine'`. */
  metric?: Metric;
  /** Metadata fields (dotted paths) indexed for keyword search with the text. */
  searchable?: string[];
  /** The model whose vectors the shard holds, recorded in its profile. */
  embedding_model?: string;
}
export interface ShardInfo {
  name: string;
  dim: number;
  metric: Metric;
  embedding_model: string | null;
  /** Bytes of the shard's file and WAL. */
  bytes_on_disk: number;
  /** Unix seconds. */
  created_at: number;
}
/** Which shards a search across shards reads: names, or every shard under a prefix. */
export type Targets = { shards: string[]; prefix?: undefined } | { prefix: string; shards?: undefined };
export interface ShardHit extends Hit {
  /** The shard the hit comes from. */
  shard: string;
}
export interface MultiSearch {
  /** The merged top k, best first (ties by id, then shard). */
  hits: ShardHit[];
  /** Shards that could not be searched (unknown, unreadable, another dimension). */
  failures: { shard: string; error: string }[];
}
/**
 * Node, native backend: named shards under a root directory (the layout of the CLI's `--root`
 * and the MCP server), with searches across shards.
 */
export interface Manager {
  /** Creates the shard `name` (segments of `[A-Za-z0-9._-]` joined by `/`). `AlreadyExists`. */
  create(name: string, options: ShardOptions): Promise<Db>;
  /** The shard `name` (`UnknownShard` when there is none); `close()` leaves it open in the manager. */
  open(name: string): Promise<Db>;
  /** The shards whose names start with `prefix` (all without), in name order. */
  list(prefix?: string): Promise<ShardInfo[]>;
  /** Deletes the shard and its files. `UnknownShard`. */
  drop(name: string): Promise<void>;
  search(vector: Float32Array, options: SearchOptions & Targets): Promise<MultiSearch>;
  searchText(text: string, options: SearchOptions & Targets): Promise<MultiSearch>;
  searchHybrid(vector: Float32Array, text: string, options: HybridOptions & Targets): Promise<MultiSearch>;
  /** Lets go of the manager (its shards close once no `Db` holds them). */
  close(): Promise<void>;
}
/**
 * Node: opens (or creates) a root of named shards. Native backend only: elsewhere it rejects
 * with kind `BackendUnavailable`.
 */
export function openManager(options: ManagerOptions): Promise<Manager>;
/**
 * Node: which backend `open()` picks without a `backend` option, and why: `reason` is `null`
 * for native or when asked for. Throws `BackendUnavailable` as `open` would.
 */
export function backendInfo(options?: Pick<OpenOptions, 'backend'>): { backend: Backend; reason: string | null };

/** Browser: the store is open in another tab or worker (`kind: 'StorageBusy'`); retry later. */
export class StorageBusyError extends SqliteVectorError {
  readonly kind: 'StorageBusy';
}
