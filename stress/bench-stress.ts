/* ----------------------------------------------------------------------------
  bench-stress.ts — workload 5 of the benchmark: mimalloc's `test-stress`
  pattern (`test-stress 2 50 500`: 2 threads, scale 50, 500 rounds) through
  the stress harness's `runStress` (stress/run.ts), timed, with the memory
  overhead it reports (peak arena bytes in use / peak live bytes).

  The harness is loaded dynamically: if it is missing or has no `runStress`,
  the row reads "n/a (harness not available)" instead of failing the bench.
---------------------------------------------------------------------------- */

import { summarize } from './bench-common.js'
import type { StressResult } from './bench-report.js'
import { formatBytes } from './format.js'

export interface StressBenchOptions {
  runs: number
  quick: boolean
  log?: (line: string) => void
}

/** The parts of the harness's API (stress/run.ts) used here. */
interface StressPatternReport {
  ok: boolean
  failures: { message?: string }[]
  rounds: number
  wallMs: number
  setupMs: number
  peakArenaBytes: number
  /** bytes of the arena's metadata segments, part of peakArenaBytes (newer harness versions) */
  metaBytes?: number
  peakLiveBytes: number
  overhead: number
  /** peak page bytes / peak live bytes (newer harness versions) */
  pageOverhead?: number
  replay: string
}
interface StressApi {
  runStress(o: { workers: number, scale: number, iterations: number, patterns: string[], seed: number }): Promise<{ ok: boolean, patterns: StressPatternReport[] }>
}

const WORKERS = 2
const SCALE = 50
const ROUNDS = 500
const QUICK_ROUNDS = 50
/** Runs of this workload: at most this many (each is seconds long). */
const MAX_RUNS = 3
const SEED = 0x5eed

async function loadHarness(): Promise<StressApi | string> {
  const spec = './run.js' // not a literal import: the bench must build without the harness
  try {
    const m = (await import(spec)) as Partial<StressApi>
    if (typeof m.runStress !== 'function') return 'stress/run.ts exports no runStress'
    return m as StressApi
  } catch (e) {
    return `stress/run.ts could not be loaded (${(e as Error).message.split('\n')[0]})`
  }
}

export async function benchStress(o: StressBenchOptions, problems: string[]): Promise<StressResult> {
  const rounds = o.quick ? QUICK_ROUNDS : ROUNDS
  const runs = o.quick ? 1 : Math.min(o.runs, MAX_RUNS)
  const label = `${WORKERS} workers, scale ${SCALE}, ${rounds} rounds`
  const config = `${WORKERS} workers, scale ${SCALE}, ${rounds} rounds (\`npm run stress -- --pattern mimalloc-stress --workers ${WORKERS} --scale ${SCALE} --iterations ${rounds} --seed ${SEED}\`), ${runs} run${runs > 1 ? 's' : ''}`
  const api = await loadHarness()
  if (typeof api === 'string') {
    const note = `TODO: n/a (harness not available): ${api}.`
    o.log?.(`  ${note}`)
    return { wall: null, overhead: null, comparable: !o.quick, label, config, note }
  }
  const walls: number[] = []
  const overheads: number[] = []
  const pageOverheads: number[] = []
  const setups: number[] = []
  let last: StressPatternReport | undefined
  for (let i = 0; i < runs; i++) {
    const r = await api.runStress({ workers: WORKERS, scale: SCALE, iterations: rounds, patterns: ['mimalloc-stress'], seed: SEED })
    const p = r.patterns[0]
    last = p
    if (!r.ok || !p.ok) {
      problems.push(`mimalloc-stress failed: ${p.failures.map((f) => f.message).join('; ')} (replay: ${p.replay})`)
      break
    }
    walls.push(p.wallMs / 1000)
    overheads.push(p.overhead)
    if (typeof p.pageOverhead === 'number') pageOverheads.push(p.pageOverhead)
    setups.push(p.setupMs / 1000)
    o.log?.(`  run ${i + 1}: ${(p.wallMs / 1000).toFixed(2)} s (+ ${(p.setupMs / 1000).toFixed(2)} s pool start-up), overhead ${p.overhead.toFixed(2)}`)
  }
  if (walls.length === 0) return { wall: null, overhead: null, comparable: !o.quick, label, config, note: 'the stress run failed: see the correctness checks' }
  const wall = summarize(walls)
  const overhead = summarize(overheads).median
  const pageOverhead = pageOverheads.length > 0 ? summarize(pageOverheads).median : null
  const note = `Wall time = the ${rounds} rounds, without the pool's start-up (median ${summarize(setups).median.toFixed(2)} s) and the final checks. ` +
    `Memory overhead from the last run: peak ${(last!.peakArenaBytes / 2 ** 20).toFixed(1)} MiB of segments in use (arena metadata included${last!.metaBytes === undefined ? '' : `: ${formatBytes(last!.metaBytes)}`}) / ` +
    `peak ${(last!.peakLiveBytes / 2 ** 20).toFixed(1)} MiB live; the table shows the median over the runs. ` +
    `Runs of this workload: at most ${MAX_RUNS}.`
  o.log?.(`  wall ${wall.median.toFixed(2)} s for ${rounds} rounds (target ≤ ${(4 * 0.78).toFixed(2)} s for 500), overhead ${overhead.toFixed(2)} (target ≤ 1.3)`)
  return { wall, overhead, pageOverhead, comparable: !o.quick, label, config, note }
}
