import { describe, expect, it } from 'vitest'
import { Arena } from '../src/index.js'
import { HEAP_RECORDS, HEAP_WORDS, PAGE_WORDS, SEG_PAGES } from '../src/layout.js'

describe('layout', () => {
  it('puts every heap record on its own 128-byte units (no cache line shared between two heaps)', () => {
    // two workers' heaps sharing a line cost a third of the 2-worker throughput (bench, this machine)
    expect((HEAP_RECORDS * 4) % 128).toBe(0)
    expect((HEAP_WORDS * 4) % 128).toBe(0)
    const arena = Arena.create({ size: 4 << 20, maxHeaps: 8 })
    for (let id = 1; id <= 8; id++) expect((arena.heapRecord(id) * 4) % 128).toBe(0)
  })

  it('starts every page descriptor on a cache line', () => {
    expect((SEG_PAGES * 4) % 64).toBe(0)
    expect((PAGE_WORDS * 4) % 64).toBe(0)
  })
})
