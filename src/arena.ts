/* ----------------------------------------------------------------------------
  arena.ts — the arena: one SharedArrayBuffer holding every byte of allocator
  state, after mimalloc's `arena.c`.

  The first META segments hold the header, the arena bitmap (which segments
  are claimed), the abandoned bitmap, the segment map and the heap records.
  Segments are claimed with Atomics.compareExchange on bitmap words, so any
  thread can claim and release them without a lock. A growable arena grows
  the buffer under GROW_LOCK (a CAS-claimed word): one thread grows, the
  others wait and retry their claim; typed-array views created without a
  length track the new size in every thread.
---------------------------------------------------------------------------- */

import { threadId } from 'node:worker_threads'
import { claimRun, releaseRange, setRange } from './bitmap.js'
import { ArenaFormatError, AllocatorError } from './errors.js'
import { Heap } from './heap.js'
import { resetFreeing } from './free.js'
import { DebugHeap } from './debug.js'
import { checkArena, type CheckResult } from './check.js'
import { arenaStats, type ArenaStats } from './stats.js'
import {
  ARENA_BITMAP, ARENA_FLAGS, ARENA_FLAG_DEBUG, ARENA_GROW_COUNT, ARENA_GROW_LOCK, ARENA_GROW_STEP,
  ARENA_KEY, ARENA_MAGIC, ARENA_MAGIC_VALUE, ARENA_MAX_HEAPS, ARENA_MAX_SEGMENTS, ARENA_META_SEGMENTS,
  ARENA_PEAK_SEGMENTS, ARENA_SEGMENTS_IN_USE, ARENA_SEGMENT_LIMIT, ARENA_SEGMENT_SHIFT,
  ARENA_SEG_HEADER_SIZE, ARENA_VERSION, ARENA_VERSION_VALUE, DIRECT_ENTRIES, EMPTY_DIRECT,
  EMPTY_PAGE, HEAP_FREE, HEAP_FREEING, HEAP_IN_USE, HEAP_RECORDS, HEAP_STATE, HEAP_THREAD_ID, HEAP_WORDS, MAX_ARENA_SIZE,
  MAX_SEGMENTS, SEGMAP, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE_DEBUG, SEGMENT_SHIFT,
  SEGMENT_SIZE, SEGMENT_ALLOC_BITS,
} from './layout.js'

/** Options of `Arena.create`. */
export interface ArenaOptions {
  /** Initial bytes (default 64 MiB), rounded up to whole segments (SEGMENT_SIZE, 256 KiB). */
  size?: number
  /** If larger than `size`, the buffer is growable up to this many bytes (≤ 4 GiB). */
  maxSize?: number
  /** Heaps (threads) that can allocate at once (default 64, at most 1024). */
  maxHeaps?: number
  /** Debug mode: guard bytes, fills, exact double-free detection (default false). */
  debug?: boolean
}

const OPTION_KEYS = new Set(['size', 'maxSize', 'maxHeaps', 'debug'])
const MAX_HEAPS_LIMIT = 1024
/** A growable buffer grows by at least this many bytes, or 1/8 of its initial size. */
const MIN_GROW_BYTES = 4 << 20

export class Arena {
  /** The SharedArrayBuffer holding the whole arena. */
  readonly buffer: SharedArrayBuffer
  /**
   * @internal Every word of the buffer. Fixed-length views: on Node 20 a view
   * that tracks a growable buffer's length is ~20× slower to index, so views
   * are re-made on slow paths when the buffer has grown (refreshViews).
   */
  i32: Int32Array
  private bytes: Uint8Array
  /** The buffer can grow (read once: the getter is a builtin call). */
  private readonly growable: boolean
  /** Random cookie XOR-ed into free-list links. */
  readonly key: number
  readonly debug: boolean
  readonly maxHeaps: number
  readonly maxSegments: number
  readonly metaSegments: number
  /** Bytes of each segment header (page 0 starts here). */
  readonly segHeaderSize: number

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer
    this.growable = buffer.growable
    this.i32 = new Int32Array(buffer, 0, buffer.byteLength >>> 2)
    this.bytes = new Uint8Array(buffer, 0, buffer.byteLength)
    const i32 = this.i32
    this.key = i32[ARENA_KEY]
    this.debug = (i32[ARENA_FLAGS] & ARENA_FLAG_DEBUG) !== 0
    this.maxHeaps = i32[ARENA_MAX_HEAPS]
    this.maxSegments = i32[ARENA_MAX_SEGMENTS]
    this.metaSegments = i32[ARENA_META_SEGMENTS]
    this.segHeaderSize = i32[ARENA_SEG_HEADER_SIZE]
  }

  /** A new arena in a new SharedArrayBuffer. Invalid options → RangeError. */
  static create(options: ArenaOptions = {}): Arena {
    if (options === null || typeof options !== 'object') throw new RangeError('Arena.create: options must be an object')
    for (const k of Object.keys(options)) {
      if (!OPTION_KEYS.has(k)) throw new RangeError(`Arena.create: unknown option '${k}' (known: ${[...OPTION_KEYS].join(', ')})`)
    }
    const debug = options.debug ?? false
    if (typeof debug !== 'boolean') throw new RangeError('Arena.create: debug must be a boolean')
    const maxHeaps = options.maxHeaps ?? 64
    if (!Number.isInteger(maxHeaps) || maxHeaps < 1 || maxHeaps > MAX_HEAPS_LIMIT) {
      throw new RangeError(`Arena.create: maxHeaps must be an integer in 1..${MAX_HEAPS_LIMIT}, got ${String(maxHeaps)}`)
    }
    const metaBytes = (HEAP_RECORDS + maxHeaps * HEAP_WORDS) * 4
    const metaSegments = Math.ceil(metaBytes / SEGMENT_SIZE)
    const minSize = (metaSegments + 1) * SEGMENT_SIZE
    const size = checkSize('size', options.size ?? 64 * 1024 * 1024, minSize)
    const maxSize = options.maxSize === undefined ? size : checkSize('maxSize', options.maxSize, minSize)
    if (maxSize < size) throw new RangeError(`Arena.create: maxSize (${maxSize}) must be at least size (${size})`)

    const buffer = maxSize > size
      ? new SharedArrayBuffer(size, { maxByteLength: maxSize })
      : new SharedArrayBuffer(size)
    const i32 = new Int32Array(buffer)
    i32[ARENA_MAGIC] = ARENA_MAGIC_VALUE
    i32[ARENA_VERSION] = ARENA_VERSION_VALUE
    i32[ARENA_SEGMENT_SHIFT] = SEGMENT_SHIFT
    i32[ARENA_MAX_HEAPS] = maxHeaps
    i32[ARENA_FLAGS] = debug ? ARENA_FLAG_DEBUG : 0
    i32[ARENA_MAX_SEGMENTS] = maxSize / SEGMENT_SIZE
    i32[ARENA_META_SEGMENTS] = metaSegments
    i32[ARENA_SEGMENT_LIMIT] = size / SEGMENT_SIZE
    i32[ARENA_KEY] = randomKey()
    i32[ARENA_SEG_HEADER_SIZE] = debug ? SEGMENT_HEADER_SIZE_DEBUG : SEGMENT_HEADER_SIZE
    i32[ARENA_GROW_STEP] = Math.max(MIN_GROW_BYTES / SEGMENT_SIZE, (size / SEGMENT_SIZE) >>> 3)
    i32.fill(EMPTY_PAGE, EMPTY_DIRECT, EMPTY_DIRECT + DIRECT_ENTRIES)
    setRange(i32, ARENA_BITMAP, 0, metaSegments)
    Atomics.store(i32, ARENA_SEGMENTS_IN_USE, metaSegments)
    Atomics.store(i32, ARENA_PEAK_SEGMENTS, metaSegments)
    return new Arena(buffer)
  }

  /** An Arena over an existing arena buffer, in any thread. Not an arena → ArenaFormatError. */
  static attach(buffer: SharedArrayBuffer): Arena {
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new ArenaFormatError(`expected a SharedArrayBuffer, got ${buffer === null ? 'null' : typeof buffer}`)
    }
    if (buffer.byteLength < 2 * SEGMENT_SIZE) throw new ArenaFormatError(`buffer of ${buffer.byteLength} bytes is too small`)
    const i32 = new Int32Array(buffer, 0, 64)
    if (i32[ARENA_MAGIC] !== ARENA_MAGIC_VALUE) throw new ArenaFormatError('wrong magic number')
    if (i32[ARENA_VERSION] !== ARENA_VERSION_VALUE) throw new ArenaFormatError(`layout version ${i32[ARENA_VERSION]}, this build reads ${ARENA_VERSION_VALUE}`)
    if (i32[ARENA_SEGMENT_SHIFT] !== SEGMENT_SHIFT) throw new ArenaFormatError(`segment shift ${i32[ARENA_SEGMENT_SHIFT]}, this build uses ${SEGMENT_SHIFT}`)
    const maxSegments = i32[ARENA_MAX_SEGMENTS]
    const limit = Atomics.load(i32, ARENA_SEGMENT_LIMIT)
    const maxBytes = buffer.growable ? buffer.maxByteLength : buffer.byteLength
    const heaps = i32[ARENA_MAX_HEAPS]
    const hs = i32[ARENA_SEG_HEADER_SIZE]
    if (maxSegments < 2 || maxSegments > MAX_SEGMENTS || maxSegments * SEGMENT_SIZE !== maxBytes ||
      limit < 2 || limit > maxSegments || limit * SEGMENT_SIZE > buffer.byteLength ||
      heaps < 1 || heaps > MAX_HEAPS_LIMIT ||
      hs !== ((i32[ARENA_FLAGS] & ARENA_FLAG_DEBUG) !== 0 ? SEGMENT_HEADER_SIZE_DEBUG : SEGMENT_HEADER_SIZE) ||
      i32[ARENA_META_SEGMENTS] !== Math.ceil((HEAP_RECORDS + heaps * HEAP_WORDS) * 4 / SEGMENT_SIZE)) {
      throw new ArenaFormatError('header fields do not match the buffer')
    }
    return new Arena(buffer)
  }

  /** A Uint8Array over the whole buffer, current even after the buffer grew. */
  get u8(): Uint8Array {
    this.refreshViews()
    return this.bytes
  }

  /** @internal Re-makes the views if the buffer grew (any thread may have grown it). */
  refreshViews(): void {
    if (!this.growable) return
    const length = this.buffer.byteLength
    if (length === this.bytes.length) return
    this.i32 = new Int32Array(this.buffer, 0, length >>> 2)
    this.bytes = new Uint8Array(this.buffer, 0, length)
  }

  /* ----- Heaps ------------------------------------------------------------------ */

  /** Claims a heap slot for the calling thread. No free slot → AllocatorError. */
  createHeap(): Heap {
    const i32 = this.i32
    for (let id = 1; id <= this.maxHeaps; id++) {
      if (Atomics.compareExchange(i32, this.heapRecord(id) + HEAP_STATE, HEAP_FREE, HEAP_IN_USE) === HEAP_FREE) {
        return (this.debug ? DebugHeap : Heap).claimed(this, id, threadId)
      }
    }
    throw new AllocatorError(`no free heap slot: all ${this.maxHeaps} heaps are in use (raise maxHeaps or release heaps)`, 'ERR_NO_HEAP')
  }

  /**
   * Takes over the heap `id` of a thread that exited without `release()`:
   * empty pages go back to the arena, the rest is abandoned for any heap to
   * reclaim. Its live blocks stay valid and can be freed from any heap.
   * Only call it once that thread can no longer run.
   */
  reclaimHeap(id: number): void {
    if (!Number.isInteger(id) || id < 1 || id > this.maxHeaps) {
      throw new RangeError(`reclaimHeap: heap id must be an integer in 1..${this.maxHeaps}, got ${String(id)}`)
    }
    if (Atomics.load(this.i32, this.heapRecord(id) + HEAP_STATE) !== HEAP_IN_USE) {
      throw new AllocatorError(`reclaimHeap: heap ${id} is not in use`, 'ERR_HEAP_NOT_IN_USE')
    }
    Heap.adopt(this, id).release()
  }

  /**
   * Reclaims every heap still claimed by the thread `thread` (a worker's
   * `threadId`) after that thread exited; returns their ids. superviseWorker
   * and supervisePool call it for you on exit.
   */
  reclaimThreadHeaps(thread: number): number[] {
    if (!Number.isInteger(thread) || thread < 0) throw new RangeError(`reclaimThreadHeaps: bad thread id ${String(thread)}`)
    if (thread === threadId) throw new RangeError('reclaimThreadHeaps: cannot reclaim the calling thread\'s own heaps (release them)')
    const ids: number[] = []
    for (let id = 1; id <= this.maxHeaps; id++) {
      const rec = this.heapRecord(id)
      if (Atomics.load(this.i32, rec + HEAP_STATE) === HEAP_IN_USE && this.i32[rec + HEAP_THREAD_ID] === thread) {
        // it died holding a page in DELAYED_FREEING: let the page's owner move on
        const pd = this.i32[rec + HEAP_FREEING]
        if (pd !== 0) resetFreeing(this.i32, pd)
        this.reclaimHeap(id)
        ids.push(id)
      }
    }
    this.releaseGrowLock(thread)
    return ids
  }

  /**
   * If thread `thread` died holding GROW_LOCK (`finally` does not run on
   * worker.terminate()), publish whatever length the buffer has and free the lock.
   */
  private releaseGrowLock(thread: number): void {
    const i32 = this.i32
    if (Atomics.load(i32, ARENA_GROW_LOCK) !== thread + 1) return
    const grown = Math.min(this.maxSegments, this.buffer.byteLength / SEGMENT_SIZE)
    if (grown > Atomics.load(i32, ARENA_SEGMENT_LIMIT)) Atomics.store(i32, ARENA_SEGMENT_LIMIT, grown)
    Atomics.compareExchange(i32, ARENA_GROW_LOCK, thread + 1, 0)
    Atomics.notify(i32, ARENA_GROW_LOCK)
  }

  /** Word offset of the record of heap `id`. */
  heapRecord(id: number): number {
    return HEAP_RECORDS + (id - 1) * HEAP_WORDS
  }

  /* ----- Segments ------------------------------------------------------------------ */

  /** Claims `span` contiguous segments, growing the buffer if needed. Returns the first index, or 0 if full. */
  claimSegments(span: number): number {
    const i32 = this.i32
    for (;;) {
      const limit = Atomics.load(i32, ARENA_SEGMENT_LIMIT)
      const seg = claimRun(i32, ARENA_BITMAP, this.metaSegments, limit, span)
      if (seg >= 0) {
        const inUse = Atomics.add(i32, ARENA_SEGMENTS_IN_USE, span) + span
        atomicMax(i32, ARENA_PEAK_SEGMENTS, inUse)
        this.refreshViews() // the segment may lie past our views if another thread grew the buffer
        return seg
      }
      if (!this.grow(limit, span)) return 0
    }
  }

  /** Makes claimed segments findable from pointers: segment map head = kind, followers = -head. */
  publishSegment(seg: number, kind: number, span: number): void {
    for (let i = 1; i < span; i++) Atomics.store(this.i32, SEGMAP + seg + i, -seg)
    Atomics.store(this.i32, SEGMAP + seg, kind)
  }

  /**
   * Gives back claimed segments that were never published (a huge run's
   * over-claim, see segmentAllocHuge): no pointer can lead there, so only
   * the bitmap bits and the in-use count change.
   */
  unclaimSegments(seg: number, count: number): void {
    releaseRange(this.i32, ARENA_BITMAP, seg, count)
    Atomics.sub(this.i32, ARENA_SEGMENTS_IN_USE, count)
  }

  /** Returns segments to the arena bitmap (segment map cleared first). */
  releaseSegments(seg: number, span: number): void {
    const i32 = this.i32
    for (let i = 0; i < span; i++) Atomics.store(i32, SEGMAP + seg + i, 0)
    // debug: a huge block's followers held user data where a head keeps its
    // EVER bits; clear them so a free segment's EVER bits mean what they say
    if (this.debug) for (let i = 1; i < span; i++) this.clearAllocBits(seg + i)
    releaseRange(i32, ARENA_BITMAP, seg, span)
    Atomics.sub(i32, ARENA_SEGMENTS_IN_USE, span)
  }

  /** Clears the debug ALLOC and EVER bitmaps of a freshly claimed segment. */
  clearAllocBits(seg: number): void {
    const base = seg << SEGMENT_SHIFT
    this.u8.fill(0, base + SEGMENT_ALLOC_BITS, base + SEGMENT_HEADER_SIZE_DEBUG)
  }

  /**
   * Grows a growable buffer so that `span` more segments fit past `seenLimit`.
   * One thread grows (it wins GROW_LOCK by CAS); the others wait for it and
   * retry their claim. Returns false when the buffer cannot grow further.
   */
  private grow(seenLimit: number, span: number): boolean {
    const i32 = this.i32
    if (seenLimit >= this.maxSegments) return false
    if (Atomics.compareExchange(i32, ARENA_GROW_LOCK, 0, threadId + 1) !== 0) {
      for (let held; (held = Atomics.load(i32, ARENA_GROW_LOCK)) !== 0;) Atomics.wait(i32, ARENA_GROW_LOCK, held, 1)
      return true
    }
    try {
      const limit = Atomics.load(i32, ARENA_SEGMENT_LIMIT)
      if (limit !== seenLimit) return true // another thread grew since we looked: retry the claim
      const want = Math.min(this.maxSegments, limit + Math.max(span, i32[ARENA_GROW_STEP]))
      if (want - limit < span) return false
      this.buffer.grow(want * SEGMENT_SIZE)
      Atomics.add(i32, ARENA_GROW_COUNT, 1)
      Atomics.store(i32, ARENA_SEGMENT_LIMIT, want) // publishes the grown length to claimers
      return true
    } finally {
      Atomics.store(i32, ARENA_GROW_LOCK, 0)
      Atomics.notify(i32, ARENA_GROW_LOCK)
    }
  }

  /* ----- Checks and stats ------------------------------------------------------------ */

  /** Validates every invariant; throws HeapCorruptionError on the first broken one. Call when no thread allocates. */
  check(): CheckResult {
    this.refreshViews()
    return checkArena(this)
  }

  /** A racy snapshot of the arena's counters; never throws. */
  stats(): ArenaStats {
    this.refreshViews()
    return arenaStats(this)
  }
}

function checkSize(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`Arena.create: ${name} must be a positive integer number of bytes, got ${String(v)}`)
  }
  if (v > MAX_ARENA_SIZE) throw new RangeError(`Arena.create: ${name} ${v} exceeds the 4 GiB limit of 32-bit offsets`)
  return Math.max(min, Math.ceil(v / SEGMENT_SIZE) * SEGMENT_SIZE)
}

function randomKey(): number {
  const k = new Int32Array(1)
  crypto.getRandomValues(k)
  return k[0] | 1 // a link to NULL must not read as 0
}

/** Atomically raises word `w` to at least `v` (unsigned). */
export function atomicMax(i32: Int32Array, w: number, v: number): void {
  let cur = Atomics.load(i32, w)
  while ((cur >>> 0) < v) {
    const prev = Atomics.compareExchange(i32, w, cur, v | 0)
    if (prev === cur) return
    cur = prev
  }
}
