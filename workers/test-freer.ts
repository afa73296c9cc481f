// Worker B (and C) of the cross-thread tests: frees blocks another heap
// allocated (after checking their pattern), or races another freer to free
// the same blocks; allocates, collects and releases like any heap (heapOps).
import { threadId, workerData } from 'node:worker_threads'
import { Arena, DoubleFreeError } from '../src/index.js'
import { CTL_BARRIER_START, CTL_PROGRESS, heapOps, meet, serve, verifyBlocks } from './test-common.js'

/** raceFree: the freers meet again every this many blocks, to stay in step. */
const RACE_CHUNK = 16

const arena = Arena.attach(workerData.buffer as SharedArrayBuffer)
const heap = arena.createHeap()

serve({
  ...heapOps(heap, threadId),
  /** Checks each block's pattern, then frees it: a cross-thread free unless this heap owns its segment. */
  verifyAndFree: ({ ptrs, sizes, tag }: { ptrs: number[], sizes: number[], tag: number }) => {
    verifyBlocks(arena.u8, ptrs, sizes, tag, `freer heap ${heap.id}`)
    for (const p of ptrs) heap.free(p)
  },
  /** Frees every block of `ptrs`, publishing how many it has freed so far in CTL_PROGRESS of `ctl`. */
  freeShowingProgress: ({ ptrs, ctl }: { ptrs: number[], ctl: SharedArrayBuffer }) => {
    const progress = new Int32Array(ctl)
    for (let i = 0; i < ptrs.length; i++) {
      heap.free(ptrs[i])
      if ((i & 31) === 31) {
        Atomics.store(progress, CTL_PROGRESS, i + 1)
        Atomics.notify(progress, CTL_PROGRESS)
      }
    }
  },
  /**
   * Frees every block of `ptrs` in step with one other freer (they meet at a
   * barrier in the control buffer `ctl` every RACE_CHUNK blocks, so both free
   * the same block at about the same time), counting the frees that succeed
   * and the DoubleFreeErrors.
   */
  raceFree: ({ ptrs, ctl }: { ptrs: number[], ctl: SharedArrayBuffer }) => {
    let freed = 0
    let doubleFrees = 0
    const others: string[] = []
    const meeting = new Int32Array(ctl)
    for (let i = 0; i < ptrs.length; i++) {
      if (i % RACE_CHUNK === 0) meet(meeting, CTL_BARRIER_START, 2, i / RACE_CHUNK + 1)
      const p = ptrs[i]
      try {
        heap.free(p)
        freed++
      } catch (e) {
        if (e instanceof DoubleFreeError) doubleFrees++
        else if (others.length < 5) others.push(`0x${p.toString(16)}: ${String(e)}`)
      }
    }
    return { freed, doubleFrees, others }
  },
})
