/* ----------------------------------------------------------------------------
  fuzz-report.ts — the fuzzer's human-readable output: the table per fault
  kind, the totals, the failures with the replay command.
---------------------------------------------------------------------------- */

import { RELEASE_DOUBLE_FREE_RATE, type FaultKind, type FuzzReport, type KindCounts } from './fuzz-run.js'

const count = (n: number): string => n >= 1e6 ? (n / 1e6).toFixed(2) + 'M' : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(n)
const hex = (n: number | undefined): string => n === undefined ? '' : Number.isInteger(n) && n >= 0 ? '0x' + n.toString(16) : String(n)

/** One line: what ran. */
export function describeFuzzRun(r: FuzzReport): string {
  const o = r.options
  const budget = [o.seconds !== undefined ? `${o.seconds} s` : '', o.rounds !== undefined ? `${o.rounds} rounds` : ''].filter(Boolean).join(' or ')
  return `sabmalloc fuzz: ${o.release ? 'release' : 'debug'} mode, ${o.workers} worker${o.workers > 1 ? 's' : ''}, seed ${o.seed}, ` +
    `rate ${o.rate}/op, ${o.opsPerRound} ops/round/worker, ${budget}, arena ${o.arenaSize / 1048576} MiB`
}

/** The table: one row per fault kind, then the totals. */
export function formatFuzzTable(r: FuzzReport): string {
  const head = ['fault kind', 'injected', 'detected', 'missed', 'wrong class', 'bad report', 'skipped']
  const rows: string[][] = []
  const total: KindCounts = { injected: 0, detected: 0, missed: 0, wrongClass: 0, badReport: 0, skipped: 0 }
  for (const [k, c] of Object.entries(r.counts) as Array<[FaultKind, KindCounts]>) {
    rows.push([k, String(c.injected), String(c.detected), String(c.missed), String(c.wrongClass), String(c.badReport), String(c.skipped)])
    for (const f of Object.keys(total) as Array<keyof KindCounts>) total[f] += c[f]
  }
  rows.push(['total', String(total.injected), String(total.detected), String(total.missed), String(total.wrongClass), String(total.badReport), String(total.skipped)])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  const sep = widths.map((w) => '-'.repeat(w)).join('  ')
  const out = [line(head), sep, ...rows.slice(0, -1).map(line), sep, line(rows[rows.length - 1])]
  out.push('')
  out.push(`false alarms: ${r.falseAlarms}   damaged live blocks: ${r.dataErrors}   seed: ${r.options.seed}`)
  if (r.doubleFreeRate !== undefined) {
    out.push(`release mode: immediate double frees reported as DoubleFreeError: ${(r.doubleFreeRate * 100).toFixed(2)}% ` +
      `(required ≥ ${RELEASE_DOUBLE_FREE_RATE * 100}%; the rest were rejected as invalid pointers: the first free had retired the page)`)
  }
  const debug = !r.options.release
  out.push(`rounds: ${r.rounds}   wall: ${(r.wallMs / 1000).toFixed(1)} s   valid ops: ${count(r.ops)} ` +
    `(mallocs ${count(r.mallocs)}, frees ${count(r.frees)} of which cross-worker ${count(r.crossFrees)}, reallocs ${count(r.reallocs)}, hand-offs ${count(r.handOffs)}` +
    `${debug ? `, use-after-free hunt mallocs ${count(r.huntMallocs)}` : ''})`)
  const fc = r.finalCheck
  out.push(`arena.check(): ${r.midRunChecks} mid-run${debug ? ` (+ ${r.uafChecks} while use-after-free victims sat free, each naming one)` : ''}; ` +
    `at the end ${fc === null ? 'not run' : `liveBlocks ${fc.liveBlocks}, segments ${fc.segmentsInUse}`}` +
    `; after release ${r.releasedCheck === null ? 'not run' : `liveBlocks ${r.releasedCheck.liveBlocks}`}`)
  return out.join('\n')
}

/** The failures and the verdict, with the replay command when something failed. */
export function formatFuzzVerdict(r: FuzzReport, limit = 20): string {
  if (r.ok) return 'PASS: every injected fault was reported with the right error, no false alarm, every block freed.'
  const out = ['FAIL: ' + r.problems.join('; ')]
  const shown = r.failures.slice(0, limit)
  for (const f of shown) {
    const where = f.worker < 0 ? 'main thread' : `worker ${f.worker}, round ${f.round}`
    out.push(`  - [${f.type}${f.fault !== undefined ? ` ${f.fault}` : ''}] ${where}: ${f.op}${f.ptr !== undefined ? ` (ptr ${hex(f.ptr)})` : ''}`)
    out.push(`      ${f.message.split('\n').join('\n      ')}`)
  }
  const more = r.failures.length - shown.length + r.failuresDropped
  if (more > 0) out.push(`  … and ${more} more`)
  out.push(`replay: ${r.replay}`)
  return out.join('\n')
}
