/* ----------------------------------------------------------------------------
  mimalloc-stress.c — the harness's mimalloc-stress pattern (workers/patterns.ts)
  in C on native mimalloc, for the one figure the bench cannot take in
  Node: native mimalloc's memory overhead on the same workload.

  Peak live bytes are tracked exactly (mi_usable_size of every live block,
  atomically, like sabmalloc's liveBytes: used blocks x block size); the
  memory in use is the process's peak RSS (VmHWM) less an idle process's
  (`0` rounds). RSS counts only the pages a program touched, so a block
  allocated and never written (most of each thread's `data` array) costs
  native mimalloc less than it costs sabmalloc's count of claimed
  segments: the native figure leans low. Threads are created per round, as
  in mimalloc's test, so each round abandons and reclaims segments.

    apt-get install libmimalloc-dev
    cc -O2 -o /tmp/mimalloc-stress stress/native/mimalloc-stress.c -lmimalloc -lpthread
    /tmp/mimalloc-stress 2 50 0               # idle process: baseline RSS
    /tmp/mimalloc-stress 2 50 500             # threads, scale, rounds
    /tmp/mimalloc-stress 2 50 500 untracked   # no live-byte tracking: wall time

  `npm run bench` builds and runs it when a C compiler and libmimalloc-dev
  are there (stress/bench-native.ts), next to sabmalloc's runs.

  Measured on this machine (session 4, mimalloc 2.0.9 from Debian, 5 runs):
  peak live 5.0 MiB, peak RSS 10.8-15.2 MiB, idle process 1.8 MiB:
  (RSS - idle) / live = 1.80-2.68, median 1.84. sabmalloc's figure on the
  harness, peak segment bytes / peak live, is 1.4-1.5. Tracked runs pay an
  atomic add on one shared counter per malloc and per free; time the
  untracked ones.
---------------------------------------------------------------------------- */
#include <mimalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRANSFERS 1000
#define COOKIE 0xbf58476d1ce4e5b9ULL

static int threads = 2, scale = 50, rounds = 500, tracking = 1;
static _Atomic(uint64_t *) transfer[TRANSFERS];
static _Atomic long live_bytes = 0, peak_live = 0;

/* Live bytes change by `delta`; the peak follows (atomic max). */
static void track(long delta) {
  if (!tracking) return;
  long now = atomic_fetch_add(&live_bytes, delta) + delta;
  long peak = atomic_load(&peak_live);
  while (now > peak && !atomic_compare_exchange_weak(&peak_live, &peak, now)) {}
}

/* The harness's generator: Chris Wellons' 32-bit hash, iterated. */
static uint32_t pick(uint32_t *state) {
  uint32_t x = *state;
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return *state = x;
}
static int chance(uint32_t percent, uint32_t *state) { return pick(state) % 100 < percent; }

static uint64_t *alloc_items(size_t items, uint32_t *state) {
  if (chance(1, state)) items *= 100;
  if (items >= 32 && items <= 40) items *= 2;
  uint64_t *p = mi_calloc(items, 8);
  if (p == NULL) { fprintf(stderr, "out of memory\n"); exit(1); }
  track((long)mi_usable_size(p));
  for (size_t i = 0; i < items; i++) p[i] = (items - i) ^ COOKIE;
  return p;
}

static void free_items(uint64_t *p) {
  if (p == NULL) return;
  size_t items = p[0] ^ COOKIE;
  for (size_t i = 0; i < items; i++) {
    if (p[i] != ((items - i) ^ COOKIE)) { fprintf(stderr, "corrupted block %p word %zu\n", (void *)p, i); exit(1); }
  }
  track(-(long)mi_usable_size(p));
  mi_free(p);
}

static void *stress(void *arg) {
  intptr_t tid = (intptr_t)arg;
  uint32_t state = (uint32_t)(tid + 1) * 2654435761u;
  size_t allocs = 100 * (size_t)scale * (size_t)(tid % 8 + 1), retain = allocs / 2;
  uint64_t **data = NULL, **retained = mi_calloc(retain, sizeof(uint64_t *));
  size_t data_size = 0, data_top = 0, retain_top = 0;
  track((long)mi_usable_size(retained));
  while (allocs > 0 || retain > 0) {
    if (retain == 0 || (chance(50, &state) && allocs > 0)) {
      allocs--;
      if (data_top >= data_size) {
        if (data != NULL) track(-(long)mi_usable_size(data));
        data_size += 100000;
        data = mi_realloc(data, data_size * sizeof(uint64_t *));
        track((long)mi_usable_size(data));
      }
      data[data_top++] = alloc_items(1u << (pick(&state) % 5), &state);
    } else {
      retained[retain_top++] = alloc_items(1u << (pick(&state) % 7), &state);
      retain--;
    }
    if (chance(66, &state) && data_top > 0) {
      size_t i = pick(&state) % data_top;
      free_items(data[i]);
      data[i] = NULL;
    }
    if (chance(25, &state) && data_top > 0) {
      size_t i = pick(&state) % data_top;
      data[i] = atomic_exchange(&transfer[pick(&state) % TRANSFERS], data[i]);
    }
  }
  for (size_t i = 0; i < retain_top; i++) free_items(retained[i]);
  for (size_t i = 0; i < data_top; i++) free_items(data[i]);
  track(-(long)mi_usable_size(retained));
  mi_free(retained);
  if (data != NULL) { track(-(long)mi_usable_size(data)); mi_free(data); }
  return NULL;
}

/*
  Peak resident bytes of this process image: VmHWM from /proc/self/status.
  Not getrusage's ru_maxrss (what mi_process_info reports): Linux carries
  that over exec from the process that forked us, so a child of a big
  Node process would report Node's size.
*/
static size_t peak_rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return 0;
  char line[256];
  size_t kib = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmHWM: %zu kB", &kib) == 1) break;
  }
  fclose(f);
  return kib * 1024;
}

int main(int argc, char **argv) {
  if (argc > 1) threads = atoi(argv[1]);
  if (argc > 2) scale = atoi(argv[2]);
  if (argc > 3) rounds = atoi(argv[3]);
  if (argc > 4) tracking = strcmp(argv[4], "untracked") != 0;
  if (threads < 1 || threads > 64) { fprintf(stderr, "threads must be 1..64\n"); return 2; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint32_t state = 42;
  pthread_t th[64];
  for (int round = 0; round < rounds; round++) {
    for (intptr_t i = 0; i < threads; i++) pthread_create(&th[i], NULL, stress, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    /* the main thread's part: free half the transfer array, all of it after the last round */
    for (int i = 0; i < TRANSFERS; i++) {
      if (chance(50, &state) || round + 1 == rounds) free_items(atomic_exchange(&transfer[i], NULL));
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
  mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  peak_rss = peak_rss_bytes();
  /* one JSON line: stress/bench-native.ts reads it */
  printf("{\"wallSeconds\": %.4f, \"peakLiveBytes\": %ld, \"peakRssBytes\": %zu, \"peakCommitBytes\": %zu}\n",
    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, atomic_load(&peak_live), peak_rss, peak_commit);
  return atomic_load(&live_bytes) == 0 ? 0 : 1;
}
