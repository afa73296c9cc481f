/* ----------------------------------------------------------------------------
  stress-worker.ts — the piscina entry of the stress harness. Each task runs
  one pattern round as a fresh logical thread (see patterns.ts `runTask`).

  The Arena is attached once per arena and cached for the worker's lifetime:
  a SharedArrayBuffer arrives as a new JS object with every task (it is
  shared, not copied), so the cache is keyed by the task's `arenaId`.

  TypeScript in piscina workers: the pool is created with
  `execArgv: ['--import', <tsx loader>]` (see stress/run.ts), which works
  whether the main script runs under tsx, under vitest or under plain node.
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
