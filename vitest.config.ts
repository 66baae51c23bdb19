import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string): string => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run on the TypeScript sources, so one module instance of each package is loaded.
    alias: {
      // Subpaths before their package: an alias also matches the names it is a prefix of.
      '@sorsajs/core/internal': fileURLToPath(new URL('./packages/core/src/internal.ts', import.meta.url)),
      '@sorsajs/core': src('core'),
      '@sorsajs/linalg': src('linalg'),
      '@sorsajs/testing/backends': fileURLToPath(new URL('./packages/testing/src/backends.ts', import.meta.url)),
      '@sorsajs/testing/vitest': fileURLToPath(new URL('./packages/testing/src/vitest.ts', import.meta.url)),
      '@sorsajs/testing': src('testing'),
      '@sorsajs/models': src('models'),
      '@sorsajs/sorsa': src('sorsa'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    // The software WebGPU adapter (lavapipe) compiles each kernel in ~100 ms: give suites room.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: one test file per core.
    maxWorkers: 2,
  },
});
