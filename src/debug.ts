/* ----------------------------------------------------------------------------
  debug.ts — debug mode (`Arena.create({ debug: true })`), after pymalloc's
  debug hooks and mimalloc's padding checks.

  Every block carries a 32-byte header (requested size, serial number,
  allocating heap, a 16-byte 0xFD front guard) and 0xFD rear guard bytes
  right after the requested size; user bytes are filled 0xCD on malloc and
  0xDD on free (layout.ts draws the block). Two bitmaps per segment track
  blocks: ALLOC, flipped with Atomics.or on malloc and Atomics.and on free —
  the old value decides a free, so of two racing frees of one block exactly
  one succeeds — and EVER, which remembers that a block was handed out even
  after its page was retired (a stale double free, not a wild pointer).

  Every check runs before anything changes: a rejected free, realloc or
  malloc leaves the arena as it was. The release-mode fast paths are not
  touched; DebugHeap overrides the public operations.
---------------------------------------------------------------------------- */

import { DoubleFreeError, HeapCorruptionError, InvalidPointerError } from './errors.js'
import { freeBlock, freeLocal, pageOfPointer } from './free.js'
import * as fill from './fill.js'
import { Heap, checkAlignment, checkSize } from './heap.js'
import * as layout from './layout.js'
import * as segment from './segment.js'
import * as sizeClasses from './size-classes.js'

// imported constants and functions as module-local consts: Node 20 folds
// these into the compiled code, but reloads and checks an imported binding
// at every use (layout.ts)
const {
  BIN_HUGE, DEBUG_BYTE_CLEAN, DEBUG_BYTE_DEAD, DEBUG_BYTE_GUARD, DEBUG_DEAD, DEBUG_FRONT,
  DEBUG_FRONT_BYTES, DEBUG_HEADER, DEBUG_HEAP, DEBUG_LINK, DEBUG_LIVE, DEBUG_REAR_MIN, DEBUG_SERIAL,
  DEBUG_SIZE, MAX_ALLOC_SIZE, PAGE_BIN, PAGE_BLOCK_SIZE, PAGE_CAPACITY, PAGE_FLAGS, PAGE_FLAG_IN_USE,
  PAGE_START, SEGMAP, SEGMENT_ALLOC_BITS, SEGMENT_EVER_BITS, SEGMENT_MASK, SEGMENT_SHIFT, SEG_PAGE_SHIFT,
} = layout
const { fillBytes, findOtherByte, pattern64 } = fill
const { pageDesc, pageOfAddress, segWord } = segment
const { BIN_INVERSE, BIN_SIZE, binOf } = sizeClasses

/** Rear guard bytes written and checked (an overflow of up to this many bytes is caught on free). */
const DEBUG_REAR_MAX = DEBUG_REAR_MIN
// writeRearGuard / findRearGuardDamage handle the rear guard as 4 (+1) Int32 words
if (DEBUG_REAR_MAX !== 16) throw new Error('debug.ts: the rear guard code assumes a 16-byte guard')
/** Extra bytes a debug block needs besides the request. */
const DEBUG_EXTRA = DEBUG_HEADER + DEBUG_REAR_MIN
const GUARD_WORD = DEBUG_BYTE_GUARD * 0x01010101 | 0

/** The 8-byte fill patterns as doubles (see fill.ts). */
const CLEAN64 = pattern64(DEBUG_BYTE_CLEAN)
const DEAD64 = pattern64(DEBUG_BYTE_DEAD)
const GUARD64 = pattern64(DEBUG_BYTE_GUARD)

/** Word of the ALLOC (or EVER) bitmap holding block `b`'s bit, and its mask. */
function bitWord(b: number, bitmap: number): number {
  return ((b >>> SEGMENT_SHIFT) << (SEGMENT_SHIFT - 2)) + (bitmap >>> 2) + ((b & SEGMENT_MASK) >>> 8)
}
function bitMask(b: number): number {
  return 1 << ((b >>> 3) & 31)
}

/** Where a debug block sits: its page descriptor, or 0 if `block` is not an initialized block start of a page in use. */
function blockPage(i32: Int32Array, block: number): number {
  const pd = block < 0 ? 0 : pageOfAddress(i32, block)
  if (pd === 0 || (i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0) return 0
  const diff = block - (i32[pd + PAGE_START] >>> 0)
  // block index without a division (as Heap.free): rounded, then verified; a huge page's inverse is 0
  const idx = (diff * BIN_INVERSE[i32[pd + PAGE_BIN]] + 0.5) | 0
  return diff >= 0 && idx * i32[pd + PAGE_BLOCK_SIZE] === diff && idx < i32[pd + PAGE_CAPACITY] ? pd : 0
}

export class DebugHeap extends Heap {
  /** Serial number of the last block this heap handed out. */
  private serial = 0

  override malloc(size: number): number {
    checkSize(size, 'malloc size')
    this.assertLive()
    if (size > MAX_ALLOC_SIZE - DEBUG_EXTRA) return 0
    const block = super.malloc(size + DEBUG_EXTRA)
    return block === 0 ? 0 : this.setupBlock(block, size)
  }

  override mallocAligned(size: number, alignment: number): number {
    checkSize(size, 'mallocAligned size')
    checkAlignment(alignment)
    if (alignment <= 16) return this.malloc(size)
    if (size > MAX_ALLOC_SIZE - DEBUG_EXTRA - alignment) return 0
    this.assertLive()
    let block = 0
    if (alignment === DEBUG_HEADER) {
      // blocks of a multiple of 32 bytes are 32-aligned, so block + 32 is too
      let bin = binOf(size + DEBUG_EXTRA)
      while (bin < BIN_HUGE && BIN_SIZE[bin] % alignment !== 0) bin++
      block = bin < BIN_HUGE ? this.mallocInBin(bin) : this.mallocHuge(size + DEBUG_EXTRA, alignment, DEBUG_HEADER)
    } else {
      block = this.mallocHuge(size + DEBUG_EXTRA, alignment, DEBUG_HEADER)
    }
    return block === 0 ? 0 : this.setupBlock(block, size)
  }

  override realloc(ptr: number, size: number): number {
    checkSize(size, 'realloc size')
    this.assertLive()
    if (ptr === 0) return this.malloc(size)
    this.sync()
    const block = this.liveBlock(ptr)
    const i32 = this.i32
    const bsize = i32[blockPage(i32, block) + PAGE_BLOCK_SIZE]
    const err = this.guardError(block, bsize)
    if (err !== null) {
      // a free racing with this realloc may have rewritten the header: then it is a double free
      if ((Atomics.load(i32, bitWord(block, SEGMENT_ALLOC_BITS)) & bitMask(block)) === 0) throw new DoubleFreeError(ptr, 'freed while being reallocated')
      throw err
    }
    const old = i32[(block >>> 2) + DEBUG_SIZE]
    const room = bsize - DEBUG_EXTRA
    if (size <= room && size >= room >>> 1 && size > 0) {
      // in place: new bytes are 0xCD, the guard moves to the new end
      if (size > old) fillBytes(this.u8, this.f64, ptr + old, ptr + size, DEBUG_BYTE_CLEAN, CLEAN64)
      i32[(block >>> 2) + DEBUG_SIZE] = size
      writeRearGuard(i32, ptr + size)
      return ptr
    }
    const p = this.malloc(size)
    if (p === 0) return 0
    this.u8.copyWithin(p, ptr, ptr + Math.min(size, old))
    this.free(ptr)
    return p
  }

  /** The requested size of the live block at `ptr`. */
  override usableSize(ptr: number): number {
    this.assertLive()
    this.sync()
    return this.i32[(this.liveBlock(ptr) >>> 2) + DEBUG_SIZE]
  }

  override free(ptr: number): void {
    if (ptr === 0) return
    this.assertLive()
    const pd = this.blockStartPage(ptr)
    if (pd === 0) return this.freeRejected(ptr, false)
    // the allocation bit decides first: of racing frees exactly one sees it
    // set, and only that one reads the header (the winner's free list push
    // overwrites its first word)
    const i32 = this.i32
    const block = ptr - DEBUG_HEADER
    const mask = bitMask(block)
    const bits = bitWord(block, SEGMENT_ALLOC_BITS)
    if ((Atomics.and(i32, bits, ~mask) & mask) === 0) return this.freeRejected(ptr, true)
    const bsize = i32[pd + PAGE_BLOCK_SIZE]
    const err = this.guardError(block, bsize)
    if (err !== null) {
      Atomics.or(i32, bits, mask) // rejected: the block stays allocated, nothing changed
      throw err
    }
    const w = block >>> 2
    fillBytes(this.u8, this.f64, ptr, ptr + i32[w + DEBUG_SIZE], DEBUG_BYTE_DEAD, DEAD64)
    i32[w + DEBUG_HEAP] = DEBUG_DEAD
    freeBlock(this, block, segWord(block >>> SEGMENT_SHIFT), pd)
  }

  /**
   * The page of the block whose user pointer is `ptr` if that is a block
   * start in a page in use inside our views, else 0 (the slow path syncs and
   * says why). Plain reads: whether the block is live is for its ALLOC bit to say.
   */
  private blockStartPage(ptr: number): number {
    // the type test first: arithmetic on a BigInt throws, on an object calls its valueOf
    if (typeof ptr !== 'number' || (ptr >>> 0) !== ptr || (ptr & 7) !== 0) return 0
    const block = ptr - DEBUG_HEADER
    return (block >>> SEGMENT_SHIFT) < this.segLimit ? blockPage(this.i32, block) : 0
  }

  /**
   * A free the fast test refused: `ptr` is not a block start in a page in
   * use inside our views, or (`cleared`) its allocation bit was clear
   * already. Throws the precise error, or frees after all a block our views
   * did not cover yet.
   */
  private freeRejected(ptr: number, cleared: boolean): void {
    this.sync()
    this.liveBlock(ptr) // throws unless the block is live
    // live now: freed and allocated again since our test, or beyond our old views
    if (cleared) throw new DoubleFreeError(ptr, 'another thread freed it at the same moment')
    this.free(ptr)
  }

  /* ----- Checks ------------------------------------------------------------------ */

  /**
   * The block start of `ptr` if `ptr` is a live block's user pointer; else
   * throws DoubleFreeError (the block was handed out and is free now) or
   * InvalidPointerError (never a block's pointer). Reads only; the caller syncs first.
   */
  private liveBlock(ptr: number): number {
    if (typeof ptr !== 'number' || !Number.isInteger(ptr) || ptr < DEBUG_HEADER || ptr >= this.arena.buffer.byteLength || (ptr & 7) !== 0) {
      pageOfPointer(this, ptr) // throws the precise reason
    }
    const i32 = this.i32
    const block = ptr - DEBUG_HEADER
    const seg = block >>> SEGMENT_SHIFT
    const kind = i32[SEGMAP + seg]
    const mask = bitMask(block)
    if (kind !== 0) {
      const pd = blockPage(i32, block)
      if (pd !== 0 && (Atomics.load(i32, bitWord(block, SEGMENT_ALLOC_BITS)) & mask) !== 0) return block
      // in a page in use but not at one of its block starts: the current
      // layout decides (an EVER bit there may be an older layout's)
      const at = pageOfAddress(i32, block)
      if (pd === 0 && at !== 0 && (i32[at + PAGE_FLAGS] & PAGE_FLAG_IN_USE) !== 0) throw new InvalidPointerError(ptr, this.whyInvalid(ptr))
    }
    // not live: was it ever handed out? A retired page, and a free segment
    // until it is claimed again, keep their EVER bits, so even a released
    // huge block is recognised.
    if ((kind > 0 || (kind === 0 && seg >= this.arena.metaSegments)) && (i32[bitWord(block, SEGMENT_EVER_BITS)] & mask) !== 0) {
      throw new DoubleFreeError(ptr, kind > 0 ? 'freed already' : 'freed already (its segment has been released since)')
    }
    throw new InvalidPointerError(ptr, this.whyInvalid(ptr))
  }

  /** Why `ptr` is not a debug block's pointer, in words. */
  private whyInvalid(ptr: number): string {
    const i32 = this.i32
    const seg = ptr >>> SEGMENT_SHIFT
    const kind = i32[SEGMAP + seg]
    if (kind === 0) return seg < this.arena.metaSegments ? 'inside the arena metadata' : 'in a free segment'
    if (kind < 0) return 'inside a huge block'
    const sw = segWord(seg)
    const pd = pageDesc(sw, (ptr & SEGMENT_MASK) >>> i32[sw + SEG_PAGE_SHIFT])
    const start = i32[pd + PAGE_START] >>> 0
    const bsize = i32[pd + PAGE_BLOCK_SIZE]
    if ((i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0 || ptr < start) return 'not in a page in use (never allocated)'
    const idx = Math.floor((ptr - start) / bsize)
    if (idx >= i32[pd + PAGE_CAPACITY]) return 'never allocated (past the initialized blocks of its page)'
    const user = start + idx * bsize + DEBUG_HEADER
    if (ptr !== user) return `not the start of a block: ${ptr - user} bytes from the block at 0x${user.toString(16)}`
    return 'never allocated'
  }

  /** The HeapCorruptionError to throw if the header or either guard of a live block was overwritten, else null. */
  private guardError(block: number, bsize: number): HeapCorruptionError | null {
    const i32 = this.i32
    const f64 = this.f64
    const w = block >>> 2
    const size = i32[w + DEBUG_SIZE]
    // the front guard is two aligned doubles (blocks are 8-aligned)
    const front = (block + DEBUG_FRONT) >>> 3
    if (f64[front] !== GUARD64 || f64[front + 1] !== GUARD64) return this.frontGuardError(block)
    if (i32[w + DEBUG_LINK] !== DEBUG_LIVE || size < 0 || size > bsize - DEBUG_EXTRA) {
      const ptr = block + DEBUG_HEADER
      return new HeapCorruptionError(`block 0x${ptr.toString(16)}: header overwritten (size word ${size}): buffer underflow or wild write`, ptr)
    }
    const bad = findRearGuardDamage(this.u8, i32, block + DEBUG_HEADER + size)
    return bad < 0 ? null : this.rearGuardError(block, bad)
  }

  private frontGuardError(block: number): HeapCorruptionError {
    const u8 = this.u8
    let k = DEBUG_FRONT
    while (k < DEBUG_FRONT + DEBUG_FRONT_BYTES - 1 && u8[block + k] === DEBUG_BYTE_GUARD) k++
    return new HeapCorruptionError(`${describeBlock(this.i32, block)}: front guard overwritten at offset ${k - DEBUG_HEADER} (byte 0x${u8[block + k].toString(16)}): buffer underflow`, block + DEBUG_HEADER)
  }

  private rearGuardError(block: number, bad: number): HeapCorruptionError {
    const ptr = block + DEBUG_HEADER
    return new HeapCorruptionError(`${describeBlock(this.i32, block)}: rear guard overwritten at offset +${bad - ptr} (byte 0x${this.u8[bad].toString(16)}): buffer overflow`, ptr)
  }

  /**
   * Turns a block just popped from a free list into a live debug block. If
   * the block was freed before, first verifies that its 0xDD fill is intact;
   * a write after free puts the block back (refilled) and throws.
   */
  private setupBlock(block: number, size: number): number {
    const i32 = this.i32
    const u8 = this.u8
    const f64 = this.f64
    const w = block >>> 2
    const ptr = block + DEBUG_HEADER
    if (i32[w + DEBUG_HEAP] === DEBUG_DEAD) {
      // freed before: its 0xDD fill must be intact; check and refill 0xCD in one pass
      const pd = pageOfAddress(i32, block) // our own block: no validation needed
      const old = Math.min(Math.max(i32[w + DEBUG_SIZE], 0), i32[pd + PAGE_BLOCK_SIZE] - DEBUG_EXTRA)
      const bad = deadToClean(u8, f64, ptr, old, size)
      if (bad >= 0) {
        const msg = `block 0x${ptr.toString(16)} (requested ${old} bytes, serial ${i32[w + DEBUG_SERIAL]}) was written after it was freed: ` +
          `offset +${bad - ptr} is 0x${u8[bad].toString(16)}, not 0xdd (use after free)`
        fillBytes(u8, f64, ptr, ptr + old, DEBUG_BYTE_DEAD, DEAD64)
        freeLocal(this, pd, block) // back where it came from: this malloc changes nothing
        throw new HeapCorruptionError(msg, ptr)
      }
    } else {
      fillBytes(u8, f64, ptr, ptr + size, DEBUG_BYTE_CLEAN, CLEAN64)
    }
    const mask = bitMask(block)
    if ((Atomics.or(i32, bitWord(block, SEGMENT_ALLOC_BITS), mask) & mask) !== 0) {
      throw new HeapCorruptionError(`block 0x${ptr.toString(16)} was on a free list while allocated`, ptr)
    }
    i32[bitWord(block, SEGMENT_EVER_BITS)] |= mask // owner-only: a bitmap word never spans two pages
    i32[w + DEBUG_LINK] = DEBUG_LIVE
    i32[w + DEBUG_SIZE] = size
    i32[w + DEBUG_SERIAL] = ++this.serial
    i32[w + DEBUG_HEAP] = this.id
    const front = (block + DEBUG_FRONT) >>> 3
    f64[front] = GUARD64
    f64[front + 1] = GUARD64
    writeRearGuard(i32, ptr + size)
    return ptr
  }
}

/* ----- Guards and fills ---------------------------------------------------------- */

/*
  The rear guard is the 16 (DEBUG_REAR_MAX) bytes from `at` = ptr + size,
  which may be unaligned. It is handled as the Int32 words covering it: the
  first holds 0..3 of the caller's bytes below the guard (masked off), and
  when `at` is unaligned a fifth word holds the guard's last bytes. That
  word lies inside the block (block ends are 8-aligned and a block has room
  for the request and DEBUG_EXTRA bytes), so it is written whole.
*/

/** Writes the rear guard at `at`. */
function writeRearGuard(i32: Int32Array, at: number): void {
  const w = at >>> 2
  const guard = -1 << ((at & 3) * 8) // the guard's bytes of the first word
  i32[w] = (i32[w] & ~guard) | (GUARD_WORD & guard)
  i32[w + 1] = GUARD_WORD
  i32[w + 2] = GUARD_WORD
  i32[w + 3] = GUARD_WORD
  if ((at & 3) !== 0) i32[w + 4] = GUARD_WORD
}

/** The first overwritten byte of the rear guard at `at`, or -1. */
function findRearGuardDamage(u8: Uint8Array, i32: Int32Array, at: number): number {
  const w = at >>> 2
  const guard = -1 << ((at & 3) * 8)
  let diff = ((i32[w] ^ GUARD_WORD) & guard) | (i32[w + 1] ^ GUARD_WORD) | (i32[w + 2] ^ GUARD_WORD) | (i32[w + 3] ^ GUARD_WORD)
  if ((at & 3) !== 0) diff |= (i32[w + 4] ^ GUARD_WORD) & ~guard
  if (diff === 0) return -1
  for (let k = at; ; k++) if (u8[k] !== DEBUG_BYTE_GUARD) return k
}

/**
 * For arena.check() in debug mode: why the block at `block` (size `bsize`)
 * is inconsistent, or null. A live block has its ALLOC bit, header and
 * guards; a free one has no ALLOC bit.
 */
export function debugBlockProblem(i32: Int32Array, u8: Uint8Array, block: number, bsize: number, live: boolean): string | null {
  const allocated = (i32[bitWord(block, SEGMENT_ALLOC_BITS)] & bitMask(block)) !== 0
  if (!live) {
    if (allocated) return 'is on a free list but its allocation bit is set'
    const w = block >>> 2
    if (i32[w + DEBUG_HEAP] !== DEBUG_DEAD) return null // never handed out
    const n = Math.min(Math.max(i32[w + DEBUG_SIZE], 0), bsize - DEBUG_EXTRA)
    for (let k = block + DEBUG_HEADER; k < block + DEBUG_HEADER + n; k++) {
      if (u8[k] !== DEBUG_BYTE_DEAD) return `was written after it was freed (offset +${k - block - DEBUG_HEADER} is 0x${u8[k].toString(16)}, not 0xdd)`
    }
    return null
  }
  if (!allocated) return 'is live but its allocation bit is clear'
  const w = block >>> 2
  const size = i32[w + DEBUG_SIZE]
  if (i32[w + DEBUG_LINK] !== DEBUG_LIVE || size < 0 || size > bsize - DEBUG_EXTRA) return 'has an overwritten header'
  for (let i = DEBUG_FRONT; i < DEBUG_HEADER; i += 4) if (i32[w + (i >>> 2)] !== GUARD_WORD) return 'has an overwritten front guard'
  const ptr = block + DEBUG_HEADER
  const end = Math.min(block + bsize, ptr + size + DEBUG_REAR_MAX)
  for (let k = ptr + size; k < end; k++) if (u8[k] !== DEBUG_BYTE_GUARD) return `has an overwritten rear guard at offset +${k - ptr}`
  return null
}

/** "block 0x… (requested n bytes, serial s, heap h)" for error messages. */
function describeBlock(i32: Int32Array, block: number): string {
  const w = block >>> 2
  return `block 0x${(block + DEBUG_HEADER).toString(16)} (requested ${i32[w + DEBUG_SIZE]} bytes, serial ${i32[w + DEBUG_SERIAL]}, heap ${i32[w + DEBUG_HEAP]})`
}

/**
 * A freed block at `ptr` (8-aligned) is reused for `size` bytes: verifies
 * that its `old` bytes are all still 0xDD and fills the first `size` bytes
 * 0xCD, the common part in one pass. Returns -1, or the first offset that
 * was not 0xDD (some bytes before it may be 0xCD already; the caller refills).
 */
function deadToClean(u8: Uint8Array, f64: Float64Array, ptr: number, old: number, size: number): number {
  let i = ptr >>> 3
  const both = (ptr + Math.min(old, size)) >>> 3
  for (; i + 4 <= both; i += 4) {
    if (f64[i] !== DEAD64 || f64[i + 1] !== DEAD64 || f64[i + 2] !== DEAD64 || f64[i + 3] !== DEAD64) break
    f64[i] = CLEAN64
    f64[i + 1] = CLEAN64
    f64[i + 2] = CLEAN64
    f64[i + 3] = CLEAN64
  }
  for (; i < both; i++) {
    if (f64[i] !== DEAD64) break
    f64[i] = CLEAN64
  }
  // the rest of the old bytes (or the word that differs): verify only
  const rest = i * 8
  const bad = findOtherByte(u8, f64, rest, ptr + old, DEBUG_BYTE_DEAD, DEAD64)
  if (bad >= 0) return bad
  fillBytes(u8, f64, rest, ptr + size, DEBUG_BYTE_CLEAN, CLEAN64)
  return -1
}
