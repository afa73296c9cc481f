// A worker that allocates blocks, reports them, then parks in Atomics.wait
// for good (until the main thread terminates it) — without releasing its
// heap. superviseWorker must give the heap back after terminate().
import { parentPort, threadId, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { CTL_GO, CTL_PARKED, allocFilled, signal } from './test-common.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()
const ptrs = allocFilled(heap, workerData.sizes as number[], workerData.tag as number)
parentPort!.postMessage({ heapId: heap.id, threadId, ptrs })

const ctl = new Int32Array(workerData.ctl as SharedArrayBuffer)
signal(ctl, CTL_PARKED)
// idle, outside any allocator call; CTL_GO only lets a test that failed early end us cleanly
while (Atomics.load(ctl, CTL_GO) === 0) Atomics.wait(ctl, CTL_GO, 0, 1000)
