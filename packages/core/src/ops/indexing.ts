/**
 * Indexing by int32 tensors: take (a gather) and oneHot. Take's VJP is a matmul with a one-hot
 * matrix, so this module builds on linalg.ts rather than sitting with the shape ops.
 * @module
 */
import { ONE_HOT, TAKE } from '../kernels/layout.js';
import type { Tensor } from '../tensor/tensor.js';
import { normalizeAxis, sizeOf } from '../util/shape-math.js';
import { mapOp } from './elementwise.js';
import { matmul } from './linalg.js';
import { checkTensor, constant, launch } from './operand.js';
import { reshape } from './shape.js';
import { op, untracked } from '../autodiff/tape.js';

/**
 * Gathers slices along `axis` at int32 `indices`. The result's shape is
 * `x.shape[:axis] + indices.shape + x.shape[axis+1:]`.
 *
 * Indices follow one rule on every backend, applied inside the kernel (so it holds for indices
 * computed on the device and still queued as for host ones): an index in `[-n, 0)` counts from the
 * end (n = `x.shape[axis]`); any other index outside `[0, n)` gives NaN in a float32 result (JAX's
 * default for gathers, "fill") and -2^31 in an int32 one. A bad index never reads another row's
 * values. In the gradient, such a slice contributes nothing.
 *
 * @example
 * ```ts
 * const x = tensor([[1, 2], [3, 4], [5, 6]]);
 * take(x, tensor([2, -3], undefined, 'int32'), 0); // [[5, 6], [1, 2]]
 * take(x, tensor([3], undefined, 'int32'), 0);     // [[NaN, NaN]]
 * ```
 */
export function take(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkTensor('take', x);
  checkTensor('take', indices, 'indices');
  if (indices.dtype !== 'int32') throw new Error(`take: indices must be int32, got ${indices.dtype}`);
  const a = normalizeAxis('take', axis, x.rank);
  const D = x.shape[a];
  const K = indices.size;
  const outer = sizeOf(x.shape.slice(0, a));
  const inner = sizeOf(x.shape.slice(a + 1));
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  const forward = (): Tensor => {
    // The fill comes in as an array: gpu.js has no NaN literal and WGSL rejects 0 / 0.
    const fill = constant(x.dtype === 'float32' ? NaN : -(2 ** 31), x.dtype);
    try {
      return launch('take', TAKE, shape, x.dtype, [x, indices, fill], [D, K, inner]);
    } finally {
      fill.dispose();
    }
  };
  return x.dtype === 'float32' ? op([x], forward, (g) => [takeVjp(g, indices, x.shape, outer, D, K, inner)], () => [indices]) : untracked(forward);
}

/**
 * Cotangent of take: a scatter-add of g's slices into x's shape, computed gather-style as one
 * matmul, onehot(indices)ᵀ @ g, batched over the outer axes (kernels cannot scatter).
 */
function takeVjp(g: Tensor, idx: Tensor, xShape: readonly number[], outer: number, D: number, K: number, inner: number): Tensor {
  // Negative indices wrap as in the forward kernel; out-of-range ones give oneHot's zero rows.
  const flat = mapOp('take', 'v0 < 0 ? v0 + v1 : v0', [reshape(idx, [K]), D], { int: true });
  const oh = oneHot(flat, D);
  const g3 = reshape(g, [outer, K, inner]);
  return reshape(matmul(oh, g3, { transposeA: true }), xShape);
}

/**
 * One-hot encoding of int32 indices: shape `[...indices.shape, depth]`, float32. An index outside
 * `[0, depth)`, negative ones included, gives an all-zero row (as `jax.nn.one_hot`), on every
 * backend and whether or not the indices were computed on the device.
 *
 * @example
 * ```ts
 * oneHot(tensor([0, 2], undefined, 'int32'), 3);  // [[1, 0, 0], [0, 0, 1]]
 * oneHot(tensor([-1, 3], undefined, 'int32'), 3); // [[0, 0, 0], [0, 0, 0]]
 * ```
 */
export function oneHot(indices: Tensor, depth: number): Tensor {
  checkTensor('oneHot', indices, 'indices');
  if (indices.dtype !== 'int32') throw new Error(`oneHot: indices must be int32, got ${indices.dtype}`);
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`oneHot: depth must be a positive integer, got ${depth}`);
  return launch('oneHot', ONE_HOT, [...indices.shape, depth], 'float32', [indices], [depth]);
}

