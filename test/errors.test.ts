/* ----------------------------------------------------------------------------
  Bad input: every misuse API.md names gets its named error, and a rejected
  call changes nothing — not check()'s counts, not a byte of the buffer (so
  neither metadata nor the contents of live blocks).
---------------------------------------------------------------------------- */

import { describe, expect, it } from 'vitest'
import {
  AllocatorError, Arena, ArenaFormatError, DoubleFreeError, HeapCorruptionError, InvalidPointerError,
  type Heap,
} from '../src/index.js'
import {
  ARENA_MAGIC, ARENA_SEGMENT_SHIFT, ARENA_VERSION, HEAP_RECORDS, LARGE_OBJ_MAX, PAGE_BLOCK_SIZE,
  PAGE_CAPACITY, PAGE_FLAGS, PAGE_RESERVED, PAGE_START, PAGE_USED, SEGMENT_SIZE, SMALL_PAGE_SHIFT,
} from '../src/layout.js'
import {
  MiB, fillBlock, firstChangedByte, firstMismatch, mustMalloc, pageOf, segOf, snapshot, thrownBy,
} from './helpers/arena.js'

/** Expects `call` to throw an instance of `kind` and to leave the arena byte-for-byte as it was. */
function expectRejected(arena: Arena, call: () => unknown, kind: abstract new (...args: never[]) => Error): unknown {
  const before = snapshot(arena)
  const e = thrownBy(call)
  expect(e).toBeInstanceOf(kind)
  expect(firstChangedByte(arena, before), 'first byte the rejected call changed').toBe(-1)
  expect(arena.check()).toEqual(before.check)
  return e
}

/* ----- free of pointers that are not live blocks ------------------------------------ */

/**
 * An arena with a few live blocks filled with patterns: a 32-byte and a
 * 64-byte block in small pages, and a 2 MiB huge block (a run of segments).
 */
function populated(): { arena: Arena, heap: Heap, p32: number, p64: number, huge: number } {
  const arena = Arena.create({ size: 8 * MiB })
  const heap = arena.createHeap()
  const p32 = mustMalloc(heap, 32)
  const p64 = mustMalloc(heap, 64)
  const huge = mustMalloc(heap, 2 * MiB)
  // three bins only (16, 32, 64 bytes), so that the small segment keeps pages that are not in use
  const others = Array.from({ length: 50 }, (_, i) => mustMalloc(heap, 16 + (i % 2) * 16))
  fillBlock(arena, p32, 32, 0x32)
  fillBlock(arena, p64, 64, 0x64)
  fillBlock(arena, huge, 2 * MiB, 0x99)
  others.forEach((p, i) => fillBlock(arena, p, 16 + (i % 2) * 16, i + 1))
  return { arena, heap, p32, p64, huge }
}

type World = ReturnType<typeof populated>

const badPointers: Array<[string, (w: World) => unknown]> = [
  ['the buffer length (one past the end)', (w) => w.arena.buffer.byteLength],
  ['past the end of the buffer', (w) => w.arena.buffer.byteLength + 4096],
  ['2^32', () => 2 ** 32],
  ['2^32 + a live block (wraps to it in 32 bits)', (w) => 2 ** 32 + w.p32],
  ['2^53', () => 2 ** 53],
  ['-8', () => -8],
  ['minus a live block', (w) => -w.p32],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['1.5', () => 1.5],
  ['a live block + 0.5', (w) => w.p32 + 0.5],
  ['a string', () => 'abc'],
  ['a live block as a string', (w) => String(w.p32)],
  ['a live block as a BigInt', (w) => BigInt(w.p32)],
  ['an object', () => ({})],
  ['a live block + 4 (unaligned)', (w) => w.p32 + 4],
  ['a live block + 1 (unaligned)', (w) => w.p64 + 1],
  ['the inside of a 32-byte block (p + 8)', (w) => w.p32 + 8],
  ['the inside of a 32-byte block (p + 24)', (w) => w.p32 + 24],
  ['the inside of a 64-byte block (p + 16)', (w) => w.p64 + 16],
  ['the inside of a 64-byte block (p + 32)', (w) => w.p64 + 32],
  ['the start of a free segment', (w) => w.arena.buffer.byteLength - SEGMENT_SIZE],
  ['a block-like offset in a free segment', (w) => w.arena.buffer.byteLength - SEGMENT_SIZE + 4096 + 64],
  ['8 (in the metadata segment)', () => 8],
  ['the heap records (in the metadata segment)', () => HEAP_RECORDS * 4],
  ['the last word of the metadata', (w) => w.arena.metaSegments * SEGMENT_SIZE - 8],
  ['the header of a used segment', (w) => (segOf(w.p32) * SEGMENT_SIZE) + 8],
  // diff = -k × block size: the fast path's rounded division must not take these for blocks
  ['one 32-byte block before page 0 of a used segment', (w) => segOf(w.p32) * SEGMENT_SIZE + w.arena.segHeaderSize - 32],
  ['six 32-byte blocks before page 0 of a used segment', (w) => segOf(w.p32) * SEGMENT_SIZE + w.arena.segHeaderSize - 192],
  ['a page of a used segment that is not in use', (w) => {
    const p = (segOf(w.p32) + 1) * SEGMENT_SIZE - (1 << SMALL_PAGE_SHIFT) // its last small page
    expect(w.arena.i32[pageOf(w.arena, p) + PAGE_FLAGS]).toBe(0)
    return p
  }],
  ['a huge block + 8', (w) => w.huge + 8],
  ['a huge block + 4096', (w) => w.huge + 4096],
  ['a huge block + SEGMENT_SIZE (its second segment)', (w) => w.huge + SEGMENT_SIZE],
  ['the start of a huge block\'s last segment', (w) => Math.floor((w.huge + 2 * MiB - 1) / SEGMENT_SIZE) * SEGMENT_SIZE],
  ['a block never allocated (first block past the capacity of a fresh page)', (w) => {
    const pd = pageOf(w.arena, w.p32)
    const i32 = w.arena.i32
    expect(i32[pd + PAGE_CAPACITY]).toBeLessThan(i32[pd + PAGE_RESERVED])
    return i32[pd + PAGE_START] + i32[pd + PAGE_CAPACITY] * i32[pd + PAGE_BLOCK_SIZE]
  }],
  ['the last block of a fresh page', (w) => {
    const pd = pageOf(w.arena, w.p64)
    const i32 = w.arena.i32
    return i32[pd + PAGE_START] + (i32[pd + PAGE_RESERVED] - 1) * i32[pd + PAGE_BLOCK_SIZE]
  }],
]

describe('free of a pointer that is not the start of a live block', () => {
  it.each(badPointers)('throws InvalidPointerError for %s and changes nothing', (_, make) => {
    const w = populated()
    const p = make(w)
    const e = expectRejected(w.arena, () => w.heap.free(p as number), InvalidPointerError) as InvalidPointerError
    expect(e.code).toBe('ERR_INVALID_POINTER')
    if (typeof p === 'number') expect(Object.is(e.ptr, p), `.ptr is ${String(e.ptr)}, the pointer ${p}`).toBe(true)
  })

  it('leaves the live blocks intact after all those rejected frees', () => {
    const w = populated()
    for (const [, make] of badPointers) {
      const p = make(w)
      try { w.heap.free(p as number) } catch { /* each is checked above */ }
    }
    expect(firstMismatch(w.arena, w.p32, 32, 0x32)).toBe(-1)
    expect(firstMismatch(w.arena, w.p64, 64, 0x64)).toBe(-1)
    expect(firstMismatch(w.arena, w.huge, 2 * MiB, 0x99)).toBe(-1)
    w.heap.free(w.p32)
    w.heap.free(w.p64)
    w.heap.free(w.huge)
    w.arena.check()
  })
})

describe('realloc and usableSize of a pointer that is not the start of a live block', () => {
  const some = badPointers.filter(([name]) => /inside|unaligned|free segment|metadata|never|past the end|NaN|string/.test(name))

  it.each(some)('realloc of %s throws InvalidPointerError and changes nothing', (_, make) => {
    const w = populated()
    const p = make(w)
    expectRejected(w.arena, () => w.heap.realloc(p as number, 100), InvalidPointerError)
  })

  it.each(some)('usableSize of %s throws InvalidPointerError', (_, make) => {
    const w = populated()
    const p = make(w)
    expectRejected(w.arena, () => w.heap.usableSize(p as number), InvalidPointerError)
  })

  it('realloc of a block already freed throws (not a live block) and changes nothing', () => {
    const w = populated()
    const p = mustMalloc(w.heap, 100)
    mustMalloc(w.heap, 100) // keeps the page in use
    w.heap.free(p)
    const e = expectRejected(w.arena, () => w.heap.realloc(p, 100), AllocatorError)
    expect([DoubleFreeError, InvalidPointerError].some((k) => e instanceof k)).toBe(true)
  })

  it('realloc of a block already freed, to a size that would move it, throws and changes nothing', () => {
    const w = populated()
    const p = mustMalloc(w.heap, 100)
    mustMalloc(w.heap, 100)
    w.heap.free(p)
    const e = expectRejected(w.arena, () => w.heap.realloc(p, 5000), AllocatorError)
    expect([DoubleFreeError, InvalidPointerError].some((k) => e instanceof k)).toBe(true)
  })
})

describe('free(0)', () => {
  it('does nothing', () => {
    const w = populated()
    const before = snapshot(w.arena)
    w.heap.free(0)
    expect(firstChangedByte(w.arena, before)).toBe(-1)
  })
})

/* ----- sizes -------------------------------------------------------------------------- */

const badSizes: Array<[string, unknown]> = [
  ['-1', -1], ['-8', -8], ['-2^31', -(2 ** 31)], ['0.5', 0.5], ['1.5', 1.5], ['16.25', 16.25], ['NaN', NaN],
  ['Infinity', Infinity], ['-Infinity', -Infinity], ['2^53 (above MAX_SAFE_INTEGER)', 2 ** 53],
  ['2^60', 2 ** 60], ['1e300', 1e300], ['the string "16"', '16'], ['the string "abc"', 'abc'],
  ['undefined', undefined], ['null', null], ['an object', {}], ['the BigInt 16n', 16n], ['true', true],
]

const sizeCalls: Array<[string, (h: Heap, n: number, p: number) => unknown]> = [
  ['malloc(n)', (h, n) => h.malloc(n)],
  ['calloc(n, 8)', (h, n) => h.calloc(n, 8)],
  ['calloc(8, n)', (h, n) => h.calloc(8, n)],
  ['realloc(0, n)', (h, n) => h.realloc(0, n)],
  ['realloc(p, n)', (h, n, p) => h.realloc(p, n)],
  ['mallocAligned(n, 16)', (h, n) => h.mallocAligned(n, 16)],
  ['mallocAligned(n, 64)', (h, n) => h.mallocAligned(n, 64)],
  ['mallocAligned(n, 1 MiB)', (h, n) => h.mallocAligned(n, MiB)],
]

describe('bad sizes', () => {
  const cases = sizeCalls.flatMap(([call, f]) => badSizes.map(([what, n]) => [call, what, f, n] as const))

  it.each(cases)('%s with n = %s throws RangeError and changes nothing', (_c, _w, call, n) => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 100)
    fillBlock(arena, p, 100, 0xa5)
    expectRejected(arena, () => call(heap, n as number, p), RangeError)
  })

  it('a size that is a safe integer but too large for any arena returns 0 rather than throwing', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    expect(heap.malloc(Number.MAX_SAFE_INTEGER)).toBe(0)
    expect(heap.malloc(2 ** 32)).toBe(0)
    expect(heap.calloc(2 ** 26, 2 ** 26)).toBe(0)
    expect(heap.calloc(0x7ff00000 + 8, 1)).toBe(0) // two uint32s, product past the largest block
    expect(heap.calloc(1, 2 ** 32)).toBe(0)
    expect(arena.check()).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
  })
})

/* ----- double free ---------------------------------------------------------------------- */

/** 200 distinct sizes from 1 byte to LARGE_OBJ_MAX, spread geometrically (small, medium and large pages). */
function doubleFreeSizes(): number[] {
  const sizes: number[] = []
  for (let i = 0, prev = 0; i < 200; i++) {
    prev = Math.max(prev + 1, Math.round(LARGE_OBJ_MAX ** (i / 199)))
    sizes.push(prev)
  }
  return sizes
}

type Outcome = 'DoubleFreeError' | 'other error' | 'not detected'

/**
 * For each size, in a fresh arena: p = malloc(size); free(p); free(p).
 * Every other size keeps a neighbour block live so the page stays in use.
 * A detected double free must change nothing.
 */
function immediateDoubleFrees(debug: boolean): { outcomes: Map<number, Outcome>, rate: number } {
  const outcomes = new Map<number, Outcome>()
  doubleFreeSizes().forEach((size, i) => {
    const arena = Arena.create({ size: 4 * MiB, debug })
    const heap = arena.createHeap()
    if (i % 2 === 0) mustMalloc(heap, size)
    const p = mustMalloc(heap, size)
    heap.free(p)
    const before = snapshot(arena)
    let outcome: Outcome = 'not detected'
    try {
      heap.free(p)
    } catch (e) {
      outcome = e instanceof DoubleFreeError ? 'DoubleFreeError' : 'other error'
      if (e instanceof DoubleFreeError) {
        expect(e.ptr).toBe(p)
        expect(firstChangedByte(arena, before), `double free of a ${size}-byte block changed the arena`).toBe(-1)
      }
    }
    outcomes.set(size, outcome)
  })
  const detected = [...outcomes.values()].filter((o) => o === 'DoubleFreeError').length
  return { outcomes, rate: detected / outcomes.size }
}

function missed(outcomes: Map<number, Outcome>): string[] {
  return [...outcomes].filter(([, o]) => o !== 'DoubleFreeError').map(([size, o]) => `${size}: ${o}`)
}

describe('double free', () => {
  it('detects an immediate double free with DoubleFreeError for at least 95% of 200 block sizes', () => {
    const { outcomes, rate } = immediateDoubleFrees(false)
    console.log(`immediate double free detection (release mode): ${(rate * 100).toFixed(1)}% of ${outcomes.size} sizes`)
    expect(rate, `missed: ${missed(outcomes).slice(0, 20).join(', ')}`).toBeGreaterThanOrEqual(0.95)
  })

  it('detects a double free after other frees in the same page', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 20 }, () => mustMalloc(heap, 48))
    ps.forEach((p, i) => fillBlock(arena, p, 48, i + 1))
    heap.free(ps[5])
    heap.free(ps[6])
    heap.free(ps[7])
    for (const i of [6, 5, 7]) {
      const e = expectRejected(arena, () => heap.free(ps[i]), DoubleFreeError) as DoubleFreeError
      expect(e.ptr).toBe(ps[i])
    }
    expect(ps.filter((p, i) => i < 5 || i > 7).filter((p) => firstMismatch(arena, p, 48, ps.indexOf(p) + 1) >= 0)).toEqual([])
  })

  it('detects a double free after collect(true) moved the freed block to the page\'s free list', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 20 }, () => mustMalloc(heap, 48))
    heap.free(ps[3])
    heap.collect(true)
    expectRejected(arena, () => heap.free(ps[3]), DoubleFreeError)
  })

  it('detects a double free of a block of a page that was full', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    // 8 KiB blocks: a 64 KiB small page holds at most 8; 40 fill several pages
    const ps = Array.from({ length: 40 }, () => mustMalloc(heap, 8192))
    heap.free(ps[1])
    expectRejected(arena, () => heap.free(ps[1]), DoubleFreeError)
  })

  it('detects a double free from another heap (both frees cross-heap)', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const a = arena.createHeap()
    const b = arena.createHeap()
    const ps = Array.from({ length: 10 }, () => mustMalloc(a, 100))
    b.free(ps[4])
    expectRejected(arena, () => b.free(ps[4]), DoubleFreeError)
  })

  it('rejects a double free of a huge block (its segments went back to the arena) and changes nothing', () => {
    const arena = Arena.create({ size: 8 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 2 * MiB)
    heap.free(p)
    expectRejected(arena, () => heap.free(p), AllocatorError)
  })

  it('rejects a double free of a block whose page was retired (DoubleFreeError or InvalidPointerError) and changes nothing', () => {
    const arena = Arena.create({ size: 4 * MiB })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 5000)
    mustMalloc(heap, 100) // keeps the segment claimed
    heap.free(p)
    heap.collect(true)
    expectRejected(arena, () => heap.free(p), AllocatorError)
  })
})

describe('double free in debug mode (always detected)', () => {
  it('detects an immediate double free with DoubleFreeError for all 200 block sizes', () => {
    const { outcomes, rate } = immediateDoubleFrees(true)
    console.log(`immediate double free detection (debug mode): ${(rate * 100).toFixed(1)}% of ${outcomes.size} sizes`)
    expect(missed(outcomes)).toEqual([])
  })

  it('detects a double free even when the freed block was written to after the free', () => {
    const arena = Arena.create({ size: 4 * MiB, debug: true })
    const heap = arena.createHeap()
    const ps = Array.from({ length: 10 }, () => mustMalloc(heap, 64))
    heap.free(ps[2])
    fillBlock(arena, ps[2], 8, 0x41) // a use after free overwrites what the free left there
    expect(thrownBy(() => heap.free(ps[2]))).toBeInstanceOf(DoubleFreeError)
  })

  it('detects a double free when the owner freed the block and another heap frees it again', () => {
    const arena = Arena.create({ size: 4 * MiB, debug: true })
    const a = arena.createHeap()
    const b = arena.createHeap()
    const ps = Array.from({ length: 10 }, () => mustMalloc(a, 64))
    a.free(ps[2])
    expectRejected(arena, () => b.free(ps[2]), DoubleFreeError)
  })

  it('detects a double free of a block whose page was retired', () => {
    const arena = Arena.create({ size: 4 * MiB, debug: true })
    const heap = arena.createHeap()
    const p = mustMalloc(heap, 5000)
    mustMalloc(heap, 100) // keeps the segment claimed
    heap.free(p)
    heap.collect(true)
    expectRejected(arena, () => heap.free(p), DoubleFreeError)
  })
})

/* ----- Arena.create options ---------------------------------------------------------------- */

describe('Arena.create with bad options', () => {
  const bad: Array<[string, unknown]> = [
    ['a negative size', { size: -1 }],
    ['a negative size of -1 MiB', { size: -MiB }],
    ['size 0', { size: 0 }],
    ['a fractional size', { size: 4.5 * MiB + 0.5 }],
    ['size NaN', { size: NaN }],
    ['size Infinity', { size: Infinity }],
    ['a string size', { size: '4194304' }],
    ['a size above 4 GiB', { size: 4 * 1024 * MiB + MiB }],
    ['a size of 2^40', { size: 2 ** 40 }],
    ['a maxSize above 4 GiB', { size: 4 * MiB, maxSize: 4 * 1024 * MiB + 1 }],
    ['a negative maxSize', { maxSize: -MiB }],
    ['maxSize below size', { size: 8 * MiB, maxSize: 4 * MiB }],
    ['maxHeaps 0', { maxHeaps: 0 }],
    ['maxHeaps 2000', { maxHeaps: 2000 }],
    ['maxHeaps 1.5', { maxHeaps: 1.5 }],
    ['maxHeaps -1', { maxHeaps: -1 }],
    ['maxHeaps NaN', { maxHeaps: NaN }],
    ['a string maxHeaps', { maxHeaps: '4' }],
    ['an unknown option key', { sise: 4 * MiB }],
    ['an unknown option key next to good ones', { size: 4 * MiB, heaps: 4 }],
    ['debug 1', { debug: 1 }],
    ['debug "true"', { debug: 'true' }],
    ['options that are a number', 64],
    ['options that are a string', 'big'],
    ['options null', null],
  ]

  it.each(bad)('throws RangeError for %s', (_, options) => {
    expect(() => Arena.create(options as never)).toThrow(RangeError)
  })

  it('accepts each option at a valid value (control for the cases above)', () => {
    expect(() => Arena.create({ size: 4 * MiB, maxSize: 8 * MiB, maxHeaps: 1024, debug: true })).not.toThrow()
    expect(() => Arena.create({ size: 4 * MiB, maxHeaps: 1, debug: false })).not.toThrow()
  })
})

/* ----- Arena.attach ------------------------------------------------------------------------ */

describe('Arena.attach of something that is not an arena', () => {
  const notArenas: Array<[string, () => unknown]> = [
    ['an ArrayBuffer', () => new ArrayBuffer(4 * MiB)],
    ['an ArrayBuffer holding a copy of an arena', () => {
      const arena = Arena.create({ size: 4 * MiB })
      const ab = new ArrayBuffer(arena.buffer.byteLength)
      new Uint8Array(ab).set(arena.u8)
      return ab
    }],
    ['a Uint8Array over an arena', () => Arena.create({ size: 4 * MiB }).u8],
    ['an Arena object', () => Arena.create({ size: 4 * MiB })],
    ['a plain object', () => ({})],
    ['null', () => null],
    ['undefined', () => undefined],
    ['a number', () => 42],
    ['a string', () => 'SABM'],
    ['a zero-filled SharedArrayBuffer', () => new SharedArrayBuffer(4 * MiB)],
    ['a tiny SharedArrayBuffer', () => new SharedArrayBuffer(64)],
    ['an empty SharedArrayBuffer', () => new SharedArrayBuffer(0)],
    ['an arena with a corrupted magic number', () => {
      const arena = Arena.create({ size: 4 * MiB })
      arena.i32[ARENA_MAGIC] ^= 0x100
      return arena.buffer
    }],
    ['an arena with another layout version', () => {
      const arena = Arena.create({ size: 4 * MiB })
      arena.i32[ARENA_VERSION] += 1
      return arena.buffer
    }],
    ['an arena with another segment shift', () => {
      const arena = Arena.create({ size: 4 * MiB })
      arena.i32[ARENA_SEGMENT_SHIFT] += 1
      return arena.buffer
    }],
    ['the first half of an arena copied into a smaller SharedArrayBuffer', () => {
      const arena = Arena.create({ size: 8 * MiB })
      const sab = new SharedArrayBuffer(4 * MiB)
      new Uint8Array(sab).set(arena.u8.subarray(0, 4 * MiB))
      return sab
    }],
  ]

  it.each(notArenas)('throws ArenaFormatError for %s', (_, make) => {
    const e = thrownBy(() => Arena.attach(make() as SharedArrayBuffer))
    expect(e).toBeInstanceOf(ArenaFormatError)
    expect((e as ArenaFormatError).code).toBe('ERR_ARENA_FORMAT')
  })

  it('accepts a real arena buffer (control for the cases above)', () => {
    const arena = Arena.create({ size: 4 * MiB })
    expect(Arena.attach(arena.buffer).metaSegments).toBe(arena.metaSegments)
  })
})

/* ----- the error objects ---------------------------------------------------------------------- */

describe('error objects', () => {
  it('InvalidPointerError has code ERR_INVALID_POINTER, the pointer in .ptr, and extends AllocatorError and Error', () => {
    const w = populated()
    const e = thrownBy(() => w.heap.free(w.p32 + 8)) as InvalidPointerError
    expect(e).toBeInstanceOf(InvalidPointerError)
    expect(e).toBeInstanceOf(AllocatorError)
    expect(e).toBeInstanceOf(Error)
    expect(e.code).toBe('ERR_INVALID_POINTER')
    expect(e.ptr).toBe(w.p32 + 8)
    expect(e.name).toBe('InvalidPointerError')
    expect(e.message.length).toBeGreaterThan(0)
  })

  it('DoubleFreeError has code ERR_DOUBLE_FREE, the block in .ptr, and extends AllocatorError', () => {
    const w = populated()
    w.heap.free(w.p64)
    const e = thrownBy(() => w.heap.free(w.p64)) as DoubleFreeError
    expect(e).toBeInstanceOf(DoubleFreeError)
    expect(e).toBeInstanceOf(AllocatorError)
    expect(e.code).toBe('ERR_DOUBLE_FREE')
    expect(e.ptr).toBe(w.p64)
    expect(e.name).toBe('DoubleFreeError')
  })

  it('HeapCorruptionError has code ERR_HEAP_CORRUPTION and extends AllocatorError', () => {
    const w = populated()
    w.arena.i32[pageOf(w.arena, w.p32) + PAGE_USED] += 1
    const e = thrownBy(() => w.arena.check()) as HeapCorruptionError
    expect(e).toBeInstanceOf(HeapCorruptionError)
    expect(e).toBeInstanceOf(AllocatorError)
    expect(e.code).toBe('ERR_HEAP_CORRUPTION')
    expect(e.name).toBe('HeapCorruptionError')
  })

  it('ArenaFormatError has code ERR_ARENA_FORMAT, no .ptr, and extends AllocatorError', () => {
    const e = thrownBy(() => Arena.attach(new SharedArrayBuffer(4 * MiB))) as ArenaFormatError
    expect(e).toBeInstanceOf(ArenaFormatError)
    expect(e).toBeInstanceOf(AllocatorError)
    expect(e.code).toBe('ERR_ARENA_FORMAT')
    expect(e.ptr).toBeUndefined()
    expect(e.name).toBe('ArenaFormatError')
  })

  it('the four error codes are distinct stable strings', () => {
    const codes = ['ERR_INVALID_POINTER', 'ERR_DOUBLE_FREE', 'ERR_HEAP_CORRUPTION', 'ERR_ARENA_FORMAT']
    expect(new InvalidPointerError(8, 'x').code).toBe(codes[0])
    expect(new DoubleFreeError(8).code).toBe(codes[1])
    expect(new HeapCorruptionError('x').code).toBe(codes[2])
    expect(new ArenaFormatError('x').code).toBe(codes[3])
  })
})
