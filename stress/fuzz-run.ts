/* ----------------------------------------------------------------------------
  fuzz-run.ts — the misuse fuzzer's core, used by `npm run fuzz`
  (stress/fuzz.ts) and by test/fuzz.test.ts: `runFuzz(options)` creates an
  arena (debug mode unless `release`), starts one worker per `workers`
  (workers/fuzz-worker.ts), lets them run lockstep rounds of random
  operations with injected faults (workers/fuzz-engine.ts), then checks the
  arena with every worker idle, lets the workers release their heaps, checks
  again and resolves with a FuzzReport. Every worker is terminated before it
  resolves, whatever happened.

  A run is replayable: each worker draws from its own generator seeded from
  (seed, worker), and decisions never depend on pointer values or timing, so
  the same seed, worker count and round count inject the same faults
  (`report.replay` is the command line).
---------------------------------------------------------------------------- */

import { fileURLToPath } from 'node:url'
import type { Worker } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import type { CheckResult } from '../src/check.js'
import { MAX_ARENA_SIZE, SEGMENT_SIZE } from '../src/layout.js'
import {
  CTL_ABORT, CTL_CHECKS, CTL_DONE, CTL_UAF_CHECKS, CTL_RELEASE, CTL_ROUND, CTL_STOP_REQUEST, CtlLayout, DEBUG_KINDS,
  MULTI_WORKER_KINDS, PHASE_NAMES, RELEASE_KINDS, W_OPS, W_PHASE, W_ROUND, createCtl, emptyCounts, raiseAbort,
  type FaultKind, type FuzzFailure, type FuzzTallies, type FuzzWorkerData, type KindCounts, type WorkerReport,
} from '../workers/fuzz-common.js'
import { spawnTsWorker as spawnFuzzWorker } from '../workers/spawn.js'

export { DEBUG_KINDS, RELEASE_KINDS, type FaultKind, type FuzzFailure, type KindCounts }

const WORKER_FILE = fileURLToPath(new URL('../workers/fuzz-worker.ts', import.meta.url))

export interface FuzzOptions {
  /** Worker threads (default 4). */
  workers?: number
  /** Seed of every random choice (default: random). */
  seed?: number
  /** Run about this long (default 10 s when `rounds` is not given). */
  seconds?: number
  /** Run exactly this many rounds (with `seconds`: whichever comes first). */
  rounds?: number
  /** Faults per operation (default 0.05). */
  rate?: number
  /** Release mode: inject only what release mode promises to catch. */
  release?: boolean
  /** Fault kinds to inject (default: all of the mode's). */
  kinds?: FaultKind[]
  /** Operations per worker per round (default 200). */
  opsPerRound?: number
  /** Mid-run arena.check() at a round boundary at most this often (default 1000 ms; 0: never). */
  checkEveryMs?: number
  /** Arena bytes (default 64 MiB + 48 MiB per worker). */
  arenaSize?: number
  /** No progress for this long is a hang (default 60 s). */
  hangMs?: number
  /** Called about every `progressMs` (default 250 ms). */
  onProgress?: (p: FuzzProgress) => void
  progressMs?: number
  /** Aborting it asks the workers to stop at the next round boundary (the run then ends normally). */
  signal?: AbortSignal
}

export interface ResolvedFuzzOptions {
  workers: number
  seed: number
  seconds: number | undefined
  rounds: number | undefined
  rate: number
  release: boolean
  kinds: FaultKind[]
  opsPerRound: number
  checkEveryMs: number
  arenaSize: number
  hangMs: number
}

export interface FuzzProgress {
  elapsedMs: number
  rounds: number
  ops: number
}

/** The run: the workers' tallies summed (failures in round order, capped per worker). */
export interface FuzzReport extends FuzzTallies {
  options: ResolvedFuzzOptions
  rounds: number
  wallMs: number
  /** Per kind, summed over the workers (only the kinds of `options.kinds`). */
  counts: Partial<Record<FaultKind, KindCounts>>
  /** Mid-run arena.check() calls that passed. */
  midRunChecks: number
  /** Mid-run arena.check() calls made while use-after-free victims sat free: each reported one, as it must. */
  uafChecks: number
  /** arena.check() with every worker idle and every block freed. */
  finalCheck: CheckResult | null
  /** arena.check() after every worker released its heap. */
  releasedCheck: CheckResult | null
  /** Release mode: share of immediate double frees reported as DoubleFreeError. */
  doubleFreeRate: number | undefined
  ok: boolean
  /** Why not ok, in words. */
  problems: string[]
  /** The command line that replays this run (up to the first failure's round). */
  replay: string
}

export class FuzzUsageError extends RangeError {}

export const FUZZ_DEFAULTS = { workers: 4, seconds: 10, rate: 0.05, opsPerRound: 200, checkEveryMs: 1000, hangMs: 60_000 }
/** Release mode must report at least this share of immediate double frees as DoubleFreeError. */
export const RELEASE_DOUBLE_FREE_RATE = 0.95
const MAX_WORKERS = 32

function positiveInt(name: string, v: number | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined
  if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new FuzzUsageError(`${name} must be an integer in 1..${max}, got ${String(v)}`)
  return v
}

export function resolveFuzzOptions(o: FuzzOptions = {}): ResolvedFuzzOptions {
  const workers = positiveInt('workers', o.workers, MAX_WORKERS) ?? FUZZ_DEFAULTS.workers
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32)
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new FuzzUsageError(`seed must be an integer in 0..2^32-1, got ${String(seed)}`)
  if (o.seconds !== undefined && !(Number.isFinite(o.seconds) && o.seconds > 0)) throw new FuzzUsageError(`seconds must be a positive number, got ${String(o.seconds)}`)
  const rounds = positiveInt('rounds', o.rounds)
  const seconds = o.seconds ?? (rounds === undefined ? FUZZ_DEFAULTS.seconds : undefined)
  const rate = o.rate ?? FUZZ_DEFAULTS.rate
  if (!(rate >= 0 && rate <= 1)) throw new FuzzUsageError(`rate must be a number in 0..1, got ${String(rate)}`)
  const release = o.release ?? false
  const allowed: readonly FaultKind[] = release ? RELEASE_KINDS : DEBUG_KINDS
  const kinds = o.kinds ?? [...allowed]
  for (const k of kinds) {
    if (!allowed.includes(k)) {
      throw new FuzzUsageError(`fault kind '${k}' is not one ${release ? 'release' : 'debug'} mode injects (${allowed.join(', ')})`)
    }
  }
  const opsPerRound = positiveInt('opsPerRound', o.opsPerRound, 1_000_000) ?? FUZZ_DEFAULTS.opsPerRound
  const checkEveryMs = o.checkEveryMs ?? FUZZ_DEFAULTS.checkEveryMs
  if (!(checkEveryMs >= 0)) throw new FuzzUsageError(`checkEveryMs must be ≥ 0, got ${String(checkEveryMs)}`)
  const arenaSize = o.arenaSize ?? Math.min(MAX_ARENA_SIZE, (64 + 48 * workers) * 1024 * 1024)
  if (!Number.isSafeInteger(arenaSize) || arenaSize < 16 * SEGMENT_SIZE || arenaSize > MAX_ARENA_SIZE || arenaSize % SEGMENT_SIZE !== 0) {
    throw new FuzzUsageError(`arenaSize must be a multiple of the ${SEGMENT_SIZE >>> 10} KiB segment size in ${(16 * SEGMENT_SIZE) >>> 20} MiB..4 GiB, got ${String(arenaSize)}`)
  }
  const hangMs = o.hangMs ?? FUZZ_DEFAULTS.hangMs
  return { workers, seed, seconds, rounds, rate, release, kinds: [...new Set(kinds)], opsPerRound, checkEveryMs, arenaSize, hangMs }
}

/** The command line that runs `o` for `rounds` rounds. */
export function replayCommand(o: ResolvedFuzzOptions, rounds: number): string {
  const args = [`--workers ${o.workers}`, `--seed ${o.seed}`, `--rounds ${rounds}`]
  if (o.rate !== FUZZ_DEFAULTS.rate) args.push(`--rate ${o.rate}`)
  if (o.release) args.push('--release')
  const all = o.release ? RELEASE_KINDS : DEBUG_KINDS
  if (o.kinds.length !== all.length) args.push(`--kinds ${o.kinds.join(',')}`)
  if (o.opsPerRound !== FUZZ_DEFAULTS.opsPerRound) args.push(`--ops-per-round ${o.opsPerRound}`)
  return `npm run fuzz -- ${args.join(' ')}`
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface WorkerState {
  worker: Worker
  report?: WorkerReport
  released: boolean
  exited: boolean
}

/** Runs the fuzzer; never rejects for what the allocator does (that is in the report), only for bad options. */
export async function runFuzz(options: FuzzOptions = {}): Promise<FuzzReport> {
  const o = resolveFuzzOptions(options)
  const arena = Arena.create({ size: o.arenaSize, debug: !o.release })
  const ctlBuffer = createCtl(o.workers)
  const ctl = new Int32Array(ctlBuffer)
  const layout = new CtlLayout(o.workers)
  const mainFailures: FuzzFailure[] = []
  const fail = (f: Omit<FuzzFailure, 'worker' | 'round'>): void => { mainFailures.push({ worker: -1, round: -1, ...f }) }
  const start = Date.now()
  const states: WorkerState[] = []
  const onStop = (): void => { Atomics.store(ctl, CTL_STOP_REQUEST, 1) }
  options.signal?.addEventListener('abort', onStop)
  let finalCheck: CheckResult | null = null
  let releasedCheck: CheckResult | null = null

  try {
    for (let w = 0; w < o.workers; w++) {
      const data: FuzzWorkerData = {
        buffer: arena.buffer, ctl: ctlBuffer, worker: w, workers: o.workers, seed: o.seed, rate: o.rate,
        kinds: o.kinds, release: o.release, opsPerRound: o.opsPerRound,
        deadline: o.seconds !== undefined ? start + o.seconds * 1000 : 0, maxRounds: o.rounds ?? 0,
        checkEveryMs: o.checkEveryMs,
      }
      const st: WorkerState = { worker: spawnFuzzWorker(WORKER_FILE, { workerData: data }), released: false, exited: false }
      st.worker.on('message', (m: { type: string, report?: WorkerReport, message?: string }) => {
        if (m.type === 'report') st.report = m.report
        else if (m.type === 'released') st.released = true
        else if (m.type === 'release-failed') fail({ type: 'crash', op: `worker ${w}: heap.release()`, message: m.message ?? '' })
      })
      st.worker.on('error', (e) => {
        fail({ type: 'crash', op: `worker ${w}`, message: e.stack ?? String(e) })
        raiseAbort(ctl)
      })
      st.worker.on('exit', (code) => {
        st.exited = true
        if (st.report === undefined) {
          fail({ type: 'crash', op: `worker ${w}`, message: `exited with code ${code} before reporting` })
          raiseAbort(ctl)
        }
      })
      states.push(st)
    }

    // wait for every report, with progress and a hang watchdog
    let lastSig = -1
    let lastChange = Date.now()
    let lastProgress = 0
    let abortSeen = 0
    while (!states.every((s) => s.report !== undefined || s.exited)) {
      await sleep(20)
      const now = Date.now()
      let ops = 0
      for (let w = 0; w < o.workers; w++) ops += Atomics.load(ctl, layout.line(w, W_OPS))
      const rounds = Atomics.load(ctl, CTL_ROUND)
      const sig = ops + rounds * 7919 + Atomics.load(ctl, CTL_DONE)
      if (sig !== lastSig) { lastSig = sig; lastChange = now }
      if (options.onProgress !== undefined && now - lastProgress >= (options.progressMs ?? 250)) {
        lastProgress = now
        options.onProgress({ elapsedMs: now - start, rounds, ops })
      }
      if (Atomics.load(ctl, CTL_ABORT) !== 0) {
        if (abortSeen === 0) abortSeen = now
        else if (now - abortSeen > 10_000) break // a worker does not react (stuck in the allocator): terminate below
      } else if (now - lastChange > o.hangMs) {
        const phases = Array.from({ length: o.workers }, (_, w) =>
          `worker ${w}: round ${Atomics.load(ctl, layout.line(w, W_ROUND))}, phase ${PHASE_NAMES[Atomics.load(ctl, layout.line(w, W_PHASE))] ?? '?'}`)
        fail({ type: 'hang', op: 'watchdog', message: `no progress for ${o.hangMs} ms: ${phases.join('; ')}` })
        raiseAbort(ctl)
      }
    }

    const reports = states.map((s) => s.report).filter((r): r is WorkerReport => r !== undefined)
    const aborted = Atomics.load(ctl, CTL_ABORT) !== 0 || reports.length < o.workers || reports.some((r) => r.aborted)
    if (!aborted) {
      // every worker is idle, every block freed
      try {
        finalCheck = arena.check()
        if (finalCheck.liveBlocks !== 0) fail({ type: 'leak', op: 'arena.check() at the end', message: `${finalCheck.liveBlocks} blocks (${finalCheck.liveBytes} bytes) are still live after every block was freed` })
      } catch (e) {
        fail({ type: 'check', op: 'arena.check() at the end', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })
      }
      Atomics.store(ctl, CTL_RELEASE, 1)
      Atomics.notify(ctl, CTL_RELEASE)
      const deadline = Date.now() + 20_000
      while (!states.every((s) => s.exited) && Date.now() < deadline) await sleep(10)
      if (!states.every((s) => s.released)) fail({ type: 'crash', op: 'heap.release()', message: 'not every worker released its heap' })
      try {
        releasedCheck = arena.check()
        if (releasedCheck.liveBlocks !== 0) fail({ type: 'leak', op: 'arena.check() after release', message: `${releasedCheck.liveBlocks} blocks still live` })
      } catch (e) {
        fail({ type: 'check', op: 'arena.check() after release', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })
      }
    }
    return summarize(o, reports, mainFailures, Date.now() - start, Atomics.load(ctl, CTL_ROUND), Atomics.load(ctl, CTL_CHECKS), Atomics.load(ctl, CTL_UAF_CHECKS), finalCheck, releasedCheck)
  } finally {
    options.signal?.removeEventListener('abort', onStop)
    raiseAbort(ctl) // wakes any worker still waiting
    await Promise.all(states.map((s) => (s.exited ? undefined : s.worker.terminate())))
  }
}

function summarize(o: ResolvedFuzzOptions, reports: WorkerReport[], mainFailures: FuzzFailure[], wallMs: number, rounds: number,
  midRunChecks: number, uafChecks: number, finalCheck: CheckResult | null, releasedCheck: CheckResult | null): FuzzReport {
  const all = emptyCounts()
  const sum = (f: (r: WorkerReport) => number): number => reports.reduce((a, r) => a + f(r), 0)
  for (const r of reports) {
    for (const k of DEBUG_KINDS) {
      const a = all[k]
      const b = r.counts[k]
      a.injected += b.injected; a.detected += b.detected; a.missed += b.missed
      a.wrongClass += b.wrongClass; a.badReport += b.badReport; a.skipped += b.skipped
    }
  }
  const counts: Partial<Record<FaultKind, KindCounts>> = {}
  for (const k of o.kinds) if (o.workers > 1 || !MULTI_WORKER_KINDS.includes(k)) counts[k] = all[k]
  const failures = [...reports.flatMap((r) => r.failures), ...mainFailures].sort((a, b) => a.round - b.round || a.worker - b.worker)
  const falseAlarms = sum((r) => r.falseAlarms)
  const dataErrors = sum((r) => r.dataErrors)

  const problems: string[] = []
  let doubleFreeRate: number | undefined
  for (const [k, c] of Object.entries(counts) as Array<[FaultKind, KindCounts]>) {
    if (o.release && k === 'double-free-immediate') {
      doubleFreeRate = c.injected === 0 ? undefined : c.detected / c.injected
      if (c.missed > 0) problems.push(`${k}: ${c.missed} accepted`)
      // an invalid-pointer report is expected now and then (the first free retired the page) and not listed; anything else is
      const odd = failures.filter((f) => f.fault === k && f.type === 'wrong-class').length + c.badReport
      if (odd > 0) problems.push(`${k}: ${odd} rejected with an error other than DoubleFreeError or InvalidPointerError, or a wrong report`)
      if (doubleFreeRate !== undefined && doubleFreeRate < RELEASE_DOUBLE_FREE_RATE) {
        problems.push(`${k}: only ${(doubleFreeRate * 100).toFixed(1)}% reported as DoubleFreeError (≥ ${RELEASE_DOUBLE_FREE_RATE * 100}% required)`)
      }
      continue
    }
    if (c.missed > 0) problems.push(`${k}: ${c.missed} missed`)
    if (c.wrongClass > 0) problems.push(`${k}: ${c.wrongClass} reported with the wrong class`)
    if (c.badReport > 0) problems.push(`${k}: ${c.badReport} reported with a wrong pointer or message`)
  }
  if (falseAlarms > 0) problems.push(`${falseAlarms} false alarm(s)`)
  if (dataErrors > 0) problems.push(`${dataErrors} live block(s) with damaged contents`)
  for (const t of ['check', 'leak', 'crash', 'hang', 'out-of-memory'] as const) {
    const n = failures.filter((f) => f.type === t).length
    if (n > 0) problems.push(`${n} ${t} failure(s)`)
  }
  if (reports.length < o.workers) problems.push(`${o.workers - reports.length} worker(s) did not report`)
  if (problems.length === 0 && (finalCheck === null || releasedCheck === null)) problems.push('the final checks did not run')

  const firstBad = failures.find((f) => f.round >= 0 && !(o.release && f.fault === 'double-free-immediate' && f.type === 'wrong-class'))
  const replayRounds = firstBad !== undefined ? firstBad.round + 1 : Math.max(1, rounds)
  return {
    options: o,
    rounds,
    wallMs,
    counts,
    falseAlarms,
    dataErrors,
    failures,
    failuresDropped: sum((r) => r.failuresDropped),
    ops: sum((r) => r.ops),
    mallocs: sum((r) => r.mallocs),
    frees: sum((r) => r.frees),
    crossFrees: sum((r) => r.crossFrees),
    reallocs: sum((r) => r.reallocs),
    handOffs: sum((r) => r.handOffs),
    huntMallocs: sum((r) => r.huntMallocs),
    midRunChecks,
    uafChecks,
    finalCheck,
    releasedCheck,
    doubleFreeRate,
    ok: problems.length === 0,
    problems,
    replay: replayCommand(o, replayRounds),
  }
}
