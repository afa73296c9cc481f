/* ----------------------------------------------------------------------------
  supervise.ts — recovering the heaps of workers that exit without
  `heap.release()` (crashed, or terminated while idle).

  Every heap record holds its thread's `threadId`. When a supervised worker
  exits, the main thread reclaims that thread's heaps: empty pages go back to
  the arena, segments with live blocks are abandoned for other heaps to
  reclaim, and every block the worker allocated stays valid and freeable.

  Safe: a worker that crashed with an uncaught error, called process.exit,
  or was terminated while it was not inside an allocator call.

  Terminated *inside* an allocator call (worker.terminate(), piscina's
  destroy or task abort — `finally` blocks do not run then):
    - inside release(): recovered; the reclaim finds the heap's segments by
      their owner word, so it finishes the release without touching segments
      other heaps already reclaimed;
    - holding the grow lock: recovered; the lock records its thread, and the
      reclaim publishes the grown length and frees it;
    - holding a page in DELAYED_FREEING (a cross-thread free into a full
      page): recovered — the heap record names the page and the reclaim
      resets it — but until then that page's owner waits in its next
      collect/release; if the owner is the main thread, its event loop (and
      so this supervisor) waits too;
    - anywhere else (a block being popped or pushed, a page being moved
      between queues, lists being collected): a few blocks may be lost, and
      arena.check() reports the damage.
  Terminate workers when they are idle, or let them release().
---------------------------------------------------------------------------- */

import type { Worker } from 'node:worker_threads'
import type { Arena } from './arena.js'

/** Reclaims `worker`'s heaps when it exits (however it exits). */
export function superviseWorker(arena: Arena, worker: Worker): void {
  const thread = worker.threadId
  worker.once('exit', () => { arena.reclaimThreadHeaps(thread) })
}

/** The part of a piscina pool that supervisePool uses. */
export interface PoolLike {
  on(event: 'workerCreate' | 'workerDestroy', listener: (worker: { id: number }) => void): unknown
}

/**
 * Reclaims the heaps of every thread of a piscina pool when it exits (idle
 * timeout, crash, process.exit in a task, pool.destroy()). Call it right
 * after `new Piscina(…)`, before the first task: piscina announces its first
 * threads in a microtask. Each thread's id is taken when it is created (a
 * piscina worker reports -1 once its thread is gone) and the reclaim waits
 * for the thread's `exit`; if the pool does not expose its Worker, it runs
 * when piscina reports the thread destroyed.
 */
export function supervisePool(arena: Arena, pool: PoolLike): void {
  const ids = new WeakMap<object, number>()
  pool.on('workerCreate', (pw) => {
    const thread = pw.id
    const worker = underlyingWorker(pw)
    if (worker !== undefined) worker.once('exit', () => { arena.reclaimThreadHeaps(thread) })
    else ids.set(pw, thread)
  })
  pool.on('workerDestroy', (pw) => {
    const thread = ids.get(pw)
    if (thread !== undefined) setImmediate(() => { arena.reclaimThreadHeaps(thread) })
  })
}

/** piscina keeps its WorkerInfo (with `.worker`) under a symbol on the public worker object. */
function underlyingWorker(pw: object): Worker | undefined {
  for (const sym of Object.getOwnPropertySymbols(pw)) {
    const info = (pw as Record<symbol, unknown>)[sym] as { worker?: Worker } | undefined
    if (info?.worker !== undefined && typeof info.worker.once === 'function') return info.worker
  }
  return undefined
}
