/* ----------------------------------------------------------------------------
  layout.ts — every word offset, shift, size and flag of sabmalloc, and nothing
  else. All metadata lives in 32-bit words of one Int32Array over the whole
  SharedArrayBuffer; a "pointer" is a byte offset into that buffer (0 = NULL).

  The buffer is a sequence of SEGMENT_SIZE segments. The first META segments
  hold the arena header, the bitmaps, the segment map and the heap records;
  every other segment is either free, the head of a small/medium/large/huge
  segment (it starts with a segment header), or a follower of a huge run.

   buffer:  | meta segment(s) | segment | segment | huge head | follower | ...
            0                 256 KiB   512 KiB   768 KiB

  Modules on the malloc/free paths copy what they use of this file into
  module-local consts (`const { … } = layout`): Node 20's optimizer folds a
  module-local const into the code, but loads an imported binding from its
  module cell and checks it on every use — about 6 ns per free+malloc pair.
---------------------------------------------------------------------------- */

/* ----- Segments ----------------------------------------------------------- */

/**
 * log2 of the segment size; segment i starts at byte `i << SEGMENT_SHIFT`.
 * 256 KiB (was 1 MiB): a segment is the unit the arena hands out, so smaller
 * segments waste less around sparse medium/large bins, the metadata and
 * 128 KiB..1 MiB blocks: mimalloc-stress `2 50 500` peak segment bytes /
 * peak live bytes went from 2.7–3.2 to 1.45–1.74.
 */
export const SEGMENT_SHIFT = 18
/** Bytes per segment (256 KiB). */
export const SEGMENT_SIZE = 1 << SEGMENT_SHIFT
/** Largest block malloc serves (block sizes are stored in signed 32-bit words). */
export const MAX_ALLOC_SIZE = 0x7ff00000
/** Mask of the offset inside a segment. */
export const SEGMENT_MASK = SEGMENT_SIZE - 1
/** Segments an arena can have at most: offsets fit in 32 bits (4 GiB). */
export const MAX_SEGMENTS = 2 ** (32 - SEGMENT_SHIFT)
/** Largest arena in bytes (offsets are unsigned 32-bit). */
export const MAX_ARENA_SIZE = MAX_SEGMENTS * SEGMENT_SIZE

/** Bytes at the start of a segment taken by its header in release mode; page 0 starts here. */
export const SEGMENT_HEADER_SIZE = 4096
/**
 * Debug mode adds two bitmaps after the header, one bit per 8 bytes of the
 * segment (bit i covers bytes [8i, 8i+8); a block's bit is its start's):
 *   ALLOC  set on malloc (Atomics.or), cleared on free (Atomics.and): the old
 *          value decides a free, so a double free is detected exactly once
 *   EVER   set on malloc, cleared only when the segment is claimed afresh:
 *          tells a stale double free from a never-allocated pointer
 */
export const SEGMENT_BITMAP_BYTES = SEGMENT_SIZE >>> 6
/** Byte offset of the ALLOC bitmap in a debug segment. */
export const SEGMENT_ALLOC_BITS = SEGMENT_HEADER_SIZE
/** Byte offset of the EVER bitmap in a debug segment. */
export const SEGMENT_EVER_BITS = SEGMENT_HEADER_SIZE + SEGMENT_BITMAP_BYTES
/** Header size in debug mode: header + both bitmaps (a multiple of 4096). */
export const SEGMENT_HEADER_SIZE_DEBUG = SEGMENT_HEADER_SIZE + 2 * SEGMENT_BITMAP_BYTES

/* ----- Segment kinds and page sizes ---------------------------------------- */

/** Segment map value of a segment that is free or holds metadata. */
export const KIND_NONE = 0
/** SEGMENT_SIZE / 64 KiB small pages, blocks up to SMALL_OBJ_MAX (32 KiB). */
export const KIND_SMALL = 1
/** SEGMENT_SIZE / 128 KiB medium pages, blocks up to MEDIUM_OBJ_MAX (64 KiB). */
export const KIND_MEDIUM = 2
/** One page spanning the segment, blocks up to LARGE_OBJ_MAX. */
export const KIND_LARGE = 3
/** One block spanning a run of 1+ segments (the head has the header). */
export const KIND_HUGE = 4

/** log2 of a small page (64 KiB; page 0 of a segment is shortened by the header). */
export const SMALL_PAGE_SHIFT = 16
/** log2 of a medium page (128 KiB). */
export const MEDIUM_PAGE_SHIFT = 17
/** Large and huge segments have a single page: its shift is the segment's. */
export const LARGE_PAGE_SHIFT = SEGMENT_SHIFT

/**
 * Largest block size served from small pages (half a small page: 32 KiB).
 * mimalloc keeps 4+ blocks per page; here a page is a quarter of a segment,
 * and a sparse bin costs a page per heap, so the smaller page wins: with
 * 1/8 (8 KiB, 8 KiB..32 KiB on 128 KiB medium pages) mimalloc-stress
 * `2 50 500` peak segment bytes / peak live bytes was 1.50–1.64, with 1/2
 * 1.41–1.51 (3 interleaved runs each, session 4).
 */
export const SMALL_OBJ_MAX = (1 << SMALL_PAGE_SHIFT) >>> 1
/** Largest block size served from medium pages (half a medium page: 64 KiB). */
export const MEDIUM_OBJ_MAX = (1 << MEDIUM_PAGE_SHIFT) >>> 1
/** Largest block size served from large pages (half a segment). */
export const LARGE_OBJ_MAX = SEGMENT_SIZE >>> 1
/** Largest alignment mallocAligned accepts (API.md); above SEGMENT_SIZE a huge run over-claims. */
export const MAX_ALIGNMENT = 1 << 20

/**
 * Most bytes a page's lazy free-list extension initializes at once
 * (mi_page_extend_free). mimalloc's 4 KiB sent malloc to its generic path
 * every 4-16 blocks while pages fill; V8 then inlined the generic path into
 * malloc, which made malloc too big to inline into its callers (churn median
 * 24.7 vs 23.2 ns with 16 KiB over 10 interleaved runs).
 */
export const MAX_EXTEND_SIZE = 16 * 1024
/** Fewest blocks an extension adds. */
export const MIN_EXTEND = 4

/* ----- Size classes ---------------------------------------------------------- */

/** Sizes up to this many bytes are served through the heap's direct table. */
export const SMALL_DIRECT_MAX = 1024
/** Entries in the direct table: index `(size + 7) >> 3` for size 0..SMALL_DIRECT_MAX. */
export const DIRECT_ENTRIES = (SMALL_DIRECT_MAX >>> 3) + 1
/**
 * Bin of huge blocks, one past binOf(LARGE_OBJ_MAX) (never has a page queue
 * of its own: huge pages go to BIN_FULL). 4 bins per power of two: 58 for
 * 512 KiB, 54 for 256 KiB, 50 for 128 KiB (size-classes.test.ts checks it).
 */
export const BIN_HUGE = 4 * SEGMENT_SHIFT - 22
/** The queue of full pages (not searched by malloc). */
export const BIN_FULL = BIN_HUGE + 1
/** Number of page queues in a heap. */
export const QUEUE_COUNT = BIN_FULL + 1

/* ----- Arena header (word offsets from word 0) ---------------------------------
   +0   MAGIC            'SABM'
   +1   VERSION
   +2   SEGMENT_SHIFT    must equal SEGMENT_SHIFT of the attaching build
   +3   MAX_HEAPS
   +4   FLAGS            ARENA_FLAG_*
   +5   MAX_SEGMENTS     segments the buffer can ever hold (maxSize >> shift)
   +6   META_SEGMENTS    segments taken by this metadata
   +7   SEGMENT_LIMIT    segments currently in the buffer (atomic; grows)
   +8   KEY              random cookie XOR-ed into free-list links
   +9   GROW_LOCK        0 free, else 1 + threadId of the thread growing the buffer (CAS)
   +10  GROW_COUNT       number of successful grows (atomic add)
   +11  ABANDONED_COUNT  segments in the abandoned bitmap (atomic add)
   +12  ABANDONED_TOTAL  segments ever abandoned (atomic add)
   +13  RECLAIMED_TOTAL  segments ever reclaimed (atomic add)
   +14  PEAK_LIVE_BYTES  peak liveBytes seen by stats()/check() (atomic max, unsigned)
   +15  PEAK_SEGMENTS    peak segments in use (atomic max)
   +16  SEGMENTS_IN_USE  claimed segments (atomic add)
   +17  SEG_HEADER_SIZE  SEGMENT_HEADER_SIZE or SEGMENT_HEADER_SIZE_DEBUG
   +20  XFREES_RETIRED   cross-thread frees of released heaps (atomic add)
   +21  GROW_STEP        segments added per grow at least
   +22  PEAK_PAGE_BYTES  peak pageBytes seen by stats()/check() (atomic max, unsigned)
   +32    arena bitmap     MAX_SEGMENTS/32 words: bit set = segment claimed
   +544   abandoned bitmap MAX_SEGMENTS/32 words: bit set = abandoned, reclaimable
   +1056  segment map      MAX_SEGMENTS words: SEGMAP_* value per segment
   +17440 empty page       PAGE_WORDS words of zeros: the direct table's "no page"
   +17456 empty direct     DIRECT_ENTRIES words, all EMPTY_PAGE (a released heap's table)
   +17600 heap records     MAX_HEAPS × HEAP_WORDS (128-byte aligned, see HEAP_ALIGN_WORDS)
   (offsets for 256 KiB segments, MAX_SEGMENTS 16384: 70 KB + 1 KiB per heap,
   so 64 heaps fit in one metadata segment)
------------------------------------------------------------------------------- */

export const ARENA_MAGIC_VALUE = 0x4d424153 // 'SABM' little-endian
export const ARENA_VERSION_VALUE = 3 // 3: 256 KiB segments

export const ARENA_MAGIC = 0
export const ARENA_VERSION = 1
export const ARENA_SEGMENT_SHIFT = 2
export const ARENA_MAX_HEAPS = 3
export const ARENA_FLAGS = 4
export const ARENA_MAX_SEGMENTS = 5
export const ARENA_META_SEGMENTS = 6
export const ARENA_SEGMENT_LIMIT = 7
export const ARENA_KEY = 8
export const ARENA_GROW_LOCK = 9
export const ARENA_GROW_COUNT = 10
export const ARENA_ABANDONED_COUNT = 11
export const ARENA_ABANDONED_TOTAL = 12
export const ARENA_RECLAIMED_TOTAL = 13
export const ARENA_PEAK_LIVE_BYTES = 14
export const ARENA_PEAK_SEGMENTS = 15
export const ARENA_SEGMENTS_IN_USE = 16
export const ARENA_SEG_HEADER_SIZE = 17
/** Cross-thread frees counted by heaps that have since been released (atomic add). */
export const ARENA_XFREES_RETIRED = 20
/** Bytes the buffer grows by at least, in segments (set at create). */
export const ARENA_GROW_STEP = 21
/** Peak pageBytes seen by stats()/check() (atomic max, unsigned). */
export const ARENA_PEAK_PAGE_BYTES = 22

/** Arena flag: debug mode (guards, fills, allocation bits). */
export const ARENA_FLAG_DEBUG = 1

/** Words of one bitmap covering MAX_SEGMENTS. */
export const BITMAP_WORDS = MAX_SEGMENTS >>> 5
/** Word offset of the arena bitmap (bit set = segment claimed). */
export const ARENA_BITMAP = 32
/** Word offset of the abandoned bitmap (bit set = abandoned segment head). */
export const ABANDONED_BITMAP = ARENA_BITMAP + BITMAP_WORDS
/**
 * Word offset of the segment map: one word per segment.
 *   0 (SEGMAP_FREE)  free or metadata: no pointer may point here
 *   1..4             head segment of that KIND_*
 *   < 0              follower of a huge run: -(head index)
 */
export const SEGMAP = ABANDONED_BITMAP + BITMAP_WORDS
export const SEGMAP_FREE = 0
/** Word offset of the empty page descriptor (all zero: free = 0). */
export const EMPTY_PAGE = SEGMAP + MAX_SEGMENTS
/** Word offset of a direct table whose entries all are EMPTY_PAGE (used by released heaps). */
export const EMPTY_DIRECT = EMPTY_PAGE + 16
/**
 * Heap records start on 128-byte boundaries and span whole 128-byte units,
 * so one heap's hot words (its direct table, read by every malloc) never
 * share a cache line — or the line the adjacent-line prefetcher pairs with it
 * — with another heap's words (written by its owner).
 */
export const HEAP_ALIGN_WORDS = 32
/** Word offset of heap record 1 (heap ids are 1-based: record of id h at HEAP_RECORDS + (h-1)*HEAP_WORDS). */
export const HEAP_RECORDS = (EMPTY_DIRECT + DIRECT_ENTRIES + HEAP_ALIGN_WORDS - 1) & ~(HEAP_ALIGN_WORDS - 1)

/* ----- Heap record (word offsets inside a record) --------------------------------
   +0   STATE            0 free, 1 in use (claimed by CAS)
   +1   DELAYED_FREE     thread_delayed_free list head (atomic CAS push; owner takes all)
   +2   SEG_FREE_SMALL   first small segment with a free page slot (owner)
   +3   SEG_FREE_MEDIUM  first medium segment with a free page slot (owner)
   +4   XFREES           cross-thread frees made *by* this heap (owner writes, racy reads)
   +6   THREAD_ID        worker_threads threadId of the owner (set at claim; read by supervisors)
   +7   FREEING          page whose xthread_free this heap holds in DELAYED_FREEING, else 0
                         (owner writes; a supervisor resets the page if the thread died there)
   +8   queues           QUEUE_COUNT × (first, last) page descriptor word offsets (owner)
   +8+2Q direct          DIRECT_ENTRIES page descriptor word offsets (owner)
--------------------------------------------------------------------------------- */

export const HEAP_STATE = 0
export const HEAP_DELAYED_FREE = 1
export const HEAP_SEG_FREE_SMALL = 2
export const HEAP_SEG_FREE_MEDIUM = 3
export const HEAP_XFREES = 4
export const HEAP_THREAD_ID = 6
export const HEAP_FREEING = 7
export const HEAP_QUEUES = 8
export const HEAP_DIRECT = HEAP_QUEUES + 2 * QUEUE_COUNT
/** Words per heap record (a whole number of 128-byte units). */
export const HEAP_WORDS = (HEAP_DIRECT + DIRECT_ENTRIES + HEAP_ALIGN_WORDS - 1) & ~(HEAP_ALIGN_WORDS - 1)
/** Heap slot states. */
export const HEAP_FREE = 0
export const HEAP_IN_USE = 1

/** Queue word offsets inside a queue pair. */
export const QUEUE_FIRST = 0
export const QUEUE_LAST = 1

/* ----- Segment header (word offsets from the segment's first word) ------------
   +0   KIND             KIND_* (also in the segment map)
   +1   OWNER            owning heap id; 0 = abandoned (written with Atomics.store on
                         claim/abandon/reclaim; read plain by frees: only a heap
                         writes its own id, so "=== mine" is never stale)
   +2   PAGE_SHIFT       log2 of the page size (SEGMENT_SHIFT for large/huge)
   +3   PAGE_COUNT       pages in the segment
   +4   USED_PAGES       pages in use (owner)
   +5   SPAN             segments in this run (1, or more for huge)
   +6   NEXT             next segment index in the owner's free-slot queue (owner)
   +7   PREV             previous one (owner)
   +16  pages            PAGE_COUNT × PAGE_WORDS page descriptors
--------------------------------------------------------------------------------- */

export const SEG_KIND = 0
export const SEG_OWNER = 1
export const SEG_PAGE_SHIFT = 2
export const SEG_PAGE_COUNT = 3
export const SEG_USED_PAGES = 4
export const SEG_SPAN = 5
export const SEG_NEXT = 6
export const SEG_PREV = 7
export const SEG_PAGES = 16

/* ----- Page descriptor (word offsets from the descriptor's first word) -----------
   +0   FLAGS            owner heap id << PAGE_OWNER_SHIFT | PAGE_FLAG_* (written only by
                         the owner, racy reads by freeing threads: the free fast path
                         compares it with its own tag, so it needs no segment header)
   +1   BLOCK_SIZE       bytes per block (owner writes at init; constant while in use)
   +2   START            byte offset of block 0 (constant while in use)
   +3   RESERVED         blocks that fit in the page
   +4   CAPACITY         blocks initialized so far (lazy extension; owner)
   +5   FREE             free list head, owner pops (owner)
   +6   LOCAL_FREE       owner's frees go here (owner)
   +7   USED             blocks handed out, incl. those on XTHREAD_FREE (owner)
   +8   XTHREAD_FREE     other threads' frees: block | DELAYED_* in the low 2 bits (CAS)
   +9   NEXT             next page in its heap queue (owner)
   +10  PREV             previous page (owner)
   +11  BIN              size bin; BIN_HUGE for huge pages (owner)
   +12  AREA             bytes of the page's block area (constant while in use)
--------------------------------------------------------------------------------- */

export const PAGE_FLAGS = 0
export const PAGE_BLOCK_SIZE = 1
export const PAGE_START = 2
export const PAGE_RESERVED = 3
export const PAGE_CAPACITY = 4
export const PAGE_FREE = 5
export const PAGE_LOCAL_FREE = 6
export const PAGE_USED = 7
export const PAGE_XTHREAD_FREE = 8
export const PAGE_NEXT = 9
export const PAGE_PREV = 10
export const PAGE_BIN = 11
export const PAGE_AREA = 12
/** Words per page descriptor. */
export const PAGE_WORDS = 16

/** FLAGS bits above this hold the owning heap id (0 once abandoned). */
export const PAGE_OWNER_SHIFT = 8
/** Mask of the PAGE_FLAG_* bits of FLAGS. */
export const PAGE_FLAG_MASK = 0xff
/** The page is in use (holds or can hand out blocks). */
export const PAGE_FLAG_IN_USE = 1
/** The page is in its heap's full queue. */
export const PAGE_FLAG_IN_FULL = 2

/* ----- xthread_free delayed states (low 2 bits; blocks are 8-aligned) ----------
   Following mimalloc: a page in the full queue is USE_DELAYED, so the first
   cross-thread free goes to the heap's delayed list and tells the owner.
---------------------------------------------------------------------------------- */

/** Next cross-thread free goes to the owner heap's delayed list. */
export const DELAYED_USE = 0
/** A freeing thread is pushing on the heap's delayed list (owner id is pinned). */
export const DELAYED_FREEING = 1
/** Cross-thread frees go to the page's xthread_free list. */
export const DELAYED_NO = 2
/** Never use the delayed list (abandoned pages). */
export const DELAYED_NEVER = 3
/** Mask of the delayed state in XTHREAD_FREE. */
export const DELAYED_MASK = 3
/** Mask of the block in XTHREAD_FREE. */
export const BLOCK_MASK = ~7

/* ----- Debug block layout (debug mode only) ---------------------------------------
   A debug block of block size B holding a request of n bytes (usableSize = n):

   +0        +4       +8        +12       +16             +32         +32+n      +B
   | LINK    | SIZE n | SERIAL  | HEAP    | FD × 16 guard  | user bytes | FD × 16 | …
   ^ block start (LINK is the free-list word)              ^ pointer returned

   B ≥ 32 + n + DEBUG_REAR_MIN; the guard is the 16 bytes after n. malloc fills the user bytes 0xCD, free fills
   them 0xDD and sets HEAP to DEBUG_DEAD, so the next malloc of the block can
   verify that nobody wrote to it while it was free.
---------------------------------------------------------------------------------- */

/** Bytes before the user area in a debug block (keeps user pointers 16-aligned). */
export const DEBUG_HEADER = 32
/** Word offsets (from the block start) of the debug header fields. */
export const DEBUG_LINK = 0
export const DEBUG_SIZE = 1
export const DEBUG_SERIAL = 2
export const DEBUG_HEAP = 3
/** Byte offset and length of the front guard. */
export const DEBUG_FRONT = 16
export const DEBUG_FRONT_BYTES = 16
/** Rear guard bytes after the user area, at least. */
export const DEBUG_REAR_MIN = 16
/** DEBUG_HEAP value of a freed block (its user bytes are 0xDD). */
export const DEBUG_DEAD = 0x0dead0dd
/** LINK value of a live debug block. */
export const DEBUG_LIVE = 0x11ce0cd
export const DEBUG_BYTE_GUARD = 0xfd
export const DEBUG_BYTE_CLEAN = 0xcd
export const DEBUG_BYTE_DEAD = 0xdd
