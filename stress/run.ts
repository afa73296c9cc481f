/* ----------------------------------------------------------------------------
  run.ts — the stress harness as a function: `runStress(options)` runs the
  allocation patterns of workers/patterns.ts across N workers of a piscina
  pool that share one arena, checks the arena after each pattern and returns
  a StressReport. Used by the CLI (stress/stress.ts), the tests and the
  benchmarks.

  Per pattern:
    1. a fresh arena (so peaks and counters are per pattern), a control
       buffer, a main-thread heap, and a pool of N workers, warmed up until
       all N run (the warm-up is not timed);
    2. rounds: one piscina task per logical thread 0 … N-1 runs the rounds
       (each round a fresh heap, released at its end); the tasks meet at a
       barrier after each round, where the last to arrive does mimalloc's
       main-thread part (free half the transfer array) — no round trip
       through the main thread, whose wake-ups cost ~0.5 ms a round on this
       VM. `recreate` runs one round per task and replaces the pool before
       every round. Rounds continue until `iterations` rounds or `seconds`
       seconds, whichever comes first;
    3. the pool is destroyed, the main thread frees everything left in shared
       memory (verifying each block), `collect(true)`, and requires:
       `arena.check()` passes, zero live blocks, every segment back, nothing
       abandoned, no heap left but the main thread's.

  While rounds run, the main thread samples `arena.stats()` every 5 ms for
  the peak live bytes and segments; the arena keeps exact high-water marks
  too (`peakSegmentsInUse`, and `peakLiveBytes` raised by every stats() call,
  including the one each mimalloc-stress task makes at its high point).
---------------------------------------------------------------------------- */


import { tsxPoolExecArgv } from '../workers/spawn.js'
import { Piscina } from 'piscina'
import { Arena, type ArenaStats, type Heap } from '../src/index.js'
import {
  CtlLayout, Ctx, PATTERNS, createCtl, describeFailure, freeLanes, freeRings, freeTransfers,
  CTL_ROUNDS_DONE, CTL_STOP, raiseAbort, resetRings, resetTasks, taskOps, toFailure,
  type Failure, type PatternName, type StressTask, type TaskResult,
} from '../workers/patterns.js'

export { PATTERNS, describeFailure, type Failure, type PatternName }

/* ----- Options ------------------------------------------------------------------------ */

export interface StressOptions {
  /** Logical threads per round = pool size (default 2). */
  workers?: number
  /** Run each pattern for about this many seconds (default 5 when `iterations` is not given). */
  seconds?: number
  /** Run each pattern for this many rounds. */
  iterations?: number
  /** Work per task (default 50): mimalloc-stress allocates 100·scale·(tid % 8 + 1) blocks. */
  scale?: number
  /** Arena bytes (default 256 MiB). */
  arenaSize?: number
  /** Seed of every random choice (default: random). */
  seed?: number
  /** Arena in debug mode (guards, fills, exact double-free detection). */
  debug?: boolean
  /** mimalloc-stress: also 0.1% blocks 1000× and 0.01% 10000× larger. */
  large?: boolean
  /** Replace the pool's workers before every round. */
  recreate?: boolean
  /** Patterns to run, in order (default: all). */
  patterns?: readonly PatternName[]
  /** Also run arena.check() between rounds, every this many rounds (default 0: never). */
  checkEvery?: number
  /** A round that takes longer than this is a hang (default 120 s). */
  roundTimeoutMs?: number
  /** Test only: the first task overwrites one word of a block it puts in the transfer array. */
  injectCorruption?: boolean
  /** Called about every 100 ms while a pattern runs, and once when it ends. */
  onProgress?: (p: StressProgress) => void
  /** Called with each pattern's fresh arena before its first round (diagnostics: sample it while the pattern runs). */
  onArena?: (arena: Arena, pattern: PatternName) => void
}

export interface ResolvedStressOptions {
  workers: number
  seconds: number | undefined
  iterations: number | undefined
  scale: number
  arenaSize: number
  seed: number
  debug: boolean
  large: boolean
  recreate: boolean
  patterns: PatternName[]
  checkEvery: number
  roundTimeoutMs: number
  injectCorruption: boolean
}

export const DEFAULTS = {
  workers: 2,
  seconds: 5,
  scale: 50,
  arenaSize: 256 * 1024 * 1024,
  roundTimeoutMs: 120_000,
} as const

/** Largest arena: offsets are 32-bit. */
const MAX_ARENA_SIZE = 4 * 1024 * 1024 * 1024

/** Invalid options (the CLI exits with code 2). */
export class StressUsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StressUsageError'
  }
}

/** Options with defaults filled in; invalid values → StressUsageError. */
export function resolveOptions(o: StressOptions = {}): ResolvedStressOptions {
  const int = (name: string, v: number | undefined, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new StressUsageError(`${name} (--${name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}) must be an integer in ${min}..${max}, got ${String(v)}`)
    }
    return v
  }
  const workers = int('workers', o.workers, 1, 1000) ?? DEFAULTS.workers
  const iterations = int('iterations', o.iterations, 1, Number.MAX_SAFE_INTEGER)
  let seconds = o.seconds
  if (seconds !== undefined && !(typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0)) {
    throw new StressUsageError(`seconds (--seconds) must be a positive number, got ${String(seconds)}`)
  }
  if (seconds === undefined && iterations === undefined) seconds = DEFAULTS.seconds
  const patterns = [...(o.patterns ?? PATTERNS)]
  for (const p of patterns) {
    if (!(PATTERNS as readonly string[]).includes(p)) throw new StressUsageError(`unknown pattern '${String(p)}' (known: ${PATTERNS.join(', ')})`)
  }
  if (patterns.length === 0) throw new StressUsageError('no pattern to run')
  return {
    workers,
    seconds,
    iterations,
    scale: int('scale', o.scale, 1, 100_000) ?? DEFAULTS.scale,
    arenaSize: int('arenaSize', o.arenaSize, 4 << 20, MAX_ARENA_SIZE) ?? DEFAULTS.arenaSize,
    seed: int('seed', o.seed, 0, 0xffffffff) ?? randomSeed(),
    debug: o.debug ?? false,
    large: o.large ?? false,
    recreate: o.recreate ?? false,
    patterns,
    checkEvery: int('checkEvery', o.checkEvery, 0, Number.MAX_SAFE_INTEGER) ?? 0,
    roundTimeoutMs: int('roundTimeoutMs', o.roundTimeoutMs, 1, 2 ** 31 - 1) ?? DEFAULTS.roundTimeoutMs,
    injectCorruption: o.injectCorruption ?? false,
  }
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]
}

/* ----- Reports ---------------------------------------------------------------------- */

export interface StressProgress {
  pattern: PatternName
  patternIndex: number
  patternCount: number
  /** 0 … 1 of this pattern's budget (rounds or seconds). */
  fraction: number
  rounds: number
  /** Worker block mallocs + frees so far in this pattern. */
  ops: number
  elapsedMs: number
  liveBytes: number
  segmentsInUse: number
  done: boolean
}

export interface PatternReport {
  pattern: PatternName
  ok: boolean
  /** The first is the cause; later ones may be its consequences. */
  failures: Failure[]
  rounds: number
  /**
   * Time of the rounds (tasks plus the main thread's part between rounds), without the first pool
   * start-up and the final checks (with `recreate`, the pool restarts between rounds are included).
   */
  wallMs: number
  /** Pool start-up and warm-up (before the first round). */
  setupMs: number
  /** Final drain, collect and check. */
  checkMs: number
  /** Block mallocs + frees done by the workers. */
  ops: number
  opsPerSec: number
  opsPerSecPerWorker: number
  /** Distinct worker threads that ran tasks. */
  workerThreads: number
  /** Time spent inside tasks, per logical thread (tid), summed over the rounds. */
  taskMs: number[]
  /** Frees of blocks owned by another heap, counted by the allocator (main thread's between-round frees included). */
  crossThreadFrees: number
  abandonedSegments: number
  reclaimedSegments: number
  /** Peak segments in use × segment size (the arena's metadata segments included). */
  peakArenaBytes: number
  /** Bytes of the arena's metadata segments (part of peakArenaBytes). */
  metaBytes: number
  /** Peak bytes of live blocks (block sizes), as sampled by stats(). */
  peakLiveBytes: number
  /** peakArenaBytes / peakLiveBytes. */
  overhead: number
  /** Peak bytes of initialized blocks in pages in use (stats().pageBytes: free page slots excluded). */
  peakPageBytes: number
  /** peakPageBytes / peakLiveBytes: the page-level overhead (partly filled pages, size-class rounding). */
  pageOverhead: number
  /** The arena after the final drain and collect(true) (zeros and metaSegments when the pattern passed; heapsInUse: worker heaps). */
  end: { liveBlocks: number, liveBytes: number, segmentsInUse: number, metaSegments: number, abandonedNow: number, heapsInUse: number }
  /** Command that replays this pattern with the same seed and rounds. */
  replay: string
}

export interface StressReport {
  ok: boolean
  seed: number
  options: ResolvedStressOptions
  patterns: PatternReport[]
  wallMs: number
}

/** `npm run stress -- …` that replays `pattern` for `rounds` rounds with the same seed. */
export function replayCommand(o: ResolvedStressOptions, pattern: PatternName, rounds: number): string {
  const args = ['--pattern', pattern, '--workers', String(o.workers), '--scale', String(o.scale),
    '--iterations', String(Math.max(1, rounds)), '--seed', String(o.seed)]
  if (o.arenaSize !== DEFAULTS.arenaSize) args.push('--arena-size', String(o.arenaSize))
  if (o.large) args.push('--large')
  if (o.debug) args.push('--debug')
  if (o.recreate) args.push('--recreate')
  if (o.checkEvery > 0) args.push('--check-every', String(o.checkEvery))
  if (o.injectCorruption) args.push('--inject-corruption')
  return `npm run stress -- ${args.join(' ')}`
}

/* ----- The pool -------------------------------------------------------------------------- */

/** piscina's `filename` must be an absolute path or a file:// URL. */
const WORKER_FILE = new URL('../workers/stress-worker.ts', import.meta.url).href

function createPool(workers: number): Piscina<StressTask, TaskResult> {
  return new Piscina<StressTask, TaskResult>({
    filename: WORKER_FILE,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
    execArgv: tsxPoolExecArgv, // see workers/spawn.ts: ESM hooks only
  })
}

let nextArenaId = 1

/* ----- Running --------------------------------------------------------------------- */

/** Runs every selected pattern in turn; never throws for a failed pattern (see `ok`). Bad options → StressUsageError. */
export async function runStress(options: StressOptions = {}): Promise<StressReport> {
  const o = resolveOptions(options)
  if (o.debug) probeDebug(o.arenaSize)
  const t0 = performance.now()
  const patterns: PatternReport[] = []
  for (let i = 0; i < o.patterns.length; i++) {
    patterns.push(await runPattern(o, o.patterns[i], i, options))
  }
  return { ok: patterns.every((p) => p.ok), seed: o.seed, options: o, patterns, wallMs: performance.now() - t0 }
}

/** --debug needs an allocator that supports debug mode. */
function probeDebug(size: number): void {
  let a: Arena
  try {
    a = Arena.create({ size: Math.min(size, 8 << 20), debug: true })
  } catch (e) {
    throw new StressUsageError(`--debug: this build of sabmalloc does not support debug mode (${e instanceof Error ? e.message : String(e)})`)
  }
  if (!a.debug) throw new StressUsageError('--debug: this build of sabmalloc ignores the debug option')
}

/** State of one pattern run, shared by its steps. */
interface Run {
  o: ResolvedStressOptions
  pattern: PatternName
  arena: Arena
  arenaId: number
  ctlBuffer: SharedArrayBuffer
  ctl: Int32Array
  layout: CtlLayout
  main: Ctx
  mainHeap: Heap
  failures: Failure[]
  /** Worker threads seen (ids), to reclaim heaps of workers that died. */
  threads: Set<number>
  /** Task time per tid. */
  taskMs: number[]
  pool: Piscina<StressTask, TaskResult> | undefined
}

async function runPattern(
  o: ResolvedStressOptions, pattern: PatternName, index: number, { onProgress, onArena }: StressOptions,
): Promise<PatternReport> {
  const arena = Arena.create({ size: o.arenaSize, debug: o.debug, maxHeaps: Math.min(1024, Math.max(64, o.workers + 2)) })
  onArena?.(arena, pattern)
  const ctlBuffer = createCtl(o.workers)
  const mainHeap = arena.createHeap()
  const r: Run = {
    o, pattern, arena, arenaId: nextArenaId++, ctlBuffer, ctl: new Int32Array(ctlBuffer),
    layout: new CtlLayout(o.workers), mainHeap, failures: [], threads: new Set(), pool: undefined,
    taskMs: new Array<number>(o.workers).fill(0),
    // mimalloc's main thread seeds its own generator (srand); ours derives from the seed
    main: new Ctx(arena, mainHeap, ctlBuffer, {
      workers: o.workers, tid: -1, round: -1, seed: o.seed ^ 0x7feb352d, scale: o.scale, large: o.large,
      injectCorruption: false, where: 'main thread',
    }),
  }
  const segmentBytes = arena.stats().bytesInUse / arena.stats().segmentsInUse
  const metaBytes = arena.metaSegments * segmentBytes

  // sampling and progress
  let peakSegments = 0
  let peakLive = 0
  let peakPages = 0
  let opsDone = 0
  let rounds = 0
  let tRounds = 0
  let ticks = 0
  let live = { liveBytes: 0, segmentsInUse: 0 }
  const budget = (now: number): number => Math.min(1, Math.max(
    o.iterations !== undefined ? rounds / o.iterations : 0,
    o.seconds !== undefined && tRounds > 0 ? (now - tRounds) / (o.seconds * 1000) : 0,
  ))
  const progress = (done: boolean): void => {
    if (onProgress === undefined) return
    const now = performance.now()
    onProgress({
      pattern, patternIndex: index, patternCount: o.patterns.length, fraction: done ? 1 : budget(now), rounds,
      ops: opsDone + (done ? 0 : taskOps(r.ctl, r.layout)), elapsedMs: tRounds > 0 ? now - tRounds : 0,
      liveBytes: live.liveBytes, segmentsInUse: live.segmentsInUse, done,
    })
  }
  const sample = (): void => {
    rounds = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
    if (o.seconds !== undefined && tRounds > 0 && performance.now() - tRounds >= o.seconds * 1000) Atomics.store(r.ctl, CTL_STOP, 1)
    const s = arena.stats()
    live = s
    if (s.segmentsInUse > peakSegments) peakSegments = s.segmentsInUse
    if (s.liveBytes > peakLive) peakLive = s.liveBytes
    if (s.pageBytes > peakPages) peakPages = s.pageBytes
    if (++ticks % 20 === 0) progress(false)
  }

  const tSetup = performance.now()
  let setupMs = 0
  let wallMs = 0
  let timedOut = false
  const sampler = setInterval(sample, 5)
  try {
    await startPool(r)
    setupMs = performance.now() - tSetup
    tRounds = performance.now()
    while (r.failures.length === 0) {
      const round = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
      if (o.iterations !== undefined && round >= o.iterations) break
      if (o.seconds !== undefined && round > 0 && performance.now() - tRounds >= o.seconds * 1000) break
      if (o.recreate && round > 0) {
        await stopPool(r)
        await startPool(r)
        if (r.failures.length > 0) break
      }
      // without recreate, one run of tasks does every round (0: until CTL_STOP)
      const count = o.recreate ? 1 : o.iterations !== undefined ? o.iterations - round : 0
      const outcome = await runTasks(r, round, count)
      rounds = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
      if (outcome === 'timeout') { timedOut = true; break }
      opsDone += outcome
    }
    wallMs = performance.now() - tRounds
  } finally {
    clearInterval(sampler)
    await stopPool(r)
  }
  sample()
  const during = arena.stats()

  const tCheck = performance.now()
  const end = finalCheck(r, timedOut)
  const checkMs = performance.now() - tCheck
  peakSegments = Math.max(peakSegments, end.peakSegmentsInUse)
  peakLive = Math.max(peakLive, end.peakLiveBytes)
  peakPages = Math.max(peakPages, end.peakPageBytes)
  const peakArenaBytes = peakSegments * segmentBytes
  progress(true)
  const failedRound = r.failures.find((f) => f.round !== undefined)?.round
  return {
    pattern,
    ok: r.failures.length === 0,
    failures: r.failures,
    rounds,
    wallMs,
    setupMs,
    checkMs,
    ops: opsDone,
    opsPerSec: wallMs > 0 ? opsDone / (wallMs / 1000) : 0,
    opsPerSecPerWorker: wallMs > 0 ? opsDone / (wallMs / 1000) / o.workers : 0,
    workerThreads: r.threads.size,
    taskMs: r.taskMs,
    crossThreadFrees: during.crossThreadFrees,
    abandonedSegments: during.abandonedSegments,
    reclaimedSegments: during.reclaimedSegments,
    peakArenaBytes,
    metaBytes,
    peakLiveBytes: peakLive,
    overhead: peakLive > 0 ? peakArenaBytes / peakLive : 0,
    peakPageBytes: peakPages,
    pageOverhead: peakLive > 0 ? peakPages / peakLive : 0,
    end: {
      liveBlocks: end.liveBlocks, liveBytes: end.liveBytes, segmentsInUse: end.segmentsInUse,
      metaSegments: arena.metaSegments, abandonedNow: end.abandonedNow, heapsInUse: end.heapsInUse,
    },
    replay: replayCommand(o, pattern, failedRound !== undefined ? failedRound + 1 : rounds),
  }
}

/** A new pool, warmed up: N ping tasks that wait for each other, so all N workers run. */
async function startPool(r: Run): Promise<void> {
  const pool = createPool(r.o.workers)
  r.pool = pool
  pool.on('error', (e: unknown) => { r.failures.push(toFailure(e, 'piscina pool')) })
  resetTasks(r.ctl, r.layout)
  const results = await Promise.allSettled(Array.from({ length: r.o.workers }, (_, tid) => pool.run(task(r, 'ping', tid, 0, 0))))
  collect(r, results, false)
}

/**
 * Destroys the pool, then reclaims the heaps of any worker that exited
 * without releasing them (a crash, or a hung task terminated): explicit
 * rather than in an exit handler, so that a failure is reported, not thrown.
 */
async function stopPool(r: Run): Promise<void> {
  const pool = r.pool
  if (pool === undefined) return
  r.pool = undefined
  for (const w of pool.threads) r.threads.add(w.threadId)
  await pool.destroy()
  for (const thread of r.threads) {
    try {
      const ids = r.arena.reclaimThreadHeaps(thread)
      if (ids.length > 0) {
        r.failures.push({
          kind: 'heap-leak', where: `worker thread ${thread}`,
          message: `heap${ids.length > 1 ? 's' : ''} ${ids.join(', ')} still claimed after the worker exited (reclaimed)`,
        })
      }
    } catch (e) {
      r.failures.push(toFailure(e, `main thread, reclaiming the heaps of worker thread ${thread}`))
    }
  }
}

function task(r: Run, pattern: StressTask['pattern'], tid: number, round: number, rounds: number): StressTask {
  return {
    pattern, arenaId: r.arenaId, buffer: r.arena.buffer, ctl: r.ctlBuffer, workers: r.o.workers, tid, round, rounds,
    lastRound: r.o.iterations !== undefined ? r.o.iterations - 1 : -1, checkEvery: r.o.checkEvery,
    seed: r.o.seed, scale: r.o.scale, large: r.o.large, injectCorruption: r.o.injectCorruption && tid === 0,
  }
}

/**
 * Runs `count` rounds from `round` (0: until CTL_STOP), one task per logical
 * thread; returns the ops done, or 'timeout' when no round completed within
 * the round timeout (the tasks are then still running).
 */
async function runTasks(r: Run, round: number, count: number): Promise<number | 'timeout'> {
  const pool = r.pool!
  resetTasks(r.ctl, r.layout)
  if (r.pattern === 'producer-consumer') resetRings(r.ctl, r.layout)
  const all = Promise.allSettled(Array.from({ length: r.o.workers }, (_, tid) => pool.run(task(r, r.pattern, tid, round, count))))
  // watchdog: a round that does not complete within the timeout is a hang
  let watchdog: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    let done = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
    let since = performance.now()
    watchdog = setInterval(() => {
      const now = performance.now()
      const d = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
      if (d !== done) { done = d; since = now } else if (now - since > r.o.roundTimeoutMs) resolve('timeout')
    }, Math.min(100, r.o.roundTimeoutMs))
  })
  const results = await Promise.race([all, timeout])
  clearInterval(watchdog)
  if (results === 'timeout') {
    raiseAbort(r.ctl)
    const stuck = Atomics.load(r.ctl, CTL_ROUNDS_DONE)
    r.failures.push({
      kind: 'timeout', round: stuck, where: `round ${stuck}`,
      message: `round ${stuck} did not finish within ${r.o.roundTimeoutMs / 1000} s (a hang; tasks at ${taskOps(r.ctl, r.layout)} ops)`,
    })
    return 'timeout'
  }
  return collect(r, results)
}

/** Records the threads, ops, times and failures of a run of tasks; returns the ops. */
function collect(r: Run, results: PromiseSettledResult<TaskResult>[], timed = true): number {
  let ops = 0
  const round = Atomics.load(r.ctl, CTL_ROUNDS_DONE) // the round running when a task died
  results.forEach((res, tid) => {
    if (res.status === 'rejected') {
      r.failures.push(toFailure(res.reason, `worker ${tid}, round ${round} (the task threw)`, round))
      return
    }
    const t = res.value
    r.threads.add(t.threadId)
    ops += t.ops
    if (timed) r.taskMs[tid] += t.ms
    if (t.failure !== undefined) r.failures.push(t.failure)
  })
  return ops
}

/**
 * After the pool is gone: free everything left in shared memory (verified),
 * collect(true) on the main heap, then require a clean, empty arena.
 */
function finalCheck(r: Run, timedOut: boolean): ArenaStats {
  const { arena, mainHeap, failures } = r
  const after = (): string => (failures.length > 0 ? ' (after the failure above)' : '')
  const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`
  if (timedOut) {
    failures.push({ kind: 'check-failed', message: 'final checks skipped: workers were terminated in the middle of a round' })
    return arena.stats()
  }
  r.main.where = 'main thread, freeing the blocks left in shared memory'
  r.main.round = -1
  try {
    freeTransfers(r.main, true)
    freeLanes(r.main)
    freeRings(r.main)
  } catch (e) {
    failures.push(toFailure(e, 'main thread, freeing the blocks left in shared memory'))
  }
  try {
    mainHeap.collect(true)
    const c = arena.check()
    if (c.liveBlocks !== 0 || c.liveBytes !== 0) {
      failures.push({ kind: 'lost-blocks', message: `${plural(c.liveBlocks, 'block')} (${c.liveBytes} bytes) still live after every block was freed${after()}` })
    }
    if (c.segmentsInUse !== arena.metaSegments) {
      failures.push({ kind: 'lost-blocks', message: `${plural(c.segmentsInUse - arena.metaSegments, 'segment')} still in use after collect(true)${after()}` })
    }
    const s = arena.stats()
    if (s.abandonedNow !== 0) failures.push({ kind: 'abandoned', message: `${plural(s.abandonedNow, 'segment')} still abandoned after collect(true)${after()}` })
    if (s.heapsInUse !== 1) failures.push({ kind: 'heap-leak', message: `${plural(s.heapsInUse - 1, 'worker heap')} still claimed at the end${after()}` })
    mainHeap.release()
    return { ...s, heapsInUse: s.heapsInUse - 1 }
  } catch (e) {
    const f = toFailure(e, 'main thread, final check')
    failures.push(f.kind === 'allocator-error' ? { ...f, kind: 'check-failed' } : f)
    return arena.stats()
  }
}
