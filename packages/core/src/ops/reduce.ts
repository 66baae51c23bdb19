/**
 * Reductions, each `(x, axis?, keepdims?)`: axis is one axis, several, or undefined for all. `sum`,
 * which the VJPs here and of the elementwise ops need, is in broadcast.ts.
 * @module
 */
import type { DType, Tensor } from '../tensor/tensor.js';
import { requireFloat } from './operand.js';
import { checkTensor } from '../tensor/checks.js';
import { reshape } from './shape.js';
import { reduction, sum, type Axis, type ReductionVjp } from './broadcast.js';
import { div, equal, exp, mul, sub, where } from './elementwise.js';

/** VJPs of the reductions (see `ReductionVjp`); argmax and argmin have none. */
const REDUCE_VJP: Record<string, ReductionVjp | undefined> = {
  mean: (gk, _x, _yk, count) => div(gk, count),
  // Ties share the cotangent evenly (as JAX does).
  max: (gk, x, yk, _c, axes) => tieShare(gk, x, yk, axes),
  min: (gk, x, yk, _c, axes) => tieShare(gk, x, yk, axes),
  logsumexp: (gk, x, yk) => mul(gk, exp(sub(x, yk))),
  // d|x|/dx = x / |x|, taken as 0 at |x| = 0.
  norm: (gk, x, yk) => {
    const zero = equal(yk, 0);
    return mul(gk, div(mul(x, sub(1, zero)), where(zero, 1, yk)));
  },
};

function tieShare(gk: Tensor, x: Tensor, yk: Tensor, axes: number[]): Tensor {
  const hit = equal(x, yk);
  const count = sum(hit, axes, true);
  return div(mul(gk, hit), count);
}

function reduce(name: string, x: Tensor, axis: Axis | undefined, keepdims: boolean, dtype: DType): Tensor {
  return reduction(name, x, axis, keepdims, dtype, REDUCE_VJP[name]);
}

/**
 * Mean over `axis` (all axes by default); float32 even for int32 input.
 *
 * @example
 * ```ts
 * mean(tensor([1, 2, 3, 4])); // 2.5
 * ```
 */
export function mean(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('mean', x, axis, keepdims, 'float32');
}

/**
 * Maximum over `axis`; NaN propagates.
 *
 * @example
 * ```ts
 * max(tensor([[1, 5], [3, 2]]), 1); // [5, 3]
 * ```
 */
export function max(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('max', x, axis, keepdims, x?.dtype);
}

/**
 * Minimum over `axis`; NaN propagates.
 *
 * @example
 * ```ts
 * min(tensor([[1, 5], [3, 2]]), 1); // [1, 2]
 * ```
 */
export function min(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('min', x, axis, keepdims, x?.dtype);
}

/**
 * Index (int32) of the first maximum along one axis, or in the flattened tensor when `axis` is undefined.
 *
 * @example
 * ```ts
 * argmax(tensor([[1, 5], [3, 2]]), 1); // [1, 0]
 * ```
 */
export function argmax(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce('argmax', x, axis, keepdims);
}

/**
 * Index (int32) of the first minimum along one axis, or in the flattened tensor when `axis` is undefined.
 *
 * @example
 * ```ts
 * argmin(tensor([[1, 5], [3, 2]]), 1); // [0, 1]
 * ```
 */
export function argmin(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce('argmin', x, axis, keepdims);
}

function argReduce(op: string, x: Tensor, axis: number | undefined, keepdims: boolean): Tensor {
  checkTensor(op, x);
  if (axis !== undefined && typeof axis !== 'number') throw new Error(`${op}: axis must be one number, got ${JSON.stringify(axis)}`);
  if (axis === undefined) {
    const flat = reshape(x, [x.size]);
    const r = reduce(op, flat, 0, false, 'int32');
    flat.dispose();
    if (!keepdims) return r;
    const k = reshape(r, x.shape.map(() => 1));
    r.dispose();
    return k;
  }
  return reduce(op, x, axis, keepdims, 'int32');
}

/**
 * `log(sum(exp(x)))` over `axis`, computed without overflow.
 *
 * @example
 * ```ts
 * logsumexp(tensor([0, 0])); // log(2)
 * ```
 */
export function logsumexp(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  checkTensor('logsumexp', x);
  requireFloat('logsumexp', x);
  return reduce('logsumexp', x, axis, keepdims, 'float32');
}

/**
 * Euclidean (Frobenius over several axes) norm over `axis`, all axes by default; scaled so it
 * neither overflows nor underflows.
 *
 * @example
 * ```ts
 * norm(tensor([3, 4])); // 5
 * ```
 */
export function norm(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  checkTensor('norm', x);
  requireFloat('norm', x);
  return reduce('norm', x, axis, keepdims, 'float32');
}
