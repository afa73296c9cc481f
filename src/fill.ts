/* ----------------------------------------------------------------------------
  fill.ts — byte fills of shared memory (calloc's zeroing, debug mode's
  0xCD / 0xDD / 0xFD patterns).

  On Node 20, Uint8Array.prototype.fill over a SharedArrayBuffer goes byte by
  byte (~0.35 ns a byte); a Float64Array fills 8 bytes a store, about 3×
  faster. The patterns used here as doubles (0, 0xCDCD…, 0xDDDD…) are
  ordinary numbers, never NaN, so their bits are stored exactly.
---------------------------------------------------------------------------- */

/** The double whose 8 bytes are all `byte`. */
export function pattern64(byte: number): number {
  return new Float64Array(new Uint8Array(8).fill(byte).buffer)[0]
}

/** Fills bytes [from, to) with `byte`; `word` is pattern64(byte). */
export function fillBytes(u8: Uint8Array, f64: Float64Array, from: number, to: number, byte: number, word: number): void {
  if (to - from < 64) {
    for (let k = from; k < to; k++) u8[k] = byte
    return
  }
  const head = (from + 7) & ~7
  const tail = to & ~7
  for (let k = from; k < head; k++) u8[k] = byte
  f64.fill(word, head >>> 3, tail >>> 3)
  for (let k = tail; k < to; k++) u8[k] = byte
}
