import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The CLI tests spawn processes and the backends are CPU-bound: two workers on two cores.
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // The CLI tests read stderr as a person does: text logs. Off a terminal the default is JSON
    // events (src/cli/progress.ts); test/cli/logs.test.ts clears this to check that default.
    env: { SEGTENSOR_LOG_FORMAT: 'text' },
  },
});
