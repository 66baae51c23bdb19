/**
 * How many elements a tensor may hold on each backend. Kernels index in int32 on wasm and webgpu
 * (integer locals, `kernels/index-math.ts`) and in float64 on cpu, so a tensor may hold up to
 * 2^31 - 1 elements where memory allows. gpu.js's webgl kernels index in float32 (their locals and
 * texture addresses are floats), as do wasm and webgpu under an unpatched gpu.js, which addresses
 * every element only below 2^24: there a bigger tensor is refused when made or loaded, never read
 * back wrong. On webgpu a tensor is also one storage-buffer binding, whose size the device bounds.
 * @module
 */
import gpujs from 'gpu.js';
import { engine } from './registry.js';
import type { BackendName } from './types.js';
import { webgpuStorageBindingBytes } from './node-webgpu.js';

/**
 * Whether gpu.js declares integer locals as i32 on `name`: true with `patches/gpu.js+2.24.1.patch`
 * (what `npm ci` installs), false with an unpatched gpu.js (its prebuilt browser bundle), whose
 * float32 locals address every element only below 2^24. Read from the marker property the patch
 * sets on the code generator's class (a property survives bundlers that strip comments).
 */
function integerLocals(name: BackendName): boolean {
  const g = gpujs as unknown as Record<string, { sorsajsIntegerLocals?: unknown } | undefined>;
  const node = name === 'wasm' ? g.WebAssemblyFunctionNode : name === 'webgpu' ? g.WGSLFunctionNode : undefined;
  return node?.sorsajsIntegerLocals === true;
}

/**
 * The largest element count a tensor may have on backend `name`.
 *
 * @example
 * ```ts
 * maxElements('wasm');   // 2147483647
 * maxElements('webgl');  // 16777215
 * maxElements('webgpu'); // the device's maxStorageBufferBindingSize / 4 (33554432 on lavapipe)
 * ```
 */
export function maxElements(name: BackendName): number {
  const indexable = name === 'cpu' || integerLocals(name) ? 2 ** 31 - 1 : 2 ** 24 - 1;
  // On webgpu a tensor is one storage buffer binding, which the device bounds (128 MiB by default).
  if (name === 'webgpu') return Math.min(indexable, Math.floor(webgpuStorageBindingBytes / 4));
  return indexable;
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
  if (size > max) throw new Error(`${op}: ${what} has ${size} elements, more than the ${max} a tensor may hold on the ${name} backend (${elementsLimitReason(name)})`);
}

/**
 * Why `maxElements(name)` is what it is, for error messages: the WebGPU binding limit, gpu.js's
 * float32 indexing (on wasm and cpu: a gpu.js without this project's patch, as when the packages
 * are installed without the repository's `postinstall`), or int32 indexing.
 *
 * @example
 * ```ts
 * elementsLimitReason('webgl'); // "gpu.js's webgl kernels index in float32"
 * ```
 */
export function elementsLimitReason(name: BackendName): string {
  const max = maxElements(name);
  if (name === 'webgpu' && max === Math.floor(webgpuStorageBindingBytes / 4)) {
    return `the WebGPU device binds at most ${webgpuStorageBindingBytes} bytes per storage buffer (maxStorageBufferBindingSize)`;
  }
  if (max < 2 ** 31 - 1) {
    return `gpu.js's ${name} kernels index in float32${name === 'webgl' ? '' : ': gpu.js is not patched (patches/gpu.js+2.24.1.patch, applied by the repository\'s npm install)'}`;
  }
  return 'kernels index in int32';
}
