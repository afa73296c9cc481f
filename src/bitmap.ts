/* ----------------------------------------------------------------------------
  bitmap.ts — atomic bitmaps of segments, after mimalloc's `bitmap.c`.

  A bitmap is a run of Int32 words in the buffer; bit i is bit (i & 31) of word
  (i >> 5). Bits are claimed (0 → 1) only by Atomics.compareExchange on a whole
  word and released (1 → 0) by Atomics.and, so any number of threads may claim
  and release concurrently: a claim that returns succeeded for exactly one
  thread. A run of bits that crosses words is claimed word by word and rolled
  back if any word lost a race (`_mi_bitmap_try_find_from_claim_across`).
---------------------------------------------------------------------------- */

/** Mask of `count` bits starting at bit `shift` of a word (count ≥ 1, shift + count ≤ 32). */
function maskOf(shift: number, count: number): number {
  return count >= 32 ? -1 : ((1 << count) - 1) << shift
}

/**
 * Claims one clear bit in [from, limit) of the bitmap at word `base`, lowest first.
 * Returns its index, or -1 when every bit in range is set.
 */
export function claimBit(i32: Int32Array, base: number, from: number, limit: number): number {
  for (let w = from >>> 5; (w << 5) < limit; w++) {
    const lo = Math.max(from - (w << 5), 0)
    const hi = Math.min(limit - (w << 5), 32)
    const valid = maskOf(lo, hi - lo)
    let cur = Atomics.load(i32, base + w)
    for (;;) {
      const clear = ~cur & valid
      if (clear === 0) break
      const bit = 31 - Math.clz32(clear & -clear)
      const prev = Atomics.compareExchange(i32, base + w, cur, cur | (1 << bit))
      if (prev === cur) return (w << 5) + bit
      cur = prev // lost a race on this word: look again
    }
  }
  return -1
}

/**
 * Claims `count` contiguous clear bits in [from, limit), possibly across words.
 * Returns the first index, or -1 if no run is free.
 */
export function claimRun(i32: Int32Array, base: number, from: number, limit: number, count: number): number {
  if (count === 1) return claimBit(i32, base, from, limit)
  let start = from
  while (start + count <= limit) {
    // racy scan for a candidate run
    let run = 0
    let i = start
    for (; i < limit && run < count; i++) {
      if ((Atomics.load(i32, base + (i >>> 5)) >>> (i & 31)) & 1) run = 0
      else run++
    }
    if (run < count) return -1
    const first = i - count
    const failedAt = tryClaimRange(i32, base, first, count)
    if (failedAt < 0) return first
    start = failedAt + 1 // someone else took a bit: scan again past it
  }
  return -1
}

/** Claims bits [first, first+count) word by word; returns -1 on success, else the index of a bit found set (all undone). */
function tryClaimRange(i32: Int32Array, base: number, first: number, count: number): number {
  let i = first
  const end = first + count
  while (i < end) {
    const w = i >>> 5
    const n = Math.min(32 - (i & 31), end - i)
    const m = maskOf(i & 31, n)
    let cur = Atomics.load(i32, base + w)
    for (;;) {
      if ((cur & m) !== 0) {
        releaseRange(i32, base, first, i - first)
        return (w << 5) + 31 - Math.clz32(cur & m)
      }
      const prev = Atomics.compareExchange(i32, base + w, cur, cur | m)
      if (prev === cur) break
      cur = prev
    }
    i += n
  }
  return -1
}

/** Clears bits [first, first+count) (they must be set by the caller's claim). */
export function releaseRange(i32: Int32Array, base: number, first: number, count: number): void {
  let i = first
  const end = first + count
  while (i < end) {
    const n = Math.min(32 - (i & 31), end - i)
    Atomics.and(i32, base + (i >>> 5), ~maskOf(i & 31, n))
    i += n
  }
}

/** Sets bits [first, first+count) (used to mark metadata segments and abandoned segments). */
export function setRange(i32: Int32Array, base: number, first: number, count: number): void {
  let i = first
  const end = first + count
  while (i < end) {
    const n = Math.min(32 - (i & 31), end - i)
    Atomics.or(i32, base + (i >>> 5), maskOf(i & 31, n))
    i += n
  }
}

/** Atomically clears bit `i` if set; true if this call cleared it (the caller now owns what it stood for). */
export function tryClearBit(i32: Int32Array, base: number, i: number): boolean {
  const m = 1 << (i & 31)
  return (Atomics.and(i32, base + (i >>> 5), ~m) & m) !== 0
}

/** Racy read of bit `i`. */
export function isBitSet(i32: Int32Array, base: number, i: number): boolean {
  return ((Atomics.load(i32, base + (i >>> 5)) >>> (i & 31)) & 1) === 1
}

/** Lowest set bit in [from, limit), or -1 (racy scan). */
export function findSetBit(i32: Int32Array, base: number, from: number, limit: number): number {
  for (let w = from >>> 5; (w << 5) < limit; w++) {
    const lo = Math.max(from - (w << 5), 0)
    const hi = Math.min(limit - (w << 5), 32)
    const set = Atomics.load(i32, base + w) & maskOf(lo, hi - lo)
    if (set !== 0) return (w << 5) + 31 - Math.clz32(set & -set)
  }
  return -1
}
