// The MCP server of the WebAssembly build (dist/mcp.js), driven over stdio as a client would,
// and compared with the native server (`target/debug/sqlite-vector mcp`) when it is built.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, '../sqlite-vector/dist');
const MCP_JS = join(dist, 'mcp.js');
const TOOLS = JSON.parse(readFileSync(resolve(here, '../sqlite-vector/src/mcp-tools.json'), 'utf8'));
const NATIVE = resolve(here, '../../target/debug/sqlite-vector');
const VERSION = JSON.parse(readFileSync(resolve(here, '../sqlite-vector/package.json'), 'utf8')).version;

const tmp = () => mkdtempSync(join(tmpdir(), 'sv-mcp-'));

function wasmCommand(args) {
  const code = `import(${JSON.stringify(MCP_JS)}).then(async m => process.exit(await m.runMcp(${JSON.stringify(args)})))`;
  return [process.execPath, ['-e', code]];
}

/** A server process and a line-by-line JSON-RPC client of it. */
class Server {
  constructor([cmd, args]) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    this.nextId = 1;
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        this.wake();
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((res) => this.proc.on('close', (code) => res(code)));
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(msg) {
    this.proc.stdin.write(`${typeof msg === 'string' ? msg : JSON.stringify(msg)}\n`);
  }

  /** The next reply (parsed) matching `pred`, waiting for it. */
  async reply(pred, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const l of this.lines) {
        const v = JSON.parse(l);
        if (pred(v)) return v;
      }
      if (Date.now() > deadline) throw new Error(`no reply; stdout: ${this.lines.join('\n')}\nstderr: ${this.stderr}`);
      await new Promise((res) => {
        this.waiters.push(res);
        setTimeout(res, 200);
      });
    }
  }

  async request(method, params) {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    return this.reply((v) => v.id === id);
  }

  async initialize() {
    const r = await this.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'node-test', version: '0' },
    });
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return r;
  }

  /** `[isError, structuredContent or the error text]` of a tool call. */
  async call(name, args) {
    const r = await this.request('tools/call', { name, arguments: args });
    assert.ok(r.result, `${name}: ${JSON.stringify(r)}`);
    const { isError, content, structuredContent } = r.result;
    if (isError) return [true, content[0].text];
    assert.deepEqual(JSON.parse(content[0].text), structuredContent, 'text and structuredContent agree');
    return [false, structuredContent];
  }

  async ok(name, args) {
    const [err, v] = await this.call(name, args);
    assert.equal(err, false, `${name} ${JSON.stringify(args)}: ${v}`);
    return v;
  }

  async err(name, args) {
    const [err, v] = await this.call(name, args);
    assert.equal(err, true, `${name} ${JSON.stringify(args)} should fail: ${JSON.stringify(v)}`);
    return v;
  }

  /** Closes stdin; resolves to the exit code once the process is gone. */
  async close() {
    this.proc.stdin.end();
    return this.exited;
  }
}

const unit = (i, dim = 8) => Array.from({ length: dim }, (_, j) => (j === i ? 1 : 0.05 * ((i + j) % 3)));

async function fullSession(s) {
  const out = {};
  await s.initialize();
  out.create = await s.call('shard_create', { name: 'team/notes', dim: 8, searchable: ['topic'] });
  out.createAgain = await s.call('shard_create', { name: 'team/notes', dim: 8 });
  out.batch = await s.call('insert_batch', {
    shard: 'team/notes',
    items: [0, 1, 2, 3].map((i) => ({ id: `n${i}`, vector: unit(i), text: `note number ${i}`, metadata: { topic: i % 2 ? 'odd' : 'even', i } })),
  });
  out.insert = await s.call('insert', { shard: 'team/notes', id: 'n4', vector: unit(4), metadata: { topic: 'even' } });
  out.search = await s.call('search', { shard: 'team/notes', vector: unit(2), k: 3 });
  out.filtered = await s.call('search', { shard: 'team/notes', vector: unit(2), k: 3, filter: { topic: 'odd' } });
  out.keywords = await s.call('search', { shard: 'team/notes', text: 'number 3', mode: 'text', k: 2 });
  out.rawText = await s.call('search', { shard: 'team/notes', text: 'number 3', k: 2 });
  out.hybrid = await s.call('search', { shard: 'team/notes', text: 'number 3', vector: unit(3), k: 2 });
  out.prefix = await s.call('search', { prefix: 'team/', vector: unit(1), k: 2 });
  out.get = await s.call('get', { shard: 'team/notes', id: 'n1', include_vector: true });
  out.update = await s.call('update', { shard: 'team/notes', id: 'n1', metadata: { topic: 'changed' } });
  out.getAfter = await s.call('get', { shard: 'team/notes', id: 'n1' });
  out.delete = await s.call('delete', { shard: 'team/notes', id: 'n0' });
  out.stats = await s.call('shard_stats', { name: 'team/notes' });
  out.list = await s.call('shard_list', {});
  out.unknownId = await s.call('get', { shard: 'team/notes', id: 'nope' });
  out.deleteUnknown = await s.call('delete', { shard: 'team/notes', id: 'nope' });
  out.wrongDim = await s.call('insert', { shard: 'team/notes', vector: [1, 2, 3] });
  out.nonFinite = await s.call('insert', { shard: 'team/notes', vector: [1e39, 0, 0, 0, 0, 0, 0, 0] });
  out.badVector = await s.call('insert', { shard: 'team/notes', vector: ['x', 0, 0, 0, 0, 0, 0, 0] });
  out.dotdot = await s.call('shard_create', { name: '../x', dim: 8 });
  out.abs = await s.call('insert', { shard: '/abs', vector: unit(0) });
  out.unknownShard = await s.call('search', { shard: 'nope', vector: unit(0) });
  out.unknownField = await s.call('insert', { shard: 'team/notes', vector: unit(0), colour: 'red' });
  out.bigK = await s.call('search', { shard: 'team/notes', vector: unit(0), k: 5000 });
  out.noItem = await s.call('insert_batch', { shard: 'team/notes', items: [{ vector: unit(5) }, { id: 'x' }] });
  out.drop = await s.call('shard_drop', { name: 'team/notes' });
  out.dropAgain = await s.call('shard_drop', { name: 'team/notes' });
  out.listAfter = await s.call('shard_list', {});
  return out;
}

test('the wasm MCP server serves the tools over stdio', async () => {
  const root = tmp();
  const s = new Server(wasmCommand(['--root', root]));
  try {
    s.send({ jsonrpc: '2.0', method: 'notifications/initialized' }); // before initialize: ignored
    const init = await s.initialize();
    assert.equal(init.result.protocolVersion, '2025-06-18');
    assert.equal(init.result.serverInfo.name, 'sqlite-vector');
    assert.equal(init.result.serverInfo.version, VERSION);
    assert.deepEqual(init.result.capabilities, { tools: {} });
    assert.match(init.result.instructions, /native/);
    assert.deepEqual((await s.request('ping')).result, {});
    const list = await s.request('tools/list', {});
    assert.deepEqual(list.result.tools, TOOLS, 'tools/list is mcp-tools.json');

    const r = await fullSession(s);
    assert.deepEqual(r.create, [false, { shard: { name: 'team/notes', dim: 8, metric: 'cosine', embedding_model: null, accepts_text: false } }]);
    assert.equal(r.createAgain[1], 'shard "team/notes" already exists; use it, or shard_drop it first');
    assert.deepEqual(r.batch, [false, { shard: 'team/notes', ids: ['n0', 'n1', 'n2', 'n3'], count: 4 }]);
    assert.deepEqual(r.insert, [false, { shard: 'team/notes', id: 'n4' }]);
    assert.equal(r.search[1].mode, 'vector');
    assert.equal(r.search[1].hits[0].id, 'n2', 'top hit');
    assert.equal(r.search[1].hits.length, 3);
    assert.deepEqual(r.search[1].hits[0].metadata, { topic: 'even', i: 2 });
    assert.equal(r.search[1].hits[0].text, 'note number 2');
    assert.deepEqual(r.search[1].failures, []);
    assert.ok(r.filtered[1].hits.every((h) => h.metadata.topic === 'odd'));
    assert.equal(r.keywords[1].mode, 'text');
    assert.equal(r.keywords[1].hits[0].id, 'n3');
    assert.equal(r.rawText[1].mode, 'text', 'a text query on raw vectors is keyword search, as natively');
    assert.equal(r.hybrid[1].mode, 'hybrid');
    assert.equal(r.hybrid[1].hits[0].id, 'n3');
    assert.ok('vector_score' in r.hybrid[1].hits[0] && 'text_score' in r.hybrid[1].hits[0]);
    assert.equal(r.prefix[1].hits[0].shard, 'team/notes');
    assert.equal(r.prefix[1].hits[0].id, 'n1');
    assert.equal(r.get[1].vector.length, 8);
    assert.equal(r.get[1].text, 'note number 1');
    assert.deepEqual(r.update, [false, { shard: 'team/notes', id: 'n1', status: 'updated' }]);
    assert.deepEqual(r.getAfter[1], { id: 'n1', metadata: { topic: 'changed' }, text: 'note number 1' });
    assert.deepEqual(r.delete, [false, { shard: 'team/notes', id: 'n0', status: 'deleted' }]);
    assert.equal(r.stats[1].count, 4);
    assert.equal(r.stats[1].tombstones, 1);
    assert.ok(r.stats[1].bytes_on_disk > 0);
    assert.match(r.stats[1].search_method, /^exact/);
    assert.deepEqual(r.list[1].shards.map((x) => x.name), ['team/notes']);
    assert.equal(r.unknownId[1], 'unknown id: "nope"');
    assert.equal(r.deleteUnknown[1], 'unknown id: "nope"');
    assert.equal(r.wrongDim[1], 'dimension mismatch: shard has 8, got 3');
    assert.equal(r.nonFinite[1], 'non-finite vector component at index 0: inf');
    assert.match(r.badVector[1], /^invalid arguments for insert: invalid type: string "x", expected f32/);
    assert.equal(r.dotdot[1], `invalid argument: invalid shard name "../x": has a '.' or '..' segment`);
    assert.equal(r.abs[1], `invalid argument: invalid shard name "/abs": starts with '/' (names are relative)`);
    assert.equal(r.unknownShard[1], 'unknown shard "nope"; create it with shard_create or see shard_list');
    assert.match(r.unknownField[1], /unknown field `colour`/);
    assert.equal(r.bigK[1], 'k must be 1..=1000, got 5000');
    assert.equal(r.noItem[1], 'item 1: give `text` (embedded by the server) or `vector`');
    assert.deepEqual(r.drop, [false, { dropped: 'team/notes' }]);
    assert.equal(r.dropAgain[1], 'unknown shard "team/notes"; see shard_list');
    assert.deepEqual(r.listAfter[1], { shards: [] });
    for (const [k, v] of Object.entries(r)) {
      if (v[0]) assert.equal(typeof v[1], 'string', k);
    }
    assert.ok(!existsSync(join(root, 'x')) && !existsSync(join(root, '..', 'x')), 'no file for a hostile name');

    // What needs the native package is refused, never done another way.
    await s.ok('shard_create', { name: 'raw', dim: 8 });
    const textOnly = await s.err('insert', { shard: 'raw', text: 'remember this' });
    assert.match(textOnly, /text cannot be embedded/);
    const textShard = await s.err('shard_create', { name: 'notes' });
    assert.match(textShard, /native sqlite-vector package \(install @sqlite-vector\/linux-x64-gnu\)/);
    const query = await s.err('search', { shard: 'raw', text: 'remember', mode: 'vector' });
    assert.match(query, /text cannot be embedded/);
    for (const tool of ['memory_store', 'memory_find', 'session_save', 'sync']) {
      const e = await s.err(tool, { shard: 'memory/me', task: 'x' });
      assert.match(e, /needs the native sqlite-vector package/, tool);
    }
    const unknown = await s.request('tools/call', { name: 'no_such_tool', arguments: {} });
    assert.equal(unknown.error.code, -32602);

    // Malformed lines get JSON-RPC errors; the session goes on.
    s.send('this is not json');
    const parse = await s.reply((v) => v.error?.code === -32700);
    assert.equal(parse.id, null);
    assert.equal((await s.request('no/such/method', {})).error.code, -32601);
    s.send({ jsonrpc: '2.0', id: 'bad', method: 'tools/call', params: {} });
    assert.equal((await s.reply((v) => v.id === 'bad')).error.code, -32602);
    s.send('[{"jsonrpc":"2.0","id":1,"method":"ping"}]');
    assert.ok(await s.reply((v) => v.error?.code === -32600 && v.id === null));
    assert.deepEqual((await s.request('ping')).result, {});
  } finally {
    assert.equal(await s.close(), 0);
    rmSync(root, { recursive: true, force: true });
  }
  // Only JSON-RPC 2.0 messages on stdout.
  for (const l of s.lines) {
    const v = JSON.parse(l);
    assert.equal(v.jsonrpc, '2.0', l);
    assert.ok('result' in v !== 'error' in v, l);
  }
});

test('acknowledged writes survive a restart (and a kill)', async () => {
  const root = tmp();
  try {
    const a = new Server(wasmCommand(['--root', root]));
    await a.initialize();
    await a.ok('shard_create', { name: 'keep', dim: 8, metric: 'l2' });
    await a.ok('insert_batch', { shard: 'keep', items: [{ id: 'a', vector: unit(0) }, { id: 'b', vector: unit(1) }] });
    await a.ok('insert', { shard: 'keep', id: 'c', vector: unit(2), text: 'last one' });
    a.proc.kill('SIGKILL'); // no chance to save anything more
    await a.exited;
    assert.ok(existsSync(join(root, 'wasm', 'keep.db')), 'the shard is <root>/wasm/<name>.db');

    const b = new Server(wasmCommand(['--root', root]));
    await b.initialize();
    const stats = await b.ok('shard_stats', { name: 'keep' });
    assert.equal(stats.count, 3);
    assert.equal(stats.shard.metric, 'l2');
    assert.equal((await b.ok('get', { shard: 'keep', id: 'c' })).text, 'last one');
    const hits = await b.ok('search', { shard: 'keep', vector: unit(1), k: 1 });
    assert.equal(hits.hits[0].id, 'b');
    assert.equal(hits.hits[0].score, 0, 'l2 distance');
    assert.equal(await b.close(), 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('two servers on one root: a read sees the other server\'s acknowledged writes', async () => {
  const root = tmp();
  const a = new Server(wasmCommand(['--root', root]));
  const b = new Server(wasmCommand(['--root', root]));
  try {
    await a.initialize();
    await b.initialize();
    await a.ok('shard_create', { name: 'shared', dim: 8 });
    await a.ok('insert', { shard: 'shared', id: 'a', vector: unit(0) });
    // b loads the shard for its reads (and keeps it loaded) ...
    assert.equal((await b.ok('search', { shard: 'shared', vector: unit(1), k: 5 })).hits.length, 1);
    // ... and must not answer from that copy once a has written.
    await a.ok('insert', { shard: 'shared', id: 'b', vector: unit(1) });
    const hits = await b.ok('search', { shard: 'shared', vector: unit(1), k: 5 });
    assert.deepEqual(hits.hits.map((h) => h.id), ['b', 'a']);
    await b.ok('delete', { shard: 'shared', id: 'a' });
    assert.equal((await a.ok('shard_stats', { name: 'shared' })).count, 1);
    assert.equal(await a.close(), 0);
    assert.equal(await b.close(), 0);
  } finally {
    a.proc.kill();
    b.proc.kill();
    rmSync(root, { recursive: true, force: true });
  }
});

test('flags: unknown ones are refused with exit code 2', async () => {
  const s = new Server(wasmCommand(['--root', tmp(), '--frobnicate']));
  assert.equal(await s.exited, 2);
  assert.match(s.stderr, /unexpected argument '--frobnicate'/);
  assert.equal(s.lines.length, 0, 'nothing on stdout');
  const http = new Server(wasmCommand(['--root', tmp(), '--embedder', 'http']));
  assert.equal(await http.exited, 2);
  assert.match(http.stderr, /native/);
});

/** The shape of a JSON value: its keys and types, not its numbers or texts. */
function shape(v) {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape(v[k])]));
  }
  return v === null ? null : typeof v;
}

test('results have the native server’s shapes', async (t) => {
  if (!existsSync(NATIVE)) {
    t.skip(`${NATIVE} is not built (cargo build -p sqlite-vector-cli): native comparison skipped`);
    return;
  }
  const [rw, rn] = [tmp(), tmp()];
  const w = new Server(wasmCommand(['--root', rw]));
  const n = new Server([NATIVE, ['mcp', '--root', rn]]);
  try {
    const [iw, inat] = [await w.initialize(), await n.initialize()];
    assert.deepEqual(shape(iw.result), shape(inat.result), 'initialize');
    assert.deepEqual((await w.request('tools/list')).result, (await n.request('tools/list')).result, 'tools/list');
    const [a, b] = [await fullSession(w), await fullSession(n)];
    for (const key of Object.keys(b)) {
      assert.equal(a[key][0], b[key][0], `${key}: isError (wasm ${JSON.stringify(a[key][1])}, native ${JSON.stringify(b[key][1])})`);
      if (b[key][0]) {
        assert.equal(a[key][1], b[key][1], `${key}: error text`);
      } else {
        assert.deepEqual(shape(a[key][1]), shape(b[key][1]), `${key}: shape`);
        const skip = new Set(['score', 'vector_score', 'text_score', 'bytes_on_disk', 'search_method', 'vector']);
        const strip = (v) => JSON.parse(JSON.stringify(v, (k, x) => (skip.has(k) ? undefined : x)));
        assert.deepEqual(strip(a[key][1]), strip(b[key][1]), `${key}: the same result but scores`);
      }
    }
    // Scores agree to f32 precision.
    for (const key of ['search', 'filtered', 'prefix']) {
      a[key][1].hits.forEach((h, i) => assert.ok(Math.abs(h.score - b[key][1].hits[i].score) < 1e-5, key));
    }
    // Malformed JSON: the same codes.
    for (const line of ['not json', '[]', '{"jsonrpc":"2.0","id":"d","method":"tools/call"}', '{"jsonrpc":"2.0","id":"u","method":"no/such"}']) {
      const before = [w.lines.length, n.lines.length];
      w.send(line);
      n.send(line);
      const pick = (s, from) => s.reply((v) => s.lines.indexOf(JSON.stringify(v)) >= from && v.error);
      const [x, y] = [await pick(w, before[0]), await pick(n, before[1])];
      assert.equal(x.error.code, y.error.code, line);
      assert.deepEqual(x.id, y.id, line);
    }
  } finally {
    await Promise.all([w.close(), n.close()]);
    rmSync(rw, { recursive: true, force: true });
    rmSync(rn, { recursive: true, force: true });
  }
});
