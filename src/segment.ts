/* ----------------------------------------------------------------------------
  segment.ts — segments: SEGMENT_SIZE-aligned runs of the buffer that a heap
  owns, after mimalloc's `segment.c`.

  A segment starts with its header (layout.ts) and is cut into pages of one
  kind: 4 small pages, 2 medium pages, one large page, or one huge block over
  a run of segments. `ptr >>> SEGMENT_SHIFT` finds the segment of any pointer,
  `(ptr & SEGMENT_MASK) >>> pageShift` its page. A huge block starts in its
  head segment after the header, or — aligned to SEGMENT_SIZE or more, in
  release mode — exactly at the start of the run's second segment.

  Ownership: SEG_OWNER is the heap id of the only thread that may change the
  segment's pages; it is written with Atomics.store when the segment is
  claimed, abandoned (→ 0) or reclaimed. Frees read it (or the page tag that
  mirrors it, see PAGE_FLAGS) with a plain read to choose the local or the
  cross-thread path: only a heap writes its own id, so a match is never
  stale (mimalloc reads it relaxed). Supervisors scanning for a dead heap's
  segments use Atomics.load. All other header words are owner-only. Each heap keeps its small and medium segments that have a
  free page slot in a queue (SEG_NEXT/SEG_PREV, 0 = end).
---------------------------------------------------------------------------- */

import type { Arena } from './arena.js'
import * as layout from './layout.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  KIND_HUGE, KIND_LARGE, KIND_MEDIUM, KIND_SMALL, LARGE_PAGE_SHIFT, MEDIUM_PAGE_SHIFT, PAGE_AREA,
  PAGE_FLAGS, PAGE_START, PAGE_WORDS, SEGMENT_SHIFT, SEGMENT_SIZE, SEG_KIND, SEG_NEXT, SEG_OWNER,
  SEG_PAGES, SEG_PAGE_COUNT, SEG_PAGE_SHIFT, SEG_PREV, SEG_SPAN, SEG_USED_PAGES, SMALL_PAGE_SHIFT,
  HEAP_SEG_FREE_SMALL, HEAP_SEG_FREE_MEDIUM, SEGMAP, SEGMENT_MASK,
} = layout

/** Word offset of segment `seg`'s header. */
export function segWord(seg: number): number {
  return seg << (SEGMENT_SHIFT - 2)
}

/** Word offset of page descriptor `i` of the segment whose header is at word `sw`. */
export function pageDesc(sw: number, i: number): number {
  return sw + SEG_PAGES + i * PAGE_WORDS
}

/**
 * The page descriptor of the page holding address `p`, found through the
 * segment map; 0 if `p` is in no claimed segment. A follower of a huge run
 * resolves to its head's only page: a segment-aligned huge block starts there.
 */
export function pageOfAddress(i32: Int32Array, p: number): number {
  const seg = p >>> SEGMENT_SHIFT
  const kind = i32[SEGMAP + seg]
  if (kind === 0) return 0
  if (kind < 0) return pageDesc(segWord(-kind), 0)
  const sw = segWord(seg)
  return pageDesc(sw, (p & SEGMENT_MASK) >>> i32[sw + SEG_PAGE_SHIFT])
}

/** Segment index of the page descriptor `pd`. */
export function segOfPage(pd: number): number {
  return pd >>> (SEGMENT_SHIFT - 2)
}

function pageShiftOf(kind: number): number {
  return kind === KIND_SMALL ? SMALL_PAGE_SHIFT : kind === KIND_MEDIUM ? MEDIUM_PAGE_SHIFT : LARGE_PAGE_SHIFT
}

/** Word in the heap record of the free-slot segment queue for `kind` (small and medium only). */
function segQueueOf(rec: number, kind: number): number {
  return rec + (kind === KIND_SMALL ? HEAP_SEG_FREE_SMALL : HEAP_SEG_FREE_MEDIUM)
}

/* ----- Segment alloc and free --------------------------------------------------- */

/**
 * Claims a run of `span` segments from the arena for heap `owner` and writes
 * its header. Returns the segment index, or 0 when the arena is full.
 */
export function segmentAlloc(arena: Arena, owner: number, kind: number, span: number): number {
  const seg = arena.claimSegments(span)
  if (seg === 0) return 0
  segmentInit(arena, seg, owner, kind, span)
  return seg
}

/**
 * Claims the run of a huge block of `size` bytes whose address + `lead` is a
 * multiple of `alignment`, and writes its header; page 0 spans from the
 * header to the run's end. Returns the block's offset, or 0 when the arena is
 * full. Up to SEGMENT_SIZE the offset is the same in every segment (segment
 * starts are SEGMENT_SIZE-aligned). A larger alignment depends on where the
 * run lands, so the run is over-claimed by the alignment and trimmed after:
 * the head becomes the segment that holds `block - header size`, so the
 * block starts in the head after its header or (lead 0) at its follower's
 * start, and no segment before the head or past the block's end is kept.
 * The trimmed segments are claimed for a moment (they count in the peak).
 */
export function segmentAllocHuge(arena: Arena, owner: number, size: number, alignment: number, lead: number): number {
  const hs = arena.segHeaderSize
  // bytes from the run's start to the block's start, at most
  const offset = alignment > SEGMENT_SIZE ? alignment - lead : Math.ceil((hs + lead) / alignment) * alignment - lead
  const claim = Math.ceil((offset + Math.max(size, 1)) / SEGMENT_SIZE)
  if (claim > arena.maxSegments) return 0
  const seg = arena.claimSegments(claim)
  if (seg === 0) return 0
  const block = Math.ceil((seg * SEGMENT_SIZE + hs + lead) / alignment) * alignment - lead
  const head = (block - hs) >>> SEGMENT_SHIFT
  const end = Math.ceil((block + Math.max(size, 1)) / SEGMENT_SIZE) // one past the block's last segment
  if (head > seg) arena.unclaimSegments(seg, head - seg)
  if (seg + claim > end) arena.unclaimSegments(end, seg + claim - end)
  segmentInit(arena, head, owner, KIND_HUGE, end - head)
  return block
}

/** Writes the header of claimed segment run `seg` (`span` segments of `kind`) and publishes it. */
function segmentInit(arena: Arena, seg: number, owner: number, kind: number, span: number): void {
  const i32 = arena.i32
  const sw = segWord(seg)
  const shift = pageShiftOf(kind)
  const count = kind === KIND_SMALL || kind === KIND_MEDIUM ? SEGMENT_SIZE >>> shift : 1
  i32[sw + SEG_KIND] = kind
  i32[sw + SEG_PAGE_SHIFT] = shift
  i32[sw + SEG_PAGE_COUNT] = count
  i32[sw + SEG_USED_PAGES] = 0
  i32[sw + SEG_SPAN] = span
  i32[sw + SEG_NEXT] = 0
  i32[sw + SEG_PREV] = 0
  i32.fill(0, sw + SEG_PAGES, pageDesc(sw, count))
  const hs = arena.segHeaderSize
  for (let i = 0; i < count; i++) {
    const pd = pageDesc(sw, i)
    i32[pd + PAGE_START] = (seg << SEGMENT_SHIFT) + (i === 0 ? hs : i << shift)
    i32[pd + PAGE_AREA] = (kind === KIND_HUGE ? span << SEGMENT_SHIFT : 1 << shift) - (i === 0 ? hs : 0)
  }
  if (arena.debug) arena.clearAllocBits(seg)
  Atomics.store(i32, sw + SEG_OWNER, owner)
  arena.publishSegment(seg, kind, span)
}

/** Returns a segment with no page in use to the arena (its heap queue membership is removed first). */
function segmentFree(arena: Arena, rec: number, seg: number): void {
  const i32 = arena.i32
  const sw = segWord(seg)
  const kind = i32[sw + SEG_KIND]
  if ((kind === KIND_SMALL || kind === KIND_MEDIUM) && rec !== 0 && segInQueue(i32, rec, seg)) {
    segQueueRemove(i32, rec, seg)
  }
  Atomics.store(i32, sw + SEG_OWNER, 0)
  arena.releaseSegments(seg, i32[sw + SEG_SPAN])
}

/* ----- The heap's queue of segments with free page slots ---------------------- */

function segInQueue(i32: Int32Array, rec: number, seg: number): boolean {
  const sw = segWord(seg)
  return i32[sw + SEG_PREV] !== 0 || i32[segQueueOf(rec, i32[sw + SEG_KIND])] === seg
}

export function segQueuePush(i32: Int32Array, rec: number, seg: number): void {
  const sw = segWord(seg)
  const q = segQueueOf(rec, i32[sw + SEG_KIND])
  const first = i32[q]
  i32[sw + SEG_PREV] = 0
  i32[sw + SEG_NEXT] = first
  if (first !== 0) i32[segWord(first) + SEG_PREV] = seg
  i32[q] = seg
}

function segQueueRemove(i32: Int32Array, rec: number, seg: number): void {
  const sw = segWord(seg)
  const next = i32[sw + SEG_NEXT]
  const prev = i32[sw + SEG_PREV]
  if (prev !== 0) i32[segWord(prev) + SEG_NEXT] = next
  else i32[segQueueOf(rec, i32[sw + SEG_KIND])] = next
  if (next !== 0) i32[segWord(next) + SEG_PREV] = prev
  i32[sw + SEG_NEXT] = 0
  i32[sw + SEG_PREV] = 0
}

/* ----- Pages of a segment ------------------------------------------------------ */

/**
 * Finds an unused page of `kind` for heap `owner`: in a segment of its queue,
 * else in a newly claimed segment. Marks the slot taken (the caller inits the
 * page). Returns the page descriptor, or 0 when the arena is full.
 */
export function segmentPageAlloc(arena: Arena, owner: number, rec: number, kind: number): number {
  let seg = kind === KIND_LARGE ? 0 : fullestInQueue(arena.i32, rec, kind)
  if (seg === 0) {
    seg = segmentAlloc(arena, owner, kind, 1)
    if (seg === 0) return 0
    if (kind !== KIND_LARGE) segQueuePush(arena.i32, rec, seg)
  }
  const i32 = arena.i32 // read after segmentAlloc: claiming may have grown the buffer and re-made the views
  const sw = segWord(seg)
  const count = i32[sw + SEG_PAGE_COUNT]
  let pd = 0
  for (let i = 0; i < count; i++) {
    const cand = pageDesc(sw, i)
    if (i32[cand + PAGE_FLAGS] === 0) { pd = cand; break }
  }
  const used = ++i32[sw + SEG_USED_PAGES]
  if (used === count && kind !== KIND_LARGE) segQueueRemove(i32, rec, seg)
  return pd
}

/**
 * The segment of the heap's free-slot queue for `kind` with the most pages in
 * use (0 if the queue is empty). Filling the fullest segment first lets the
 * emptier ones drain and go back to the arena, instead of spreading new
 * pages over every segment with a free slot. The walk is as long as the
 * heap's list of segments with a free slot, and runs only when a page is made.
 * Owner only: the queue links are the owner heap's (abandon clears them).
 */
function fullestInQueue(i32: Int32Array, rec: number, kind: number): number {
  let best = 0
  let bestUsed = -1
  for (let seg = i32[segQueueOf(rec, kind)]; seg !== 0; seg = i32[segWord(seg) + SEG_NEXT]) {
    const used = i32[segWord(seg) + SEG_USED_PAGES]
    if (used > bestUsed) { best = seg; bestUsed = used }
  }
  return best
}

/**
 * A page leaves use: its slot becomes free; a segment with no page left in use
 * goes back to the arena, one that was full rejoins the heap's queue.
 */
export function segmentPageFree(arena: Arena, rec: number, pd: number): void {
  const i32 = arena.i32
  const seg = segOfPage(pd)
  const sw = segWord(seg)
  i32[pd + PAGE_FLAGS] = 0
  const used = --i32[sw + SEG_USED_PAGES]
  if (used === 0) segmentFree(arena, rec, seg)
  else if (used === i32[sw + SEG_PAGE_COUNT] - 1 && rec !== 0) segQueuePush(i32, rec, seg)
}

