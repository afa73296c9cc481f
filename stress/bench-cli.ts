/* ----------------------------------------------------------------------------
  bench-cli.ts — the command line of `npm run bench` (node:util parseArgs),
  apart from stress/bench.ts so that it can be imported without starting
  anything.
---------------------------------------------------------------------------- */

import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const HERE = dirname(fileURLToPath(import.meta.url))

/** Workloads in the order they run and appear. */
export const WORKLOADS = ['churn', 'workers', 'ring', 'debug', 'stress'] as const
export type Workload = (typeof WORKLOADS)[number]

export interface BenchOptions {
  runs: number
  quick: boolean
  only: Workload[]
  outDir: string
  /** progress lines (default: console.log) */
  log?: (line: string) => void
}

export const HELP = `Usage: npm run bench -- [options]

  --runs N          timed runs per figure (default 5; 3 with --quick); figures are medians
  --quick           short runs (CI smoke test, < 30 s); numbers not representative
  --only a,b,…      workloads to run, of: ${WORKLOADS.join(', ')} (default: all)
  --out DIR         where to write RESULTS.md and results.svg (default: stress/)
  --help            this text
`

/** Parses the command line; throws a RangeError on bad input. */
export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  const quick = values.quick ?? false
  const runs = values.runs === undefined ? (quick ? 3 : 5) : Number(values.runs)
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new RangeError(`--runs must be a positive integer, got '${values.runs}'`)
  let only: Workload[] = [...WORKLOADS]
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '')
    for (const name of names) {
      if (!(WORKLOADS as readonly string[]).includes(name)) throw new RangeError(`--only: unknown workload '${name}' (known: ${WORKLOADS.join(', ')})`)
    }
    if (names.length === 0) throw new RangeError('--only needs at least one workload')
    only = WORKLOADS.filter((w) => names.includes(w))
  }
  const outDir = resolve(values.out ?? HERE)
  return { runs, quick, only, outDir }
}

