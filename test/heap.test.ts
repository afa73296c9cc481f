/* ----------------------------------------------------------------------------
  Heap operations exactly as API.md states them: malloc, calloc, realloc,
  mallocAligned, free, usableSize, collect and release, in one thread.
---------------------------------------------------------------------------- */

import { describe, expect, it } from 'vitest'
import { AllocatorError, Arena, type Heap } from '../src/index.js'
import {
  DEBUG_HEADER, DEBUG_REAR_MIN, LARGE_OBJ_MAX, MEDIUM_OBJ_MAX, SEGMAP, SEGMENT_SHIFT, SEGMENT_SIZE, SMALL_OBJ_MAX,
  SMALL_PAGE_SHIFT,
} from '../src/layout.js'
import {
  HUGE_ONE_SEGMENT, KiB, MiB, fillBlock, firstChangedByte, firstMismatch, mustMalloc, pageOf, snapshot,
} from './helpers/arena.js'

function setup(size = 16 * MiB): { arena: Arena, heap: Heap } {
  const arena = Arena.create({ size })
  return { arena, heap: arena.createHeap() }
}

/** The arena holds nothing: no live block and only its metadata segments. */
function expectEmpty(arena: Arena): void {
  expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
}

/** Pairs [p, usable] sorted by p overlap nowhere. Returns the first overlapping pair, or undefined. */
function firstOverlap(blocks: Array<[number, number]>): string | undefined {
  const sorted = [...blocks].sort((a, b) => a[0] - b[0])
  for (let i = 1; i < sorted.length; i++) {
    const [p, n] = sorted[i - 1]
    if (p + n > sorted[i][0]) return `[0x${p.toString(16)}, +${n}) overlaps 0x${sorted[i][0].toString(16)}`
  }
  return undefined
}

/* ----- malloc ------------------------------------------------------------------- */

describe('malloc', () => {
  it('returns a distinct block for every malloc(0)', () => {
    const { arena, heap } = setup()
    const ps = Array.from({ length: 200 }, () => mustMalloc(heap, 0))
    expect(new Set(ps).size).toBe(200)
    expect(firstOverlap(ps.map((p) => [p, Math.max(1, heap.usableSize(p))]))).toBeUndefined()
    expect(arena.check().liveBlocks).toBe(200)
    for (const p of ps) heap.free(p)
    heap.collect(true)
    expectEmpty(arena)
  })

  it('returns 8-aligned blocks for sizes below 16', () => {
    const { heap } = setup()
    for (let size = 0; size < 16; size++) {
      for (let i = 0; i < 5; i++) expect(mustMalloc(heap, size) % 8, `size ${size}`).toBe(0)
    }
  })

  it('returns 16-aligned blocks for every size from 16 bytes on', () => {
    const { heap } = setup(64 * MiB)
    const sizes = [...Array.from({ length: 2048 - 16 }, (_, i) => 16 + i), 5000, SMALL_OBJ_MAX, SMALL_OBJ_MAX + 1, 20000,
      MEDIUM_OBJ_MAX, MEDIUM_OBJ_MAX + 1, 100000, LARGE_OBJ_MAX, LARGE_OBJ_MAX + 1, 3 * MiB]
    const misaligned = sizes.filter((size) => mustMalloc(heap, size) % 16 !== 0)
    expect(misaligned).toEqual([])
  })

  it('returns blocks of at least the requested size (usableSize ≥ size)', () => {
    const { heap } = setup(64 * MiB)
    const sizes = [...Array.from({ length: 4097 }, (_, i) => i), SMALL_OBJ_MAX - 1, SMALL_OBJ_MAX, SMALL_OBJ_MAX + 1, 30000,
      MEDIUM_OBJ_MAX, MEDIUM_OBJ_MAX + 1, 100000, LARGE_OBJ_MAX, LARGE_OBJ_MAX + 1, 300000, MiB, 3 * MiB + 5]
    const short = sizes.filter((size) => heap.usableSize(mustMalloc(heap, size)) < size)
    expect(short).toEqual([])
  })

  it('returns blocks that overlap no other live block and lie past the metadata', () => {
    const { arena, heap } = setup(64 * MiB)
    const blocks: Array<[number, number]> = []
    for (let i = 0; i < 3000; i++) {
      const size = (i * 7919) % 3000
      const p = mustMalloc(heap, size)
      blocks.push([p, heap.usableSize(p)])
    }
    for (const size of [20000, 70000, 600000, 2 * MiB]) {
      const p = mustMalloc(heap, size)
      blocks.push([p, heap.usableSize(p)])
    }
    expect(firstOverlap(blocks)).toBeUndefined()
    const metaEnd = arena.metaSegments * SEGMENT_SIZE
    expect(blocks.filter(([p, n]) => p < metaEnd || p + n > arena.buffer.byteLength)).toEqual([])
  })

  it('gives blocks whose every usable byte can be written without disturbing other blocks', () => {
    const { arena, heap } = setup()
    const blocks = Array.from({ length: 500 }, (_, i) => {
      const p = mustMalloc(heap, (i * 37) % 1500)
      const n = heap.usableSize(p)
      fillBlock(arena, p, n, i & 0xff)
      return { p, n, byte: i & 0xff }
    })
    const damaged = blocks.filter((b) => firstMismatch(arena, b.p, b.n, b.byte) >= 0)
    expect(damaged).toEqual([])
    arena.check()
  })
})

/* ----- calloc ------------------------------------------------------------------- */

describe('calloc', () => {
  it.each([8, 24, 100, 1000, 5000, 20000, 100000])(
    'zeroes reused memory: blocks of %i bytes written with garbage, freed and calloc-ed again read as zeros', (size) => {
      const { arena, heap } = setup()
      // enough blocks to use up a page's first free-list extensions, so calloc gets freed ones back
      const count = Math.max(4, Math.min(5000, Math.floor(2 * MiB / size)))
      const first = Array.from({ length: count }, () => mustMalloc(heap, size))
      for (const p of first) fillBlock(arena, p, heap.usableSize(p), 0xab)
      for (const p of first) heap.free(p)
      const again = Array.from({ length: count }, () => heap.calloc(1, size))
      expect(again.filter((p) => first.includes(p)).length, 'calloc reused freed blocks').toBeGreaterThan(0)
      const dirty = again.filter((p) => firstMismatch(arena, p, size, 0) >= 0)
      expect(dirty).toEqual([])
    })

  it('zeroes a huge block whose segments held garbage', () => {
    const { arena, heap } = setup()
    const p = mustMalloc(heap, MiB)
    fillBlock(arena, p, heap.usableSize(p), 0xab)
    heap.free(p)
    const q = heap.calloc(MiB / 8, 8)
    expect(q).toBe(p)
    expect(firstMismatch(arena, q, MiB, 0)).toBe(-1)
  })

  it('zeroes count × size bytes of a block for a count above 1', () => {
    const { arena, heap } = setup()
    const ps = Array.from({ length: 100 }, () => mustMalloc(heap, 96))
    for (const p of ps) fillBlock(arena, p, 96, 0xee)
    for (const p of ps) heap.free(p)
    const qs = Array.from({ length: 100 }, () => heap.calloc(12, 8))
    expect(qs.filter((q) => heap.usableSize(q) < 96 || firstMismatch(arena, q, 96, 0) >= 0)).toEqual([])
  })

  it('returns a distinct block for calloc(0, n) and calloc(n, 0)', () => {
    const { arena, heap } = setup()
    const ps = [heap.calloc(0, 8), heap.calloc(8, 0), heap.calloc(0, 0), heap.calloc(0, 8)]
    expect(ps.every((p) => p !== 0)).toBe(true)
    expect(new Set(ps).size).toBe(4)
    expect(arena.check().liveBlocks).toBe(4)
  })

  it.each([false, true])('returns a block for a zero factor times a count beyond uint32 (debug %s)', (debug) => {
    const arena = Arena.create({ size: 8 * MiB, debug })
    const heap = arena.createHeap()
    const ps = [heap.calloc(2 ** 32, 0), heap.calloc(0, 2 ** 40), heap.calloc(Number.MAX_SAFE_INTEGER, 0)]
    expect(ps.every((p) => p !== 0)).toBe(true)
    expect(arena.check().liveBlocks).toBe(3)
  })

  it.each([
    [2 ** 27, 2 ** 27], [Number.MAX_SAFE_INTEGER, 2], [2, Number.MAX_SAFE_INTEGER], [2 ** 40, 2 ** 40],
  ])('throws RangeError when count × size overflows (%i × %i) and changes nothing', (count, size) => {
    const { arena, heap } = setup(4 * MiB)
    const keep = mustMalloc(heap, 100)
    fillBlock(arena, keep, 100, 0x5a)
    const before = snapshot(arena)
    expect(() => heap.calloc(count, size)).toThrow(RangeError)
    expect(firstChangedByte(arena, before)).toBe(-1)
    expect(arena.check()).toEqual(before.check)
  })
})

/* ----- realloc ------------------------------------------------------------------ */

describe('realloc', () => {
  it('keeps the block in place when the new size still fits it', () => {
    const { heap } = setup()
    const p = mustMalloc(heap, 100)
    const usable = heap.usableSize(p)
    expect(heap.realloc(p, usable)).toBe(p)
    expect(heap.realloc(p, 101)).toBe(p)
    expect(heap.realloc(p, 100)).toBe(p)
    expect(heap.realloc(p, usable - 8)).toBe(p)
  })

  it('keeps a huge block in place when it shrinks a little', () => {
    const { heap } = setup()
    const p = mustMalloc(heap, 3 * MiB)
    expect(heap.realloc(p, 3 * MiB - 1000)).toBe(p)
  })

  it.each([
    [100, 5000], [16, 17 * 16], [1000, 100000], [5000, 600 * KiB], [600 * KiB, 3 * MiB], [0, 64],
  ])('moves a block growing from %i to %i bytes and keeps its contents', (from, to) => {
    const { arena, heap } = setup()
    const p = mustMalloc(heap, from)
    for (let i = 0; i < from; i++) arena.u8[p + i] = (i * 31 + 7) & 0xff
    const q = heap.realloc(p, to)
    expect(q).not.toBe(0)
    expect(q).not.toBe(p)
    expect(heap.usableSize(q)).toBeGreaterThanOrEqual(to)
    let bad = -1
    for (let i = 0; i < from && bad < 0; i++) if (arena.u8[q + i] !== ((i * 31 + 7) & 0xff)) bad = i
    expect(bad).toBe(-1)
    expect(arena.check().liveBlocks).toBe(1) // the old block was freed
  })

  it.each([[3 * MiB, 100], [5000, 10], [100000, 1000]])(
    'keeps the first bytes of a block shrinking from %i to %i bytes', (from, to) => {
      const { arena, heap } = setup()
      const p = mustMalloc(heap, from)
      for (let i = 0; i < to; i++) arena.u8[p + i] = (i * 13 + 1) & 0xff
      const q = heap.realloc(p, to)
      expect(q).not.toBe(0)
      expect(heap.usableSize(q)).toBeGreaterThanOrEqual(to)
      let bad = -1
      for (let i = 0; i < to && bad < 0; i++) if (arena.u8[q + i] !== ((i * 13 + 1) & 0xff)) bad = i
      expect(bad).toBe(-1)
      expect(arena.check().liveBlocks).toBe(1)
    })

  it.each([0, 1, 100, 5000, MiB])('realloc(0, %i) allocates like malloc', (size) => {
    const { arena, heap } = setup()
    const p = heap.realloc(0, size)
    expect(p).not.toBe(0)
    expect(heap.usableSize(p)).toBeGreaterThanOrEqual(size)
    expect(arena.check().liveBlocks).toBe(1)
    heap.free(p)
    expect(arena.check().liveBlocks).toBe(0)
  })

  it('returns 0 when the arena cannot hold the new size, and the old block stays valid and intact', () => {
    const { arena, heap } = setup(4 * MiB)
    const p = mustMalloc(heap, 1000)
    fillBlock(arena, p, 1000, 0x3c)
    const before = arena.check()
    expect(heap.realloc(p, 8 * MiB)).toBe(0)
    expect(firstMismatch(arena, p, 1000, 0x3c)).toBe(-1)
    expect(arena.check()).toEqual(before)
    heap.free(p)
    heap.collect(true)
    expectEmpty(arena)
  })

  it('returns 0 for a size beyond any arena, and the old block stays valid', () => {
    const { arena, heap } = setup(4 * MiB)
    const p = mustMalloc(heap, 64)
    fillBlock(arena, p, 64, 0x77)
    expect(heap.realloc(p, 2 ** 40)).toBe(0)
    expect(firstMismatch(arena, p, 64, 0x77)).toBe(-1)
    expect(arena.check().liveBlocks).toBe(1)
    heap.free(p)
    expect(arena.check().liveBlocks).toBe(0)
  })
})

/* ----- mallocAligned --------------------------------------------------------------- */

const ALIGNMENTS = Array.from({ length: 18 }, (_, i) => 8 << i) // 8 … 1 MiB

describe('mallocAligned', () => {
  it.each(ALIGNMENTS)('returns %i-aligned blocks of at least the size asked, which free cleanly', (alignment) => {
    const { arena, heap } = setup(64 * MiB)
    const sizes = [0, 1, 24, alignment - 1, alignment, alignment + 8, 3 * alignment + 8, 5000]
    const ps = sizes.map((size) => {
      const p = heap.mallocAligned(size, alignment)
      expect(p, `mallocAligned(${size}, ${alignment})`).not.toBe(0)
      expect(p % alignment, `mallocAligned(${size}, ${alignment}) = ${p}`).toBe(0)
      expect(heap.usableSize(p), `usableSize of mallocAligned(${size}, ${alignment})`).toBeGreaterThanOrEqual(size)
      return p
    })
    expect(firstOverlap(ps.map((p) => [p, heap.usableSize(p)]))).toBeUndefined()
    expect(arena.check().liveBlocks).toBe(sizes.length)
    for (const p of ps) heap.free(p)
    heap.collect(true)
    expectEmpty(arena)
  })

  it.each([0, 1, 2, 4, 3, 12, 24, 48, 100, 2 * MiB, 4 * MiB, -8, 8.5, NaN, Infinity, '64'])(
    'throws RangeError for alignment %s and changes nothing', (alignment) => {
      const { arena, heap } = setup(4 * MiB)
      mustMalloc(heap, 100)
      const before = snapshot(arena)
      expect(() => heap.mallocAligned(64, alignment as number)).toThrow(RangeError)
      expect(firstChangedByte(arena, before)).toBe(-1)
    })
})

/*
  Alignments above SEGMENT_SIZE: a segment's start is only SEGMENT_SIZE-aligned,
  so mallocHuge over-claims a run by the alignment and trims it to the block
  (segmentAllocHuge). A one-segment block between the aligned ones moves
  where the next run lands, so each lands at a different offset modulo the
  alignment.
*/
describe.each([false, true])('mallocAligned above the segment size (debug %s)', (debug) => {
  const sizes = [0, 8, 5000, 300 * KiB, 2 * MiB + 5]
  /** Bytes a block of `size` takes besides its alignment (debug: header and rear guard). */
  const extra = debug ? DEBUG_HEADER + DEBUG_REAR_MIN : 0

  /** Aligned blocks of every size (each after a one-segment spacer); fills them and checks alignment and trimming. */
  function alignedBlocks(arena: Arena, heap: Heap, alignment: number): number[] {
    const before = arena.check().segmentsInUse
    const spacers: number[] = []
    const ps = sizes.map((size, i) => {
      spacers.push(mustMalloc(heap, HUGE_ONE_SEGMENT))
      const p = heap.mallocAligned(size, alignment)
      expect(p, `mallocAligned(${size}, ${alignment})`).not.toBe(0)
      expect(p % alignment, `mallocAligned(${size}, ${alignment}) = 0x${p.toString(16)}`).toBe(0)
      expect(heap.usableSize(p)).toBeGreaterThanOrEqual(size)
      fillBlock(arena, p, size, i + 1)
      return p
    })
    for (const p of spacers) heap.free(p)
    // trimmed: a head segment for the header, then the block's own segments; none of the over-claim
    const most = sizes.reduce((t, size) => t + 1 + Math.ceil((Math.max(size, 1) + extra) / SEGMENT_SIZE), 0)
    const check = arena.check()
    expect(check.liveBlocks).toBe(sizes.length)
    expect(check.segmentsInUse - before).toBeLessThanOrEqual(most)
    expect(sizes.filter((size, i) => firstMismatch(arena, ps[i], size, i + 1) >= 0)).toEqual([])
    return ps
  }

  it.each([512 * KiB, MiB])('gives %i-aligned blocks whose local free returns every segment', (alignment) => {
    const arena = Arena.create({ size: 64 * MiB, debug })
    const heap = arena.createHeap()
    const ps = alignedBlocks(arena, heap, alignment)
    if (!debug) expect(ps.some((p) => arena.i32[SEGMAP + (p >>> SEGMENT_SHIFT)] < 0), 'a block starts in a follower segment').toBe(true)
    for (const p of ps) heap.free(p)
    expectEmpty(arena)
  })

  it.each([512 * KiB, MiB])('gives %i-aligned blocks that another heap frees (cross-heap), and the owner gets every segment back', (alignment) => {
    const arena = Arena.create({ size: 64 * MiB, debug })
    const owner = arena.createHeap()
    const other = arena.createHeap()
    const ps = alignedBlocks(arena, owner, alignment)
    for (const p of ps) other.free(p)
    expect(arena.check().liveBlocks).toBe(0)
    owner.collect()
    expectEmpty(arena)
  })
})

/* ----- huge blocks ------------------------------------------------------------------- */

describe('huge blocks', () => {
  it('allocates a 3 MiB block over several segments, usable end to end, and frees its segments', () => {
    const { arena, heap } = setup()
    const p = mustMalloc(heap, 3 * MiB)
    expect(heap.usableSize(p)).toBeGreaterThanOrEqual(3 * MiB)
    fillBlock(arena, p, 3 * MiB, 0x42)
    const span = Math.ceil((3 * MiB + arena.segHeaderSize) / SEGMENT_SIZE) // header + block, no more
    expect(arena.check()).toMatchObject({ liveBlocks: 1, segmentsInUse: arena.metaSegments + span })
    expect(firstMismatch(arena, p, 3 * MiB, 0x42)).toBe(-1)
    heap.free(p)
    expectEmpty(arena)
  })

  it('serves the first size above LARGE_OBJ_MAX as a huge block', () => {
    const { arena, heap } = setup()
    const p = mustMalloc(heap, LARGE_OBJ_MAX + 1)
    expect(heap.usableSize(p)).toBeGreaterThanOrEqual(LARGE_OBJ_MAX + 1)
    heap.free(p)
    expectEmpty(arena)
  })

  it('keeps several huge blocks apart and frees them in any order', () => {
    const { arena, heap } = setup(32 * MiB)
    const sizes = [3 * MiB, 600 * KiB, 2 * MiB + 1, MiB, 5 * MiB]
    const ps = sizes.map((size, i) => {
      const p = mustMalloc(heap, size)
      fillBlock(arena, p, size, i + 1)
      return p
    })
    expect(firstOverlap(ps.map((p) => [p, heap.usableSize(p)]))).toBeUndefined()
    for (const i of [2, 0, 4, 1, 3]) {
      expect(firstMismatch(arena, ps[i], sizes[i], i + 1)).toBe(-1)
      heap.free(ps[i])
    }
    expectEmpty(arena)
  })
})

/* ----- page queues, free and collect ----------------------------------------------------- */

describe('page queues and collect', () => {
  const orders: Record<string, (n: number) => number[]> = {
    'allocation order': (n) => Array.from({ length: n }, (_, i) => i),
    'reverse order': (n) => Array.from({ length: n }, (_, i) => n - 1 - i),
    'odd blocks first, then even': (n) => [
      ...Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 1),
      ...Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0),
    ],
  }
  // small, the largest small, medium and large blocks
  const sizes = [64, SMALL_OBJ_MAX, (SMALL_OBJ_MAX + MEDIUM_OBJ_MAX) / 2, (MEDIUM_OBJ_MAX + LARGE_OBJ_MAX) / 2]
  const cases = sizes.flatMap((size) => Object.keys(orders).map((order) => [size, order] as const))

  it.each(cases)('returns every segment after blocks of %i bytes filling several pages are freed in %s and collect(true)', (size, order) => {
    const { arena, heap } = setup(64 * MiB)
    const count = Math.min(5000, Math.ceil(6 * MiB / size))
    const ps = Array.from({ length: count }, () => mustMalloc(heap, size))
    const pages = new Set(ps.map((p) => pageOf(arena, p)))
    expect(pages.size).toBeGreaterThanOrEqual(4)
    expect(arena.check().liveBlocks).toBe(count)
    for (const i of orders[order](count)) heap.free(ps[i])
    expect(arena.check().liveBlocks).toBe(0)
    heap.collect(true)
    expect(arena.check().segmentsInUse).toBe(arena.metaSegments)
  })

  it('reuses the pages it keeps: a second round of the same blocks needs no more segments', () => {
    const { arena, heap } = setup(64 * MiB)
    let ps = Array.from({ length: 3000 }, () => mustMalloc(heap, 200))
    const segments = arena.check().segmentsInUse
    for (const p of ps) heap.free(p)
    ps = Array.from({ length: 3000 }, () => mustMalloc(heap, 200))
    expect(arena.check().segmentsInUse).toBe(segments)
  })

  it('keeps live blocks intact through collect() and collect(true)', () => {
    const { arena, heap } = setup()
    const ps = Array.from({ length: 2000 }, (_, i) => mustMalloc(heap, 16 + (i % 300)))
    ps.forEach((p, i) => fillBlock(arena, p, 16 + (i % 300), i & 0xff))
    for (let i = 0; i < ps.length; i += 3) heap.free(ps[i])
    heap.collect()
    heap.collect(true)
    const live = ps.map((p, i) => ({ p, i })).filter(({ i }) => i % 3 !== 0)
    expect(live.filter(({ p, i }) => firstMismatch(arena, p, 16 + (i % 300), i & 0xff) >= 0)).toEqual([])
    expect(arena.check().liveBlocks).toBe(live.length)
  })
})

/* ----- release -------------------------------------------------------------------------- */

describe('release', () => {
  const calls: Array<[string, (h: Heap, p: number) => unknown]> = [
    ['malloc(16)', (h) => h.malloc(16)],
    ['malloc(0)', (h) => h.malloc(0)],
    ['malloc(5000)', (h) => h.malloc(5000)],
    ['malloc(1 MiB)', (h) => h.malloc(MiB)],
    ['calloc(4, 8)', (h) => h.calloc(4, 8)],
    ['realloc(0, 16)', (h) => h.realloc(0, 16)],
    ['realloc(p, same size)', (h, p) => h.realloc(p, 100)],
    ['realloc(p, 5000)', (h, p) => h.realloc(p, 5000)],
    ['mallocAligned(64, 8)', (h) => h.mallocAligned(64, 8)],
    ['mallocAligned(64, 64)', (h) => h.mallocAligned(64, 64)],
    ['mallocAligned(64, 8192)', (h) => h.mallocAligned(64, 8192)],
    ['mallocAligned(64, 1 MiB)', (h) => h.mallocAligned(64, MiB)],
    ['free(p)', (h, p) => h.free(p)],
    ['usableSize(p)', (h, p) => h.usableSize(p)],
    ['collect()', (h) => h.collect()],
    ['collect(true)', (h) => h.collect(true)],
    ['release()', (h) => h.release()],
  ]

  it.each(calls)('makes %s on the released heap throw AllocatorError and change nothing', (_, call) => {
    const arena = Arena.create({ size: 8 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 100)
    fillBlock(arena, p, 100, 0x99)
    heap.release()
    const before = snapshot(arena)
    expect(() => call(heap, p)).toThrow(AllocatorError)
    expect(firstChangedByte(arena, before)).toBe(-1)
    expect(arena.check()).toEqual(before.check)
  })

  /** Heap A allocates blocks of many sizes (huge included), fills them, and is released. */
  function releasedHeapWithBlocks(): { arena: Arena, blocks: Array<{ p: number, n: number, byte: number }> } {
    const arena = Arena.create({ size: 32 * MiB })
    const a = arena.createHeap()
    const sizes = [...Array.from({ length: 600 }, (_, i) => (i * 53) % 2000), 9000, 40000, 100000, 300000, 2 * MiB]
    const blocks = sizes.map((n, i) => {
      const p = mustMalloc(a, n)
      fillBlock(arena, p, n, (i % 250) + 1)
      return { p, n, byte: (i % 250) + 1 }
    })
    // some blocks freed before release, so pages are partly free
    for (const b of blocks.splice(0, 200)) a.free(b.p)
    a.release()
    return { arena, blocks }
  }

  it('leaves the blocks of a released heap valid: another heap finds them intact and frees them, and the arena ends empty', () => {
    const { arena, blocks } = releasedHeapWithBlocks()
    expect(arena.check().liveBlocks).toBe(blocks.length)
    const b = arena.createHeap()
    expect(blocks.filter((x) => firstMismatch(arena, x.p, x.n, x.byte) >= 0)).toEqual([])
    for (const x of blocks) b.free(x.p)
    expect(arena.check().liveBlocks).toBe(0)
    b.collect(true)
    expectEmpty(arena)
  })

  it('lets another heap reclaim the abandoned segments while it allocates, then free the released heap\'s blocks', () => {
    const { arena, blocks } = releasedHeapWithBlocks()
    const b = arena.createHeap()
    const mine = Array.from({ length: 500 }, (_, i) => mustMalloc(b, (i * 53) % 2000))
    expect(arena.stats().reclaimedSegments).toBeGreaterThan(0)
    expect(blocks.filter((x) => firstMismatch(arena, x.p, x.n, x.byte) >= 0)).toEqual([])
    for (const x of blocks) b.free(x.p)
    for (const p of mine) b.free(p)
    b.collect(true)
    expectEmpty(arena)
  })
})

describe('segment slot policy (memory overhead, issue #5)', () => {
  /** Small pages per segment. */
  const PAGES = SEGMENT_SIZE >>> SMALL_PAGE_SHIFT
  /** Frees every block of `ps` whose small page is one of `pages` (page = address >>> SMALL_PAGE_SHIFT). */
  const freePages = (heap: Heap, ps: number[], pages: number[]): number[] => {
    const drop = new Set(pages)
    for (const p of ps) if (drop.has(p >>> SMALL_PAGE_SHIFT)) heap.free(p)
    return ps.filter((p) => !drop.has(p >>> SMALL_PAGE_SHIFT))
  }

  it('puts a fresh page in the fullest of the heap\'s segments with a free slot, not in the most recently emptied one', () => {
    const arena = Arena.create({ size: 16 * MiB })
    const heap = arena.createHeap()
    // SMALL_OBJ_MAX blocks: small pages of 1-2 blocks; fill segments A and B (PAGES pages each) and 2 pages of C
    let ps: number[] = []
    const pagesOf = (seg: number): number[] => [...new Set(ps.filter((p) => p >>> SEGMENT_SHIFT === seg).map((p) => p >>> SMALL_PAGE_SHIFT))]
    const segs = (): number[] => [...new Set(ps.map((p) => p >>> SEGMENT_SHIFT))]
    while (segs().length < 3 || pagesOf(segs()[2]).length < 2) ps.push(mustMalloc(heap, SMALL_OBJ_MAX))
    const [a, b] = segs()
    ps = freePages(heap, ps, pagesOf(a).slice(0, 1)) // A: PAGES - 1 pages in use
    ps = freePages(heap, ps, pagesOf(b).slice(0, PAGES / 2)) // B: half its pages in use, the front of the heap's segment queue
    const p = mustMalloc(heap, 16) // a new bin: needs a fresh page
    expect(p >>> SEGMENT_SHIFT).toBe(a)
    for (const q of [...ps, p]) heap.free(q)
    heap.collect()
    expect(arena.stats().segmentsInUse).toBe(arena.metaSegments)
  })
})
