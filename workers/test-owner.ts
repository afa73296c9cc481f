// Worker A of the cross-thread tests: the heap that allocates blocks and hands
// their offsets to another worker. Serves heapOps plus `parkThenAlloc`: it
// blocks in Atomics.wait until the main thread raises a flag (so that other
// threads free its blocks while it is certainly not running), then allocates;
// and `releaseAmid`: it releases its heap while another worker is freeing.
import { threadId, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { CTL_GO, CTL_PARKED, CTL_PROGRESS, allocFilled, heapOps, serve, signal, waitAtLeast } from './test-common.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()

serve({
  ...heapOps(heap, threadId),
  parkThenAlloc: ({ sizes, tag }: { sizes: number[], tag: number }) => {
    const ctl = new Int32Array(workerData.ctl as SharedArrayBuffer)
    signal(ctl, CTL_PARKED)
    waitAtLeast(ctl, CTL_GO, 1)
    return allocFilled(heap, sizes, tag)
  },
  /** Waits until a freer has freed `after` blocks (CTL_PROGRESS in `ctl`), then releases the heap. */
  releaseAmid: ({ ctl, after }: { ctl: SharedArrayBuffer, after: number }) => {
    waitAtLeast(new Int32Array(ctl), CTL_PROGRESS, after)
    heap.release()
  },
})
