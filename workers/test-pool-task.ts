// A piscina task: allocates blocks in the pool thread's heap (created on the
// thread's first task) and keeps them — never freed, heap never released — so
// only supervisePool can give the heaps back when the pool is destroyed.
import { threadId } from 'node:worker_threads'
import { Arena, type Heap } from '../src/index.js'
import { allocFilled } from './test-common.js'

let heap: Heap | undefined
const kept: number[] = []

export default function allocAndKeep({ buffer, sizes, tag }: { buffer: SharedArrayBuffer, sizes: number[], tag: number }): { threadId: number, heapId: number, ptrs: number[] } {
  heap ??= Arena.attach(buffer).createHeap()
  const ptrs = allocFilled(heap, sizes, tag)
  kept.push(...ptrs)
  return { threadId, heapId: heap.id, ptrs }
}
