/* ----------------------------------------------------------------------------
  heap.ts — a thread's heap, after mimalloc's `alloc.c` / `page.c` / `heap.c`.

  A heap record in the buffer is owned by exactly one thread (claimed by CAS
  in Arena.createHeap); this object is that thread's handle on it. Only the
  owner touches the record's queues and direct table and its pages' free,
  local_free, used and capacity (plain reads and writes). Other threads reach
  the heap only through its pages' xthread_free words and the record's
  delayed-free list (Atomics), see free.ts.

  malloc fast path: direct table → page → pop `free`. Everything else is in
  mallocGeneric. free fast path: validate, owner check, push `local_free`.
---------------------------------------------------------------------------- */

import type { Arena } from './arena.js'
import { AllocatorError, DoubleFreeError } from './errors.js'
import { freeGeneric, freeLocal, looksFree, onFreeList, pageOfPointer } from './free.js'
import * as layout from './layout.js'
import { abandonSegments, reclaimAbandoned, reclaimForBin } from './abandon.js'
import { fillBytes } from './fill.js'
import { pageCanAllocate, pageExtend, pageFreeCollect, pageInit, pageUseDelayed } from './page.js'
import { queueBinOf, queueFirst, queueMove, queueMoveToFront, queueOf, queuePush, queueRemove, queuesReset } from './page-queue.js'
import { pageOfAddress, segOfPage, segWord, segmentAllocHuge, segmentPageAlloc, segmentPageFree } from './segment.js'
import * as sizeClasses from './size-classes.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  ARENA_XFREES_RETIRED, BIN_FULL, BIN_HUGE, DEBUG_HEAP, DELAYED_FREEING, DELAYED_MASK, DELAYED_NO,
  DELAYED_USE, EMPTY_DIRECT, HEAP_DELAYED_FREE, HEAP_DIRECT, HEAP_FREE, HEAP_FREEING,
  HEAP_SEG_FREE_MEDIUM, HEAP_SEG_FREE_SMALL, HEAP_STATE, HEAP_THREAD_ID, HEAP_XFREES,
  LARGE_OBJ_MAX, MAX_ALIGNMENT, MAX_ALLOC_SIZE, PAGE_BIN, PAGE_BLOCK_SIZE, PAGE_AREA, PAGE_CAPACITY, PAGE_FLAGS,
  PAGE_FLAG_IN_USE, PAGE_OWNER_SHIFT, PAGE_FREE, PAGE_LOCAL_FREE, PAGE_NEXT, PAGE_START, PAGE_USED,
  PAGE_XTHREAD_FREE, QUEUE_FIRST, QUEUE_LAST, SEGMAP, SEGMENT_MASK, SEGMENT_SHIFT, SEGMENT_SIZE,
  SEG_OWNER, SEG_PAGES, SEG_SPAN, SEG_USED_PAGES, SMALL_DIRECT_MAX, SMALL_PAGE_SHIFT, MEDIUM_PAGE_SHIFT,
  PAGE_WORDS,
} = layout
const { BIN_INVERSE, BIN_SIZE, binOf, pageKindOf } = sizeClasses

/** Page shift of each segment kind (index KIND_*), so free needs no segment header read. */
const KIND_PAGE_SHIFT = Int32Array.of(0, SMALL_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, SEGMENT_SHIFT, SEGMENT_SHIFT)
/** Page starts are aligned to at least this; larger alignments use a huge segment run. */
const PAGE_START_ALIGN = 4096

export class Heap {
  /** The arena this heap allocates in. */
  readonly arena: Arena
  /** Heap id (1 … maxHeaps); -1 once released. */
  id: number
  /** @internal word offset of the heap record */
  readonly rec: number
  /** @internal views and key (copied from the arena for the fast paths; see sync) */
  i32: Int32Array
  u8: Uint8Array
  /** @internal the buffer as doubles, for 8-byte fills (fill.ts) */
  f64: Float64Array
  readonly key: number
  /** @internal segments inside our views: a pointer past them sends free to its slow path */
  segLimit: number
  /** @internal word offset of the direct table in use (the empty one once released) */
  private direct: number
  /** @internal FLAGS of this heap's pages that are in use and not full: the free fast path's test (-1 once released). */
  tag: number

  protected constructor(arena: Arena, id: number) {
    this.arena = arena
    this.id = id
    this.rec = arena.heapRecord(id)
    this.i32 = arena.i32
    this.u8 = arena.u8
    this.f64 = new Float64Array(arena.buffer, 0, this.i32.length >>> 1)
    this.segLimit = this.i32.length >>> (SEGMENT_SHIFT - 2)
    this.key = arena.key
    this.direct = this.rec + HEAP_DIRECT
    this.tag = (id << PAGE_OWNER_SHIFT) | PAGE_FLAG_IN_USE
  }

  /** @internal A handle on the freshly claimed slot `id`: resets the record. */
  static claimed(arena: Arena, id: number, thread: number): Heap {
    const h = new (this as unknown as new (arena: Arena, id: number) => Heap)(arena, id) // Heap or DebugHeap
    const i32 = arena.i32
    i32[h.rec + HEAP_THREAD_ID] = thread
    Atomics.store(i32, h.rec + HEAP_DELAYED_FREE, 0)
    i32[h.rec + HEAP_SEG_FREE_SMALL] = 0
    i32[h.rec + HEAP_SEG_FREE_MEDIUM] = 0
    i32[h.rec + HEAP_XFREES] = 0
    i32[h.rec + HEAP_FREEING] = 0
    queuesReset(i32, h.rec)
    return h
  }

  /** @internal A handle on the record of heap `id` as it is (reclaiming a dead thread's heap). */
  static adopt(arena: Arena, id: number): Heap {
    return new Heap(arena, id)
  }

  /* ----- malloc --------------------------------------------------------------- */

  /** Offset of a block of at least `size` bytes (8-aligned, 16-aligned when size ≥ 16), or 0 if the arena is full. */
  malloc(size: number): number {
    if (typeof size === 'number' && (size >>> 0) === size && size <= SMALL_DIRECT_MAX) {
      const i32 = this.i32
      const pd = i32[this.direct + ((size + 7) >>> 3)]
      const b = i32[pd + PAGE_FREE]
      if (b !== 0) {
        i32[pd + PAGE_FREE] = i32[b >>> 2] ^ this.key
        i32[b >>> 2] = 0 // a live block never looks like a free-list link (see looksFree)
        i32[pd + PAGE_USED]++
        return b >>> 0
      }
    }
    return this.mallocGeneric(size)
  }

  /** Zeroed block of `count * size` bytes, or 0 if the arena is full. */
  calloc(count: number, size: number): number {
    // two uint32s whose product malloc can serve need no other check (a released heap's malloc throws)
    if (typeof count === 'number' && typeof size === 'number' && (count >>> 0) === count && (size >>> 0) === size) {
      const total = count * size
      if (total <= MAX_ALLOC_SIZE) {
        const p = this.malloc(total)
        if (p !== 0) fillBytes(this.u8, this.f64, p, p + total, 0, 0)
        return p
      }
    }
    checkSize(count, 'calloc count')
    checkSize(size, 'calloc size')
    this.assertLive()
    const total = count * size
    if (!Number.isSafeInteger(total)) throw new RangeError(`calloc: ${count} * ${size} overflows`)
    // past the fast path: a factor beyond uint32 times 0, or larger than any block
    return total === 0 ? this.malloc(0) : 0
  }

  /**
   * Resizes the block at `ptr` (mimalloc semantics): stays in place when
   * `size` fits and uses at least half the block; else moves and copies.
   * `realloc(0, n)` is `malloc(n)`. On failure returns 0 and `ptr` stays valid.
   */
  realloc(ptr: number, size: number): number {
    checkSize(size, 'realloc size')
    this.assertLive()
    if (ptr === 0) return this.malloc(size)
    this.sync()
    const pd = pageOfPointer(this, ptr)
    // a freed block is not resized (best effort in release mode, as for free)
    if (looksFree(this, pd, ptr) && onFreeList(this, pd, ptr, this.i32[segWord(segOfPage(pd)) + SEG_OWNER] === this.id)) {
      throw new DoubleFreeError(ptr, 'realloc of a block that is free')
    }
    const usable = this.i32[pd + PAGE_BLOCK_SIZE]
    if (size <= usable && size >= usable >>> 1 && size > 0) return ptr
    const p = this.malloc(size)
    if (p === 0) return 0
    this.u8.copyWithin(p, ptr, ptr + Math.min(size, usable))
    this.free(ptr)
    return p
  }

  /** Block of `size` bytes whose offset is a multiple of `alignment` (a power of two, 8 … MAX_ALIGNMENT = 1 MiB). */
  mallocAligned(size: number, alignment: number): number {
    checkSize(size, 'mallocAligned size')
    checkAlignment(alignment)
    this.assertLive()
    if (alignment <= 16) return this.malloc(alignment === 16 && size < 16 ? 16 : size)
    const n = Math.ceil(Math.max(size, 1) / alignment) * alignment
    if (alignment <= PAGE_START_ALIGN && n <= LARGE_OBJ_MAX) {
      // a bin whose block size is a multiple of the alignment: its blocks are all aligned
      let bin = binOf(n)
      while (bin < BIN_HUGE && BIN_SIZE[bin] % alignment !== 0) bin++
      if (bin < BIN_HUGE) return this.mallocInBin(bin)
    }
    return this.mallocHuge(size, alignment, 0)
  }

  /**
   * @internal Picks up a buffer another thread (or we) grew: re-reads the
   * arena's views. Slow paths call it before touching memory they did not
   * reach through their own pages.
   */
  sync(): void {
    this.arena.refreshViews()
    if (this.i32 === this.arena.i32) return
    this.i32 = this.arena.i32
    this.u8 = this.arena.u8
    this.f64 = new Float64Array(this.arena.buffer, 0, this.i32.length >>> 1)
    this.segLimit = this.i32.length >>> (SEGMENT_SHIFT - 2)
  }

  /** @internal Everything the fast path does not handle. */
  mallocGeneric(size: number): number {
    checkSize(size, 'malloc size')
    this.assertLive()
    if (size > LARGE_OBJ_MAX) return this.mallocHuge(size, 8, 0)
    return this.mallocInBin(binOf(size))
  }

  /** @internal Pops a block from a page of `bin`, finding, reclaiming or making one (_mi_malloc_generic). */
  mallocInBin(bin: number): number {
    // no sync() here: our own pages are inside our views; reclaim and fresh
    // segments, which may lie past them, sync themselves
    this.processDelayed()
    let pd = this.findFreePage(bin)
    if (pd === 0 && reclaimForBin(this, bin)) pd = this.findFreePage(bin)
    if (pd === 0) pd = this.freshPage(bin)
    if (pd === 0) {
      this.collect()
      pd = this.findFreePage(bin)
      if (pd === 0) pd = this.freshPage(bin)
      if (pd === 0) return 0
    }
    const i32 = this.i32
    const b = i32[pd + PAGE_FREE]
    i32[pd + PAGE_FREE] = i32[b >>> 2] ^ this.key
    i32[b >>> 2] = 0
    i32[pd + PAGE_USED]++
    return b >>> 0
  }

  /**
   * First page of queue `bin` that can hand out a block (mi_page_queue_find_free_ex):
   * collects and extends as it goes, moves pages with nothing left to the full queue.
   */
  private findFreePage(bin: number): number {
    const i32 = this.i32
    const key = this.key
    let pd = queueFirst(i32, this.rec, bin)
    while (pd !== 0) {
      const next = i32[pd + PAGE_NEXT]
      pageFreeCollect(i32, key, pd, false)
      if (i32[pd + PAGE_FREE] === 0) pageExtend(i32, key, pd)
      if (i32[pd + PAGE_FREE] !== 0) {
        queueMoveToFront(i32, this.rec, bin, pd)
        return pd
      }
      this.pageToFull(pd, bin)
      if (i32[pd + PAGE_FREE] !== 0) return pd // a free raced in and pageToFull moved it back
      pd = next
    }
    return 0
  }

  /** A new page for `bin` from one of the heap's segments or a new one; 0 if the arena is full. */
  private freshPage(bin: number): number {
    const bsize = BIN_SIZE[bin]
    const pd = segmentPageAlloc(this.arena, this.id, this.rec, pageKindOf(bsize))
    if (pd === 0) return 0
    this.sync() // claiming a segment may have grown the buffer
    const i32 = this.i32
    pageInit(i32, pd, this.id, bin, bsize, i32[pd + PAGE_START], i32[pd + PAGE_AREA], DELAYED_NO)
    if (this.arena.debug) clearStaleMarks(i32, pd)
    pageExtend(i32, this.key, pd)
    queuePush(i32, this.rec, bin, pd)
    return pd
  }

  /**
   * @internal A huge block (or one with an alignment beyond page starts): its
   * own run of segments; the block starts after the header, where
   * `start + lead` is a multiple of `alignment` (segmentAllocHuge).
   */
  mallocHuge(size: number, alignment: number, lead: number): number {
    if (size > MAX_ALLOC_SIZE) return 0
    this.sync()
    this.processDelayed()
    let start = segmentAllocHuge(this.arena, this.id, size, alignment, lead)
    if (start === 0) {
      this.collect(true)
      start = segmentAllocHuge(this.arena, this.id, size, alignment, lead)
      if (start === 0) return 0
    }
    this.sync()
    const i32 = this.i32
    const pd = pageOfAddress(i32, start)
    const sw = segWord(segOfPage(pd))
    const area = (segOfPage(pd) + i32[sw + SEG_SPAN]) * SEGMENT_SIZE - start
    i32[sw + SEG_USED_PAGES] = 1
    pageInit(i32, pd, this.id, BIN_HUGE, area & ~7, start, area, DELAYED_USE)
    i32[pd + PAGE_CAPACITY] = 1
    i32[pd + PAGE_USED] = 1
    if (this.arena.debug) i32[(start >>> 2) + DEBUG_HEAP] = 0 // not a freed debug block
    queuePush(i32, this.rec, BIN_FULL, pd)
    return start
  }

  /* ----- free ---------------------------------------------------------------- */

  /**
   * Frees the block at `ptr`, allocated by any heap of the arena in any thread.
   * `free(0)` does nothing. Not a live block start → InvalidPointerError; a
   * block already free → DoubleFreeError (best effort). A rejected free changes nothing.
   * Keep it under 460 bytes of bytecode, V8's inlining limit (test/inlining.test.ts).
   */
  free(ptr: number): void {
    const i32 = this.i32
    if (typeof ptr === 'number' && (ptr >>> 0) === ptr && (ptr & 7) === 0) {
      const seg = ptr >>> SEGMENT_SHIFT
      const kind = i32[SEGMAP + seg]
      if (kind > 0 && seg < this.segLimit) {
        const sw = seg << (SEGMENT_SHIFT - 2)
        const shift = KIND_PAGE_SHIFT[kind]
        const pd = sw + SEG_PAGES + ((ptr & SEGMENT_MASK) >>> shift) * PAGE_WORDS
        const start = i32[pd + PAGE_START]
        const diff = (ptr - start) | 0
        // block index without a division: diff / blockSize rounded, then
        // verified; a negative diff never passes (the rounding truncates toward 0)
        const idx = (diff * BIN_INVERSE[i32[pd + PAGE_BIN]] + 0.5) | 0
        if (idx * i32[pd + PAGE_BLOCK_SIZE] === diff && idx < i32[pd + PAGE_CAPACITY]) {
          // owner and state in one plain read (mimalloc reads the owner relaxed):
          // only this thread ever writes its own tag into a page, so a match cannot be stale
          if (i32[pd + PAGE_FLAGS] !== this.tag) return freeGeneric(this, ptr, sw, pd)
          // a local free into a page that is neither full nor huge. mimalloc's
          // double-free heuristic: a free block's first word decodes to NULL or
          // into its page (here: within a page size of its start); only then
          // scan the lists (out of line)
          const key = this.key
          const n = i32[ptr >>> 2] ^ key
          if (n === 0 || ((n - start) >>> shift) === 0) return freeGeneric(this, ptr, sw, pd)
          i32[ptr >>> 2] = i32[pd + PAGE_LOCAL_FREE] ^ key
          i32[pd + PAGE_LOCAL_FREE] = ptr
          if (--i32[pd + PAGE_USED] === 0) this.pageRetire(pd)
          return
        }
      }
    }
    this.freeSlow(ptr)
  }

  /** A pointer the fast path refused: 0 or invalid (throws the precise error). */
  private freeSlow(ptr: number): void {
    if (ptr === 0) return
    this.sync()
    const pd = pageOfPointer(this, ptr)
    // valid after all: a segment-aligned huge block (it starts in a follower), or a page changed under a racy read
    freeGeneric(this, ptr, segWord(segOfPage(pd)), pd)
  }

  /** Bytes usable at `ptr` (at least the requested size). Invalid pointer → InvalidPointerError. */
  usableSize(ptr: number): number {
    this.assertLive()
    this.sync()
    const pd = pageOfPointer(this, ptr)
    return this.i32[pd + PAGE_BLOCK_SIZE]
  }

  /* ----- Pages: retire, full, unfull --------------------------------------------- */

  /** @internal A page whose last block was freed: keep it if it is its bin's only page, else free it (_mi_page_retire). */
  pageRetire(pd: number): void {
    const i32 = this.i32
    const bin = queueBinOf(i32, pd)
    const q = queueOf(this.rec, bin)
    if (bin !== BIN_FULL && i32[q + QUEUE_FIRST] === pd && i32[q + QUEUE_LAST] === pd) return
    this.pageFree(pd, bin)
  }

  /** Removes an empty page from queue `bin` and gives its slot back to the segment. */
  private pageFree(pd: number, bin: number): void {
    queueRemove(this.i32, this.rec, bin, pd)
    segmentPageFree(this.arena, this.rec, pd)
  }

  /**
   * Moves a page with no free block to the full queue and turns on delayed
   * free, so the first free from another thread tells us (mi_page_to_full).
   * Frees that raced with the state change are collected right after; if they
   * made room, the page goes straight back.
   */
  private pageToFull(pd: number, bin: number): void {
    const i32 = this.i32
    queueMove(i32, this.rec, bin, BIN_FULL, pd)
    pageUseDelayed(i32, pd, DELAYED_USE, false)
    pageFreeCollect(i32, this.key, pd, false)
    if (i32[pd + PAGE_FREE] !== 0) {
      this.pageUnfull(pd)
      queueMoveToFront(i32, this.rec, bin, pd)
    }
  }

  /** @internal Moves a full page back to its bin queue (_mi_page_unfull). */
  pageUnfull(pd: number): void {
    const i32 = this.i32
    pageUseDelayed(i32, pd, DELAYED_NO, false)
    queueMove(i32, this.rec, BIN_FULL, i32[pd + PAGE_BIN], pd)
  }

  /* ----- Delayed frees --------------------------------------------------------- */

  /** Frees the blocks other threads put on this heap's delayed list (_mi_heap_delayed_free_partial). */
  private processDelayed(): void {
    const i32 = this.i32
    const dw = this.rec + HEAP_DELAYED_FREE
    if (i32[dw] === 0) return // quick racy test; the exchange decides
    let b = Atomics.exchange(i32, dw, 0)
    while (b !== 0) {
      const next = i32[b >>> 2] ^ this.key
      const p = b >>> 0
      const pd = pageOfAddress(i32, p)
      // its freer pushed p and is about to reset FREEING → NO; until it has,
      // the page is not ours to move: put p back for a later pass (as mimalloc)
      if ((Atomics.load(i32, pd + PAGE_XTHREAD_FREE) & DELAYED_MASK) === DELAYED_FREEING) this.delayedPush(p)
      else {
        pageFreeCollect(i32, this.key, pd, false)
        freeLocal(this, pd, p)
      }
      b = next
    }
  }

  /** Pushes block `p` back on this heap's delayed list (CAS: freers push concurrently). */
  private delayedPush(p: number): void {
    const i32 = this.i32
    const dw = this.rec + HEAP_DELAYED_FREE
    let head = Atomics.load(i32, dw)
    for (;;) {
      i32[p >>> 2] = head ^ this.key
      const prev = Atomics.compareExchange(i32, dw, head, p | 0)
      if (prev === head) return
      head = prev
    }
  }

  /* ----- collect and release --------------------------------------------------------- */

  /**
   * Collects other threads' frees, frees empty pages and returns empty
   * segments to the arena. With `force`, also reclaims every abandoned
   * segment (freeing those that emptied) and merges each page's lists.
   */
  collect(force = false): void {
    this.assertLive()
    this.sync()
    this.processDelayed()
    if (force) while (reclaimAbandoned(this, 64)) { /* all of them */ }
    const i32 = this.i32
    for (let bin = 1; bin <= BIN_FULL; bin++) {
      let pd = queueFirst(i32, this.rec, bin)
      while (pd !== 0) {
        const next = i32[pd + PAGE_NEXT]
        pageFreeCollect(i32, this.key, pd, force)
        if (i32[pd + PAGE_USED] === 0) this.pageFree(pd, bin)
        else if (bin === BIN_FULL && i32[pd + PAGE_BIN] !== BIN_HUGE && pageCanAllocate(i32, pd)) this.pageUnfull(pd)
        pd = next
      }
    }
  }

  /**
   * The thread is done with this heap (_mi_heap_collect_abandon): empty pages
   * are freed, segments still holding live blocks are abandoned for other
   * heaps to reclaim. Blocks stay valid and freeable from any heap. Later
   * calls on this heap throw AllocatorError. Safe to run again for a thread
   * killed in the middle of it (see abandon.ts).
   */
  release(): void {
    this.assertLive()
    this.sync()
    const i32 = this.i32
    const rec = this.rec
    abandonSegments(this)
    // give the slot back
    Atomics.add(i32, ARENA_XFREES_RETIRED, i32[rec + HEAP_XFREES])
    i32[rec + HEAP_XFREES] = 0
    i32[rec + HEAP_SEG_FREE_SMALL] = 0
    i32[rec + HEAP_SEG_FREE_MEDIUM] = 0
    i32[rec + HEAP_THREAD_ID] = 0
    queuesReset(i32, rec)
    this.id = -1
    this.tag = -1
    this.direct = EMPTY_DIRECT
    Atomics.store(i32, rec + HEAP_STATE, HEAP_FREE)
  }

  /** @internal Throws if this heap was released. */
  assertLive(): void {
    if (this.id < 0) throw new AllocatorError('this heap was released', 'ERR_HEAP_RELEASED')
  }
}

/**
 * Debug mode: a fresh page may hold an old layout's freed-block marks; clear
 * the DEBUG_HEAP word of every block so none is taken for a freed block.
 */
function clearStaleMarks(i32: Int32Array, pd: number): void {
  const bsize = i32[pd + PAGE_BLOCK_SIZE]
  const start = i32[pd + PAGE_START] >>> 0
  const n = Math.floor(i32[pd + PAGE_AREA] / bsize)
  for (let i = 0; i < n; i++) i32[((start + i * bsize) >>> 2) + DEBUG_HEAP] = 0
}

/** @internal RangeError unless `size` is a non-negative safe integer. */
export function checkSize(size: number, what: string): void {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${String(size)}`)
  }
}

/** @internal RangeError unless `alignment` is a power of two in 8 … MAX_ALIGNMENT (1 MiB). */
export function checkAlignment(alignment: number): void {
  if (!Number.isInteger(alignment) || alignment < 8 || alignment > MAX_ALIGNMENT || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`mallocAligned: alignment must be a power of two in 8..${MAX_ALIGNMENT}, got ${String(alignment)}`)
  }
}
