// Node entry: the wasm module is read from the file next to this one and instantiated
// synchronously on the first open() (the glue's default init would fetch() a file: URL, which
// Node does not support).
import { readFileSync } from 'node:fs';

import { createApi } from './core.js';
import * as glue from './wasm/sqlite_vector_wasm.js';

const api = createApi(() => {
  const bytes = readFileSync(new URL('./wasm/sqlite_vector_wasm_bg.wasm', import.meta.url));
  glue.initSync({ module: bytes });
  return glue;
});

export const open = api.open;
export const importShard = api.importShard;
export { SqliteVectorError, StorageBusyError } from './errors.js';

/** The SQLite version compiled into the wasm module, e.g. `'3.53.4'`. */
export const sqliteVersion = async () => api.sqliteVersion();

/** @internal Test hook: makes the wasm module panic (every later call fails). */
export const __testPanic = api.testPanic;
