import { describe, expect, it } from 'vitest'
import { Arena } from '../src/index.js'

describe('smoke', () => {
  it('allocates, frees, and returns every segment after collect(true)', () => {
    const arena = Arena.create({ size: 8 << 20 })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 1000 }, (_, i) => heap.malloc(16 + (i % 500)))
    expect(new Set(ps).size).toBe(1000)
    expect(arena.check().liveBlocks).toBe(1000)
    for (const p of ps) heap.free(p)
    heap.collect(true)
    expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
  })
})
