/**
 * Indexing by int32 tensors: take (a gather) and oneHot. Take's VJP is a segment sum (a
 * scatter-add computed gather-style: sorted indices, each row summing its run), whose own VJP is a
 * gather again, so gradients of every order stay exact and never build a one-hot matrix.
 * @module
 */
import { ONE_HOT, SEGMENT_INVERT, SEGMENT_KEYS, SEGMENT_RANK, SEGMENT_STARTS, SEGMENT_SUM, SEGMENT_SUM_ADD, SEGMENT_SUM_ADD_GRID, SEGMENT_SUM_GRID, TAKE } from '../kernels/layout.js';
import { engine } from '../backend/registry.js';
import type { Tensor } from '../tensor/tensor.js';
import { normalizeAxis, sizeOf } from '../util/shape-math.js';
import { constant, launch } from './operand.js';
import { checkInteger, checkTensor } from '../tensor/checks.js';
import { full } from './create.js';
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
 * The gradient with respect to `x` is a segment sum computed by kernels, with no one-hot matrix:
 * sorting the K indices costs O(K · min(K, 4096)), then one pass over `x`'s shape per 4096 indices,
 * each row summing its indices' slices in their order.
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
  const inner = sizeOf(x.shape.slice(a + 1));
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return gather(x, indices, shape, D, K, inner, x.dtype === 'float32' ? NaN : -(2 ** 31));
}

/**
 * The gather of take over `[outer, D, inner]` (an index outside `[-D, D)` gives `fillValue`). Its
 * VJP is the segment sum, and the segment sum's VJP is this gather with 0 for the bad indices (they
 * get no gradient, and carry none back).
 */
function gather(x: Tensor, indices: Tensor, shape: readonly number[], D: number, K: number, inner: number, fillValue: number): Tensor {
  const xShape = x.shape;
  const forward = (): Tensor => {
    // The fill comes in as an array: gpu.js has no NaN literal and WGSL rejects 0 / 0.
    const fill = constant(fillValue, x.dtype);
    try {
      return launch('take', TAKE, shape, x.dtype, [x, indices, fill], [D, K, inner]);
    } finally {
      fill.dispose();
    }
  };
  if (x.dtype !== 'float32') return untracked(forward);
  return op([x], forward, (g) => [segmentSum(g, indices, xShape, D, K, inner)], () => [indices]);
}

/** Tokens per block of the segment sum: its sort is O(n²) per block, so blocks keep it at O(K · 4096). */
const SEGMENT_BLOCK = 4096;

/**
 * Cotangent of take: `grad[o, v, n] = Σ g[o, k, n]` over the k whose index is row v (after take's
 * wrapping of negative indices; out-of-range indices add nothing), summed in ascending k, in
 * float32 on every backend but cpu. Computed gather-style (kernels cannot scatter), by blocks of
 * {@link SEGMENT_BLOCK} tokens: the block's rows sorted stably (a rank kernel and its inverse,
 * O(n²) each), each row's run found by binary search, then one pass over the table in which each
 * cell sums its run after the earlier blocks' sum. Work: O(K · 4096) for the sorts plus one pass
 * over `[outer, D, inner]` per block, where the one-hot matmul it replaces built a `[K, D]` matrix
 * and did `2 K D inner outer` flops (GPT-2's 50257-row table at 1024 tokens: a 206 MB one-hot and
 * ~79 GFLOP). Recorded as an op whose VJP is the gather (linear in g), so a gradient of a gradient
 * is exact too.
 */
function segmentSum(g: Tensor, indices: Tensor, xShape: readonly number[], D: number, K: number, inner: number): Tensor {
  const gShape = g.shape;
  const forward = (): Tensor => {
    if (K === 0 || sizeOf(xShape) === 0) return full(xShape, 0);
    // On wasm a grid of [inner, D, outer]: each cell gets its coordinates without dividing its index.
    const grid = engine().name === 'wasm';
    const dims = grid ? [inner, D, sizeOf(xShape) / (D * inner)] : undefined;
    const keys = launch('take', SEGMENT_KEYS, [K], 'int32', [indices], [D]);
    let acc: Tensor | null = null;
    try {
      for (let base = 0; base < K; base += SEGMENT_BLOCK) {
        const n = Math.min(SEGMENT_BLOCK, K - base);
        let top = 1;
        let steps = 1;
        while (top * 2 <= n) {
          top *= 2;
          steps++;
        }
        const temps: Tensor[] = [];
        try {
          const rank = launch('take', SEGMENT_RANK, [n], 'int32', [keys], [base, n]);
          temps.push(rank);
          const perm = launch('take', SEGMENT_INVERT, [n], 'int32', [rank], [n]);
          temps.push(perm);
          const starts = launch('take', SEGMENT_STARTS, [D + 1], 'int32', [keys, perm], [base, n, steps, top]);
          temps.push(starts);
          const src = acc ? (grid ? SEGMENT_SUM_ADD_GRID : SEGMENT_SUM_ADD) : grid ? SEGMENT_SUM_GRID : SEGMENT_SUM;
          const next = launch('take', src, xShape, 'float32', acc ? [g, perm, starts, acc] : [g, perm, starts], [D, K, inner, base], dims);
          if (acc) temps.push(acc);
          acc = next;
        } finally {
          for (const t of temps) t.dispose();
        }
      }
    } catch (e) {
      acc?.dispose();
      throw e;
    } finally {
      keys.dispose();
    }
    return acc!;
  };
  return op([g], forward, (gg) => [gather(gg, indices, gShape, D, K, inner, 0)], () => [indices]);
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
  checkInteger('oneHot', 'depth', depth, { min: 1 });
  return launch('oneHot', ONE_HOT, [...indices.shape, depth], 'float32', [indices], [depth]);
}

