// Node entry: the wasm module is read from the file next to this one and instantiated
// synchronously on the first open() (the glue's default init would fetch() a file: URL, which
// Node does not support).
import { readFileSync } from 'node:fs';

import { createApi } from './core.js';
import { invalidInput } from './errors.js';
import { openSnapshot } from './snapshot.js';
import * as glue from './wasm/sqlite_vector_wasm.js';

const api = createApi(() => {
  const bytes = readFileSync(new URL('./wasm/sqlite_vector_wasm_bg.wasm', import.meta.url));
  glue.initSync({ module: bytes });
  return glue;
});

/**
 * Opens a database: with `path`, the snapshot file there (see snapshot.js: in memory, saved
 * atomically on flush() and close()); without, a new one in memory.
 */
export async function open(options) {
  const { path, name, storage, ...rest } = options ?? {};
  if (path === undefined) {
    if (storage === 'snapshot') throw invalidInput("storage 'snapshot' needs a path");
    return api.open({ ...rest, storage: storage ?? 'memory' });
  }
  if (storage !== undefined && storage !== 'snapshot' && storage !== 'auto') {
    throw invalidInput(`storage ${JSON.stringify(storage)} cannot take a path: use 'snapshot' (or leave it out)`);
  }
  return openSnapshot(api, path, rest);
}

/** A database in memory from the bytes of a shard file. */
export async function importShard(bytes, options) {
  const { name, ...rest } = options ?? {};
  return api.importShard(bytes, rest);
}
export { SqliteVectorError, StorageBusyError } from './errors.js';

/** The SQLite version compiled into the wasm module, e.g. `'3.53.4'`. */
export const sqliteVersion = async () => api.sqliteVersion();

/** @internal Test hook: makes the wasm module panic (every later call fails). */
export const __testPanic = api.testPanic;
