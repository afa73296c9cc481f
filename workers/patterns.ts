/* ----------------------------------------------------------------------------
  patterns.ts — the allocation patterns of the stress harness, as functions
  that run inside a worker (and the main-thread helpers that drain what they
  leave in shared memory). Reusable by the harness (`stress/run.ts`), tests
  and benchmarks; `stress-worker.ts` is the piscina entry that calls them.

  Every pattern works on one arena (the allocator's SharedArrayBuffer) and
  one control buffer (a second SharedArrayBuffer, laid out by `CtlLayout`)
  that holds what the workers share besides the arena:

    ┌────────┬─────────┬─────────┬──────────────┬──────────┬──────────────┬─────────────┐
    │ abort  │ barrier │ rounds  │ ops[workers] │ transfer │ larson lanes │ rings       │
    │ 1 line │ 1 line  │ 1 line  │ 1 line each  │ 1000     │ workers×1000 │ ⌈workers/2⌉ │
    └────────┴─────────┴─────────┴──────────────┴──────────┴──────────────┴─────────────┘

  (a "line" is 16 words = 64 bytes, so counters written by different threads
  do not share a cache line). Slots hold block offsets as int32 (read back
  with `>>> 0`); 0 is an empty slot.

  A piscina task runs a run of rounds for one logical thread `tid`; the
  tasks meet at a barrier after each round, and the last to arrive does the
  between-round part (mimalloc's main thread: free half the transfer array)
  before it releases the others — see `runTask`.

  Patterns (one call = one "round" of one logical thread `tid`):
    mimalloc-stress    port of mimalloc's test/test-stress.c `stress(tid)`
    larson             server pattern: replace random blocks of a lane that
                       outlives the task, sometimes in another worker's lane
    producer-consumer  SPSC rings of 4096 slots: one side allocates, the
                       other verifies and frees
    churn              1000 private live blocks, free one, allocate another

  Every block carries a pattern that is verified before it is freed; a
  mismatch throws a StressFailure naming the block, the word, what was
  expected and what was found.
---------------------------------------------------------------------------- */

import { threadId } from 'node:worker_threads'
import { AllocatorError, type Arena, type Heap } from '../src/index.js'

export const PATTERNS = ['mimalloc-stress', 'larson', 'producer-consumer', 'churn'] as const
export type PatternName = typeof PATTERNS[number]

/* ----- Control buffer layout ------------------------------------------------------ */

/** Words per 64-byte cache line. */
const LINE = 16
/** Set to 1 by whoever fails first; every task polls it and stops. */
export const CTL_ABORT = 0
/** Start barrier of producer-consumer rounds and of pool warm-up (reset by the main thread). */
export const CTL_BARRIER = LINE
/** Always 0: a word to `Atomics.wait` on for a short sleep. */
const CTL_SLEEP = LINE + 1
/*
  The round barrier (see `endRound`). ARRIVED and GEN are written with
  Atomics only: a task reads GEN, then adds itself to ARRIVED; the task that
  makes ARRIVED reach `workers` is the leader: it does the between-round
  part, sets ARRIVED back to 0, writes MORE, then adds 1 to GEN and notifies.
  The others wait for GEN to change, then read MORE (written before GEN, so
  seen after it).
*/
/** Tasks that finished the running round. */
const CTL_ARRIVED = 2 * LINE
/** Round barrier generation: +1 (and notify) when a round is over for all tasks. */
const CTL_GEN = 2 * LINE + 1
/** 1 if another round follows the one that just ended, else 0 (leader writes, before GEN). */
const CTL_MORE = 2 * LINE + 2
/** Rounds completed, between-round part included (leader increments; the main thread reads). */
export const CTL_ROUNDS_DONE = 2 * LINE + 3
/** Set to 1 by the main thread when the time budget is spent: the round running is the last. */
export const CTL_STOP = 2 * LINE + 4
/** Generator state of the between-round part (mimalloc's main thread), carried from round to round; 0 at first. */
const CTL_MAIN_RNG = 2 * LINE + 5
/** First per-task ops counter (task `tid` at CTL_OPS + tid * LINE), for progress. */
const CTL_OPS = 3 * LINE

/** Slots of mimalloc-stress's shared transfer array (mimalloc's TRANSFERS). */
export const TRANSFERS = 1000
/** Slots per larson lane. */
export const LARSON_SLOTS = 1000
/** Slots per producer-consumer ring (a power of two). */
export const RING_SIZE = 4096
const RING_MASK = RING_SIZE - 1
/** Ring words: head (producer writes), tail (consumer writes), done flag, slots. */
const RING_HEAD = 0
const RING_TAIL = LINE
const RING_DONE = 2 * LINE
const RING_SLOTS = 3 * LINE
const RING_WORDS = RING_SLOTS + RING_SIZE

const roundUp = (n: number): number => Math.ceil(n / LINE) * LINE

/** Word offsets of each region of the control buffer for `workers` tasks per round. */
export class CtlLayout {
  readonly workers: number
  readonly transfer: number
  readonly lanes: number
  readonly rings: number
  readonly ringCount: number
  /** Words in the whole buffer. */
  readonly words: number

  constructor(workers: number) {
    this.workers = workers
    this.transfer = CTL_OPS + workers * LINE
    this.lanes = roundUp(this.transfer + TRANSFERS)
    this.rings = roundUp(this.lanes + workers * LARSON_SLOTS)
    this.ringCount = Math.ceil(workers / 2)
    this.words = this.rings + this.ringCount * RING_WORDS
  }

  /** Word of task `tid`'s ops counter. */
  opsWord(tid: number): number { return CTL_OPS + tid * LINE }
  /** First word of ring `ring`. */
  ring(ring: number): number { return this.rings + ring * RING_WORDS }
}

/** A new control buffer for `workers` tasks per round. */
export function createCtl(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(new CtlLayout(workers).words * 4)
}

/** Producer-consumer role of task `tid`: pairs share a ring; an odd last task plays both sides of its own ring. */
export function pcRole(tid: number, workers: number): { ring: number, role: 'producer' | 'consumer' | 'both' } {
  const ring = tid >>> 1
  if (workers % 2 === 1 && tid === workers - 1) return { ring, role: 'both' }
  return { ring, role: (tid & 1) === 0 ? 'producer' : 'consumer' }
}

/* ----- Tasks, results, failures ----------------------------------------------------- */

/** One task of one round, sent to a worker (the buffers are shared, never transferred). */
export interface StressTask {
  pattern: PatternName | 'ping'
  /** Identifies the arena, so a worker attaches once per arena. */
  arenaId: number
  buffer: SharedArrayBuffer
  ctl: SharedArrayBuffer
  workers: number
  /** The logical thread: 0 … workers-1. */
  tid: number
  /** The first round this task runs. */
  round: number
  /** Rounds to run; 0: until the main thread raises CTL_STOP (at least one). */
  rounds: number
  /** The run's last round if known (mimalloc-stress frees all of the transfer array after it), else -1. */
  lastRound: number
  /** arena.check() after every this many rounds (0: never). */
  checkEvery: number
  seed: number
  scale: number
  large: boolean
  /** Test only: overwrite one word of a block this task puts in the transfer array (in round 0). */
  injectCorruption: boolean
}

export type FailureKind =
  | 'corruption' | 'allocator-error' | 'out-of-memory' | 'stall' | 'task-error'
  | 'lost-blocks' | 'check-failed' | 'abandoned' | 'heap-leak' | 'timeout' | 'unsupported'

/** What went wrong, where, with the evidence. Plain data: it crosses thread boundaries. */
export interface Failure {
  kind: FailureKind
  message: string
  /** Which thread saw it: "worker 1 (thread 3), round 7" or "main thread, …". */
  where?: string
  /** The block (byte offset in the arena). */
  ptr?: number
  /** Byte offset inside the block of the first bad word. */
  offset?: number
  expected?: number
  found?: number
  /** AllocatorError code, when the allocator threw. */
  code?: string
  round?: number
}

export interface TaskResult {
  tid: number
  threadId: number
  /** Block mallocs + frees done by this task. */
  ops: number
  /** Time in the pattern's rounds (heap creation and release included, barrier waits not). */
  ms: number
  /** Stopped early because another task failed. */
  aborted: boolean
  failure?: Failure
}

/** A failure thrown by pattern code (never by the allocator). */
export class StressFailure extends Error {
  readonly failure: Failure
  constructor(failure: Failure) {
    super(failure.message)
    this.failure = failure
  }
}

/** Thrown inside a task that saw the abort flag. */
class Aborted extends Error {}

const hex = (n: number): string => '0x' + (n >>> 0).toString(16)

/** A Failure from anything a task or the main thread caught. */
export function toFailure(e: unknown, where: string, round?: number): Failure {
  if (e instanceof StressFailure) return { ...e.failure, where: e.failure.where ?? where, round: e.failure.round ?? round }
  if (e instanceof AllocatorError) {
    const ptr = (e as { ptr?: unknown }).ptr
    return {
      kind: 'allocator-error', message: `${e.name}: ${e.message}`, where, round, code: e.code,
      ...(typeof ptr === 'number' ? { ptr } : {}),
    }
  }
  const err = e instanceof Error ? e : new Error(String(e))
  return { kind: 'task-error', message: err.stack ?? `${err.name}: ${err.message}`, where, round }
}

/** One line describing a failure, with the evidence. */
export function describeFailure(f: Failure): string {
  const parts = [`${f.kind}: ${f.message}`]
  if (f.ptr !== undefined) parts.push(`block ${hex(f.ptr)} (${f.ptr})`)
  if (f.offset !== undefined) parts.push(`at byte ${f.offset}`)
  if (f.expected !== undefined) parts.push(`expected ${hex(f.expected)}`)
  if (f.found !== undefined) parts.push(`found ${hex(f.found)}`)
  if (f.code !== undefined) parts.push(`code ${f.code}`)
  if (f.where !== undefined) parts.push(`in ${f.where}`)
  return parts.join(', ')
}

/* ----- Random numbers (mimalloc's `pick` / `chance`, 32-bit variant) ----------------- */

/** Chris Wellons' 32-bit integer hash: mimalloc's `pick` on 32-bit targets. */
export function hash32(x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x7feb352d)
  x ^= x >>> 15
  x = Math.imul(x, 0x846ca68b)
  x ^= x >>> 16
  return x >>> 0
}

/**
 * The generator state of round `round`, thread `tid`. mimalloc starts thread
 * `tid` at `(tid + 1) * 43` every round; we mix in the seed and the round so
 * that rounds differ and a seed replays. Never 0 (0 is a fixed point).
 */
export function seedState(seed: number, round: number, tid: number): number {
  return (hash32(hash32((seed ^ Math.imul(round + 1, 0x9e3779b9)) >>> 0) ^ Math.imul(tid + 1, 43)) >>> 0) || 1
}

/* ----- Per-task context ------------------------------------------------------------- */

/** What a pattern function works with: the heap, views, generator, counters. */
export class Ctx {
  readonly arena: Arena
  readonly heap: Heap
  /** The arena's words. */
  readonly i32: Int32Array
  /** The control buffer's words. */
  readonly ctl: Int32Array
  readonly layout: CtlLayout
  readonly tid: number
  /** Where failures happen ("worker 1 (thread 3), round 7"); the main thread updates it as it goes. */
  where: string
  /** Round of failures (-1: none in particular). */
  round: number
  readonly scale: number
  readonly large: boolean
  /** Generator state (see `pick`). */
  r: number
  /** Block mallocs + frees so far. */
  ops = 0
  /** Ops of this task's earlier rounds (the progress counter shows the sum). */
  private readonly opsBase: number
  inject: boolean
  private readonly opsWord: number
  private lastProgress = 0

  constructor(arena: Arena, heap: Heap, ctl: SharedArrayBuffer, o: {
    workers: number, tid: number, round: number, seed: number, scale: number, large: boolean,
    injectCorruption: boolean, where: string, opsBase?: number,
  }) {
    this.arena = arena
    this.heap = heap
    this.i32 = arena.i32
    this.ctl = new Int32Array(ctl)
    this.layout = new CtlLayout(o.workers)
    this.tid = o.tid
    this.round = o.round
    this.scale = o.scale
    this.large = o.large
    this.inject = o.injectCorruption
    this.where = o.where
    this.r = seedState(o.seed, o.round, o.tid)
    this.opsWord = o.tid >= 0 ? this.layout.opsWord(o.tid) : -1
    this.opsBase = o.opsBase ?? 0
  }

  /** Next pseudo-random uint32 (mimalloc's `pick`). */
  pick(): number {
    const x = hash32(this.r)
    this.r = x | 0 // an int32 field: a uint32 above 2^31 would make it a boxed double
    return x
  }

  /**
   * `pick() % n` for 0 < n < 2^31, computed in doubles: exact (a quotient
   * below 2^32 rounds to the right integer), and about 4 ns cheaper here
   * than the integer division V8 emits for `%`.
   */
  below(n: number): number {
    const x = this.pick()
    return x - Math.floor(x / n) * n
  }

  /** mimalloc's `chance(perc)`: `pick % 100 <= perc` (so 66 means 67%). */
  chance(perc: number): boolean {
    return this.below(100) <= perc
  }

  /** Called every ~1000 steps: publishes progress, stops if another task failed. */
  poll(): void {
    if (this.opsWord >= 0) Atomics.store(this.ctl, this.opsWord, this.opsBase + this.ops)
    if (Atomics.load(this.ctl, CTL_ABORT) !== 0) throw new Aborted()
  }

  /** A short sleep while waiting on another thread; throws after 10 s without progress. */
  backoff(spins: number, what: string): void {
    if (spins < 64) return
    const now = performance.now()
    if (spins === 64) this.lastProgress = now
    else if (now - this.lastProgress > STALL_MS) {
      this.fail({ kind: 'stall', message: `no progress for ${STALL_MS / 1000} s while ${what}` })
    }
    this.poll()
    Atomics.wait(this.ctl, CTL_SLEEP, 0, 0.05)
  }

  fail(f: Omit<Failure, 'where' | 'round'>): never {
    throw new StressFailure({ ...f, where: this.where, ...(this.round >= 0 ? { round: this.round } : {}) })
  }

  outOfMemory(size: number): never {
    this.fail({ kind: 'out-of-memory', message: `malloc(${size}) returned 0: the arena is full (raise --arena-size)` })
  }
}

/** A waiting thread gives up after this long without progress (a hang is a failure, not a wait). */
const STALL_MS = 10_000

/* ----- mimalloc-stress blocks: `items` 8-byte words of (items - i) ^ cookie ----------- */

/** mimalloc's 64-bit cookie 0xbf58476d1ce4e5b9, as the low and high 32-bit halves. */
const COOKIE_LO = 0x1ce4e5b9
const COOKIE_HI = 0xbf58476d | 0
/** Largest item count alloc_items can produce (64 words × 10000, doubled range excluded). */
const MAX_ITEMS = 64 * 10000

/**
 * mimalloc's `alloc_items`: 1% of blocks are 100× larger (with `large`, 0.1%
 * 1000× and 0.01% 10000×); calloc'd, checked zero, and filled so that 64-bit
 * word i holds `(items - i) ^ cookie`.
 */
export function allocItems(c: Ctx, items: number): number {
  if (c.chance(1)) {
    if (c.chance(1) && c.large) items *= 10000
    else if (c.chance(10) && c.large) items *= 1000
    else items *= 100
  }
  if (items >= 32 && items <= 40) items *= 2 // as mimalloc: keeps 256..320-byte blocks rarer
  if (items === 0) items = 1
  const p = c.heap.calloc(items, 8)
  if (p === 0) c.outOfMemory(items * 8)
  c.ops++
  const i32 = c.i32
  const w = p >>> 2
  for (let i = 0; i < items; i++) {
    const k = w + 2 * i
    if ((i32[k] | i32[k + 1]) !== 0) {
      c.fail({ kind: 'corruption', message: 'calloc returned a block that is not zeroed', ptr: p, offset: 8 * i, expected: 0, found: i32[k] | i32[k + 1] })
    }
    i32[k] = (items - i) ^ COOKIE_LO
    i32[k + 1] = COOKIE_HI
  }
  return p
}

/** mimalloc's `free_items`: verify every word of block `p` (0 allowed), then free it. */
export function freeItems(c: Ctx, p: number): void {
  if (p === 0) return
  const i32 = c.i32
  const w = p >>> 2
  const items = (i32[w] ^ COOKIE_LO) >>> 0
  if (i32[w + 1] !== COOKIE_HI || items === 0 || items > 2 * MAX_ITEMS || p + 8 * items > c.i32.length * 4) {
    c.fail({
      kind: 'corruption', message: 'the first word of a mimalloc-stress block is not a valid (items ^ cookie) header',
      ptr: p, offset: i32[w + 1] !== COOKIE_HI ? 4 : 0, expected: i32[w + 1] !== COOKIE_HI ? COOKIE_HI : undefined,
      found: i32[w + 1] !== COOKIE_HI ? i32[w + 1] : i32[w],
    })
  }
  for (let i = 1; i < items; i++) {
    const k = w + 2 * i
    const lo = (items - i) ^ COOKIE_LO
    if (i32[k] !== lo) c.fail({ kind: 'corruption', message: 'block content changed while it was live', ptr: p, offset: 8 * i, expected: lo, found: i32[k] })
    if (i32[k + 1] !== COOKIE_HI) c.fail({ kind: 'corruption', message: 'block content changed while it was live', ptr: p, offset: 8 * i + 4, expected: COOKIE_HI, found: i32[k + 1] })
  }
  c.heap.free(p)
  c.ops++
}

/** Test only: flips a bit in the last word of mimalloc-stress block `p`. */
function corruptItems(c: Ctx, p: number): void {
  const w = p >>> 2
  const items = (c.i32[w] ^ COOKIE_LO) >>> 0
  c.i32[w + 2 * (items - 1) + 1] ^= 0x40
}

/* ----- Tagged blocks (larson, producer-consumer, churn) ------------------------------ */

/*
  ┌─────────────────┬──────┬──────────────────┬─────┬───────────────────────────┐
  │ size ^ TAG_KEY  │ tag  │ tag + 2·GOLDEN   │ …   │ tag + (size/4 - 1)·GOLDEN │
  └─────────────────┴──────┴──────────────────┴─────┴───────────────────────────┘
  32-bit words; the last size % 4 bytes are not checked. size ≥ 8.
*/
const TAG_KEY = 0x5ab3a110
const GOLDEN = 0x9e3779b1 | 0

/** Mallocs `size` bytes and fills them with the tagged pattern of `tag`. */
export function mallocTagged(c: Ctx, size: number, tag: number): number {
  const p = c.heap.malloc(size)
  if (p === 0) c.outOfMemory(size)
  c.ops++
  const i32 = c.i32
  const w = p >>> 2
  const n = size >>> 2
  i32[w] = size ^ TAG_KEY
  i32[w + 1] = tag
  for (let i = 2; i < n; i++) i32[w + i] = tag + Math.imul(i, GOLDEN)
  return p
}

/** Verifies tagged block `p` (its size within min..max), frees it, returns its tag. */
export function freeTagged(c: Ctx, p: number, min: number, max: number): number {
  const i32 = c.i32
  const w = p >>> 2
  const size = i32[w] ^ TAG_KEY
  if (size < min || size > max) {
    c.fail({ kind: 'corruption', message: `the size word of a tagged block is not a size in ${min}..${max}`, ptr: p, offset: 0, found: i32[w] })
  }
  const tag = i32[w + 1]
  const n = size >>> 2
  for (let i = 2; i < n; i++) {
    const v = tag + Math.imul(i, GOLDEN) | 0
    if (i32[w + i] !== v) c.fail({ kind: 'corruption', message: 'block content changed while it was live', ptr: p, offset: 4 * i, expected: v, found: i32[w + i] })
  }
  c.heap.free(p)
  c.ops++
  return tag
}

/* ----- mimalloc-stress ---------------------------------------------------------------- */

/**
 * mimalloc's `stress(tid)`: an allocation budget of 100·scale·(tid % 8 + 1)
 * transient blocks of 1..16 words, plus half as many retained blocks of
 * 1..64 words kept until the end. Each step also frees a random transient
 * block (67%) and swaps one with a random slot of the shared transfer array
 * (26%), so blocks move between threads and rounds. The `data` and
 * `retained` arrays live in the arena too (grown with realloc, as in C).
 */
function mimallocStress(c: Ctx): void {
  const heap = c.heap
  const i32 = c.i32
  const ctl = c.ctl
  const transfer = c.layout.transfer
  let allocs = 100 * c.scale * (c.tid % 8 + 1)
  let retain = allocs >>> 1
  let data = 0
  let dataSize = 0
  let dataTop = 0
  const retained = heap.calloc(retain, 4)
  if (retained === 0) c.outOfMemory(retain * 4)
  let retainTop = 0
  let steps = 0
  while (allocs > 0 || retain > 0) {
    if ((++steps & 1023) === 0) c.poll()
    if (retain === 0 || (c.chance(50) && allocs > 0)) {
      // 50%+ a transient block
      allocs--
      if (dataTop >= dataSize) {
        dataSize += 100000
        data = heap.realloc(data, dataSize * 4)
        if (data === 0) c.outOfMemory(dataSize * 4)
      }
      i32[(data >>> 2) + dataTop++] = allocItems(c, 1 << c.below(5))
    } else {
      // a retained block
      i32[(retained >>> 2) + retainTop++] = allocItems(c, 1 << c.below(7))
      retain--
    }
    if (c.chance(66) && dataTop > 0) {
      const k = (data >>> 2) + c.below(dataTop)
      freeItems(c, i32[k] >>> 0)
      i32[k] = 0
    }
    if (c.chance(25) && dataTop > 0) {
      const k = (data >>> 2) + c.below(dataTop)
      const t = transfer + c.below(TRANSFERS)
      if (c.inject && i32[k] !== 0) {
        corruptItems(c, i32[k] >>> 0)
        c.inject = false
      }
      i32[k] = Atomics.exchange(ctl, t, i32[k])
    }
  }
  c.arena.stats() // raises the arena's peak-live-bytes mark at this thread's high point
  for (let i = 0; i < retainTop; i++) freeItems(c, i32[(retained >>> 2) + i] >>> 0)
  for (let i = 0; i < dataTop; i++) freeItems(c, i32[(data >>> 2) + i] >>> 0)
  heap.free(retained)
  heap.free(data)
}

/**
 * The main thread's part of mimalloc's `test_stress` between rounds: free
 * each transfer slot with 50% chance, or all of them (`all`).
 */
export function freeTransfers(c: Ctx, all: boolean): void {
  const base = c.layout.transfer
  for (let i = 0; i < TRANSFERS; i++) {
    if (c.chance(50) || all) freeItems(c, Atomics.exchange(c.ctl, base + i, 0) >>> 0)
  }
}

/* ----- larson ------------------------------------------------------------------------- */

const LARSON_MIN = 16
const LARSON_MAX = 1024

/**
 * Larson's server pattern: a task owns lane (tid + round) % workers, whose
 * slots outlive it (the next round hands the lane to another task, on any
 * worker, with a fresh heap). Each step allocates a block of 16..1024 bytes
 * and exchanges it into a random slot, freeing what was there; one step in
 * 16 targets another task's lane instead, handing the block over directly.
 */
function larson(c: Ctx): void {
  const workers = c.layout.workers
  const lanes = c.layout.lanes
  const lane = (c.tid + c.round) % workers
  const steps = 200 * c.scale
  for (let s = 0; s < steps; s++) {
    if ((s & 1023) === 1023) c.poll()
    const target = (c.pick() & 15) === 0 ? c.below(workers) : lane
    const slot = lanes + target * LARSON_SLOTS + c.below(LARSON_SLOTS)
    const size = LARSON_MIN + c.below(LARSON_MAX - LARSON_MIN + 1)
    const p = mallocTagged(c, size, c.pick() | 0)
    const old = Atomics.exchange(c.ctl, slot, p) >>> 0
    if (old !== 0) freeTagged(c, old, LARSON_MIN, LARSON_MAX)
  }
}

/** Main thread, end of larson: verify and free every block left in the lanes. */
export function freeLanes(c: Ctx): void {
  const base = c.layout.lanes
  for (let i = 0; i < c.layout.workers * LARSON_SLOTS; i++) {
    const p = Atomics.exchange(c.ctl, base + i, 0) >>> 0
    if (p !== 0) freeTagged(c, p, LARSON_MIN, LARSON_MAX)
  }
}

/* ----- producer-consumer ---------------------------------------------------------------- */

const PC_MIN = 64
const PC_MAX = 1024
/** The producer publishes its head every this many blocks. */
const PUBLISH_EVERY = 16

/**
 * A pair of tasks shares a single-producer single-consumer ring of 4096
 * slots: the producer allocates and fills 200·scale blocks of 64..1024
 * bytes, the consumer verifies and frees them (every free is cross-thread).
 * Head and tail are free-running counters; the slots are plain words whose
 * writes are ordered by the Atomics.store of head (and of tail the other way).
 * An odd last task produces and consumes on its own ring.
 */
function producerConsumer(c: Ctx): void {
  barrier(c.ctl, c.layout.workers, c.where, c.round)
  const { ring, role } = pcRole(c.tid, c.layout.workers)
  const base = c.layout.ring(ring)
  const count = 200 * c.scale
  if (role === 'producer') {
    produce(c, base, count)
    Atomics.store(c.ctl, base + RING_DONE, 1)
  } else if (role === 'consumer') {
    consume(c, base, true)
  } else {
    for (let left = count; left > 0; left -= RING_SIZE) {
      produce(c, base, Math.min(left, RING_SIZE))
      consume(c, base, false)
    }
  }
}

function produce(c: Ctx, base: number, count: number): void {
  const ctl = c.ctl
  let head = Atomics.load(ctl, base + RING_HEAD)
  let tail = Atomics.load(ctl, base + RING_TAIL)
  for (let i = 0; i < count; i++) {
    if ((i & 1023) === 1023) { Atomics.store(ctl, base + RING_HEAD, head); c.poll() }
    for (let spins = 0; ((head - tail) >>> 0) >= RING_SIZE; spins++) {
      Atomics.store(ctl, base + RING_HEAD, head)
      c.backoff(spins, 'waiting for room in a producer-consumer ring')
      tail = Atomics.load(ctl, base + RING_TAIL)
    }
    const p = mallocTagged(c, PC_MIN + c.below(PC_MAX - PC_MIN + 1), c.pick() | 0)
    ctl[base + RING_SLOTS + (head & RING_MASK)] = p
    head = (head + 1) | 0
    if ((head & (PUBLISH_EVERY - 1)) === 0) Atomics.store(ctl, base + RING_HEAD, head)
  }
  Atomics.store(ctl, base + RING_HEAD, head)
}

/** Verifies and frees what the ring holds; `untilDone`: keep going until the producer is done. */
function consume(c: Ctx, base: number, untilDone: boolean): void {
  const ctl = c.ctl
  let tail = Atomics.load(ctl, base + RING_TAIL)
  for (let spins = 0; ; spins++) {
    const head = Atomics.load(ctl, base + RING_HEAD)
    if (head === tail) {
      if (!untilDone || (Atomics.load(ctl, base + RING_DONE) !== 0 && Atomics.load(ctl, base + RING_HEAD) === tail)) return
      c.backoff(spins, 'waiting for blocks in a producer-consumer ring')
      continue
    }
    spins = -1
    while (tail !== head) {
      freeTagged(c, ctl[base + RING_SLOTS + (tail & RING_MASK)] >>> 0, PC_MIN, PC_MAX)
      tail = (tail + 1) | 0
      if ((tail & 1023) === 0) { Atomics.store(ctl, base + RING_TAIL, tail); c.poll() }
    }
    Atomics.store(ctl, base + RING_TAIL, tail)
  }
}

/** Main thread, before a producer-consumer round: clear the done flags. */
export function resetRings(ctl: Int32Array, layout: CtlLayout): void {
  for (let r = 0; r < layout.ringCount; r++) Atomics.store(ctl, layout.ring(r) + RING_DONE, 0)
}

/** Main thread, end of producer-consumer: verify and free what the rings still hold. */
export function freeRings(c: Ctx): void {
  for (let r = 0; r < c.layout.ringCount; r++) {
    const base = c.layout.ring(r)
    let tail = Atomics.load(c.ctl, base + RING_TAIL)
    const head = Atomics.load(c.ctl, base + RING_HEAD)
    while (tail !== head) {
      freeTagged(c, c.ctl[base + RING_SLOTS + (tail & RING_MASK)] >>> 0, PC_MIN, PC_MAX)
      tail = (tail + 1) | 0
    }
    Atomics.store(c.ctl, base + RING_TAIL, tail)
  }
}

/**
 * Waits until `n` tasks have arrived (the main thread resets the counter
 * before each round). Producer and consumer must run at the same time; a
 * pool that queued both on one worker would deadlock, so this fails instead.
 */
export function barrier(ctl: Int32Array, n: number, where: string, round: number): void {
  Atomics.add(ctl, CTL_BARRIER, 1)
  Atomics.notify(ctl, CTL_BARRIER)
  const t0 = performance.now()
  for (let seen = Atomics.load(ctl, CTL_BARRIER); seen < n; seen = Atomics.load(ctl, CTL_BARRIER)) {
    if (Atomics.load(ctl, CTL_ABORT) !== 0) throw new Aborted()
    if (performance.now() - t0 > STALL_MS) {
      throw new StressFailure({
        kind: 'stall', where, round,
        message: `only ${seen} of ${n} tasks started together within ${STALL_MS / 1000} s (is the pool smaller than --workers?)`,
      })
    }
    Atomics.wait(ctl, CTL_BARRIER, seen, 5)
  }
}

/* ----- churn -------------------------------------------------------------------------- */

const CHURN_LIVE = 1000
const CHURN_MIN = 16
const CHURN_MAX = 1024

/**
 * Independent per-task churn, the scaling baseline: 1000 private live
 * blocks; 400·scale times free a random one and allocate 16..1024 bytes.
 * The task remembers each block's tag, so a block handed out twice shows.
 */
function churn(c: Ctx): void {
  const ptrs = new Uint32Array(CHURN_LIVE)
  const tags = new Int32Array(CHURN_LIVE)
  for (let i = 0; i < CHURN_LIVE; i++) churnAlloc(c, ptrs, tags, i)
  const steps = 400 * c.scale
  for (let s = 0; s < steps; s++) {
    if ((s & 1023) === 1023) c.poll()
    const i = c.below(CHURN_LIVE)
    churnFree(c, ptrs, tags, i)
    churnAlloc(c, ptrs, tags, i)
  }
  for (let i = 0; i < CHURN_LIVE; i++) churnFree(c, ptrs, tags, i)
}

function churnAlloc(c: Ctx, ptrs: Uint32Array, tags: Int32Array, i: number): void {
  const tag = c.pick() | 0
  ptrs[i] = mallocTagged(c, CHURN_MIN + c.below(CHURN_MAX - CHURN_MIN + 1), tag)
  tags[i] = tag
}

function churnFree(c: Ctx, ptrs: Uint32Array, tags: Int32Array, i: number): void {
  const p = ptrs[i]
  const tag = c.i32[(p >>> 2) + 1]
  if (tag !== tags[i]) {
    c.fail({ kind: 'corruption', message: 'a private block now holds another block\'s tag (handed out twice?)', ptr: p, offset: 4, expected: tags[i], found: tag })
  }
  freeTagged(c, p, CHURN_MIN, CHURN_MAX)
}

/* ----- Running one task ------------------------------------------------------------------ */

const RUN: Record<PatternName, (c: Ctx) => void> = {
  'mimalloc-stress': mimallocStress,
  larson,
  'producer-consumer': producerConsumer,
  churn,
}

/**
 * Runs a task: rounds `task.round`, … of logical thread `task.tid`, each
 * as a fresh logical thread (`runRound`), meeting the other tasks at the
 * round barrier after each (`endRound`). Never throws: a failure is
 * returned, and the abort flag is raised so the other tasks stop.
 */
export function runTask(arena: Arena, task: StressTask): TaskResult {
  const result: TaskResult = { tid: task.tid, threadId, ops: 0, ms: 0, aborted: false }
  const ctl = new Int32Array(task.ctl)
  if (task.pattern === 'ping') {
    // pool warm-up: every worker is up and has loaded this module
    const t0 = performance.now()
    const where = `worker ${task.tid} (thread ${threadId}), warm-up`
    try {
      barrier(ctl, task.workers, where, task.round)
    } catch (e) {
      if (e instanceof Aborted) result.aborted = true
      else result.failure = toFailure(e, where, task.round)
    }
    result.ms = performance.now() - t0
    return result
  }
  for (let round = task.round; ; round++) {
    runRound(arena, task, round, ctl, result)
    if (result.failure !== undefined || result.aborted) return result
    if (!endRound(arena, task, round, ctl, result)) return result
  }
}

/**
 * One round of one logical thread: a new heap, the pattern, `heap.release()`
 * (which abandons segments that still hold blocks, for other heaps to
 * reclaim). Adds its ops and time to `result`; records a failure there.
 */
function runRound(arena: Arena, task: StressTask, round: number, ctl: Int32Array, result: TaskResult): void {
  const t0 = performance.now()
  const where = `worker ${task.tid} (thread ${threadId}), round ${round}`
  onFreshHeap(arena, ctl, result, where, round, (heap) => {
    const c = new Ctx(arena, heap, task.ctl, { ...task, round, where, injectCorruption: task.injectCorruption && round === 0, opsBase: result.ops })
    try {
      RUN[task.pattern as PatternName](c)
    } finally {
      result.ops += c.ops
    }
  })
  result.ms += performance.now() - t0
}

/** Runs `fn` on a new heap, then releases the heap; a failure of either goes to `result`. */
function onFreshHeap(arena: Arena, ctl: Int32Array, result: TaskResult, where: string, round: number, fn: (heap: Heap) => void): void {
  let heap: Heap | undefined
  try {
    heap = arena.createHeap()
    fn(heap)
  } catch (e) {
    fail(ctl, result, e, where, round)
  }
  try {
    heap?.release()
  } catch (e) {
    fail(ctl, result, e, `${where}, heap.release()`, round)
  }
}

/** Records the first failure of a task (an abort is not one) and raises the abort flag. */
function fail(ctl: Int32Array, result: TaskResult, e: unknown, where: string, round: number): void {
  if (e instanceof Aborted) {
    result.aborted = true
    return
  }
  if (result.failure === undefined) result.failure = toFailure(e, where, round)
  Atomics.store(ctl, CTL_ABORT, 1)
}

/**
 * The round barrier: returns whether another round follows. The last task
 * to arrive (the leader) does the between-round part while the others wait
 * — so it runs, as in mimalloc, when no logical thread is running — decides
 * whether the run goes on, and releases them. The leader goes on without a
 * wake-up; the others are woken by `Atomics.notify`.
 */
function endRound(arena: Arena, task: StressTask, round: number, ctl: Int32Array, result: TaskResult): boolean {
  const gen = Atomics.load(ctl, CTL_GEN) // before arriving: the leader may bump it right after
  if (Atomics.add(ctl, CTL_ARRIVED, 1) + 1 === task.workers) {
    betweenRounds(arena, task, round, ctl, result)
    const last = task.rounds > 0 ? round === task.round + task.rounds - 1 : Atomics.load(ctl, CTL_STOP) !== 0
    const more = result.failure === undefined && !last && Atomics.load(ctl, CTL_ABORT) === 0
    Atomics.add(ctl, CTL_ROUNDS_DONE, 1)
    Atomics.store(ctl, CTL_ARRIVED, 0)
    Atomics.store(ctl, CTL_MORE, more ? 1 : 0)
    Atomics.add(ctl, CTL_GEN, 1)
    Atomics.notify(ctl, CTL_GEN)
    return more
  }
  // no stall limit here: a round of another task may take long; a hang is the main thread's round timeout
  while (Atomics.load(ctl, CTL_GEN) === gen) {
    if (Atomics.load(ctl, CTL_ABORT) !== 0) {
      result.aborted = true
      return false
    }
    Atomics.wait(ctl, CTL_GEN, gen, 50)
  }
  return Atomics.load(ctl, CTL_MORE) === 1
}

/**
 * mimalloc's main thread between rounds (mimalloc-stress: free each
 * transfer slot with 50% chance, all of them after the run's last round),
 * `arena.check()` every `checkEvery` rounds, and the next round's shared
 * state. Runs in the leader, on a heap of its own, with the generator state
 * carried in CTL_MAIN_RNG (seeded by the first round's leader).
 */
function betweenRounds(arena: Arena, task: StressTask, round: number, ctl: Int32Array, result: TaskResult): void {
  const where = `worker ${task.tid} (thread ${threadId}), between rounds ${round} and ${round + 1}`
  const layout = new CtlLayout(task.workers)
  if (task.pattern === 'mimalloc-stress') {
    onFreshHeap(arena, ctl, result, where, round, (heap) => {
      const c = new Ctx(arena, heap, task.ctl, { ...task, tid: -1, round, where, injectCorruption: false })
      const saved = Atomics.load(ctl, CTL_MAIN_RNG) // 0 before the first round (0 is no state: hash32's fixed point)
      if (saved !== 0) c.r = saved
      freeTransfers(c, round === task.lastRound)
      Atomics.store(ctl, CTL_MAIN_RNG, c.r)
    })
  }
  if (task.checkEvery > 0 && (round + 1) % task.checkEvery === 0) {
    try {
      arena.check()
    } catch (e) {
      fail(ctl, result, e, where, round)
    }
  }
  Atomics.store(ctl, CTL_BARRIER, 0)
  if (task.pattern === 'producer-consumer') resetRings(ctl, layout)
}

/** Raises the abort flag (main thread: a task failed or a round timed out). */
export function raiseAbort(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_ABORT, 1)
}

/** Progress of the running tasks: the sum of their ops counters. */
export function taskOps(ctl: Int32Array, layout: CtlLayout): number {
  let n = 0
  for (let t = 0; t < layout.workers; t++) n += Atomics.load(ctl, layout.opsWord(t))
  return n
}

/** Main thread, before it starts tasks: clear the ops counters, the barriers and the stop flag. */
export function resetTasks(ctl: Int32Array, layout: CtlLayout): void {
  for (let t = 0; t < layout.workers; t++) Atomics.store(ctl, layout.opsWord(t), 0)
  Atomics.store(ctl, CTL_BARRIER, 0)
  Atomics.store(ctl, CTL_ARRIVED, 0)
  Atomics.store(ctl, CTL_STOP, 0)
}
