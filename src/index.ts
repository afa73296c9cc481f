/* ----------------------------------------------------------------------------
  sabmalloc — a multi-threaded, mimalloc-style allocator whose whole state
  lives in one SharedArrayBuffer. The public API (see API.md); everything
  else under src/ is internal.
---------------------------------------------------------------------------- */

export { Arena, type ArenaOptions } from './arena.js'
export { Heap } from './heap.js'
export {
  AllocatorError, ArenaFormatError, DoubleFreeError, HeapCorruptionError, InvalidPointerError,
} from './errors.js'
export { superviseWorker, supervisePool, type PoolLike } from './supervise.js'
export type { CheckResult } from './check.js'
export type { ArenaStats, HeapStats } from './stats.js'
