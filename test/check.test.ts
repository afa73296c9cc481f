/* ----------------------------------------------------------------------------
  arena.check() finds damage. Each test builds a fresh arena in a known
  state, shows check() accepts it, damages one thing through arena.i32 (with
  the constants of src/layout.ts), expects HeapCorruptionError, then repairs
  the damage and shows check() accepts the arena again — so the throw came
  from that one damaged word.
---------------------------------------------------------------------------- */

import { describe, expect, it } from 'vitest'
import { AllocatorError, Arena, HeapCorruptionError, type Heap } from '../src/index.js'
import {
  ABANDONED_BITMAP, ARENA_BITMAP, BIN_FULL, EMPTY_PAGE, HEAP_DELAYED_FREE, HEAP_DIRECT, HEAP_QUEUES, HEAP_STATE,
  KIND_MEDIUM, PAGE_BLOCK_SIZE, PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_FULL, PAGE_FREE, PAGE_LOCAL_FREE,
  PAGE_NEXT, PAGE_PREV, PAGE_RESERVED, PAGE_USED, PAGE_XTHREAD_FREE, QUEUE_FIRST, QUEUE_LAST, SEGMAP,
  SEGMENT_SIZE, SEG_OWNER, SEG_USED_PAGES,
} from '../src/layout.js'
import { binOf } from '../src/size-classes.js'
import { MiB, mustMalloc, pageOf, segOf, segWordOf } from './helpers/arena.js'

type Damage = Array<[word: number, value: number]>

/**
 * check() passes; after writing `damage` it throws HeapCorruptionError; after
 * restoring the old words it passes again. Returns the error.
 */
function expectDetected(arena: Arena, damage: Damage): HeapCorruptionError {
  const i32 = arena.i32
  const before = arena.check()
  const old = damage.map(([w]) => i32[w])
  for (const [w, v] of damage) i32[w] = v
  let error: unknown
  try {
    arena.check()
  } catch (e) {
    error = e
  }
  damage.forEach(([w], k) => { i32[w] = old[k] })
  expect(error).toBeInstanceOf(HeapCorruptionError)
  expect((error as AllocatorError).code).toBe('ERR_HEAP_CORRUPTION')
  expect(arena.check()).toEqual(before)
  return error as HeapCorruptionError
}

/** Word offset of queue `bin` of heap `h`. */
function queue(arena: Arena, h: Heap, bin: number): number {
  return arena.heapRecord(h.id) + HEAP_QUEUES + 2 * bin
}

/** A fresh arena and heap with 20 blocks of 32 bytes, blocks 3, 4 and 5 freed (on local_free, 5 first). */
function withFreedBlocks(): { arena: Arena, heap: Heap, ps: number[] } {
  const arena = Arena.create({ size: 4 * MiB })
  const heap = arena.createHeap()
  const ps = Array.from({ length: 20 }, () => mustMalloc(heap, 32))
  heap.free(ps[3])
  heap.free(ps[4])
  heap.free(ps[5])
  return { arena, heap, ps }
}

/* ----- free lists ------------------------------------------------------------------------ */

describe('check() detects a broken free list', () => {
  it('a freed block whose link was overwritten to point at itself (a cycle)', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[ps[4] >>> 2, ps[4] ^ arena.key]])
  })

  it('a freed block whose link was overwritten with an unaligned address', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[ps[4] >>> 2, (ps[4] + 4) ^ arena.key]])
  })

  it('a freed block whose link was overwritten with the address of a live block', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[ps[3] >>> 2, ps[10] ^ arena.key]])
  })

  it('a freed block whose link was overwritten with a pointer outside its page', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[ps[3] >>> 2, (ps[3] + 4 * MiB) ^ arena.key]])
  })

  it('a link in the page\'s free list (after collect moved the freed blocks there) pointing back to its head', () => {
    const { arena, heap, ps } = withFreedBlocks()
    heap.collect(true)
    const pd = pageOf(arena, ps[0])
    const head = arena.i32[pd + PAGE_FREE]
    expect(head).not.toBe(0)
    const second = arena.i32[head >>> 2] ^ arena.key
    expect(second).not.toBe(0)
    expectDetected(arena, [[second >>> 2, head ^ arena.key]])
  })

  it('a page whose local_free head is not a block start', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[pageOf(arena, ps[0]) + PAGE_LOCAL_FREE, ps[5] + 8]])
  })

  it('a page whose local_free head is a live block', () => {
    const { arena, ps } = withFreedBlocks()
    const pd = pageOf(arena, ps[0])
    // a live block at the head, linking on to the rest of the list: one block counted twice over
    expectDetected(arena, [[pd + PAGE_LOCAL_FREE, ps[10]], [ps[10] >>> 2, arena.i32[pd + PAGE_LOCAL_FREE] ^ arena.key]])
  })

  it('a cross-heap free list (xthread_free) with a cycle', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const a = arena.createHeap()
    const b = arena.createHeap()
    const ps = Array.from({ length: 20 }, () => mustMalloc(a, 32))
    b.free(ps[7])
    b.free(ps[8])
    const pd = pageOf(arena, ps[0])
    expect(arena.i32[pd + PAGE_XTHREAD_FREE] & ~7).toBe(ps[8])
    expectDetected(arena, [[ps[7] >>> 2, ps[8] ^ arena.key]])
  })

  it('a heap\'s delayed-free list holding a pointer that is not a block', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const a = arena.createHeap()
    mustMalloc(a, 32)
    expectDetected(arena, [[arena.heapRecord(a.id) + HEAP_DELAYED_FREE, 12]])
  })
})

/* ----- counts ------------------------------------------------------------------------------ */

describe('check() detects a wrong count', () => {
  it.each([1, -1])('a page whose used count is off by %i', (delta) => {
    const { arena, ps } = withFreedBlocks()
    const w = pageOf(arena, ps[0]) + PAGE_USED
    expectDetected(arena, [[w, arena.i32[w] + delta]])
  })

  it('a page whose capacity exceeds the blocks it can reserve', () => {
    const { arena, ps } = withFreedBlocks()
    const pd = pageOf(arena, ps[0])
    expectDetected(arena, [[pd + PAGE_CAPACITY, arena.i32[pd + PAGE_RESERVED] + 1]])
  })

  it('a page whose block size disagrees with its bin', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[pageOf(arena, ps[0]) + PAGE_BLOCK_SIZE, 48]])
  })

  it('a segment whose count of pages in use is wrong', () => {
    const { arena, ps } = withFreedBlocks()
    const w = segWordOf(segOf(ps[0])) + SEG_USED_PAGES
    expectDetected(arena, [[w, arena.i32[w] + 1]])
  })
})

/* ----- bitmaps and segment map --------------------------------------------------------------- */

describe('check() detects bitmaps that disagree with the segments', () => {
  it('a used segment whose bit in the arena bitmap is clear', () => {
    const { arena, ps } = withFreedBlocks()
    const seg = segOf(ps[0])
    const w = ARENA_BITMAP + (seg >>> 5)
    expectDetected(arena, [[w, arena.i32[w] & ~(1 << (seg & 31))]])
  })

  it('a follower segment of a huge block whose bit in the arena bitmap is clear', () => {
    const arena = Arena.create({ size: 8 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 2 * MiB)
    const seg = segOf(p) + 1
    const w = ARENA_BITMAP + (seg >>> 5)
    expectDetected(arena, [[w, arena.i32[w] & ~(1 << (seg & 31))]])
  })

  it('a free segment whose bit in the arena bitmap is set', () => {
    const { arena } = withFreedBlocks()
    const seg = (arena.buffer.byteLength / SEGMENT_SIZE) - 1 // the last one
    const w = ARENA_BITMAP + (seg >>> 5)
    expectDetected(arena, [[w, arena.i32[w] | (1 << (seg & 31))]])
  })

  it('a metadata segment whose bit in the arena bitmap is clear', () => {
    const { arena } = withFreedBlocks()
    expectDetected(arena, [[ARENA_BITMAP, arena.i32[ARENA_BITMAP] & ~1]])
  })

  it('a segment owned by a live heap whose abandoned bit is set', () => {
    const { arena, ps } = withFreedBlocks()
    const seg = segOf(ps[0])
    const w = ABANDONED_BITMAP + (seg >>> 5)
    expectDetected(arena, [[w, arena.i32[w] | (1 << (seg & 31))]])
  })

  it('a segment whose segment-map kind disagrees with its header', () => {
    const { arena, ps } = withFreedBlocks()
    expectDetected(arena, [[SEGMAP + segOf(ps[0]), KIND_MEDIUM]])
  })

  it('a segment owned by a heap slot that is not in use', () => {
    const arena = Arena.create({ size: 4 * MiB, maxHeaps: 4 })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 32)
    expect(arena.i32[arena.heapRecord(4) + HEAP_STATE]).toBe(0)
    expectDetected(arena, [[segWordOf(segOf(p)) + SEG_OWNER, 4]])
  })
})

/* ----- page queues ------------------------------------------------------------------------- */

describe('check() detects broken page queues', () => {
  it('a page that is in two queues', () => {
    const { arena, heap, ps } = withFreedBlocks()
    const pd = pageOf(arena, ps[0])
    const other = queue(arena, heap, binOf(64)) // empty: no 64-byte block was allocated
    expect(arena.i32[other + QUEUE_FIRST]).toBe(0)
    expectDetected(arena, [[other + QUEUE_FIRST, pd], [other + QUEUE_LAST, pd]])
  })

  it('a page that is in its bin\'s queue and in the full queue', () => {
    const { arena, heap, ps } = withFreedBlocks()
    const pd = pageOf(arena, ps[0])
    const full = queue(arena, heap, BIN_FULL)
    expect(arena.i32[full + QUEUE_FIRST]).toBe(0)
    expectDetected(arena, [[full + QUEUE_FIRST, pd], [full + QUEUE_LAST, pd]])
  })

  /** Two pages of 32-byte blocks in the bin's queue: the first filled, then one block of it freed. */
  function twoPagesInQueue(): { arena: Arena, heap: Heap, first: number, second: number } {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 2200 }, () => mustMalloc(heap, 32))
    heap.free(ps[0]) // its page was full: back into the bin queue
    const q = queue(arena, heap, binOf(32))
    const first = arena.i32[q + QUEUE_FIRST]
    const second = arena.i32[first + PAGE_NEXT]
    expect(second).not.toBe(0)
    expect(arena.i32[q + QUEUE_LAST]).toBe(second)
    return { arena, heap, first, second }
  }

  it('a broken prev link in a queue of two pages', () => {
    const { arena, second } = twoPagesInQueue()
    expectDetected(arena, [[second + PAGE_PREV, 0]])
  })

  it('a first page whose prev link is not 0', () => {
    const { arena, first, second } = twoPagesInQueue()
    expectDetected(arena, [[first + PAGE_PREV, second]])
  })

  it('a queue whose last pointer is stale', () => {
    const { arena, heap, first } = twoPagesInQueue()
    expectDetected(arena, [[queue(arena, heap, binOf(32)) + QUEUE_LAST, first]])
  })

  it('a page dropped from its queue (next link cut)', () => {
    const { arena, heap, first, second } = twoPagesInQueue()
    expectDetected(arena, [[first + PAGE_NEXT, 0], [queue(arena, heap, binOf(32)) + QUEUE_LAST, first], [second + PAGE_PREV, 0]])
  })

  it('a page in its bin\'s queue that is flagged full', () => {
    const { arena, ps } = withFreedBlocks()
    const pd = pageOf(arena, ps[0])
    expectDetected(arena, [[pd + PAGE_FLAGS, arena.i32[pd + PAGE_FLAGS] | PAGE_FLAG_IN_FULL]])
  })

  it('a direct-table entry that does not point at the first page of its bin', () => {
    const { arena, heap } = withFreedBlocks()
    const entry = arena.heapRecord(heap.id) + HEAP_DIRECT + (32 >>> 3)
    expect(arena.i32[entry]).not.toBe(EMPTY_PAGE)
    expectDetected(arena, [[entry, EMPTY_PAGE]])
  })
})
