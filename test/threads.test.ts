/* ----------------------------------------------------------------------------
  Multi-worker tests: real worker_threads sharing one arena. Each test spells
  out a scenario of DESIGN.md §3 (cross-thread free, delayed free of full
  pages, abandon/reclaim, dead-worker recovery, concurrent growth, heap slot
  reuse). Seeds are fixed; every assertion message names the scenario and
  its seed. Every test terminates all its workers in `finally`, and every wait
  has a deadline, so a failure never hangs the suite.

  Workers are the role files workers/test-*.ts, started through
  workers/test-client.ts (see there why not workers/spawn.ts).
---------------------------------------------------------------------------- */

import { fileURLToPath } from 'node:url'
import type { Worker } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { afterEach, describe, expect, it } from 'vitest'
import { Arena, superviseWorker, supervisePool } from '../src/index.js'
import { ARENA_GROW_STEP, LARGE_OBJ_MAX, SEGMENT_SIZE, SMALL_PAGE_SHIFT } from '../src/layout.js'
import { TestWorker, terminateAll } from '../workers/test-client.js'
import { CTL_BYTES, CTL_GO, CTL_PARKED, between, mixedSizes, rng, signal, verifyBlocks } from '../workers/test-common.js'

/** Absolute path of a worker file. */
const workerFile = (name: string): string => fileURLToPath(new URL(`../workers/${name}`, import.meta.url))

/**
 * Every worker and pool a test starts. Tests end theirs in `finally`; this
 * is the safety net for a test that vitest abandoned on its deadline.
 */
const started = new Set<TestWorker>()
const pools = new Set<Piscina>()
afterEach(async () => {
  await terminateAll(started)
  started.clear()
  await Promise.allSettled([...pools].map((p) => p.destroy()))
  pools.clear()
})

/** Starts the role worker `file` (workers/test-*.ts) with `workerData`. */
function spawn(name: string, file: string, workerData: unknown, beforeListen?: (w: Worker) => void): TestWorker {
  const w = new TestWorker(name, workerFile(file), workerData, beforeListen)
  started.add(w)
  return w
}

/**
 * Polls `pred` until it holds; throws after `ms` (a deadline, not a timing
 * assertion) or as soon as one of `workers` has ended.
 */
async function waitFor(pred: () => boolean, what: string, workers: TestWorker[] = [], ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    const dead = workers.find((w) => w.end !== undefined)
    if (dead !== undefined) throw new Error(`${dead.name} ended (code ${dead.end!.code}) while waiting for ${what}: ${dead.end!.error?.stack ?? ''}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** A fresh control buffer for the CTL_* words of test-common.ts. */
function control(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(CTL_BYTES))
}

/** Blocks of `size` bytes that fill `segments` whole small segments (page 0 of each starts after the segment header). */
function blocksFillingSegments(arena: Arena, size: number, segments: number): number {
  const page = 1 << SMALL_PAGE_SHIFT
  const perSegment = Math.floor((page - arena.segHeaderSize) / size) + (SEGMENT_SIZE / page - 1) * Math.floor(page / size)
  return perSegment * segments
}

/** A copy of `xs` in a random order drawn from `seed` (Fisher–Yates). */
function shuffled<X>(xs: X[], seed: number): X[] {
  const r = rng(seed)
  const out = xs.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** Throws unless the blocks [offset, size] are pairwise disjoint (an empty block counts as 1 byte). */
function expectNoOverlap(blocks: Array<[number, number]>, why: string): void {
  const sorted = blocks.slice().sort((x, y) => x[0] - y[0])
  for (let k = 1; k < sorted.length; k++) {
    const [p, size] = sorted[k - 1]
    if (p + Math.max(size, 1) > sorted[k][0]) {
      throw new Error(`${why} blocks overlap: 0x${p.toString(16)}+${size} and 0x${sorted[k][0].toString(16)}`)
    }
  }
}

const T = 30_000 // per-test deadline

/** Suffix of the test names and messages of debug-mode variants. */
const mode = (debug: boolean): string => debug ? ' (debug mode)' : ''

describe('multi-worker', () => {
  /* ----- 1. cross-thread frees ----------------------------------------------------- */

  for (const debug of [false, true]) it(`B frees every block A allocated (cross-thread), A collects, nothing leaks${mode(debug)}`, async () => {
    const seed = 0xc0ffee01
    const n = debug ? 1500 : 3000 // debug mode is slower
    const why = `[cross-worker frees${mode(debug)}, seed=0x${seed.toString(16)}, n=${n}]`
    const arena = Arena.create({ size: 64 << 20, debug })
    const sizes = mixedSizes(seed, n)
    const sizes2 = mixedSizes(seed + 1, n)
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info')]) // both hold a heap

      // sequential: A allocates, B checks and frees everything
      const ptrs = await a.call<number[]>('alloc', { sizes, tag: 1 })
      expect(new Set(ptrs).size, `${why} distinct blocks`).toBe(n)
      expect(arena.check().liveBlocks, `${why} live after A's mallocs`).toBe(n)
      await b.call('verifyAndFree', { ptrs, sizes, tag: 1 })
      // blocks waiting on xthread_free / delayed lists are not live
      expect(arena.check().liveBlocks, `${why} live after B's frees, before A collects`).toBe(0)
      expect(arena.stats().crossThreadFrees, `${why} crossThreadFrees`).toBeGreaterThanOrEqual(n)
      await a.call('collect')
      let s = arena.stats()
      expect(s.liveBlocks, `${why} used counts after A collected`).toBe(0)
      expect(s.segmentsInUse, `${why} A's segments back after collect`).toBe(arena.metaSegments)

      // concurrent: A allocates a second batch while B frees the first again
      const again = await a.call<number[]>('alloc', { sizes, tag: 3 })
      const [more] = await Promise.all([
        a.call<number[]>('alloc', { sizes: sizes2, tag: 4 }),
        b.call('verifyAndFree', { ptrs: again, sizes, tag: 3 }),
      ])
      await a.call('verify', { ptrs: more, sizes: sizes2, tag: 4 })
      expect(arena.check().liveBlocks, `${why} live after concurrent alloc/free`).toBe(n)
      await b.call('verifyAndFree', { ptrs: more, sizes: sizes2, tag: 4 })
      await a.call('collect')

      await a.call('release')
      await b.call('release')
      const c = arena.check()
      s = arena.stats()
      expect(c.liveBlocks, `${why} live at the end`).toBe(0)
      expect(c.segmentsInUse, `${why} segments at the end`).toBe(arena.metaSegments)
      expect(s.crossThreadFrees, `${why} crossThreadFrees at the end`).toBeGreaterThanOrEqual(3 * n)
      expect(s.heapsInUse, `${why} heaps at the end`).toBe(0)
    } finally {
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 1b. racing double frees (debug mode) ------------------------------------------ */

  it('B and C race to free the same blocks of A (debug mode): each block is freed once, every other free is a DoubleFreeError', async () => {
    const seed = 0x5eed001b
    const n = 3000
    const rounds = 12 // a race per block and round; a few rounds make a lost race likely to show
    const why = (round: number): string => `[racing double frees (debug mode), seed=0x${seed.toString(16)}, n=${n}, round ${round}]`
    const arena = Arena.create({ size: 64 << 20, debug: true })
    // tiny blocks: a free is then short, so the two freers (kept in step, see
    // raceFree) often work on the same block at the same moment
    const r = rng(seed)
    const sizes = Array.from({ length: n }, () => between(r, 0, 8))
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    let c: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      c = spawn('C', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info'), c.call('info')])
      type Race = { freed: number, doubleFrees: number, others: string[] }
      for (let round = 0; round < rounds; round++) {
        const ptrs = await a.call<number[]>('alloc', { sizes, tag: round })
        // both start together (a barrier in `ctl`) and free the whole list in the same order
        const ctl = control().buffer
        const [rb, rc] = await Promise.all([b.call<Race>('raceFree', { ptrs, ctl }), c.call<Race>('raceFree', { ptrs, ctl })])
        expect([...rb.others, ...rc.others], `${why(round)} errors other than DoubleFreeError`).toEqual([])
        expect(rb.freed + rc.freed, `${why(round)} blocks freed (B ${rb.freed}, C ${rc.freed})`).toBe(n)
        expect(rb.doubleFrees + rc.doubleFrees, `${why(round)} double frees reported (B ${rb.doubleFrees}, C ${rc.doubleFrees})`).toBe(n)
        expect(arena.check().liveBlocks, `${why(round)} live after the race`).toBe(0)
        await a.call('collect')
      }
      await Promise.all([a.call('release'), b.call('release'), c.call('release')])
      expect(arena.check(), `${why(rounds - 1)} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    } finally {
      await terminateAll([a, b, c])
    }
  }, T)

  /* ----- 1c. release while another thread frees into the heap's full pages ---------------- */

  for (const debug of [false, true]) it(`A releases its heap while B is freeing into A's full pages: no block is lost${mode(debug)}`, async () => {
    const seed = 0x5eed001c
    const n = 12_000
    const why = `[release amid cross-thread frees${mode(debug)}, seed=0x${seed.toString(16)}, n=${n}]`
    const arena = Arena.create({ size: 64 << 20, debug })
    const ctl = control()
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info')])
      // one size: A's pages fill up and sit in its full queue (delayed free on)
      const sizes = Array(n).fill(256)
      const ptrs = await a.call<number[]>('alloc', { sizes, tag: 1 })
      await b.call('verify', { ptrs, sizes, tag: 1 })
      const order = shuffled(ptrs, seed) // frees hit A's pages in random order
      // A releases once B has freed a quarter; B goes on freeing meanwhile
      await Promise.all([
        a.call('releaseAmid', { ctl: ctl.buffer, after: n / 4 }),
        b.call('freeShowingProgress', { ptrs: order, ctl: ctl.buffer }),
      ])
      await a.call('exit')
      await a.ended
      expect(arena.check().liveBlocks, `${why} live once B freed everything`).toBe(0)
      expect(arena.stats().heapsInUse, `${why} heaps after A left`).toBe(1)
      await b.call('collect', true)
      const s = arena.stats()
      expect(s.abandonedNow, `${why} abandoned after B's collect(true)`).toBe(0)
      expect(s.crossThreadFrees, `${why} crossThreadFrees`).toBe(n)
      expect(arena.check(), `${why} after B's collect(true)`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
      await b.call('release')
    } finally {
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 2. delayed free of full pages; huge blocks ------------------------------------ */

  it('frees into A\'s full pages reach A through its delayed list: A reuses them, no new segment', async () => {
    const size = 1024
    const arena = Arena.create({ size: 64 << 20 })
    const n = blocksFillingSegments(arena, size, 2)
    const why = `[full-page delayed free, ${n} blocks of ${size} B]`
    const ctl = control()
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer, ctl: ctl.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info')]) // both hold a heap
      const ptrs = await a.call<number[]>('alloc', { sizes: Array(n).fill(size), tag: 1 })
      const before = arena.stats()
      expect(before.segmentsInUse, `${why} A filled exactly 2 segments`).toBe(arena.metaSegments + 2)

      // A parks (Atomics.wait); B frees every other block meanwhile: each of A's
      // pages is full, so the first free into it goes to A's delayed list
      const half = n / 2
      const freed = ptrs.filter((_, i) => i % 2 === 1)
      const kept = ptrs.filter((_, i) => i % 2 === 0)
      const parked = a.call<number[]>('parkThenAlloc', { sizes: Array(half).fill(size), tag: 2 })
      await waitFor(() => Atomics.load(ctl, CTL_PARKED) === 1, 'A to park', [a])
      await b.call('verifyAndFree', { ptrs: freed, sizes: Array(half).fill(size), tag: 1 })
      expect(arena.check().liveBlocks, `${why} live while A is parked`).toBe(half)
      expect(arena.stats().crossThreadFrees, `${why} crossThreadFrees`).toBeGreaterThanOrEqual(half)
      signal(ctl, CTL_GO)
      const reused = await parked

      const after = arena.stats()
      expect(after.segmentsInUse, `${why} segments after A allocated again`).toBe(before.segmentsInUse)
      const freedSet = new Set(freed)
      expect(reused.filter((p) => !freedSet.has(p)), `${why} blocks not taken from the freed ones`).toEqual([])
      expect(new Set(reused).size, `${why} distinct reused blocks`).toBe(half)
      expect(arena.check().liveBlocks, `${why} live after reuse`).toBe(n)

      await b.call('verifyAndFree', { ptrs: kept, sizes: Array(half).fill(size), tag: 1 })
      await b.call('verifyAndFree', { ptrs: reused, sizes: Array(half).fill(size), tag: 2 })
      await a.call('collect')
      expect(arena.check(), `${why} everything back after A collected`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })

      // huge blocks (> LARGE_OBJ_MAX) freed by B: their segments come back when A allocates again…
      const huge = [LARGE_OBJ_MAX + 88 * 1024, 1536 * 1024 + 8, 3 * 1024 * 1024 + 5]
      const h1 = await a.call<number[]>('alloc', { sizes: huge, tag: 5 })
      const withHuge = arena.stats().segmentsInUse
      const spans = huge.reduce((t, n) => t + Math.ceil((n + arena.segHeaderSize) / SEGMENT_SIZE), 0)
      expect(withHuge, `${why} huge segments claimed`).toBeGreaterThanOrEqual(arena.metaSegments + spans)
      await b.call('verifyAndFree', { ptrs: h1, sizes: huge, tag: 5 })
      const h2 = await a.call<number[]>('alloc', { sizes: huge, tag: 6 })
      expect(arena.stats().segmentsInUse, `${why} segments after A allocated the huge blocks again`).toBe(withHuge)
      // …or when A collects
      await b.call('verifyAndFree', { ptrs: h2, sizes: huge, tag: 6 })
      await a.call('collect')
      expect(arena.stats().segmentsInUse, `${why} segments after A collected the huge frees`).toBe(arena.metaSegments)

      await a.call('release')
      await b.call('release')
      expect(arena.check(), `${why} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    } finally {
      signal(ctl, CTL_GO)
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 2b. cross-thread free of blocks aligned beyond the segment size ----------------------- */

  for (const debug of [false, true]) it(`B frees A's blocks aligned to 512 KiB and 1 MiB (runs over-claimed, then trimmed): A gets every segment back${mode(debug)}`, async () => {
    const arena = Arena.create({ size: 64 << 20, debug })
    const sizes = [0, 8, 5000, 300 * 1024, (2 << 20) + 5]
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info')])
      for (const alignment of [512 * 1024, 1 << 20]) {
        const why = `[cross-thread free of ${alignment}-aligned blocks${mode(debug)}]`
        const tag = alignment >>> 10
        const ptrs = await a.call<number[]>('allocAligned', { sizes, alignment, tag }) // checks the alignment
        expect(arena.check().liveBlocks, `${why} live after A's mallocs`).toBe(sizes.length)
        const xfrees = arena.stats().crossThreadFrees
        await b.call('verifyAndFree', { ptrs, sizes, tag })
        expect(arena.stats().crossThreadFrees - xfrees, `${why} crossThreadFrees`).toBe(sizes.length)
        expect(arena.check().liveBlocks, `${why} live after B's frees`).toBe(0)
        await a.call('collect')
        expect(arena.check(), `${why} after A collected`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
      }
      await a.call('release')
      await b.call('release')
      expect(arena.check().segmentsInUse).toBe(arena.metaSegments)
    } finally {
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 3. release, then free from elsewhere ------------------------------------------- */

  for (const debug of [false, true]) it(`A releases and exits with live blocks; B frees them all and collect(true) reclaims A's segments${mode(debug)}`, async () => {
    const seed = 0x5eed0003
    const n = debug ? 1000 : 2000 // debug mode is slower
    const why = `[release then free elsewhere${mode(debug)}, seed=0x${seed.toString(16)}, n=${n}]`
    const arena = Arena.create({ size: 64 << 20, debug })
    const sizes = mixedSizes(seed, n, true)
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      await Promise.all([a.call('info'), b.call('info')]) // both hold a heap
      const ptrs = await a.call<number[]>('alloc', { sizes, tag: 1 })
      await a.call('release')
      await a.call('exit')
      expect((await a.ended).code, `${why} A's exit code`).toBe(0)

      let s = arena.stats()
      expect(s.heapsInUse, `${why} heaps after A left`).toBe(1)
      expect(s.abandonedSegments, `${why} abandonedSegments`).toBeGreaterThan(0)
      expect(s.abandonedNow, `${why} abandonedNow`).toBe(s.abandonedSegments)
      expect(arena.check().liveBlocks, `${why} A's blocks still live`).toBe(n)

      await b.call('verifyAndFree', { ptrs, sizes, tag: 1 })
      expect(arena.check().liveBlocks, `${why} live after B's frees`).toBe(0)
      await b.call('collect', true)
      s = arena.stats()
      expect(s.reclaimedSegments, `${why} reclaimedSegments`).toBeGreaterThan(0)
      expect(s.abandonedNow, `${why} abandoned after collect(true)`).toBe(0)
      expect(arena.check(), `${why} after B's collect(true)`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })

      await b.call('release')
      expect(arena.stats().heapsInUse, `${why} heaps at the end`).toBe(0)
      expect(arena.check().segmentsInUse, `${why} segments at the end`).toBe(arena.metaSegments)
    } finally {
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 4. reclaim of abandoned segments with live blocks ---------------------------------- */

  for (const debug of [false, true]) it(`B reclaims the segments A abandoned with live blocks, then frees A's blocks as its own${mode(debug)}`, async () => {
    const size = 1024
    const arena = Arena.create({ size: 64 << 20, debug })
    // a segment and a half of `size` blocks, and a page of 96-byte blocks: 2 segments
    const sizes = [...Array(blocksFillingSegments(arena, size, 3) / 2).fill(size), ...Array(300).fill(96)]
    const n = sizes.length
    const why = `[reclaim with live blocks${mode(debug)}, ${n} blocks]`
    let a: TestWorker | undefined
    let b: TestWorker | undefined
    try {
      a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      b = spawn('B', 'test-freer.ts', { buffer: arena.buffer })
      const [, { heapId: bId }] = await Promise.all([a.call('info'), b.call<{ heapId: number }>('info')]) // both hold a heap
      const ptrs = await a.call<number[]>('alloc', { sizes, tag: 1 })
      const aSegments = arena.stats().segmentsInUse - arena.metaSegments
      expect(aSegments, `${why} A's segments`).toBeGreaterThanOrEqual(2)
      await a.call('release')
      await a.call('exit')
      await a.ended

      let s = arena.stats()
      expect(s.abandonedNow, `${why} abandoned after A's release`).toBe(aSegments)
      expect(arena.check().liveBlocks, `${why} live after A's release`).toBe(n)
      const reclaimed0 = s.reclaimedSegments

      // B allocates the same size class: no page of its own → reclaims one of A's segments, one with
      // room for the request; a forced collect takes the others
      const [mine] = await b.call<number[]>('alloc', { sizes: [size], tag: 2 })
      s = arena.stats()
      expect(s.reclaimedSegments, `${why} reclaimedSegments after B's malloc`).toBe(reclaimed0 + 1)
      expect(s.abandonedNow, `${why} abandoned after B's malloc`).toBe(aSegments - 1)
      await b.call('collect', true)
      s = arena.stats()
      expect(s.abandonedNow, `${why} abandoned after B's collect(true)`).toBe(0)
      expect(arena.check().liveBlocks, `${why} live after B's malloc`).toBe(n + 1)
      expect(s.heaps.find((h) => h.id === bId)?.liveBlocks, `${why} blocks B owns`).toBe(n + 1)

      // A's blocks are B's now: freeing them is local, not cross-thread
      const xfrees = s.crossThreadFrees
      await b.call('verifyAndFree', { ptrs, sizes, tag: 1 })
      expect(arena.stats().crossThreadFrees, `${why} crossThreadFrees after B freed A's blocks`).toBe(xfrees)
      expect(arena.check().liveBlocks, `${why} live after B freed A's blocks`).toBe(1)

      await b.call('verifyAndFree', { ptrs: [mine], sizes: [size], tag: 2 })
      await b.call('collect')
      expect(arena.check(), `${why} after B's collect`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
      await b.call('release')
      expect(arena.stats().heapsInUse, `${why} heaps at the end`).toBe(0)
    } finally {
      await terminateAll([a, b])
    }
  }, T)

  /* ----- 4b. concurrent reclaim --------------------------------------------------------- */

  it('B, C and D reclaim A\'s abandoned segments at the same time: each segment goes to one heap, no live block is handed out', async () => {
    const seed = 0x5eed004b
    const n = 6000
    const parties = 3
    const why = `[concurrent reclaim, seed=0x${seed.toString(16)}, n=${n}]`
    const arena = Arena.create({ size: 64 << 20 })
    const r = rng(seed)
    const smallSizes = (count: number): number[] => Array.from({ length: count }, () => between(r, 0, 4096))
    const aSizes = smallSizes(n)
    const ws: TestWorker[] = []
    try {
      const a = spawn('A', 'test-owner.ts', { buffer: arena.buffer })
      ws.push(a)
      for (const name of ['B', 'C', 'D']) ws.push(spawn(name, 'test-freer.ts', { buffer: arena.buffer }))
      const reclaimers = ws.slice(1)
      await Promise.all(ws.map((w) => w.call('info')))

      // A allocates, frees every third block (room in its pages), releases with the rest live
      const aPtrs = await a.call<number[]>('alloc', { sizes: aSizes, tag: 1 })
      await a.call('free', { ptrs: aPtrs.filter((_, i) => i % 3 === 0) })
      const aLive = aPtrs.filter((_, i) => i % 3 !== 0)
      const aLiveSizes = aSizes.filter((_, i) => i % 3 !== 0)
      await a.call('release')
      await a.call('exit')
      await a.ended
      const abandoned = arena.stats().abandonedNow
      expect(abandoned, `${why} A's abandoned segments`).toBeGreaterThan(4)

      // B, C, D allocate the same kind of sizes at once: each reclaims some of A's segments
      const ctl = control().buffer
      const mine = reclaimers.map(() => smallSizes(n / 2))
      const got = await Promise.all(reclaimers.map((w, i) => w.call<number[]>('allocTogether', { sizes: mine[i], tag: 10 + i, ctl, parties })))
      let s = arena.stats()
      expect(s.reclaimedSegments, `${why} reclaimedSegments ≤ abandoned (a segment reclaimed twice counts twice)`).toBeLessThanOrEqual(s.abandonedSegments)
      expect(s.reclaimedSegments, `${why} reclaimedSegments`).toBeGreaterThan(0)
      verifyBlocks(arena.u8, aLive, aLiveSizes, 1, `${why} A's live blocks after the reclaim`)
      got.forEach((ptrs, i) => verifyBlocks(arena.u8, ptrs, mine[i], 10 + i, `${why} ${reclaimers[i].name}'s blocks`))
      expectNoOverlap([...aLive.map((p, i): [number, number] => [p, aLiveSizes[i]]),
        ...got.flatMap((ptrs, k) => ptrs.map((p, i): [number, number] => [p, mine[k][i]]))], why)
      expect(arena.check().liveBlocks, `${why} live after the reclaim`).toBe(aLive.length + got.reduce((t, g) => t + g.length, 0))

      // everyone frees a third of A's blocks and all of its own, at once (local or cross-thread)
      await Promise.all(reclaimers.map((w, i) => w.call('freeTogether', {
        ptrs: [...aLive.filter((_, j) => j % parties === i), ...got[i]], ctl, parties,
      })))
      for (const w of reclaimers) await w.call('collect', true)
      await Promise.all(reclaimers.map((w) => w.call('release')))
      s = arena.stats()
      expect(s.abandonedNow, `${why} abandoned at the end`).toBe(0)
      expect(s.reclaimedSegments, `${why} every abandoned segment reclaimed exactly once`).toBe(s.abandonedSegments)
      expect(arena.check(), `${why} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    } finally {
      await terminateAll(ws)
    }
  }, T)

  /* ----- 5 and 6. dead workers: crash, terminate, piscina ------------------------------------ */

  /** Main-thread end checks once a dead worker's heap was reclaimed: blocks readable, freeable, nothing leaks. */
  function freeFromMain(arena: Arena, ptrs: number[], sizes: number[], tag: number, why: string): void {
    expect(arena.check().liveBlocks, `${why} the dead worker's blocks are still live`).toBe(ptrs.length)
    verifyBlocks(arena.u8, ptrs, sizes, tag, why)
    const heap = arena.createHeap()
    for (const p of ptrs) heap.free(p)
    expect(arena.check().liveBlocks, `${why} live after the main thread freed them`).toBe(0)
    heap.collect(true)
    expect(arena.check(), `${why} after the main thread's collect(true)`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    heap.release()
    expect(arena.stats().heapsInUse, `${why} heaps at the end`).toBe(0)
  }

  for (const debug of [false, true]) it(`a worker that dies of an uncaught error: superviseWorker reclaims its heap, its blocks stay valid${mode(debug)}`, async () => {
    const seed = 0x5eed0005
    const sizes = mixedSizes(seed, 1500, true)
    const why = `[crash recovery${mode(debug)}, seed=0x${seed.toString(16)}]`
    const arena = Arena.create({ size: 64 << 20, debug })
    let w: TestWorker | undefined
    try {
      w = spawn('crasher', 'test-crash.ts', { buffer: arena.buffer, sizes, tag: 7 },
        (worker) => superviseWorker(arena, worker))
      const { ptrs } = await w.note<{ ptrs: number[] }>()
      expect(arena.stats().heapsInUse, `${why} heaps while the worker lives`).toBe(1)
      w.worker.postMessage('crash')
      const end = await w.ended
      expect(end.error?.message, `${why} the worker died of its error`).toContain('deliberate uncaught error')
      expect(end.code, `${why} exit code`).toBe(1)
      expect(arena.stats().heapsInUse, `${why} heaps after the crash`).toBe(0)
      freeFromMain(arena, ptrs, sizes, 7, why)
    } finally {
      await terminateAll([w])
    }
  }, T)

  for (const debug of [false, true]) it(`a worker terminated while parked idle: superviseWorker reclaims its heap, its blocks stay valid${mode(debug)}`, async () => {
    const seed = 0x5eed0006
    const sizes = mixedSizes(seed, 1500, true)
    const why = `[terminate recovery${mode(debug)}, seed=0x${seed.toString(16)}]`
    const arena = Arena.create({ size: 64 << 20, debug })
    const ctl = control()
    let w: TestWorker | undefined
    try {
      w = spawn('idler', 'test-idle.ts', { buffer: arena.buffer, sizes, tag: 8, ctl: ctl.buffer },
        (worker) => superviseWorker(arena, worker))
      const { ptrs } = await w.note<{ ptrs: number[] }>()
      await waitFor(() => Atomics.load(ctl, CTL_PARKED) === 1, 'the worker to park', [w])
      expect(arena.stats().heapsInUse, `${why} heaps while the worker is parked`).toBe(1)
      await w.terminate()
      expect(arena.stats().heapsInUse, `${why} heaps after terminate()`).toBe(0)
      freeFromMain(arena, ptrs, sizes, 8, why)
    } finally {
      signal(ctl, CTL_GO)
      await terminateAll([w])
    }
  }, T)

  it('a piscina pool destroyed with heaps and live blocks: supervisePool reclaims every heap', async () => {
    const seed = 0x5eed0066
    const tasks = 8
    const why = `[piscina recovery, seed=0x${seed.toString(16)}, ${tasks} tasks]`
    const arena = Arena.create({ size: 64 << 20 })
    // A TypeScript task file needs tsx in the pool threads: execArgv ['--import', 'tsx']
    // works for piscina 5 on Node 20 (see FACTS.md), also when the pool is made inside vitest.
    const pool = new Piscina({
      filename: workerFile('test-pool-task.ts'),
      execArgv: ['--import', 'tsx'],
      minThreads: 2,
      maxThreads: 2,
    })
    pools.add(pool)
    let destroyed = false
    try {
      supervisePool(arena, pool)
      const sizes = Array.from({ length: tasks }, (_, i) => mixedSizes(seed + i, 200))
      const results = await Promise.all(sizes.map((s, i) =>
        pool.run({ buffer: arena.buffer, sizes: s, tag: 100 + i }) as Promise<{ threadId: number, heapId: number, ptrs: number[] }>))
      const threads = new Set(results.map((r) => r.threadId))
      expect(arena.stats().heapsInUse, `${why} one heap per pool thread`).toBe(threads.size)
      await pool.destroy()
      destroyed = true
      pools.delete(pool)
      await waitFor(() => arena.stats().heapsInUse === 0, `${why} every pool heap to be reclaimed`)
      results.forEach((r, i) => verifyBlocks(arena.u8, r.ptrs, sizes[i], 100 + i, `${why} task ${i}`))
      const all = results.flatMap((r) => r.ptrs)
      // freeFromMain checks the patterns of one tag: the per-task checks above did that
      expect(arena.check().liveBlocks, `${why} the pool's blocks are still live`).toBe(all.length)
      const heap = arena.createHeap()
      for (const p of all) heap.free(p)
      heap.collect(true)
      expect(arena.check(), `${why} after the main thread freed and collected`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
      heap.release()
    } finally {
      if (!destroyed) {
        pools.delete(pool)
        await pool.destroy()
      }
    }
  }, T)

  for (const how of ['throw', 'exit'] as const) {
    const death = how === 'throw' ? 'dies of an uncaught error' : 'calls process.exit(0)'
    it(`a piscina thread that ${death} inside a task: supervisePool reclaims its heap`, async () => {
      const seed = how === 'throw' ? 0x5eed0067 : 0x5eed0068
      const sizes = mixedSizes(seed, 300)
      const why = `[piscina thread ${how}, seed=0x${seed.toString(16)}]`
      const arena = Arena.create({ size: 32 << 20 })
      const pool = new Piscina({ filename: workerFile('test-pool-task.ts'), execArgv: ['--import', 'tsx'], minThreads: 1, maxThreads: 1 })
      pools.add(pool)
      try {
        supervisePool(arena, pool)
        pool.on('error', () => {}) // piscina re-emits a dead thread's error when no task is waiting
        const out = new Uint32Array(new SharedArrayBuffer(4 * (sizes.length + 1)))
        await expect(pool.run({ buffer: arena.buffer, sizes, tag: 9, out: out.buffer, how }, { name: 'allocAndDie' }), `${why} the task`).rejects.toThrow()
        expect(out[0], `${why} blocks the task reported`).toBe(sizes.length)
        const ptrs = Array.from(out.subarray(1))
        await waitFor(() => arena.stats().heapsInUse === 0, `${why} the dead thread's heap to be reclaimed`, [], 3_000)
        freeFromMain(arena, ptrs, sizes, 9, why)
      } finally {
        pools.delete(pool)
        await pool.destroy()
      }
    }, T)
  }

  /* ----- 7. concurrent growth ------------------------------------------------------------- */

  for (const debug of [false, true]) it(`4 workers allocating at once grow a 4 MiB arena to hold ${debug ? 16 : 40} MiB: few grows, every view current, no block shared${mode(debug)}`, async () => {
    const seed = 0x5eed0007
    const workers = 4
    const bytesEach = (debug ? 4 : 10) << 20 // debug mode is slower
    const why = `[concurrent growth${mode(debug)}, seed=0x${seed.toString(16)}, ${workers} workers × ${bytesEach >> 20} MiB]`
    const arena = Arena.create({ size: 4 << 20, maxSize: 256 << 20, debug })
    const initialSegments = arena.buffer.byteLength / SEGMENT_SIZE
    const growStep = arena.i32[ARENA_GROW_STEP]
    const ctl = control()
    const ws: TestWorker[] = []
    try {
      for (let i = 0; i < workers; i++) ws.push(spawn(`grow${i}`, 'test-grow.ts', { buffer: arena.buffer, ctl: ctl.buffer }))
      await Promise.all(ws.map((w) => w.call('info')))
      const results = await Promise.all(ws.map((w, i) =>
        w.call<{ ptrs: number[], sizes: number[], u8Length: number, byteLength: number }>('grow', { index: i, workers, bytes: bytesEach, seed: seed + i })))

      const s = arena.stats()
      const finalLength = arena.buffer.byteLength
      const finalSegments = finalLength / SEGMENT_SIZE
      const maxGrows = Math.floor((finalSegments - initialSegments) / growStep) + workers
      expect(s.grows, `${why} the buffer grew`).toBeGreaterThan(0)
      expect(s.grows, `${why} grows ≤ (${finalSegments} − ${initialSegments}) / ${growStep} + ${workers}`).toBeLessThanOrEqual(maxGrows)
      results.forEach((r, i) => {
        expect(r.u8Length, `${why} worker ${i}'s arena.u8.length`).toBe(finalLength)
        expect(r.byteLength, `${why} worker ${i}'s buffer.byteLength`).toBe(finalLength)
      })
      expect(arena.u8.length, `${why} main's arena.u8.length`).toBe(finalLength)

      // every block intact and no two blocks overlap
      const blocks: Array<[number, number]> = []
      results.forEach((r, i) => {
        verifyBlocks(arena.u8, r.ptrs, r.sizes, i, `${why} main checking worker ${i}`)
        r.ptrs.forEach((p, j) => blocks.push([p, r.sizes[j]]))
      })
      expectNoOverlap(blocks, why)
      expect(arena.check().liveBlocks, `${why} live blocks`).toBe(blocks.length)

      await Promise.all(ws.map((w, i) => w.call('free', { ptrs: results[i].ptrs })))
      await Promise.all(ws.map((w) => w.call('release')))
      expect(arena.check(), `${why} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
      expect(arena.stats().heapsInUse, `${why} heaps at the end`).toBe(0)
    } finally {
      await terminateAll(ws)
    }
  }, T)

  /* ----- 8. more workers over time than heap slots ------------------------------------------ */

  interface ShortLived { heapId?: number, threadId?: number, kept?: number[], keptSizes?: number[], error?: string }

  /** Runs one test-short-lived worker to its end; returns what it reported. */
  async function shortLived(arena: Arena, sizes: number[], tag: number, hold?: Int32Array): Promise<{ report: ShortLived, worker: TestWorker }> {
    const worker = spawn(`short${tag}`, 'test-short-lived.ts', { buffer: arena.buffer, sizes, tag, hold: hold?.buffer })
    return { report: await worker.note<ShortLived>(), worker }
  }

  it('12 workers over time with maxHeaps 4 (at most 4 alive at once): all get a heap, slots are reused, abandoned blocks stay valid', async () => {
    const seed = 0x5eed0008
    const total = 12
    const maxHeaps = 4
    const why = `[many heaps, seed=0x${seed.toString(16)}, ${total} workers, maxHeaps ${maxHeaps}]`
    const arena = Arena.create({ size: 32 << 20, maxHeaps })
    const ws: TestWorker[] = []
    try {
      // each worker claims a heap, frees half its blocks and releases the heap
      // with the other half live; a new one starts only when one has ended
      const alive = new Set<Promise<unknown>>()
      const runs: Array<Promise<ShortLived>> = []
      for (let i = 0; i < total; i++) {
        if (alive.size === maxHeaps) await Promise.race(alive)
        const w = spawn(`short${i}`, 'test-short-lived.ts', { buffer: arena.buffer, sizes: mixedSizes(seed + i, 150), tag: i + 1 })
        ws.push(w)
        const run = w.note<ShortLived>()
        runs.push(run)
        const ended: Promise<unknown> = w.ended.then(() => alive.delete(ended))
        alive.add(ended)
        run.catch(() => {}) // awaited below; a failure must not end the loop early
      }
      const reports = await Promise.all(runs)
      await Promise.all(ws.map((w) => w.ended))
      reports.forEach((r, i) => expect(r.error, `${why} worker ${i} got a heap`).toBeUndefined())
      ws.forEach((w, i) => expect(w.end?.code, `${why} worker ${i} exit code`).toBe(0))
      const ids = reports.map((r) => r.heapId!)
      expect(ids.every((id) => id >= 1 && id <= maxHeaps), `${why} heap ids ${ids.join(',')}`).toBe(true)
      const s = arena.stats()
      expect(s.heapsInUse, `${why} heaps once all ended`).toBe(0)
      expect(s.reclaimedSegments, `${why} later workers reclaimed abandoned segments`).toBeGreaterThan(0)
      const live = reports.reduce((t, r) => t + r.kept!.length, 0)
      expect(arena.check().liveBlocks, `${why} the blocks the workers kept`).toBe(live)

      const heap = arena.createHeap()
      reports.forEach((r, i) => {
        verifyBlocks(arena.u8, r.kept!, r.keptSizes!, i + 1, `${why} main checking worker ${i}'s blocks`)
        for (const p of r.kept!) heap.free(p)
      })
      heap.collect(true)
      heap.release()
      expect(arena.check(), `${why} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    } finally {
      await terminateAll(ws)
    }
  }, T)

  it('with all maxHeaps slots held, one more worker gets ERR_NO_HEAP; once they release, a new one succeeds', async () => {
    const seed = 0x5eed0088
    const why = `[heap slots full, seed=0x${seed.toString(16)}]`
    const arena = Arena.create({ size: 32 << 20, maxHeaps: 4 })
    const ctl = control()
    const ws: TestWorker[] = []
    try {
      const holders = Array.from({ length: 4 }, (_, i) =>
        spawn(`holder${i}`, 'test-short-lived.ts', { buffer: arena.buffer, sizes: mixedSizes(seed + i, 100), tag: i + 1, hold: ctl.buffer }))
      ws.push(...holders)
      await waitFor(() => Atomics.load(ctl, CTL_PARKED) === 4, `${why} 4 workers holding heaps`, holders)
      expect(arena.stats().heapsInUse, `${why} heaps held`).toBe(4)

      const extra = await shortLived(arena, mixedSizes(seed + 4, 10), 5)
      ws.push(extra.worker)
      expect(extra.report.error, `${why} the 5th worker's createHeap`).toBe('ERR_NO_HEAP')

      signal(ctl, CTL_GO)
      const reports = await Promise.all(holders.map((h) => h.note<ShortLived>()))
      expect(new Set(reports.map((r) => r.heapId)).size, `${why} holders had distinct heaps`).toBe(4)
      await Promise.all(holders.map((h) => h.ended))
      expect(arena.stats().heapsInUse, `${why} heaps after the holders released`).toBe(0)

      const late = await shortLived(arena, mixedSizes(seed + 5, 100), 6)
      ws.push(late.worker)
      expect(late.report.error, `${why} a worker after the release`).toBeUndefined()

      const heap = arena.createHeap()
      reports.forEach((r, i) => verifyBlocks(arena.u8, r.kept!, r.keptSizes!, i + 1, `${why} holder ${i}'s blocks`))
      verifyBlocks(arena.u8, late.report.kept!, late.report.keptSizes!, 6, `${why} late worker's blocks`)
      for (const p of [...reports.flatMap((r) => r.kept!), ...late.report.kept!]) heap.free(p)
      heap.collect(true)
      heap.release()
      expect(arena.check(), `${why} end`).toEqual({ liveBlocks: 0, liveBytes: 0, segmentsInUse: arena.metaSegments })
    } finally {
      signal(ctl, CTL_GO)
      await terminateAll(ws)
    }
  }, T)
})
