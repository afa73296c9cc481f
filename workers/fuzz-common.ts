/* ----------------------------------------------------------------------------
  fuzz-common.ts — what the misuse fuzzer's main thread (stress/fuzz-run.ts)
  and its workers (fuzz-worker.ts → fuzz-engine.ts) share: the fault kinds,
  the report types, the random generator, the block pattern and the control
  buffer (a second SharedArrayBuffer next to the arena) with its barrier.

  The control buffer, in 32-bit words:

    ┌────────┬────────────────┬──────────────────────┬──────────────┬──────────┐
    │ header │ worker lines   │ hand-off boxes        │ phase-B2     │ race     │
    │ 1 line │ 1 line each    │ 2 parities × N × N    │ boxes N × N  │ results  │
    └────────┴────────────────┴──────────────────────┴──────────────┴──────────┘

  A hand-off box (from → to) holds live blocks in transit between rounds; a
  B2 box holds stale pointers that `to` must free in phase B2 of the round
  (cross-worker and racing double frees); a race result word collects both
  racers' outcomes. A "line" is 16 words (64 bytes).
---------------------------------------------------------------------------- */

/* ----- Fault kinds ------------------------------------------------------------------ */

/** Every fault the fuzzer can inject in debug mode, in table order. */
export const DEBUG_KINDS = [
  'double-free-immediate', 'double-free-stale', 'double-free-cross', 'double-free-race',
  'free-interior', 'free-unaligned', 'free-out-of-buffer', 'free-never-allocated',
  'overflow', 'underflow', 'use-after-free',
] as const
export type FaultKind = typeof DEBUG_KINDS[number]

/** The faults release mode promises to report (API.md, DESIGN.md §4). */
export const RELEASE_KINDS: readonly FaultKind[] = ['double-free-immediate', 'free-interior', 'free-unaligned', 'free-out-of-buffer']

/** Kinds that need at least two workers. */
export const MULTI_WORKER_KINDS: readonly FaultKind[] = ['double-free-cross', 'double-free-race']

/** The error each kind must raise: class name and `.code`. */
export const EXPECTED: Record<FaultKind, { name: string, code: string }> = {
  'double-free-immediate': { name: 'DoubleFreeError', code: 'ERR_DOUBLE_FREE' },
  'double-free-stale': { name: 'DoubleFreeError', code: 'ERR_DOUBLE_FREE' },
  'double-free-cross': { name: 'DoubleFreeError', code: 'ERR_DOUBLE_FREE' },
  'double-free-race': { name: 'DoubleFreeError', code: 'ERR_DOUBLE_FREE' },
  'free-interior': { name: 'InvalidPointerError', code: 'ERR_INVALID_POINTER' },
  'free-unaligned': { name: 'InvalidPointerError', code: 'ERR_INVALID_POINTER' },
  'free-out-of-buffer': { name: 'InvalidPointerError', code: 'ERR_INVALID_POINTER' },
  'free-never-allocated': { name: 'InvalidPointerError', code: 'ERR_INVALID_POINTER' },
  'overflow': { name: 'HeapCorruptionError', code: 'ERR_HEAP_CORRUPTION' },
  'underflow': { name: 'HeapCorruptionError', code: 'ERR_HEAP_CORRUPTION' },
  'use-after-free': { name: 'HeapCorruptionError', code: 'ERR_HEAP_CORRUPTION' },
}

/* ----- Reports ------------------------------------------------------------------------ */

/** Outcomes of one fault kind. */
export interface KindCounts {
  /** Faults injected (for races: races run, two frees each). */
  injected: number
  /** Reported with the right error class, code, pointer and message. */
  detected: number
  /** Not reported at all: the bad operation succeeded. */
  missed: number
  /** Reported with another error class or code. */
  wrongClass: number
  /** Right class, but the pointer or the message parts were wrong. */
  badReport: number
  /** Not injected after being drawn because the fuzzer could not make it safe (should stay 0). */
  skipped: number
}

export type FailureType =
  | 'missed' | 'wrong-class' | 'bad-report' | 'false-alarm' | 'data' | 'check' | 'crash' | 'hang' | 'leak' | 'out-of-memory'

/** One thing that went wrong, with where and what (plain data: it crosses threads). */
export interface FuzzFailure {
  type: FailureType
  /** The fault kind being injected, if any. */
  fault?: FaultKind
  /** Worker index (−1: main thread). */
  worker: number
  /** Round (0-based) in which it happened; −1 outside the rounds. */
  round: number
  /** What was being done ("free", "malloc(40)", …). */
  op: string
  message: string
  ptr?: number
}

/** What a fuzz run counts, per worker and summed over the workers. */
export interface FuzzTallies {
  failures: FuzzFailure[]
  /** Failures beyond those listed (the list is capped). */
  failuresDropped: number
  falseAlarms: number
  dataErrors: number
  /** Valid operations done (malloc, calloc, mallocAligned, realloc, free, hand-off). */
  ops: number
  mallocs: number
  frees: number
  crossFrees: number
  reallocs: number
  handOffs: number
  /** Extra mallocs made to hand out use-after-free victims. */
  huntMallocs: number
}

/** What one worker reports at the end. */
export interface WorkerReport extends FuzzTallies {
  worker: number
  rounds: number
  counts: Record<FaultKind, KindCounts>
  aborted: boolean
}

export function emptyCounts(): Record<FaultKind, KindCounts> {
  const c = {} as Record<FaultKind, KindCounts>
  for (const k of DEBUG_KINDS) c[k] = { injected: 0, detected: 0, missed: 0, wrongClass: 0, badReport: 0, skipped: 0 }
  return c
}

/** What the main thread hands each worker. */
export interface FuzzWorkerData {
  buffer: SharedArrayBuffer
  ctl: SharedArrayBuffer
  worker: number
  workers: number
  seed: number
  rate: number
  kinds: FaultKind[]
  release: boolean
  opsPerRound: number
  /** Stop after the round that ends past this Date.now() (0: no time limit). */
  deadline: number
  /** Stop after this many rounds (0: no limit). */
  maxRounds: number
  /** Run arena.check() at a round boundary at most this often (ms; 0: never mid-run). */
  checkEveryMs: number
}

/* ----- Random numbers ------------------------------------------------------------------ */

/** splitmix32: a fast, well-mixed 32-bit generator; every worker has its own. */
export class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed | 0
  }

  /** Next uint32. */
  next(): number {
    this.s = (this.s + 0x9e3779b9) | 0
    let z = this.s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor(this.next() / 4294967296 * n)
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p * 4294967296
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]
  }
}

/** The generator seed of worker `w` for run seed `seed`: each worker draws its own stream. */
export function workerSeed(seed: number, w: number): number {
  let x = (seed ^ Math.imul(w + 1, 0x9e3779b1)) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d)
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b)
  return (x ^ (x >>> 16)) >>> 0
}

/* ----- Block contents --------------------------------------------------------------------- */

/** Pattern byte `i` of a block with tag `tag`. */
export function patternByte(tag: number, i: number): number {
  return (tag + Math.imul(i, 157) + (i >>> 8)) & 0xff
}

/**
 * The byte ranges of an `n`-byte block that carry the pattern: all of it up
 * to 4 KiB; for larger blocks the first and last 1 KiB and 64 bytes of every
 * 4 KiB in between (huge blocks are megabytes).
 */
export function patternRanges(n: number, visit: (from: number, to: number) => void): void {
  if (n <= 4096) { visit(0, n); return }
  visit(0, 1024)
  for (let o = 4096; o + 64 <= n - 1024; o += 4096) visit(o, o + 64)
  visit(n - 1024, n)
}

/** Writes the pattern of `tag` into the `n` bytes at `p`. */
export function writePattern(u8: Uint8Array, p: number, n: number, tag: number): void {
  patternRanges(n, (from, to) => {
    for (let i = from; i < to; i++) u8[p + i] = patternByte(tag, i)
  })
}

/** First offset in [0, limit) whose byte differs from the pattern of `tag`, or −1. */
export function checkPattern(u8: Uint8Array, p: number, n: number, tag: number, limit = n): number {
  let bad = -1
  patternRanges(n, (from, to) => {
    if (bad >= 0) return
    for (let i = from; i < Math.min(to, limit); i++) {
      if (u8[p + i] !== patternByte(tag, i)) { bad = i; return }
    }
  })
  return bad
}

/** First offset in the pattern ranges of [from, to) of the block at `p` whose byte is not `byte`, or −1. */
export function checkFill(u8: Uint8Array, p: number, from: number, to: number, byte: number): number {
  let bad = -1
  patternRanges(to, (a, b) => {
    if (bad >= 0) return
    for (let i = Math.max(a, from); i < b; i++) {
      if (u8[p + i] !== byte) { bad = i; return }
    }
  })
  return bad
}

/* ----- Control buffer ---------------------------------------------------------------------- */

const LINE = 16

/** Header words. */
export const CTL_ABORT = 0
/** Set by the last worker at a round's end barrier: no more rounds. */
export const CTL_STOP = 1
/** Set by the main thread (Ctrl-C): stop at the next round boundary. */
export const CTL_STOP_REQUEST = 2
/** Rounds completed. */
export const CTL_ROUND = 3
const CTL_BAR_COUNT = 4
const CTL_BAR_GEN = 5
/** Main → workers: everything is checked, release your heaps and exit. */
export const CTL_RELEASE = 6
/** Highest segment index any returned block has reached (Atomics max). */
export const CTL_HIGH_WATER = 7
/** Mid-run arena.check() calls done. */
export const CTL_CHECKS = 8
/** Time (ms since the epoch, low 31 bits are enough for deltas) of the last mid-run check. */
export const CTL_LAST_CHECK = 9
/** Workers that have finished (reported). */
export const CTL_DONE = 10
/** Time (low 31 bits of Date.now()) of the last check() made while use-after-free victims sat free. */
export const CTL_LAST_UAF_CHECK = 11
/** Such checks that named a victim, as they must. */
export const CTL_UAF_CHECKS = 12

/** Per-worker line: ops done (progress), live blocks held, phase. */
export const W_OPS = 0
export const W_LIVE = 1
export const W_PHASE = 2
export const W_ROUND = 3
/** The worker's heap id (published before its first round). */
export const W_HEAP = 4

export const PHASE_NAMES = ['starting', 'A (ops)', 'B1 (first frees)', 'B2 (second frees, races)', 'B3 (use-after-free hunts)', 'final frees', 'done', 'released'] as const

/** Blocks one worker may put in one hand-off box per round. */
export const HANDOFF_CAP = 48
/** Words per hand-off entry: ptr, size, tag, serial, heap. */
export const HANDOFF_WORDS = 5
/** Entries per B2 box per round. */
export const B2_CAP = 32
/**
 * Words per B2 entry: ptr, kind (B2_*), then per kind
 *   B2_RACE  race slot
 *   B2_UAF   offset written, requested size, serial (the owner hunts the block in phase B3)
 */
export const B2_WORDS = 5
export const B2_CROSS = 1
export const B2_RACE = 2
export const B2_UAF = 3
/** Races one worker may start per round. */
export const RACE_CAP = 32
/** What a racer adds to the race's result word. */
export const RACE_FREED = 1
export const RACE_DOUBLE_FREE = 1 << 8
export const RACE_OTHER = 1 << 16

/** Word offsets of the control buffer's regions for `workers` workers. */
export class CtlLayout {
  readonly workers: number
  readonly handoff: number
  readonly b2: number
  readonly races: number
  readonly words: number
  private readonly handoffBox: number
  private readonly b2Box: number

  constructor(workers: number) {
    this.workers = workers
    this.handoff = LINE * (1 + workers)
    this.handoffBox = 1 + HANDOFF_CAP * HANDOFF_WORDS
    this.b2 = this.handoff + 2 * workers * workers * this.handoffBox
    this.b2Box = 1 + B2_CAP * B2_WORDS
    this.races = this.b2 + workers * workers * this.b2Box
    this.words = this.races + workers * RACE_CAP
  }

  /** Word `field` of worker `w`'s line. */
  line(w: number, field: number): number {
    return LINE * (1 + w) + field
  }

  /** First word (the count) of the hand-off box from → to of round parity `parity`. */
  handoffBoxAt(parity: number, from: number, to: number): number {
    return this.handoff + ((parity * this.workers + from) * this.workers + to) * this.handoffBox
  }

  /** First word (the count) of the B2 box from → to. */
  b2BoxAt(from: number, to: number): number {
    return this.b2 + (from * this.workers + to) * this.b2Box
  }

  /** Result word of race slot `slot` (worker w's slots are w*RACE_CAP …). */
  raceAt(slot: number): number {
    return this.races + slot
  }
}

export function createCtl(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(new CtlLayout(workers).words * 4)
}

/** Thrown inside a worker that saw the abort flag (another worker or the main thread failed). */
export class Aborted extends Error {}

/**
 * A reusable barrier for `n` workers (generation counter). The last to
 * arrive runs `last` (while all others wait) before releasing them. Throws
 * Aborted if the abort flag goes up while waiting.
 */
export function barrier(ctl: Int32Array, n: number, last?: () => void): void {
  const gen = Atomics.load(ctl, CTL_BAR_GEN)
  if (Atomics.add(ctl, CTL_BAR_COUNT, 1) === n - 1) {
    Atomics.store(ctl, CTL_BAR_COUNT, 0)
    try {
      last?.()
    } finally {
      Atomics.add(ctl, CTL_BAR_GEN, 1)
      Atomics.notify(ctl, CTL_BAR_GEN)
    }
    return
  }
  let spins = 0
  while (Atomics.load(ctl, CTL_BAR_GEN) === gen) {
    if (Atomics.load(ctl, CTL_ABORT) !== 0) throw new Aborted()
    if (++spins < 2000) continue // a short spin: rounds are short, waking up costs more
    Atomics.wait(ctl, CTL_BAR_GEN, gen, 50)
  }
  if (Atomics.load(ctl, CTL_ABORT) !== 0) throw new Aborted()
}

/** Raises the abort flag and wakes every worker waiting at the barrier. */
export function raiseAbort(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_ABORT, 1)
  Atomics.notify(ctl, CTL_BAR_GEN)
  Atomics.notify(ctl, CTL_RELEASE)
}
