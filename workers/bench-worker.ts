/* ----------------------------------------------------------------------------
  bench-worker.ts — a worker of `npm run bench` (stress/bench.ts).

  Protocol, one step at a time so that every worker of a group starts together:
    worker → main  { type: 'ready', step }     set up (and warmed up) for `step`
    main           stores `step` into ctl[GO] and notifies
    worker → main  { type: 'result', step, t0, t1, check }   hrtime ns around the timed part
    worker → main  { type: 'done', info }      after its last step, all its blocks freed
  and then the worker ends by itself (nothing keeps its event loop alive).
---------------------------------------------------------------------------- */

import { parentPort, workerData } from 'node:worker_threads'
import { MemPool } from '@thi.ng/malloc'
import { Arena, type Heap } from '../src/index.js'
import {
  CHURN_LIVE, churnCodemix, churnCodemixLocked, churnEmpty, churnSab, churnThing, churnUint8, codemixAllocator,
  codemixSharedAllocator, consumeBlocks, consumeNumbers, makeChurnStream, GO, mutexLock, mutexUnlock, nowNs,
  produceBlocks, produceNumbers, RING_WORDS, type CodemixShared,
} from '../stress/bench-common.js'

/** The single-thread churn's baselines, each run in a worker of its own like sabmalloc. */
export type ChurnPeer = 'floor' | 'codemix' | 'uint8' | 'thing'

export type BenchTask =
  | { kind: 'churn-sab', arena: SharedArrayBuffer, seed: number, ops: number, warmOps: number }
  | { kind: 'churn-peer', peer: ChurnPeer, seed: number, ops: number, warmPasses: number }
  | { kind: 'churn-lock', heap: SharedArrayBuffer, lock: SharedArrayBuffer, seed: number, ops: number, warmOps: number }
  | { kind: 'ring-producer' | 'ring-consumer', arena: SharedArrayBuffer, ring: SharedArrayBuffer, blocks: number, plan: RingStep[] }

/** What a ring step moves through the ring: allocated blocks, or plain numbers (the baseline). */
export type RingStep = 'alloc' | 'empty'

export interface BenchWorkerData {
  task: BenchTask
  ctl: SharedArrayBuffer
  steps: number
}

export type BenchMessage =
  | { type: 'ready', step: number }
  | { type: 'result', step: number, t0: number, t1: number, check: number }
  | { type: 'done', info: Record<string, number> }

/** A step runner: does the timed work of `step`, returns its result. */
type Runner = (step: number) => { t0: number, t1: number, check: number }

const data = workerData as BenchWorkerData
const port = parentPort!
const ctl = new Int32Array(data.ctl)

function post(m: BenchMessage): void {
  port.postMessage(m)
}

function waitGo(step: number): void {
  for (;;) {
    const go = Atomics.load(ctl, GO)
    if (go >= step) return
    Atomics.wait(ctl, GO, go)
  }
}

/* ----- Tasks ------------------------------------------------------------------------- */

function churnSabTask(t: Extract<BenchTask, { kind: 'churn-sab' }>): { run: Runner, finish: () => Record<string, number> } {
  const heap = Arena.attach(t.arena).createHeap()
  const { initSizes, slots, sizes } = makeChurnStream(t.seed, t.ops)
  const live = new Int32Array(CHURN_LIVE)
  for (let i = 0; i < CHURN_LIVE; i++) live[i] = heap.malloc(initSizes[i])
  for (let left = t.warmOps; left > 0; left -= t.ops) churnSab(heap, live, slots, sizes, Math.min(t.ops, left))
  return {
    run: () => {
      const t0 = nowNs()
      const el = churnSab(heap, live, slots, sizes, t.ops)
      return { t0, t1: t0 + el, check: countZeros(live) }
    },
    finish: () => {
      for (let i = 0; i < CHURN_LIVE; i++) heap.free(live[i])
      const id = heap.id
      heap.release()
      return { heapId: id }
    },
  }
}

/** A baseline's churn over the same op stream: the loop alone, npm `malloc`, `new Uint8Array` + GC, @thi.ng/malloc. */
function churnPeerTask(t: Extract<BenchTask, { kind: 'churn-peer' }>): { run: Runner, finish: () => Record<string, number> } {
  const { initSizes, slots, sizes } = makeChurnStream(t.seed, t.ops)
  const live = new Int32Array(CHURN_LIVE)
  let pass: () => number
  let release = (): void => {}
  if (t.peer === 'floor') {
    pass = () => churnEmpty(live, slots, sizes, t.ops)
  } else if (t.peer === 'uint8') {
    const arrays = Array.from({ length: CHURN_LIVE }, (_, i) => new Uint8Array(initSizes[i]))
    pass = () => churnUint8(arrays, slots, sizes, t.ops)
  } else if (t.peer === 'codemix') {
    const a = codemixAllocator(new ArrayBuffer(32 << 20))
    for (let i = 0; i < CHURN_LIVE; i++) live[i] = a.alloc(initSizes[i])
    pass = () => churnCodemix(a, live, slots, sizes, t.ops)
    release = () => { for (let i = 0; i < CHURN_LIVE; i++) a.free(live[i]) }
  } else {
    const pool = new MemPool({ size: 32 << 20 })
    for (let i = 0; i < CHURN_LIVE; i++) live[i] = pool.malloc(initSizes[i])
    pass = () => churnThing(pool, live, slots, sizes, t.ops)
    release = () => { for (let i = 0; i < CHURN_LIVE; i++) pool.free(live[i]) }
  }
  for (let i = 0; i < t.warmPasses; i++) pass()
  const zeros = t.peer === 'floor' || t.peer === 'uint8' ? () => 0 : () => countZeros(live)
  return {
    run: () => {
      const t0 = nowNs()
      const el = pass()
      return { t0, t1: t0 + el, check: zeros() }
    },
    finish: () => {
      release()
      return {}
    },
  }
}

function churnLockTask(t: Extract<BenchTask, { kind: 'churn-lock' }>): { run: Runner, finish: () => Record<string, number> } {
  const lock = new Int32Array(t.lock)
  // the constructor walks the shared heap: attach under the lock
  mutexLock(lock)
  let c: CodemixShared
  try {
    c = codemixSharedAllocator(t.heap)
  } finally {
    mutexUnlock(lock)
  }
  const a = c.allocator
  const { initSizes, slots, sizes } = makeChurnStream(t.seed, t.ops)
  const live = new Int32Array(CHURN_LIVE)
  for (let i = 0; i < CHURN_LIVE; i++) {
    mutexLock(lock)
    c.resetScratch()
    live[i] = a.alloc(initSizes[i])
    mutexUnlock(lock)
  }
  for (let left = t.warmOps; left > 0; left -= t.ops) churnCodemixLocked(c, lock, live, slots, sizes, Math.min(t.ops, left))
  return {
    run: () => {
      const t0 = nowNs()
      const el = churnCodemixLocked(c, lock, live, slots, sizes, t.ops)
      return { t0, t1: t0 + el, check: countZeros(live) }
    },
    finish: () => {
      for (let i = 0; i < CHURN_LIVE; i++) {
        mutexLock(lock)
        c.resetScratch()
        a.free(live[i])
        mutexUnlock(lock)
      }
      return {}
    },
  }
}

function ringTask(t: Extract<BenchTask, { kind: 'ring-producer' | 'ring-consumer' }>): { run: Runner, finish: () => Record<string, number> } {
  const heap: Heap = Arena.attach(t.arena).createHeap()
  const ring = new Int32Array(t.ring, 0, RING_WORDS)
  const producer = t.kind === 'ring-producer'
  return {
    run: (step) => {
      const what = t.plan[(step - 1) % t.plan.length]
      const t0 = nowNs()
      let check = 0
      if (what === 'alloc') {
        if (producer) produceBlocks(heap, ring, t.blocks)
        else check = consumeBlocks(heap, ring, t.blocks)
      } else if (producer) {
        produceNumbers(ring, t.blocks)
      } else {
        check = consumeNumbers(ring, t.blocks)
      }
      return { t0, t1: nowNs(), check }
    },
    finish: () => {
      const id = heap.id
      heap.release()
      return { heapId: id }
    },
  }
}

function countZeros(live: Int32Array): number {
  let z = 0
  for (let i = 0; i < live.length; i++) if (live[i] === 0) z++
  return z
}

/* ----- Main -------------------------------------------------------------------------- */

const task = data.task
const { run, finish } = task.kind === 'churn-sab' ? churnSabTask(task)
  : task.kind === 'churn-peer' ? churnPeerTask(task)
    : task.kind === 'churn-lock' ? churnLockTask(task)
      : ringTask(task)

for (let step = 1; step <= data.steps; step++) {
  post({ type: 'ready', step })
  waitGo(step)
  const r = run(step)
  post({ type: 'result', step, ...r })
}
post({ type: 'done', info: finish() })
