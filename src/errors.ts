/* ----------------------------------------------------------------------------
  errors.ts — the named errors of the public contract (API.md). Every rejected
  operation throws one of these (or a RangeError for bad sizes and options)
  before it changes anything.
---------------------------------------------------------------------------- */

/** Base class of every allocator error; `code` is a stable string. */
export class AllocatorError extends Error {
  readonly code: string
  /** The offending pointer, where one applies. */
  readonly ptr: number | undefined
  constructor(message: string, code = 'ERR_ALLOCATOR', ptr?: number) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.ptr = ptr
  }
}

/** A pointer that is not the start of a live block of this arena. */
export class InvalidPointerError extends AllocatorError {
  constructor(ptr: unknown, why: string) {
    super(`invalid pointer ${describe(ptr)}: ${why}`, 'ERR_INVALID_POINTER', typeof ptr === 'number' ? ptr : undefined)
  }
}

/** A free of a block that is already free. */
export class DoubleFreeError extends AllocatorError {
  constructor(ptr: number, detail = '') {
    super(`double free of block ${describe(ptr)}${detail ? ': ' + detail : ''}`, 'ERR_DOUBLE_FREE', ptr)
  }
}

/** Allocator state or block guards found broken. */
export class HeapCorruptionError extends AllocatorError {
  constructor(message: string, ptr?: number) {
    super(`heap corruption: ${message}`, 'ERR_HEAP_CORRUPTION', ptr)
  }
}

/** A buffer that is not a valid sabmalloc arena. */
export class ArenaFormatError extends AllocatorError {
  constructor(message: string) {
    super(`not a sabmalloc arena: ${message}`, 'ERR_ARENA_FORMAT')
  }
}

function describe(ptr: unknown): string {
  if (typeof ptr === 'number') return Number.isInteger(ptr) && ptr >= 0 ? `0x${ptr.toString(16)}` : String(ptr)
  return `${String(ptr)} (${typeof ptr})`
}
