/* ----------------------------------------------------------------------------
  Model-based property test: random sequences of malloc, calloc, realloc,
  mallocAligned, free and collect, on two heaps of one arena, checked against
  a model (live blocks → size and fill byte). After every command:
    - no two live blocks overlap ([p, p + usableSize(p)) are disjoint),
    - each live block's first and last byte still hold its fill byte,
    - arena.check() passes and counts exactly the model's live blocks.
  Every byte of a block is verified when it is freed or reallocated, and every
  byte of every live block at the end of a sequence.

  Fixed seed; on failure fast-check prints the seed, the path and the
  shrunk command list to replay.
---------------------------------------------------------------------------- */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Arena, type Heap } from '../src/index.js'
import { LARGE_OBJ_MAX, SEG_OWNER } from '../src/layout.js'
import { MiB, fillBlock, firstMismatch, segOf, segWordOf } from './helpers/arena.js'

type Cmd =
  | { op: 'malloc', heap: number, size: number }
  | { op: 'calloc', heap: number, count: number, size: number }
  | { op: 'mallocAligned', heap: number, size: number, alignment: number }
  | { op: 'realloc', heap: number, pick: number, size: number }
  | { op: 'free', heap: number, pick: number }
  | { op: 'collect', heap: number, force: boolean }

const heapIndex = fc.constantFrom(0, 0, 0, 1) // mostly the first heap; the second frees and allocates cross-heap
const size = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 3000 }), weight: 40 },
  { arbitrary: fc.integer({ min: 3001, max: LARGE_OBJ_MAX }), weight: 2 },
  { arbitrary: fc.integer({ min: LARGE_OBJ_MAX + 1, max: 3 * MiB }), weight: 1 },
)
// 8 … 1 MiB (MAX_ALIGNMENT): above SEGMENT_SIZE the huge run is over-claimed and trimmed
const alignment = fc.integer({ min: 3, max: 20 }).map((shift) => 2 ** shift)

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('malloc' as const), heap: heapIndex, size }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant('calloc' as const), heap: heapIndex, count: fc.integer({ min: 0, max: 40 }), size: fc.integer({ min: 0, max: 100 }) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('mallocAligned' as const), heap: heapIndex, size: fc.integer({ min: 0, max: 5000 }), alignment }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('realloc' as const), heap: heapIndex, pick: fc.nat(), size }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('free' as const), heap: heapIndex, pick: fc.nat() }), weight: 7 },
  { arbitrary: fc.record({ op: fc.constant('collect' as const), heap: heapIndex, force: fc.boolean() }), weight: 1 },
)

interface Block { p: number, size: number, fill: number }

/** What the sequences exercised, summed over all runs (so a run that tests nothing is noticed). */
interface Coverage { commands: number, maxLive: number, huge: number, moved: number, crossHeapFrees: number }
const newCoverage = (): Coverage => ({ commands: 0, maxLive: 0, huge: 0, moved: 0, crossHeapFrees: 0 })

/** Runs one command sequence against a fresh arena and the model; throws on the first divergence. */
function runSequence(cmds: Cmd[], debug: boolean, cov: Coverage): void {
  const arena = Arena.create({ size: 64 * MiB, debug })
  const heaps: Heap[] = [arena.createHeap(), arena.createHeap()]
  const live: Block[] = []
  let nextFill = 0
  const fillByte = (): number => (nextFill++ % 255) + 1

  const adopt = (p: number, n: number, what: string): void => {
    expect(p, `${what} returned a NULL that the arena's size does not explain`).not.toBe(0)
    expect(heaps[0].usableSize(p), `usableSize after ${what}`).toBeGreaterThanOrEqual(n)
    const fill = fillByte()
    fillBlock(arena, p, n, fill)
    live.push({ p, size: n, fill })
    if (n > LARGE_OBJ_MAX) cov.huge++
  }
  /** A 0 from an allocation is only acceptable for a huge request (the arena may be fragmented). */
  const mayFail = (n: number): boolean => n > LARGE_OBJ_MAX
  const verify = (b: Block, n: number, when: string): void => {
    const at = firstMismatch(arena, b.p, n, b.fill)
    expect(at, `byte ${at} of the ${b.size}-byte block 0x${b.p.toString(16)} changed (${when})`).toBe(-1)
  }

  for (const [step, c] of cmds.entries()) {
    const heap = heaps[c.heap]
    const where = `step ${step}: ${JSON.stringify(c)}`
    switch (c.op) {
      case 'malloc': {
        const p = heap.malloc(c.size)
        if (p !== 0 || !mayFail(c.size)) adopt(p, c.size, where)
        break
      }
      case 'calloc': {
        const n = c.count * c.size
        const p = heap.calloc(c.count, c.size)
        if (p !== 0) expect(firstMismatch(arena, p, n, 0), `calloc left a byte non-zero (${where})`).toBe(-1)
        adopt(p, n, where)
        break
      }
      case 'mallocAligned': {
        const p = heap.mallocAligned(c.size, c.alignment)
        expect(p % c.alignment, `misaligned (${where})`).toBe(0)
        adopt(p, c.size, where)
        break
      }
      case 'realloc': {
        if (live.length === 0) break
        const i = c.pick % live.length
        const old = live[i]
        verify(old, old.size, `before ${where}`)
        const q = heap.realloc(old.p, c.size)
        if (q === 0) {
          expect(mayFail(c.size), `realloc returned 0 (${where})`).toBe(true)
          verify(old, old.size, `after a failed ${where}`)
          break
        }
        verify({ p: q, size: old.size, fill: old.fill }, Math.min(old.size, c.size), `contents carried by ${where}`)
        if (q !== old.p) cov.moved++
        live.splice(i, 1)
        adopt(q, c.size, where)
        break
      }
      case 'free': {
        if (live.length === 0) break
        const i = c.pick % live.length
        verify(live[i], live[i].size, `before ${where}`)
        if (arena.i32[segWordOf(segOf(live[i].p)) + SEG_OWNER] !== heap.id) cov.crossHeapFrees++
        heap.free(live[i].p)
        live.splice(i, 1)
        break
      }
      case 'collect':
        heap.collect(c.force)
        break
    }

    // invariants after every command
    cov.commands++
    cov.maxLive = Math.max(cov.maxLive, live.length)
    // (plain comparisons: one expect per invariant keeps 20 000 commands fast)
    const sorted = live.map((b) => ({ ...b, usable: heaps[0].usableSize(b.p) })).sort((a, b) => a.p - b.p)
    let broken: string | undefined
    for (let k = 1; k < sorted.length && broken === undefined; k++) {
      const a = sorted[k - 1]
      if (a.p + a.usable > sorted[k].p) broken = `blocks 0x${a.p.toString(16)} (+${a.usable}) and 0x${sorted[k].p.toString(16)} overlap`
    }
    for (const b of live) {
      if (broken !== undefined) break
      if (b.size > 0 && (arena.u8[b.p] !== b.fill || arena.u8[b.p + b.size - 1] !== b.fill)) {
        broken = `the first or last byte of the ${b.size}-byte block 0x${b.p.toString(16)} changed`
      }
    }
    expect(broken, `after ${where}`).toBeUndefined()
    expect(arena.check().liveBlocks, `check().liveBlocks after ${where}`).toBe(live.length)
  }

  for (const b of live) verify(b, b.size, 'at the end')
  for (const [k, b] of live.entries()) heaps[k % 2].free(b.p)
  heaps[0].collect(true)
  heaps[1].collect(true)
  expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
}

describe('the allocator against a model of live blocks', () => {
  // debug mode's check() also verifies the fill of every free block, so it
  // gets fewer runs; together they stay well under 20 s on a busy machine
  it.each([
    ['release mode', false, 120],
    ['debug mode', true, 15],
  ] as const)('keeps blocks disjoint and intact and counts them right, over random command sequences (%s)', (_, debug, numRuns) => {
    const cov = newCoverage()
    fc.assert(
      fc.property(fc.array(cmd, { minLength: 1, maxLength: 250, size: 'max' }), (cmds) => runSequence(cmds, debug, cov)),
      { seed: 42, numRuns },
    )
    console.log(`model (${debug ? 'debug' : 'release'}, ${numRuns} runs): ${JSON.stringify(cov)}`)
    // the sequences did exercise what this test is about
    expect(cov.commands).toBeGreaterThanOrEqual(numRuns * 50)
    expect(cov.maxLive).toBeGreaterThanOrEqual(30)
    expect(cov.huge).toBeGreaterThanOrEqual(5)
    expect(cov.moved).toBeGreaterThanOrEqual(50)
    expect(cov.crossHeapFrees).toBeGreaterThanOrEqual(50)
  })
})
