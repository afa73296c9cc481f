/* ----------------------------------------------------------------------------
  stress-worker.ts — the piscina entry of the stress harness. Each task runs
  a run of pattern rounds of one logical thread, each round a fresh heap
  (see patterns.ts `runTask`).

  The Arena is attached once per arena and cached for the worker's lifetime:
  a SharedArrayBuffer arrives as a new JS object with every task (it is
  shared, not copied), so the cache is keyed by the task's `arenaId`.

  TypeScript: stress/run.ts starts the pool with tsx's ESM hooks only, so
  piscina's `require()` of this file fails and it is `import()`ed as an ES
  module (with tsx's CommonJS hook it would run as CommonJS, twice as slow:
  see the comment on TSX_ESM_ONLY in run.ts).
---------------------------------------------------------------------------- */

import { Arena } from '../src/index.js'
import { runTask, type StressTask, type TaskResult } from './patterns.js'

let cachedId = -1
let cachedArena: Arena | undefined

export default function stressTask(task: StressTask): TaskResult {
  if (cachedArena === undefined || cachedId !== task.arenaId) {
    cachedArena = Arena.attach(task.buffer)
    cachedId = task.arenaId
  }
  return runTask(cachedArena, task)
}
