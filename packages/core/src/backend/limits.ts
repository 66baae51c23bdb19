/**
 * How many elements a tensor may hold on each backend. Kernels index in int32 on wasm and webgpu
 * (integer locals, `kernels/index-math.ts`) and in float64 on cpu, so a tensor may hold up to
 * 2^31 - 1 elements where memory allows. gpu.js's webgl kernels index in float32 (their locals and
 * texture addresses are floats), which addresses every element only below 2^24: a bigger tensor is
 * refused when made or loaded, never read back wrong.
 * @module
 */
import { engine } from './registry.js';
import type { BackendName } from './types.js';

/**
 * The largest element count a tensor may have on backend `name`.
 *
 * @example
 * ```ts
 * maxElements('wasm');  // 2147483647
 * maxElements('webgl'); // 16777215
 * ```
 */
export function maxElements(name: BackendName): number {
  return name === 'webgl' ? 2 ** 24 - 1 : 2 ** 31 - 1;
}

/**
 * Throws unless `size` elements fit in one tensor on the current backend. `op` names the caller and
 * `what` the tensor (a shape, a key) in the error.
 *
 * @example
 * ```ts
 * checkElements('tensor', 32000 * 768, 'shape [32000,768]'); // passes on wasm, throws on webgl
 * ```
 */
export function checkElements(op: string, size: number, what: string): void {
  const name = engine().name;
  const max = maxElements(name);
  if (size > max) {
    const why = name === 'webgl' ? "webgl's kernels index in float32" : 'kernels index in int32';
    throw new Error(`${op}: ${what} has ${size} elements, more than the ${max} a tensor may hold on the ${name} backend (${why})`);
  }
}
