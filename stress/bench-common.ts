/* ----------------------------------------------------------------------------
  bench-common.ts — what the benchmark's main thread and its workers share:
  the fixed-seed op streams, the timed loops (one monomorphic function per
  allocator, so no call site in a hot loop ever sees two receivers), the
  Atomics mutex behind which npm `malloc` is shared, and the layout of the
  producer → consumer ring.

  Every loop here is timed by its caller; none allocates JS objects except
  the Uint8Array + GC baseline, whose allocations are the point.
---------------------------------------------------------------------------- */

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { runInThisContext } from 'node:vm'
import type { Heap } from '../src/index.js'

/* ----- Op streams ------------------------------------------------------------------ */

/** Blocks kept live by every churn loop. */
export const CHURN_LIVE = 1000
/** Smallest and largest request of the churn workload (uniform, inclusive). */
export const CHURN_MIN_SIZE = 16
export const CHURN_MAX_SIZE = 1024

/** xorshift32: tiny, fast and the same on every thread for a given seed. */
export function xorshift32(seed: number): () => number {
  let s = (seed | 0) || 0x9e3779b9
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return s >>> 0
  }
}

/**
 * A churn op stream: the sizes of the CHURN_LIVE initial blocks, then for op
 * i the live slot to free (`slots[i]`) and the size to allocate in its place
 * (`sizes[i]`). Every allocator replays the same stream (or a prefix of it).
 */
export interface ChurnStream {
  initSizes: Int32Array
  slots: Int32Array
  sizes: Int32Array
}

export function makeChurnStream(seed: number, ops: number): ChurnStream {
  const rnd = xorshift32(seed)
  const span = CHURN_MAX_SIZE - CHURN_MIN_SIZE + 1
  const initSizes = new Int32Array(CHURN_LIVE)
  for (let i = 0; i < CHURN_LIVE; i++) initSizes[i] = CHURN_MIN_SIZE + (rnd() % span)
  const slots = new Int32Array(ops)
  const sizes = new Int32Array(ops)
  for (let i = 0; i < ops; i++) {
    slots[i] = rnd() % CHURN_LIVE
    sizes[i] = CHURN_MIN_SIZE + (rnd() % span)
  }
  return { initSizes, slots, sizes }
}

/** Nanoseconds of a monotonic, system-wide clock (comparable across threads). */
export function nowNs(): number {
  return Number(process.hrtime.bigint())
}

/* ----- Timed churn loops: free a live block, allocate one in its place --------------- */
/* Each returns the elapsed nanoseconds of exactly `n` ops of the stream. */

/** The loop with no allocator at all: the floor every figure includes. */
export function churnEmpty(live: Int32Array, slots: Int32Array, sizes: Int32Array, n: number): number {
  const t0 = nowNs()
  for (let i = 0; i < n; i++) {
    const j = slots[i]
    live[j] = (live[j] + sizes[i]) | 0
  }
  return nowNs() - t0
}

/** sabmalloc: heap.free + heap.malloc. Offsets fit an Int32Array (arenas here are < 2 GiB). */
export function churnSab(heap: Heap, live: Int32Array, slots: Int32Array, sizes: Int32Array, n: number): number {
  const t0 = nowNs()
  for (let i = 0; i < n; i++) {
    const j = slots[i]
    heap.free(live[j])
    live[j] = heap.malloc(sizes[i])
  }
  return nowNs() - t0
}

/** npm `malloc` (codemix), single-threaded. */
export function churnCodemix(a: CodemixAllocator, live: Int32Array, slots: Int32Array, sizes: Int32Array, n: number): number {
  const t0 = nowNs()
  for (let i = 0; i < n; i++) {
    const j = slots[i]
    a.free(live[j])
    live[j] = a.alloc(sizes[i])
  }
  return nowNs() - t0
}

/** npm `malloc` behind one Atomics mutex: every alloc and every free takes the lock. */
export function churnCodemixLocked(
  c: CodemixShared, lockWords: Int32Array, live: Int32Array, slots: Int32Array, sizes: Int32Array, n: number,
): number {
  const a = c.allocator
  const t0 = nowNs()
  for (let i = 0; i < n; i++) {
    const j = slots[i]
    mutexLock(lockWords)
    c.resetScratch()
    a.free(live[j])
    mutexUnlock(lockWords)
    mutexLock(lockWords)
    c.resetScratch()
    live[j] = a.alloc(sizes[i])
    mutexUnlock(lockWords)
  }
  return nowNs() - t0
}

/** The part of @thi.ng/malloc's MemPool the benchmark uses. */
export interface ThingPool {
  malloc(bytes: number): number
  free(ptr: number): boolean
}

/** @thi.ng/malloc MemPool. */
export function churnThing(pool: ThingPool, live: Int32Array, slots: Int32Array, sizes: Int32Array, n: number): number {
  const t0 = nowNs()
  for (let i = 0; i < n; i++) {
    const j = slots[i]
    pool.free(live[j])
    live[j] = pool.malloc(sizes[i])
  }
  return nowNs() - t0
}

/** `new Uint8Array(n)`, dropping the old one for the GC: what JS does without an allocator. */
export function churnUint8(live: Uint8Array[], slots: Int32Array, sizes: Int32Array, n: number): number {
  const t0 = nowNs()
  for (let i = 0; i < n; i++) live[slots[i]] = new Uint8Array(sizes[i])
  return nowNs() - t0
}

/* ----- npm `malloc` (codemix) ------------------------------------------------------- */

/** The part of codemix's Allocator the benchmark uses (the package ships no types). */
export interface CodemixAllocator {
  alloc(bytes: number): number
  free(offset: number): number
}

type CodemixCtor = new (buffer: Buffer) => CodemixAllocator
const requireCjs = createRequire(import.meta.url)
let codemixCtor: CodemixCtor | undefined

/**
 * An npm `malloc` allocator over `buffer`. Its constructor writes a header
 * unless one is there, then walks the whole free list (checkListIntegrity):
 * attaching to a buffer other threads use must happen under their lock.
 * It only accepts a Buffer or a (non-shared) ArrayBuffer, so a
 * SharedArrayBuffer goes in wrapped in a Buffer.
 */
export function codemixAllocator(buffer: ArrayBuffer | SharedArrayBuffer): CodemixAllocator {
  codemixCtor ??= requireCjs('malloc') as CodemixCtor
  return new codemixCtor(Buffer.from(buffer))
}

/**
 * npm `malloc` for several threads behind one lock. Even under a lock the
 * package is not thread-safe as published: its skip list keeps a
 * module-level scratch array `UPDATES` (one copy per thread) and relies on
 * its entries above the list height being the header, which only holds if
 * this thread made every change to the list. When another thread lowered
 * the list height, a later insert that raises it links a block after a
 * stale node ("Could not find block to remove." soon after). So this loads
 * the same file with one line added that exports `UPDATES`, and the caller
 * resets it (`resetScratch`) each time it takes the lock.
 */
export interface CodemixShared {
  allocator: CodemixAllocator
  /** Restores the scratch array's invariant; call right after taking the lock. */
  resetScratch(): void
}

let codemixPatched: { ctor: CodemixCtor, updates: Int32Array, header: number } | undefined

export function codemixSharedAllocator(buffer: SharedArrayBuffer): CodemixShared {
  if (codemixPatched === undefined) {
    const file = requireCjs.resolve('malloc/lib/index.js')
    const src = readFileSync(file, 'utf8') + '\nexports.__updates = UPDATES;\n'
    const wrapper = runInThisContext(`(function (exports, require, module, __filename, __dirname) {${src}\n})`, { filename: file }) as
      (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void
    const mod = { exports: {} as { default: CodemixCtor, __updates: Int32Array } }
    wrapper(mod.exports, requireCjs, mod, file, dirname(file))
    const updates = mod.exports.__updates
    codemixPatched = { ctor: mod.exports.default, updates, header: updates[0] } // every entry starts as the header offset
  }
  const { ctor, updates, header } = codemixPatched
  return {
    allocator: new ctor(Buffer.from(buffer)),
    resetScratch: () => { updates.fill(header) },
  }
}

/* ----- A futex-style Atomics mutex (Drepper's "mutex2") ------------------------------- */
/* word 0: 0 = free, 1 = locked, 2 = locked with (possible) waiters */

const MUTEX = 0
const MUTEX_SPINS = 100

export function mutexLock(w: Int32Array): void {
  if (Atomics.compareExchange(w, MUTEX, 0, 1) !== 0) mutexLockSlow(w)
}

function mutexLockSlow(w: Int32Array): void {
  for (let i = 0; i < MUTEX_SPINS; i++) {
    if (w[MUTEX] === 0 && Atomics.compareExchange(w, MUTEX, 0, 1) === 0) return
  }
  while (Atomics.exchange(w, MUTEX, 2) !== 0) Atomics.wait(w, MUTEX, 2)
}

export function mutexUnlock(w: Int32Array): void {
  if (Atomics.sub(w, MUTEX, 1) !== 1) {
    Atomics.store(w, MUTEX, 0)
    Atomics.notify(w, MUTEX, 1)
  }
}

/* ----- Producer → consumer ring --------------------------------------------------------- */
/*
  Int32Array over its own SharedArrayBuffer:
    [RING_HEAD]   blocks pushed so far   (producer writes, Atomics.store; consumer Atomics.load)
    [RING_TAIL]   blocks popped so far   (consumer writes, Atomics.store; producer Atomics.load)
    [RING_SLOTS_AT + (k & RING_MASK)]    the k-th block (plain writes, published by the head store)
  Head and tail sit on their own cache lines. Both sides publish their index
  every RING_BATCH blocks and before they wait, and read the other side's
  index only when their cached copy says the ring is full/empty.
*/

export const RING_SLOTS = 4096
export const RING_MASK = RING_SLOTS - 1
export const RING_HEAD = 0
export const RING_TAIL = 16
export const RING_SLOTS_AT = 32
export const RING_WORDS = RING_SLOTS_AT + RING_SLOTS
export const RING_BATCH = 64
/** Spins before a waiting side sleeps briefly (a preempted peer on a busy 2-core box). */
const RING_SPINS = 1 << 14
/** Size of every block the producer allocates. */
export const RING_BLOCK_SIZE = 64

/** Waits until the consumer has popped past `head - RING_SLOTS`; returns the tail seen. */
function waitForRoom(ring: Int32Array, head: number): number {
  Atomics.store(ring, RING_HEAD, head)
  let spins = 0
  for (;;) {
    const tail = Atomics.load(ring, RING_TAIL)
    if (head - tail < RING_SLOTS) return tail
    if (++spins > RING_SPINS) Atomics.wait(ring, RING_TAIL, tail, 0.05)
  }
}

/** Waits until the producer has pushed past `tail`; returns the head seen. */
function waitForBlocks(ring: Int32Array, tail: number): number {
  Atomics.store(ring, RING_TAIL, tail)
  let spins = 0
  for (;;) {
    const head = Atomics.load(ring, RING_HEAD)
    if (head !== tail) return head
    if (++spins > RING_SPINS) Atomics.wait(ring, RING_HEAD, head, 0.05)
  }
}

/** Producer: allocates `n` blocks of RING_BLOCK_SIZE and pushes them. */
export function produceBlocks(heap: Heap, ring: Int32Array, n: number): void {
  let head = 0
  let tail = 0
  for (let i = 0; i < n; i++) {
    const p = heap.malloc(RING_BLOCK_SIZE)
    if (head - tail >= RING_SLOTS) tail = waitForRoom(ring, head)
    ring[RING_SLOTS_AT + (head & RING_MASK)] = p
    head++
    if ((head & (RING_BATCH - 1)) === 0) Atomics.store(ring, RING_HEAD, head)
  }
  Atomics.store(ring, RING_HEAD, head)
}

/** Consumer: pops `n` blocks and frees them (cross-thread frees). Returns how many were 0. */
export function consumeBlocks(heap: Heap, ring: Int32Array, n: number): number {
  let tail = 0
  let head = 0
  let nulls = 0
  while (tail < n) {
    if (tail === head) head = waitForBlocks(ring, tail)
    const p = ring[RING_SLOTS_AT + (tail & RING_MASK)]
    if (p === 0) nulls++
    heap.free(p)
    tail++
    if ((tail & (RING_BATCH - 1)) === 0) Atomics.store(ring, RING_TAIL, tail)
  }
  Atomics.store(ring, RING_TAIL, tail)
  return nulls
}

/** Producer of the empty-ring baseline: pushes 1 … n, allocates nothing. */
export function produceNumbers(ring: Int32Array, n: number): void {
  let head = 0
  let tail = 0
  for (let i = 0; i < n; i++) {
    if (head - tail >= RING_SLOTS) tail = waitForRoom(ring, head)
    ring[RING_SLOTS_AT + (head & RING_MASK)] = i + 1
    head++
    if ((head & (RING_BATCH - 1)) === 0) Atomics.store(ring, RING_HEAD, head)
  }
  Atomics.store(ring, RING_HEAD, head)
}

/** Consumer of the empty-ring baseline: pops n numbers; returns their sum (mod 2^32) as a check. */
export function consumeNumbers(ring: Int32Array, n: number): number {
  let tail = 0
  let head = 0
  let sum = 0
  while (tail < n) {
    if (tail === head) head = waitForBlocks(ring, tail)
    sum = (sum + ring[RING_SLOTS_AT + (tail & RING_MASK)]) | 0
    tail++
    if ((tail & (RING_BATCH - 1)) === 0) Atomics.store(ring, RING_TAIL, tail)
  }
  Atomics.store(ring, RING_TAIL, tail)
  return sum
}

/** What consumeNumbers(…, n) must return. */
export function expectedRingSum(n: number): number {
  let sum = 0
  for (let i = 1; i <= n; i++) sum = (sum + i) | 0
  return sum
}

/* ----- Worker steps ---------------------------------------------------------------------- */

/** Word of a worker group's control buffer that the main thread bumps to start a step. */
export const GO = 0

/* ----- Small statistics ---------------------------------------------------------------- */

export interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return { median: NaN, min: NaN, max: NaN, samples: [] }
  const median = n % 2 === 1 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2
  return { median, min: s[0], max: s[n - 1], samples }
}
