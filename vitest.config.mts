import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Only TypeScript sources: the compiled copies under dist/ are CommonJS and must not be collected.
    include: ['test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
