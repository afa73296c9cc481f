/* ----------------------------------------------------------------------------
  fuzz-peer.ts — a worker that serves single allocator operations to
  test/debug.test.ts (cross-worker and racing double frees with real
  threads). Messages { id, op, ... } get { id, value } or { id, error }.

    malloc  { sizes }            → pointers
    free    { ptr }              → the outcome of heap.free(ptr)
    race    { ptrs, side }       → one outcome per pointer: for race i both
                                   sides meet at a per-race rendezvous word of
                                   the control buffer, then free ptrs[i]
    release {}                   → heap.release()

  An outcome is { ok: true } or { ok: false, name, code, message, ptr }.
---------------------------------------------------------------------------- */

import { parentPort, workerData } from 'node:worker_threads'
import { AllocatorError, Arena } from '../src/index.js'

export interface PeerOutcome {
  ok: boolean
  name?: string
  code?: string
  message?: string
  ptr?: number
}

export interface PeerData {
  buffer: SharedArrayBuffer
  /** Int32 words: [0] abort, then one rendezvous word per race. */
  ctl: SharedArrayBuffer
}

const d = workerData as PeerData
const arena = Arena.attach(d.buffer)
const heap = arena.createHeap()
const ctl = new Int32Array(d.ctl)

function outcome(call: () => void): PeerOutcome {
  try {
    call()
    return { ok: true }
  } catch (e) {
    if (e instanceof AllocatorError) return { ok: false, name: e.name, code: e.code, message: e.message, ptr: e.ptr }
    const err = e instanceof Error ? e : new Error(String(e))
    return { ok: false, name: err.name, message: err.message }
  }
}

parentPort!.on('message', (m: { id: number, op: string, sizes?: number[], ptr?: number, ptrs?: number[] }) => {
  try {
    let value: unknown
    switch (m.op) {
      case 'heap': value = heap.id; break
      case 'malloc': value = m.sizes!.map((n) => heap.malloc(n)); break
      case 'free': value = outcome(() => heap.free(m.ptr!)); break
      case 'race': {
        const out: PeerOutcome[] = []
        m.ptrs!.forEach((p, i) => {
          // both sides arrive, then both free at once
          Atomics.add(ctl, 1 + i, 1)
          while (Atomics.load(ctl, 1 + i) < 2) if (Atomics.load(ctl, 0) !== 0) throw new Error('aborted')
          out.push(outcome(() => heap.free(p)))
        })
        value = out
        break
      }
      case 'release': heap.release(); value = true; break
      default: throw new Error(`unknown op ${m.op}`)
    }
    parentPort!.postMessage({ id: m.id, value })
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? e.stack ?? e.message : String(e) })
  }
})
