// A short-lived worker of the many-heaps test: claims a heap (or reports
// why it could not), allocates, frees every other block, optionally holds
// the heap until the main thread says go, then releases it with the other
// blocks still live (their segments are abandoned) and reports them.
import { parentPort, threadId, workerData } from 'node:worker_threads'
import { AllocatorError, Arena, type Heap } from '../src/index.js'
import { CTL_GO, CTL_PARKED, allocFilled, waitAtLeast } from './test-common.js'

const { buffer, sizes, tag, hold } = workerData as { buffer: SharedArrayBuffer, sizes: number[], tag: number, hold?: SharedArrayBuffer }
const arena = Arena.attach(buffer)
let heap: Heap | undefined
try {
  heap = arena.createHeap()
} catch (e) {
  parentPort!.postMessage({ error: e instanceof AllocatorError ? e.code : String(e) })
}
if (heap !== undefined) {
  const ptrs = allocFilled(heap, sizes, tag)
  const kept: number[] = []
  const keptSizes: number[] = []
  ptrs.forEach((p, i) => {
    if (i % 2 === 0) heap.free(p)
    else { kept.push(p); keptSizes.push(sizes[i]) }
  })
  const heapId = heap.id
  if (hold !== undefined) {
    const ctl = new Int32Array(hold)
    Atomics.add(ctl, CTL_PARKED, 1)
    Atomics.notify(ctl, CTL_PARKED)
    waitAtLeast(ctl, CTL_GO, 1)
  }
  heap.release()
  parentPort!.postMessage({ heapId, threadId, kept, keptSizes })
}
