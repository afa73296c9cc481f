/* ----------------------------------------------------------------------------
  Test helpers: reading the arena's metadata through the constants of
  src/layout.ts, filling and verifying block contents, and taking snapshots
  that prove a rejected call changed nothing.
---------------------------------------------------------------------------- */

import type { Arena, Heap } from '../../src/index.js'
import type { CheckResult } from '../../src/check.js'
import {
  LARGE_OBJ_MAX, PAGE_WORDS, SEGMENT_MASK, SEGMENT_SHIFT, SEGMENT_SIZE, SEG_PAGES, SEG_PAGE_SHIFT,
} from '../../src/layout.js'

export const KiB = 1024
export const MiB = 1024 * 1024

/** A huge request (above LARGE_OBJ_MAX) whose run is a single segment, header included (debug mode too). */
export const HUGE_ONE_SEGMENT = SEGMENT_SIZE - 16 * KiB
if (HUGE_ONE_SEGMENT <= LARGE_OBJ_MAX) throw new Error('test helpers: HUGE_ONE_SEGMENT is not huge')

/** Segment index of a pointer. */
export function segOf(p: number): number {
  return p >>> SEGMENT_SHIFT
}

/** Word offset of the header of segment `seg`. */
export function segWordOf(seg: number): number {
  return seg << (SEGMENT_SHIFT - 2)
}

/** Word offset of the page descriptor of the page holding `p`. */
export function pageOf(arena: Arena, p: number): number {
  const sw = segWordOf(segOf(p))
  return sw + SEG_PAGES + ((p & SEGMENT_MASK) >>> arena.i32[sw + SEG_PAGE_SHIFT]) * PAGE_WORDS
}

/** Writes `byte` over [p, p+n). */
export function fillBlock(arena: Arena, p: number, n: number, byte: number): void {
  arena.u8.fill(byte, p, p + n)
}

/** Offset of the first byte of [p, p+n) that is not `byte`, or -1 if all are. */
export function firstMismatch(arena: Arena, p: number, n: number, byte: number): number {
  const u8 = arena.u8
  for (let i = 0; i < n; i++) if (u8[p + i] !== byte) return i
  return -1
}

/** What a call that must change nothing is compared against: check() and every byte of the buffer. */
export interface Snapshot {
  check: CheckResult
  bytes: Uint8Array
}

/**
 * Takes a snapshot after running check() (which itself updates the peak
 * live-bytes word, so it runs first and the comparison is not disturbed).
 */
export function snapshot(arena: Arena): Snapshot {
  const check = arena.check()
  return { check, bytes: arena.u8.slice() }
}

/** Index of the first byte that differs between the snapshot and the arena now, or -1. */
export function firstChangedByte(arena: Arena, before: Snapshot): number {
  const now = arena.u8
  const then = before.bytes
  if (now.length !== then.length) return Math.min(now.length, then.length)
  if (Buffer.compare(Buffer.from(now.buffer, now.byteOffset, now.length), Buffer.from(then.buffer, then.byteOffset, then.length)) === 0) return -1
  for (let i = 0; i < now.length; i++) if (now[i] !== then[i]) return i
  return -1
}

/** Allocates `size` bytes and fails the test if the arena says it is full. */
export function mustMalloc(heap: Heap, size: number): number {
  const p = heap.malloc(size)
  if (p === 0) throw new Error(`malloc(${size}) returned 0`)
  return p
}

/** Runs `call`, which must throw; returns what it threw. */
export function thrownBy(call: () => unknown): unknown {
  try {
    call()
  } catch (e) {
    return e
  }
  throw new Error('expected the call to throw')
}
