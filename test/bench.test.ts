import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { parseBenchArgs, WORKLOADS } from '../stress/bench-cli.js'
import { summarize } from '../stress/bench-common.js'
import { buildNativeStress } from '../stress/bench-native.js'
import { renderMarkdown, renderSvg, type BenchResults, type StressResult } from '../stress/bench-report.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BENCH = join(ROOT, 'stress/bench.ts')
const tmpDirs: string[] = []

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-'))
  tmpDirs.push(d)
  return d
}

/** Runs `tsx stress/bench.ts …args` as a child process; resolves with its exit code and output. */
function bench(args: string[], timeoutMs: number): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, ['--import', 'tsx', BENCH, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
        res({ code, stdout, stderr })
      })
  })
}

afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
})

describe('bench command line', () => {
  it('defaults to every workload, 5 runs, writing into stress/', () => {
    const o = parseBenchArgs([])
    expect(o).not.toBe('help')
    if (o === 'help') return
    expect(o.runs).toBe(5)
    expect(o.quick).toBe(false)
    expect(o.only).toEqual([...WORKLOADS])
    expect(o.outDir).toBe(join(ROOT, 'stress'))
  })

  it('--quick shortens to 3 runs unless --runs says otherwise', () => {
    expect(parseBenchArgs(['--quick'])).toMatchObject({ quick: true, runs: 3 })
    expect(parseBenchArgs(['--quick', '--runs', '7'])).toMatchObject({ quick: true, runs: 7 })
  })

  it('--only keeps the named workloads in their fixed order', () => {
    expect(parseBenchArgs(['--only', 'ring,churn'])).toMatchObject({ only: ['churn', 'ring'] })
  })

  it('rejects an unknown workload, a bad run count and an unknown flag', () => {
    expect(() => parseBenchArgs(['--only', 'churn,nope'])).toThrow(/unknown workload 'nope'/)
    expect(() => parseBenchArgs(['--runs', '0'])).toThrow(RangeError)
    expect(() => parseBenchArgs(['--runs', 'x'])).toThrow(RangeError)
    expect(() => parseBenchArgs(['--frobnicate'])).toThrow()
  })

  it('--help prints the usage and writes nothing', async () => {
    const r = await bench(['--help'], 60_000)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--runs N/)
    expect(r.stdout).toMatch(/--only/)
    expect(r.stdout).toMatch(/--out DIR/)
  })
})

describe('bench output', () => {
  it('--quick --only churn writes RESULTS.md and results.svg with a row per allocator into --out', async () => {
    const out = tempDir()
    const results = join(ROOT, 'stress/RESULTS.md')
    const before = existsSync(results) ? statSync(results).mtimeMs : undefined
    const r = await bench(['--quick', '--only', 'churn', '--runs', '2', '--out', out], 120_000)
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const md = readFileSync(join(out, 'RESULTS.md'), 'utf8')
    expect(md).toMatch(/^# sabmalloc benchmark results/)
    expect(md).toMatch(/\| machine \| .+ × \d+, [\d.]+ GiB RAM \|/)
    expect(md).toMatch(/\| Node \| v\d+/)
    expect(md).toMatch(/\| runs \| 2 /)
    expect(md).toMatch(/## 1\. Single-thread churn/)
    for (const row of ['| loop alone', '| sabmalloc |', '| npm `malloc` (codemix) |', '| `new Uint8Array(n)` + GC |', '| @thi.ng/malloc `MemPool` |']) {
      expect(md).toContain(row)
    }
    expect(md).toMatch(/≤ 25 ns [✓✗]/)
    expect(md).toMatch(/≥ 20× \(best peer\) [✓✗]/)
    expect(md).not.toMatch(/## 2\. Multi-worker/)
    const svg = readFileSync(join(out, 'results.svg'), 'utf8')
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    expect(svg.trim()).toMatch(/<\/svg>$/)
    expect(svg).toContain('Single-thread churn')
    expect(svg).toContain('@thi.ng/malloc')
    // the committed results were not touched
    expect(existsSync(results) ? statSync(results).mtimeMs : undefined).toBe(before)
  }, 150_000)

  it('the worker workloads run, end every worker and report each section', async () => {
    const out = tempDir()
    const r = await bench(['--quick', '--runs', '1', '--only', 'workers,ring,debug', '--out', out], 150_000)
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0) // the process exits by itself: no worker left running
    const md = readFileSync(join(out, 'RESULTS.md'), 'utf8')
    expect(md).toMatch(/\| sabmalloc, 1 worker \|/)
    expect(md).toMatch(/\| sabmalloc, 2 workers \|/)
    expect(md).toMatch(/\| sabmalloc, 4 workers \|/)
    expect(md).toMatch(/\| control: sabmalloc, 2 workers, an arena each \|/)
    expect(md).toMatch(/\| npm malloc \+ mutex, 2 workers \|/)
    expect(md).toMatch(/\| empty ring \(no allocation\) \|/)
    expect(md).toMatch(/\| sabmalloc malloc → ring → free \|/)
    expect(md).toMatch(/\| release \|/)
    expect(md).toMatch(/\| debug \|/)
    expect(md).toMatch(/None failed/)
  }, 180_000)
})

describe('native mimalloc on the mimalloc-stress pattern (bench-native.ts)', () => {
  it('builds and runs stress/native/mimalloc-stress.c, or says why it cannot', () => {
    const native = buildNativeStress(2, 20, 30) // big enough to move the RSS well past an idle process's
    if (typeof native === 'string') {
      // a machine without cc or libmimalloc-dev: a reason a person can act on
      expect(native).toMatch(/no C compiler|libmimalloc-dev|native program failed/)
      return
    }
    try {
      const r = native.run()
      expect(r.wallSeconds).toBeGreaterThan(0)
      // peak RSS less an idle process's, over peak live bytes (RSS counts touched pages only, so it
      // may undercount a block that is allocated but never written: no lower bound of 1)
      expect(r.overhead).toBeGreaterThan(0.5)
      expect(r.overhead).toBeLessThan(100)
    } finally {
      native.dispose()
    }
  }, 60_000)

  it('says so when there is no C compiler or the build fails, and leaves no build directory behind', () => {
    const buildDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('sabmalloc-native-'))
    const before = buildDirs()
    expect(buildNativeStress(2, 20, 30, 'sabmalloc-no-such-cc')).toBe('no C compiler (sabmalloc-no-such-cc)')
    expect(buildNativeStress(2, 20, 30, 'false')).toMatch(/^false failed \(is libmimalloc-dev installed\?\)/)
    expect(buildDirs()).toEqual(before)
  })

  const meta: BenchResults['meta'] = {
    cpu: 'test cpu', cores: 2, memBytes: 2 ** 30, load: [0, 0], othersCpu: 0, probeMs: [60, 60], node: 'v20.0.0',
    commit: 'abc1234', date: '2026-11-21', runs: 3, quick: false, only: ['stress'], seconds: 1,
  }
  const stress = (native: StressResult['native']): StressResult => ({
    wall: summarize([2.5, 2.6, 2.7]), overhead: 1.45, pageOverhead: 1.1, comparable: true,
    label: '2 workers, scale 50, 500 rounds', config: '2 workers, scale 50, 500 rounds', native,
  })

  it('reports native mimalloc\'s wall time, the ratio to it and its overhead when measured', () => {
    const r: BenchResults = { meta, stress: stress({ wall: summarize([0.7, 0.8, 0.9]), overhead: summarize([1.8, 1.9, 2.6]) }), problems: [] }
    const md = renderMarkdown(r)
    expect(md).toMatch(/\| native mimalloc, same pattern, between these runs: wall time \(s\) \| 0\.80 \| 0\.70 – 0\.90 \|/)
    expect(md).toMatch(/\| sabmalloc \/ native mimalloc wall time \| 3\.25× \|\s+\| ≤ 4× ✓ \|/)
    expect(md).toMatch(/\| native mimalloc memory overhead .* \| 1\.90 \| 1\.80 – 2\.60 \|/)
    expect(renderSvg(r)).toContain('native mimalloc (this run)')
  })

  it('says why native mimalloc was not measured, and falls back to the FACTS.md figure', () => {
    const r: BenchResults = { meta, stress: stress({ missing: 'no C compiler (cc)' }), problems: [] }
    const md = renderMarkdown(r)
    expect(md).toContain('Native mimalloc was not measured in this run (no C compiler (cc)); its figure in FACTS.md is 0.78 s.')
    expect(md).not.toMatch(/sabmalloc \/ native mimalloc wall time/)
    expect(renderSvg(r)).toContain('native mimalloc (FACTS.md, reference)')
  })
})
