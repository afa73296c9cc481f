import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runStress, type PatternReport, type StressOptions } from '../stress/run.js'
import { Arena } from '../src/index.js'
import { CTL_ROUNDS_DONE, CTL_STOP, CtlLayout, TRANSFERS, createCtl, runTask, type StressTask } from '../workers/patterns.js'

/** Runs one pattern briefly on 2 workers with a fixed seed. */
async function runOne(options: StressOptions): Promise<PatternReport> {
  const report = await runStress({ workers: 2, scale: 10, seed: 0x5eed, ...options })
  expect(report.patterns).toHaveLength(1)
  return report.patterns[0]
}

/** Every block freed, every segment back, nothing abandoned, no worker heap left. */
function expectCleanEnd(p: PatternReport): void {
  expect(p.failures).toEqual([])
  expect(p.ok).toBe(true)
  expect(p.end).toMatchObject({ liveBlocks: 0, liveBytes: 0, segmentsInUse: p.end.metaSegments, abandonedNow: 0, heapsInUse: 0 })
  expect(p.ops).toBeGreaterThan(0)
}

describe('stress harness', () => {
  it('mimalloc-stress: blocks verified, freed across workers, segments abandoned and reclaimed, arena empty at the end', async () => {
    const p = await runOne({ patterns: ['mimalloc-stress'], iterations: 20 })
    expectCleanEnd(p)
    expect(p.rounds).toBe(20)
    expect(p.crossThreadFrees).toBeGreaterThan(0)
    expect(p.abandonedSegments).toBeGreaterThan(0)
    expect(p.reclaimedSegments).toBeGreaterThan(0)
    expect(p.peakLiveBytes).toBeGreaterThan(0)
    expect(p.peakArenaBytes).toBeGreaterThan(p.peakLiveBytes)
  })

  it('larson: lanes outlive their tasks and the arena is empty at the end', async () => {
    expectCleanEnd(await runOne({ patterns: ['larson'], iterations: 10 }))
  })

  it('producer-consumer: every block is freed by the other worker', async () => {
    const p = await runOne({ patterns: ['producer-consumer'], iterations: 10 })
    expectCleanEnd(p)
    expect(p.crossThreadFrees).toBeGreaterThan(0)
  })

  it('churn: private churn on each worker leaves the arena empty', async () => {
    expectCleanEnd(await runOne({ patterns: ['churn'], iterations: 5 }))
  })

  it('recreate: replacing the workers every round keeps the arena consistent', async () => {
    const p = await runOne({ patterns: ['mimalloc-stress'], iterations: 2, recreate: true })
    expectCleanEnd(p)
    expect(p.workerThreads).toBeGreaterThanOrEqual(4)
  })

  it('seconds: the tasks run rounds until the main thread stops them, with arena.check() between rounds', async () => {
    const p = await runOne({ patterns: ['churn'], seconds: 0.5, scale: 1, checkEvery: 1 })
    expectCleanEnd(p)
    expect(p.rounds).toBeGreaterThan(1)
  })

  it('a round that does not finish within the round timeout is reported as a hang', async () => {
    const p = await runOne({ patterns: ['mimalloc-stress'], iterations: 1, scale: 5000, roundTimeoutMs: 50 })
    expect(p.ok).toBe(false)
    expect(p.failures[0].kind).toBe('timeout')
    expect(p.failures[0].message).toContain('round 0 did not finish within 0.05 s')
  })

  it('catches a deliberately corrupted block and reports it with the seed and a replay command', async () => {
    const report = await runStress({
      workers: 2, scale: 10, seed: 1234, patterns: ['mimalloc-stress'], iterations: 3, injectCorruption: true,
    })
    expect(report.ok).toBe(false)
    const p = report.patterns[0]
    const f = p.failures[0]
    expect(f.kind).toBe('corruption')
    expect(f.ptr).toBeGreaterThan(0)
    expect(f.expected).not.toBe(f.found)
    expect(f.where).toBeTruthy()
    expect(p.replay).toContain('--seed 1234')
    expect(p.replay).toContain('--pattern mimalloc-stress')
    expect(p.replay).toContain('--inject-corruption')
  })

})

describe('runTask: the rounds of one logical thread and the work between them', () => {
  const task = (arena: Arena, ctl: SharedArrayBuffer, rounds: number, lastRound: number): StressTask => ({
    pattern: 'mimalloc-stress', arenaId: 1, buffer: arena.buffer, ctl, workers: 1, tid: 0, round: 0, rounds, lastRound,
    checkEvery: 1, seed: 9, scale: 2, large: false, injectCorruption: false,
  })
  const transfers = (ctl: Int32Array): number[] =>
    Array.from(ctl.subarray(new CtlLayout(1).transfer, new CtlLayout(1).transfer + TRANSFERS)).filter((v) => v !== 0)

  it('runs its rounds; after the last one the leader frees the whole transfer array', () => {
    const arena = Arena.create({ size: 16 << 20 })
    const ctlBuffer = createCtl(1)
    const ctl = new Int32Array(ctlBuffer)
    const r = runTask(arena, task(arena, ctlBuffer, 3, 2))
    expect(r.failure).toBeUndefined()
    expect(r.ops).toBeGreaterThan(0)
    expect(Atomics.load(ctl, CTL_ROUNDS_DONE)).toBe(3)
    expect(transfers(ctl)).toEqual([])
    expect(arena.check().liveBlocks).toBe(0)
  })

  it('rounds: 0 runs until the stop flag; rounds before the last free only about half the transfer array', () => {
    const arena = Arena.create({ size: 16 << 20 })
    const ctlBuffer = createCtl(1)
    const ctl = new Int32Array(ctlBuffer)
    Atomics.store(ctl, CTL_STOP, 1) // the round running is the last: exactly one
    const r = runTask(arena, task(arena, ctlBuffer, 0, -1))
    expect(r.failure).toBeUndefined()
    expect(Atomics.load(ctl, CTL_ROUNDS_DONE)).toBe(1)
    const left = transfers(ctl).length
    expect(left).toBeGreaterThan(0)
    expect(arena.check().liveBlocks).toBe(left)
  })
})

describe('stress CLI', () => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const cli = (...args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', 'stress/stress.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 })

  it('rejects a bad flag with exit code 2 and a clear message', () => {
    const r = cli('--workers', 'two')
    expect(r.status).toBe(2)
    expect(String(r.stderr)).toContain("--workers: 'two' is not a non-negative integer")
    expect(cli('--no-such-flag').status).toBe(2)
    expect(cli('--pattern', 'nope').status).toBe(2)
  })

  it('runs, prints the summary table and exits (the pool is destroyed, nothing keeps the process alive)', () => {
    const r = cli('--pattern', 'churn', '--iterations', '1', '--scale', '1', '--seed', '7')
    expect(r.error).toBeUndefined()
    expect(r.status).toBe(0)
    expect(String(r.stdout)).toMatch(/churn +1 /)
    expect(String(r.stdout)).toContain('seed 7')
  })

  it('exits 1 and prints the seed and a replay command when a block is corrupted', () => {
    const r = cli('--pattern', 'mimalloc-stress', '--iterations', '2', '--scale', '5', '--seed', '99', '--inject-corruption')
    expect(r.status).toBe(1)
    expect(String(r.stdout)).toContain('FAILED mimalloc-stress (seed 99)')
    expect(String(r.stdout)).toContain('replay: npm run stress -- --pattern mimalloc-stress')
  })

  it('explains every flag with --help', () => {
    const r = cli('--help')
    expect(r.status).toBe(0)
    for (const flag of ['--workers', '--seconds', '--iterations', '--scale', '--arena-size', '--seed', '--debug', '--large', '--recreate', '--pattern']) {
      expect(String(r.stdout)).toContain(flag)
    }
  })
})
