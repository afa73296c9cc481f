/* ----------------------------------------------------------------------------
  Atomic bitmaps (src/bitmap.ts) over an Int32Array on a SharedArrayBuffer:
  bit i is bit (i & 31) of word base + (i >> 5). The arena claims segments
  and heap slots with these, so every claim must set exactly the bits it
  reports and a failed claim must set none.
---------------------------------------------------------------------------- */

import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  claimBit, claimRun, findSetBit, isBitSet, releaseRange, setRange, tryClearBit,
} from '../src/bitmap.js'

/** Words of the test bitmap; it starts at word BASE so that word 0 is never touched by mistake. */
const WORDS = 8
const BASE = 3
const BITS = WORDS * 32

function bitmap(): Int32Array {
  return new Int32Array(new SharedArrayBuffer((BASE + WORDS + 2) * 4))
}

/** Indices of the set bits of the bitmap. */
function setBits(i32: Int32Array): number[] {
  const out: number[] = []
  for (let i = 0; i < BITS; i++) if (isBitSet(i32, BASE, i)) out.push(i)
  return out
}

/** [first, first+count) as a list. */
function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i)
}

/** The words around the bitmap stay zero whatever the bitmap functions do. */
function outsideUntouched(i32: Int32Array): boolean {
  for (let w = 0; w < BASE; w++) if (i32[w] !== 0) return false
  for (let w = BASE + WORDS; w < i32.length; w++) if (i32[w] !== 0) return false
  return true
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('claimBit', () => {
  it('claims the lowest clear bit and sets only that bit', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 3)
    expect(claimBit(i32, BASE, 0, BITS)).toBe(3)
    expect(setBits(i32)).toEqual([0, 1, 2, 3])
  })

  it('claims successive bits within a word on successive calls', () => {
    const i32 = bitmap()
    const got = range(0, 32).map(() => claimBit(i32, BASE, 0, BITS))
    expect(got).toEqual(range(0, 32))
    expect(i32[BASE]).toBe(-1)
    expect(i32[BASE + 1]).toBe(0)
  })

  it('moves on to the next word when a word is full', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 32)
    expect(claimBit(i32, BASE, 0, BITS)).toBe(32)
  })

  it('claims bit 31 of a word (the sign bit)', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 31)
    expect(claimBit(i32, BASE, 0, BITS)).toBe(31)
    expect(i32[BASE]).toBe(-1)
  })

  it('starts at `from`, even in the middle of a word', () => {
    const i32 = bitmap()
    expect(claimBit(i32, BASE, 37, BITS)).toBe(37)
    expect(setBits(i32)).toEqual([37])
  })

  it('returns -1 when every bit below `limit` is set, though bits at and past the limit are clear', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 40)
    expect(claimBit(i32, BASE, 0, 40)).toBe(-1)
    expect(setBits(i32)).toEqual(range(0, 40))
  })

  it('never claims a bit at or past `limit`', () => {
    const i32 = bitmap()
    for (let i = 0; i < 45; i++) claimBit(i32, BASE, 0, 45)
    expect(setBits(i32)).toEqual(range(0, 45))
    expect(outsideUntouched(i32)).toBe(true)
  })
})

describe('claimRun', () => {
  it('claims a run inside one word', () => {
    const i32 = bitmap()
    expect(claimRun(i32, BASE, 0, BITS, 5)).toBe(0)
    expect(setBits(i32)).toEqual(range(0, 5))
  })

  it('claims bits 30..34 across the boundary of words 0 and 1', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 30)
    expect(claimRun(i32, BASE, 0, BITS, 5)).toBe(30)
    expect(setBits(i32)).toEqual(range(0, 35))
  })

  it.each([
    [33, 0], [33, 7], [33, 31], [64, 0], [64, 5], [64, 32], [100, 0], [100, 13], [100, 60], [32, 32], [32, 16],
  ])('claims a run of %i bits starting at bit %i, setting exactly those bits', (count, from) => {
    const i32 = bitmap()
    expect(claimRun(i32, BASE, from, BITS, count)).toBe(from)
    expect(setBits(i32)).toEqual(range(from, count))
    expect(outsideUntouched(i32)).toBe(true)
  })

  it('skips past set bits to the first run that is clear', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 10, 1)
    setRange(i32, BASE, 50, 1)
    // 0..9 is too short, 11..49 is 39 bits: too short for 40; 51.. fits
    expect(claimRun(i32, BASE, 0, BITS, 40)).toBe(51)
    expect(setBits(i32)).toEqual([10, 50, ...range(51, 40)])
  })

  it('claims a run that ends exactly at the limit', () => {
    const i32 = bitmap()
    expect(claimRun(i32, BASE, 0, 40, 40)).toBe(0)
    expect(setBits(i32)).toEqual(range(0, 40))
  })

  it('returns -1 for a run longer than [from, limit), setting nothing', () => {
    const i32 = bitmap()
    expect(claimRun(i32, BASE, 0, 40, 41)).toBe(-1)
    expect(claimRun(i32, BASE, 10, 40, 31)).toBe(-1)
    expect(setBits(i32)).toEqual([])
  })

  it('returns -1 when a set bit in the middle leaves no gap long enough, setting nothing', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 40, 1)
    expect(claimRun(i32, BASE, 20, 60, 25)).toBe(-1)
    expect(setBits(i32)).toEqual([40])
  })

  it('returns -1 when the bitmap is full', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, BITS)
    expect(claimRun(i32, BASE, 0, BITS, 2)).toBe(-1)
    expect(claimRun(i32, BASE, 0, BITS, 1)).toBe(-1)
  })

  it('rolls back every word it claimed when a later word of the run was taken meanwhile', () => {
    // Simulates another thread claiming bit 40 between claimRun's scan and its
    // claim: the scan sees bit 40 clear (hidden until the first CAS), the
    // claim of bits 30..49 takes word 0 (bits 30, 31), finds bit 40 set in
    // word 1 and must undo word 0. No other 20-bit run fits below 60.
    const i32 = bitmap()
    setRange(i32, BASE, 40, 1)
    const hiddenWord = BASE + 1
    const hiddenMask = 1 << (40 - 32)
    let raced = false
    const realLoad = Atomics.load.bind(Atomics)
    const realCas = Atomics.compareExchange.bind(Atomics)
    vi.spyOn(Atomics, 'load').mockImplementation(((ta: Int32Array, index: number) => {
      const v = realLoad(ta, index)
      return !raced && ta === i32 && index === hiddenWord ? v & ~hiddenMask : v
    }) as typeof Atomics.load)
    vi.spyOn(Atomics, 'compareExchange').mockImplementation(((ta: Int32Array, index: number, expected: number, value: number) => {
      if (ta === i32) raced = true
      return realCas(ta, index, expected, value)
    }) as typeof Atomics.compareExchange)

    const got = claimRun(i32, BASE, 30, 60, 20)
    vi.restoreAllMocks()

    expect(raced).toBe(true)
    expect(got).toBe(-1)
    expect(setBits(i32)).toEqual([40])
  })

  it('after a rolled-back claim, finds the next run that fits', () => {
    // as above, but with room past bit 40 for the run: the claim retries there
    const i32 = bitmap()
    setRange(i32, BASE, 40, 1)
    let raced = false
    const realLoad = Atomics.load.bind(Atomics)
    const realCas = Atomics.compareExchange.bind(Atomics)
    vi.spyOn(Atomics, 'load').mockImplementation(((ta: Int32Array, index: number) => {
      const v = realLoad(ta, index)
      return !raced && ta === i32 && index === BASE + 1 ? v & ~(1 << 8) : v
    }) as typeof Atomics.load)
    vi.spyOn(Atomics, 'compareExchange').mockImplementation(((ta: Int32Array, index: number, expected: number, value: number) => {
      if (ta === i32) raced = true
      return realCas(ta, index, expected, value)
    }) as typeof Atomics.compareExchange)

    const got = claimRun(i32, BASE, 30, BITS, 20)
    vi.restoreAllMocks()

    expect(got).toBe(41)
    expect(setBits(i32)).toEqual([40, ...range(41, 20)])
  })

  it('with count 1 behaves as claimBit', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 33)
    expect(claimRun(i32, BASE, 0, BITS, 1)).toBe(33)
    expect(setBits(i32)).toEqual(range(0, 34))
  })
})

describe('releaseRange, setRange, tryClearBit, findSetBit', () => {
  it('releaseRange clears exactly a claimed run across words, and the run can be claimed again', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 5)
    const first = claimRun(i32, BASE, 0, BITS, 100)
    expect(first).toBe(5)
    releaseRange(i32, BASE, first, 100)
    expect(setBits(i32)).toEqual(range(0, 5))
    expect(claimRun(i32, BASE, 0, BITS, 100)).toBe(5)
    expect(setBits(i32)).toEqual(range(0, 105))
  })

  it('releaseRange leaves the bits next to the range set', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, BITS)
    releaseRange(i32, BASE, 30, 5)
    expect(setBits(i32)).toEqual([...range(0, 30), ...range(35, BITS - 35)])
  })

  it.each([[0, 1], [31, 1], [30, 5], [0, 32], [32, 32], [7, 100], [0, BITS]])(
    'setRange(%i, %i) sets exactly those bits', (first, count) => {
      const i32 = bitmap()
      setRange(i32, BASE, first, count)
      expect(setBits(i32)).toEqual(range(first, count))
      expect(outsideUntouched(i32)).toBe(true)
    })

  it('tryClearBit clears a set bit once: true the first time, false after', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 62, 3)
    expect(tryClearBit(i32, BASE, 63)).toBe(true)
    expect(tryClearBit(i32, BASE, 63)).toBe(false)
    expect(setBits(i32)).toEqual([62, 64])
  })

  it('tryClearBit of a clear bit returns false and changes nothing', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 0, 31)
    expect(tryClearBit(i32, BASE, 31)).toBe(false)
    expect(setBits(i32)).toEqual(range(0, 31))
  })

  it('findSetBit finds the lowest set bit at or after `from`, across words', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 5, 1)
    setRange(i32, BASE, 70, 1)
    expect(findSetBit(i32, BASE, 0, BITS)).toBe(5)
    expect(findSetBit(i32, BASE, 5, BITS)).toBe(5)
    expect(findSetBit(i32, BASE, 6, BITS)).toBe(70)
  })

  it('findSetBit returns -1 when the only set bits are at or past `limit`', () => {
    const i32 = bitmap()
    setRange(i32, BASE, 70, 1)
    expect(findSetBit(i32, BASE, 0, 70)).toBe(-1)
    expect(findSetBit(i32, BASE, 0, 71)).toBe(70)
  })

  it('findSetBit returns -1 on an empty bitmap', () => {
    expect(findSetBit(bitmap(), BASE, 0, BITS)).toBe(-1)
  })
})
