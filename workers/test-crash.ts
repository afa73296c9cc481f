// A worker that allocates blocks, reports them, then dies of an uncaught
// error when the main thread says so — without ever releasing its heap.
// superviseWorker must give the heap back; the blocks must stay valid.
import { parentPort, threadId, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { allocFilled } from './test-common.js'

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()
const ptrs = allocFilled(heap, workerData.sizes as number[], workerData.tag as number)
parentPort!.postMessage({ heapId: heap.id, threadId, ptrs })
parentPort!.once('message', () => {
  throw new Error('test-crash: deliberate uncaught error')
})
