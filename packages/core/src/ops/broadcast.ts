/**
 * Broadcasting and summation, each the other's VJP: the cotangent of `broadcastTo` is a sum, and
 * the cotangent of `sum` is a broadcast. They live together so that the autodiff dependencies point
 * one way: the elementwise ops (whose VJPs un-broadcast with `sumTo`), the other reductions
 * (reduce.ts) and matmul build on this module, and it builds only on the shape ops.
 * @module
 */
import { NEEDS_INF, hasContiguous, reduceContiguousKernel, reduceKernel } from '../kernels/reduce.js';
import { lineReduceKernel, LINE_BLOCK, type LineReduce } from '../kernels/line-reduce.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides, checkShape, fmt, normalizeAxes, sizeOf } from '../util/shape-math.js';
import { launch, shapeOp, stridedCopy } from './operand.js';
import { checkTensor } from '../tensor/checks.js';
import { reshape, transpose } from './shape.js';
import { op, untracked } from '../autodiff/tape.js';

/** Axis argument of reductions: one axis, several, or undefined for all. */
export type Axis = number | readonly number[];

/**
 * @internal The VJP of a reduction, from `gk` (the output cotangent reshaped to keep the reduced
 * axes as 1, then broadcast to x's shape), x, `yk` (the output, likewise broadcast), the number of
 * elements reduced into each output and the reduced axes.
 */
export type ReductionVjp = (gk: Tensor, x: Tensor, yk: Tensor, count: number, axes: number[]) => Tensor;

/**
 * @internal Runs the reduction kernel `name` over `axis` and records it with `vjp` (none: the result
 * is a constant to the tape, as for argmax). Shared by `sum` here and the reductions of reduce.ts.
 */
export function reduction(name: string, x: Tensor, axis: Axis | undefined, keepdims: boolean, dtype: DType, vjp?: ReductionVjp): Tensor {
  checkTensor(name, x);
  const forward = (): Tensor => reduceForward(name, x, axis, keepdims, dtype);
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

/** Column sums and means for reduceForward (see kernels/line-reduce.ts). */
const COLUMN_SUMS: Record<'sum' | 'mean', LineReduce> = {
  sum: { name: 'reduce:sum:columns', expr: 'v0', kinds: ['full'], over: 'rows' },
  mean: { name: 'reduce:mean:columns', expr: 'v0', kinds: ['full'], over: 'rows', finish: 'acc / n' },
};

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
  } else if (outer === 1 && L > 0 && (op === 'sum' || op === 'mean') && x.dtype === 'float32') {
    // Sums down the columns of an [L, inner] matrix (a bias's gradient, summed over every token):
    // consecutive cells read consecutive columns, one vector load per row on wasm, in blocks of 64
    // rows. The strided kernel below took ~2.6 ms for [512, 512], 10 ns per element.
    const spec = COLUMN_SUMS[op];
    flat = launch(op, lineReduceKernel(spec), [inner], dtype, [src], [L, inner, Math.ceil(L / LINE_BLOCK)]);
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
  return reduction('sum', x, axis, keepdims, x?.dtype, (gk) => gk);
}

/**
 * Broadcasts to `shape` as NumPy does, materializing the copy.
 *
 * @example
 * ```ts
 * broadcastTo(tensor([1, 2]), [3, 2]).shape; // [3, 2]
 * ```
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('broadcastTo', x);
  checkShape(shape, 'broadcastTo');
  const out = broadcastShapes('broadcastTo', x.shape, shape);
  if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
    throw new Error(`broadcastTo: shape ${fmt(x.shape)} cannot be broadcast to ${fmt(shape)}`);
  }
  return shapeOp(
    x,
    () => stridedCopy('broadcastTo', x, shape, broadcastStrides(x.shape, shape)),
    (g) => sumTo(g, x.shape),
  );
}

/**
 * @internal The cotangent of a broadcast operand: `g` (of the broadcast shape) summed over the axes
 * broadcasting added or stretched, so it has `shape` again.
 */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let j = 0; j < g.rank; j++) {
    if (j < lead || (shape[j - lead] === 1 && g.shape[j] !== 1)) axes.push(j);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}
