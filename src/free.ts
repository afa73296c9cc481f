/* ----------------------------------------------------------------------------
  free.ts — validating and freeing blocks: the local slow path, the
  cross-thread path through xthread_free and the heap's delayed list, and the
  release-mode double-free check (after mimalloc's `alloc.c`).

  The fast path of a valid local free is `Heap.free`; everything here is the
  generic path, taken for frees into full or huge pages, frees from other
  threads, and every bad pointer (which throws before anything changes).
---------------------------------------------------------------------------- */

import type { Heap } from './heap.js'
import { DoubleFreeError, InvalidPointerError } from './errors.js'
import * as layout from './layout.js'
import { pageDesc, segWord } from './segment.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  BLOCK_MASK, DELAYED_FREEING, DELAYED_MASK, DELAYED_NO, DELAYED_USE, HEAP_DELAYED_FREE, HEAP_FREEING,
  HEAP_XFREES, PAGE_AREA, PAGE_BLOCK_SIZE, PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_FULL,
  PAGE_FLAG_IN_USE, PAGE_FREE, PAGE_LOCAL_FREE, PAGE_START, PAGE_USED, PAGE_XTHREAD_FREE, SEGMAP,
  SEGMENT_MASK, SEGMENT_SHIFT, SEG_OWNER, SEG_PAGE_SHIFT,
} = layout

/* ----- Pointer validation ---------------------------------------------------------- */

/**
 * The page descriptor of the block that starts at `p`, or a thrown
 * InvalidPointerError saying exactly what is wrong with `p`. Reads only.
 */
export function pageOfPointer(h: Heap, p: unknown): number {
  if (typeof p !== 'number') throw new InvalidPointerError(p, 'not a number')
  if (!Number.isInteger(p)) throw new InvalidPointerError(p, 'not an integer')
  const i32 = h.i32
  const length = h.arena.buffer.byteLength
  if (p < 0 || p >= length) throw new InvalidPointerError(p, `outside the arena buffer of ${length} bytes`)
  if ((p & 7) !== 0) throw new InvalidPointerError(p, 'not 8-byte aligned')
  const seg = p >>> SEGMENT_SHIFT
  const kind = Atomics.load(i32, SEGMAP + seg)
  if (kind === 0) {
    throw new InvalidPointerError(p, seg < h.arena.metaSegments ? 'inside the arena metadata' : 'in a free segment')
  }
  // a follower of a huge run: only a segment-aligned huge block starts there (its page start)
  const head = kind < 0 ? -kind : seg
  const sw = segWord(head)
  const pd = kind < 0 ? pageDesc(sw, 0) : pageDesc(sw, (p & SEGMENT_MASK) >>> i32[sw + SEG_PAGE_SHIFT])
  if (kind < 0 && p !== i32[pd + PAGE_START] >>> 0) throw new InvalidPointerError(p, `inside a huge block (it starts in segment ${-kind})`)
  if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0) {
    throw new InvalidPointerError(p, 'in a page that is not in use (never allocated, or freed already)')
  }
  const start = i32[pd + PAGE_START] >>> 0
  const bsize = i32[pd + PAGE_BLOCK_SIZE]
  if (p < start) throw new InvalidPointerError(p, 'inside a segment header')
  const idx = Math.floor((p - start) / bsize)
  if (idx * bsize !== p - start) {
    throw new InvalidPointerError(p, `not the start of a block (inside the ${bsize}-byte block at 0x${(start + idx * bsize).toString(16)})`)
  }
  if (idx >= i32[pd + PAGE_CAPACITY]) throw new InvalidPointerError(p, 'never allocated (past the initialized blocks of its page)')
  return pd
}

/* ----- Double-free check (release mode) ------------------------------------------------ */

/**
 * mimalloc's `mi_check_is_double_free`: a free block's first word is an
 * encoded link to NULL or into the same page. Only when the word decodes to
 * such a link do we scan the page's lists for `p`. Returns true if found.
 */
export function looksFree(h: Heap, pd: number, p: number): boolean {
  const i32 = h.i32
  const n = i32[p >>> 2] ^ h.key
  return n === 0 || ((n - i32[pd + PAGE_START]) >>> 0) < i32[pd + PAGE_AREA]
}

/** Scans free, local_free (owner only) and xthread_free of page `pd` for `p`. */
export function onFreeList(h: Heap, pd: number, p: number, local: boolean): boolean {
  const i32 = h.i32
  const max = i32[pd + PAGE_CAPACITY]
  if (local && (listContains(h, i32[pd + PAGE_FREE], p, max) || listContains(h, i32[pd + PAGE_LOCAL_FREE], p, max))) return true
  return listContains(h, Atomics.load(i32, pd + PAGE_XTHREAD_FREE) & BLOCK_MASK, p, max)
}

function listContains(h: Heap, head: number, p: number, max: number): boolean {
  const i32 = h.i32
  for (let b = head, n = 0; b !== 0 && n <= max; b = i32[b >>> 2] ^ h.key, n++) {
    if ((b >>> 0) === p) return true
  }
  return false
}

/* ----- Generic free ---------------------------------------------------------------- */

/**
 * Frees `p` (already a valid block start of page `pd`, segment header `sw`)
 * when the fast path does not apply: full or huge pages, other threads'
 * blocks, a released heap.
 */
export function freeGeneric(h: Heap, p: number, sw: number, pd: number): void {
  const i32 = h.i32
  if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0) pageOfPointer(h, p) // throws the precise error
  h.assertLive()
  const local = i32[sw + SEG_OWNER] === h.id
  if (looksFree(h, pd, p) && onFreeList(h, pd, p, local)) throw new DoubleFreeError(p)
  if (local) freeLocal(h, pd, p)
  else freeBlockMt(h, pd, p)
}

/** Frees a block already validated and checked (debug mode): local or cross-thread. */
export function freeBlock(h: Heap, p: number, sw: number, pd: number): void {
  h.assertLive()
  if (h.i32[sw + SEG_OWNER] === h.id) freeLocal(h, pd, p)
  else freeBlockMt(h, pd, p)
}

/** Owner frees a block of its own page: push on local_free, then retire or unfull the page. */
export function freeLocal(h: Heap, pd: number, p: number): void {
  const i32 = h.i32
  i32[p >>> 2] = i32[pd + PAGE_LOCAL_FREE] ^ h.key
  i32[pd + PAGE_LOCAL_FREE] = p
  if (--i32[pd + PAGE_USED] === 0) h.pageRetire(pd)
  else if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_FULL) !== 0) h.pageUnfull(pd)
}

/**
 * A thread that does not own the page frees `p` (_mi_free_block_mt): push it
 * on xthread_free with a CAS loop — or, on the first such free into a full
 * page (state DELAYED_USE), hand it to the owner heap's delayed list so the
 * owner learns the page has room again.
 */
function freeBlockMt(h: Heap, pd: number, p: number): void {
  const i32 = h.i32
  const key = h.key
  const w = pd + PAGE_XTHREAD_FREE
  i32[h.rec + HEAP_XFREES]++
  let tf = i32[w] // a plain first read: the CAS below decides (and returns the real value)
  let useDelayed = false
  for (;;) {
    let next: number
    if ((tf & DELAYED_MASK) === DELAYED_USE) {
      // say where we hold FREEING, so a supervisor can undo it if this thread dies inside
      useDelayed = true
      i32[h.rec + HEAP_FREEING] = pd
      next = (tf & BLOCK_MASK) | DELAYED_FREEING
    }
    else {
      i32[p >>> 2] = (tf & BLOCK_MASK) ^ key // link before publishing; the CAS orders it
      next = p | (tf & DELAYED_MASK)
    }
    const prev = Atomics.compareExchange(i32, w, tf, next)
    if (prev === tf) break
    tf = prev
  }
  if ((tf & DELAYED_MASK) !== DELAYED_USE) {
    if (useDelayed) i32[h.rec + HEAP_FREEING] = 0 // a lost CAS race had set it
    return
  }
  // DELAYED_FREEING pins the owner: it cannot abandon the page until we reset it
  const owner = Atomics.load(i32, segWord(pd >>> (SEGMENT_SHIFT - 2)) + SEG_OWNER)
  const dw = h.arena.heapRecord(owner) + HEAP_DELAYED_FREE
  let head = Atomics.load(i32, dw)
  for (;;) {
    i32[p >>> 2] = head ^ key
    const prev = Atomics.compareExchange(i32, dw, head, p | 0)
    if (prev === head) break
    head = prev
  }
  // and reset DELAYED_FREEING → DELAYED_NO
  resetFreeing(i32, pd)
  i32[h.rec + HEAP_FREEING] = 0
}

/** DELAYED_FREEING → DELAYED_NO on page `pd` (whatever blocks other threads push meanwhile). */
export function resetFreeing(i32: Int32Array, pd: number): void {
  const w = pd + PAGE_XTHREAD_FREE
  let tf = Atomics.load(i32, w)
  while ((tf & DELAYED_MASK) === DELAYED_FREEING) {
    const prev = Atomics.compareExchange(i32, w, tf, (tf & BLOCK_MASK) | DELAYED_NO)
    if (prev === tf) return
    tf = prev
  }
}
