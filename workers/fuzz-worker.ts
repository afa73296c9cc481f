/* ----------------------------------------------------------------------------
  fuzz-worker.ts — worker entry of the misuse fuzzer (stress/fuzz-run.ts
  starts one per --workers). Attaches to the arena, claims a heap, runs the
  rounds (fuzz-engine.ts), posts its report, then waits for the main thread
  to check the arena before it releases the heap and exits.
---------------------------------------------------------------------------- */

import { parentPort, workerData } from 'node:worker_threads'
import { Arena } from '../src/index.js'
import { CTL_ABORT, CTL_DONE, CTL_RELEASE, CtlLayout, PHASE_NAMES, W_PHASE, type FuzzWorkerData } from './fuzz-common.js'
import { FuzzEngine, describeError } from './fuzz-engine.js'

const d = workerData as FuzzWorkerData
const ctl = new Int32Array(d.ctl)
const layout = new CtlLayout(d.workers)
const arena = Arena.attach(d.buffer)
const heap = arena.createHeap()

const report = new FuzzEngine(arena, heap, d).run()
Atomics.store(ctl, layout.line(d.worker, W_PHASE), PHASE_NAMES.indexOf('done'))
Atomics.add(ctl, CTL_DONE, 1)
parentPort!.postMessage({ type: 'report', report })

// the main thread checks the arena with every worker idle, then lets us go
while (Atomics.load(ctl, CTL_RELEASE) === 0 && Atomics.load(ctl, CTL_ABORT) === 0) Atomics.wait(ctl, CTL_RELEASE, 0, 100)
if (Atomics.load(ctl, CTL_RELEASE) !== 0 && !report.aborted) {
  try {
    heap.release()
    Atomics.store(ctl, layout.line(d.worker, W_PHASE), PHASE_NAMES.indexOf('released'))
    parentPort!.postMessage({ type: 'released' })
  } catch (e) {
    parentPort!.postMessage({ type: 'release-failed', message: describeError(e) })
  }
}
