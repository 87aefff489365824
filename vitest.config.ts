import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The software Vulkan adapter is slow; whole-model cases take seconds each.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // One process at a time: each test file opens its own Dawn device, and
    // the CPU adapter (lavapipe) already uses every core.
    fileParallelism: false,
  },
});
