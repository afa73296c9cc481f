/* ----------------------------------------------------------------------------
  bench-report.ts — turns the benchmark's results into `RESULTS.md` (one
  table per workload, targets beside the figures) and `results.svg` (a
  hand-written bar chart, no dependency).
---------------------------------------------------------------------------- */

import type { Summary } from './bench-common.js'

/* ----- Results --------------------------------------------------------------------------- */

export interface Meta {
  cpu: string
  cores: number
  memBytes: number
  /** 1-minute load average when the bench started and ended (other jobs on the machine) */
  load: [number, number]
  /** share of the machine's CPU time used by other processes while the bench ran (0 … 1) */
  othersCpu: number
  /** ms of a fixed plain-JS loop before and after the run (the machine's speed of the moment) */
  probeMs: [number, number]
  node: string
  /** commit measured, and whether src/ had uncommitted changes */
  commit: string
  date: string
  runs: number
  quick: boolean
  only: string[]
  seconds: number
}

/** One allocator of the single-thread churn. */
export interface ChurnRow {
  key: 'floor' | 'sab' | 'codemix' | 'uint8' | 'thing'
  label: string
  ops: number
  /** ns per free+malloc pair; null if it could not run */
  ns: Summary | null
  note?: string
}

export interface DebugResult {
  ops: number
  release: Summary | null
  /** null: debug mode not available (see note) */
  debug: Summary | null
  note?: string
}

export interface ScalingRow {
  workers: number
  /** aggregate Mops/s (free+malloc pairs) */
  mops: Summary
}

export interface WorkersResult {
  ops: number
  lockOps: number
  sab: ScalingRow[]
  /** control: 2 workers, each in an arena of its own (nothing shared but the machine) */
  separate: ScalingRow | null
  lock: ScalingRow[]
}

export interface RingResult {
  blocks: number
  /** ns per block */
  empty: Summary
  alloc: Summary
}

/** Native mimalloc on the same pattern in the same bench run (bench-native.ts), or why it was not measured. */
export type NativeStressResult = { wall: Summary, overhead: Summary } | { missing: string }

export interface StressResult {
  /** null when the run failed */
  wall: Summary | null
  /** peak arena bytes in use / peak live bytes */
  overhead: number | null
  /** peak bytes of pages in use / peak live bytes, when the harness reports it */
  pageOverhead?: number | null
  /** false when the run is shorter than the one the wall-time target is for (--quick) */
  comparable: boolean
  /** short: "2 workers, scale 50, 500 rounds" */
  label: string
  /** long, with the command that replays it */
  config: string
  native: NativeStressResult
  note?: string
}

export interface BenchResults {
  meta: Meta
  churn?: ChurnRow[]
  debug?: DebugResult
  workers?: WorkersResult
  ring?: RingResult
  stress?: StressResult
  /** correctness problems seen while benchmarking (allocator bugs) */
  problems: string[]
}

/* ----- Targets (from the issue) ---------------------------------------------------------- */

export const TARGETS = {
  churnNs: 25,
  peerRatio: 20,
  scaling2: 1.85,
  ringNs: 110,
  debugRatio: 4,
  stressSeconds: 4 * 0.78,
  stressOverhead: 1.3,
} as const

/** Figures from FACTS.md, measured elsewhere: shown as references, never as our results. */
export const REFERENCE = {
  mimallocChurnNs: 8,
  glibcChurnNs: 18,
  mimallocRingNs: 55,
  mimallocStressSeconds: 0.78,
} as const

/* ----- Formatting -------------------------------------------------------------------------- */

export function fmt(x: number | null | undefined, digits?: number): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a'
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2)
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

function range(s: Summary | null, digits?: number): string {
  return s === null ? 'n/a' : `${fmt(s.min, digits)} – ${fmt(s.max, digits)}`
}

function mark(ok: boolean | null): string {
  return ok === null ? '' : ok ? ' ✓' : ' ✗'
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

/** Best (smallest) median among the JS peers of the churn. */
export function bestPeer(rows: ChurnRow[]): ChurnRow | undefined {
  let best: ChurnRow | undefined
  for (const r of rows) {
    if (r.key === 'sab' || r.key === 'floor' || r.ns === null) continue
    if (best === undefined || r.ns.median < best.ns!.median) best = r
  }
  return best
}

/* ----- RESULTS.md ------------------------------------------------------------------------------ */

export function renderMarkdown(r: BenchResults): string {
  const m = r.meta
  const out: string[] = []
  out.push('# sabmalloc benchmark results')
  out.push('')
  out.push('Written by `npm run bench` (`stress/bench.ts`); overwritten on every run. ' +
    'Figures are medians over the runs, with min – max; every workload replays the same fixed-seed op stream for every allocator.')
  out.push('')
  out.push(table(['', ''], [
    ['machine', `${m.cpu} × ${m.cores}, ${fmt(m.memBytes / 2 ** 30, 1)} GiB RAM`],
    ['Node', m.node],
    ['sabmalloc commit', m.commit],
    ['date', m.date],
    ['runs', `${m.runs}${m.quick ? ' (`--quick`: short runs, smoke test only — not representative)' : ''}`],
    ['workloads', m.only.join(', ')],
    ['wall time of the benchmark', `${fmt(m.seconds, 1)} s`],
    ['other processes during the run', `${fmt(100 * m.othersCpu, 0)} % of the machine's CPU time (load average ${fmt(m.load[0], 2)} at start, ${fmt(m.load[1], 2)} at end)`],
    ['speed probe (10⁸ additions in plain JS)', `${fmt(m.probeMs[0], 0)} ms before, ${fmt(m.probeMs[1], 0)} ms after (this machine: ~60 ms in its fast phases, several times more in its slow ones)`],
  ]))
  out.push('')
  out.push('Targets are from the issue; ✓/✗ compares the median with them. ' +
    'The machine is shared with other jobs, so expect noise: compare ratios taken in one run.')
  out.push('')

  if (r.churn) out.push(...churnSection(r.churn))
  if (r.workers) out.push(...workersSection(r.workers))
  if (r.ring) out.push(...ringSection(r.ring))
  if (r.debug) out.push(...debugSection(r.debug))
  if (r.stress) out.push(...stressSection(r.stress))

  out.push('## Correctness checks done while benchmarking')
  out.push('')
  if (r.problems.length === 0) {
    out.push('None failed: no allocation returned 0, every arena passed `arena.check()` with 0 live blocks after its workload, every ring delivered every block.')
  } else {
    for (const p of r.problems) out.push(`- ✗ ${p}`)
  }
  out.push('')
  return out.join('\n')
}

function churnSection(rows: ChurnRow[]): string[] {
  const sab = rows.find((x) => x.key === 'sab')
  const best = bestPeer(rows)
  const sabMed = sab?.ns?.median ?? NaN
  const out: string[] = []
  out.push('## 1. Single-thread churn (headline)')
  out.push('')
  out.push('1000 live blocks; each op frees a random live block and allocates 16..1024 bytes (uniform) in its place. ' +
    'The op stream is precomputed into typed arrays; only the loop is timed, after warm-up passes (10 M ops for sabmalloc, whose rarely taken slow paths need millions of ops to reach TurboFan; 2 passes for the others). ' +
    'Each allocator runs in a worker of its own (a fresh isolate: its own JS heap and JIT state); the workers take turns, one pass each per run. ' +
    'Figure: ns per free+malloc pair. Ratio: peer / sabmalloc.')
  out.push('')
  const body = rows.map((x) => {
    const ratio = x.key === 'sab' || x.key === 'floor' || x.ns === null ? '' : `${fmt(x.ns.median / sabMed, 1)}×`
    let target = ''
    if (x.key === 'sab' && x.ns) target = `≤ ${TARGETS.churnNs} ns${mark(x.ns.median <= TARGETS.churnNs)}`
    if (best && x === best && x.ns) target = `≥ ${TARGETS.peerRatio}× (best peer)${mark(x.ns.median / sabMed >= TARGETS.peerRatio)}`
    return [x.label, fmt(x.ops, 0), x.ns ? `**${fmt(x.ns.median)}**` : 'n/a', range(x.ns), ratio, target, x.note ?? '']
  })
  out.push(table(['allocator', 'ops per run', 'ns / pair (median)', 'min – max', 'peer / sabmalloc', 'target', 'notes'], body))
  out.push('')
  out.push(`For reference (FACTS.md, not measured by this run): native mimalloc ${REFERENCE.mimallocChurnNs} ns, ` +
    `native glibc malloc ${REFERENCE.glibcChurnNs} ns on the same workload.`)
  out.push('')
  return out
}

function workersSection(w: WorkersResult): string[] {
  const out: string[] = []
  out.push('## 2. Multi-worker churn')
  out.push('')
  out.push('The same churn in every worker, independently (own seed, own 1000 live blocks), all started together; ' +
    'figure: aggregate million free+malloc pairs per second = all ops / (last end − first start). ' +
    'The runs of the configurations interleave (1, 2, 4 workers, 1, 2, 4, …; idle workers block in `Atomics.wait`), so background load hits them alike. ' +
    'sabmalloc: one arena, one heap per worker (`Arena.attach(buffer).createHeap()`). ' +
    'Control: the same 2 workers with an arena each, sharing nothing but the machine — how far 2 threads of this workload can scale here; ' +
    'the gap between it and the one-arena row is what sharing the arena costs. ' +
    'npm `malloc` + lock: one shared allocator behind one Atomics mutex (every `alloc` and `free` takes it; ' +
    'each worker attaches under the lock, since the constructor walks the heap) — the way any single-threaded JS allocator would be shared.')
  out.push('')
  const rows: string[][] = []
  const base = w.sab.find((x) => x.workers === 1)?.mops.median ?? NaN
  for (const x of w.sab) {
    const ratio = x.mops.median / base
    let target = ''
    if (x.workers === 2) target = `≥ ${TARGETS.scaling2}${mark(ratio >= TARGETS.scaling2)}`
    if (x.workers === 4) target = '(2 cores: ≤ 2 possible)'
    rows.push([`sabmalloc, ${x.workers} worker${x.workers > 1 ? 's' : ''}`, fmt(w.ops, 0), `**${fmt(x.mops.median)}**`, range(x.mops),
      x.workers === 1 ? '1.00' : fmt(ratio, 2), target])
  }
  if (w.separate) {
    const x = w.separate
    rows.push([`control: sabmalloc, ${x.workers} workers, an arena each`, fmt(w.ops, 0), `**${fmt(x.mops.median)}**`, range(x.mops),
      fmt(x.mops.median / base, 2), 'the ceiling on this machine'])
  }
  const lbase = w.lock.find((x) => x.workers === 1)?.mops.median ?? NaN
  for (const x of w.lock) {
    rows.push([`npm malloc + mutex, ${x.workers} worker${x.workers > 1 ? 's' : ''}`, fmt(w.lockOps, 0), `**${fmt(x.mops.median)}**`, range(x.mops),
      x.workers === 1 ? '1.00' : fmt(x.mops.median / lbase, 2), ''])
  }
  out.push(table(['configuration', 'ops per worker per run', 'Mops/s (median)', 'min – max', 'scaling vs 1 worker', 'target'], rows))
  out.push('')
  return out
}

function ringSection(g: RingResult): string[] {
  const out: string[] = []
  out.push('## 3. Producer → consumer (cross-worker frees)')
  out.push('')
  out.push(`One worker allocates ${64}-byte blocks and pushes their offsets into a shared ring of 4096 slots; another pops and frees them ` +
    '(every free is a cross-thread free). Both sides publish their index with `Atomics.store` every 64 blocks. ' +
    'The empty ring moves plain numbers through the same ring, no allocation, in the same run. Figure: ns per block, end to end.')
  out.push('')
  out.push(table(['configuration', 'blocks per run', 'ns / block (median)', 'min – max', 'target'], [
    ['empty ring (no allocation)', fmt(g.blocks, 0), `**${fmt(g.empty.median)}**`, range(g.empty), ''],
    ['sabmalloc malloc → ring → free', fmt(g.blocks, 0), `**${fmt(g.alloc.median)}**`, range(g.alloc),
      `≤ ${TARGETS.ringNs} ns${mark(g.alloc.median <= TARGETS.ringNs)}`],
    ['allocator share (difference)', '', fmt(g.alloc.median - g.empty.median), '', ''],
  ]))
  out.push('')
  out.push(`For reference (FACTS.md): native mimalloc ${REFERENCE.mimallocRingNs} ns per block; the same JS ring with nothing allocated was about 31 ns there.`)
  out.push('')
  return out
}

function debugSection(d: DebugResult): string[] {
  const out: string[] = []
  out.push('## 4. Debug mode churn')
  out.push('')
  out.push('The single-thread churn with `Arena.create({ debug: true })` (guards, fills, exact double-free detection) against a release arena, ' +
    'each in its own worker (its own JIT state, so the debug paths cannot disturb the release figures of section 1), their runs interleaved.')
  out.push('')
  const ratio = d.debug && d.release ? d.debug.median / d.release.median : null
  out.push(table(['mode', 'ops per run', 'ns / pair (median)', 'min – max', 'debug / release', 'target', 'notes'], [
    ['release', fmt(d.ops, 0), d.release ? `**${fmt(d.release.median)}**` : 'n/a', range(d.release), '', '', ''],
    ['debug', fmt(d.ops, 0), d.debug ? `**${fmt(d.debug.median)}**` : 'n/a', range(d.debug),
      ratio === null ? 'n/a' : `${fmt(ratio, 2)}×`, ratio === null ? `≤ ${TARGETS.debugRatio}×` : `≤ ${TARGETS.debugRatio}×${mark(ratio <= TARGETS.debugRatio)}`, d.note ?? ''],
  ]))
  out.push('')
  return out
}

function stressSection(s: StressResult): string[] {
  const out: string[] = []
  out.push('## 5. mimalloc-stress: wall time and memory overhead')
  out.push('')
  out.push(`mimalloc's \`test-stress\` pattern, ${s.config}. Memory overhead = peak arena bytes in use / peak live bytes.`)
  out.push('')
  const na = 'n/a'
  const native = 'missing' in s.native ? null : s.native
  out.push(table(['figure', 'median', 'min – max', 'target'], [
    ['wall time (s)', s.wall ? `**${fmt(s.wall.median, 2)}**` : na, range(s.wall, 2),
      s.comparable
        ? `≤ ${fmt(TARGETS.stressSeconds, 2)} s (4 × native ${REFERENCE.mimallocStressSeconds} s)${s.wall ? mark(s.wall.median <= TARGETS.stressSeconds) : ''}`
        : `(≤ ${fmt(TARGETS.stressSeconds, 2)} s is for 500 rounds)`],
    ['memory overhead', s.overhead === null ? na : `**${fmt(s.overhead, 2)}**`, '',
      `≤ ${TARGETS.stressOverhead}${s.overhead === null ? '' : mark(s.overhead <= TARGETS.stressOverhead)}`],
    ...(s.pageOverhead != null
      ? [['page-level overhead (peak bytes of pages in use / peak live bytes)', fmt(s.pageOverhead, 2), '', 'no target: the part due to partly filled pages and size-class rounding']]
      : []),
    ...(native
      ? [
          ['native mimalloc, same pattern, between these runs: wall time (s)', fmt(native.wall.median, 2), range(native.wall, 2), ''],
          ['sabmalloc / native mimalloc wall time', s.wall ? `${fmt(s.wall.median / native.wall.median, 2)}×` : na, '', '≤ 4×' + (s.wall ? mark(s.wall.median <= 4 * native.wall.median) : '')],
          ['native mimalloc memory overhead ((peak RSS − idle RSS) / peak live bytes)', fmt(native.overhead.median, 2), range(native.overhead, 2), ''],
        ]
      : []),
  ]))
  out.push('', 'missing' in s.native
    ? `Native mimalloc was not measured in this run (${s.native.missing}); its figure in FACTS.md is ${REFERENCE.mimallocStressSeconds} s.`
    : 'Native mimalloc runs `stress/native/mimalloc-stress.c` (the same pattern in C, linked with the system\'s libmimalloc) once without tracking, for the wall time, and once tracking every block\'s usable size for the overhead (peak RSS counts only touched pages, so this figure leans low), after each sabmalloc run.')
  if (s.note) {
    out.push('')
    out.push(s.note)
  }
  out.push('')
  return out
}

/* ----- results.svg ------------------------------------------------------------------------------ */

interface Bar {
  label: string
  value: number | null
  color: string
  /** text after the bar; defaults to the value */
  text?: string
}

interface Panel {
  title: string
  subtitle: string
  bars: Bar[]
  log: boolean
  unit: string
  target?: { value: number, label: string }
}

const W = 960
const LABEL_W = 300
const BAR_H = 22
const GAP = 8
const PLOT_W = W - LABEL_W - 170
const C_SAB = '#1f77b4'
const C_PEER = '#d62728'
const C_BASE = '#9e9e9e'
const C_REF = '#c7c7c7'
const C_DEBUG = '#ff7f0e'

function esc(s: string): string {
  return s.replace(/`/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function panelSvg(p: Panel, y0: number): { svg: string, height: number } {
  const parts: string[] = []
  const vals = p.bars.map((b) => b.value).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)
  if (p.target) vals.push(p.target.value)
  const maxV = vals.length ? Math.max(...vals) : 1
  let lo = 0
  let hi = maxV * 1.1
  if (p.log) {
    lo = Math.pow(10, Math.floor(Math.log10(Math.min(...vals, 1))))
    hi = Math.pow(10, Math.ceil(Math.log10(maxV * 1.05)))
  }
  const x = (v: number): number => {
    if (p.log) return LABEL_W + PLOT_W * (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))
    return LABEL_W + PLOT_W * v / hi
  }
  let y = y0
  parts.push(`<text x="20" y="${y + 18}" class="title">${esc(p.title)}</text>`)
  parts.push(`<text x="20" y="${y + 36}" class="sub">${esc(p.subtitle)}</text>`)
  y += p.target ? 66 : 50
  const plotTop = y
  const plotH = p.bars.length * (BAR_H + GAP)
  // grid and ticks
  const ticks: number[] = []
  if (p.log) {
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t)
  } else {
    const step = niceStep(hi / 5)
    for (let t = 0; t <= hi * 1.0001; t += step) ticks.push(t)
  }
  for (const t of ticks) {
    const tx = x(t)
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${plotTop - 4}" x2="${tx.toFixed(1)}" y2="${plotTop + plotH}" class="grid"/>`)
    parts.push(`<text x="${tx.toFixed(1)}" y="${plotTop + plotH + 14}" class="tick">${esc(fmtTick(t))}</text>`)
  }
  if (p.target) {
    const tx = x(p.target.value).toFixed(1)
    parts.push(`<line x1="${tx}" y1="${plotTop - 6}" x2="${tx}" y2="${plotTop + plotH - GAP + 2}" class="target"/>`)
    parts.push(`<text x="${tx}" y="${plotTop - 9}" class="targetText">${esc(p.target.label)}</text>`)
  }
  for (const b of p.bars) {
    parts.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H * 0.7}" class="label">${esc(b.label)}</text>`)
    if (b.value !== null && Number.isFinite(b.value) && b.value > 0) {
      const w = Math.max(1, x(b.value) - LABEL_W)
      parts.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${b.color}"/>`)
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H * 0.7}" class="value">${esc(b.text ?? `${fmt(b.value)} ${p.unit}`)}</text>`)
    } else {
      parts.push(`<text x="${LABEL_W + 6}" y="${y + BAR_H * 0.7}" class="value">${esc(b.text ?? 'n/a')}</text>`)
    }
    y += BAR_H + GAP
  }
  parts.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${plotTop + plotH + 30}" class="axis">${esc(p.unit)}${p.log ? ' (log scale)' : ''}</text>`)
  return { svg: parts.join('\n'), height: y - y0 + 60 }
}

function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(raw)))
  const f = raw / p
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p
}

function fmtTick(t: number): string {
  if (t >= 1000) return t.toLocaleString('en-US', { maximumFractionDigits: 0 })
  return String(Number(t.toPrecision(3)))
}

export function renderSvg(r: BenchResults): string {
  const panels: Panel[] = []
  if (r.churn) {
    const bars: Bar[] = []
    const sab = r.churn.find((x) => x.key === 'sab')
    for (const row of r.churn) {
      const color = row.key === 'sab' ? C_SAB : row.key === 'floor' ? C_BASE : C_PEER
      const ratio = row.key !== 'sab' && row.key !== 'floor' && row.ns && sab?.ns ? ` (${fmt(row.ns.median / sab.ns.median, 1)}× sabmalloc)` : ''
      bars.push({ label: row.label, value: row.ns?.median ?? null, color, text: row.ns ? `${fmt(row.ns.median)} ns${ratio}` : 'n/a' })
    }
    if (r.debug?.debug) bars.splice(2, 0, { label: 'sabmalloc, debug mode (worker)', value: r.debug.debug.median, color: C_DEBUG })
    bars.push({ label: 'native mimalloc (FACTS.md, reference)', value: REFERENCE.mimallocChurnNs, color: C_REF, text: `${REFERENCE.mimallocChurnNs} ns` })
    bars.push({ label: 'native glibc malloc (FACTS.md, reference)', value: REFERENCE.glibcChurnNs, color: C_REF, text: `${REFERENCE.glibcChurnNs} ns` })
    panels.push({
      title: 'Single-thread churn: ns per free+malloc pair (lower is better)',
      subtitle: '1000 live blocks, random free + malloc of 16..1024 B, same op stream for every allocator; medians',
      bars, log: true, unit: 'ns', target: { value: TARGETS.churnNs, label: `target ${TARGETS.churnNs} ns` },
    })
  }
  if (r.workers) {
    const bars: Bar[] = []
    const base = r.workers.sab.find((x) => x.workers === 1)?.mops.median ?? NaN
    for (const x of r.workers.sab) {
      bars.push({ label: `sabmalloc, ${x.workers} worker${x.workers > 1 ? 's' : ''}`, value: x.mops.median, color: C_SAB,
        text: `${fmt(x.mops.median)} Mops/s${x.workers > 1 ? ` (×${fmt(x.mops.median / base, 2)})` : ''}` })
    }
    if (r.workers.separate) {
      const x = r.workers.separate
      bars.push({ label: `control: ${x.workers} workers, an arena each`, value: x.mops.median, color: C_BASE,
        text: `${fmt(x.mops.median)} Mops/s (×${fmt(x.mops.median / base, 2)})` })
    }
    const lbase = r.workers.lock.find((x) => x.workers === 1)?.mops.median ?? NaN
    for (const x of r.workers.lock) {
      bars.push({ label: `npm malloc + mutex, ${x.workers} worker${x.workers > 1 ? 's' : ''}`, value: x.mops.median, color: C_PEER,
        text: `${fmt(x.mops.median)} Mops/s${x.workers > 1 ? ` (×${fmt(x.mops.median / lbase, 2)})` : ''}` })
    }
    panels.push({
      title: 'Multi-worker churn: aggregate Mops/s (higher is better)',
      subtitle: `each worker churns its own 1000 blocks; sabmalloc: a heap per worker; npm malloc: one allocator behind an Atomics mutex; ${r.meta.cores} cores`,
      bars, log: false, unit: 'Mops/s',
    })
  }
  if (r.ring) {
    panels.push({
      title: 'Producer → consumer: ns per 64-byte block (lower is better)',
      subtitle: 'one worker mallocs and pushes into a 4096-slot ring, another pops and frees (cross-worker frees)',
      bars: [
        { label: 'empty ring (no allocation)', value: r.ring.empty.median, color: C_BASE },
        { label: 'sabmalloc', value: r.ring.alloc.median, color: C_SAB },
        { label: 'native mimalloc (FACTS.md, reference)', value: REFERENCE.mimallocRingNs, color: C_REF, text: `${REFERENCE.mimallocRingNs} ns` },
      ],
      log: false, unit: 'ns', target: { value: TARGETS.ringNs, label: `target ${TARGETS.ringNs} ns` },
    })
  }
  if (r.stress) {
    panels.push({
      title: 'mimalloc-stress wall time in seconds (lower is better)',
      subtitle: `mimalloc test-stress pattern, ${r.stress.label}; memory overhead = peak arena bytes / peak live bytes`,
      bars: [
        { label: 'sabmalloc', value: r.stress.wall?.median ?? null, color: C_SAB,
          text: r.stress.wall ? `${fmt(r.stress.wall.median, 2)} s, memory overhead ${fmt(r.stress.overhead, 2)}` : 'n/a (the run failed)' },
        ...('missing' in r.stress.native
          ? r.stress.comparable
            ? [{ label: 'native mimalloc (FACTS.md, reference)', value: REFERENCE.mimallocStressSeconds, color: C_REF, text: `${REFERENCE.mimallocStressSeconds} s` }]
            : []
          : [{ label: 'native mimalloc (this run)', value: r.stress.native.wall.median, color: C_REF,
              text: `${fmt(r.stress.native.wall.median, 2)} s, memory overhead ${fmt(r.stress.native.overhead.median, 2)}` }]),
      ],
      log: false, unit: 's', target: r.stress.comparable ? { value: TARGETS.stressSeconds, label: `target ${fmt(TARGETS.stressSeconds, 2)} s` } : undefined,
    })
  }
  const body: string[] = []
  let y = 80
  for (const p of panels) {
    const { svg, height } = panelSvg(p, y)
    body.push(svg)
    y += height
  }
  const m = r.meta
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 16px; font-weight: bold; fill: #222; }
  .sub { font-size: 12px; fill: #555; }
  .label { font-size: 13px; fill: #222; text-anchor: end; }
  .value { font-size: 12px; fill: #222; paint-order: stroke; stroke: white; stroke-width: 3px; }
  .tick { font-size: 11px; fill: #666; text-anchor: middle; }
  .axis { font-size: 11px; fill: #666; text-anchor: middle; }
  .grid { stroke: #e5e5e5; stroke-width: 1; }
  .target { stroke: #2ca02c; stroke-width: 2; stroke-dasharray: 5 3; }
  .targetText { font-size: 11px; fill: #2ca02c; text-anchor: middle; }
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="28" class="title" style="font-size: 20px">sabmalloc benchmarks</text>
<text x="20" y="48" class="sub">${esc(`${m.cpu} × ${m.cores}, Node ${m.node}, ${m.date}, median of ${m.runs} runs${m.quick ? ' (--quick: short runs, not representative)' : ''}.`)}</text>
<text x="20" y="64" class="sub">Light grey bars: native code for reference, from FACTS.md unless marked "this run". Dashed green lines: targets.</text>
${body.join('\n')}
</svg>
`
}
