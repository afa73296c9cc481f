/* ----------------------------------------------------------------------------
  fill.ts — byte fills of shared memory and their checks (calloc's zeroing,
  debug mode's 0xCD / 0xDD / 0xFD patterns).

  On Node 20, Uint8Array.prototype.fill over a SharedArrayBuffer goes byte by
  byte (~0.35 ns a byte) and Float64Array.prototype.fill is a builtin call of
  ~100 ns for 500 bytes; a plain loop of Float64Array stores, unrolled four
  times, stores 8 bytes for ~0.5 ns (the typed array's base and length are
  reloaded at every access, so fewer, wider accesses win). The patterns
  used here as doubles (0, 0xCDCD…, 0xDDDD…, 0xFDFD…) are ordinary numbers,
  never NaN nor -0, so their bits are stored exactly and `!==` compares bits.
---------------------------------------------------------------------------- */

/** The double whose 8 bytes are all `byte`. */
export function pattern64(byte: number): number {
  return new Float64Array(new Uint8Array(8).fill(byte).buffer)[0]
}

/** Fills bytes [from, to) with `byte`; `word` is pattern64(byte). Offsets may be unaligned. */
export function fillBytes(u8: Uint8Array, f64: Float64Array, from: number, to: number, byte: number, word: number): void {
  const head = Math.min(to, from + (-from & 7))
  for (let k = from; k < head; k++) u8[k] = byte
  let i = head >>> 3
  const e = to >>> 3
  for (; i + 4 <= e; i += 4) {
    f64[i] = word
    f64[i + 1] = word
    f64[i + 2] = word
    f64[i + 3] = word
  }
  for (; i < e; i++) f64[i] = word
  for (let k = Math.max(head, e * 8); k < to; k++) u8[k] = byte
}

/** The first offset in [from, to) whose byte is not `byte` (`word` is pattern64(byte)), or -1. */
export function findOtherByte(u8: Uint8Array, f64: Float64Array, from: number, to: number, byte: number, word: number): number {
  const head = Math.min(to, from + (-from & 7))
  for (let k = from; k < head; k++) if (u8[k] !== byte) return k
  let i = head >>> 3
  const e = to >>> 3
  for (; i + 4 <= e; i += 4) {
    if (f64[i] !== word || f64[i + 1] !== word || f64[i + 2] !== word || f64[i + 3] !== word) break
  }
  for (; i < e; i++) if (f64[i] !== word) break
  // the word that differs (or the tail): find the byte
  for (let k = Math.max(head, i * 8); k < to; k++) if (u8[k] !== byte) return k
  return -1
}
