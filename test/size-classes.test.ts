/* ----------------------------------------------------------------------------
  Size classes: binOf maps a request to a bin, BIN_SIZE gives each bin's
  block size. malloc relies on these for fit, alignment and the direct table.
---------------------------------------------------------------------------- */

import { describe, expect, it } from 'vitest'
import { Arena } from '../src/index.js'
import {
  BIN_HUGE, DIRECT_ENTRIES, EMPTY_PAGE, HEAP_DIRECT, KIND_LARGE, KIND_MEDIUM, KIND_SMALL, LARGE_OBJ_MAX,
  MEDIUM_OBJ_MAX, MEDIUM_PAGE_SHIFT, PAGE_BLOCK_SIZE, SEGMENT_SIZE, SMALL_DIRECT_MAX, SMALL_OBJ_MAX, SMALL_PAGE_SHIFT,
} from '../src/layout.js'
import { BIN_SIZE, binOf, pageKindOf } from '../src/size-classes.js'
import { pageOf } from './helpers/arena.js'

/** Bins that have pages (1 … BIN_HUGE-1). */
const bins = Array.from({ length: BIN_HUGE - 1 }, (_, i) => i + 1)

describe('binOf and BIN_SIZE', () => {
  it('map every size 0..LARGE_OBJ_MAX to a bin whose block size fits it', () => {
    const misfits: number[] = []
    for (let size = 0; size <= LARGE_OBJ_MAX; size++) {
      const bin = binOf(size)
      if (!(bin >= 1 && bin < BIN_HUGE && BIN_SIZE[bin] >= size)) misfits.push(size)
    }
    expect(misfits.slice(0, 10)).toEqual([])
  })

  it('map every size 0..LARGE_OBJ_MAX to the smallest bin that fits it', () => {
    const wasteful: number[] = []
    for (let size = 0; size <= LARGE_OBJ_MAX; size++) {
      const bin = binOf(size)
      if (bin > 1 && BIN_SIZE[bin - 1] >= size) wasteful.push(size)
    }
    expect(wasteful.slice(0, 10)).toEqual([])
  })

  it('give strictly increasing block sizes to bins 1..BIN_HUGE-1, the last being LARGE_OBJ_MAX', () => {
    for (const bin of bins.slice(1)) expect(BIN_SIZE[bin], `bin ${bin}`).toBeGreaterThan(BIN_SIZE[bin - 1])
    expect(BIN_SIZE[1]).toBe(8)
    expect(BIN_SIZE[BIN_HUGE - 1]).toBe(LARGE_OBJ_MAX)
  })

  it('use every bin 1..BIN_HUGE-1 for some size', () => {
    const used = new Set<number>()
    for (let size = 0; size <= LARGE_OBJ_MAX; size += 8) used.add(binOf(size))
    expect([...used].sort((a, b) => a - b)).toEqual(bins)
  })

  it('give block sizes that are multiples of 16 from 16 bytes on (so those blocks are 16-aligned)', () => {
    const odd = bins.filter((bin) => BIN_SIZE[bin] >= 16 && BIN_SIZE[bin] % 16 !== 0).map((bin) => BIN_SIZE[bin])
    expect(odd).toEqual([])
  })

  it('give block sizes that are multiples of 8 (the 8-byte minimum alignment)', () => {
    expect(bins.filter((bin) => BIN_SIZE[bin] % 8 !== 0)).toEqual([])
  })

  it('waste less than 20% of a block on any request above 128 bytes (four bins per power of two)', () => {
    // waste = unused bytes of the block, as a share of the block
    let worst = { size: 0, block: 0, waste: 0 }
    for (let size = 129; size <= LARGE_OBJ_MAX; size++) {
      const block = BIN_SIZE[binOf(size)]
      const waste = (block - size) / block
      if (waste > worst.waste) worst = { size, block, waste }
    }
    expect(worst.waste, `request of ${worst.size} bytes gets a ${worst.block}-byte block`).toBeLessThan(0.2)
  })

  it('serve blocks up to 32 KiB from 64 KiB small pages, up to 64 KiB from 128 KiB medium pages, the rest from large pages', () => {
    // the memory-overhead policy of session 4: a sparse bin costs one page per heap, so pages stay small
    expect([SMALL_OBJ_MAX, MEDIUM_OBJ_MAX, LARGE_OBJ_MAX]).toEqual([32 * 1024, 64 * 1024, 128 * 1024])
    const pageSize = [0, 1 << SMALL_PAGE_SHIFT, 1 << MEDIUM_PAGE_SHIFT, SEGMENT_SIZE]
    for (const bin of bins) {
      const size = BIN_SIZE[bin]
      const kind = pageKindOf(size)
      expect(kind, `block size ${size}`).toBe(size <= SMALL_OBJ_MAX ? KIND_SMALL : size <= MEDIUM_OBJ_MAX ? KIND_MEDIUM : KIND_LARGE)
      // every page but a segment's first (shortened by the header) holds two blocks or more
      expect(Math.floor(pageSize[kind] / size), `blocks of ${size} bytes per page`).toBeGreaterThanOrEqual(2)
    }
  })

  it('send every size above LARGE_OBJ_MAX to BIN_HUGE', () => {
    for (const size of [LARGE_OBJ_MAX + 1, LARGE_OBJ_MAX + 8, 1 << 20, 3 << 20, 0x7ff00000, Number.MAX_SAFE_INTEGER]) {
      expect(binOf(size), `size ${size}`).toBe(BIN_HUGE)
    }
    expect(binOf(LARGE_OBJ_MAX)).toBeLessThan(BIN_HUGE)
  })
})

describe('the direct table', () => {
  it('has one entry per 8-byte step of sizes 0..SMALL_DIRECT_MAX (1024)', () => {
    expect(SMALL_DIRECT_MAX).toBe(1024)
    expect(DIRECT_ENTRIES).toBe(((SMALL_DIRECT_MAX + 7) >>> 3) + 1)
  })

  it('maps all sizes sharing an entry to the same bin (the entry decides the bin)', () => {
    const split: number[] = []
    for (let size = 0; size <= SMALL_DIRECT_MAX; size++) {
      const entry = (size + 7) >>> 3
      if (binOf(size) !== binOf(entry << 3)) split.push(size)
    }
    expect(split).toEqual([])
  })

  it('points the entry of each size ≤ 1024 at a page of that size\'s bin once one is allocated', () => {
    const arena = Arena.create({ size: 8 << 20 })
    const heap = arena.createHeap()
    const direct = arena.heapRecord(heap.id) + HEAP_DIRECT
    const wrong: string[] = []
    for (let size = 0; size <= SMALL_DIRECT_MAX; size++) {
      const p = heap.malloc(size)
      const entry = arena.i32[direct + ((size + 7) >>> 3)]
      if (entry === EMPTY_PAGE || entry !== pageOf(arena, p) || arena.i32[entry + PAGE_BLOCK_SIZE] !== BIN_SIZE[binOf(size)]) {
        wrong.push(`size ${size}`)
      }
    }
    expect(wrong.slice(0, 10)).toEqual([])
    arena.check()
  })
})
