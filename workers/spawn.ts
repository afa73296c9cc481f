/* ----------------------------------------------------------------------------
  spawn.ts — start a worker_thread that runs a TypeScript file.

  `new Worker('x.ts')` fails on Node 20 (ERR_UNKNOWN_FILE_EXTENSION), even
  with `execArgv: ['--import', 'tsx']`. What works: a small bootstrap,
  evaluated in the worker, that registers tsx's ESM loader through
  `tsx/esm/api` and then imports the .ts file.
---------------------------------------------------------------------------- */

import { pathToFileURL } from 'node:url'
import { Worker, type WorkerOptions } from 'node:worker_threads'

/** tsx's ESM API entry, resolved from here so the worker's cwd does not matter. */
const TSX_API = import.meta.resolve('tsx/esm/api')

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
