/* ----------------------------------------------------------------------------
  The arena: creation options, running out of memory, growth of a growable
  buffer, attaching a second Arena object to the same buffer, heap slots,
  stats() and reclaimHeap(). All in one thread; the multi-worker suites cover
  the same contracts across threads.
---------------------------------------------------------------------------- */

import { describe, expect, it } from 'vitest'
import { AllocatorError, Arena, type Heap } from '../src/index.js'
import { LARGE_OBJ_MAX, MEDIUM_OBJ_MAX, SEGMENT_SIZE, SMALL_OBJ_MAX } from '../src/layout.js'
import {
  HUGE_ONE_SEGMENT, KiB, MiB, fillBlock, firstChangedByte, firstMismatch, mustMalloc, snapshot,
} from './helpers/arena.js'

function expectEmpty(arena: Arena): void {
  expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
}

/** Allocates `size`-byte blocks until malloc returns 0 (at most `max`); returns them. */
function fillUp(heap: Heap, size: number, max = 1e6): number[] {
  const ps: number[] = []
  for (;;) {
    const p = heap.malloc(size)
    if (p === 0) return ps
    ps.push(p)
    if (ps.length > max) throw new Error(`more than ${max} blocks of ${size} bytes fit: the arena does not run out`)
  }
}

/* ----- create ---------------------------------------------------------------------- */

describe('Arena.create', () => {
  it('defaults to a 64 MiB, non-growable, release-mode buffer with 64 heap slots', () => {
    const arena = Arena.create()
    expect(arena.buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(arena.buffer.byteLength).toBe(64 * MiB)
    expect(arena.buffer.growable).toBe(false)
    expect(arena.maxHeaps).toBe(64)
    expect(arena.debug).toBe(false)
    expect(arena.u8.length).toBe(64 * MiB)
  })

  it('lets exactly 64 heaps be created by default', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const ids = Array.from({ length: 64 }, () => arena.createHeap().id)
    expect(new Set(ids).size).toBe(64)
    expect(() => arena.createHeap()).toThrow(AllocatorError)
  })

  const S = SEGMENT_SIZE
  it.each([
    [16 * S + 1, 17 * S], [17 * S - 1, 17 * S], [17 * S, 17 * S], [15 * S + S / 2, 16 * S],
  ])('rounds a size of %i bytes up to whole segments (%i)', (size, want) => {
    expect(Arena.create({ size }).buffer.byteLength).toBe(want)
  })

  it('rounds maxSize up to whole segments too', () => {
    const arena = Arena.create({ size: 8 * S, maxSize: 40 * S + 1 })
    expect(arena.buffer.growable).toBe(true)
    expect(arena.buffer.maxByteLength).toBe(41 * S)
  })

  it('gives an arena that can allocate even for a size smaller than one segment', () => {
    const arena = Arena.create({ size: 1 })
    expect(arena.buffer.byteLength % SEGMENT_SIZE).toBe(0)
    const heap = arena.createHeap()
    expect(heap.malloc(100)).not.toBe(0)
    arena.check()
  })

  it('makes the buffer growable only when maxSize is larger than size', () => {
    expect(Arena.create({ size: 4 * MiB, maxSize: 4 * MiB }).buffer.growable).toBe(false)
    expect(Arena.create({ size: 4 * MiB, maxSize: 5 * MiB }).buffer.growable).toBe(true)
  })

  it('records maxHeaps and debug', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 3, debug: true })
    expect(arena.maxHeaps).toBe(3)
    expect(arena.debug).toBe(true)
  })

  it('starts empty: no live block, only its metadata segments in use', () => {
    const arena = Arena.create({ size: 4 * MiB })
    expect(arena.metaSegments).toBeGreaterThanOrEqual(1)
    expectEmpty(arena)
  })
})

/* ----- out of memory ------------------------------------------------------------------ */

describe('out of memory', () => {
  // small, medium and large sizes (a large page of 100000-byte blocks holds two, of LARGE_OBJ_MAX one)
  it.each([16, 1000, SMALL_OBJ_MAX, MEDIUM_OBJ_MAX, 100000, LARGE_OBJ_MAX])(
    'malloc(%i) returns 0 once a 4 MiB arena is full, and after freeing everything the same number of blocks fit again', (size) => {
      const arena = Arena.create({ size: 4 * MiB })
      const heap = arena.createHeap()
      const first = fillUp(heap, size)
      expect(first.length).toBeGreaterThan(0)
      expect(first.length * size).toBeLessThanOrEqual(4 * MiB - arena.metaSegments * SEGMENT_SIZE)
      expect(arena.check().liveBlocks).toBe(first.length)
      for (const p of first) heap.free(p)
      const second = fillUp(heap, size)
      expect(second.length).toBe(first.length)
      for (const p of second) heap.free(p)
      heap.collect(true)
      expectEmpty(arena)
    })

  it('huge malloc returns 0 once a 4 MiB arena is full, and the freed segments fit as many again', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const first = fillUp(heap, HUGE_ONE_SEGMENT)
    expect(first.length).toBe(4 * MiB / SEGMENT_SIZE - arena.metaSegments) // one segment each, every segment past the metadata
    for (const p of first) heap.free(p)
    expectEmpty(arena)
    expect(fillUp(heap, HUGE_ONE_SEGMENT).length).toBe(first.length)
  })

  it('a multi-segment huge malloc returns 0 when no run of free segments is long enough', () => {
    const arena = Arena.create({ size: 8 * SEGMENT_SIZE })
    const heap = arena.createHeap()
    const ones = fillUp(heap, HUGE_ONE_SEGMENT) // 7 segments, one each
    expect(ones.length).toBe(8 - arena.metaSegments)
    // free every other one: 3 or 4 free segments, but no two adjacent
    for (let i = 0; i < ones.length; i += 2) heap.free(ones[i])
    expect(heap.malloc(1.5 * SEGMENT_SIZE)).toBe(0)
    heap.free(ones[1]) // segments of ones[0..2] are now free and adjacent
    expect(heap.malloc(1.5 * SEGMENT_SIZE)).not.toBe(0)
    arena.check()
  })

  it('returns 0 for every size class once full, without throwing or breaking the arena', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const ps = fillUp(heap, HUGE_ONE_SEGMENT)
    for (const size of [0, 8, 100, 1024, 5000, 20000, 100000, HUGE_ONE_SEGMENT, 3 * MiB]) {
      const p = heap.malloc(size)
      if (p !== 0) ps.push(p) // a small size may still fit in a page of a previous size
    }
    expect(fillUp(heap, 100000).length).toBe(0)
    expect(fillUp(heap, HUGE_ONE_SEGMENT).length).toBe(0)
    expect(arena.check().liveBlocks).toBe(ps.length)
  })

  it('memory freed by small blocks serves a huge block afterwards', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const small = fillUp(heap, 2000)
    expect(heap.malloc(2 * MiB)).toBe(0)
    for (const p of small) heap.free(p)
    const huge = heap.malloc(2 * MiB)
    expect(huge).not.toBe(0)
    heap.free(huge)
    heap.collect(true)
    expectEmpty(arena)
  })

  it('keeps the contents of every live block when malloc fails', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const ps = fillUp(heap, 4000)
    ps.forEach((p, i) => fillBlock(arena, p, 4000, i & 0xff))
    expect(heap.malloc(4000)).toBe(0)
    expect(heap.malloc(3 * MiB)).toBe(0)
    expect(ps.filter((p, i) => firstMismatch(arena, p, 4000, i & 0xff) >= 0)).toEqual([])
  })
})

/* ----- growth ------------------------------------------------------------------------ */

describe('a growable arena', () => {
  it('grows its buffer on demand, and u8 and i32 follow the new length', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 64 * MiB })
    expect(arena.buffer.byteLength).toBe(2 * MiB)
    const heap = arena.createHeap()
    const ps = Array.from({ length: 10 }, () => mustMalloc(heap, HUGE_ONE_SEGMENT)) // one segment each
    expect(arena.buffer.byteLength).toBeGreaterThanOrEqual((arena.metaSegments + 10) * SEGMENT_SIZE)
    expect(arena.u8.length).toBe(arena.buffer.byteLength)
    expect(arena.i32.length * 4).toBe(arena.buffer.byteLength)
    expect(arena.stats().grows).toBeGreaterThanOrEqual(1)
    expect(arena.stats().capacity).toBe(arena.buffer.byteLength)
    // the grown memory is usable to its end
    const last = Math.max(...ps)
    fillBlock(arena, last, HUGE_ONE_SEGMENT, 0x6b)
    expect(firstMismatch(arena, last, HUGE_ONE_SEGMENT, 0x6b)).toBe(-1)
    expect(arena.check().liveBlocks).toBe(10)
  })

  it('grows for small blocks as well as huge ones', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 64 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 50000 }, () => mustMalloc(heap, 100))
    expect(arena.buffer.byteLength).toBeGreaterThan(2 * MiB)
    expect(arena.check().liveBlocks).toBe(ps.length)
  })

  it('serves a huge block larger than its initial size', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 64 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 10 * MiB)
    fillBlock(arena, p, 10 * MiB, 1)
    expect(arena.buffer.byteLength).toBeGreaterThanOrEqual(12 * MiB)
    heap.free(p)
    expectEmpty(arena)
  })

  it('counts its grows in stats().grows', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 64 * MiB })
    const heap = arena.createHeap()
    expect(arena.stats().grows).toBe(0)
    let lengths = 1
    let last = arena.buffer.byteLength
    for (let i = 0; i < 40; i++) {
      mustMalloc(heap, 600 * KiB)
      if (arena.buffer.byteLength !== last) { lengths++; last = arena.buffer.byteLength }
    }
    expect(arena.stats().grows).toBe(lengths - 1)
  })

  it('never grows past maxSize: malloc returns 0 there', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 16 * MiB })
    const heap = arena.createHeap()
    const huge = fillUp(heap, HUGE_ONE_SEGMENT)
    expect(arena.buffer.byteLength).toBe(16 * MiB)
    expect(huge.length).toBe(16 * MiB / SEGMENT_SIZE - arena.metaSegments)
    expect(heap.malloc(3 * MiB)).toBe(0)
    expect(fillUp(heap, 100000).length).toBe(0)
    expect(arena.buffer.byteLength).toBe(16 * MiB)
    expect(arena.stats().capacity).toBe(16 * MiB)
    arena.check()
  })

  it('returns 0 at once for a huge block larger than maxSize, without growing', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 16 * MiB })
    const heap = arena.createHeap()
    expect(heap.malloc(20 * MiB)).toBe(0)
    expect(arena.buffer.byteLength).toBe(2 * MiB)
  })

  it('is seen grown by a second Arena object attached before the growth', () => {
    const arena = Arena.create({ size: 2 * MiB, maxSize: 64 * MiB })
    const other = Arena.attach(arena.buffer)
    const a = arena.createHeap()
    const b = other.createHeap()
    const ps = Array.from({ length: 8 }, () => mustMalloc(a, MiB))
    expect(other.u8.length).toBe(arena.buffer.byteLength)
    ps.forEach((p, i) => fillBlock(arena, p, MiB, i + 1))
    expect(ps.filter((p, i) => firstMismatch(other, p, MiB, i + 1) >= 0)).toEqual([])
    for (const p of ps) b.free(p) // cross-heap frees in the grown region
    a.collect(true)
    expectEmpty(other)
  })

  it('a non-growable arena keeps its length when full', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    fillUp(heap, HUGE_ONE_SEGMENT)
    expect(arena.buffer.byteLength).toBe(4 * MiB)
    expect(arena.stats().grows).toBe(0)
  })
})

/* ----- attach ------------------------------------------------------------------------ */

describe('Arena.attach', () => {
  it('changes nothing in the buffer', () => {
    const arena = Arena.create({ size: 4 * MiB })
    mustMalloc(arena.createHeap(), 100)
    const before = snapshot(arena)
    Arena.attach(arena.buffer)
    expect(firstChangedByte(arena, before)).toBe(-1)
  })

  it('gives an Arena that sees the same layout, blocks and counts', () => {
    const arena = Arena.create({ size: 8 * MiB, maxHeaps: 7 })
    const a = arena.createHeap()
    const ps = Array.from({ length: 300 }, (_, i) => mustMalloc(a, 8 + i * 8))
    ps.forEach((p, i) => fillBlock(arena, p, 8 + i * 8, i & 0xff))
    const other = Arena.attach(arena.buffer)
    expect(other.buffer).toBe(arena.buffer)
    expect(other.maxHeaps).toBe(7)
    expect(other.metaSegments).toBe(arena.metaSegments)
    expect(other.key).toBe(arena.key)
    expect(other.check()).toEqual(arena.check())
    expect(ps.filter((p, i) => firstMismatch(other, p, 8 + i * 8, i & 0xff) >= 0)).toEqual([])
  })

  it('lets a heap of the second Arena free blocks of a heap of the first (cross-heap frees)', () => {
    const arena = Arena.create({ size: 8 * MiB })
    const a = arena.createHeap()
    const other = Arena.attach(arena.buffer)
    const b = other.createHeap()
    expect(b.id).not.toBe(a.id)
    const ps = Array.from({ length: 500 }, (_, i) => mustMalloc(a, 16 + (i % 40) * 16))
    const kept = ps.filter((_, i) => i % 5 === 0)
    kept.forEach((p) => fillBlock(arena, p, 16, 0x5e))
    for (const p of ps.filter((_, i) => i % 5 !== 0)) b.free(p)
    expect(other.check().liveBlocks).toBe(kept.length)
    expect(arena.check().liveBlocks).toBe(kept.length)
    expect(arena.stats().crossThreadFrees).toBe(ps.length - kept.length)
    expect(kept.filter((p) => firstMismatch(arena, p, 16, 0x5e) >= 0)).toEqual([])
    for (const p of kept) b.free(p)
    a.collect(true)
    expectEmpty(arena)
  })

  it('delivers cross-heap frees into full pages to the owner, which reuses them without new segments', () => {
    const arena = Arena.create({ size: 8 * MiB })
    const a = arena.createHeap()
    const b = Arena.attach(arena.buffer).createHeap()
    // 2000 blocks of 64 bytes fill two pages completely (the full queue)
    const ps = Array.from({ length: 2000 }, () => mustMalloc(a, 64))
    for (const p of ps) b.free(p)
    arena.check()
    const segments = arena.check().segmentsInUse
    const again = Array.from({ length: 2000 }, () => mustMalloc(a, 64))
    expect(arena.check()).toMatchObject({ liveBlocks: 2000, segmentsInUse: segments })
    expect(new Set(again).size).toBe(2000)
    for (const p of again) a.free(p)
    a.collect(true)
    expectEmpty(arena)
  })
})

/* ----- heap slots -------------------------------------------------------------------- */

describe('heap slots', () => {
  it('gives heap ids 1 … maxHeaps', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 5 })
    expect(Array.from({ length: 5 }, () => arena.createHeap().id).sort()).toEqual([1, 2, 3, 4, 5])
  })

  it('throws AllocatorError from createHeap() beyond maxHeaps, changing nothing', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 3 })
    for (let i = 0; i < 3; i++) mustMalloc(arena.createHeap(), 64)
    const before = snapshot(arena)
    expect(() => arena.createHeap()).toThrow(AllocatorError)
    expect(firstChangedByte(arena, before)).toBe(-1)
  })

  it('counts the slots of every Arena object on the buffer against maxHeaps', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 2 })
    arena.createHeap()
    Arena.attach(arena.buffer).createHeap()
    expect(() => Arena.attach(arena.buffer).createHeap()).toThrow(AllocatorError)
  })

  it('reuses the slot of a released heap', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 3 })
    const heaps = [arena.createHeap(), arena.createHeap(), arena.createHeap()]
    const id = heaps[1].id
    heaps[1].release()
    const h = arena.createHeap()
    expect(h.id).toBe(id)
    expect(h.malloc(100)).not.toBe(0)
    expect(arena.stats().heapsInUse).toBe(3)
    arena.check()
  })

  it('a heap in a reused slot starts with empty queues and allocates normally', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 1 })
    const a = arena.createHeap()
    const old = Array.from({ length: 100 }, () => mustMalloc(a, 48))
    a.release()
    const b = arena.createHeap()
    const fresh = Array.from({ length: 100 }, () => mustMalloc(b, 48))
    expect(fresh.filter((p) => old.includes(p))).toEqual([])
    expect(arena.check().liveBlocks).toBe(200)
  })
})

/* ----- stats -------------------------------------------------------------------------- */

describe('stats()', () => {
  const fields = ['capacity', 'segmentsInUse', 'liveBlocks', 'liveBytes', 'peakLiveBytes', 'heapsInUse',
    'crossThreadFrees', 'abandonedSegments', 'reclaimedSegments', 'grows'] as const

  it('has every field of API.md (and grows) as a non-negative number', () => {
    const stats = Arena.create({ size: 4 * MiB }).stats() as unknown as Record<string, unknown>
    for (const f of fields) {
      expect(typeof stats[f], f).toBe('number')
      expect(stats[f] as number, f).toBeGreaterThanOrEqual(0)
    }
  })

  it('agrees with check() on live blocks, live bytes and segments in use', () => {
    const arena = Arena.create({ size: 16 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 2000 }, (_, i) => mustMalloc(heap, (i * 97) % 5000))
    ps.push(mustMalloc(heap, 2 * MiB), mustMalloc(heap, 200000))
    for (let i = 0; i < ps.length; i += 3) heap.free(ps[i])
    const check = arena.check()
    const stats = arena.stats()
    expect(stats.liveBlocks).toBe(check.liveBlocks)
    expect(stats.liveBytes).toBe(check.liveBytes)
    expect(stats.segmentsInUse).toBe(check.segmentsInUse)
    expect(stats.capacity).toBe(16 * MiB)
    expect(stats.heapsInUse).toBe(1)
  })

  it('keeps peakLiveBytes at the highest liveBytes seen after blocks are freed', () => {
    const arena = Arena.create({ size: 16 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 1000 }, () => mustMalloc(heap, 1000))
    const peak = arena.stats().liveBytes
    expect(peak).toBeGreaterThanOrEqual(1000 * 1000)
    for (const p of ps) heap.free(p)
    const stats = arena.stats()
    expect(stats.liveBytes).toBe(0)
    expect(stats.peakLiveBytes).toBe(peak)
  })

  it('counts heaps in use, cross-heap frees, abandoned and reclaimed segments', () => {
    const arena = Arena.create({ size: 16 * MiB })
    const a = arena.createHeap()
    const b = arena.createHeap()
    const ps = Array.from({ length: 100 }, () => mustMalloc(a, 64))
    for (const p of ps.slice(0, 10)) b.free(p)
    expect(arena.stats()).toMatchObject({ heapsInUse: 2, crossThreadFrees: 10, abandonedSegments: 0, reclaimedSegments: 0 })
    a.release()
    expect(arena.stats()).toMatchObject({ heapsInUse: 1, crossThreadFrees: 10, abandonedSegments: 1 })
    mustMalloc(b, 64) // b's slow path reclaims the abandoned segment
    expect(arena.stats().reclaimedSegments).toBe(1)
    arena.check()
  })
})

/* ----- reclaimHeap ---------------------------------------------------------------------- */

describe('reclaimHeap', () => {
  /** Heap `dead` allocates blocks of many sizes (huge included) and fills them; it is never released. */
  function abandonedThread(arena: Arena): { dead: Heap, blocks: Array<{ p: number, n: number, byte: number }> } {
    const dead = arena.createHeap()
    const sizes = [...Array.from({ length: 400 }, (_, i) => (i * 61) % 3000), 12000, 70000, 250000, 2 * MiB]
    const blocks = sizes.map((n, i) => {
      const p = mustMalloc(dead, n)
      fillBlock(arena, p, n, (i % 200) + 1)
      return { p, n, byte: (i % 200) + 1 }
    })
    for (const b of blocks.splice(0, 100)) dead.free(b.p)
    return { dead, blocks }
  }

  it('keeps the blocks of a heap that was never released valid, and another heap can free them all', () => {
    const arena = Arena.create({ size: 32 * MiB })
    const { dead, blocks } = abandonedThread(arena)
    arena.reclaimHeap(dead.id)
    expect(arena.check().liveBlocks).toBe(blocks.length)
    expect(blocks.filter((b) => firstMismatch(arena, b.p, b.n, b.byte) >= 0)).toEqual([])
    const other = arena.createHeap()
    for (const b of blocks) other.free(b.p)
    other.collect(true)
    expectEmpty(arena)
  })

  it('frees the slot of the reclaimed heap', () => {
    const arena = Arena.create({ size: 32 * MiB, maxHeaps: 2 })
    const { dead } = abandonedThread(arena)
    arena.createHeap()
    arena.reclaimHeap(dead.id)
    expect(arena.createHeap().id).toBe(dead.id)
    arena.check()
  })

  it('hands cross-heap frees that were waiting for the dead heap over with its pages', () => {
    const arena = Arena.create({ size: 32 * MiB })
    const dead = arena.createHeap()
    const other = arena.createHeap()
    const ps = Array.from({ length: 2000 }, () => mustMalloc(dead, 64)) // full pages
    for (const p of ps.slice(0, 700)) other.free(p) // some into the delayed list, some into xthread_free
    arena.reclaimHeap(dead.id)
    expect(arena.check().liveBlocks).toBe(1300)
    for (const p of ps.slice(700)) other.free(p)
    other.collect(true)
    expectEmpty(arena)
  })

  it('lets the reclaiming heap allocate from the reclaimed pages', () => {
    const arena = Arena.create({ size: 32 * MiB })
    const { dead, blocks } = abandonedThread(arena)
    arena.reclaimHeap(dead.id)
    const segments = arena.check().segmentsInUse
    const other = arena.createHeap()
    const mine = Array.from({ length: 50 }, () => mustMalloc(other, 100))
    expect(arena.check()).toMatchObject({ liveBlocks: blocks.length + 50, segmentsInUse: segments })
    for (const p of mine) other.free(p)
    for (const b of blocks) other.free(b.p)
    other.collect(true)
    expectEmpty(arena)
  })
})
