/* ----------------------------------------------------------------------------
  spawn.ts — start a worker_thread that runs a TypeScript file.

  `new Worker('x.ts')` fails on Node 20 (ERR_UNKNOWN_FILE_EXTENSION), even
  with `execArgv: ['--import', 'tsx']`. What works: a small bootstrap,
  evaluated in the worker, that registers tsx's ESM loader through
  `tsx/esm/api` and then imports the .ts file.
---------------------------------------------------------------------------- */

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * tsx's ESM API entry (the "import" target of `tsx/esm/api`, read from tsx's
 * package.json): require.resolve would pick the CommonJS build, whose
 * register() fails to load its ESM half from a worker, and vitest's loader
 * has no import.meta.resolve.
 */
const TSX_API = ((): string => {
  const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json')
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> }
  return pathToFileURL(join(dirname(pkgJson), pkg.exports['./esm/api'].import.default)).href
})()

/**
 * execArgv for a piscina pool whose task file is TypeScript.
 *
 * `execArgv: ['--import', 'tsx']` works, but it registers tsx's CommonJS hook
 * too, and piscina loads a task file with `require()` first: the worker and
 * the whole allocator then run as CommonJS compiled by esbuild, where every
 * imported constant is a getter call — mimalloc-stress rounds take twice as
 * long. This registers only tsx's ESM hooks (a data: module calling
 * `register()`), so piscina's `require()` fails, it falls back to `import()`,
 * and the worker runs the same ES modules as the main thread.
 */
export const tsxPoolExecArgv: string[] = [
  '--import',
  'data:text/javascript,' + encodeURIComponent(`import { register } from ${JSON.stringify(TSX_API)}; register()`),
]

/** A Worker running the TypeScript module at `file` (absolute path or file: URL). */
export function spawnTsWorker(file: string | URL, options: WorkerOptions = {}): Worker {
  const url = file instanceof URL ? file.href : file.startsWith('file:') ? file : pathToFileURL(file).href
  const code = `
    import(${JSON.stringify(TSX_API)})
      .then(({ register }) => { register(); return import(${JSON.stringify(url)}) })
      .catch((err) => { setImmediate(() => { throw err }) })
  `
  return new Worker(code, { ...options, eval: true })
}
