/* ----------------------------------------------------------------------------
  fuzz-spawn.ts — starts a TypeScript worker for the fuzzer, from the CLI
  (tsx) and from vitest alike.

  workers/spawn.ts resolves tsx with `import.meta.resolve`, which vitest's
  module runner does not provide; this does the same bootstrap (register
  tsx's ESM loader in the worker, then import the .ts file) but finds tsx's
  ESM API through its package.json, which works everywhere.
---------------------------------------------------------------------------- */

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker, type WorkerOptions } from 'node:worker_threads'

/** The "import" target of `tsx/esm/api` (the CommonJS build's register() cannot load its ESM half in a worker). */
const TSX_API = ((): string => {
  const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json')
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> }
  return pathToFileURL(join(dirname(pkgJson), pkg.exports['./esm/api'].import.default)).href
})()

/** A Worker running the TypeScript module at the absolute path `file`. */
export function spawnFuzzWorker(file: string, options: WorkerOptions = {}): Worker {
  const url = pathToFileURL(file).href
  const code = `
    import(${JSON.stringify(TSX_API)})
      .then(({ register }) => { register(); return import(${JSON.stringify(url)}) })
      .catch((err) => { setImmediate(() => { throw err }) })
  `
  return new Worker(code, { ...options, eval: true })
}
