/* ----------------------------------------------------------------------------
  fuzz-engine.ts — one worker of the misuse fuzzer: random valid operations
  on its own heap with faults injected among them, in lockstep rounds with
  the other workers (so that a seed replays and every injected fault is
  unambiguous).

  A round has four phases separated by barriers:

    A   (ops)    adopt the blocks handed to us last round; then K random
                 operations: malloc / calloc / mallocAligned / realloc / free,
                 hand a block to another worker, rewrite or verify a block —
                 and, at rate R per operation, a fault. Faults that need no
                 global quiet are done here: interior, unaligned,
                 out-of-buffer and never-allocated frees, overflows and
                 underflows (then the repair), use after free of our own
                 block (with its hunt). Double frees and cross-worker use
                 after free are only *scheduled* here.
    B1  (frees)  nobody allocates: the first free of every scheduled double
                 free (and the immediate second one of immediate double
                 frees); frees of other heaps' blocks, then a write into them.
                 At the barrier, arena.check() must name such a victim.
    B2  (again)  nobody allocates: racing double frees (two workers free one
                 live block at once), then cross-worker and stale second frees.
    B3  (hunts)  owners malloc the size classes of their written blocks until
                 the allocator reports each one.
  At the round's end barrier the last worker decides whether to go on and,
  now and then, runs arena.check(), whose live count must equal what the
  workers hold plus what is in transit.

  Why the quiet phases: a freed block can be handed out again by its page's
  owner. With no malloc anywhere between a block's free and its second free,
  the second free is a double free for sure — not a free of someone's new
  block. Use-after-free victims are pinned instead: the victim's page keeps
  another live block of ours (so it stays in use and ours) until the hunt
  for the victim is over.

  Every decision comes from the worker's generator and the positions in its
  live list, never from pointer values or timing, so a seed, a worker count
  and a round count replay the same operations and the same faults. (With
  several workers the *addresses* still depend on which worker claims which
  segment first, so a bug that needs a particular address may not recur.)
---------------------------------------------------------------------------- */

import {
  AllocatorError, DoubleFreeError, HeapCorruptionError, InvalidPointerError, type Arena, type Heap,
} from '../src/index.js'
import {
  DEBUG_BYTE_CLEAN, DEBUG_BYTE_DEAD, DEBUG_BYTE_GUARD, DEBUG_HEADER, DEBUG_REAR_MIN, KIND_HUGE,
  PAGE_BLOCK_SIZE, PAGE_FLAGS, PAGE_FLAG_IN_USE, SEGMAP, SEGMENT_MASK, SEGMENT_SHIFT, SEG_OWNER, SEG_PAGE_SHIFT,
} from '../src/layout.js'
import { pageDesc, segWord } from '../src/segment.js'
import {
  Aborted, B2_CAP, B2_CROSS, B2_RACE, B2_UAF, B2_WORDS, CTL_ABORT, CTL_LAST_UAF_CHECK, CTL_UAF_CHECKS, CTL_CHECKS, CTL_HIGH_WATER, CTL_LAST_CHECK,
  CTL_ROUND, CTL_STOP, CTL_STOP_REQUEST, CtlLayout, EXPECTED, HANDOFF_CAP, HANDOFF_WORDS, MULTI_WORKER_KINDS,
  RACE_CAP, RACE_DOUBLE_FREE, RACE_FREED, RACE_OTHER, Rng, W_HEAP, W_LIVE, W_OPS, W_PHASE, W_ROUND, barrier,
  checkFill, checkPattern, emptyCounts, raiseAbort, workerSeed, writePattern,
  type FaultKind, type FuzzFailure, type FuzzWorkerData, type KindCounts, type WorkerReport,
} from './fuzz-common.js'

/** A live block we hold: where, how big, its pattern tag, and who allocated it (serial within that heap). */
interface Blk {
  p: number
  n: number
  tag: number
  serial: number
  heap: number
}

/** A phase-B1 job: free the block, then maybe free it again at once, or write into it. */
interface B1Job {
  blk: Blk
  /**
   * 'free': a plain free; 'immediate': free, then free again; 'first': the
   * first free of a stale/cross double free; 'uaf': free another heap's
   * block, then write byte `v` at `off` (its owner hunts it in phase B3).
   */
  what: 'free' | 'immediate' | 'first' | 'uaf'
  off?: number
  v?: number
}

/** A block written after it was freed, to hunt: malloc(size) hands it out eventually. */
interface Victim {
  p: number
  size: number
  off: number
  /** Requested size and serial when it was freed (the report names them). */
  n: number
  serial: number
  op: string
}

/** A use-after-free victim of ours that another worker freed and wrote: we hunt it in phase B3. */
interface Hunt {
  p: number
  off: number
  n: number
  serial: number
  from: number
}

/** Live blocks per worker before frees take over. */
const MAX_LIVE = 1200
/** Live bytes per worker before frees take over. */
const MAX_LIVE_BYTES = 20 << 20
/** Failures kept per worker (the rest are counted). */
const MAX_FAILURES = 40

const PHASE_A = 1
const PHASE_B1 = 2
const PHASE_B2 = 3
const PHASE_B3 = 4
const PHASE_FINAL = 5

const hex = (n: number): string => Number.isInteger(n) && n >= 0 ? '0x' + n.toString(16) : String(n)

const ERROR_CLASSES: Record<string, abstract new (...args: never[]) => Error> = {
  DoubleFreeError, InvalidPointerError, HeapCorruptionError,
}

export class FuzzEngine {
  private readonly arena: Arena
  private readonly heap: Heap
  private readonly u8: Uint8Array
  private readonly i32: Int32Array
  private readonly ctl: Int32Array
  private readonly layout: CtlLayout
  private readonly d: FuzzWorkerData
  private readonly w: number
  private readonly n: number
  private readonly rng: Rng
  private readonly debug: boolean
  /** Kinds drawn per fault (multi-worker kinds dropped when alone). */
  private readonly kinds: FaultKind[]

  private readonly live: Blk[] = []
  private liveBytes = 0
  /** Debug serial of the last block our heap handed out (DebugHeap counts per heap). */
  private serial = 0
  private round = -1
  private highWater = 0

  private b1: B1Job[] = []
  /** Our stale second frees for phase B2. */
  private staleAgain: Blk[] = []
  /** Races we start this round: the block and its result slot. */
  private races: Array<{ blk: Blk, slot: number }> = []
  /** Races of last round whose result word we still have to read. */
  private pendingRaces: number[] = []
  /** Our blocks other workers freed and wrote: hunted in phase B3. */
  private hunts: Hunt[] = []
  /** Lower end of the narrow size band half the sizes come from (0: none). */
  private band = 0

  private readonly counts = emptyCounts()
  private readonly failures: FuzzFailure[] = []
  private failuresDropped = 0
  private falseAlarms = 0
  private dataErrors = 0
  private ops = 0
  private mallocs = 0
  private frees = 0
  private crossFrees = 0
  private reallocs = 0
  private handOffs = 0
  private huntMallocs = 0
  private aborted = false

  constructor(arena: Arena, heap: Heap, d: FuzzWorkerData) {
    this.arena = arena
    this.heap = heap
    this.u8 = arena.u8
    this.i32 = arena.i32
    this.ctl = new Int32Array(d.ctl)
    this.layout = new CtlLayout(d.workers)
    this.d = d
    this.w = d.worker
    this.n = d.workers
    this.rng = new Rng(workerSeed(d.seed, d.worker))
    this.debug = arena.debug
    this.kinds = d.kinds.filter((k) => d.workers > 1 || !MULTI_WORKER_KINDS.includes(k))
  }

  /* ----- The rounds ------------------------------------------------------------------ */

  /** Runs rounds until the stop flag, then frees everything; returns the report. */
  run(): WorkerReport {
    this.setLine(W_HEAP, this.heap.id)
    try {
      for (let round = 0; ; round++) {
        this.round = round
        this.setLine(W_ROUND, round)
        this.phaseA()
        barrier(this.ctl, this.n)
        this.phaseB1()
        barrier(this.ctl, this.n, () => this.checkWhileVictimsAreFree())
        this.phaseB2()
        barrier(this.ctl, this.n)
        this.phaseB3()
        this.setLine(W_LIVE, this.live.length)
        this.setLine(W_OPS, this.ops)
        barrier(this.ctl, this.n, () => this.endOfRound())
        if (Atomics.load(this.ctl, CTL_STOP) !== 0) break
      }
      this.final()
    } catch (e) {
      if (!(e instanceof Aborted)) {
        this.record({ type: 'crash', op: 'worker', message: e instanceof Error ? e.stack ?? e.message : String(e) })
        raiseAbort(this.ctl)
      }
      this.aborted = true
    }
    return this.report()
  }

  private phaseA(): void {
    this.setLine(W_PHASE, PHASE_A)
    this.tallyRaces()
    this.adopt((this.round - 1) & 1)
    // every 8 rounds the size mix drifts: half the blocks come from a narrow
    // band, so pages fill with one size class, empty, and are laid out
    // again for another
    if ((this.round & 7) === 0) this.band = this.rng.chance(0.6) ? this.rng.range(1, 1500) : 0
    const rate = this.kinds.length > 0 ? this.d.rate : 0
    for (let k = 0; k < this.d.opsPerRound; k++) {
      if ((k & 63) === 0 && Atomics.load(this.ctl, CTL_ABORT) !== 0) throw new Aborted()
      if (rate > 0 && this.rng.chance(rate)) this.inject(this.rng.pick(this.kinds))
      else this.validOp()
    }
  }

  private phaseB1(): void {
    this.setLine(W_PHASE, PHASE_B1)
    for (const job of this.b1) {
      this.verifiedFree(job.blk, 'phase-B1 free')
      if (job.what === 'uaf') this.u8[job.blk.p + job.off!] = job.v!
      if (job.what === 'immediate') {
        const p = job.blk.p
        const accepted = this.expectFault('double-free-immediate', `free(${hex(p)}) right after freeing it`, p,
          () => this.heap.free(p), [hex(p)])
        if (accepted) this.abortNow()
      }
    }
    this.b1 = []
  }

  private phaseB2(): void {
    this.setLine(W_PHASE, PHASE_B2)
    const L = this.layout
    // 1. races first, ours and those others started with us, in the order
    //    they were scheduled, so both racers reach each block together
    const mine = this.races
    this.races = []
    const theirs: Array<{ p: number, slot: number }> = []
    const cross: Array<{ p: number, from: number }> = []
    for (let from = 0; from < this.n; from++) {
      if (from === this.w) continue
      const box = L.b2BoxAt(from, this.w)
      const count = this.ctl[box]
      for (let i = 0; i < count; i++) {
        const e = box + 1 + i * B2_WORDS
        const p = this.ctl[e] >>> 0
        const kind = this.ctl[e + 1]
        if (kind === B2_RACE) theirs.push({ p, slot: this.ctl[e + 2] })
        else if (kind === B2_UAF) this.hunts.push({ p, off: this.ctl[e + 2], n: this.ctl[e + 3], serial: this.ctl[e + 4], from })
        else cross.push({ p, from })
      }
      this.ctl[box] = 0
    }
    for (const r of mine) this.race(r.blk.p, r.slot)
    for (const r of theirs) this.race(r.p, r.slot)
    // 2. cross-worker second frees (another worker freed these in B1)
    for (const c of cross) {
      const accepted = this.expectFault('double-free-cross', `free(${hex(c.p)}) after worker ${c.from} freed it`, c.p,
        () => this.heap.free(c.p), [hex(c.p)])
      if (accepted) this.abortNow()
    }
    // 3. our stale second frees (other frees happened since)
    for (const b of this.staleAgain) {
      const accepted = this.expectFault('double-free-stale', `free(${hex(b.p)}) again after other frees`, b.p,
        () => this.heap.free(b.p), [hex(b.p)])
      if (accepted) this.abortNow()
    }
    this.staleAgain = []
  }

  /** Hunts the blocks of ours that other workers freed and wrote in phase B1. */
  private phaseB3(): void {
    this.setLine(W_PHASE, PHASE_B3)
    if (this.hunts.length === 0) return
    const victims: Victim[] = this.hunts.map((h) => ({
      p: h.p, off: h.off, n: h.n, serial: h.serial,
      size: this.i32[this.pageOf(h.p) + PAGE_BLOCK_SIZE] - DEBUG_HEADER - DEBUG_REAR_MIN,
      op: `worker ${h.from} freed our ${h.n}-byte block ${hex(h.p)} and wrote +${h.off}; we malloc its size class until it comes back`,
    }))
    this.counts['use-after-free'].injected += victims.length
    this.hunts = []
    const extra: number[] = []
    this.hunt(victims, extra)
    for (const x of extra) this.plainFree(x)
  }

  /**
   * Run by the last worker at the B1→B2 barrier, at most every checkEveryMs:
   * if use-after-free victims sit free (written in B1, hunted in B3),
   * arena.check() must report one of them.
   */
  private checkWhileVictimsAreFree(): void {
    if (this.d.checkEveryMs <= 0) return
    const ctl = this.ctl
    const now = Date.now() & 0x7fffffff
    const last = ctl[CTL_LAST_UAF_CHECK]
    if (last !== 0 && ((now - last) & 0x7fffffff) < this.d.checkEveryMs) return
    const victims = new Set<number>()
    for (let from = 0; from < this.n; from++) {
      for (let to = 0; to < this.n; to++) {
        const box = this.layout.b2BoxAt(from, to)
        for (let i = 0; i < ctl[box]; i++) {
          const e = box + 1 + i * B2_WORDS
          if (ctl[e + 1] === B2_UAF) victims.add(ctl[e] >>> 0)
        }
      }
    }
    if (victims.size === 0) return
    ctl[CTL_LAST_UAF_CHECK] = now
    try {
      this.arena.check()
    } catch (e) {
      if (e instanceof HeapCorruptionError && e.ptr !== undefined && victims.has(e.ptr) && e.message.includes('written after it was freed')) {
        Atomics.add(ctl, CTL_UAF_CHECKS, 1)
        return
      }
      this.record({ type: 'check', fault: 'use-after-free', op: 'arena.check() while use-after-free victims sit free', message: `expected a report naming one of ${[...victims].map(hex).join(', ')}, got ${describeError(e)}` })
      this.abortNow()
    }
    this.record({ type: 'check', fault: 'use-after-free', op: 'arena.check() while use-after-free victims sit free', message: `check() passed although ${[...victims].map(hex).join(', ')} were written after being freed` })
    this.abortNow()
  }

  /** One side of a racing double free: free, and add the outcome to the race's result word. */
  private race(p: number, slot: number): void {
    let outcome = RACE_FREED
    try {
      this.heap.free(p)
    } catch (e) {
      outcome = e instanceof DoubleFreeError && e.code === 'ERR_DOUBLE_FREE' ? RACE_DOUBLE_FREE : RACE_OTHER
      if (outcome === RACE_OTHER) {
        this.record({ type: 'wrong-class', fault: 'double-free-race', op: `racing free(${hex(p)})`, message: describeError(e), ptr: p })
      }
    }
    Atomics.add(this.ctl, this.layout.raceAt(slot), outcome)
  }

  /** Reads the result words of the races we started last round. */
  private tallyRaces(): void {
    const c = this.counts['double-free-race']
    let corrupt = false
    for (const slot of this.pendingRaces) {
      const v = Atomics.exchange(this.ctl, this.layout.raceAt(slot), 0)
      if (v === RACE_FREED + RACE_DOUBLE_FREE) { c.detected++; continue }
      const freed = v & 0xff
      const df = (v >>> 8) & 0xff
      const other = v >>> 16
      const what = `race on slot ${slot}: ${freed} free(s) succeeded, ${df} DoubleFreeError, ${other} other error(s)`
      if (freed >= 2) {
        c.missed++
        corrupt = true
        this.record({ type: 'missed', fault: 'double-free-race', op: 'two workers free one block at once', message: `${what}: both frees succeeded`, round: this.round - 1 })
      } else {
        c.wrongClass++
        this.record({ type: 'wrong-class', fault: 'double-free-race', op: 'two workers free one block at once', message: `${what} (expected 1 and 1)`, round: this.round - 1 })
      }
    }
    this.pendingRaces = []
    if (corrupt) this.abortNow()
  }

  /** Run by the last worker at a round's end barrier, while all others wait: stop or go on, and maybe check the arena. */
  private endOfRound(): void {
    const ctl = this.ctl
    const rounds = Atomics.add(ctl, CTL_ROUND, 1) + 1
    const now = Date.now()
    if ((this.d.deadline > 0 && now >= this.d.deadline) || (this.d.maxRounds > 0 && rounds >= this.d.maxRounds) ||
      Atomics.load(ctl, CTL_STOP_REQUEST) !== 0) {
      Atomics.store(ctl, CTL_STOP, 1)
    }
    const last = ctl[CTL_LAST_CHECK]
    if (this.d.checkEveryMs > 0 && ((((now & 0x7fffffff) - last) & 0x7fffffff) >= this.d.checkEveryMs || last === 0)) {
      ctl[CTL_LAST_CHECK] = now & 0x7fffffff
      Atomics.add(ctl, CTL_CHECKS, 1)
      this.checkArena('at the end of a round')
    }
  }

  /** arena.check() while every other worker waits; its live block count must be what the workers hold plus what is in transit. */
  private checkArena(when: string): void {
    let expected = 0
    const L = this.layout
    const parity = this.round & 1
    for (let w = 0; w < this.n; w++) {
      expected += this.ctl[L.line(w, W_LIVE)]
      for (let to = 0; to < this.n; to++) expected += this.ctl[L.handoffBoxAt(parity, w, to)]
    }
    let live: number
    try {
      live = this.arena.check().liveBlocks
    } catch (e) {
      this.record({ type: 'check', op: 'arena.check()', message: `${when}: ${describeError(e)}` })
      this.abortNow()
    }
    if (live !== expected) {
      this.record({ type: 'leak', op: 'arena.check()', message: `${when}: check() counts ${live} live blocks, the workers hold ${expected}` })
      this.abortNow()
    }
  }

  /** After the last round: adopt what is in transit, free everything, collect. */
  private final(): void {
    this.round++
    this.setLine(W_PHASE, PHASE_FINAL)
    this.tallyRaces()
    this.adopt((this.round - 1) & 1)
    while (this.live.length > 0) this.verifiedFree(this.live[this.live.length - 1], 'final free', this.live.length - 1)
    barrier(this.ctl, this.n)
    this.valid('collect()', undefined, () => this.heap.collect())
    this.setLine(W_LIVE, 0)
    barrier(this.ctl, this.n)
  }

  /* ----- Valid operations ------------------------------------------------------------ */

  private validOp(): void {
    const live = this.live
    if (live.length === 0) { this.allocate(); return }
    const full = live.length >= MAX_LIVE || this.liveBytes >= MAX_LIVE_BYTES
    const r = this.rng.below(100)
    if (r < 38) {
      if (full) this.freeRandom()
      else this.allocate()
    } else if (r < 68) {
      this.freeRandom()
    } else if (r < 78) {
      this.reallocRandom(full)
    } else if (r < 90) {
      if (this.n > 1) this.handOff()
      else this.freeRandom()
    } else if (r < 96) {
      const b = live[this.rng.below(live.length)]
      this.verify(b, 'rewrite')
      b.tag = this.rng.next()
      writePattern(this.u8, b.p, b.n, b.tag)
    } else {
      this.verify(live[this.rng.below(live.length)], 'verify')
    }
  }

  /** A random size: mostly small, some medium and large, rarely huge. */
  private randomSize(): number {
    const r = this.rng.below(1000)
    const g = this.rng
    if (this.band > 0 && r < 500) return g.range(this.band, this.band + 40)
    if (r < 5) return 0
    if (r < 600) return g.range(1, 128)
    if (r < 850) return g.range(129, 1024)
    if (r < 950) return g.range(1025, 16384)
    if (r < 990) return g.range(16385, 131072)
    if (r < 999) return g.range(131073, 480_000)
    return g.range(600_000, 3_000_000)
  }

  /** malloc, calloc, mallocAligned or realloc(0, n) of a random size; the block joins the live list. */
  private allocate(): Blk {
    const g = this.rng
    const n = this.randomSize()
    const r = g.below(100)
    let blk: Blk
    if (r < 80) {
      blk = this.mallocChecked(n, 'malloc')
    } else if (r < 88) {
      const count = g.range(1, 16)
      const size = Math.max(1, Math.floor(n / count))
      const p = this.valid(`calloc(${count}, ${size})`, undefined, () => this.heap.calloc(count, size))
      blk = this.allocated(p, count * size, `calloc(${count}, ${size})`, 0, 8)
    } else if (r < 92) {
      const align = g.chance(0.9) ? g.pick([8, 16, 32]) : g.pick([64, 256, 4096])
      const m = Math.min(n, 200_000)
      const p = this.valid(`mallocAligned(${m}, ${align})`, undefined, () => this.heap.mallocAligned(m, align))
      blk = this.allocated(p, m, `mallocAligned(${m}, ${align})`, DEBUG_BYTE_CLEAN, align)
    } else {
      const p = this.valid(`realloc(0, ${n})`, undefined, () => this.heap.realloc(0, n))
      blk = this.allocated(p, n, `realloc(0, ${n})`, DEBUG_BYTE_CLEAN, 8)
    }
    blk.tag = g.next()
    writePattern(this.u8, blk.p, blk.n, blk.tag)
    this.live.push(blk)
    this.liveBytes += blk.n
    return blk
  }

  private mallocChecked(n: number, what: string): Blk {
    const p = this.valid(`${what}(${n})`, undefined, () => this.heap.malloc(n))
    return this.allocated(p, n, `${what}(${n})`, DEBUG_BYTE_CLEAN, 8)
  }

  /**
   * Checks a block the allocator just handed out (not 0, aligned; in debug
   * mode: usableSize = n, filled with `fill`, guards in place) and counts it.
   */
  private allocated(p: number, n: number, op: string, fill: number, align: number): Blk {
    if (p === 0) {
      this.record({ type: 'out-of-memory', op, message: `${op} returned 0 (the fuzzer keeps its live bytes far below the arena size)` })
      this.abortNow()
    }
    this.mallocs++
    this.ops++
    this.serial++
    this.raiseHighWater(p, n)
    const problems: string[] = []
    if (p % align !== 0 || p % 8 !== 0 || (n >= 16 && p % 16 !== 0)) problems.push(`${hex(p)} is not aligned (asked ${align})`)
    if (this.debug) {
      const usable = this.valid(`usableSize(${hex(p)})`, p, () => this.heap.usableSize(p))
      if (usable !== n) problems.push(`usableSize is ${usable}, not the requested ${n}`)
      const bad = checkFill(this.u8, p, 0, n, fill)
      if (bad >= 0) problems.push(`byte +${bad} is 0x${this.u8[p + bad].toString(16)}, not 0x${fill.toString(16)}`)
      const guard = this.guardProblem(p, n)
      if (guard !== null) problems.push(guard)
    } else if (fill === 0) {
      const bad = checkFill(this.u8, p, 0, n, 0)
      if (bad >= 0) problems.push(`calloc byte +${bad} is 0x${this.u8[p + bad].toString(16)}, not 0`)
    }
    if (problems.length > 0) {
      this.record({ type: 'data', op, message: `block ${hex(p)}: ${problems.join('; ')}`, ptr: p })
      this.dataErrors++
      this.abortNow()
    }
    return { p, n, tag: 0, serial: this.serial, heap: this.heap.id }
  }

  /** Debug mode: the 16 front guard bytes and the rear guard bytes of a live block, or what is wrong with them. */
  private guardProblem(p: number, n: number): string | null {
    const u8 = this.u8
    for (let k = 1; k <= 16; k++) if (u8[p - k] !== DEBUG_BYTE_GUARD) return `front guard byte -${k} is 0x${u8[p - k].toString(16)}`
    for (let k = 0; k < DEBUG_REAR_MIN; k++) if (u8[p + n + k] !== DEBUG_BYTE_GUARD) return `rear guard byte +${n + k} is 0x${u8[p + n + k].toString(16)}`
    return null
  }

  private freeRandom(): void {
    const i = this.rng.below(this.live.length)
    this.verifiedFree(this.live[i], 'free', i)
  }

  /** Verifies the block's pattern, frees it (a valid free: any error is a false alarm) and drops it from the live list if `index` is given. */
  private verifiedFree(b: Blk, op: string, index = -1): void {
    this.verify(b, op)
    if (index >= 0) this.removeLive(index)
    this.valid(`${op}(${hex(b.p)})`, b.p, () => this.heap.free(b.p))
    this.frees++
    this.ops++
    if (b.heap !== this.heap.id) this.crossFrees++
  }

  private reallocRandom(full: boolean): void {
    const g = this.rng
    const b = this.live[g.below(this.live.length)]
    this.verify(b, 'realloc')
    let m = g.chance(0.5) ? Math.max(0, b.n + g.range(-(b.n >>> 1), b.n >>> 1)) : this.randomSize()
    if (full && m > b.n) m = b.n >>> 1
    const old = b.n
    const p = this.valid(`realloc(${hex(b.p)}, ${m})`, b.p, () => this.heap.realloc(b.p, m))
    if (p === 0) {
      this.record({ type: 'out-of-memory', op: `realloc(${hex(b.p)}, ${m})`, message: 'realloc returned 0' })
      this.abortNow()
    }
    this.reallocs++
    this.ops++
    const op = `realloc(${hex(b.p)}, ${m}) → ${hex(p)}`
    const problems: string[] = []
    const bad = checkPattern(this.u8, p, old, b.tag, Math.min(old, m))
    if (bad >= 0) problems.push(`byte +${bad} of the kept prefix is 0x${this.u8[p + bad].toString(16)}, expected 0x${((b.tag + Math.imul(bad, 157) + (bad >>> 8)) & 0xff).toString(16)}`)
    if (p !== b.p) {
      this.serial++
      this.mallocs++
      this.raiseHighWater(p, m)
      b.serial = this.serial
      b.heap = this.heap.id
    }
    if (this.debug) {
      const usable = this.valid(`usableSize(${hex(p)})`, p, () => this.heap.usableSize(p))
      if (usable !== m) problems.push(`usableSize is ${usable}, not ${m}`)
      if (m > old) {
        const t = checkFill(this.u8, p, old, m, DEBUG_BYTE_CLEAN)
        if (t >= 0) problems.push(`new byte +${t} is 0x${this.u8[p + t].toString(16)}, not 0xcd`)
      }
      const guard = this.guardProblem(p, m)
      if (guard !== null) problems.push(guard)
    }
    if (problems.length > 0) {
      this.record({ type: 'data', op, message: problems.join('; '), ptr: p })
      this.dataErrors++
      this.abortNow()
    }
    this.liveBytes += m - old
    b.p = p
    b.n = m
    b.tag = g.next()
    writePattern(this.u8, b.p, b.n, b.tag)
  }

  /** Moves a random live block to another worker's hand-off box (it adopts it next round). */
  private handOff(): void {
    const g = this.rng
    const i = g.below(this.live.length)
    let to = g.below(this.n - 1)
    if (to >= this.w) to++
    const box = this.layout.handoffBoxAt(this.round & 1, this.w, to)
    const count = this.ctl[box]
    if (count >= HANDOFF_CAP) { this.verify(this.live[i], 'verify'); return }
    const b = this.live[i]
    this.verify(b, 'hand-off')
    const e = box + 1 + count * HANDOFF_WORDS
    this.ctl[e] = b.p
    this.ctl[e + 1] = b.n
    this.ctl[e + 2] = b.tag
    this.ctl[e + 3] = b.serial
    this.ctl[e + 4] = b.heap
    this.ctl[box] = count + 1
    this.removeLive(i)
    this.handOffs++
    this.ops++
  }

  /** Takes the blocks other workers put in our boxes of round parity `parity`, verifying each. */
  private adopt(parity: number): void {
    for (let from = 0; from < this.n; from++) {
      if (from === this.w) continue
      const box = this.layout.handoffBoxAt(parity, from, this.w)
      const count = this.ctl[box]
      for (let i = 0; i < count; i++) {
        const e = box + 1 + i * HANDOFF_WORDS
        const b: Blk = { p: this.ctl[e] >>> 0, n: this.ctl[e + 1], tag: this.ctl[e + 2], serial: this.ctl[e + 3], heap: this.ctl[e + 4] }
        this.verify(b, `adopt from worker ${from}`)
        this.live.push(b)
        this.liveBytes += b.n
      }
      this.ctl[box] = 0
    }
  }

  /* ----- Faults ------------------------------------------------------------------------- */

  private inject(kind: FaultKind): void {
    switch (kind) {
      case 'double-free-immediate': return this.scheduleImmediate()
      case 'double-free-stale': return this.scheduleStale()
      case 'double-free-cross': return this.scheduleCross()
      case 'double-free-race': return this.scheduleRace()
      case 'free-interior': return this.freeInterior()
      case 'free-unaligned': return this.freeUnaligned()
      case 'free-out-of-buffer': return this.freeOutOfBuffer()
      case 'free-never-allocated': return this.freeNeverAllocated()
      case 'overflow': return this.guardFault('overflow')
      case 'underflow': return this.guardFault('underflow')
      case 'use-after-free': return this.useAfterFree()
    }
  }

  /** Index of a random live block (allocating one if there is none). */
  private anyLive(): number {
    if (this.live.length === 0) this.allocate()
    return this.rng.below(this.live.length)
  }

  /** Takes a random live block out of the live list, for a scheduled double free. */
  private takeLive(): Blk {
    const i = this.anyLive()
    const b = this.live[i]
    this.verify(b, 'schedule')
    this.removeLive(i)
    return b
  }

  private scheduleImmediate(): void {
    let b: Blk
    if (this.debug) {
      b = this.takeLive()
    } else {
      // release mode promises this for our own blocks of small/medium/large
      // pages only: a huge block's segment goes back on the first free
      const live = this.live
      const start = this.rng.below(Math.max(1, live.length))
      let idx = -1
      for (let k = 0; k < live.length; k++) {
        const i = (start + k) % live.length
        if (live[i].heap === this.heap.id && this.i32[SEGMAP + (live[i].p >>> SEGMENT_SHIFT)] !== KIND_HUGE) { idx = i; break }
      }
      if (idx < 0) {
        this.mallocFresh(this.rng.range(1, 1024))
        idx = live.length - 1
      }
      b = live[idx]
      this.verify(b, 'schedule')
      this.removeLive(idx)
    }
    this.b1.push({ blk: b, what: 'immediate' })
  }

  /** A fresh small block of ours joins the live list. */
  private mallocFresh(n: number): Blk {
    const b = this.mallocChecked(n, 'malloc')
    b.tag = this.rng.next()
    writePattern(this.u8, b.p, b.n, b.tag)
    this.live.push(b)
    this.liveBytes += n
    return b
  }

  private scheduleStale(): void {
    const b = this.takeLive()
    this.b1.push({ blk: b, what: 'first' })
    // at least one other free between the two
    if (this.live.length === 0) this.mallocFresh(this.rng.range(1, 256))
    this.b1.push({ blk: this.takeLive(), what: 'free' })
    this.staleAgain.push(b)
  }

  private scheduleCross(): void {
    let to = this.rng.below(this.n - 1)
    if (to >= this.w) to++
    const box = this.layout.b2BoxAt(this.w, to)
    if (this.ctl[box] >= B2_CAP) { this.counts['double-free-cross'].skipped++; return }
    const b = this.takeLive()
    this.b1.push({ blk: b, what: 'first' })
    this.putB2(box, b.p, B2_CROSS, 0)
  }

  private scheduleRace(): void {
    let to = this.rng.below(this.n - 1)
    if (to >= this.w) to++
    const box = this.layout.b2BoxAt(this.w, to)
    if (this.ctl[box] >= B2_CAP || this.races.length >= RACE_CAP) { this.counts['double-free-race'].skipped++; return }
    const b = this.takeLive()
    const slot = this.w * RACE_CAP + this.races.length
    this.races.push({ blk: b, slot })
    this.pendingRaces.push(slot)
    this.putB2(box, b.p, B2_RACE, slot)
    this.counts['double-free-race'].injected++
  }

  /** Appends an entry to a B2 box; returns its first word. */
  private putB2(box: number, p: number, kind: number, a: number): number {
    const count = this.ctl[box]
    const e = box + 1 + count * B2_WORDS
    this.ctl[e] = p
    this.ctl[e + 1] = kind
    this.ctl[e + 2] = a
    this.ctl[box] = count + 1
    return e
  }

  /** free() of a pointer inside a live block (debug: also into its header); the block stays live. */
  private freeInterior(): void {
    let b = this.live[this.anyLive()]
    const g = this.rng
    let off: number
    if (this.debug) {
      off = g.chance(0.2) ? -8 * g.range(1, 3) : 8 * g.range(1, Math.max(1, (b.n + 8) >>> 3))
    } else {
      let usable = this.valid(`usableSize(${hex(b.p)})`, b.p, () => this.heap.usableSize(b.p))
      if (usable < 16) {
        // an 8-byte block has no interior 8-aligned pointer: use a fresh bigger one
        b = this.mallocFresh(g.range(16, 256))
        usable = this.valid(`usableSize(${hex(b.p)})`, b.p, () => this.heap.usableSize(b.p))
      }
      off = 8 * g.range(1, Math.floor(Math.min(usable, 1 << 20) / 8) - 1)
    }
    this.badFree('free-interior', b.p + off, `free(${hex(b.p)} + ${off}) inside a live ${b.n}-byte block`)
  }

  private freeUnaligned(): void {
    const b = this.live[this.anyLive()]
    const g = this.rng
    const off = (g.chance(0.5) ? 0 : 8 * g.range(1, Math.max(1, b.n >>> 3))) + g.range(1, 7)
    this.badFree('free-unaligned', b.p + off, `free(${hex(b.p)} + ${off}), not 8-aligned`)
  }

  private freeOutOfBuffer(): void {
    const g = this.rng
    const len = this.arena.buffer.byteLength
    const p = this.live.length > 0 ? this.live[g.below(this.live.length)].p : 4096
    const choices: Array<() => number> = [
      () => len,
      () => len + 8 * g.range(1, 1 << 20),
      () => 2 ** 32,
      () => 2 ** 32 + p,
      () => -8 * g.range(1, 1 << 20),
      () => -p,
      () => NaN,
      () => Infinity,
      () => -Infinity,
      () => p + 0.5,
      () => g.range(1, 1 << 20) + 0.25,
      () => 2 ** 53,
    ]
    const x = g.pick(choices)()
    this.badFree('free-out-of-buffer', x, `free(${String(x)}) outside the ${len}-byte buffer`)
  }

  /** free() of a pointer that never was a block: in the metadata, in a segment header, in a segment never claimed. */
  private freeNeverAllocated(): void {
    const g = this.rng
    const variant = g.below(3)
    let x: number
    let what: string
    if (variant === 0) {
      x = 8 * g.range(1, (this.arena.metaSegments << SEGMENT_SHIFT) / 8 - 1)
      what = 'in the arena metadata'
    } else if (variant === 1) {
      const b = this.live[this.anyLive()]
      const base = (b.p >>> SEGMENT_SHIFT) << SEGMENT_SHIFT
      x = base + 32 + 8 * g.range(0, (this.arena.segHeaderSize - 32) / 8)
      what = `in the header of segment ${b.p >>> SEGMENT_SHIFT}`
    } else {
      const top = (this.arena.buffer.byteLength >>> SEGMENT_SHIFT) - 1
      const hw = Atomics.load(this.ctl, CTL_HIGH_WATER)
      if (hw >= top - 1 || Atomics.load(this.i32, SEGMAP + top) !== 0) { this.counts['free-never-allocated'].skipped++; return }
      x = (top << SEGMENT_SHIFT) + this.arena.segHeaderSize + 32 + 16 * g.range(0, 1000)
      what = `in segment ${top}, never claimed (the highest block reached segment ${hw})`
    }
    this.badFree('free-never-allocated', x, `free(${hex(x)}) ${what}`)
  }

  /** A free that must be rejected with InvalidPointerError and change nothing. */
  private badFree(kind: FaultKind, x: number, op: string): void {
    const accepted = this.expectFault(kind, op, x, () => this.heap.free(x), [])
    if (accepted) this.abortNow()
  }

  /**
   * Overflow (write bytes p+n … p+n+k-1) or underflow (p-k … p-1) of a live
   * block by 1..16 bytes; free (or realloc) must report it naming the block,
   * its size, the side, the first bad offset and its serial, and change
   * nothing; then we restore the guard and the free must succeed.
   */
  private guardFault(kind: 'overflow' | 'underflow'): void {
    const g = this.rng
    const i = this.anyLive()
    const b = this.live[i]
    this.verify(b, kind)
    const k = g.range(1, 16)
    const from = kind === 'overflow' ? b.p + b.n : b.p - k
    for (let j = 0; j < k; j++) {
      let v = g.below(256)
      if (v === DEBUG_BYTE_GUARD) v = 0
      this.u8[from + j] = v
    }
    const viaRealloc = g.chance(0.2)
    const m = b.n + 8
    const parts = [
      hex(b.p), `requested ${b.n} bytes`, `serial ${b.serial}`, `heap ${b.heap}`,
      kind === 'overflow' ? `rear guard overwritten at offset +${b.n}` : `front guard overwritten at offset -${k}`,
      kind === 'overflow' ? 'buffer overflow' : 'buffer underflow',
    ]
    const op = `${kind} of ${k} byte(s) of the ${b.n}-byte block ${hex(b.p)}, then ${viaRealloc ? `realloc(p, ${m})` : 'free(p)'}`
    const accepted = this.expectFault(kind, op, b.p, () => viaRealloc ? this.heap.realloc(b.p, m) : this.heap.free(b.p), parts)
    if (accepted) {
      // the block was freed (or moved) although its guard was broken
      if (viaRealloc) {
        this.record({ type: 'missed', fault: kind, op, message: 'realloc accepted a block with a broken guard; the fuzzer cannot track it further', ptr: b.p })
        this.abortNow()
      }
      this.removeLive(i)
      this.frees++
      return
    }
    // repair, then the free must go through
    this.u8.fill(DEBUG_BYTE_GUARD, from, from + k)
    this.verifiedFree(b, `free after repairing the ${kind}`, i)
  }

  /**
   * Use after free. Half the time (with other workers): free a block of
   * another heap that we hold and write into it in phase B1; its owner
   * hunts it in phase B3 (no malloc can hand it out before: only the owner
   * allocates from its pages, and the owner cannot retire the page while
   * the block waits on its cross-thread list). Otherwise: free a fresh block
   * of ours whose page a second block of ours pins (so the page stays in use
   * and ours), write one of its bytes, and hunt it at once.
   */
  private useAfterFree(): void {
    const g = this.rng
    if (this.n > 1 && g.chance(0.5) && this.scheduleCrossUaf()) return
    const c = this.counts['use-after-free']
    const n = g.chance(0.7) ? g.range(1, 512) : g.range(513, 8192)
    const extra: number[] = []
    let victim = this.mallocChecked(n, 'malloc')
    let pin = 0
    for (let i = 0; i < 1000 && pin === 0; i++) {
      const x = this.mallocChecked(n, 'malloc')
      if (this.pageOf(x.p) === this.pageOf(victim.p)) pin = x.p
      else { extra.push(victim.p); victim = x }
    }
    if (pin === 0) {
      c.skipped++
      for (const x of [...extra, victim.p]) this.plainFree(x)
      return
    }
    const p = victim.p
    const pd = this.pageOf(p)
    this.plainFree(p)
    const sw = segWord(p >>> SEGMENT_SHIFT)
    if ((this.i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_USE) === 0 || Atomics.load(this.i32, sw + SEG_OWNER) !== this.heap.id) {
      // cannot happen: the pin is live in that page
      this.record({ type: 'crash', fault: 'use-after-free', op: 'pin', message: `page of ${hex(p)} left use although ${hex(pin)} is live in it` })
      this.abortNow()
    }
    const off = g.below(n)
    let v = g.below(256)
    if (v === DEBUG_BYTE_DEAD) v = 0
    this.u8[p + off] = v
    c.injected++
    this.hunt([{ p, size: n, off, n, serial: victim.serial, op: `write 0x${v.toString(16)} at +${off} of our freed ${n}-byte block ${hex(p)}, then malloc(${n}) until it comes back` }], extra)
    for (const x of extra) this.plainFree(x)
    this.plainFree(pin)
  }

  /** The cross-worker use after free: picks a block of another heap (1..1024 bytes, in a small page); false if we hold none. */
  private scheduleCrossUaf(): boolean {
    const g = this.rng
    const live = this.live
    const start = g.below(Math.max(1, live.length))
    for (let k = 0; k < live.length; k++) {
      const i = (start + k) % live.length
      const b = live[i]
      // not a huge block (an over-aligned one): freeing it gives its segment back at once
      if (b.heap === this.heap.id || b.n < 1 || b.n > 1024 || this.i32[SEGMAP + (b.p >>> SEGMENT_SHIFT)] === KIND_HUGE) continue
      const owner = this.workerOfHeap(b.heap)
      if (owner < 0 || owner === this.w) continue
      const box = this.layout.b2BoxAt(this.w, owner)
      if (this.ctl[box] >= B2_CAP) return false
      this.verify(b, 'schedule')
      this.removeLive(i)
      const off = g.below(b.n)
      let v = g.below(256)
      if (v === DEBUG_BYTE_DEAD) v = 0
      this.b1.push({ blk: b, what: 'uaf', off, v })
      const e = this.putB2(box, b.p, B2_UAF, off)
      this.ctl[e + 3] = b.n
      this.ctl[e + 4] = b.serial
      return true
    }
    return false
  }

  /** Index of the worker whose heap is `heap`, or −1. */
  private workerOfHeap(heap: number): number {
    for (let w = 0; w < this.n; w++) if (this.ctl[this.layout.line(w, W_HEAP)] === heap) return w
    return -1
  }

  /**
   * Hunts written blocks: for each victim in turn, mallocs its size class
   * until the allocator reports it — that malloc must throw
   * HeapCorruptionError naming it (a report naming another victim still
   * pending counts for that one). Blocks handed out meanwhile go to `extra`.
   */
  private hunt(victims: Victim[], extra: number[]): void {
    const c = this.counts['use-after-free']
    const pending = new Map(victims.map((v) => [v.p, v]))
    for (const target of victims) {
      if (!pending.has(target.p)) continue
      const max = Math.max(2000, Math.floor((24 << 20) / (target.size + 64)))
      for (let i = 0; i < max && pending.has(target.p); i++) {
        let x: number
        try {
          x = this.heap.malloc(target.size)
        } catch (e) {
          const v = e instanceof AllocatorError && e.ptr !== undefined ? pending.get(e.ptr) : undefined
          if (v === undefined) this.falseAlarm(`malloc(${target.size}) hunting ${hex(target.p)}`, undefined, e)
          this.judge('use-after-free', v.op, v.p, e, [hex(v.p), `offset +${v.off}`, `requested ${v.n} bytes`, `serial ${v.serial}`, 'use after free'])
          pending.delete(v.p)
          continue
        }
        if (x === 0) {
          this.record({ type: 'out-of-memory', op: `malloc(${target.size})`, message: 'returned 0 while hunting a use-after-free victim' })
          this.abortNow()
        }
        this.serial++
        this.huntMallocs++
        this.raiseHighWater(x, target.size)
        extra.push(x)
        const v = pending.get(x)
        if (v !== undefined) {
          c.missed++
          this.record({ type: 'missed', fault: 'use-after-free', op: v.op, ptr: v.p, message: 'malloc handed the written block out without an error' })
          pending.delete(x)
        }
      }
      if (pending.has(target.p)) {
        c.missed++
        this.record({ type: 'missed', fault: 'use-after-free', op: target.op, ptr: target.p, message: `no error after ${max} mallocs of its size class` })
        this.u8[target.p + target.off] = DEBUG_BYTE_DEAD // repair, so that the arena checks clean
        pending.delete(target.p)
      }
    }
  }

  /** A valid free of a block the fuzzer made for a fault (no pattern). */
  private plainFree(p: number): void {
    this.valid(`free(${hex(p)})`, p, () => this.heap.free(p))
    this.frees++
    this.ops++
  }

  /**
   * Runs a call that must throw the kind's error. Counts it; returns true if
   * the call was accepted (a miss).
   */
  private expectFault(kind: FaultKind, op: string, ptr: number, call: () => unknown, parts: string[]): boolean {
    const c = this.counts[kind]
    c.injected++
    try {
      call()
    } catch (e) {
      this.judge(kind, op, ptr, e, parts)
      return false
    }
    c.missed++
    this.record({ type: 'missed', fault: kind, op, message: 'the call was accepted', ptr })
    return true
  }

  /** Counts a rejection as detected, wrong class or bad report. */
  private judge(kind: FaultKind, op: string, ptr: number, e: unknown, parts: string[]): void {
    const c: KindCounts = this.counts[kind]
    const want = EXPECTED[kind]
    if (!(e instanceof AllocatorError) || !(e instanceof ERROR_CLASSES[want.name]) || e.code !== want.code) {
      c.wrongClass++
      // release mode reports a double free whose first free retired the page as an invalid pointer: counted, not listed
      if (this.debug || kind !== 'double-free-immediate' || !(e instanceof InvalidPointerError)) {
        this.record({ type: 'wrong-class', fault: kind, op, message: `expected ${want.name} (${want.code}), got ${describeError(e)}`, ptr })
      }
      return
    }
    const bad: string[] = []
    if (!Object.is(e.ptr, ptr)) bad.push(`.ptr is ${String(e.ptr)}, not ${String(ptr)}`)
    for (const part of parts) if (!e.message.includes(part)) bad.push(`the message lacks "${part}"`)
    if (bad.length > 0) {
      c.badReport++
      this.record({ type: 'bad-report', fault: kind, op, message: `${bad.join('; ')} — ${e.name}: ${e.message}`, ptr })
      return
    }
    c.detected++
  }

  /* ----- Helpers ------------------------------------------------------------------------- */

  /** Runs a valid operation: any error is a false alarm (and stops the run: the state is unknown). */
  private valid<T>(op: string, ptr: number | undefined, call: () => T): T {
    try {
      return call()
    } catch (e) {
      this.falseAlarm(op, ptr, e)
    }
  }

  private falseAlarm(op: string, ptr: number | undefined, e: unknown): never {
    if (e instanceof Aborted) throw e
    this.falseAlarms++
    this.record({ type: 'false-alarm', op, message: `a valid operation was rejected: ${describeError(e)}`, ptr })
    this.abortNow()
  }

  /** Verifies a live block's pattern (a mismatch stops the run). */
  private verify(b: Blk, op: string): void {
    const bad = checkPattern(this.u8, b.p, b.n, b.tag)
    if (bad < 0) return
    this.dataErrors++
    this.record({
      type: 'data', op, ptr: b.p,
      message: `live block ${hex(b.p)} (${b.n} bytes, serial ${b.serial} of heap ${b.heap}): byte +${bad} is 0x${this.u8[b.p + bad].toString(16)}, ` +
        `expected 0x${((b.tag + Math.imul(bad, 157) + (bad >>> 8)) & 0xff).toString(16)}`,
    })
    this.abortNow()
  }

  private removeLive(i: number): void {
    const live = this.live
    this.liveBytes -= live[i].n
    live[i] = live[live.length - 1]
    live.pop()
  }

  /** Page descriptor (word offset) of the page holding `p`. */
  private pageOf(p: number): number {
    const sw = segWord(p >>> SEGMENT_SHIFT)
    return pageDesc(sw, ((p - DEBUG_HEADER) & SEGMENT_MASK) >>> this.i32[sw + SEG_PAGE_SHIFT])
  }

  /** Publishes the highest segment a block of ours reached (for the never-claimed-segment fault). */
  private raiseHighWater(p: number, n: number): void {
    const seg = (p + n + DEBUG_REAR_MIN) >>> SEGMENT_SHIFT
    if (seg <= this.highWater) return
    this.highWater = seg
    let cur = Atomics.load(this.ctl, CTL_HIGH_WATER)
    while (cur < seg) {
      const prev = Atomics.compareExchange(this.ctl, CTL_HIGH_WATER, cur, seg)
      if (prev === cur) break
      cur = prev
    }
  }

  private setLine(field: number, v: number): void {
    Atomics.store(this.ctl, this.layout.line(this.w, field), v)
  }

  private record(f: Omit<FuzzFailure, 'worker' | 'round'> & { round?: number }): void {
    if (this.failures.length >= MAX_FAILURES) { this.failuresDropped++; return }
    this.failures.push({ worker: this.w, round: this.round, ...f })
  }

  /** Stops the whole run: the arena can no longer be trusted. */
  private abortNow(): never {
    raiseAbort(this.ctl)
    throw new Aborted()
  }

  private report(): WorkerReport {
    return {
      worker: this.w,
      rounds: Math.max(0, this.round),
      counts: this.counts,
      failures: this.failures,
      failuresDropped: this.failuresDropped,
      falseAlarms: this.falseAlarms,
      dataErrors: this.dataErrors,
      ops: this.ops,
      mallocs: this.mallocs,
      frees: this.frees,
      crossFrees: this.crossFrees,
      reallocs: this.reallocs,
      handOffs: this.handOffs,
      huntMallocs: this.huntMallocs,
      aborted: this.aborted || Atomics.load(this.ctl, CTL_ABORT) !== 0,
    }
  }
}

/** "Name: message" of anything thrown. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}${e instanceof AllocatorError ? ` (${e.code})` : ''}: ${e.message}`
  return String(e)
}
