/* ----------------------------------------------------------------------------
  check.ts — whole-arena validation (`arena.check()`), the counterpart of
  mimalloc's `mi_assert_expensive` walks. It reads everything and verifies:

    - the arena bitmap, the segment map and the segment headers agree;
    - owners are live heaps, and owner 0 ⇔ the abandoned bit is set;
    - every page's free, local_free and xthread_free lists and every heap's
      delayed list hold distinct block starts below capacity (no block on two
      lists, no cycle), and `used` matches what is not on a list;
    - every page in use of a live heap sits in exactly one of its queues (the
      right one), with sound links, and the direct table points at queue heads;
    - each heap's free-slot segment queues hold exactly its segments with room.

  Call it when no other thread is allocating or freeing.
---------------------------------------------------------------------------- */

import type { Arena } from './arena.js'
import { isBitSet } from './bitmap.js'
import { HeapCorruptionError } from './errors.js'
import {
  ABANDONED_BITMAP, ARENA_BITMAP, ARENA_PEAK_LIVE_BYTES, ARENA_SEGMENT_LIMIT, BIN_FULL, BIN_HUGE,
  BLOCK_MASK, DEBUG_HEADER, DELAYED_FREEING, DELAYED_MASK, DELAYED_NEVER, DIRECT_ENTRIES, EMPTY_PAGE,
  HEAP_DELAYED_FREE, HEAP_DIRECT, HEAP_IN_USE, HEAP_SEG_FREE_MEDIUM, HEAP_SEG_FREE_SMALL, HEAP_STATE,
  KIND_HUGE, KIND_LARGE, KIND_MEDIUM, KIND_SMALL, LARGE_PAGE_SHIFT, MEDIUM_OBJ_MAX, MEDIUM_PAGE_SHIFT, PAGE_AREA,
  PAGE_BIN, PAGE_BLOCK_SIZE, PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_FULL, PAGE_FLAG_IN_USE, PAGE_FLAG_MASK, PAGE_OWNER_SHIFT,
  PAGE_FREE, PAGE_LOCAL_FREE, PAGE_NEXT, PAGE_PREV, PAGE_RESERVED, PAGE_START, PAGE_USED,
  PAGE_XTHREAD_FREE, QUEUE_FIRST, QUEUE_LAST, SEGMAP, SEGMENT_SHIFT, SEGMENT_SIZE, SEG_KIND,
  SEG_NEXT, SEG_OWNER, SEG_PAGE_COUNT, SEG_PAGE_SHIFT, SEG_PREV, SEG_SPAN, SEG_USED_PAGES,
  SMALL_PAGE_SHIFT,
} from './layout.js'
import { queueOf } from './page-queue.js'
import { pageDesc, pageOfAddress, segWord } from './segment.js'
import { BIN_SIZE } from './size-classes.js'
import { atomicMax } from './arena.js'
import { debugBlockProblem } from './debug.js'

export interface CheckResult {
  /** Blocks allocated and not yet freed. */
  liveBlocks: number
  /** Bytes of those blocks (block sizes). */
  liveBytes: number
  /** Segments claimed, metadata included. */
  segmentsInUse: number
}

const hex = (n: number): string => '0x' + (n >>> 0).toString(16)

export function checkArena(a: Arena): CheckResult {
  const i32 = a.i32
  const key = a.key
  const fail = (msg: string, ptr?: number): never => { throw new HeapCorruptionError(msg, ptr) }
  const limit = Atomics.load(i32, ARENA_SEGMENT_LIMIT)
  const meta = a.metaSegments

  /* ----- the page of a block, for delayed-list entries ----- */
  const pageOf = (b: number): number => {
    const seg = b >>> SEGMENT_SHIFT
    if ((b & 7) !== 0 || seg < meta || seg >= limit || i32[SEGMAP + seg] === 0) fail(`delayed-free list holds ${hex(b)}, not a block in a segment`, b)
    return pageOfAddress(i32, b)
  }

  /* ----- 1. delayed lists ----- */
  const delayed = new Map<number, number[]>() // page → blocks in transit
  for (let id = 1; id <= a.maxHeaps; id++) {
    const rec = a.heapRecord(id)
    const state = i32[rec + HEAP_STATE]
    if (state !== 0 && state !== HEAP_IN_USE) fail(`heap ${id} has state ${state}`)
    let n = 0
    for (let b = i32[rec + HEAP_DELAYED_FREE]; b !== 0; b = i32[b >>> 2] ^ key) {
      if (state !== HEAP_IN_USE) fail(`released heap ${id} has a delayed-free list`)
      if (++n > 1 << 26) fail(`delayed-free list of heap ${id} has a cycle`)
      const pd = pageOf(b >>> 0)
      let list = delayed.get(pd)
      if (list === undefined) delayed.set(pd, list = [])
      list.push(b >>> 0)
    }
  }

  /* ----- 2. segments, pages and their lists ----- */
  let liveBlocks = 0
  let liveBytes = 0
  let segmentsInUse = meta
  const owned = new Map<number, Set<number>>() // heap id → pages in use
  const roomy = new Map<number, Set<number>>() // heap id → small/medium segments with a free slot
  for (let s = 0; s < meta; s++) {
    if (!isBitSet(i32, ARENA_BITMAP, s)) fail(`metadata segment ${s} is not marked claimed`)
  }
  for (let seg = meta; seg < a.maxSegments; seg++) {
    const map = i32[SEGMAP + seg]
    const claimed = isBitSet(i32, ARENA_BITMAP, seg)
    if (seg >= limit && (claimed || map !== 0)) fail(`segment ${seg} beyond the buffer is in use`)
    if (map === 0) {
      if (claimed) fail(`segment ${seg} is claimed in the bitmap but has no segment map entry`)
      if (isBitSet(i32, ABANDONED_BITMAP, seg)) fail(`free segment ${seg} is marked abandoned`)
      continue
    }
    if (map < 0) fail(`segment ${seg} is a follower of ${-map} but not inside its run`)
    if (!claimed) fail(`segment ${seg} of kind ${map} is not claimed in the bitmap`)
    const sw = segWord(seg)
    const kind = i32[sw + SEG_KIND]
    if (kind !== map) fail(`segment ${seg} header kind ${kind} ≠ segment map ${map}`)
    const span = i32[sw + SEG_SPAN]
    if (span < 1 || seg + span > limit || (kind !== KIND_HUGE && span !== 1)) fail(`segment ${seg} has span ${span}`)
    for (let f = seg + 1; f < seg + span; f++) {
      if (i32[SEGMAP + f] !== -seg || !isBitSet(i32, ARENA_BITMAP, f)) fail(`segment ${f} is not marked a follower of huge segment ${seg}`)
    }
    segmentsInUse += span
    const owner = Atomics.load(i32, sw + SEG_OWNER)
    const abandoned = isBitSet(i32, ABANDONED_BITMAP, seg)
    if (owner < 0 || owner > a.maxHeaps) fail(`segment ${seg} has owner ${owner}`)
    if ((owner === 0) !== abandoned) fail(`segment ${seg}: owner ${owner} but abandoned bit ${abandoned ? 'set' : 'clear'}`)
    if (owner !== 0 && i32[a.heapRecord(owner) + HEAP_STATE] !== HEAP_IN_USE) fail(`segment ${seg} belongs to heap ${owner}, which is not in use`)
    const shift = i32[sw + SEG_PAGE_SHIFT]
    const count = i32[sw + SEG_PAGE_COUNT]
    const wantShift = kind === KIND_SMALL ? SMALL_PAGE_SHIFT : kind === KIND_MEDIUM ? MEDIUM_PAGE_SHIFT : LARGE_PAGE_SHIFT
    const wantCount = kind === KIND_SMALL || kind === KIND_MEDIUM ? SEGMENT_SIZE >>> wantShift : 1
    if (shift !== wantShift || count !== wantCount) fail(`segment ${seg} (kind ${kind}) has page shift ${shift} and ${count} pages`)
    let pagesInUse = 0
    for (let i = 0; i < count; i++) {
      const pd = pageDesc(sw, i)
      const flags = i32[pd + PAGE_FLAGS]
      if (flags === 0) continue
      if ((flags & PAGE_FLAG_IN_USE) === 0 || (flags & PAGE_FLAG_MASK & ~(PAGE_FLAG_IN_USE | PAGE_FLAG_IN_FULL)) !== 0) fail(`page ${i} of segment ${seg} has flags ${flags}`)
      if (flags >>> PAGE_OWNER_SHIFT !== owner) fail(`page ${i} of segment ${seg} is tagged for heap ${flags >>> PAGE_OWNER_SHIFT}, its segment belongs to ${owner}`)
      pagesInUse++
      const live = checkPage(a, pd, seg, i, kind, owner, delayed.get(pd) ?? [], fail)
      delayed.delete(pd)
      liveBlocks += live
      liveBytes += live * i32[pd + PAGE_BLOCK_SIZE]
      if (owner !== 0) {
        let set = owned.get(owner)
        if (set === undefined) owned.set(owner, set = new Set())
        set.add(pd)
      }
    }
    if (pagesInUse !== i32[sw + SEG_USED_PAGES]) fail(`segment ${seg} counts ${i32[sw + SEG_USED_PAGES]} pages in use, has ${pagesInUse}`)
    if (pagesInUse === 0) fail(`segment ${seg} is claimed with no page in use`)
    if (owner !== 0 && (kind === KIND_SMALL || kind === KIND_MEDIUM) && pagesInUse < count) {
      let set = roomy.get(owner)
      if (set === undefined) roomy.set(owner, set = new Set())
      set.add(seg)
    }
    seg += span - 1
  }
  if (delayed.size > 0) fail('a delayed-free list holds a block of a page not in use')

  /* ----- 3. heap queues, direct tables, segment queues ----- */
  for (let id = 1; id <= a.maxHeaps; id++) {
    const rec = a.heapRecord(id)
    if (i32[rec + HEAP_STATE] !== HEAP_IN_USE) continue
    const mine = owned.get(id) ?? new Set<number>()
    const seen = new Set<number>()
    for (let bin = 1; bin <= BIN_FULL; bin++) {
      const q = queueOf(rec, bin)
      let prev = 0
      for (let pd = i32[q + QUEUE_FIRST]; pd !== 0; prev = pd, pd = i32[pd + PAGE_NEXT]) {
        if (!mine.has(pd)) fail(`heap ${id} queue ${bin} holds a page that is not one of its pages in use`)
        if (seen.has(pd)) fail(`heap ${id}: a page is twice in its queues`)
        seen.add(pd)
        if (i32[pd + PAGE_PREV] !== prev) fail(`heap ${id} queue ${bin}: broken prev link`)
        const inFull = (i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_FULL) !== 0
        if (inFull !== (bin === BIN_FULL)) fail(`heap ${id} queue ${bin}: page full flag ${inFull}`)
        if (bin !== BIN_FULL && i32[pd + PAGE_BIN] !== bin) fail(`heap ${id} queue ${bin} holds a page of bin ${i32[pd + PAGE_BIN]}`)
      }
      if (i32[q + QUEUE_LAST] !== prev) fail(`heap ${id} queue ${bin}: last pointer is stale`)
    }
    if (seen.size !== mine.size) fail(`heap ${id} owns ${mine.size} pages in use but queues ${seen.size}`)
    for (let i = 0; i < DIRECT_ENTRIES; i++) {
      const size = i === 0 ? 0 : i << 3
      let bin = 1
      while (BIN_SIZE[bin] < size) bin++
      const first = i32[queueOf(rec, bin) + QUEUE_FIRST]
      if (i32[rec + HEAP_DIRECT + i] !== (first === 0 ? EMPTY_PAGE : first)) fail(`heap ${id}: direct table entry ${i} does not point at the first page of bin ${bin}`)
    }
    const want = roomy.get(id) ?? new Set<number>()
    let found = 0
    for (const qw of [HEAP_SEG_FREE_SMALL, HEAP_SEG_FREE_MEDIUM]) {
      let prev = 0
      for (let seg = i32[rec + qw], n = 0; seg !== 0; prev = seg, seg = i32[segWord(seg) + SEG_NEXT]) {
        if (++n > a.maxSegments) fail(`heap ${id}: segment queue has a cycle`)
        if (!want.has(seg)) fail(`heap ${id}: segment ${seg} is queued for free slots but is not its segment with room`)
        if (i32[segWord(seg) + SEG_PREV] !== prev) fail(`heap ${id}: segment queue has a broken prev link`)
        found++
      }
    }
    if (found !== want.size) fail(`heap ${id} has ${want.size} segments with free page slots but queues ${found}`)
  }
  atomicMax(i32, ARENA_PEAK_LIVE_BYTES, Math.min(liveBytes, 0xffffffff))
  return { liveBlocks, liveBytes, segmentsInUse }
}

/** Validates one page in use; returns its live block count. */
function checkPage(a: Arena, pd: number, seg: number, index: number, kind: number, owner: number,
  inTransit: number[], fail: (msg: string, ptr?: number) => never): number {
  const i32 = a.i32
  const key = a.key
  const where = `page ${index} of segment ${seg}`
  const bsize = i32[pd + PAGE_BLOCK_SIZE]
  const start = i32[pd + PAGE_START] >>> 0
  const area = i32[pd + PAGE_AREA]
  const reserved = i32[pd + PAGE_RESERVED]
  const capacity = i32[pd + PAGE_CAPACITY]
  const used = i32[pd + PAGE_USED]
  const bin = i32[pd + PAGE_BIN]
  const segStart = seg * SEGMENT_SIZE
  if (bsize <= 0 || (bsize & 7) !== 0) fail(`${where} has block size ${bsize}`)
  if (start < segStart + a.segHeaderSize || start + area > segStart + i32[segWord(seg) + SEG_SPAN] * SEGMENT_SIZE) fail(`${where} has area ${hex(start)}+${area} outside its segment`)
  if (kind === KIND_HUGE ? bin !== BIN_HUGE || reserved !== 1 : BIN_SIZE[bin] !== bsize || reserved !== Math.floor(area / bsize)) fail(`${where}: bin ${bin}, block size ${bsize}, reserved ${reserved} disagree`)
  if (kind === KIND_LARGE && bsize <= MEDIUM_OBJ_MAX) fail(`${where}: large page with ${bsize}-byte blocks`)
  // a huge run is trimmed to its block: the block starts in the head or at its first follower's start
  if (kind === KIND_HUGE && start > segStart + SEGMENT_SIZE) fail(`${where}: huge block at ${hex(start)} leaves whole segments unused before it`)
  if (capacity < 0 || capacity > reserved) fail(`${where}: capacity ${capacity} > reserved ${reserved}`)
  const tf = Atomics.load(i32, pd + PAGE_XTHREAD_FREE)
  const state = tf & DELAYED_MASK
  if (state === DELAYED_FREEING) fail(`${where} is stuck in DELAYED_FREEING`)
  if (owner === 0 && state !== DELAYED_NEVER) fail(`${where} of an abandoned segment has delayed state ${state}`)
  const marks = new Uint8Array(capacity)
  const mark = (b: number, list: string): void => {
    const diff = b - start
    const idx = Math.floor(diff / bsize)
    if (diff < 0 || idx * bsize !== diff || idx >= capacity) fail(`${where}: ${list} list holds ${hex(b)}, not an initialized block start`, b)
    if (marks[idx] !== 0) fail(`${where}: block ${hex(b)} is twice on the free lists (or in a cycle)`, b)
    marks[idx] = 1
  }
  const walk = (head: number, list: string): number => {
    let n = 0
    for (let b = head >>> 0; b !== 0; b = (i32[b >>> 2] ^ key) >>> 0) { mark(b, list); n++ }
    return n
  }
  const nFree = walk(i32[pd + PAGE_FREE], 'free')
  const nLocal = walk(i32[pd + PAGE_LOCAL_FREE], 'local_free')
  const nThread = walk(tf & BLOCK_MASK, 'xthread_free')
  for (const b of inTransit) mark(b, 'delayed-free')
  if (a.debug) {
    for (let idx = 0; idx < capacity; idx++) {
      const block = start + idx * bsize
      const problem = debugBlockProblem(i32, a.u8, block, bsize, marks[idx] === 0)
      if (problem !== null) fail(`${where}: debug block ${hex(block + DEBUG_HEADER)} ${problem}`, block + DEBUG_HEADER)
    }
  }
  const live = capacity - nFree - nLocal - nThread - inTransit.length
  if (used !== live + nThread + inTransit.length) fail(`${where}: used is ${used} but ${live} blocks are live and ${nThread + inTransit.length} wait on other threads' lists`)
  if (live < 0) fail(`${where}: negative live count`)
  return live
}
