/* Regression tests for the concurrency review: a segment-aligned huge block
   freed through the delayed list, a release() interrupted half-way, and a
   worker that dies holding DELAYED_FREEING or the grow lock. The "died in the
   middle of a call" states are set up word by word, as a killed thread would
   leave them. */
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import type { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { Arena, superviseWorker } from '../src/index.js'
import {
  ABANDONED_BITMAP, ARENA_ABANDONED_COUNT, ARENA_ABANDONED_TOTAL, ARENA_GROW_LOCK, ARENA_SEGMENT_LIMIT,
  DELAYED_FREEING, DELAYED_MASK, DELAYED_NO, HEAP_DELAYED_FREE, HEAP_FREEING, PAGE_FLAGS, PAGE_FLAG_MASK,
  PAGE_XTHREAD_FREE, SEGMAP, SEGMENT_SIZE, SEG_OWNER, SEG_PAGE_COUNT, SEG_PAGES, PAGE_WORDS,
} from '../src/layout.js'
import { setRange } from '../src/bitmap.js'
import { spawnTsWorker } from '../workers/spawn.js'
import { CTL_BYTES } from '../workers/test-common.js'
import { pageOf, segOf, segWordOf } from './helpers/arena.js'

const MiB = 1 << 20
/**
 * A worker that allocates one 64-byte block, reports its heap, then parks
 * (without releasing the heap) until terminated: the test sets up the state
 * a thread that died inside an allocator call leaves, then kills it. A worker
 * that exits by itself would race the test — its 'exit' can come in the same
 * turn as its message, before the test has set anything up.
 */
const idleWorker = fileURLToPath(new URL('../workers/test-idle.ts', import.meta.url))
const spawnIdle = (arena: Arena): Worker =>
  spawnTsWorker(idleWorker, { workerData: { buffer: arena.buffer, sizes: [64], tag: 1, ctl: new SharedArrayBuffer(CTL_BYTES) } })
/** Kills the worker "inside an allocator call" and waits for its exit (and the supervisor's handler). */
async function kill(worker: Worker): Promise<void> {
  const exited = once(worker, 'exit')
  await worker.terminate()
  await exited
  await new Promise((r) => setImmediate(r))
}

/** The delayed state of a page. */
const delayedState = (arena: Arena, pd: number): number => Atomics.load(arena.i32, pd + PAGE_XTHREAD_FREE) & DELAYED_MASK

/** Sets a page's delayed state as a thread would with its CAS. */
function setDelayed(arena: Arena, pd: number, state: number): void {
  const w = pd + PAGE_XTHREAD_FREE
  Atomics.store(arena.i32, w, (Atomics.load(arena.i32, w) & ~DELAYED_MASK) | state)
}

describe('huge blocks aligned to SEGMENT_SIZE or more (they start in a follower segment)', () => {
  it.each([SEGMENT_SIZE, 2 * SEGMENT_SIZE, MiB])('%i-aligned: a cross-heap free goes through the delayed list and the owner gets its segments back', (alignment) => {
    const arena = Arena.create({ size: 16 * MiB })
    const owner = arena.createHeap()
    const other = arena.createHeap()
    const p = owner.mallocAligned(64 * 1024, alignment)
    expect(p % alignment).toBe(0)
    expect(arena.i32[SEGMAP + segOf(p)], 'p starts in a follower').toBeLessThan(0)
    arena.u8.fill(0xcd, p, p + 64 * 1024) // user data that once read as DELAYED_FREEING
    other.free(p) // not the owner: the page is full, so the block goes on owner's delayed list
    expect(arena.check().liveBlocks).toBe(0)
    owner.collect()
    expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
  })
})

describe('a block whose freer has not yet left DELAYED_FREEING', () => {
  it('is put back on the delayed list instead of spinning, and freed on a later pass', () => {
    const arena = Arena.create({ size: 16 * MiB })
    const owner = arena.createHeap()
    const other = arena.createHeap()
    const p = owner.malloc(2 * MiB) // huge: its page is in the full queue, DELAYED_USE
    other.free(p) // p is on owner's delayed list now
    const pd = pageOf(arena, p)
    setDelayed(arena, pd, DELAYED_FREEING) // as if the freer were between its push and its reset
    owner.collect()
    expect(arena.i32[arena.heapRecord(owner.id) + HEAP_DELAYED_FREE] >>> 0, 'p waits on the delayed list').toBe(p)
    setDelayed(arena, pd, DELAYED_NO) // the freer finishes
    owner.collect()
    expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
  })
})

describe('release() interrupted half-way (the thread was killed inside it)', () => {
  it('finishing it through reclaimHeap leaves no page in two heaps', () => {
    const arena = Arena.create({ size: 32 * MiB })
    const dead = arena.createHeap()
    const blocks = Array.from({ length: 3000 }, (_, i) => dead.malloc(64 + (i % 40) * 48))
    // the killed release had abandoned its first segment: owner 0, page tags cleared, bit set
    const first = segOf(blocks[0])
    const sw = segWordOf(first)
    for (let i = 0; i < arena.i32[sw + SEG_PAGE_COUNT]; i++) arena.i32[sw + SEG_PAGES + i * PAGE_WORDS + PAGE_FLAGS] &= PAGE_FLAG_MASK
    Atomics.store(arena.i32, sw + SEG_OWNER, 0)
    Atomics.add(arena.i32, ARENA_ABANDONED_COUNT, 1)
    Atomics.add(arena.i32, ARENA_ABANDONED_TOTAL, 1)
    setRange(arena.i32, ABANDONED_BITMAP, first, 1)
    // another heap reclaims that segment (its pages join the new heap's queues)
    const other = arena.createHeap()
    other.collect(true)
    expect(Atomics.load(arena.i32, sw + SEG_OWNER)).toBe(other.id)
    // the supervisor finishes the dead heap's release
    arena.reclaimHeap(dead.id)
    expect(Atomics.load(arena.i32, sw + SEG_OWNER), 'the reclaimed segment stays with its new owner').toBe(other.id)
    expect(arena.check().liveBlocks).toBe(blocks.length)
    for (const p of blocks) other.free(p)
    other.collect(true)
    expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
  })
})

describe('a supervised worker that dies inside an allocator call', () => {
  it('holding a page in DELAYED_FREEING: the supervisor resets it, so the owner can release', async () => {
    const arena = Arena.create({ size: 16 * MiB })
    const owner = arena.createHeap()
    const p = owner.malloc(2 * MiB)
    const pd = pageOf(arena, p)
    const worker = spawnIdle(arena)
    superviseWorker(arena, worker)
    const [msg] = await once(worker, 'message') as [{ heapId: number }]
    // the worker "died" between its USE → FREEING CAS and its reset
    arena.i32[arena.heapRecord(msg.heapId) + HEAP_FREEING] = pd
    setDelayed(arena, pd, DELAYED_FREEING)
    await kill(worker)
    expect(delayedState(arena, pd), 'the supervisor reset the page').toBe(DELAYED_NO)
    owner.free(p)
    owner.release() // waits out DELAYED_FREEING: it would hang without the reset
    const h = arena.createHeap()
    h.collect(true)
    h.release()
    expect(arena.check().liveBlocks).toBe(1) // the worker's own 64-byte block, still valid
  })

  it('holding the grow lock: the supervisor publishes the grown length and frees the lock', async () => {
    const arena = Arena.create({ size: 4 * MiB, maxSize: 64 * MiB })
    const worker = spawnIdle(arena)
    const thread = worker.threadId
    superviseWorker(arena, worker)
    await once(worker, 'message')
    // the worker "died" inside grow(): buffer grown, limit not yet published, lock held
    Atomics.store(arena.i32, ARENA_GROW_LOCK, thread + 1)
    arena.buffer.grow(8 * MiB)
    await kill(worker)
    expect(Atomics.load(arena.i32, ARENA_GROW_LOCK)).toBe(0)
    expect(Atomics.load(arena.i32, ARENA_SEGMENT_LIMIT)).toBe(8 * MiB / SEGMENT_SIZE)
    const heap = arena.createHeap()
    expect(heap.malloc(20 * MiB), 'growth works again').not.toBe(0)
  })
})
