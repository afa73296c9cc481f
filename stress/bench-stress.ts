/* ----------------------------------------------------------------------------
  bench-stress.ts — workload 5 of the benchmark: the mimalloc-stress pattern
  (stress harness) timed, with its memory overhead.
---------------------------------------------------------------------------- */

import type { StressResult } from './bench-report.js'

export interface StressBenchOptions {
  runs: number
  quick: boolean
  log?: (line: string) => void
}

/** TODO: wire to the stress harness once it has a programmatic API. */
export async function benchStress(o: StressBenchOptions, _problems: string[]): Promise<StressResult> {
  const note = 'TODO: the stress harness (stress/stress.ts) has no programmatic API yet: n/a (harness not available).'
  o.log?.(`  ${note}`)
  return { wall: null, overhead: null, config: '2 workers, scale 50, 500 rounds', note }
}
