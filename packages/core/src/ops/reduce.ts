/**
 * Reductions, each `(x, axis?, keepdims?)`: axis is one axis, several, or undefined for all.
 * @module
 */
import { NEEDS_INF, hasContiguous, reduceContiguousKernel, reduceKernel } from '../kernels/reduce.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { fmt, normalizeAxes, sizeOf } from '../util/shape.js';
import { checkTensor, launch, requireFloat } from './operand.js';
import { broadcastTo, reshape, transpose } from './shape.js';
import { op, untracked } from '../autodiff/tape.js';
import { div, equal, exp, mul, sub, where } from './elementwise.js';

/** Axis argument of reductions: one axis, several, or undefined for all. */
export type Axis = number | readonly number[];

/**
 * VJPs of the reductions, from `gk` (the output cotangent reshaped to keep the reduced axes as 1,
 * then broadcast to x's shape), x, and `yk` (the output, likewise broadcast). null: no gradient.
 */
const REDUCE_VJP: Record<string, ((gk: Tensor, x: Tensor, yk: Tensor, count: number, axes: number[]) => Tensor) | undefined> = {
  sum: (gk) => gk,
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
  checkTensor(name, x);
  const forward = (): Tensor => reduceForward(name, x, axis, keepdims, dtype);
  const vjp = REDUCE_VJP[name];
  if (!vjp || x.dtype !== 'float32') return untracked(forward);
  const axes = normalizeAxes(name, axis, x.rank);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const count = sizeOf(axes.map((a) => x.shape[a]));
  return op([x], forward, (g, y) => {
    const gk = broadcastTo(reshape(g, kept), x.shape);
    const yk = broadcastTo(reshape(y, kept), x.shape);
    return [vjp(gk, x, yk, count, axes)];
  });
}

function reduceForward(op: string, x: Tensor, axis: Axis | undefined, keepdims: boolean, dtype: DType): Tensor {
  const axes = normalizeAxes(op, axis, x.rank);
  const keptShape = x.shape.filter((_, i) => !axes.includes(i));
  const outShape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : keptShape;
  const L = sizeOf(axes.map((a) => x.shape[a]));
  if (L === 0 && op !== 'sum' && op !== 'mean') {
    throw new Error(`${op}: reduction over an empty axis of shape ${fmt(x.shape)} has no identity`);
  }
  // The reduced axes must be one contiguous block; otherwise move them to the end first.
  const contiguous = axes.every((a, k) => k === 0 || a === axes[k - 1] + 1);
  let src = x;
  let first = axes[0] ?? x.rank;
  if (!contiguous) {
    src = transpose(x, [...x.shape.keys()].filter((i) => !axes.includes(i)).concat(axes));
    first = keptShape.length;
  }
  const outer = sizeOf(src.shape.slice(0, first));
  const inner = sizeOf(src.shape.slice(first + axes.length));
  let flat: Tensor;
  if (inner === 1 && L > 0 && hasContiguous(op)) {
    flat = launch(op, reduceContiguousKernel(op), [outer], dtype, [src], [L]);
  } else {
    const scalars = NEEDS_INF.has(op) ? [L, inner, Infinity, -Infinity] : [L, inner];
    flat = launch(op, reduceKernel(op), [outer * inner], dtype, [src], scalars);
  }
  if (src !== x) src.dispose();
  const out = reshape(flat, outShape);
  flat.dispose();
  return out;
}

/**
 * Sum over `axis` (all axes by default).
 *
 * @example
 * ```ts
 * sum(tensor([[1, 2], [3, 4]]), 0);       // [4, 6]
 * sum(tensor([[1, 2], [3, 4]]), 1, true); // [[3], [7]]
 * ```
 */
export function sum(x: Tensor, axis?: Axis, keepdims = false): Tensor {
  return reduce('sum', x, axis, keepdims, x?.dtype);
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
