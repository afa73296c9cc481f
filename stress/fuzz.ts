/* ----------------------------------------------------------------------------
  fuzz.ts — `npm run fuzz -- [options]`: the misuse fuzzer's command line
  (stress/fuzz-run.ts does the work). Exit codes: 0 every injected fault was
  reported and nothing else was, 1 a miss, a wrong report, a false alarm or a
  failed check (the replay command is printed), 2 bad usage.
---------------------------------------------------------------------------- */

import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { numberArg, usageExit } from './cli.js'
import { describeFuzzRun, formatFuzzTable, formatFuzzVerdict } from './fuzz-report.js'
import {
  DEBUG_KINDS, FUZZ_DEFAULTS, FuzzUsageError, RELEASE_DOUBLE_FREE_RATE, RELEASE_KINDS, resolveFuzzOptions, runFuzz,
  type FaultKind, type FuzzOptions,
} from './fuzz-run.js'

const HELP = `Usage: npm run fuzz -- [options]

Random operation sequences (malloc, calloc, mallocAligned, realloc, free,
hand-offs of blocks between workers) across worker threads sharing one
sabmalloc arena, with misuse injected among them. Every injected fault must
be reported with the right error (class, code, pointer, message); no valid
operation may be rejected; every live block's contents are verified before
it is freed; at the end every block is freed and arena.check() must count
none. Prints a table per fault kind; exits 1 on any miss or false alarm
(printing the replay command), 2 on bad usage.

Options:
  --workers N        worker threads (default ${FUZZ_DEFAULTS.workers})
  --seed X           seed of every random choice, decimal or 0x hex (default: random; printed)
  --seconds S        run about S seconds (default ${FUZZ_DEFAULTS.seconds} when --rounds is not given)
  --rounds R         run exactly R rounds (replays a run; with --seconds: whichever first)
  --rate R           faults per operation, 0..1 (default ${FUZZ_DEFAULTS.rate})
  --release          release mode: inject only what it promises to catch
                     (${RELEASE_KINDS.join(', ')});
                     immediate double frees are reported as a rate (≥ ${RELEASE_DOUBLE_FREE_RATE * 100}% required)
  --kinds K[,K]      fault kinds to inject (default: all of the mode's):
                       ${DEBUG_KINDS.join('\n                       ')}
  --ops-per-round K  operations per worker per round (default ${FUZZ_DEFAULTS.opsPerRound})
  --check-every MS   arena.check() between rounds at most every MS ms (default ${FUZZ_DEFAULTS.checkEveryMs}; 0: off)
  --json             print the report as JSON
  -h, --help         this help

Each round: phase A, random operations and faults that need no quiet; phase
B1, with nobody allocating, first frees of the scheduled double frees (and
frees + writes of other workers' blocks); phase B2, racing double frees (two
workers free one block at once), then cross-worker and stale second frees;
phase B3, owners hunt their written blocks. A seed, worker count and round
count replay the same operations and faults; with several workers the block
addresses (and race outcomes) may still differ from run to run.

Examples:
  npm run fuzz
  npm run fuzz -- --workers 4 --seconds 600 --seed 12345
  npm run fuzz -- --release --workers 2 --seconds 30
  npm run fuzz -- --workers 2 --seed 7 --rounds 120 --kinds use-after-free,overflow
`

function usage(message: string): never {
  return usageExit('fuzz', message)
}
function parseNumber(name: string, s: string | undefined, integer: boolean): number | undefined {
  return numberArg('fuzz', name, s, integer)
}

function parseCli(argv: string[]): { options: FuzzOptions, json: boolean } {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'workers': { type: 'string' },
        'seed': { type: 'string' },
        'seconds': { type: 'string' },
        'rounds': { type: 'string' },
        'rate': { type: 'string' },
        'release': { type: 'boolean' },
        'kinds': { type: 'string' },
        'ops-per-round': { type: 'string' },
        'check-every': { type: 'string' },
        'json': { type: 'boolean' },
        'help': { type: 'boolean', short: 'h' },
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
  const release = v.release === true
  let kinds: FaultKind[] | undefined
  if (v.kinds !== undefined) {
    const all: readonly string[] = DEBUG_KINDS
    kinds = v.kinds.split(',').map((k) => k.trim()).filter((k) => k !== '') as FaultKind[]
    for (const k of kinds) if (!all.includes(k)) usage(`--kinds: unknown fault kind '${k}' (known: ${DEBUG_KINDS.join(', ')})`)
    if (kinds.length === 0) usage('--kinds: give at least one fault kind')
  }
  const options: FuzzOptions = {
    workers: parseNumber('workers', v.workers, true),
    seed: parseNumber('seed', v.seed, true),
    seconds: parseNumber('seconds', v.seconds, false),
    rounds: parseNumber('rounds', v.rounds, true),
    rate: parseNumber('rate', v.rate, false),
    release,
    kinds,
    opsPerRound: parseNumber('ops-per-round', v['ops-per-round'], true),
    checkEveryMs: parseNumber('check-every', v['check-every'], true),
  }
  try {
    resolveFuzzOptions(options)
  } catch (e) {
    if (e instanceof FuzzUsageError) usage(e.message)
    throw e
  }
  return { options, json: v.json === true }
}

async function main(): Promise<void> {
  const { options, json } = parseCli(process.argv.slice(2))
  const o = resolveFuzzOptions(options)
  options.seed = o.seed // fixed now, so that it can be printed before the run
  const stop = new AbortController()
  let interrupts = 0
  process.on('SIGINT', () => {
    if (++interrupts > 1) process.exit(130)
    process.stderr.write('\nfuzz: stopping at the end of this round (Ctrl-C again to quit at once)\n')
    stop.abort()
  })

  const tty = process.stdout.isTTY === true && !json
  const byTime = o.seconds !== undefined
  const total = byTime ? Math.round(o.seconds!) : o.rounds!
  const bar = tty
    ? new cliProgress.SingleBar({
      format: `fuzz [{bar}] {percentage}% | ${byTime ? '{value}/{total} s' : '{value}/{total} rounds'} | round {rounds} | {ops} ops`,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic)
    : null
  if (!json) process.stdout.write(`seed ${o.seed}\n`)
  bar?.start(total, 0, { rounds: 0, ops: 0 })
  const report = await runFuzz({
    ...options,
    signal: stop.signal,
    onProgress: bar === null ? undefined : (p) => {
      const value = byTime ? Math.min(total, Math.floor(p.elapsedMs / 1000)) : Math.min(total, p.rounds)
      bar.update(value, { rounds: p.rounds, ops: p.ops })
    },
  })
  if (bar !== null) {
    bar.update(byTime ? total : Math.min(total, report.rounds), { rounds: report.rounds, ops: report.ops })
    bar.stop()
  }
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  } else {
    process.stdout.write(`${describeFuzzRun(report)}\n\n${formatFuzzTable(report)}\n\n${formatFuzzVerdict(report)}\n`)
  }
  process.exitCode = report.ok ? 0 : 1
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exit(1)
})
