/**
 * Random numbers with explicit keys, as in JAX: a {@link Key} is a value, sampling functions are
 * pure, and the same key gives the same numbers on every backend, bit for bit.
 *
 * The generator is Threefry-2x32 with 20 rounds, JAX's default, in its "partitionable" layout
 * (the default since JAX 0.5): element `i` of a sample is drawn from the block for counter `(0, i)`,
 * and `key`, `split`, `foldIn`, `bits`, `uniform` and `bernoulli` give JAX's own numbers
 * (`normal` does not: see there).
 *
 * Where values are computed: keys are two uint32 words of key material, derived on the host with
 * the same Threefry function (planning, like computing strides; no tensor holds them). Every value a
 * tensor holds is computed in gpu.js kernels, from the key and the element's index only, in exact
 * integer arithmetic and roundings that IEEE 754 fixes (see kernels/random.ts), which is why the results
 * are identical on `webgpu`, `wasm` and `cpu` (tested bit for bit; `webgl` is untested).
 *
 * @example
 * ```ts
 * import { random } from '@sorsajs/core';
 * const k = random.key(0);
 * const [k1, k2] = random.split(k);
 * const w = random.normal(k1, [3, 4], { std: 0.02 });
 * const order = random.permutation(k2, 10); // int32, a shuffle of 0..9
 * ```
 * @module
 */
export { Key, key, keyData, wrapKeyData, split, foldIn } from './key.js';
export { bits, uniform, normal, bernoulli, permutation } from './sample.js';
export type { UniformOptions, NormalOptions } from './sample.js';
