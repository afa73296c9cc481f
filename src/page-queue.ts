/* ----------------------------------------------------------------------------
  page-queue.ts — a heap's page queues, after mimalloc's `page-queue.c`.

  Each heap has one doubly linked queue of pages per size bin plus the full
  queue (BIN_FULL), whose pages malloc does not search. The direct table maps
  small sizes to the first page of their bin, so `malloc` is a few loads; it
  is kept in step here whenever the first page of a small bin changes.

  Owner-only: queues, links and the direct table are read and written only by
  the thread that owns the heap (plain accesses).
---------------------------------------------------------------------------- */

import * as layout from './layout.js'
import { BIN_SIZE } from './size-classes.js'

// module-local consts, folded by the compiler (imported bindings are not: see layout.ts)
const {
  BIN_FULL, EMPTY_PAGE, HEAP_DIRECT, HEAP_QUEUES, PAGE_BIN, PAGE_FLAGS, PAGE_FLAG_IN_FULL, PAGE_NEXT,
  PAGE_PREV, QUEUE_FIRST, QUEUE_LAST, SMALL_DIRECT_MAX,
} = layout

/** Word offset of queue `bin` of the heap record at `rec`. */
export function queueOf(rec: number, bin: number): number {
  return rec + HEAP_QUEUES + 2 * bin
}

/** First page of a queue (0 = empty). */
export function queueFirst(i32: Int32Array, rec: number, bin: number): number {
  return i32[queueOf(rec, bin) + QUEUE_FIRST]
}

/** Points the direct-table entries of `bin` at its first page (mi_heap_queue_first_update). */
function directUpdate(i32: Int32Array, rec: number, bin: number): void {
  const size = BIN_SIZE[bin]
  if (bin === BIN_FULL || size > SMALL_DIRECT_MAX) return
  const first = i32[queueOf(rec, bin) + QUEUE_FIRST]
  const pd = first === 0 ? EMPTY_PAGE : first
  const lo = bin === 1 ? 0 : (BIN_SIZE[bin - 1] >>> 3) + 1
  const base = rec + HEAP_DIRECT
  for (let i = lo; i <= size >>> 3; i++) i32[base + i] = pd
}

/** Queue a page of this heap belongs in: its bin, or BIN_FULL when flagged full. */
export function queueBinOf(i32: Int32Array, pd: number): number {
  return (i32[pd + PAGE_FLAGS] & PAGE_FLAG_IN_FULL) !== 0 ? BIN_FULL : i32[pd + PAGE_BIN]
}

/** Pushes `pd` at the front of queue `bin` and sets its IN_FULL flag to match. */
export function queuePush(i32: Int32Array, rec: number, bin: number, pd: number): void {
  const q = queueOf(rec, bin)
  const first = i32[q + QUEUE_FIRST]
  i32[pd + PAGE_PREV] = 0
  i32[pd + PAGE_NEXT] = first
  if (first !== 0) i32[first + PAGE_PREV] = pd
  else i32[q + QUEUE_LAST] = pd
  i32[q + QUEUE_FIRST] = pd
  setInFull(i32, pd, bin === BIN_FULL)
  directUpdate(i32, rec, bin)
}

/** Appends `pd` at the back of queue `bin`. */
function queueAppend(i32: Int32Array, rec: number, bin: number, pd: number): void {
  const q = queueOf(rec, bin)
  const last = i32[q + QUEUE_LAST]
  i32[pd + PAGE_NEXT] = 0
  i32[pd + PAGE_PREV] = last
  if (last !== 0) i32[last + PAGE_NEXT] = pd
  else {
    i32[q + QUEUE_FIRST] = pd
    directUpdate(i32, rec, bin)
  }
  i32[q + QUEUE_LAST] = pd
  setInFull(i32, pd, bin === BIN_FULL)
}

/** Unlinks `pd` from queue `bin`. */
export function queueRemove(i32: Int32Array, rec: number, bin: number, pd: number): void {
  const q = queueOf(rec, bin)
  const next = i32[pd + PAGE_NEXT]
  const prev = i32[pd + PAGE_PREV]
  if (prev !== 0) i32[prev + PAGE_NEXT] = next
  if (next !== 0) i32[next + PAGE_PREV] = prev
  if (i32[q + QUEUE_LAST] === pd) i32[q + QUEUE_LAST] = prev
  if (i32[q + QUEUE_FIRST] === pd) {
    i32[q + QUEUE_FIRST] = next
    directUpdate(i32, rec, bin)
  }
  i32[pd + PAGE_NEXT] = 0
  i32[pd + PAGE_PREV] = 0
}

/** Moves `pd` from queue `from` to the back of queue `to` (mi_page_queue_enqueue_from). */
export function queueMove(i32: Int32Array, rec: number, from: number, to: number, pd: number): void {
  queueRemove(i32, rec, from, pd)
  queueAppend(i32, rec, to, pd)
}

/** Moves `pd` to the front of its queue so the direct table serves it. */
export function queueMoveToFront(i32: Int32Array, rec: number, bin: number, pd: number): void {
  if (i32[queueOf(rec, bin) + QUEUE_FIRST] === pd) return
  queueRemove(i32, rec, bin, pd)
  queuePush(i32, rec, bin, pd)
}

/** Empties every queue and points the direct table at the empty page. */
export function queuesReset(i32: Int32Array, rec: number): void {
  i32.fill(0, rec + HEAP_QUEUES, rec + HEAP_DIRECT)
  i32.fill(EMPTY_PAGE, rec + HEAP_DIRECT, rec + HEAP_DIRECT + (SMALL_DIRECT_MAX >>> 3) + 1)
}

function setInFull(i32: Int32Array, pd: number, inFull: boolean): void {
  if (inFull) i32[pd + PAGE_FLAGS] |= PAGE_FLAG_IN_FULL
  else i32[pd + PAGE_FLAGS] &= ~PAGE_FLAG_IN_FULL
}
