// Minimal worker used by the bootstrap test: attaches, allocates, reports.
import { parentPort, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()
const p = heap.malloc(64)
arena.u8.fill(7, p, p + 64)
parentPort!.postMessage({ heapId: heap.id, ptr: p })
