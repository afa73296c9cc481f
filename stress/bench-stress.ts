/* ----------------------------------------------------------------------------
  bench-stress.ts — workload 5 of the benchmark: mimalloc's `test-stress`
  pattern (`test-stress 2 50 500`: 2 threads, scale 50, 500 rounds) through
  the stress harness's `runStress` (stress/run.ts), timed, with the memory
  overhead it reports (peak arena bytes in use / peak live bytes).

  Native mimalloc runs the same pattern between sabmalloc's runs when the
  machine can build it (bench-native.ts), so the two wall times come from
  the same minutes of this machine's swinging speed.
---------------------------------------------------------------------------- */

import { summarize } from './bench-common.js'
import { buildNativeStress } from './bench-native.js'
import type { StressResult } from './bench-report.js'
import { formatBytes } from './format.js'
import { runStress, type PatternReport } from './run.js'

export interface StressBenchOptions {
  runs: number
  quick: boolean
  log?: (line: string) => void
}

const WORKERS = 2
const SCALE = 50
const ROUNDS = 500
const QUICK_ROUNDS = 50
/** Runs of this workload: at most this many (each is seconds long). */
const MAX_RUNS = 3
const SEED = 0x5eed

export async function benchStress(o: StressBenchOptions, problems: string[]): Promise<StressResult> {
  const rounds = o.quick ? QUICK_ROUNDS : ROUNDS
  const runs = o.quick ? 1 : Math.min(o.runs, MAX_RUNS)
  const label = `${WORKERS} workers, scale ${SCALE}, ${rounds} rounds`
  const config = `${WORKERS} workers, scale ${SCALE}, ${rounds} rounds (\`npm run stress -- --pattern mimalloc-stress --workers ${WORKERS} --scale ${SCALE} --iterations ${rounds} --seed ${SEED}\`), ${runs} run${runs > 1 ? 's' : ''}`
  const native = o.quick ? 'not run with --quick' : buildNativeStress(WORKERS, SCALE, rounds)
  if (typeof native === 'string') o.log?.(`  native mimalloc: not measured (${native})`)
  const walls: number[] = []
  const overheads: number[] = []
  const pageOverheads: number[] = []
  const setups: number[] = []
  const nativeWalls: number[] = []
  const nativeOverheads: number[] = []
  let last: PatternReport | undefined
  try {
    for (let i = 0; i < runs; i++) {
      const r = await runStress({ workers: WORKERS, scale: SCALE, iterations: rounds, patterns: ['mimalloc-stress'], seed: SEED })
      const p = r.patterns[0]
      last = p
      if (!r.ok || !p.ok) {
        problems.push(`mimalloc-stress failed: ${p.failures.map((f) => f.message).join('; ')} (replay: ${p.replay})`)
        break
      }
      walls.push(p.wallMs / 1000)
      overheads.push(p.overhead)
      pageOverheads.push(p.pageOverhead)
      setups.push(p.setupMs / 1000)
      let line = `  run ${i + 1}: ${(p.wallMs / 1000).toFixed(2)} s (+ ${(p.setupMs / 1000).toFixed(2)} s pool start-up), overhead ${p.overhead.toFixed(2)}`
      if (typeof native !== 'string') {
        const n = native.run()
        nativeWalls.push(n.wallSeconds)
        nativeOverheads.push(n.overhead)
        line += `; native mimalloc ${n.wallSeconds.toFixed(2)} s, overhead ${n.overhead.toFixed(2)}`
      }
      o.log?.(line)
    }
  } finally {
    if (typeof native !== 'string') native.dispose()
  }
  const nativeResult = nativeWalls.length > 0
    ? { wall: summarize(nativeWalls), overhead: summarize(nativeOverheads) }
    : { missing: typeof native === 'string' ? native : 'the sabmalloc runs failed' }
  if (walls.length === 0) return { wall: null, overhead: null, comparable: !o.quick, label, config, native: nativeResult, note: 'the stress run failed: see the correctness checks' }
  const wall = summarize(walls)
  const overhead = summarize(overheads).median
  const pageOverhead = summarize(pageOverheads).median
  const note = `Wall time = the ${rounds} rounds, without the pool's start-up (median ${summarize(setups).median.toFixed(2)} s) and the final checks. ` +
    `Memory overhead from the last run: peak ${(last!.peakArenaBytes / 2 ** 20).toFixed(1)} MiB of segments in use (arena metadata included: ${formatBytes(last!.metaBytes)}) / ` +
    `peak ${(last!.peakLiveBytes / 2 ** 20).toFixed(1)} MiB live; the table shows the median over the runs. ` +
    `Runs of this workload: at most ${MAX_RUNS}.`
  o.log?.(`  wall ${wall.median.toFixed(2)} s for ${rounds} rounds (target ≤ ${(4 * 0.78).toFixed(2)} s for 500), overhead ${overhead.toFixed(2)} (target ≤ 1.3)`)
  return { wall, overhead, pageOverhead, comparable: !o.quick, label, config, native: nativeResult, note }
}
