/* ----------------------------------------------------------------------------
  test-client.ts — the main-thread side of the multi-worker tests: starts a
  TypeScript worker and calls the operations it serves (test-common.ts
  `serve`), one request/reply pair per call.
  Workers start through workers/spawn.ts (tsx's loader registered in the
  worker, then the .ts file imported).
---------------------------------------------------------------------------- */

import { Worker } from 'node:worker_threads'
import { spawnTsWorker } from './spawn.js'

/** Deadline of one call (generous: a call does at most a few thousand allocations). */
export const CALL_DEADLINE_MS = 20_000

/** How a worker ended: its exit code and the uncaught error, if any. */
export interface WorkerEnd {
  code: number
  error?: Error
}

interface Pending {
  op: string
  resolve: (v: unknown) => void
  reject: (e: Error) => void
}

/**
 * A worker serving named operations. `call` sends one and resolves with its
 * reply; it rejects when the operation threw in the worker or the worker died
 * first. `ended` resolves (never rejects) once the worker has exited.
 */
export class TestWorker {
  readonly worker: Worker
  readonly ended: Promise<WorkerEnd>
  /** Messages the worker posted outside of replies (e.g. before crashing). */
  readonly notes: unknown[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private error: Error | undefined
  private exitCode: number | undefined

  /**
   * `beforeListen` runs before this object's own listeners are added: put
   * superviseWorker there, so its 'exit' handler (the reclaim) has run by the
   * time `ended` resolves.
   */
  constructor(readonly name: string, file: string, workerData: unknown, beforeListen?: (w: Worker) => void) {
    this.worker = spawnTsWorker(file, { workerData })
    beforeListen?.(this.worker)
    this.worker.on('message', (msg: { id?: number, ok?: boolean, value?: unknown, error?: string }) => {
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id)
      if (p === undefined) { this.notes.push(msg); return }
      this.pending.delete(msg.id!)
      if (msg.ok === true) p.resolve(msg.value)
      else p.reject(new Error(`${this.name}.${p.op} threw in the worker: ${msg.error}`))
    })
    this.worker.on('error', (err) => { this.error = err; this.failAll(`died: ${err.stack ?? err.message}`) })
    this.ended = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.exitCode = code
        this.failAll(`exited with code ${code}`)
        resolve({ code, error: this.error })
      })
    })
  }

  /** How the worker ended, once it has. */
  get end(): WorkerEnd | undefined {
    return this.exitCode === undefined ? undefined : { code: this.exitCode, error: this.error }
  }

  /**
   * Runs operation `op` in the worker; resolves with what it returned.
   * Rejects if no answer came within `ms` (a deadline against hangs, e.g. a
   * worker spinning inside the allocator — not a timing assertion).
   */
  call<T = unknown>(op: string, arg?: unknown, ms = CALL_DEADLINE_MS): Promise<T> {
    if (this.exitCode !== undefined) return Promise.reject(new Error(`${this.name}.${op}: the worker exited already (code ${this.exitCode})`))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.name}.${op}: no answer within ${ms} ms (worker stuck?)`))
      }, ms)
      const settle = <A>(f: (a: A) => void) => (a: A): void => { clearTimeout(timer); f(a) }
      this.pending.set(id, { op, resolve: settle(resolve as (v: unknown) => void), reject: settle(reject) })
      this.worker.postMessage({ id, op, arg })
    })
  }

  /** Waits (at most `ms`) for the next message the worker posts on its own, not as a reply. */
  async note<T = unknown>(ms = CALL_DEADLINE_MS): Promise<T> {
    const deadline = Date.now() + ms
    while (this.notes.length === 0) {
      if (this.exitCode !== undefined) {
        throw new Error(`${this.name} exited (code ${this.exitCode}) before posting${this.error === undefined ? '' : `: ${this.error.stack ?? this.error.message}`}`)
      }
      if (Date.now() >= deadline) throw new Error(`${this.name}: no message within ${ms} ms (worker stuck?)`)
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          this.worker.off('message', done)
          this.worker.off('exit', done)
          resolve()
        }
        const timer = setTimeout(done, Math.max(deadline - Date.now(), 0))
        this.worker.on('message', done)
        this.worker.on('exit', done)
      })
    }
    return this.notes.shift() as T
  }

  /** Terminates the worker (a no-op if it exited) and waits for its exit. */
  async terminate(): Promise<WorkerEnd> {
    if (this.exitCode === undefined) await this.worker.terminate()
    return this.ended
  }

  private failAll(why: string): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id)
      p.reject(new Error(`${this.name}.${p.op}: the worker ${why}`))
    }
  }
}

/** Terminates every worker, even if some terminations fail; for `finally` blocks. */
export async function terminateAll(workers: Iterable<TestWorker | undefined>): Promise<void> {
  await Promise.allSettled([...workers].map((w) => w?.terminate()))
}
