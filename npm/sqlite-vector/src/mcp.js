// `sqlite-vector mcp` without the native package: the MCP server (stdio, newline-delimited
// JSON-RPC 2.0) over this package's WebAssembly build in Node.
//
// The tools are the native server's (crates/mcp): the same names, descriptions and schemas
// (mcp-tools.json, generated from the Rust tool table and checked against it by
// crates/mcp/tests/tools_json.rs), the same result shapes and, for the same input, the same
// error texts. What the WebAssembly build cannot do is refused with `isError: true`, never
// done differently:
//   - text embedding (the built-in model is native only): a text-only item, a text query that
//     would be embedded, `shard_create` without `dim` (a text shard). Keyword search (BM25)
//     runs only where the native tool runs it too (`mode: "text"`, or a text query on shards
//     of raw vectors);
//   - `sync`, `memory_*`, `session_*`;
//   - hybrid search across several shards (one shard: served).
//
// Storage: each shard is a snapshot file `<root>/wasm/<name>.db` (see snapshot.js): a write
// takes the file's lock (`<file>.lock/`), applies the change and saves the file atomically
// before the reply, so an acknowledged write survives a crash; a read loads the last saved
// file without the lock. The native server keeps its own layout under the same root
// (catalog.db and numbered files), so the two backends do not see each other's shards.
//
// Only protocol messages go to stdout; logs go to stderr. Tool calls run one at a time, in
// arrival order.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import * as nodeApi from './node.js';

// Always the WebAssembly backend (its snapshot files), even where node.js could load the
// native addon: this server's files are snapshots under `<root>/wasm/`.
const open = (options) => nodeApi.open({ ...options, backend: 'wasm' });
const importShard = (bytes) => nodeApi.importShard(bytes, { backend: 'wasm' });

const TOOLS = JSON.parse(readFileSync(new URL('./mcp-tools.json', import.meta.url), 'utf8'));
const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

const NATIVE_PACKAGE = '@sqlite-vector/linux-x64-gnu';
const NEEDS_EMBEDDING =
  `text embedding needs the native sqlite-vector package (install ${NATIVE_PACKAGE}) or pass vectors: ` +
  'this server runs the WebAssembly build, which has no embedding model';
const MAX_DIMENSION = 16384;
/** Shards kept loaded between reads. */
const READ_CACHE = 8;
const MAX_NAME_LEN = 128;

/** Protocol revisions served with the `initialize` handshake (as rmcp 3.9), newest last. */
const HANDSHAKE_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'];
/** The stateless revision: no handshake, each request carries its `_meta`. */
const STATELESS_VERSION = '2026-07-28';
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
const META_CAPS = 'io.modelcontextprotocol/clientCapabilities';

const INSTRUCTIONS =
  'Durable, offline vector memory (WebAssembly fallback: this server cannot embed text). ' +
  'Create a shard with a dimension (shard_create {"name": "notes", "dim": 384}), store items with ' +
  'their vectors with insert / insert_batch, find them with search (by a vector, or by keywords with ' +
  'mode "text"), and manage them with get / update / delete. Text embedding, sync and the memory_* / ' +
  `session_* tools need the native package (${NATIVE_PACKAGE}).`;

const DEFAULT_LIMITS = {
  max_batch: 4096,
  max_text_bytes: 1 << 20,
  max_dim: 4096,
  max_k: 1000,
  max_message_bytes: 16 << 20,
};

// ------------------------------------------------------------------ errors

/** A user error: a tool result with `isError: true`. */
class ToolError extends Error {}
/** An internal error: JSON-RPC -32603. */
class InternalError extends Error {}

const USER_KINDS = new Set(['InvalidInput', 'NotFound', 'AlreadyExists', 'ProfileMismatch', 'UnknownShard']);

/** A thrown error as a tool error (user) or an internal one, as the native server classes them. */
function classify(e) {
  if (e instanceof ToolError || e instanceof InternalError) return e;
  if (e && USER_KINDS.has(e.kind)) return new ToolError(e.message);
  return new InternalError(e?.message ?? String(e));
}

const user = (message) => new ToolError(message);
const q = (s) => JSON.stringify(s); // Rust's {:?} for the strings we show

// ------------------------------------------------------------------ arguments (as serde)

// Field types: 'string', 'usize', 'f32', 'bool', 'value' (any JSON), ['vec', T], ['struct', name, fields].
const ITEM_FIELDS = [
  ['id', 'string'],
  ['text', 'string'],
  ['vector', ['vec', 'f32']],
  ['metadata', 'value'],
];
const ARGS = {
  shard_create: [['name', 'string', true], ['dim', 'usize'], ['metric', 'string'], ['searchable', ['vec', 'string']], ['index', 'bool']],
  shard_list: [['prefix', 'string']],
  shard_stats: [['name', 'string', true]],
  shard_drop: [['name', 'string', true]],
  insert: [['shard', 'string', true], ...ITEM_FIELDS],
  insert_batch: [['shard', 'string', true], ['items', ['vec', ['struct', 'ItemArgs', ITEM_FIELDS]], true]],
  search: [
    ['shard', 'string'],
    ['shards', ['vec', 'string']],
    ['prefix', 'string'],
    ['text', 'string'],
    ['vector', ['vec', 'f32']],
    ['k', 'usize'],
    ['filter', 'value'],
    ['min_score', 'f32'],
    ['max_distance', 'f32'],
    ['mode', 'string'],
    ['fusion', 'string'],
  ],
  get: [['shard', 'string', true], ['id', 'string', true], ['include_vector', 'bool']],
  update: [['shard', 'string', true], ['id', 'string', true], ['text', 'string'], ['vector', ['vec', 'f32']], ['metadata', 'value']],
  delete: [['shard', 'string', true], ['id', 'string', true]],
};

/** serde's description of an unexpected JSON value. */
function unexpected(v) {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
  if (typeof v === 'string') return `string ${q(v)}`;
  if (Array.isArray(v)) return 'sequence';
  return 'map';
}

function expected(type) {
  if (Array.isArray(type)) return type[0] === 'vec' ? 'a sequence' : `struct ${type[1]}`;
  return { string: 'a string', usize: 'usize', f32: 'f32', bool: 'a boolean' }[type];
}

class SerdeError extends Error {}

/** Checks `v` against `type` (serde's rules and messages) and returns the value to use. */
function read(v, type) {
  const wrong = () => new SerdeError(`invalid type: ${unexpected(v)}, expected ${expected(type)}`);
  if (type === 'value') return v;
  if (Array.isArray(type)) {
    if (type[0] === 'vec') {
      if (!Array.isArray(v)) throw wrong();
      return v.map((x) => read(x, type[1]));
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw wrong();
    return readStruct(v, type[2]);
  }
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw wrong();
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw wrong();
      return v;
    case 'f32':
      if (typeof v !== 'number') throw wrong();
      return Math.fround(v);
    case 'usize':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw wrong();
      if (v < 0) throw new SerdeError(`invalid value: integer \`${v}\`, expected usize`);
      return v;
    default:
      throw new Error(`unknown type ${type}`);
  }
}

/** A struct with `deny_unknown_fields`: fields in input order, then the missing ones. */
function readStruct(obj, fields) {
  const out = {};
  for (const [key, v] of Object.entries(obj)) {
    const f = fields.find(([name]) => name === key);
    if (!f) {
      const names = fields.map(([n]) => `\`${n}\``).join(', ');
      throw new SerdeError(`unknown field \`${key}\`, expected one of ${names}`);
    }
    // Option<T>: null is None. (A required field of null is a type error.)
    if (v === null && !f[2]) continue;
    out[key] = read(v, f[1]);
  }
  for (const [name, , required] of fields) {
    if (required && !(name in out)) throw new SerdeError(`missing field \`${name}\``);
  }
  return out;
}

function parseArgs(tool, args) {
  try {
    return readStruct(args, ARGS[tool]);
  } catch (e) {
    if (!(e instanceof SerdeError)) throw e;
    throw user(`invalid arguments for ${tool}: ${e.message}; see the tool's input schema`);
  }
}

// ------------------------------------------------------------------ names and files

/** The core's shard name rule (`manager::validate_name`), with its messages. */
function validateName(name) {
  let reason = null;
  const bad = [...name].find((c) => !/^[A-Za-z0-9._\-/]$/.test(c));
  if (name === '') reason = 'empty';
  else if (name.includes('\0')) reason = 'contains a NUL byte';
  else if (name.startsWith('/')) reason = "starts with '/' (names are relative)";
  else if (bad !== undefined) reason = `character ${rustChar(bad)} not allowed (use A-Z a-z 0-9 . _ - and '/' between segments)`;
  else if (name.length > MAX_NAME_LEN) reason = `longer than ${MAX_NAME_LEN} characters`;
  else if (name.endsWith('/')) reason = "ends with '/'";
  else if (name.split('/').some((s) => s === '')) reason = "has an empty segment ('//')";
  else if (name.split('/').some((s) => s === '.' || s === '..')) reason = "has a '.' or '..' segment";
  else if (name.split('/').slice(0, -1).some((s) => s.endsWith('.db.lock'))) {
    // Beside the file `x.db` is its lock directory `x.db.lock/`: a shard `x.db.lock/y` would
    // live in it.
    reason = "has a segment ending in '.db.lock' before its last (reserved for the lock directories of the WebAssembly fallback's files)";
  }
  if (reason !== null) {
    const shown = [...name].slice(0, 64).join('');
    throw user(`invalid argument: invalid shard name ${q(shown)}: ${reason}`);
  }
}

function rustChar(c) {
  const escapes = { '\n': "'\\n'", '\t': "'\\t'", '\r': "'\\r'", "'": "'\\''", '\\': "'\\\\'" };
  if (escapes[c]) return escapes[c];
  const cp = c.codePointAt(0);
  if (cp < 0x20 || cp === 0x7f) return `'\\u{${cp.toString(16)}}'`;
  return `'${c}'`;
}

function validatePrefix(prefix) {
  if (prefix.length > MAX_NAME_LEN || ![...prefix].every((c) => /^[A-Za-z0-9._\-/]$/.test(c))) {
    const shown = [...prefix].slice(0, 64).join('');
    throw user(
      `invalid argument: invalid shard name prefix ${q(shown)}: at most ${MAX_NAME_LEN} characters from A-Z a-z 0-9 . _ - /`,
    );
  }
}

function parseMetric(m) {
  switch (m.toLowerCase()) {
    case 'cosine':
    case 'cos':
      return 'cosine';
    case 'l2':
    case 'euclidean':
      return 'l2';
    case 'dot':
    case 'ip':
    case 'inner_product':
      return 'dot';
    default:
      throw user(`invalid argument: unknown metric ${q(m)}: expected cosine, l2 or dot`);
  }
}

function parseMode(m) {
  const mode = m.toLowerCase();
  if (mode === 'vector' || mode === 'text' || mode === 'hybrid') return mode;
  throw user(`invalid argument: unknown mode ${q(m)}: expected vector, text or hybrid`);
}

function parseFusion(f) {
  const fusion = f.toLowerCase();
  if (fusion === 'dbsf' || fusion === 'rrf') return fusion;
  throw user(`invalid argument: unknown fusion ${q(f)}: expected dbsf or rrf`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const utf8Len = (s) => Buffer.byteLength(s, 'utf8');
const f32 = (x) => (x === null || x === undefined ? x : Math.fround(x));

// ------------------------------------------------------------------ the tools

class Tools {
  constructor(root, limits) {
    this.root = root;
    this.dir = join(root, 'wasm');
    this.limits = limits;
    /** path → {stamp, db}: shards loaded for reads, least recently used first. */
    this.cache = new Map();
  }

  file(name) {
    return join(this.dir, `${name}.db`);
  }

  exists(name) {
    try {
      return statSync(this.file(name)).isFile();
    } catch {
      return false;
    }
  }

  /** Validates `name` and checks the shard exists (the native `open`'s errors). */
  need(name) {
    validateName(name);
    if (!this.exists(name)) {
      throw user(`unknown shard ${q(name)}; create it with shard_create or see shard_list`);
    }
  }

  /**
   * Runs `fn(db)` on the last saved state of shard `name` (no lock: saves are atomic). The
   * shards read last stay loaded (up to READ_CACHE of them) while their file is the same one
   * (inode, size and mtime: a save renames a new file over the old), so repeated searches do
   * not reload them.
   */
  async read(name, fn) {
    const path = this.file(name);
    let st;
    try {
      st = statSync(path, { bigint: true });
    } catch (e) {
      if (e.code === 'ENOENT') throw user(`unknown shard ${q(name)}; create it with shard_create or see shard_list`);
      throw e;
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeNs}`;
    let entry = this.cache.get(path);
    if (entry && entry.stamp !== stamp) {
      this.cache.delete(path);
      await entry.db.close();
      entry = undefined;
    }
    if (!entry) {
      let bytes;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        if (e.code === 'ENOENT') throw user(`unknown shard ${q(name)}; create it with shard_create or see shard_list`);
        throw e;
      }
      entry = { stamp, db: await importShard(bytes) };
      while (this.cache.size >= READ_CACHE) {
        const [oldest, old] = this.cache.entries().next().value;
        this.cache.delete(oldest);
        await old.db.close();
      }
    } else {
      this.cache.delete(path); // re-inserted below: the most recently used last
    }
    this.cache.set(path, entry);
    return fn(entry.db);
  }

  /** Drops shard `name` from the read cache (after a write or a drop). */
  async forget(name) {
    const path = this.file(name);
    const entry = this.cache.get(path);
    if (entry) {
      this.cache.delete(path);
      await entry.db.close();
    }
  }

  /**
   * Runs `fn(db)` on shard `name` holding its lock, then saves it (atomically) before
   * returning: the write is durable when the reply goes out. Another process holding the
   * file is waited for, up to 5 s.
   */
  async write(name, fn, createOptions) {
    const path = this.file(name);
    await this.forget(name);
    if (createOptions) mkdirSync(dirname(path), { recursive: true });
    let db;
    for (let waited = 0; ; waited += 50) {
      try {
        db = await open({ path, ...(createOptions ?? {}) });
        break;
      } catch (e) {
        if (e?.kind !== 'StorageBusy' || waited >= 5000) throw e;
        await sleep(50);
      }
    }
    try {
      const out = await fn(db, path);
      await db.flush();
      return out;
    } finally {
      await db.close();
    }
  }

  /** Every shard file under the root's `wasm/`, by name (as the catalog orders them). */
  names(prefix) {
    const found = [];
    const walk = (dir, rel) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.isDirectory()) {
          if (!e.name.endsWith('.db.lock')) walk(join(dir, e.name), `${rel}${e.name}/`);
        } else if (e.isFile() && e.name.endsWith('.db')) {
          const name = `${rel}${e.name.slice(0, -3)}`;
          try {
            validateName(name);
          } catch {
            continue; // not a file of ours
          }
          found.push(name);
        }
      }
    };
    walk(this.dir, '');
    return found.filter((n) => n.startsWith(prefix ?? '')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  describe(name, stats) {
    return {
      name,
      dim: stats.dim,
      metric: stats.metric,
      embedding_model: stats.embedding_model ?? null,
      // Text is embedded only by the native package.
      accepts_text: false,
    };
  }

  async profile(name) {
    return this.read(name, (db) => db.stats());
  }

  checkText(what, text) {
    const n = utf8Len(text);
    if (n > this.limits.max_text_bytes) {
      throw user(`${what} is too long: ${n} bytes, the limit is ${this.limits.max_text_bytes}; shorten or split it`);
    }
  }

  checkVector(what, v) {
    if (v.length > this.limits.max_dim) {
      throw user(`${what} is too long: ${v.length} components, the limit is ${this.limits.max_dim}`);
    }
  }

  /** The refusal where the native server would embed `text` for shard `name`. */
  cannotEmbed(name, stats) {
    if (stats.embedding_model == null) {
      return user(
        `shard ${q(name)} holds raw vectors (no embedding model), so text cannot be embedded for it; ` +
          'pass a `vector`, or use mode "text" for keyword search',
      );
    }
    return user(`${NEEDS_EMBEDDING} (shard ${q(name)} was filled with ${stats.embedding_model})`);
  }

  /** Item arguments → items for the JS API (the native `prepare`, without embedding). */
  prepare(name, stats, items) {
    const toEmbed = [];
    items.forEach((item, i) => {
      const at = items.length > 1 ? `item ${i}: ` : '';
      if (item.text !== undefined) this.checkText(`${at}text`, item.text);
      if (item.vector !== undefined) this.checkVector(`${at}vector`, item.vector);
      else if (item.text !== undefined) toEmbed.push(i);
      else throw user(`${at}give \`text\` (embedded by the server) or \`vector\``);
    });
    if (toEmbed.length) throw this.cannotEmbed(name, stats);
    return items.map((item) => {
      // The core checks the dimension; the JS API's batch check would name other indexes.
      if (item.vector.length !== stats.dim && item.vector.length > 0) {
        throw user(`dimension mismatch: shard has ${stats.dim}, got ${item.vector.length}`);
      }
      const out = { vector: Float32Array.from(item.vector) };
      if (item.id !== undefined) out.id = item.id;
      if (item.metadata !== undefined) out.metadata = item.metadata;
      if (item.text !== undefined) out.text = item.text;
      return out;
    });
  }

  async call(name, args) {
    switch (name) {
      case 'shard_create':
        return this.shardCreate(parseArgs(name, args));
      case 'shard_list': {
        const a = parseArgs(name, args);
        validatePrefix(a.prefix ?? '');
        const shards = [];
        for (const n of this.names(a.prefix)) {
          try {
            shards.push(this.describe(n, await this.profile(n)));
          } catch (e) {
            if (!(classify(e) instanceof ToolError)) throw e;
            // Dropped while listing.
          }
        }
        return { shards };
      }
      case 'shard_stats': {
        const a = parseArgs(name, args);
        this.need(a.name);
        const stats = await this.profile(a.name);
        let bytes = 0;
        try {
          bytes = statSync(this.file(a.name)).size;
        } catch {
          // Dropped since: 0 bytes.
        }
        return {
          shard: this.describe(a.name, stats),
          count: stats.count,
          tombstones: stats.tombstones,
          bytes_on_disk: bytes,
          search_method: stats.search_method,
        };
      }
      case 'shard_drop': {
        const a = parseArgs(name, args);
        validateName(a.name);
        if (!this.exists(a.name)) throw user(`unknown shard ${q(a.name)}; see shard_list`);
        await this.write(a.name, async (_db, path) => {
          rmSync(path, { force: true });
        });
        this.prune(dirname(this.file(a.name)));
        return { dropped: a.name };
      }
      case 'insert': {
        const a = parseArgs(name, args);
        this.need(a.shard);
        const id = await this.write(a.shard, async (db) => {
          const [item] = this.prepare(a.shard, await db.stats(), [a]);
          return db.insert(item);
        });
        return { shard: a.shard, id };
      }
      case 'insert_batch': {
        const a = parseArgs(name, args);
        if (a.items.length > this.limits.max_batch) {
          throw user(
            `batch too large: ${a.items.length} items, the limit is ${this.limits.max_batch}; split it into several insert_batch calls`,
          );
        }
        this.need(a.shard);
        const ids = await this.write(a.shard, async (db) => {
          const items = this.prepare(a.shard, await db.stats(), a.items);
          return db.insertBatch(items);
        });
        return { shard: a.shard, ids, count: ids.length };
      }
      case 'search':
        return this.search(parseArgs(name, args));
      case 'get': {
        const a = parseArgs(name, args);
        this.need(a.shard);
        const item = await this.read(a.shard, (db) => db.get(a.id));
        const out = { id: item.id, metadata: item.metadata, text: item.text };
        if (a.include_vector) out.vector = Array.from(item.vector);
        return out;
      }
      case 'update':
        return this.update(parseArgs(name, args));
      case 'delete': {
        const a = parseArgs(name, args);
        this.need(a.shard);
        await this.write(a.shard, (db) => db.delete(a.id));
        return { shard: a.shard, id: a.id, status: 'deleted' };
      }
      case 'sync':
        throw user(
          `sync needs the native sqlite-vector package (install ${NATIVE_PACKAGE}): this server runs the ` +
            'WebAssembly build, which has no network transport',
        );
      default:
        if (name.startsWith('memory_') || name.startsWith('session_')) {
          throw user(
            `${name} needs the native sqlite-vector package (install ${NATIVE_PACKAGE}): agent memory embeds ` +
              'tasks with the built-in model, which this server (the WebAssembly build) does not have',
          );
        }
        throw user(`unknown tool ${name}`);
    }
  }

  /** Removes the empty directories from `dir` up to (not including) the root's `wasm/`. */
  prune(dir) {
    const top = resolve(this.dir);
    for (let d = resolve(dir); d.startsWith(`${top}/`); d = dirname(d)) {
      try {
        rmdirSync(d);
      } catch {
        return; // not empty, or gone
      }
    }
  }

  async shardCreate(a) {
    validateName(a.name);
    const metric = a.metric !== undefined ? parseMetric(a.metric) : 'cosine';
    if (a.dim === undefined) {
      throw user(
        `a text shard (shard_create without \`dim\`) needs the native sqlite-vector package (install ${NATIVE_PACKAGE}), ` +
          'whose model embeds its text; this server runs the WebAssembly build: give `dim` to store your own vectors',
      );
    }
    if (a.dim > this.limits.max_dim) throw user(`dim ${a.dim} is over the limit ${this.limits.max_dim}`);
    if (this.exists(a.name)) throw user(`shard ${q(a.name)} already exists; use it, or shard_drop it first`);
    const options = { dim: a.dim, metric };
    if (a.searchable !== undefined) options.searchable = a.searchable;
    if (a.dim < 1 || a.dim > MAX_DIMENSION) {
      throw user(`invalid argument: dimension must be 1..=${MAX_DIMENSION}, got ${a.dim}`);
    }
    const path = this.file(a.name);
    let made = false;
    try {
      const stats = await this.write(
        a.name,
        async (db) => {
          made = true;
          if (a.index) await db.createIndex();
          return db.stats();
        },
        options,
      );
      return { shard: this.describe(a.name, stats) };
    } catch (e) {
      // No half-made shard: the caller may retry the whole call.
      if (made) {
        rmSync(path, { force: true });
        this.prune(dirname(path));
      }
      throw e;
    }
  }

  async update(a) {
    this.need(a.shard);
    if (a.text !== undefined) this.checkText('text', a.text);
    if (a.vector !== undefined) this.checkVector('vector', a.vector);
    if (a.text === undefined && a.vector === undefined && a.metadata === undefined) {
      throw user('nothing to update: give `text`, `vector` and/or `metadata`');
    }
    await this.write(a.shard, async (db) => {
      const stats = await db.stats();
      // A text shard keeps text and vector in step (the native server re-embeds the text); a
      // raw-vector shard only re-indexes text.
      if (a.vector === undefined && a.text !== undefined && stats.embedding_model != null) {
        throw this.cannotEmbed(a.shard, stats);
      }
      const patch = {};
      if (a.vector !== undefined) patch.vector = Float32Array.from(a.vector);
      if (a.metadata !== undefined) patch.metadata = a.metadata;
      if (a.text !== undefined) patch.text = a.text;
      await db.update(a.id, patch);
    });
    return { shard: a.shard, id: a.id, status: 'updated' };
  }

  async search(a) {
    const k = a.k ?? 10;
    if (k === 0 || k > this.limits.max_k) throw user(`k must be 1..=${this.limits.max_k}, got ${k}`);
    if (a.text !== undefined) this.checkText('query text', a.text);
    if (a.vector !== undefined) this.checkVector('query vector', a.vector);
    const named = a.mode !== undefined ? parseMode(a.mode) : undefined;
    const fusion = a.fusion !== undefined ? parseFusion(a.fusion) : undefined;
    const options = { k };
    if (a.min_score !== undefined) options.min_score = a.min_score;
    if (a.max_distance !== undefined) {
      const d = a.max_distance;
      if (!Number.isFinite(d) || d < 0) throw user(`max_distance must be a finite number ≥ 0, got ${rustF32(d)}`);
      options.max_distance = d;
    }
    if (a.filter !== undefined) options.filter = a.filter;
    let scope;
    const given = [a.shard !== undefined, a.shards !== undefined, a.prefix !== undefined].filter(Boolean).length;
    if (given === 1 && a.shard !== undefined) scope = { shard: a.shard };
    else if (given === 1 && a.shards !== undefined && a.shards.length) scope = { names: a.shards };
    else if (given === 1 && a.prefix !== undefined) scope = { prefix: a.prefix };
    else throw user('give exactly one of `shard`, `shards` (a non-empty list) or `prefix`');
    // Profiles of the shards searched (the native order of checks).
    let targets;
    if (scope.shard !== undefined) {
      this.need(scope.shard);
      targets = [[scope.shard, await this.profile(scope.shard)]];
    } else if (scope.names) {
      targets = [];
      for (const n of scope.names) {
        this.need(n);
        targets.push([n, await this.profile(n)]);
      }
    } else {
      validatePrefix(scope.prefix);
      targets = [];
      for (const n of this.names(scope.prefix)) {
        try {
          targets.push([n, await this.profile(n)]);
        } catch (e) {
          if (!(classify(e) instanceof ToolError)) throw e;
        }
      }
    }
    const hasText = a.text !== undefined;
    const hasVector = a.vector !== undefined;
    const textShards = targets.length > 0 && targets.every(([, p]) => p.embedding_model != null);
    if (!hasText && !hasVector) throw user('invalid argument: give a query: text and/or a vector');
    let mode = named;
    if (mode === undefined) mode = hasText && (hasVector || textShards) ? 'hybrid' : hasText ? 'text' : 'vector';
    if ((mode === 'text' || mode === 'hybrid') && !hasText) {
      throw user(`invalid argument: mode ${mode} needs the query text`);
    }
    if (fusion !== undefined && mode !== 'hybrid') {
      throw user(`\`fusion\` applies to hybrid search; this search is in mode ${mode}`);
    }
    if (mode !== 'text' && !hasVector) {
      // The native server would embed the query text here.
      for (const [n, p] of targets) throw this.cannotEmbed(n, p);
      return { mode, hits: [], failures: [] };
    }
    const vector = hasVector ? Float32Array.from(a.vector) : null;
    if (fusion !== undefined) options.fusion = fusion;
    const run = (db) => {
      if (mode === 'vector') return db.search(vector, options);
      if (mode === 'text') return db.searchText(a.text, options);
      return db.searchHybrid(vector, a.text, options);
    };
    const hit = (h, shard) => {
      const out = { id: h.id, score: f32(h.score) };
      if (mode === 'hybrid') {
        out.vector_score = f32(h.vector_score);
        out.text_score = f32(h.text_score ?? null);
      }
      out.metadata = h.metadata;
      out.text = h.text;
      if (shard !== undefined) out.shard = shard;
      return out;
    };
    if (scope.shard !== undefined) {
      const hits = await this.read(scope.shard, run);
      return { mode, hits: hits.map((h) => hit(h)), failures: [] };
    }
    // Across shards: one top k merged from each shard's (as the native manager does for
    // vector and text search).
    const unique = [];
    for (const t of targets) if (!unique.some(([n]) => n === t[0])) unique.push(t);
    if (!unique.length) return { mode, hits: [], failures: [] };
    if (mode === 'hybrid') {
      throw user(
        `hybrid search across several shards needs the native sqlite-vector package (install ${NATIVE_PACKAGE}); ` +
          'search one shard at a time, or use mode "vector" or "text"',
      );
    }
    const [firstName, first] = unique[0];
    for (const [n, p] of unique.slice(1)) {
      const differs = [
        ['dimension', String(first.dim), String(p.dim)],
        ['metric', first.metric, p.metric],
        ['embedding model', first.embedding_model ?? '(none)', p.embedding_model ?? '(none)'],
      ].find(([, x, y]) => x !== y);
      if (differs) {
        const [field, want, got] = differs;
        throw user(`profile mismatch: shard has ${field} ${got} (shard ${q(n)}), requested ${want} (the first shard, ${q(firstName)})`);
      }
    }
    const all = [];
    const failures = [];
    for (const [n] of unique) {
      try {
        for (const h of await this.read(n, run)) all.push(hit(h, n));
      } catch (e) {
        const c = classify(e);
        // A bad query fails the call; a shard that cannot be read is a failure.
        if (c instanceof ToolError && e?.kind !== 'UnknownShard' && !/^unknown shard/.test(c.message)) throw c;
        failures.push({ shard: n, error: c.message });
      }
    }
    const higher = mode === 'text' || first.metric !== 'l2';
    all.sort((x, y) => {
      const by = higher ? y.score - x.score : x.score - y.score;
      if (by !== 0) return by;
      if (x.id !== y.id) return x.id < y.id ? -1 : 1;
      return x.shard < y.shard ? -1 : x.shard > y.shard ? 1 : 0;
    });
    return { mode, hits: all.slice(0, k), failures };
  }
}

/** Rust's Display of an f32. */
function rustF32(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return String(x);
}

// ------------------------------------------------------------------ JSON-RPC

function errorReply(id, code, message) {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message } };
}

/** A number JSON.parse turned into ±Infinity (beyond f64), or nesting deeper than 128. */
function unholdable(v, depth = 0) {
  if (typeof v === 'number') return !Number.isFinite(v) ? 'number out of range' : null;
  if (v === null || typeof v !== 'object') return null;
  if (depth >= 128) return 'recursion limit exceeded';
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const why = unholdable(x, depth + 1);
    if (why) return why;
  }
  return null;
}

const usableId = (id) => typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id) && Number.isFinite(id));

/** The JSON-RPC 2.0 envelope (as the native transport checks it). */
function envelope(msg) {
  if (Array.isArray(msg)) {
    return {
      error: msg.length
        ? 'batches (JSON arrays) are not supported since MCP 2025-06-18; send one message per line'
        : 'an empty array is not a message',
    };
  }
  if (msg === null || typeof msg !== 'object') return { error: 'a message must be a JSON object' };
  const hasId = 'id' in msg;
  const id = hasId && usableId(msg.id) ? msg.id : undefined;
  const invalid = (why) => ({ error: why, id });
  const BAD_ID = '"id" must be a string or an integer';
  if (msg.jsonrpc !== '2.0') return invalid('"jsonrpc" must be "2.0"');
  const hasResult = 'result' in msg;
  const hasError = 'error' in msg;
  if ('method' in msg) {
    if (typeof msg.method !== 'string') return invalid('"method" must be a string');
    if (hasResult || hasError) return invalid('a request or notification has no "result" or "error"');
    const p = msg.params;
    if (p !== undefined && (p === null || typeof p !== 'object')) return invalid('"params" must be an object or an array');
    if (!hasId) return { kind: 'notification' };
    if (id === undefined) return invalid(BAD_ID);
    return { kind: 'request', id };
  }
  if (hasResult && hasError) return invalid('a response has "result" or "error", not both');
  if (hasResult) return id !== undefined ? { kind: 'response' } : invalid(BAD_ID);
  if (hasError) {
    const e = msg.error;
    const ok = e && typeof e === 'object' && Number.isInteger(e.code) && typeof e.message === 'string';
    if (!ok) return invalid('"error" must be an object with an integer "code" and a string "message"');
    return !hasId || msg.id === null || id !== undefined ? { kind: 'response' } : invalid(BAD_ID);
  }
  return invalid('no "method" (a request or notification) and no "result" or "error" (a response)');
}

/** Methods rmcp knows but this server does not serve (answered -32601, as rmcp does). */
const EMPTY_LISTS = {
  'resources/list': { resources: [] },
  'resources/templates/list': { resourceTemplates: [] },
  'prompts/list': { prompts: [] },
};

class Session {
  constructor(tools, write, log) {
    this.tools = tools;
    this.write = write;
    this.log = log;
    this.started = false;
    this.inFlight = new Set();
    this.queue = Promise.resolve();
  }

  /** One input line (a Buffer without its newline). */
  line(buf) {
    if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    const text = buf.toString('utf8');
    if (/^\s*$/.test(text)) return;
    if (!Buffer.from(text, 'utf8').equals(buf)) {
      this.write(errorReply(null, -32700, 'Parse error: the line is not UTF-8'));
      return;
    }
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this.write(errorReply(null, -32700, `Parse error: ${e.message}`));
      return;
    }
    const env = envelope(msg);
    if (env.error) {
      this.write(errorReply(env.id, -32600, `Invalid Request: ${env.error}`));
      return;
    }
    const why = unholdable(msg);
    if (why) {
      if (env.kind === 'notification') {
        this.log(`ignoring an unreadable notification: ${why}`);
        return;
      }
      const inParams = env.kind === 'request' && unholdable(msg.params) !== null;
      const [code, kind] = inParams ? [-32602, 'Invalid params'] : [-32600, 'Invalid Request'];
      this.write(errorReply(env.id, code, `${kind}: ${why} (numbers must fit an f64, nesting 128 levels deep)`));
      return;
    }
    if (env.kind !== 'request') {
      // Notifications (initialized, cancelled) and responses need nothing from this server.
      if (!this.started) this.log(`ignoring ${env.kind === 'response' ? 'a response' : msg.method}: it came before the session started`);
      return;
    }
    const key = JSON.stringify(env.id);
    if (this.inFlight.has(key)) {
      this.write(
        errorReply(env.id, -32600, `Invalid Request: request id ${key} is already in flight; give each request its own id`),
      );
      return;
    }
    this.inFlight.add(key);
    // Whether the session had started when this line came (rmcp's view: line by line).
    const started = this.started;
    if (msg.method === 'initialize' && typeof msg.params?.protocolVersion === 'string') {
      // The session starts as the line is read (notifications after it are in the session).
      this.started = true;
    }
    const run = async () => {
      let reply;
      try {
        reply = { jsonrpc: '2.0', id: env.id, result: await this.request(msg, started) };
      } catch (e) {
        if (e instanceof RpcError) reply = errorReply(env.id, e.code, e.message);
        else {
          this.log(`internal error: ${e?.stack ?? e}`);
          reply = errorReply(env.id, -32603, e?.message ?? String(e));
        }
      }
      this.inFlight.delete(key);
      this.write(reply);
    };
    this.queue = this.queue.then(run);
  }

  async request(msg, started) {
    const { method } = msg;
    const params = msg.params ?? {};
    const invalidParams = (why) => new RpcError(-32602, `Invalid params for ${method}: ${why}`);
    const known = ['ping', 'initialize', 'tools/list', 'tools/call'].includes(method) || method in EMPTY_LISTS;
    if (Array.isArray(params) && method !== 'ping') {
      if (!known) throw new RpcError(-32601, `Method not found: ${method}`);
      throw invalidParams('invalid type: sequence, expected a map');
    }
    if ((method === 'initialize' || method === 'tools/call') && msg.params === undefined) {
      throw invalidParams('missing field `params`');
    }
    if (method === 'ping') return {};
    if (method === 'initialize') {
      for (const [field, type] of [['protocolVersion', 'string'], ['capabilities', 'object'], ['clientInfo', 'object']]) {
        if (!(field in params)) throw invalidParams(`missing field \`${field}\``);
        if (typeof params[field] !== type || params[field] === null) {
          throw invalidParams(`invalid type: ${unexpected(params[field])}, expected ${type === 'string' ? 'a string' : 'a map'}`);
        }
      }
      const asked = params.protocolVersion;
      return {
        protocolVersion: HANDSHAKE_VERSIONS.includes(asked) ? asked : HANDSHAKE_VERSIONS.at(-1),
        capabilities: { tools: {} },
        serverInfo: {
          name: 'sqlite-vector',
          title: 'sqlite-vector: shards of vectors and text for agents (WebAssembly fallback)',
          version: VERSION,
        },
        instructions: INSTRUCTIONS,
      };
    }
    // Without the handshake, each request says its protocol revision (MCP 2026-07-28).
    const meta = params._meta;
    const stateless =
      meta && typeof meta === 'object' && meta[META_VERSION] === STATELESS_VERSION && meta[META_CAPS] && typeof meta[META_CAPS] === 'object';
    if (!started && !stateless) {
      throw new RpcError(
        -32602,
        `request _meta is missing or has malformed required fields: ${META_VERSION}, ${META_CAPS}`,
      );
    }
    const extra = stateless && !started ? { resultType: 'complete' } : {};
    switch (method) {
      case 'tools/list':
        if (params.cursor !== undefined && typeof params.cursor !== 'string') {
          throw invalidParams(`invalid type: ${unexpected(params.cursor)}, expected a string`);
        }
        return stateless && !started ? { tools: TOOLS, ...extra, cacheScope: 'private', ttlMs: 0 } : { tools: TOOLS };
      case 'tools/call': {
        if (!('name' in params)) throw invalidParams('missing field `name`');
        if (typeof params.name !== 'string') throw invalidParams(`invalid type: ${unexpected(params.name)}, expected a string`);
        const args = params.arguments ?? {};
        if (typeof args !== 'object' || Array.isArray(args)) {
          throw invalidParams(`invalid type: ${unexpected(args)}, expected a map`);
        }
        if (!TOOLS.some((t) => t.name === params.name)) {
          throw new RpcError(-32602, `unknown tool ${params.name}; see tools/list`);
        }
        return { ...(await this.callTool(params.name, args)), ...extra };
      }
      default:
        if (method in EMPTY_LISTS) return { ...EMPTY_LISTS[method], ...extra };
        throw new RpcError(-32601, method);
    }
  }

  async callTool(name, args) {
    let value;
    try {
      value = await this.tools.call(name, args);
    } catch (e) {
      const c = classify(e);
      if (c instanceof ToolError) return { content: [{ type: 'text', text: c.message }], isError: true };
      this.log(`internal error: ${c.message}`);
      throw new RpcError(-32603, c.message);
    }
    return { content: [{ type: 'text', text: JSON.stringify(value) }], isError: false, structuredContent: value };
  }
}

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// ------------------------------------------------------------------ flags

const USAGE = `Usage: sqlite-vector mcp [--root DIR] [--embedder builtin] [--max-batch N] [--max-text-bytes N] [--max-dim N] [--max-message-bytes N]

The MCP server on stdio, served by the WebAssembly build (without the native package, or with SQLITE_VECTOR_BACKEND=wasm).
Shards live under DIR/wasm/ (the native server's layout under DIR is its own).`;

/** The root when `--root` is not given: as the native CLI ($SQLITE_VECTOR_HOME, then the data directory). */
function defaultRoot(env) {
  const nonEmpty = (k) => (env[k] ? env[k] : undefined);
  if (nonEmpty('SQLITE_VECTOR_HOME')) return nonEmpty('SQLITE_VECTOR_HOME');
  if (nonEmpty('XDG_DATA_HOME')) return join(env.XDG_DATA_HOME, 'sqlite-vector');
  if (process.platform === 'darwin' && nonEmpty('HOME')) return join(env.HOME, 'Library/Application Support/sqlite-vector');
  if (process.platform === 'win32' && nonEmpty('APPDATA')) return join(env.APPDATA, 'sqlite-vector');
  if (nonEmpty('HOME')) return join(env.HOME, '.local/share/sqlite-vector');
  return null;
}

class UsageError extends Error {}

function parseFlags(args) {
  const limits = { ...DEFAULT_LIMITS };
  let root;
  const numeric = { '--max-batch': 'max_batch', '--max-text-bytes': 'max_text_bytes', '--max-dim': 'max_dim', '--max-message-bytes': 'max_message_bytes' };
  for (let i = 0; i < args.length; i++) {
    let flag = String(args[i]);
    let value;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) [flag, value] = [flag.slice(0, eq), flag.slice(eq + 1)];
    if (flag === '-h' || flag === '--help') return { help: true };
    const known = flag === '--root' || flag === '--embedder' || flag in numeric;
    if (!known) throw new UsageError(`error: unexpected argument '${args[i]}' found\n\n${USAGE}`);
    if (value === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`error: a value is required for '${flag}' but none was supplied\n\n${USAGE}`);
      value = String(args[++i]);
    }
    if (flag === '--root') root = value;
    else if (flag === '--embedder') {
      if (value === 'http') {
        throw new UsageError(
          `error: --embedder http is not available without the native sqlite-vector package (install ${NATIVE_PACKAGE})`,
        );
      }
      if (value !== 'builtin') {
        throw new UsageError(`error: invalid value '${value}' for '--embedder <EMBEDDER>'\n  [possible values: builtin, http]`);
      }
    } else {
      if (!/^\d+$/.test(value)) throw new UsageError(`error: invalid value '${value}' for '${flag} <N>': invalid digit found in string`);
      limits[numeric[flag]] = Number(value);
    }
  }
  for (const k of ['max_batch', 'max_text_bytes', 'max_message_bytes']) {
    if (limits[k] === 0) throw new UsageError('error: invalid limit: max_batch, max_text_bytes, max_k and max_message_bytes must be at least 1');
  }
  if (limits.max_dim === 0 || limits.max_dim > MAX_DIMENSION) {
    throw new UsageError(`error: invalid limit: max_dim must be 1..=${MAX_DIMENSION}, got ${limits.max_dim}`);
  }
  return { root, limits };
}

// ------------------------------------------------------------------ the server

/**
 * Runs the MCP server on stdio (or on `io.stdin` / `io.stdout` / `io.stderr`) until the input
 * ends; resolves to the exit code: 0, or 2 for bad flags (the message is on stderr).
 * `args` are the arguments after `mcp`, e.g. `['--root', dir]`.
 */
export async function runMcp(args = [], io = {}) {
  const stdin = io.stdin ?? process.stdin;
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const log = (m) => stderr.write(`sqlite-vector mcp: ${m}\n`);
  let flags;
  try {
    flags = parseFlags(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    stderr.write(`${e.message}\n`);
    return 2;
  }
  if (flags.help) {
    stdout.write(`${USAGE}\n`);
    return 0;
  }
  const root = flags.root ?? defaultRoot(io.env ?? process.env);
  if (root === null) {
    stderr.write('error: no root directory: pass --root DIR or set SQLITE_VECTOR_HOME\n');
    return 2;
  }
  try {
    mkdirSync(join(resolve(root), 'wasm'), { recursive: true });
  } catch (e) {
    stderr.write(`error: cannot open the shard root ${root}: ${e.message}\n`);
    return 1;
  }
  if (existsSync(join(resolve(root), 'catalog.db'))) {
    log(`${root} also holds the native server's shards; this WebAssembly server serves only those under ${join(root, 'wasm')}`);
  }
  log(`serving ${join(resolve(root), 'wasm')} with the WebAssembly build (text embedding, sync and agent memory need the native package)`);
  const tools = new Tools(resolve(root), flags.limits);
  let lastWrite = Promise.resolve();
  const write = (msg) => {
    const line = `${JSON.stringify(msg)}\n`;
    lastWrite = new Promise((res) => stdout.write(line, () => res()));
  };
  const session = new Session(tools, write, log);
  const max = flags.limits.max_message_bytes;
  await new Promise((done) => {
    let parts = [];
    let size = 0;
    let skipping = false;
    const tooLong = () =>
      write(errorReply(null, -32600, `Invalid Request: message longer than the limit of ${max} bytes; it was skipped`));
    const take = (chunk) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl === -1 ? chunk.length : nl;
        const piece = chunk.subarray(start, end);
        if (!skipping) {
          if (size + piece.length > max) {
            skipping = true;
            parts = [];
            size = 0;
          } else {
            parts.push(piece);
            size += piece.length;
          }
        }
        if (nl === -1) return;
        if (skipping) tooLong();
        else {
          let line = Buffer.concat(parts);
          if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
          session.line(line);
        }
        parts = [];
        size = 0;
        skipping = false;
        start = nl + 1;
      }
    };
    stdin.on('data', (chunk) => take(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
    stdin.on('end', () => {
      if (skipping) tooLong();
      else if (size) session.line(Buffer.concat(parts));
      done();
    });
    stdin.on('error', (e) => {
      log(`cannot read the input: ${e.message}`);
      done();
    });
  });
  await session.queue;
  await lastWrite;
  return 0;
}
