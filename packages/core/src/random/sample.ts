/**
 * Sampling: every value is computed in gpu.js kernels (kernels/random.ts) from the key and the
 * element's index only.
 * @module
 */
import { less } from '../ops/elementwise.js';
import { backend } from '../backend/registry.js';
import { checkFiniteNumber, checkTensor } from '../tensor/checks.js';
import type { Tensor } from '../tensor/tensor.js';
import { broadcastShapes, checkShape, fmt, sizeOf } from '../util/shape-math.js';
import { checkElements } from '../backend/limits.js';
import { addKernel, bitsKernel, mulKernel, normalKernel, permutationKernel, shiftKernel, uniformKernel } from './launch.js';
import { words, type Key } from './key.js';

function checkSampleShape(op: string, shape: readonly number[]): void {
  checkShape(shape, op);
  // Counters are element indices: the kernels split them into 16-bit halves of an integer local,
  // exact up to 2^31 - 1 where kernels index in int32; the backend's element limit applies.
  checkElements(op, sizeOf(shape), `shape ${fmt(shape)}`);
}

/**
 * The raw 32-bit random words behind every sampler (JAX's `random.bits` for uint32), each as its
 * high and low 16-bit halves: an int32 tensor of shape `[...shape, 2]` (int32 tensors are exact only
 * below 2^24, so a word does not fit in one). Word = `hi * 65536 + lo`.
 *
 * @example
 * ```ts
 * await bits(key(0), [1]).data(); // Int32Array [hi, lo] of JAX's random.bits(key(0), (1,))
 * ```
 */
export function bits(k: Key, shape: readonly number[] = []): Tensor {
  const w = words('bits', k);
  checkSampleShape('bits', shape);
  return bitsKernel('bits', w, shape);
}

/** Options of {@link uniform}. */
export interface UniformOptions {
  /** Lower bound, included (default 0). */
  min?: number;
  /** Upper bound, excluded (default 1). */
  max?: number;
}

/** The largest float32 below `v` (v a float32 above -Infinity). */
function below(v: number): number {
  const f = new Float32Array([v]);
  const i = new Int32Array(f.buffer);
  if (v === 0) return -(2 ** -149);
  i[0] += v > 0 ? -1 : 1;
  return f[0];
}

/**
 * Uniform float32 samples in `[min, max)`. With the defaults they are JAX's numbers: the top 23
 * bits of each word times 2^-23, so multiples of 2^-23 in [0, 1 - 2^-23]. Otherwise
 * `u * (max - min) + min` with each operation rounded once (and at most the largest float below `max`).
 *
 * @example
 * ```ts
 * uniform(key(0), [2, 3]);                       // in [0, 1)
 * uniform(key(1), [5], { min: -1, max: 1 });     // in [-1, 1)
 * ```
 */
export function uniform(k: Key, shape: readonly number[] = [], opts: UniformOptions = {}): Tensor {
  const w = words('uniform', k);
  checkSampleShape('uniform', shape);
  const lo = Math.fround(checkFiniteNumber('uniform', 'min', opts.min ?? 0));
  const hi = Math.fround(checkFiniteNumber('uniform', 'max', opts.max ?? 1));
  if (!(lo < hi) || !Number.isFinite(Math.fround(hi - lo))) {
    throw new Error(`uniform: needs min < max with a finite float32 width, got min ${opts.min ?? 0} and max ${opts.max ?? 1}`);
  }
  const scaled = uniformKernel('uniform', w, shape, lo, hi);
  // With min = 0 the product already stays below max (u <= 1 - 2^-23 rounds below max).
  if (lo === 0) return scaled;
  try {
    return shiftKernel('uniform', scaled, lo, hi, below(hi));
  } finally {
    scaled.dispose();
  }
}

/** Options of {@link normal}. */
export interface NormalOptions {
  /** Mean (default 0). */
  mean?: number;
  /** Standard deviation (default 1). */
  std?: number;
}

/**
 * Normal float32 samples, `mean + std * z` with z standard normal. Each z is the inverse normal CDF
 * of a 31-bit tail probability and a sign bit, computed in fixed point (within 5e-7 relative of the
 * exact quantile; |z| < 6.4). Not JAX's numbers (JAX applies float32 erfinv to a uniform).
 * Refused on webgl, whose kernels cannot do the exact integer arithmetic it needs.
 *
 * @example
 * ```ts
 * normal(key(0), [1000]);                           // mean 0, std 1
 * normal(key(1), [64, 64], { std: 0.02 });          // an init
 * ```
 */
export function normal(k: Key, shape: readonly number[] = [], opts: NormalOptions = {}): Tensor {
  const w = words('normal', k);
  checkSampleShape('normal', shape);
  const mean = Math.fround(checkFiniteNumber('normal', 'mean', opts.mean ?? 0));
  const std = Math.fround(checkFiniteNumber('normal', 'std', opts.std ?? 1));
  if (backend() === 'webgl') {
    throw new Error(
      "normal: not available on webgl: its fixed-point inverse CDF needs exact 32-bit integer arithmetic, which gpu.js's GL kernels emulate in floating point (wrong values were measured); use webgpu, wasm or cpu",
    );
  }
  let z = normalKernel('normal', w, shape);
  // std * z and + mean in kernels of their own: one kernel doing both may be fused into an FMA.
  if (std !== 1) {
    const scaled = mulKernel('normal', z, std);
    z.dispose();
    z = scaled;
  }
  if (mean !== 0) {
    const shifted = addKernel('normal', z, mean);
    z.dispose();
    z = shifted;
  }
  return z;
}

/**
 * Bernoulli samples as float32 1 (probability `p`) and 0, as JAX: `uniform(k, shape) < p`. `p` is a
 * number in [0, 1] or a float32 tensor that broadcasts to `shape` (which defaults to p's shape).
 *
 * @example
 * ```ts
 * bernoulli(key(0), 0.9, [4]);               // mostly ones
 * bernoulli(key(1), tensor([0.1, 0.5, 0.9])); // shape [3]
 * ```
 */
export function bernoulli(k: Key, p: number | Tensor = 0.5, shape?: readonly number[]): Tensor {
  const w = words('bernoulli', k);
  let outShape: readonly number[];
  if (typeof p === 'number') {
    if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
    outShape = shape ?? [];
  } else {
    checkTensor('bernoulli', p, 'p');
    if (p.dtype !== 'float32') throw new Error(`bernoulli: p must be a float32 tensor, got ${p.dtype}`);
    outShape = shape ?? p.shape;
    const b = broadcastShapes('bernoulli', outShape, p.shape);
    if (fmt(b) !== fmt(outShape)) throw new Error(`bernoulli: p of shape ${fmt(p.shape)} does not broadcast to shape ${fmt(outShape)}`);
  }
  checkSampleShape('bernoulli', outShape);
  const u = uniformKernel('bernoulli', w, outShape, 0, 1);
  try {
    return less(u, p);
  } finally {
    u.dispose();
  }
}

/**
 * A uniformly random permutation of `0 .. n-1` (int32), by sorting random 48-bit keys: a rank
 * kernel counts, for each element, the keys below its own, and a second kernel inverts the ranks.
 * Both are O(n^2) work (n threads looping over n): fine for shuffling a few thousand examples
 * (n = 4096: 2 x 16.8M comparisons), slow beyond some tens of thousands.
 *
 * @example
 * ```ts
 * await permutation(key(0), 5).data(); // Int32Array, e.g. [3, 0, 4, 1, 2]
 * ```
 */
export function permutation(k: Key, n: number): Tensor {
  const w = words('permutation', k);
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 23) throw new Error(`permutation: n must be an integer in [0, 2^23), got ${String(n)}`);
  return permutationKernel('permutation', w, n);
}
