/**
 * Vitest matchers, registered by importing this module once (a setup file, or the test itself):
 *
 * ```ts
 * // vitest.setup.ts, listed in vitest's `setupFiles`, or at the top of a test file
 * import '@sorsajs/testing/vitest';
 * ```
 *
 * The matchers read tensors asynchronously, so await them:
 * `await expect(y).toBeAllClose(ref)`, `await expect(Q).toBeOrthonormal()`, and `.not` negates.
 * @module
 */
import { expect } from 'vitest';
import { assertAllClose, assertOrthonormal, type AllCloseOptions, type AllCloseValue, type OrthonormalOptions } from './assert.js';

/**
 * The matchers this module adds to vitest's `expect`.
 *
 * @example
 * ```ts
 * import '@sorsajs/testing/vitest';
 * await expect(matmul(a, b)).toBeAllClose(ref, { rtol: 1e-5 });
 * await expect(U).toBeOrthonormal();
 * ```
 */
export interface TensorMatchers<R = unknown> {
  /** `assertAllClose(received, expected, opts)` as a matcher: tensors, typed arrays and trees. */
  toBeAllClose(expected: AllCloseValue, opts?: AllCloseOptions): Promise<R>;
  /** `assertOrthonormal(received, opts)` as a matcher: orthonormal columns (tall) or rows (wide). */
  toBeOrthonormal(opts?: OrthonormalOptions): Promise<R>;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-explicit-any
  interface Matchers<T = any> extends TensorMatchers<T> {}
}

/** Runs an assertion as a matcher's result: pass, or fail with the assertion's message. */
async function asMatcher(name: string, run: () => Promise<void>): Promise<{ pass: boolean; message: () => string }> {
  try {
    await run();
    return { pass: true, message: () => `expected the values not to satisfy ${name}, but they do` };
  } catch (e) {
    if (!(e instanceof Error) || !/^assert(AllClose|Orthonormal): /.test(e.message)) throw e;
    return { pass: false, message: () => e.message };
  }
}

expect.extend({
  toBeAllClose(received: AllCloseValue, expected: AllCloseValue, opts?: AllCloseOptions) {
    return asMatcher('toBeAllClose', () => assertAllClose(received, expected, opts));
  },
  toBeOrthonormal(received: Parameters<typeof assertOrthonormal>[0], opts?: OrthonormalOptions) {
    return asMatcher('toBeOrthonormal', () => assertOrthonormal(received, opts));
  },
});
