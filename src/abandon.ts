/* ----------------------------------------------------------------------------
  abandon.ts — abandoned segments: a heap that goes away gives its segments
  with live blocks up, other heaps take them over (after mimalloc's
  `_mi_heap_collect_abandon`, `mi_segment_abandon`, `mi_segment_reclaim`).

  Ownership changes hands only through atomics: the releasing heap clears
  its page tags, stores SEG_OWNER 0 and then sets the segment's bit in the
  abandoned bitmap (Atomics.or); a reclaiming heap wins that bit with
  Atomics.and (tryClearBit) — exactly one can — which orders every write of
  the old owner before its reads, then stores its own id and tags. Before
  that, a heap looking for room may peek into an abandoned segment's header
  and page descriptors with plain reads: racy (another heap may be taking
  it over), so only a guess of which segment to try for.
---------------------------------------------------------------------------- */

import { findSetBit, setRange, tryClearBit } from './bitmap.js'
import type { Heap } from './heap.js'
import {
  ABANDONED_BITMAP, ARENA_ABANDONED_COUNT, ARENA_ABANDONED_TOTAL, ARENA_RECLAIMED_TOTAL,
  ARENA_SEGMENT_LIMIT, BIN_FULL, BIN_HUGE, BLOCK_MASK, DELAYED_NEVER, DELAYED_NO, DELAYED_USE, HEAP_DELAYED_FREE,
  HEAP_SEG_FREE_MEDIUM, HEAP_SEG_FREE_SMALL, KIND_MEDIUM, KIND_SMALL, PAGE_BIN, PAGE_FLAGS,
  PAGE_FLAG_IN_USE, PAGE_FLAG_MASK, PAGE_LOCAL_FREE, PAGE_USED, PAGE_XTHREAD_FREE, SEGMAP, SEG_KIND, SEG_NEXT,
  SEG_OWNER, SEG_PAGE_COUNT, SEG_PREV, SEG_USED_PAGES,
} from './layout.js'
import { pageCanAllocate, pageFreeCollect, pageUseDelayed } from './page.js'
import { queuePush } from './page-queue.js'
import { pageDesc, pageOfAddress, segQueuePush, segWord, segmentPageFree } from './segment.js'
import { BIN_SIZE, pageKindOf } from './size-classes.js'

/* ----- Abandon ---------------------------------------------------------------- */

/**
 * Steps 1–3 of heap.release(): stop delayed frees into the heap, put the
 * blocks already on its delayed list back on their pages, free empty pages,
 * and abandon every segment that still holds live blocks.
 *
 * It finds the heap's segments by their owner word and never follows queue
 * links, so it can finish the release of a thread that was killed in the
 * middle of an allocator call — even in the middle of release itself —
 * without touching pages that other heaps have since reclaimed.
 */
export function abandonSegments(h: Heap): void {
  const i32 = h.i32
  const segs = ownedSegments(h)
  // 1. no thread may use our delayed list from now on (waits out DELAYED_FREEING)
  for (const seg of segs) visitSegmentPages(i32, seg, (pd) => pageUseDelayed(i32, pd, DELAYED_NEVER, true))
  // 2. blocks already on it go back on their pages (no queue moves: the heap drops its queues)
  for (let b = Atomics.exchange(i32, h.rec + HEAP_DELAYED_FREE, 0); b !== 0;) {
    const next = i32[b >>> 2] ^ h.key
    const pd = pageOfAddress(i32, b >>> 0)
    i32[b >>> 2] = i32[pd + PAGE_LOCAL_FREE] ^ h.key
    i32[pd + PAGE_LOCAL_FREE] = b
    i32[pd + PAGE_USED]--
    b = next
  }
  // 3. per segment: free the empty pages; abandon what still holds blocks —
  //    owner 0 first, the abandoned bit last (its Atomics.or orders all our
  //    writes before the reclaimer's Atomics.and)
  for (const seg of segs) {
    const sw = segWord(seg)
    let emptied = false
    visitSegmentPages(i32, seg, (pd) => {
      if (emptied) return // the segment went back to the arena: not ours to read any more
      pageFreeCollect(i32, h.key, pd, true)
      if (i32[pd + PAGE_USED] !== 0) return
      emptied = i32[sw + SEG_USED_PAGES] === 1
      segmentPageFree(h.arena, 0, pd) // the last one returns the segment to the arena
    })
    if (emptied) continue
    for (let i = 0, n = i32[sw + SEG_PAGE_COUNT]; i < n; i++) i32[pageDesc(sw, i) + PAGE_FLAGS] &= PAGE_FLAG_MASK
    i32[sw + SEG_NEXT] = 0
    i32[sw + SEG_PREV] = 0
    Atomics.store(i32, sw + SEG_OWNER, 0)
    Atomics.add(i32, ARENA_ABANDONED_COUNT, 1)
    Atomics.add(i32, ARENA_ABANDONED_TOTAL, 1)
    setRange(i32, ABANDONED_BITMAP, seg, 1)
  }
}

/** Head segments whose owner word is `h`'s id. */
function ownedSegments(h: Heap): number[] {
  const i32 = h.i32
  const segs: number[] = []
  const limit = Math.min(Atomics.load(i32, ARENA_SEGMENT_LIMIT), h.segLimit)
  for (let seg = h.arena.metaSegments; seg < limit; seg++) {
    if (i32[SEGMAP + seg] > 0 && Atomics.load(i32, segWord(seg) + SEG_OWNER) === h.id) segs.push(seg)
  }
  return segs
}

/** Calls `fn` on every page in use of segment `seg`. */
function visitSegmentPages(i32: Int32Array, seg: number, fn: (pd: number) => void): void {
  const sw = segWord(seg)
  for (let i = 0, n = i32[sw + SEG_PAGE_COUNT]; i < n; i++) {
    const pd = pageDesc(sw, i)
    if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) !== 0) fn(pd)
  }
}

/* ----- Reclaim ---------------------------------------------------------------- */

/** Abandoned segments a heap looks into, at most, for one that has room for its request. */
const RECLAIM_SCAN = 32

/**
 * Heap `h` has no page of `bin` with a free block (its slow path): it
 * reclaims an abandoned segment that offers one — a page of `bin` with room,
 * or a free page slot of the bin's kind — before a fresh segment is claimed
 * (after mimalloc's `mi_segment_try_reclaim`). If none does, it reclaims the
 * first it can in bitmap order, so that abandoned segments whose blocks all
 * died keep going back to the arena. True if it reclaimed any.
 *
 * One segment at a time, not a batch: a heap that takes segments it has no
 * use for keeps their pinned pages from the heaps that would fill them.
 * Reclaiming batches of 4 instead: larson (2 workers, 4 s) peak segments /
 * peak live 5.1 against 3.0–3.4; mimalloc-stress `2 50 500` within noise
 * (medians 1.45 vs 1.40 over 5 interleaved pairs, 1.38 vs 1.39 over 9
 * bench runs).
 */
export function reclaimForBin(h: Heap, bin: number): boolean {
  if (h.i32[ARENA_ABANDONED_COUNT] === 0) return false // quick racy test
  h.sync()
  const i32 = h.i32
  const kind = pageKindOf(BIN_SIZE[bin])
  const limit = Math.min(Atomics.load(i32, ARENA_SEGMENT_LIMIT), h.segLimit) // only segments inside our views
  let from = h.arena.metaSegments
  let found = false
  for (let n = 0; n < RECLAIM_SCAN && !found; n++) {
    const seg = findSetBit(i32, ABANDONED_BITMAP, from, limit)
    if (seg < 0) break
    from = seg + 1
    found = hasRoomFor(i32, seg, bin, kind) && tryReclaim(h, seg)
  }
  return found || reclaimAbandoned(h, 1)
}

/**
 * Racy look into abandoned segment `seg` (another heap may be reclaiming it:
 * only winning its abandoned bit makes it ours, this is a guess): a free page
 * slot of `kind`, or a page of `bin` with blocks free or not yet initialized.
 */
function hasRoomFor(i32: Int32Array, seg: number, bin: number, kind: number): boolean {
  const sw = segWord(seg)
  const count = i32[sw + SEG_PAGE_COUNT]
  if (i32[sw + SEG_KIND] === kind && i32[sw + SEG_USED_PAGES] < count) return true
  for (let i = 0; i < count; i++) {
    const pd = pageDesc(sw, i)
    if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) !== 0 && i32[pd + PAGE_BIN] === bin &&
      (pageCanAllocate(i32, pd) || (i32[pd + PAGE_XTHREAD_FREE] & BLOCK_MASK) !== 0)) return true
  }
  return false
}

/** Reclaims `seg` if `h` wins its abandoned bit (exactly one heap can); true if it did. */
function tryReclaim(h: Heap, seg: number): boolean {
  const i32 = h.i32
  if (!tryClearBit(i32, ABANDONED_BITMAP, seg)) return false // another heap took it
  Atomics.sub(i32, ARENA_ABANDONED_COUNT, 1)
  Atomics.add(i32, ARENA_RECLAIMED_TOTAL, 1)
  reclaimSegment(h, seg)
  return true
}

/** Heap `h` reclaims up to `max` abandoned segments (its slow path); true if any. */
export function reclaimAbandoned(h: Heap, max: number): boolean {
  if (h.i32[ARENA_ABANDONED_COUNT] === 0) return false // quick racy test
  h.sync()
  const i32 = h.i32
  const limit = Math.min(Atomics.load(i32, ARENA_SEGMENT_LIMIT), h.segLimit) // only segments inside our views
  let n = 0
  let from = h.arena.metaSegments
  while (n < max) {
    const seg = findSetBit(i32, ABANDONED_BITMAP, from, limit)
    if (seg < 0) break
    from = seg + 1
    if (tryReclaim(h, seg)) n++
  }
  return n > 0
}

/**
 * Adopts abandoned segment `seg` (we won its abandoned bit): take ownership,
 * collect each page, free the empty ones, queue the rest.
 */
function reclaimSegment(h: Heap, seg: number): void {
  const i32 = h.i32
  const key = h.key
  const sw = segWord(seg)
  Atomics.store(i32, sw + SEG_OWNER, h.id)
  const count = i32[sw + SEG_PAGE_COUNT]
  for (let i = 0; i < count; i++) {
    const pd = pageDesc(sw, i)
    if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0) continue
    i32[pd + PAGE_FLAGS] = h.tag // ours now, not in a queue yet
    // delayed on first, so a free that races with our collect reaches us
    pageUseDelayed(i32, pd, DELAYED_USE, true)
    pageFreeCollect(i32, key, pd, false)
    if (i32[pd + PAGE_USED] === 0) {
      const last = i32[sw + SEG_USED_PAGES] === 1
      segmentPageFree(h.arena, h.rec, pd)
      if (last) return // the segment went back to the arena
      continue
    }
    const bin = i32[pd + PAGE_BIN]
    if (bin !== BIN_HUGE && pageCanAllocate(i32, pd)) {
      queuePush(i32, h.rec, bin, pd)
      pageUseDelayed(i32, pd, DELAYED_NO, false)
    } else {
      queuePush(i32, h.rec, BIN_FULL, pd)
      pageFreeCollect(i32, key, pd, false)
      if (bin !== BIN_HUGE && pageCanAllocate(i32, pd)) h.pageUnfull(pd)
    }
  }
  const kind = i32[sw + SEG_KIND]
  if ((kind === KIND_SMALL || kind === KIND_MEDIUM) && i32[sw + SEG_USED_PAGES] < count &&
    i32[sw + SEG_PREV] === 0 && i32[h.rec + (kind === KIND_SMALL ? HEAP_SEG_FREE_SMALL : HEAP_SEG_FREE_MEDIUM)] !== seg) {
    segQueuePush(i32, h.rec, seg)
  }
}
