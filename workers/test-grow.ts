// A worker of the concurrent-growth test: after a start barrier shared with
// the other workers, allocates mixed sizes (huge ones included) until it
// holds `bytes`, each block filled with a pattern tagged by the worker's
// index; after an end barrier, re-checks all its blocks (another worker
// handed the same memory would have overwritten them).
import { threadId, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { CTL_BARRIER_DONE, CTL_BARRIER_START, barrier, drawSize, fillPattern, heapOps, rng, serve, verifyBlocks } from './test-common.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()
const ctl = new Int32Array(workerData.ctl as SharedArrayBuffer)

serve({
  ...heapOps(heap, threadId),
  grow: ({ index, workers, bytes, seed }: { index: number, workers: number, bytes: number, seed: number }) => {
    const r = rng(seed)
    const ptrs: number[] = []
    const sizes: number[] = []
    barrier(ctl, CTL_BARRIER_START, workers)
    for (let total = 0; total < bytes;) {
      const size = drawSize(r, true)
      const p = heap.malloc(size)
      if (p === 0) throw new Error(`worker ${index}: malloc(${size}) returned 0 after ${total} bytes (buffer ${arena.buffer.byteLength} bytes)`)
      fillPattern(arena.u8, p, size, index)
      ptrs.push(p)
      sizes.push(size)
      total += size
    }
    barrier(ctl, CTL_BARRIER_DONE, workers)
    verifyBlocks(arena.u8, ptrs, sizes, index, `grow worker ${index}`)
    return { ptrs, sizes, u8Length: arena.u8.length, byteLength: arena.buffer.byteLength }
  },
})
