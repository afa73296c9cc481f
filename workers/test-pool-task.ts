// piscina tasks: allocate blocks in the pool thread's heap (created on the
// thread's first task) and keep them — never freed, heap never released — so
// only supervisePool can give the heaps back when the pool thread goes away.
import { threadId } from 'node:worker_threads'
import { Arena, type Heap } from '../src/index.js'
import { allocFilled } from './test-common.js'

let heap: Heap | undefined
const kept: number[] = []

interface Task { buffer: SharedArrayBuffer, sizes: number[], tag: number }

/** The default task: allocate, keep, return the offsets. */
export default function allocAndKeep({ buffer, sizes, tag }: Task): { threadId: number, heapId: number, ptrs: number[] } {
  heap ??= Arena.attach(buffer).createHeap()
  const ptrs = allocFilled(heap, sizes, tag)
  kept.push(...ptrs)
  return { threadId, heapId: heap.id, ptrs }
}

/**
 * Allocate and keep, write the offsets to `out` ([count, ...offsets]), then
 * end the pool thread without releasing: `exit` calls process.exit(0) (the
 * thread ends with no error), `throw` throws an uncaught error.
 */
export function allocAndDie(task: Task & { out: SharedArrayBuffer, how: 'exit' | 'throw' }): Promise<never> {
  const { ptrs } = allocAndKeep(task)
  const out = new Uint32Array(task.out)
  out.set(ptrs, 1)
  Atomics.store(out, 0, ptrs.length)
  if (task.how === 'exit') process.exit(0)
  setImmediate(() => { throw new Error('test-pool-task: deliberate uncaught error') })
  return new Promise<never>(() => {})
}
