/* ----------------------------------------------------------------------------
  page.ts — a page: blocks of one size, after mimalloc's `page.c`.

  A page has three free lists, all linked through the first word of each free
  block, stored XOR-ed with the arena key (so zeroed user data never looks
  like a link, and the double-free heuristic stays cheap):

    free          owner pops here (malloc fast path)       owner only
    local_free    owner pushes its frees here              owner only
    xthread_free  other threads push here (CAS loop, push  Atomics; the owner
                  only, so no ABA); low 2 bits = delayed   takes the whole list
                  state (see layout.ts DELAYED_*)          with one CAS

  `used` counts blocks handed out, including those sitting on xthread_free;
  only the owner changes it (it subtracts what it collects). Blocks are made
  free lazily: `capacity` grows by at most MAX_EXTEND_SIZE bytes at a time
  (mi_page_extend_free), so a fresh page costs little.
---------------------------------------------------------------------------- */

import { HeapCorruptionError } from './errors.js'
import * as layout from './layout.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  BLOCK_MASK, DELAYED_FREEING, DELAYED_MASK, DELAYED_NEVER, MAX_EXTEND_SIZE, MIN_EXTEND, PAGE_AREA,
  PAGE_BIN, PAGE_BLOCK_SIZE, PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_USE, PAGE_FREE, PAGE_LOCAL_FREE,
  PAGE_NEXT, PAGE_OWNER_SHIFT, PAGE_PREV, PAGE_RESERVED, PAGE_START, PAGE_USED, PAGE_XTHREAD_FREE,
} = layout

/** Sets up a fresh page of `blockSize` blocks over [start, start+area) and makes its first blocks free. */
export function pageInit(i32: Int32Array, pd: number, owner: number, bin: number, blockSize: number,
  start: number, area: number, delayed: number): void {
  i32[pd + PAGE_FLAGS] = (owner << PAGE_OWNER_SHIFT) | PAGE_FLAG_IN_USE
  i32[pd + PAGE_BLOCK_SIZE] = blockSize
  i32[pd + PAGE_START] = start
  i32[pd + PAGE_AREA] = area
  i32[pd + PAGE_RESERVED] = Math.floor(area / blockSize)
  i32[pd + PAGE_CAPACITY] = 0
  i32[pd + PAGE_FREE] = 0
  i32[pd + PAGE_LOCAL_FREE] = 0
  i32[pd + PAGE_USED] = 0
  i32[pd + PAGE_NEXT] = 0
  i32[pd + PAGE_PREV] = 0
  i32[pd + PAGE_BIN] = bin
  // release: the page is published to other threads only through the segment
  // owner/segment map, but keep the state word's writes atomic everywhere
  Atomics.store(i32, pd + PAGE_XTHREAD_FREE, delayed)
}

/** Extends the free list of a page whose `free` list is empty by up to MAX_EXTEND_SIZE bytes of blocks. */
export function pageExtend(i32: Int32Array, key: number, pd: number): void {
  const capacity = i32[pd + PAGE_CAPACITY]
  const reserved = i32[pd + PAGE_RESERVED]
  if (capacity >= reserved) return
  const bsize = i32[pd + PAGE_BLOCK_SIZE]
  let extend = Math.max(MIN_EXTEND, Math.floor(MAX_EXTEND_SIZE / bsize))
  if (extend > reserved - capacity) extend = reserved - capacity
  const first = i32[pd + PAGE_START] + capacity * bsize
  // link first → first+bsize → … → last → (old free, which is empty)
  let b = first
  for (let i = 1; i < extend; i++) {
    const next = b + bsize
    i32[b >>> 2] = next ^ key
    b = next
  }
  i32[b >>> 2] = i32[pd + PAGE_FREE] ^ key
  i32[pd + PAGE_FREE] = first
  i32[pd + PAGE_CAPACITY] = capacity + extend
}

/* ----- Collect the local_free and xthread_free lists ------------------------- */

/**
 * Takes the page's xthread_free list (keeping the delayed state) and moves it
 * to local_free, subtracting its length from `used` (_mi_page_thread_free_collect).
 * The CAS orders the freeing threads' link writes before our reads.
 */
function pageThreadFreeCollect(i32: Int32Array, key: number, pd: number): void {
  const w = pd + PAGE_XTHREAD_FREE
  let tf = Atomics.load(i32, w)
  for (;;) {
    if ((tf & BLOCK_MASK) === 0) return
    const prev = Atomics.compareExchange(i32, w, tf, tf & DELAYED_MASK)
    if (prev === tf) break
    tf = prev
  }
  const head = tf & BLOCK_MASK
  // find the tail and count, bounded by capacity (a longer list is a cycle)
  const max = i32[pd + PAGE_CAPACITY]
  let count = 1
  let tail = head
  let next = i32[tail >>> 2] ^ key
  while (next !== 0 && count <= max) {
    count++
    tail = next
    next = i32[tail >>> 2] ^ key
  }
  if (count > max) {
    throw new HeapCorruptionError(`xthread_free list of the page at 0x${(i32[pd + PAGE_START] >>> 0).toString(16)} is longer than its capacity (cycle: a block freed twice from other threads?)`)
  }
  i32[tail >>> 2] = i32[pd + PAGE_LOCAL_FREE] ^ key
  i32[pd + PAGE_LOCAL_FREE] = head
  i32[pd + PAGE_USED] -= count
}

/**
 * Collects other threads' frees, then makes local_free the free list if free
 * is empty (or appends it when `force`) — _mi_page_free_collect.
 */
export function pageFreeCollect(i32: Int32Array, key: number, pd: number, force: boolean): void {
  // quick test with a plain (tear-free, racy) read, like mimalloc's relaxed
  // load; the CAS in pageThreadFreeCollect decides. Atomics.load is not
  // inlined by Node 20's compiler and costs ~8x a plain read.
  if ((i32[pd + PAGE_XTHREAD_FREE] & BLOCK_MASK) !== 0) pageThreadFreeCollect(i32, key, pd)
  const local = i32[pd + PAGE_LOCAL_FREE]
  if (local === 0) return
  const free = i32[pd + PAGE_FREE]
  if (free === 0) {
    i32[pd + PAGE_FREE] = local
    i32[pd + PAGE_LOCAL_FREE] = 0
  } else if (force) {
    let tail = local
    let next = i32[tail >>> 2] ^ key
    while (next !== 0) { tail = next; next = i32[tail >>> 2] ^ key }
    i32[tail >>> 2] = free ^ key
    i32[pd + PAGE_FREE] = local
    i32[pd + PAGE_LOCAL_FREE] = 0
  }
}

/* ----- Delayed-free state ------------------------------------------------------ */

/**
 * Sets the page's delayed state (_mi_page_use_delayed_free): waits while a
 * freeing thread holds DELAYED_FREEING (it pins the owner id), and leaves
 * DELAYED_NEVER alone unless `overrideNever`. Owner only.
 */
export function pageUseDelayed(i32: Int32Array, pd: number, delay: number, overrideNever: boolean): void {
  const w = pd + PAGE_XTHREAD_FREE
  let tf = Atomics.load(i32, w)
  for (;;) {
    const old = tf & DELAYED_MASK
    if (old === DELAYED_FREEING) { tf = Atomics.load(i32, w); continue } // a free is mid-push: spin
    if (old === delay || (!overrideNever && old === DELAYED_NEVER)) return
    const prev = Atomics.compareExchange(i32, w, tf, (tf & BLOCK_MASK) | delay)
    if (prev === tf) return
    tf = prev
  }
}

/** True if the page can hand out a block after collecting or extending. */
export function pageCanAllocate(i32: Int32Array, pd: number): boolean {
  return i32[pd + PAGE_FREE] !== 0 || i32[pd + PAGE_LOCAL_FREE] !== 0 ||
    i32[pd + PAGE_CAPACITY] < i32[pd + PAGE_RESERVED]
}

