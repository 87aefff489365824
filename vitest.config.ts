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
    // On an empty Mesa shader cache the suite's time is mostly llvmpipe
    // compiling shaders, and its unoptimized code runs the tests' small
    // tensors nearly as fast (test/conv.test.ts here: 130 -> 79 s on an
    // empty cache, 8.6 -> 9.6 s on a warm one). Mesa caches that code apart
    // from the optimized code, so segscope and the benchmarks never run it.
    // A GALLIVM_PERF of your own wins.
    env: { GALLIVM_PERF: process.env.GALLIVM_PERF ?? 'nopt' },
  },
});
