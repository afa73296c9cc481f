/* ----------------------------------------------------------------------------
  stats.ts — `arena.stats()`: a racy snapshot of counters and of what every
  page in use holds. It reads shared words while other threads run, so values
  may be slightly stale or mutually inconsistent, but it never throws and
  never writes anything except the peak-live-bytes high-water mark.
---------------------------------------------------------------------------- */

import type { Arena } from './arena.js'
import { atomicMax } from './arena.js'
import {
  ARENA_ABANDONED_COUNT, ARENA_ABANDONED_TOTAL, ARENA_GROW_COUNT, ARENA_PEAK_LIVE_BYTES, ARENA_PEAK_PAGE_BYTES,
  ARENA_PEAK_SEGMENTS, ARENA_RECLAIMED_TOTAL, ARENA_SEGMENTS_IN_USE, ARENA_SEGMENT_LIMIT,
  ARENA_XFREES_RETIRED, HEAP_IN_USE, HEAP_STATE, HEAP_XFREES, KIND_HUGE, PAGE_BLOCK_SIZE,
  PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_USE, PAGE_USED, SEGMAP, SEGMENT_SIZE, SEG_OWNER, SEG_PAGE_COUNT, SEG_SPAN, SMALL_PAGE_SHIFT,
} from './layout.js'
import { pageDesc, segWord } from './segment.js'

export interface HeapStats {
  id: number
  /** Blocks handed out from this heap's pages and not yet collected as freed. */
  liveBlocks: number
  liveBytes: number
}

export interface ArenaStats {
  /** Bytes in the buffer now. */
  capacity: number
  /** Bytes the buffer may grow to. */
  maxCapacity: number
  /** Segments claimed (metadata included). */
  segmentsInUse: number
  peakSegmentsInUse: number
  /** Bytes of claimed segments (segmentsInUse × segment size). */
  bytesInUse: number
  liveBlocks: number
  liveBytes: number
  /** Highest liveBytes any stats()/check() call has seen. */
  peakLiveBytes: number
  /**
   * Bytes of initialized blocks (capacity × block size) in pages in use: the
   * memory the allocator has touched for blocks, free page slots excluded
   * (pages are initialized lazily, 4 KiB at a time, as in mimalloc).
   */
  pageBytes: number
  /** Highest pageBytes any stats()/check() call has seen. */
  peakPageBytes: number
  heapsInUse: number
  crossThreadFrees: number
  /** Segments ever abandoned / reclaimed, and abandoned now. */
  abandonedSegments: number
  reclaimedSegments: number
  abandonedNow: number
  /** Times the buffer grew. */
  grows: number
  /** Per live heap, and id 0 for abandoned segments. */
  heaps: HeapStats[]
}

export function arenaStats(a: Arena): ArenaStats {
  const i32 = a.i32
  const perHeap = new Map<number, HeapStats>()
  let heapsInUse = 0
  let crossThreadFrees = Atomics.load(i32, ARENA_XFREES_RETIRED) >>> 0
  for (let id = 1; id <= a.maxHeaps; id++) {
    const rec = a.heapRecord(id)
    if (Atomics.load(i32, rec + HEAP_STATE) !== HEAP_IN_USE) continue
    heapsInUse++
    crossThreadFrees += Atomics.load(i32, rec + HEAP_XFREES) >>> 0
    perHeap.set(id, { id, liveBlocks: 0, liveBytes: 0 })
  }
  let liveBlocks = 0
  let liveBytes = 0
  let pageBytes = 0
  const limit = Math.min(Atomics.load(i32, ARENA_SEGMENT_LIMIT), a.maxSegments)
  for (let seg = a.metaSegments; seg < limit; seg++) {
    const kind = Atomics.load(i32, SEGMAP + seg)
    if (kind <= 0 || kind > KIND_HUGE) continue
    const sw = segWord(seg)
    const owner = Atomics.load(i32, sw + SEG_OWNER)
    const count = Math.min(Math.max(i32[sw + SEG_PAGE_COUNT], 0), SEGMENT_SIZE >>> SMALL_PAGE_SHIFT)
    let hs = perHeap.get(owner)
    if (hs === undefined) perHeap.set(owner, hs = { id: owner, liveBlocks: 0, liveBytes: 0 })
    for (let i = 0; i < count; i++) {
      const pd = pageDesc(sw, i)
      if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0) continue
      const used = Math.max(i32[pd + PAGE_USED], 0)
      const bsize = Math.max(i32[pd + PAGE_BLOCK_SIZE], 0)
      const bytes = used * bsize
      pageBytes += Math.max(i32[pd + PAGE_CAPACITY], 0) * bsize
      hs.liveBlocks += used
      hs.liveBytes += bytes
      liveBlocks += used
      liveBytes += bytes
    }
    if (kind === KIND_HUGE) seg += Math.max(i32[sw + SEG_SPAN], 1) - 1
  }
  atomicMax(i32, ARENA_PEAK_LIVE_BYTES, Math.min(liveBytes, 0xffffffff))
  atomicMax(i32, ARENA_PEAK_PAGE_BYTES, Math.min(pageBytes, 0xffffffff))
  const segmentsInUse = Atomics.load(i32, ARENA_SEGMENTS_IN_USE)
  return {
    capacity: a.buffer.byteLength,
    maxCapacity: a.maxSegments * SEGMENT_SIZE,
    segmentsInUse,
    peakSegmentsInUse: Atomics.load(i32, ARENA_PEAK_SEGMENTS),
    bytesInUse: segmentsInUse * SEGMENT_SIZE,
    liveBlocks,
    liveBytes,
    peakLiveBytes: Atomics.load(i32, ARENA_PEAK_LIVE_BYTES) >>> 0,
    pageBytes,
    peakPageBytes: Atomics.load(i32, ARENA_PEAK_PAGE_BYTES) >>> 0,
    heapsInUse,
    crossThreadFrees,
    abandonedSegments: Atomics.load(i32, ARENA_ABANDONED_TOTAL),
    reclaimedSegments: Atomics.load(i32, ARENA_RECLAIMED_TOTAL),
    abandonedNow: Atomics.load(i32, ARENA_ABANDONED_COUNT),
    grows: Atomics.load(i32, ARENA_GROW_COUNT),
    heaps: [...perHeap.values()].sort((x, y) => x.id - y.id),
  }
}
