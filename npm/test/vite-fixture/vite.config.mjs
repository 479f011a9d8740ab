// The configuration the package's README asks for: ES module workers (the package's worker
// imports the wasm glue), and no dependency pre-bundling of the package in `vite dev`.
export default {
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['sqlite-vector'] },
  build: { target: 'es2022' },
  logLevel: 'warn',
};
