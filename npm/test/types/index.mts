// A consumer of the package's types (checked by npm/scripts/pack-and-test.sh with tsc under
// moduleResolution bundler and node16, against the installed tarball). Never run.
import {
  backendInfo,
  importShard,
  open,
  SqliteVectorError,
  StorageBusyError,
  type Backend,
  type Db,
  type Hit,
  type Stats,
} from 'sqlite-vector';

const db: Db = await open({ path: 'notes.db', dim: 4, metric: 'cosine', backend: 'native' });
const id: string = await db.insert({ vector: new Float32Array(4), metadata: { lang: 'rust' }, text: 'hello' });
const ids: string[] = await db.insertBatch([{ id: 'a', vector: new Float32Array(4) }]);
const hits: Hit[] = await db.search(new Float32Array(4), { k: 3, filter: { lang: 'rust' }, min_score: 0.2 });
const text: Hit[] = await db.searchText('hello', { k: 3 });
const hybrid: Hit[] = await db.searchHybrid(new Float32Array(4), 'hello', { k: 3, fusion: 'rrf' });
await db.createIndex({ m: 16, ef_construction: 200 });
const stats: Stats = await db.stats();
const backend: Backend = db.backend;
const bytes: Uint8Array = await db.export();
const copy: Db = await importShard(bytes, { backend: 'wasm' });
await db.flush?.();
await db.close();
await copy.close();
const info: { backend: Backend; reason: string | null } = backendInfo();
try {
  await open({ dim: 4 });
} catch (e) {
  if (e instanceof StorageBusyError) console.log(e.kind satisfies 'StorageBusy');
  else if (e instanceof SqliteVectorError) console.log(e.kind === 'BackendUnavailable');
}
// @ts-expect-error: option names are the core's (k, not topK)
await db.search(new Float32Array(4), { topK: 3 });
// @ts-expect-error: vectors are Float32Arrays
await db.insert({ vector: [1, 2, 3, 4] });
console.log(id, ids, hits, text, hybrid, stats.count, backend, info);
