// A small app as users write it: the package imported by name, bundled by Vite, which must
// emit the worker and the .wasm and rewrite their URLs.
import { open } from 'sqlite-vector';

const db = await open({ name: 'vite-app', dim: 3 });
await db.upsert({ id: 'a', vector: new Float32Array([1, 0, 0]), text: 'first note' });
await db.upsert({ id: 'b', vector: new Float32Array([0, 1, 0]), text: 'second note' });
const hits = await db.search(new Float32Array([0.9, 0.1, 0]), { k: 2 });
const text = await db.searchText('second', { k: 1 });
window.__result = { storage: db.storage, ids: hits.map((h) => h.id), text: text.map((h) => h.id) };
await db.close();
