/* ----------------------------------------------------------------------------
  Debug mode (Arena.create({ debug: true }), DESIGN.md §4): the block layout
  (requested size, 0xCD / 0xDD fills, 0xFD guards) and one focused test per
  misuse the fuzzer injects. Each misuse test checks the error class, its
  .code, .ptr and the message parts, that arena.check() passes afterwards
  and that the other live blocks ("bystanders") kept their contents.

  Cross-worker and racing double frees run on real worker_threads
  (workers/fuzz-peer.ts); all of them are terminated in afterAll.
---------------------------------------------------------------------------- */

import { fileURLToPath } from 'node:url'
import type { Worker } from 'node:worker_threads'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  AllocatorError, Arena, DoubleFreeError, HeapCorruptionError, InvalidPointerError, type Heap,
} from '../src/index.js'
import { DebugHeap } from '../src/debug.js'
import { binOf } from '../src/size-classes.js'
import {
  DEBUG_BYTE_CLEAN, DEBUG_BYTE_DEAD, DEBUG_BYTE_GUARD, DEBUG_HEADER, DEBUG_REAR_MIN, SEGMAP, SEGMENT_SHIFT, SEGMENT_SIZE,
  SMALL_PAGE_SHIFT,
} from '../src/layout.js'
import { spawnTsWorker as spawnFuzzWorker } from '../workers/spawn.js'
import type { PeerOutcome } from '../workers/fuzz-peer.js'
import { thrownBy } from './helpers/arena.js'

const MiB = 1 << 20
const hex = (n: number): string => '0x' + n.toString(16)

/* ----- helpers ---------------------------------------------------------------------- */

function debugArena(size = 16 * MiB): { arena: Arena, heap: Heap } {
  const arena = Arena.create({ size, debug: true })
  return { arena, heap: arena.createHeap() }
}

function mustMalloc(heap: Heap, n: number): number {
  const p = heap.malloc(n)
  if (p === 0) throw new Error(`malloc(${n}) returned 0`)
  return p
}

const patternByte = (tag: number, i: number): number => (tag * 31 + i * 7) & 0xff

/** Live blocks of several sizes, each filled with its own pattern: they must survive every rejected call. */
interface Bystander { p: number, n: number, tag: number }

function bystanders(arena: Arena, heap: Heap): Bystander[] {
  return [0, 1, 8, 24, 100, 1000, 5000, 70_000, 700_000].map((n, tag) => {
    const p = mustMalloc(heap, n)
    for (let i = 0; i < n; i++) arena.u8[p + i] = patternByte(tag + 1, i)
    return { p, n, tag: tag + 1 }
  })
}

/** The bystanders' contents, requested sizes and guards are as they were. */
function expectIntact(arena: Arena, heap: Heap, bs: Bystander[]): void {
  for (const b of bs) {
    expect(heap.usableSize(b.p), `usableSize of bystander ${hex(b.p)}`).toBe(b.n)
    for (let i = 0; i < b.n; i++) {
      if (arena.u8[b.p + i] !== patternByte(b.tag, i)) throw new Error(`bystander ${hex(b.p)} (${b.n} bytes): byte +${i} changed`)
    }
    expectGuards(arena, b.p, b.n)
  }
}

/** 16 bytes 0xFD before p and after p + n. */
function expectGuards(arena: Arena, p: number, n: number): void {
  const u8 = arena.u8
  for (let k = 1; k <= 16; k++) expect(u8[p - k], `front guard byte -${k} of ${hex(p)}`).toBe(DEBUG_BYTE_GUARD)
  for (let k = 0; k < 16; k++) expect(u8[p + n + k], `rear guard byte +${n + k} of ${hex(p)}`).toBe(DEBUG_BYTE_GUARD)
}

/** Offset of the first byte of [p, p+n) that is not `byte`, or -1. */
function firstNot(arena: Arena, p: number, n: number, byte: number): number {
  for (let i = 0; i < n; i++) if (arena.u8[p + i] !== byte) return i
  return -1
}

/** 'ok' if `call` returns, else what it threw. */
function thrownByOrOk(call: () => unknown): unknown {
  try {
    call()
    return 'ok'
  } catch (e) {
    return e
  }
}

/**
 * Runs `call`, which must throw `kind` with `code`, `.ptr === ptr` and every
 * string of `parts` in its message; returns the error.
 */
function expectError(call: () => unknown, kind: typeof DoubleFreeError | typeof InvalidPointerError | typeof HeapCorruptionError,
  code: string, ptr: number, parts: Array<string | RegExp> = []): AllocatorError {
  const e = thrownBy(call)
  expect(e).toBeInstanceOf(kind)
  const err = e as AllocatorError
  expect(err.code).toBe(code)
  expect(Object.is(err.ptr, ptr), `.ptr is ${String(err.ptr)}, expected ${String(ptr)}`).toBe(true)
  for (const part of parts) {
    if (typeof part === 'string') expect(err.message).toContain(part)
    else expect(err.message).toMatch(part)
  }
  return err
}

/** The block start and the next block of the same page are adjacent: the size class's block size. */
function blockSizeOf(arena: Arena, heap: Heap, n: number): number {
  const a = mustMalloc(heap, n)
  const b = mustMalloc(heap, n)
  heap.free(a)
  heap.free(b)
  return Math.abs(b - a)
}

/* ----- block layout -------------------------------------------------------------------- */

describe('debug mode: block layout', () => {
  it('malloc returns n usable bytes filled 0xCD between 16 guard bytes 0xFD, 16-aligned from 16 bytes', () => {
    const { arena, heap } = debugArena(32 * MiB)
    // every kind: small, medium (20 000), large (65 536), huge
    for (const n of [0, 1, 7, 8, 15, 16, 17, 100, 1024, 1025, 5000, 20_000, 65_536, 200_000, 600_000, 3 * MiB]) {
      const p = mustMalloc(heap, n)
      expect(heap.usableSize(p), `usableSize after malloc(${n})`).toBe(n)
      expect(p % (n >= 16 ? 16 : 8), `alignment of malloc(${n})`).toBe(0)
      expect(firstNot(arena, p, n, DEBUG_BYTE_CLEAN), `first byte of malloc(${n}) that is not 0xCD`).toBe(-1)
      expectGuards(arena, p, n)
    }
    expect(arena.check().liveBlocks).toBe(16)
  })

  it('free fills the user bytes 0xDD (and the block is no longer live)', () => {
    const { arena, heap } = debugArena()
    for (const n of [1, 8, 100, 5000, 70_000]) {
      const p = mustMalloc(heap, n)
      const pin = mustMalloc(heap, n) // keeps the page in use
      arena.u8.fill(0x11, p, p + n)
      heap.free(p)
      expect(firstNot(arena, p, n, DEBUG_BYTE_DEAD), `first byte of the freed ${n}-byte block that is not 0xDD`).toBe(-1)
      heap.free(pin)
    }
    expect(arena.check().liveBlocks).toBe(0)
  })

  it('realloc in place keeps the contents, fills new bytes 0xCD and moves the rear guard', () => {
    const { arena, heap } = debugArena()
    const p = mustMalloc(heap, 100)
    const room = blockSizeOf(arena, heap, 100) - DEBUG_HEADER - 16
    for (let i = 0; i < 100; i++) arena.u8[p + i] = i
    // grow within the block
    expect(heap.realloc(p, room)).toBe(p)
    expect(heap.usableSize(p)).toBe(room)
    for (let i = 0; i < 100; i++) expect(arena.u8[p + i]).toBe(i)
    expect(firstNot(arena, p + 100, room - 100, DEBUG_BYTE_CLEAN)).toBe(-1)
    expectGuards(arena, p, room)
    // shrink, still in place (at least half the room)
    const small = Math.ceil(room / 2)
    expect(heap.realloc(p, small)).toBe(p)
    expect(heap.usableSize(p)).toBe(small)
    expectGuards(arena, p, small)
    // an overflow past the new end is caught
    arena.u8[p + small] = 0
    expectError(() => heap.free(p), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p, [`rear guard overwritten at offset +${small}`, 'buffer overflow'])
    arena.u8[p + small] = DEBUG_BYTE_GUARD
    heap.free(p)
    expect(arena.check().liveBlocks).toBe(0)
  })

  it('realloc that moves copies the prefix, frees the old block (0xDD) and puts guards around the new one', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    const p = mustMalloc(heap, 40)
    for (let i = 0; i < 40; i++) arena.u8[p + i] = 0x40 + i
    const q = heap.realloc(p, 3000)
    expect(q).not.toBe(p)
    expect(heap.usableSize(q)).toBe(3000)
    for (let i = 0; i < 40; i++) expect(arena.u8[q + i]).toBe(0x40 + i)
    expect(firstNot(arena, q + 40, 3000 - 40, DEBUG_BYTE_CLEAN)).toBe(-1)
    expectGuards(arena, q, 3000)
    expect(firstNot(arena, p, 40, DEBUG_BYTE_DEAD)).toBe(-1)
    expectError(() => heap.free(p), DoubleFreeError, 'ERR_DOUBLE_FREE', p)
    // shrinking below half the room moves too
    const r = heap.realloc(q, 10)
    expect(r).not.toBe(q)
    for (let i = 0; i < 10; i++) expect(arena.u8[r + i]).toBe(0x40 + i)
    expectGuards(arena, r, 10)
    expect(heap.realloc(0, 24)).toBeGreaterThan(0) // realloc(0, n) = malloc(n)
    expectIntact(arena, heap, bs)
    expect(arena.check().liveBlocks).toBe(bs.length + 2)
  })

  it('calloc zeroes exactly count*size bytes and guards them', () => {
    const { arena, heap } = debugArena()
    for (const [count, size] of [[1, 1], [3, 7], [10, 100], [4, 4096], [1, 200_000]]) {
      const p = heap.calloc(count, size)
      expect(heap.usableSize(p)).toBe(count * size)
      expect(firstNot(arena, p, count * size, 0)).toBe(-1)
      expectGuards(arena, p, count * size)
    }
  })

  it('huge blocks have the same header, fill and guards, and a huge overflow is caught', () => {
    const { arena, heap } = debugArena(32 * MiB)
    const n = 3 * MiB + 5
    const p = mustMalloc(heap, n)
    expect(heap.usableSize(p)).toBe(n)
    expect(arena.i32[SEGMAP + (p >>> SEGMENT_SHIFT)]).toBe(4) // KIND_HUGE head
    expect(firstNot(arena, p, n, DEBUG_BYTE_CLEAN)).toBe(-1)
    expectGuards(arena, p, n)
    arena.u8[p + n + 15] = 1
    expectError(() => heap.free(p), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p,
      [hex(p), `requested ${n} bytes`, 'serial 1', `rear guard overwritten at offset +${n + 15}`, 'buffer overflow'])
    arena.u8[p + n + 15] = DEBUG_BYTE_GUARD
    const before = arena.check().segmentsInUse
    heap.free(p)
    const span = Math.ceil((arena.segHeaderSize + DEBUG_HEADER + n + DEBUG_REAR_MIN) / SEGMENT_SIZE)
    expect(arena.check().segmentsInUse).toBe(before - span) // its run of segments went back
    expectError(() => heap.free(p), DoubleFreeError, 'ERR_DOUBLE_FREE', p, ['freed already'])
  })

  it('mallocAligned honours every alignment from 8 to 1 MiB with guards and the requested size', () => {
    const { arena, heap } = debugArena(64 * MiB)
    for (let a = 8; a <= MiB; a *= 2) {
      for (const n of [1, 40, 5000]) {
        const p = heap.mallocAligned(n, a)
        expect(p, `mallocAligned(${n}, ${a})`).toBeGreaterThan(0)
        expect(p % a, `mallocAligned(${n}, ${a}) = ${hex(p)}`).toBe(0)
        expect(heap.usableSize(p)).toBe(n)
        expect(firstNot(arena, p, n, DEBUG_BYTE_CLEAN)).toBe(-1)
        expectGuards(arena, p, n)
        heap.free(p)
      }
    }
    expect(arena.check().liveBlocks).toBe(0)
  })
})

/* ----- misuse, one thread ---------------------------------------------------------------- */

describe('debug mode: misuse in one thread', () => {
  it('free of a BigInt, a Symbol or an object is an InvalidPointerError, as in release mode, and calls no valueOf', () => {
    const { arena, heap } = debugArena()
    const p = mustMalloc(heap, 24)
    let called = false
    const bad: unknown[] = [BigInt(p), Symbol('p'), { valueOf: () => { called = true; return p } }]
    for (const x of bad) expect(thrownBy(() => heap.free(x as number))).toBeInstanceOf(InvalidPointerError)
    expect(called, 'valueOf was called').toBe(false)
    heap.free(p)
    expect(arena.check().liveBlocks).toBe(0)
  })

  it('an immediate double free is a DoubleFreeError and changes nothing', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    for (const n of [1, 64, 5000, 70_000, 700_000]) {
      const p = mustMalloc(heap, n)
      heap.free(p)
      expectError(() => heap.free(p), DoubleFreeError, 'ERR_DOUBLE_FREE', p, [`double free of block ${hex(p)}`])
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('a stale double free (after other frees, after its page or segment went back) is a DoubleFreeError', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    // stale after other frees of its page
    const ps = Array.from({ length: 50 }, () => mustMalloc(heap, 48))
    for (const p of ps) heap.free(p)
    for (const p of ps) expectError(() => heap.free(p), DoubleFreeError, 'ERR_DOUBLE_FREE', p)
    // its page retired: a size class with a page of its own, emptied
    const lone = mustMalloc(heap, 2000)
    const lonePage = Array.from({ length: 40 }, () => mustMalloc(heap, 2000))
    heap.free(lone)
    for (const p of lonePage) heap.free(p)
    expectError(() => heap.free(lone), DoubleFreeError, 'ERR_DOUBLE_FREE', lone)
    // its segments released: a huge block
    const huge = mustMalloc(heap, 700_000)
    heap.free(huge)
    expect(arena.i32[SEGMAP + (huge >>> SEGMENT_SHIFT)], 'the huge block\'s segment went back').toBe(0)
    expectError(() => heap.free(huge), DoubleFreeError, 'ERR_DOUBLE_FREE', huge, ['freed already'])
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('interior pointers of a live block (p+8, p+16, …, and into its header) are InvalidPointerError', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    for (const b of bs) {
      for (let off = 8; off <= b.n + 8 && off <= 4096; off += 8) {
        expectError(() => heap.free(b.p + off), InvalidPointerError, 'ERR_INVALID_POINTER', b.p + off, ['invalid pointer'])
      }
      for (const off of [-8, -16, -24]) expectError(() => heap.free(b.p + off), InvalidPointerError, 'ERR_INVALID_POINTER', b.p + off)
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('an interior pointer where an earlier layout of the page had a block is still InvalidPointerError', () => {
    // A 64 KiB page holds 64-byte blocks, empties and is laid out again for
    // 256-byte blocks. Pointers into a live 256-byte block land where old
    // 64-byte blocks started (their "ever allocated" bits are still set).
    const { arena, heap } = debugArena()
    const small = Array.from({ length: 2000 }, () => mustMalloc(heap, 16)) // 64-byte blocks, two pages and more
    const page = small[0] >>> SMALL_PAGE_SHIFT
    const oldStarts = new Set(small.filter((p) => p >>> SMALL_PAGE_SHIFT === page))
    for (const p of small) if (p >>> SMALL_PAGE_SHIFT === page) heap.free(p) // the page retires: its bin has others
    const big = Array.from({ length: 300 }, () => mustMalloc(heap, 200))
    const inOldPage = big.filter((p) => p >>> SMALL_PAGE_SHIFT === page)
    expect(inOldPage.length, 'the emptied page was reused for 256-byte blocks').toBeGreaterThan(0)
    let tried = 0
    for (const p of inOldPage) {
      for (let off = 8; off <= 200; off += 8) {
        if (!oldStarts.has(p + off)) continue
        tried++
        expectError(() => heap.free(p + off), InvalidPointerError, 'ERR_INVALID_POINTER', p + off)
      }
    }
    expect(tried).toBeGreaterThan(0)
    expect(arena.check().liveBlocks).toBe(2000 - oldStarts.size + 300)
  })

  it('unaligned pointers (p+1 … p+7, and past 8-byte steps) are InvalidPointerError', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    for (const b of bs) {
      for (let k = 1; k <= 7; k++) {
        for (const base of [b.p, b.p + 8, b.p - 8]) {
          expectError(() => heap.free(base + k), InvalidPointerError, 'ERR_INVALID_POINTER', base + k, ['not 8-byte aligned'])
        }
      }
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('pointers outside the buffer (≥ its length, negative, NaN, non-integers, infinities) are InvalidPointerError', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    const len = arena.buffer.byteLength
    const p = bs[3].p
    const bad = [len, len + 8, len + 4096, 2 ** 32, 2 ** 32 + p, 2 ** 53, -8, -p, -1, NaN, Infinity, -Infinity, p + 0.5, 1.5]
    for (const x of bad) expectError(() => heap.free(x), InvalidPointerError, 'ERR_INVALID_POINTER', x, ['invalid pointer'])
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('never-allocated pointers (arena metadata, segment headers, a segment never claimed) are InvalidPointerError', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    const meta = arena.metaSegments * SEGMENT_SIZE
    const top = (arena.buffer.byteLength >>> SEGMENT_SHIFT) - 1
    expect(arena.i32[SEGMAP + top], 'the top segment was never claimed').toBe(0)
    const hs = arena.segHeaderSize
    const seg = (bs[3].p >>> SEGMENT_SHIFT) << SEGMENT_SHIFT
    const cases: Array<[number, string]> = [
      [8, 'inside the arena metadata'], [32, 'inside the arena metadata'], [4096, 'inside the arena metadata'], [meta - 8, 'inside the arena metadata'],
      [seg + 32, ''], [seg + 1024, ''], [seg + hs, ''],
      [(top << SEGMENT_SHIFT) + hs + DEBUG_HEADER, 'in a free segment'], [(top << SEGMENT_SHIFT) + 4096, 'in a free segment'],
    ]
    for (const [x, why] of cases) expectError(() => heap.free(x), InvalidPointerError, 'ERR_INVALID_POINTER', x, why ? [why] : [])
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  for (const side of ['overflow', 'underflow'] as const) {
    it(`an ${side} of 1..16 bytes is reported on free (block, size, side, offset, serial), changes nothing, and a repaired block frees`, () => {
      const { arena, heap } = debugArena()
      const bs = bystanders(arena, heap)
      let serial = bs.length
      for (const n of [0, 1, 13, 64, 1000, 70_000]) {
        for (let k = 1; k <= 16; k++) {
          const p = mustMalloc(heap, n)
          serial++
          const from = side === 'overflow' ? p + n : p - k
          const saved = arena.u8.slice(from, from + k)
          for (let j = 0; j < k; j++) arena.u8[from + j] = (0x30 + j) & 0xff
          const before = k === 1 || k === 16 ? arena.u8.slice() : undefined
          expectError(() => heap.free(p), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p, [
            `block ${hex(p)}`, `requested ${n} bytes`, `serial ${serial}`, `heap ${heap.id}`,
            side === 'overflow' ? `rear guard overwritten at offset +${n}` : `front guard overwritten at offset -${k}`,
            side === 'overflow' ? 'buffer overflow' : 'buffer underflow',
          ])
          if (before !== undefined) expect(Buffer.compare(Buffer.from(arena.u8), Buffer.from(before)), 'the rejected free changed the buffer').toBe(0)
          expect(heap.usableSize(p), 'still live').toBe(n)
          // realloc finds it too, and changes nothing either
          expectError(() => heap.realloc(p, n + 100), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p, [side === 'overflow' ? 'buffer overflow' : 'buffer underflow'])
          arena.u8.set(saved, from)
          heap.free(p) // repaired
        }
      }
      expect(arena.check().liveBlocks).toBe(bs.length)
      expectIntact(arena, heap, bs)
    })
  }

  it('damage to any single guard byte is reported with its offset, whatever the alignment of the requested size', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 101, 102, 103, 1001]) {
      for (let j = 0; j < 16; j++) {
        for (const side of ['rear', 'front'] as const) {
          const p = mustMalloc(heap, n)
          const at = side === 'rear' ? p + n + j : p - 16 + j
          arena.u8[at] = 0x41
          expectError(() => heap.free(p), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p,
            [side === 'rear' ? `rear guard overwritten at offset +${n + j} (byte 0x41)` : `front guard overwritten at offset ${j - 16} (byte 0x41)`])
          arena.u8[at] = DEBUG_BYTE_GUARD
          heap.free(p)
        }
      }
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('a write after free is caught when the block is handed out again for a smaller or larger size of its class', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    // [size freed, size asked next, offset written]: offsets past the new size, in its last partial word, in the common part
    const cases: Array<[number, number, number]> = [
      [1201, 1000, 1200], [1201, 1000, 1010], [1201, 1000, 999], [1201, 1000, 0],
      [1000, 1201, 999], [1000, 1201, 992], [1000, 1201, 3], [101, 97, 100], [101, 97, 96], [97, 101, 96], [97, 101, 95],
    ]
    for (const [n1, n2, off] of cases) {
      expect(binOf(n1 + DEBUG_HEADER + 16), `${n1} and ${n2} share a size class`).toBe(binOf(n2 + DEBUG_HEADER + 16))
      const p = mustMalloc(heap, n1)
      const pin = mustMalloc(heap, n1) // keeps p's page in use
      heap.free(p)
      arena.u8[p + off] = 0x41
      const extra: number[] = []
      let err: unknown
      for (let i = 0; i < 5000 && err === undefined; i++) {
        try {
          extra.push(mustMalloc(heap, n2))
        } catch (e) {
          err = e
        }
      }
      expect(err, `no malloc(${n2}) reported the write at +${off} into a freed ${n1}-byte block`).toBeInstanceOf(HeapCorruptionError)
      const e = err as AllocatorError
      expect(e.ptr).toBe(p)
      for (const part of [`requested ${n1} bytes`, `offset +${off} is 0x41`, 'use after free']) expect(e.message).toContain(part)
      expect(firstNot(arena, p, n1, DEBUG_BYTE_DEAD), 'the block was put back refilled 0xDD').toBe(-1)
      let again = 0
      for (let i = 0; i < 5000 && again !== p; i++) { again = mustMalloc(heap, n2); extra.push(again) }
      expect(again).toBe(p)
      expect(firstNot(arena, p, n2, DEBUG_BYTE_CLEAN)).toBe(-1)
      expectGuards(arena, p, n2)
      for (const x of extra) heap.free(x)
      heap.free(pin)
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('a write after free is reported by check() and by the malloc that hands the block out, which puts it back', () => {
    const { arena, heap } = debugArena()
    const bs = bystanders(arena, heap)
    let serial = bs.length // DebugHeap numbers the blocks it hands out, per heap
    const m = (n: number): number => { const x = mustMalloc(heap, n); serial++; return x }
    for (const [n, off] of [[1, 0], [40, 39], [100, 17], [3000, 2999]]) {
      const p = m(n)
      const pSerial = serial
      const pin = m(n) // keeps p's page in use and at the front of its queue
      heap.free(p)
      arena.u8[p + off] = 0x41
      expectError(() => arena.check(), HeapCorruptionError, 'ERR_HEAP_CORRUPTION', p, ['written after it was freed', `offset +${off}`])
      const extra: number[] = []
      let err: AllocatorError | undefined
      for (let i = 0; i < 5000 && err === undefined; i++) {
        try {
          extra.push(m(n))
        } catch (e) {
          err = e as AllocatorError
        }
      }
      expect(err, `no malloc(${n}) reported the write after free`).toBeInstanceOf(HeapCorruptionError)
      expect(extra, 'the written block was handed out').not.toContain(p)
      expect(err!.code).toBe('ERR_HEAP_CORRUPTION')
      expect(err!.ptr).toBe(p)
      for (const part of [`block ${hex(p)}`, `requested ${n} bytes`, `serial ${pSerial}`, `offset +${off} is 0x41`, 'use after free']) expect(err!.message).toContain(part)
      // the block went back, refilled: the arena checks clean and the block is handed out normally later
      expect(arena.check().liveBlocks).toBe(bs.length + 1 + extra.length)
      let again = 0
      for (let i = 0; i < 5000 && again !== p; i++) { again = m(n); extra.push(again) }
      expect(again).toBe(p)
      expect(firstNot(arena, p, n, DEBUG_BYTE_CLEAN)).toBe(-1)
      for (const x of extra) heap.free(x)
      heap.free(pin)
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })
})

/* ----- misuse across workers -------------------------------------------------------------- */

const PEER = fileURLToPath(new URL('../workers/fuzz-peer.ts', import.meta.url))
/** Races per racing test. */
const RACES = 3000

/** A fuzz-peer worker: one request at a time, with a deadline. */
class Peer {
  readonly worker: Worker
  private next = 1
  constructor(data: { buffer: SharedArrayBuffer, ctl: SharedArrayBuffer }) {
    this.worker = spawnFuzzWorker(PEER, { workerData: data })
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new Error(`peer: ${op} timed out`)) }, 20_000)
      const onMessage = (m: { id: number, value?: unknown, error?: string }): void => {
        if (m.id !== id) return
        done()
        if (m.error !== undefined) reject(new Error(m.error))
        else resolve(m.value as T)
      }
      const onExit = (code: number): void => { done(); reject(new Error(`peer exited (${code}) during ${op}`)) }
      const done = (): void => {
        clearTimeout(timer)
        this.worker.off('message', onMessage)
        this.worker.off('exit', onExit)
      }
      this.worker.on('message', onMessage)
      this.worker.on('exit', onExit)
      this.worker.postMessage({ id, op, ...args })
    })
  }
}

describe('debug mode: misuse across workers', () => {
  let arena: Arena
  let heap: Heap
  let ctl: Int32Array
  let peers: Peer[] = []
  let bs: Bystander[]
  /** Restores anything a test patched. */
  let restore: (() => void) | undefined

  beforeAll(async () => {
    ({ arena, heap } = debugArena(64 * MiB))
    bs = bystanders(arena, heap)
    const ctlBuffer = new SharedArrayBuffer(4 * (RACES + 1))
    ctl = new Int32Array(ctlBuffer)
    peers = [0, 1].map(() => new Peer({ buffer: arena.buffer, ctl: ctlBuffer }))
    await Promise.all(peers.map((p) => p.call('heap')))
  })

  afterEach(() => {
    restore?.()
    restore = undefined
  })

  afterAll(async () => {
    Atomics.store(ctl, 0, 1)
    await Promise.all(peers.map((p) => p.worker.terminate()))
  })

  function expectDoubleFree(o: PeerOutcome, p: number): void {
    expect(o.ok, `free(${hex(p)}) was accepted`).toBe(false)
    expect(o.name, o.message).toBe('DoubleFreeError')
    expect(o.code).toBe('ERR_DOUBLE_FREE')
    expect(o.ptr).toBe(p)
    expect(o.message).toContain(`double free of block ${hex(p)}`)
  }

  it('a block freed by another worker, freed again here (and the other way round), is a DoubleFreeError', async () => {
    const [a, b] = peers
    for (const n of [8, 300, 5000, 70_000, 700_000]) {
      // main allocates, peer A frees, main frees again
      const p = mustMalloc(heap, n)
      expect((await a.call<PeerOutcome>('free', { ptr: p })).ok).toBe(true)
      expectError(() => heap.free(p), DoubleFreeError, 'ERR_DOUBLE_FREE', p, [`double free of block ${hex(p)}`])
      // peer A allocates, main frees, peer B frees again, peer A (the owner) too
      const [q] = await a.call<number[]>('malloc', { sizes: [n] })
      heap.free(q)
      expectDoubleFree(await b.call<PeerOutcome>('free', { ptr: q }), q)
      expectDoubleFree(await a.call<PeerOutcome>('free', { ptr: q }), q)
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('two workers freeing one block at the same moment: exactly one succeeds, the other gets DoubleFreeError', async () => {
    // blocks of the main heap (both frees cross-thread) and of peer A (one racer is the owner)
    ctl.fill(0, 1)
    const mine = Array.from({ length: RACES / 2 }, (_, i) => mustMalloc(heap, [1, 8, 40, 200][i % 4]))
    const theirs = await peers[0].call<number[]>('malloc', { sizes: Array.from({ length: RACES / 2 }, (_, i) => [1, 8, 40, 200][i % 4]) })
    const ptrs = [...mine, ...theirs]
    const [ra, rb] = await Promise.all(peers.map((p) => p.call<PeerOutcome[]>('race', { ptrs })))
    const odd: string[] = []
    ptrs.forEach((p, i) => {
      const pair = [ra[i], rb[i]]
      const freed = pair.filter((o) => o.ok).length
      const df = pair.filter((o) => !o.ok && o.name === 'DoubleFreeError' && o.code === 'ERR_DOUBLE_FREE' && o.ptr === p).length
      if (freed !== 1 || df !== 1) odd.push(`${hex(p)}: ${pair.map((o) => (o.ok ? 'freed' : `${o.name}: ${o.message}`)).join(' / ')}`)
    })
    expect(odd, `${odd.length} of ${ptrs.length} races did not end with one free and one DoubleFreeError`).toEqual([])
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })

  it('a racing double free is a DoubleFreeError even when the other free completes right after it found the block (deterministic interleaving)', () => {
    // Heap B's whole free of p runs after heap A's free has found p a block
    // start (blockStartPage returned) and before A does anything else (its
    // ALLOC bit flip decides) — one interleaving of two threads racing on p,
    // replayed in one thread. B's free succeeds; A must report a double free
    // and change nothing.
    const other = arena.createHeap()
    const proto = DebugHeap.prototype as unknown as { blockStartPage: (ptr: number) => number }
    const original = proto.blockStartPage
    let between: (() => void) | undefined
    proto.blockStartPage = function (this: DebugHeap, ptr: number): number {
      const pd = original.call(this, ptr)
      const f = between
      between = undefined
      f?.()
      return pd
    }
    restore = () => { proto.blockStartPage = original; other.release() }
    for (const n of [1, 8, 100, 5000]) {
      const p = mustMalloc(heap, n)
      let otherOutcome: unknown = 'not run'
      between = () => { otherOutcome = thrownByOrOk(() => other.free(p)) }
      const e = thrownBy(() => heap.free(p)) as AllocatorError
      expect(otherOutcome, 'the other heap\'s free of the live block').toBe('ok')
      expect(`${e.name}: ${e.message}`).toMatch(/^DoubleFreeError/)
      expect(e.code).toBe('ERR_DOUBLE_FREE')
      expect(e.ptr).toBe(p)
      expect(firstNot(arena, p, n, DEBUG_BYTE_DEAD), 'the block stays freed (0xDD)').toBe(-1)
    }
    expect(arena.check().liveBlocks).toBe(bs.length)
    expectIntact(arena, heap, bs)
  })
})
