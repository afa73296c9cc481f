/* ----------------------------------------------------------------------------
  size-classes.ts — size → bin, after mimalloc's `mi_bin`.

  Bin 1 is 8 bytes; bins 2..9 go in 16-byte steps up to 128 bytes (so every
  block of 16 bytes or more is 16-aligned); above that four bins per power of
  two (a block wastes < 20% of itself), up to LARGE_OBJ_MAX. Larger requests
  are huge (BIN_HUGE): one block in its own run of segments.
---------------------------------------------------------------------------- */

import * as layout from './layout.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  BIN_HUGE, KIND_LARGE, KIND_MEDIUM, KIND_SMALL, LARGE_OBJ_MAX, MEDIUM_OBJ_MAX, SMALL_OBJ_MAX,
} = layout

/** Bin of a request of `size` bytes (0 ≤ size); BIN_HUGE above LARGE_OBJ_MAX. */
export function binOf(size: number): number {
  if (size > LARGE_OBJ_MAX) return BIN_HUGE
  let w = (size + 7) >>> 3 // size in 8-byte words
  if (w <= 1) return 1
  if (w <= 16) return ((w + 1) >>> 1) + 1
  w -= 1
  const b = 31 - Math.clz32(w) // highest bit
  // the top 3 bits of w choose one of 4 bins per power of two
  return (b << 2) + ((w >>> (b - 2)) & 3) - 6
}

/** Block size in bytes of each bin (index 0 unused, BIN_HUGE = 0). */
export const BIN_SIZE: Int32Array = (() => {
  const t = new Int32Array(BIN_HUGE + 1)
  for (let s = 1; s <= LARGE_OBJ_MAX; s += 8) t[binOf(s)] = Math.max(t[binOf(s)], s + 7 & ~7)
  return t
})()

/** Segment kind whose pages serve blocks of `blockSize` bytes (not huge). */
export function pageKindOf(blockSize: number): number {
  if (blockSize <= SMALL_OBJ_MAX) return KIND_SMALL
  if (blockSize <= MEDIUM_OBJ_MAX) return KIND_MEDIUM
  return KIND_LARGE
}

/**
 * 1 / block size per bin, for the free path's block-start check without an
 * integer division: round(diff * inverse) is the block index when diff is a
 * multiple of the block size (verified by multiplying back). BIN_HUGE has 0:
 * a huge page's only block is at diff 0.
 */
export const BIN_INVERSE: Float64Array = (() => {
  const t = new Float64Array(BIN_HUGE + 1)
  for (let b = 1; b < BIN_HUGE; b++) t[b] = 1 / BIN_SIZE[b]
  return t
})()
