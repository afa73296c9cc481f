/* ----------------------------------------------------------------------------
  stress.ts — `npm run stress -- [options]`: the command line of the stress
  harness (run.ts does the work). Exit codes: 0 all patterns passed, 1 a
  pattern failed (corruption, lost block, failed check, hang), 2 bad usage.
---------------------------------------------------------------------------- */

import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { numberArg, usageExit } from './cli.js'
import { formatBytes, formatCount, describeRun, formatFailures, formatNotes, formatTable } from './format.js'
import {
  DEFAULTS, PATTERNS, StressUsageError, resolveOptions, runStress,
  type PatternName, type StressOptions, type StressProgress,
} from './run.js'

const HELP = `Usage: npm run stress -- [options]

Runs allocation patterns across worker threads (a piscina pool) that share one
sabmalloc arena, verifies every block before it is freed, checks the arena
after each pattern, and prints a summary table. Exits 1 on any corruption,
lost block or failed check (printing the seed and a replay command), 2 on
bad usage.

Options:
  --workers N        worker threads = logical threads per round (default ${DEFAULTS.workers})
  --seconds S        run each pattern for about S seconds (default ${DEFAULTS.seconds}
                     when --iterations is not given)
  --iterations K     run each pattern for K rounds (with --seconds: whichever
                     comes first). A round is one task per worker, each a fresh
                     heap released at its end.
  --scale X          work per task (default ${DEFAULTS.scale}); mimalloc-stress thread t
                     allocates 100*X*(t%8+1) blocks per round, as test-stress.c
  --arena-size B     arena bytes, with an optional K/M/G suffix (default 256M)
  --seed N           seed of every random choice (default: random; printed)
  --pattern P[,P]    patterns to run, in order (default: all):
                       mimalloc-stress    port of mimalloc's test-stress.c
                       larson             server pattern, lanes outlive tasks
                       producer-consumer  one worker allocates, another frees
                       churn              private churn, the scaling baseline
  --large            mimalloc-stress: also 0.1% blocks x1000, 0.01% x10000
  --debug            arena in debug mode (guards, fills, exact double frees)
  --recreate         replace the pool's workers before every round
  --check-every K    also run arena.check() between rounds, every K rounds
  --inject-corruption  test the harness: overwrite one word of a block that
                     worker 0 puts in the transfer array in round 0
  --json             print the report as JSON instead of the table
  -h, --help         this help

Examples:
  npm run stress
  npm run stress -- --workers 2 --scale 50 --iterations 500 --pattern mimalloc-stress
  npm run stress -- --workers 4 --seconds 30 --large --debug
`

function usage(message: string): never {
  return usageExit('stress', message)
}

/** "64M" → 67108864; plain integers are bytes. */
function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(s)
  if (m === null) usage(`--arena-size: '${s}' is not a size (e.g. 268435456, 64M, 1G)`)
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g']
  const n = Number(m[1]) * mult
  if (!Number.isSafeInteger(n)) usage(`--arena-size: '${s}' is not a whole number of bytes`)
  return n
}

function parseIntArg(name: string, s: string | undefined): number | undefined {
  return numberArg('stress', name, s, true)
}

function parseCli(argv: string[]): { options: StressOptions, json: boolean } {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        workers: { type: 'string' },
        seconds: { type: 'string' },
        iterations: { type: 'string' },
        scale: { type: 'string' },
        'arena-size': { type: 'string' },
        seed: { type: 'string' },
        pattern: { type: 'string', multiple: true },
        large: { type: 'boolean' },
        debug: { type: 'boolean' },
        recreate: { type: 'boolean' },
        'check-every': { type: 'string' },
        'inject-corruption': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e))
  }
  const v = parsed.values
  if (v.help === true) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  let seconds: number | undefined
  if (v.seconds !== undefined) {
    seconds = Number(v.seconds)
    if (!/^\d+(\.\d+)?$/.test(v.seconds) || !(seconds > 0)) usage(`--seconds: '${v.seconds}' is not a positive number`)
  }
  let patterns: PatternName[] | undefined
  if (v.pattern !== undefined) {
    const names = v.pattern.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean)
    patterns = names.includes('all') ? [...PATTERNS] : []
    for (const n of names) {
      if (n === 'all') continue
      if (!(PATTERNS as readonly string[]).includes(n)) usage(`--pattern: unknown pattern '${n}' (known: ${PATTERNS.join(', ')}, all)`)
      if (!patterns.includes(n as PatternName)) patterns.push(n as PatternName)
    }
  }
  return {
    json: v.json === true,
    options: {
      workers: parseIntArg('workers', v.workers),
      seconds,
      iterations: parseIntArg('iterations', v.iterations),
      scale: parseIntArg('scale', v.scale),
      arenaSize: v['arena-size'] !== undefined ? parseSize(v['arena-size']) : undefined,
      seed: parseIntArg('seed', v.seed),
      patterns,
      large: v.large,
      debug: v.debug,
      recreate: v.recreate,
      checkEvery: parseIntArg('check-every', v['check-every']),
      injectCorruption: v['inject-corruption'],
    },
  }
}

/** A progress bar per pattern on a TTY; nothing otherwise. */
function progressBar(): ((p: StressProgress) => void) | undefined {
  if (process.stdout.isTTY !== true) return undefined
  let bar: cliProgress.SingleBar | undefined
  let current = -1
  return (p) => {
    if (p.patternIndex !== current) {
      bar?.stop()
      current = p.patternIndex
      bar = new cliProgress.SingleBar({
        stream: process.stdout,
        format: '{name} |{bar}| {percentage}% | round {rounds} | {rate} ops/s | live {live} | arena {arena}',
        barsize: 30,
      }, cliProgress.Presets.shades_classic)
      bar.start(1000, 0, { name: p.pattern.padEnd(17), rounds: 0, rate: '-', live: '-', arena: '-' })
    }
    bar?.update(Math.round(p.fraction * 1000), {
      rounds: p.rounds,
      rate: p.elapsedMs > 0 ? formatCount(p.ops / (p.elapsedMs / 1000)) : '-',
      live: formatBytes(p.liveBytes),
      arena: `${p.segmentsInUse} seg`,
    })
    if (p.done) { bar?.stop(); bar = undefined }
  }
}

async function main(): Promise<void> {
  const { options, json } = parseCli(process.argv.slice(2))
  let resolved
  try {
    resolved = resolveOptions(options)
  } catch (e) {
    if (e instanceof StressUsageError) usage(e.message)
    throw e
  }
  if (!json) process.stdout.write(describeRun(resolved) + '\n')
  let report
  try {
    report = await runStress({ ...resolved, onProgress: json ? undefined : progressBar() })
  } catch (e) {
    if (e instanceof StressUsageError) usage(e.message)
    throw e
  }
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  } else {
    process.stdout.write('\n' + formatTable(report) + '\n' + formatNotes(report) + '\n')
    if (!report.ok) process.stdout.write('\n' + formatFailures(report) + '\n')
    else process.stdout.write(`\nall ${report.patterns.length} patterns passed in ${(report.wallMs / 1000).toFixed(1)} s (seed ${report.seed})\n`)
  }
  process.exitCode = report.ok ? 0 : 1
}

main().catch((e: unknown) => {
  process.stderr.write(`stress: internal error: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exitCode = 1
})
