#!/usr/bin/env node
// `npx sqlite-vector …`: runs the platform package's native CLI (`sqlite-vector mcp --root DIR`,
// `sqlite-vector search …`) with stdio inherited, forwarding signals and the exit status.
// Without a platform package (or with SQLITE_VECTOR_BACKEND=wasm) only `mcp` is served, from
// the WebAssembly build in this package (dist/mcp.js), after a one-line notice on stderr.
// stdout carries nothing of ours: for `mcp` it is the protocol channel.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const PLATFORM_PACKAGE = '@sqlite-vector/linux-x64-gnu';
const args = process.argv.slice(2);
const backend = process.env.SQLITE_VECTOR_BACKEND ?? '';

function fail(message, code = 1) {
  process.stderr.write(`sqlite-vector: ${message}\n`);
  process.exit(code);
}

/** The native CLI to run, or why there is none. */
function findBinary() {
  if (process.env.SQLITE_VECTOR_BINARY) return { path: process.env.SQLITE_VECTOR_BINARY };
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { reason: `no native build for ${process.platform}-${process.arch}` };
  }
  try {
    const pkg = createRequire(import.meta.url).resolve(`${PLATFORM_PACKAGE}/package.json`);
    return { path: join(dirname(pkg), 'sqlite-vector') };
  } catch {
    return { reason: `the platform package ${PLATFORM_PACKAGE} is not installed` };
  }
}

function runNative(path) {
  try {
    accessSync(path, constants.X_OK);
  } catch (e) {
    fail(`${path} is not an executable file (${e.code}); reinstall ${PLATFORM_PACKAGE}`);
  }
  const child = spawn(path, args, { stdio: 'inherit' });
  const forward = (signal) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = Object.fromEntries(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => [s, forward(s)]));
  for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  child.on('error', (e) => fail(`cannot run ${path}: ${e.message}`));
  child.on('exit', (code, signal) => {
    for (const [s, h] of Object.entries(handlers)) process.off(s, h);
    if (signal) {
      // Die of the same signal, so that our parent sees what the child's would have.
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}

async function runWasm(reason) {
  if (args[0] !== 'mcp') {
    fail(
      `${reason}: without the native package only \`sqlite-vector mcp\` is available ` +
        '(served from the WebAssembly build); install the native package for the CLI',
      2,
    );
  }
  process.stderr.write(
    `sqlite-vector: ${reason}; serving MCP from the WebAssembly build (vectors only: no text embedding, sync or agent memory)\n`,
  );
  const { runMcp } = await import('../dist/mcp.js');
  process.exitCode = await runMcp(args.slice(1));
}

if (backend !== '' && backend !== 'native' && backend !== 'wasm') {
  fail(`SQLITE_VECTOR_BACKEND must be 'native' or 'wasm', got ${JSON.stringify(backend)}`, 2);
}
if (backend === 'wasm') {
  await runWasm('SQLITE_VECTOR_BACKEND=wasm');
} else {
  const found = findBinary();
  if (found.path) runNative(found.path);
  else if (backend === 'native') fail(`SQLITE_VECTOR_BACKEND=native, but ${found.reason}`);
  else await runWasm(found.reason);
}
