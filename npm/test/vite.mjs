// The bundler test (as the official sqlite-wasm package runs one): `npm pack` the built
// package, install the tarball into a copy of a small Vite app (test/vite-fixture), `vite
// build` it, check that the output holds the .wasm and the worker with their URLs rewritten,
// then load the built app in Chromium (lockdown flags of BROWSER-TEST.md, 127.0.0.1 only) and
// check that it opens a store in OPFS and searches it.
// Usage: node test/vite.mjs   (after scripts/build-wasm.sh)
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

import { serve } from './server.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const npmDir = join(here, '..');
const started = performance.now();
let failures = 0;
function check(ok, what, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
  if (!ok) failures++;
}

const work = mkdtempSync(join(tmpdir(), 'sv-vite-'));
const app = join(work, 'app');
cpSync(join(here, 'vite-fixture'), app, { recursive: true });
const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: join(npmDir, 'sqlite-vector'), encoding: 'utf8' }),
)[0];
console.log(`  packed ${packed.filename}: ${packed.size} B, ${packed.files.length} files`);
execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, packed.filename)], { cwd: app, stdio: 'inherit' });
execFileSync(process.execPath, [join(npmDir, 'node_modules/vite/bin/vite.js'), 'build', app], { stdio: 'inherit' });

const assets = readdirSync(join(app, 'dist/assets'));
const wasm = assets.filter((f) => f.endsWith('.wasm'));
const scripts = assets.filter((f) => f.endsWith('.js'));
check(wasm.length === 1, 'vite emitted the .wasm', wasm.join(', '));
const worker = scripts.find((f) => readFileSync(join(app, 'dist/assets', f), 'utf8').includes(wasm[0] ?? '\0'));
check(worker !== undefined, 'a chunk refers to the emitted .wasm by its hashed name', worker);
const entry = scripts.find((f) => /new Worker\(/.test(readFileSync(join(app, 'dist/assets', f), 'utf8')));
check(entry !== undefined, 'the app chunk starts the worker', entry);

const { server, url } = await serve({ '/': join(app, 'dist') });
const profile = mkdtempSync(join(tmpdir(), 'sv-chromium-'));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  args: ['--no-sandbox', '--disable-component-update', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`  [page console] ${m.text()}`));
  await page.goto(`${url}/`);
  await page.waitForFunction(() => window.__result, { timeout: 15000 });
  const result = await page.evaluate(() => window.__result);
  check(result.storage === 'opfs', 'the bundled app stores in OPFS', result.storage);
  check(JSON.stringify(result.ids) === '["a","b"]' && JSON.stringify(result.text) === '["b"]', 'the bundled app searches', JSON.stringify(result));
} catch (e) {
  check(false, `the bundled app runs: ${e.message}`);
} finally {
  await browser.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
console.log(`vite test: ${failures === 0 ? 'passed' : `${failures} failed`} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(failures === 0 ? 0 : 1);
