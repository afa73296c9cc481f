import { describe, expect, it } from 'vitest'
import { fillBytes, findOtherByte, pattern64 } from '../src/fill.js'

/** A fresh shared buffer of 256 bytes of 0x11, with its byte and double views. */
function views(): { u8: Uint8Array, f64: Float64Array } {
  const sab = new SharedArrayBuffer(256)
  const u8 = new Uint8Array(sab).fill(0x11)
  return { u8, f64: new Float64Array(sab) }
}

describe('fill', () => {
  it('fillBytes fills exactly [from, to) for every alignment of both ends', () => {
    for (let from = 64; from < 80; from++) {
      for (let to = from; to < from + 90; to++) {
        const { u8, f64 } = views()
        fillBytes(u8, f64, from, to, 0xcd, pattern64(0xcd))
        for (let k = 0; k < u8.length; k++) {
          const want = k >= from && k < to ? 0xcd : 0x11
          if (u8[k] !== want) throw new Error(`fillBytes(${from}, ${to}): byte ${k} is 0x${u8[k].toString(16)}`)
        }
      }
    }
  })

  it('findOtherByte finds the first differing byte of [from, to), for every alignment and position, and only inside the range', () => {
    for (let from = 64; from < 72; from++) {
      for (let to = from; to < from + 70; to++) {
        const { u8, f64 } = views()
        u8.fill(0xdd, from, to)
        expect(findOtherByte(u8, f64, from, to, 0xdd, pattern64(0xdd)), `clean ${from}..${to}`).toBe(-1)
        for (let bad = from; bad < to; bad++) {
          u8[bad] = 0x41
          if (bad + 5 < to) u8[bad + 5] = 0x42 // a later difference does not hide the first
          const got = findOtherByte(u8, f64, from, to, 0xdd, pattern64(0xdd))
          if (got !== bad) throw new Error(`findOtherByte(${from}, ${to}) with byte ${bad} written: got ${got}`)
          u8.fill(0xdd, from, to)
        }
      }
    }
  })
})
