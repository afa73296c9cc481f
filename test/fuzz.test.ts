/* ----------------------------------------------------------------------------
  The misuse fuzzer (stress/fuzz-run.ts) as a test: a short debug-mode run
  with 2 workers and a fixed seed must inject every fault kind, miss none,
  raise no false alarm, keep every live block intact and end with an empty,
  consistent arena; the same seed and round count must inject the same
  faults again; a short release-mode run must catch what release mode
  promises. runFuzz terminates its workers before it resolves. The CLI
  rejects bad flags with exit code 2.
---------------------------------------------------------------------------- */

import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEBUG_KINDS, RELEASE_KINDS, runFuzz, type FaultKind, type FuzzReport, type KindCounts } from '../stress/fuzz-run.js'
import { formatFuzzTable, formatFuzzVerdict } from '../stress/fuzz-report.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SEED = 0x5ab0f022

/** The table and the failures, for assertion messages. */
const explain = (r: FuzzReport): string => `\n${formatFuzzTable(r)}\n${formatFuzzVerdict(r)}`

const entries = (r: FuzzReport): Array<[FaultKind, KindCounts]> => Object.entries(r.counts) as Array<[FaultKind, KindCounts]>

describe('fuzzer, debug mode, 2 workers, ~3 s', () => {
  let r: FuzzReport
  beforeAll(async () => {
    r = await runFuzz({ workers: 2, seed: SEED, seconds: 3, checkEveryMs: 500 })
  })

  it('injects every fault kind, misses none, raises no false alarm and keeps every live block intact', () => {
    expect(Object.keys(r.counts).sort()).toEqual([...DEBUG_KINDS].sort())
    for (const [k, c] of entries(r)) {
      expect(c.injected, `${k} injected${explain(r)}`).toBeGreaterThan(0)
      expect(c.missed, `${k} missed${explain(r)}`).toBe(0)
      expect(c.skipped, `${k} skipped${explain(r)}`).toBe(0)
      expect(c.detected + c.wrongClass + c.badReport + c.missed, `${k}: every injection has an outcome${explain(r)}`).toBe(c.injected)
    }
    expect(r.falseAlarms, explain(r)).toBe(0)
    expect(r.dataErrors, explain(r)).toBe(0)
    expect(r.failures.filter((f) => ['check', 'leak', 'crash', 'hang', 'out-of-memory'].includes(f.type)), explain(r)).toEqual([])
  })

  it('ends with every block freed: arena.check() counts no live block, before and after the workers release their heaps', () => {
    expect(r.finalCheck?.liveBlocks, explain(r)).toBe(0)
    expect(r.releasedCheck?.liveBlocks, explain(r)).toBe(0)
    expect(r.midRunChecks).toBeGreaterThan(0)
    expect(r.uafChecks, 'check() ran while use-after-free victims sat free and named one').toBeGreaterThan(0)
    expect(r.crossFrees).toBeGreaterThan(0)
    expect(r.handOffs).toBeGreaterThan(0)
  })

  it('reports every injected fault with the right error class, pointer and message', () => {
    for (const [k, c] of entries(r)) {
      expect({ kind: k, wrongClass: c.wrongClass, badReport: c.badReport }, explain(r)).toEqual({ kind: k, wrongClass: 0, badReport: 0 })
    }
    expect(r.ok, explain(r)).toBe(true)
  })
})

describe('fuzzer replay', () => {
  it('the same seed, worker count and round count inject the same faults and do the same operations', async () => {
    const a = await runFuzz({ workers: 2, seed: 77, rounds: 40, checkEveryMs: 0 })
    const b = await runFuzz({ workers: 2, seed: 77, rounds: 40, checkEveryMs: 0 })
    expect(a.rounds).toBe(40)
    expect(b.rounds).toBe(40)
    const injected = (r: FuzzReport): Record<string, number> => Object.fromEntries(entries(r).map(([k, c]) => [k, c.injected]))
    expect(injected(b)).toEqual(injected(a))
    expect([b.reallocs, b.handOffs]).toEqual([a.reallocs, a.handOffs])
    expect(a.replay).toMatch(/^npm run fuzz -- --workers 2 --seed 77 --rounds \d+/)
    const c = await runFuzz({ workers: 2, seed: 78, rounds: 40, checkEveryMs: 0 })
    expect(injected(c), 'another seed, other faults').not.toEqual(injected(a))
  })
})

describe('fuzzer, release mode, 2 workers, ~2 s', () => {
  it('rejects every out-of-buffer, unaligned and interior free and reports ≥ 95% of immediate double frees as DoubleFreeError', async () => {
    const r = await runFuzz({ workers: 2, seed: SEED, seconds: 2, release: true, checkEveryMs: 500 })
    expect(Object.keys(r.counts).sort()).toEqual([...RELEASE_KINDS].sort())
    for (const [k, c] of entries(r)) {
      expect(c.injected, `${k} injected${explain(r)}`).toBeGreaterThan(0)
      expect(c.missed, `${k} missed${explain(r)}`).toBe(0)
      if (k !== 'double-free-immediate') expect(c.detected, `${k}${explain(r)}`).toBe(c.injected)
    }
    expect(r.doubleFreeRate, explain(r)).toBeGreaterThanOrEqual(0.95)
    expect(r.falseAlarms, explain(r)).toBe(0)
    expect(r.dataErrors, explain(r)).toBe(0)
    expect(r.finalCheck?.liveBlocks, explain(r)).toBe(0)
    expect(r.ok, explain(r)).toBe(true)
  })
})

describe('fuzzer command line', () => {
  const run = (args: string[]): Promise<{ code: number, out: string, err: string }> => new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'stress/fuzz.ts', ...args], { cwd: ROOT, timeout: 30_000 }, (error, out, err) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, out, err })
    })
  })

  it('prints its help with --help and rejects bad flags with a message and exit code 2', async () => {
    const [help, unknown, badWorkers, badKind] = await Promise.all([
      run(['--help']), run(['--bogus']), run(['--workers', '0']), run(['--release', '--kinds', 'overflow']),
    ])
    expect(help.code).toBe(0)
    expect(help.out).toContain('--seed')
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/bogus/)
    expect(badWorkers.code).toBe(2)
    expect(badWorkers.err).toMatch(/workers/)
    expect(badKind.code).toBe(2)
    expect(badKind.err).toMatch(/overflow/)
  })
})
