/* ----------------------------------------------------------------------------
  bench-native.ts — native mimalloc on the same mimalloc-stress pattern, in
  the same bench run: builds stress/native/mimalloc-stress.c against the
  system's libmimalloc (Debian: libmimalloc-dev) and runs it.

  Each run is two processes: one without live-byte tracking, timed (the
  wall-time figure), and one that tracks every block's usable size, for the
  memory overhead (peak RSS less an idle process's RSS, over peak live
  bytes). Without a C compiler or the library the bench says so and goes on.
---------------------------------------------------------------------------- */

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'native', 'mimalloc-stress.c')

/** What one run of the C program prints (one JSON line). */
interface NativeReport {
  wallSeconds: number
  peakLiveBytes: number
  peakRssBytes: number
}

/** The built program; `dispose` removes it. */
export interface NativeStress {
  /** One untracked (timed) and one tracked run: wall seconds, (peak RSS − idle RSS) / peak live. */
  run(): { wallSeconds: number, overhead: number }
  dispose(): void
}

/**
 * Builds the native program for `threads`, `scale`, `rounds` with the C
 * compiler `cc`; a string says why it could not (no compiler, no
 * libmimalloc, a failed run).
 */
export function buildNativeStress(threads: number, scale: number, rounds: number, cc = 'cc'): NativeStress | string {
  const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-native-'))
  const exe = join(dir, 'mimalloc-stress')
  try {
    execFileSync(cc, ['-O2', '-o', exe, SOURCE, '-lmimalloc', '-lpthread'], { stdio: 'pipe' })
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    const err = e as { code?: string, stderr?: Buffer }
    return err.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} failed (is libmimalloc-dev installed?): ${String(err.stderr ?? '').split('\n')[0]}`
  }
  const once = (args: string[]): NativeReport => {
    const out = execFileSync(exe, [String(threads), String(scale), ...args], { encoding: 'utf8' })
    return JSON.parse(out.trim().split('\n').pop()!) as NativeReport
  }
  try {
    const idleRss = once(['0']).peakRssBytes
    return {
      run() {
        const timed = once([String(rounds), 'untracked'])
        const tracked = once([String(rounds)])
        return { wallSeconds: timed.wallSeconds, overhead: (tracked.peakRssBytes - idleRss) / tracked.peakLiveBytes }
      },
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    return `the native program failed: ${(e as Error).message.split('\n')[0]}`
  }
}
