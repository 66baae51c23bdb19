/**
 * Random layers and initializers: dropout and weight initializers, driven by explicit keys.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { div, mul } from '../ops/elementwise.js';
import { checkTensor } from '../tensor/checks.js';
import { bernoulli, normal as randomNormal, uniform, type Key } from '../random/index.js';
import { checkShape, fmt } from '../util/shape-math.js';
import { runScoped } from '../tensor/scope.js';

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest by
 * `1 / (1 - rate)`, so the expectation is unchanged. The mask comes from `key`: the same key drops
 * the same elements on every backend.
 *
 * @example
 * ```ts
 * const [k1, k2] = random.split(random.key(0));
 * const h = dropout(k1, x, 0.1);
 * ```
 */
export function dropout(key: Key, x: Tensor, rate: number): Tensor {
  checkTensor('dropout', x);
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
  if (rate === 0) return mul(x, 1);
  return runScoped(
    () => div(mul(x, bernoulli(key, 1 - rate, x.shape)), 1 - rate),
    (r) => [r],
  );
}

/** Fan-in and fan-out of a weight shape: PyTorch's layout `[out, in, ...receptive field]`. */
function fans(op: string, shape: readonly number[]): [number, number] {
  checkShape(shape, op);
  if (shape.length < 2) throw new Error(`${op}: needs a shape of rank >= 2 ([out, in, ...]), got ${fmt(shape)}`);
  const field = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * field, shape[0] * field];
}

/**
 * Glorot (Xavier) uniform initialization: U(-l, l) with `l = sqrt(6 / (fanIn + fanOut))`, for a
 * weight of PyTorch layout `[out, in, ...]`.
 *
 * @example
 * ```ts
 * const W = glorotUniform(random.key(0), [256, 784]);
 * ```
 */
export function glorotUniform(key: Key, shape: readonly number[]): Tensor {
  const [fanIn, fanOut] = fans('glorotUniform', shape);
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return uniform(key, shape, { min: -limit, max: limit });
}

/**
 * Normal initialization with standard deviation `std` (default 0.02, as GPT-2) and mean 0: an
 * initializer, as `glorotUniform`. (`random.normal(key, shape, { mean, std })` is the sampler it
 * draws from.)
 *
 * @example
 * ```ts
 * const E = normalInit(random.key(1), [vocab, dim], 0.02);
 * ```
 */
export function normalInit(key: Key, shape: readonly number[], std = 0.02): Tensor {
  checkShape(shape, 'normalInit');
  if (!(std >= 0)) throw new Error(`normalInit: std must be non-negative, got ${std}`);
  return randomNormal(key, shape, { std });
}

/**
 * The old name of `normalInit`, which read like the sampler `random.normal` (other arguments: an
 * options object where this takes `std`).
 * @deprecated Use `normalInit`; `normal` will be removed.
 */
export const normal = normalInit;
