import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // multi-worker tests start their own worker_threads; keep vitest's pool small on 2 cores
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    teardownTimeout: 10_000,
  },
})
