/* ----------------------------------------------------------------------------
  format.ts — human-readable output of the stress harness: sizes, the
  summary table of a StressReport and the failure section.
---------------------------------------------------------------------------- */

import { describeFailure, type PatternReport, type ResolvedStressOptions, type StressReport } from './run.js'

/** 1536 → "1.5 KiB", 268435456 → "256 MiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let u = 0
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++ }
  return `${u === 0 || Number.isInteger(n) ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[u]}`
}

/** 1234567 → "1.23M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + 'G'
  if (n >= 1e6) return (n / 1e6).toFixed(2) + 'M'
  if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k'
  return String(Math.round(n))
}

/** One line saying what runs. */
export function describeRun(o: ResolvedStressOptions): string {
  const budget = [
    o.seconds !== undefined ? `${o.seconds} s` : '',
    o.iterations !== undefined ? `${o.iterations} rounds` : '',
  ].filter(Boolean).join(' or ')
  const flags = [o.large && 'large', o.debug && 'debug', o.recreate && 'recreate', o.injectCorruption && 'inject-corruption']
    .filter(Boolean).join(', ')
  return `sabmalloc stress: ${o.patterns.join(', ')} | ${o.workers} worker${o.workers > 1 ? 's' : ''}, scale ${o.scale}, ` +
    `${budget} per pattern, arena ${formatBytes(o.arenaSize)}, seed ${o.seed}${flags ? ` (${flags})` : ''}`
}

const COLUMNS: [string, (p: PatternReport) => string][] = [
  ['pattern', (p) => p.pattern],
  ['rounds', (p) => String(p.rounds)],
  ['wall s', (p) => (p.wallMs / 1000).toFixed(2)],
  ['ops', (p) => formatCount(p.ops)],
  ['ops/s', (p) => formatCount(p.opsPerSec)],
  ['ops/s/worker', (p) => formatCount(p.opsPerSecPerWorker)],
  ['x-thread frees', (p) => formatCount(p.crossThreadFrees)],
  ['abandoned', (p) => String(p.abandonedSegments)],
  ['reclaimed', (p) => String(p.reclaimedSegments)],
  ['peak arena', (p) => formatBytes(p.peakArenaBytes)],
  ['peak live', (p) => formatBytes(p.peakLiveBytes)],
  ['overhead', (p) => p.overhead.toFixed(2)],
  ['peak pages', (p) => formatBytes(p.peakPageBytes)],
  ['page ovh', (p) => p.pageOverhead.toFixed(2)],
  ['result', (p) => (p.ok ? 'ok' : 'FAILED')],
]

/** The summary table, one row per pattern. */
export function formatTable(report: StressReport): string {
  const rows = [COLUMNS.map(([h]) => h), ...report.patterns.map((p) => COLUMNS.map(([, f]) => f(p)))]
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/** Notes under the table: what the overhead counts. */
export function formatNotes(report: StressReport): string {
  const meta = report.patterns[0]?.metaBytes ?? 0
  return `peak arena = peak segments in use × segment size, ${formatBytes(meta)} of arena metadata included; ` +
    'peak live = peak bytes of live blocks (block sizes); overhead = peak arena / peak live; ' +
    'peak pages = peak bytes of initialized blocks in pages in use (free page slots excluded); page ovh = peak pages / peak live.'
}

/** Every failure of every failed pattern, with the seed and the replay command. */
export function formatFailures(report: StressReport): string {
  const out: string[] = []
  for (const p of report.patterns) {
    if (p.ok) continue
    out.push(`FAILED ${p.pattern} (seed ${report.seed}):`)
    for (const f of p.failures) out.push(`  - ${describeFailure(f)}`)
    out.push(`  replay: ${p.replay}`)
  }
  return out.join('\n')
}
