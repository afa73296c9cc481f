// Worker B of the cross-thread tests: frees blocks another heap allocated
// (after checking their pattern), and allocates, collects and releases like
// any heap (heapOps).
import { threadId, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { heapOps, serve, verifyBlocks } from './test-common.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()

serve({
  ...heapOps(heap, threadId),
  /** Checks each block's pattern, then frees it: a cross-thread free unless this heap owns its segment. */
  verifyAndFree: ({ ptrs, sizes, tag }: { ptrs: number[], sizes: number[], tag: number }) => {
    verifyBlocks(arena.u8, ptrs, sizes, tag, `freer heap ${heap.id}`)
    for (const p of ptrs) heap.free(p)
  },
})
