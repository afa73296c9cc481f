/* ----------------------------------------------------------------------------
  test-common.ts — what the multi-worker tests share between the main thread
  and the workers: a seeded PRNG, the byte pattern written into every block,
  the request/reply loop a worker serves, and Atomics flags and barriers
  (always with a deadline, so a broken test fails instead of hanging).
---------------------------------------------------------------------------- */

import { parentPort } from 'node:worker_threads'
import type { Heap } from '../src/index.js'
import { LARGE_OBJ_MAX, MEDIUM_OBJ_MAX, SMALL_OBJ_MAX } from '../src/layout.js'

/* ----- Seeded randomness ------------------------------------------------------------ */

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [lo, hi] drawn from `r`. */
export function between(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1))
}

/**
 * A request size drawn from `r`, mixing the page kinds: mostly small
 * (0..1 KiB, the direct-table path; 1 KiB..SMALL_OBJ_MAX), some medium (up
 * to MEDIUM_OBJ_MAX), a few large (up to LARGE_OBJ_MAX: a large page is a
 * whole segment) and, when `huge`, a few huge ones (LARGE_OBJ_MAX..3 MiB,
 * their own run of segments).
 */
export function drawSize(r: () => number, huge: boolean): number {
  const x = r()
  if (x < 0.7) return between(r, 0, 1024)
  if (x < 0.9) return between(r, 1025, SMALL_OBJ_MAX)
  if (x < 0.99) return between(r, SMALL_OBJ_MAX + 1, MEDIUM_OBJ_MAX)
  if (x < 0.998 || !huge) return between(r, MEDIUM_OBJ_MAX + 1, LARGE_OBJ_MAX)
  return between(r, LARGE_OBJ_MAX + 1, 3 * 1024 * 1024)
}

/** `n` request sizes from `seed` (see drawSize). */
export function mixedSizes(seed: number, n: number, huge = false): number[] {
  const r = rng(seed)
  return Array.from({ length: n }, () => drawSize(r, huge))
}

/* ----- Block pattern ---------------------------------------------------------------- */

/**
 * The pattern of the block at `p` written by the owner tagged `tag`: byte i
 * is (a + i·b) mod 256 with a and b (odd) hashed from p and tag, so two
 * overlapping blocks, or a block overwritten by allocator metadata, do not
 * verify.
 */
function patternKey(p: number, tag: number): number {
  let h = Math.imul((p >>> 3) ^ Math.imul(tag + 1, 0x85ebca6b), 0x9e3779b1)
  h ^= h >>> 16
  return Math.imul(h, 0x27d4eb2d) ^ (h >>> 13)
}

export function fillPattern(u8: Uint8Array, p: number, size: number, tag: number): void {
  const h = patternKey(p, tag)
  const a = h & 0xff
  const b = ((h >>> 8) & 0xff) | 1
  const v = blockView(u8, p, size)
  for (let i = 0; i < size; i++) v[i] = a + i * b
}

/** Index of the first byte of the block at `p` that breaks its pattern, or -1. */
export function checkPattern(u8: Uint8Array, p: number, size: number, tag: number): number {
  const h = patternKey(p, tag)
  const a = h & 0xff
  const b = ((h >>> 8) & 0xff) | 1
  const v = blockView(u8, p, size)
  for (let i = 0; i < size; i++) if (v[i] !== ((a + i * b) & 0xff)) return i
  return -1
}

/**
 * A fixed-length view of the block: on Node 20, indexing a length-tracking
 * view of a growable SharedArrayBuffer (arena.u8 of a growable arena) is about
 * 10x slower than a fixed-length one.
 */
function blockView(u8: Uint8Array, p: number, size: number): Uint8Array {
  return new Uint8Array(u8.buffer, u8.byteOffset + p, size)
}

/** Allocates a block per size (`alignment`-aligned if given) and fills it with its pattern; throws if the arena is full. */
export function allocFilled(heap: Heap, sizes: ArrayLike<number>, tag: number, alignment = 0): number[] {
  const ptrs: number[] = []
  for (let i = 0; i < sizes.length; i++) {
    const p = alignment === 0 ? heap.malloc(sizes[i]) : heap.mallocAligned(sizes[i], alignment)
    if (p === 0) throw new Error(`heap ${heap.id}: malloc(${sizes[i]}) returned 0 (block ${i} of ${sizes.length})`)
    if (alignment !== 0 && p % alignment !== 0) throw new Error(`heap ${heap.id}: mallocAligned(${sizes[i]}, ${alignment}) = 0x${p.toString(16)} is misaligned`)
    fillPattern(heap.arena.u8, p, sizes[i], tag)
    ptrs.push(p)
  }
  return ptrs
}

/** Throws, naming the block, unless every block still holds its pattern. */
export function verifyBlocks(u8: Uint8Array, ptrs: ArrayLike<number>, sizes: ArrayLike<number>, tag: number, who: string): void {
  for (let i = 0; i < ptrs.length; i++) {
    const bad = checkPattern(u8, ptrs[i], sizes[i], tag)
    if (bad >= 0) {
      throw new Error(`${who}: block ${i} at 0x${ptrs[i].toString(16)} (${sizes[i]} bytes, tag ${tag}) is corrupt at byte ${bad}`)
    }
  }
}

/* ----- Serving operations to the main thread (see test-client.ts) --------------------- */

export type Handlers = Record<string, (arg: any) => unknown>

/**
 * Answers {id, op, arg} requests with {id, ok, value} or {id, ok: false, error}.
 * Op `exit` replies, then closes the port so the worker ends by itself.
 */
export function serve(handlers: Handlers): void {
  const port = parentPort!
  port.on('message', (msg: { id: number, op: string, arg: unknown }) => {
    if (msg.op === 'exit') {
      port.postMessage({ id: msg.id, ok: true })
      port.close()
      return
    }
    try {
      const handler = handlers[msg.op]
      if (handler === undefined) throw new Error(`unknown op '${msg.op}'`)
      port.postMessage({ id: msg.id, ok: true, value: handler(msg.arg) })
    } catch (e) {
      port.postMessage({ id: msg.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) })
    }
  })
}

/** The operations every heap-owning test worker serves. */
export function heapOps(heap: Heap, threadId: number): Handlers {
  return {
    info: () => ({ heapId: heap.id, threadId }),
    alloc: ({ sizes, tag }: { sizes: number[], tag: number }) => allocFilled(heap, sizes, tag),
    /** alloc with mallocAligned(size, alignment). */
    allocAligned: ({ sizes, alignment, tag }: { sizes: number[], alignment: number, tag: number }) => allocFilled(heap, sizes, tag, alignment),
    verify: ({ ptrs, sizes, tag }: { ptrs: number[], sizes: number[], tag: number }) => {
      verifyBlocks(heap.arena.u8, ptrs, sizes, tag, `heap ${heap.id}`)
    },
    free: ({ ptrs }: { ptrs: number[] }) => { for (const p of ptrs) heap.free(p) },
    collect: (force?: boolean) => heap.collect(force === true),
    release: () => heap.release(),
    /** alloc, but only once `parties` workers have arrived at the barrier in `ctl`. */
    allocTogether: ({ sizes, tag, ctl, parties }: { sizes: number[], tag: number, ctl: SharedArrayBuffer, parties: number }) => {
      barrier(new Int32Array(ctl), CTL_BARRIER_START, parties)
      return allocFilled(heap, sizes, tag)
    },
    /** free, but only once `parties` workers have arrived at the barrier in `ctl`. */
    freeTogether: ({ ptrs, ctl, parties }: { ptrs: number[], ctl: SharedArrayBuffer, parties: number }) => {
      barrier(new Int32Array(ctl), CTL_BARRIER_DONE, parties)
      for (const p of ptrs) heap.free(p)
    },
  }
}

/* ----- Atomics flags and barriers ------------------------------------------------------ */

/** Words of a control buffer (workerData.ctl): a worker says it is parked / the main thread lets it go. */
export const CTL_PARKED = 0
export const CTL_GO = 1
/** Words used as one-shot barriers. */
export const CTL_BARRIER_START = 2
export const CTL_BARRIER_DONE = 3
/** A worker's progress through a list (how many blocks it has freed so far). */
export const CTL_PROGRESS = 4
/** Bytes of a control buffer. */
export const CTL_BYTES = 64

/** Default deadline of every wait in a worker: long, but finite. */
export const WAIT_MS = 30_000

/** Sets word `i` of `ctl` to `v` and wakes its waiters. */
export function signal(ctl: Int32Array, i: number, v = 1): void {
  Atomics.store(ctl, i, v)
  Atomics.notify(ctl, i)
}

/** Blocks (Atomics.wait) until word `i` of `ctl` is at least `v`; throws after `ms`. */
export function waitAtLeast(ctl: Int32Array, i: number, v: number, ms = WAIT_MS): void {
  const deadline = Date.now() + ms
  for (let cur = Atomics.load(ctl, i); cur < v; cur = Atomics.load(ctl, i)) {
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ctl[${i}] ≥ ${v} (it is ${cur})`)
    Atomics.wait(ctl, i, cur, Math.min(left, 100))
  }
}

/**
 * The `k`-th meeting (k = 1, 2, …) of `n` parties at word `i` of `ctl`: a
 * reusable barrier that spins a little before sleeping, so that parties
 * running on their own cores leave it within a few hundred nanoseconds of
 * each other. Throws after `ms`.
 */
export function meet(ctl: Int32Array, i: number, n: number, k: number, ms = WAIT_MS): void {
  const target = n * k
  if (Atomics.add(ctl, i, 1) + 1 >= target) {
    Atomics.notify(ctl, i)
    return
  }
  for (let spin = 0; spin < 20_000; spin++) if (Atomics.load(ctl, i) >= target) return
  waitAtLeast(ctl, i, target, ms)
}

/** All `n` parties meet at word `i` of `ctl` (a one-shot barrier); throws after `ms`. */
export function barrier(ctl: Int32Array, i: number, n: number, ms = WAIT_MS): void {
  if (Atomics.add(ctl, i, 1) + 1 >= n) Atomics.notify(ctl, i)
  else waitAtLeast(ctl, i, n, ms)
}
