/**
 * Shape ops: views (reshape, expandDims, squeeze share storage) and copies through kernels.
 * @module
 */
import { CONCAT2, CONCAT2_ROWS, padKernel } from '../kernels/layout.js';
import { engine } from '../backend/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { checkShape, fmt, normalizeAxis, sizeOf, stridesOf } from '../util/shape-math.js';
import { constant, launch, shapeOp, stridedCopy } from './operand.js';
import { checkTensor } from '../tensor/checks.js';
import { disposeIntermediate, op, untracked } from '../autodiff/tape.js';

/**
 * Same values, new shape (one dimension may be -1 and is inferred). Shares the input's storage.
 *
 * @example
 * ```ts
 * reshape(arange(6), [2, -1]).shape; // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', x);
  const out = [...shape];
  const free = out.filter((d) => d === -1).length;
  if (free > 1) throw new Error(`reshape: at most one -1 in shape ${fmt(shape)}`);
  if (free === 1) {
    const known = sizeOf(out.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)}`);
    out[out.indexOf(-1)] = x.size / known;
  }
  checkShape(out, 'reshape');
  if (sizeOf(out) !== x.size) throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)} (${sizeOf(out)} elements)`);
  return shapeOp(
    x,
    () => new Tensor(x.use('reshape').retain(), out, x.dtype),
    (g) => reshape(g, x.shape),
  );
}

/**
 * Permutes the axes (negative entries count from the end); the default reverses them.
 *
 * @example
 * ```ts
 * transpose(zeros([2, 3, 4]), [1, 0, 2]).shape; // [3, 2, 4]
 * transpose(zeros([2, 3])).shape;               // [3, 2]
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  checkTensor('transpose', x);
  const r = x.rank;
  const p = perm ? [...perm] : Array.from({ length: r }, (_, i) => r - 1 - i);
  const sorted = p.map((a) => (a < 0 ? a + r : a)).sort((a, b) => a - b);
  if (p.length !== r || sorted.some((a, i) => a !== i)) {
    throw new Error(`transpose: ${JSON.stringify(perm)} is not a permutation of the ${r} axes of a tensor of shape ${fmt(x.shape)}`);
  }
  const q = p.map((a) => (a < 0 ? a + r : a));
  const own = stridesOf(x.shape);
  const inverse = q.map((_, i) => q.indexOf(i));
  return shapeOp(
    x,
    () => stridedCopy('transpose', x, q.map((a) => x.shape[a]), q.map((a) => own[a])),
    (g) => transpose(g, inverse),
  );
}

/**
 * Inserts an axis of size 1 at `axis` (negative counts from the end of the result).
 *
 * @example
 * ```ts
 * expandDims(zeros([3]), 0).shape;  // [1, 3]
 * expandDims(zeros([3]), -1).shape; // [3, 1]
 * ```
 */
export function expandDims(x: Tensor, axis: number): Tensor {
  checkTensor('expandDims', x);
  const a = normalizeAxis('expandDims', axis, x.rank + 1, `inserting an axis into shape ${fmt(x.shape)} (rank ${x.rank})`);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/**
 * Removes axes of size 1: the given ones (an error if one is not of size 1), or all.
 *
 * @example
 * ```ts
 * squeeze(zeros([1, 3, 1])).shape;    // [3]
 * squeeze(zeros([1, 3, 1]), 0).shape; // [3, 1]
 * ```
 */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  checkTensor('squeeze', x);
  const given = axis === undefined ? undefined : typeof axis === 'number' ? [axis] : [...axis];
  const axes = given ? given.map((a) => normalizeAxis('squeeze', a, x.rank)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  axes.forEach((a, k) => {
    if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${given?.[k] ?? a} of shape ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  });
  return reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
}

/**
 * A contiguous block: `size[j]` elements from `begin[j]` on each axis (-1 = to the end; a negative
 * begin counts from the end). Missing trailing axes are taken whole.
 *
 * @example
 * ```ts
 * slice(arange(10), [2], [3]);            // [2, 3, 4]
 * slice(zeros([4, 5]), [1, 0], [2, -1]).shape; // [2, 5]
 * ```
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  checkTensor('slice', x);
  if (begin.length > x.rank || (size && size.length > x.rank)) {
    throw new Error(`slice: begin ${JSON.stringify(begin)} / size ${JSON.stringify(size)} have more entries than the rank ${x.rank} of ${fmt(x.shape)}`);
  }
  const start: number[] = [];
  const out: number[] = [];
  for (let j = 0; j < x.rank; j++) {
    const n = x.shape[j];
    let b = begin[j] ?? 0;
    if (b < 0) b += n;
    const s = size?.[j] ?? -1;
    const len = s === -1 ? n - b : s;
    if (!Number.isInteger(b) || !Number.isInteger(len) || b < 0 || len < 0 || b + len > n) {
      throw new Error(`slice: begin ${begin[j] ?? 0} with size ${s} is out of range on axis ${j} of shape ${fmt(x.shape)}`);
    }
    start.push(b);
    out.push(len);
  }
  const own = stridesOf(x.shape);
  const offset = start.reduce((acc, b, j) => acc + b * own[j], 0);
  return shapeOp(
    x,
    () => stridedCopy('slice', x, out, own, offset),
    (g) => pad(g, start.map((b, j) => [b, x.shape[j] - b - out[j]] as [number, number])),
  );
}

/**
 * Joins tensors along an existing axis; all other dimensions and the dtype must agree.
 *
 * @example
 * ```ts
 * concat([zeros([2, 3]), ones([1, 3])], 0).shape; // [3, 3]
 * ```
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error('concat: expects a non-empty array of tensors');
  xs.forEach((t, k) => checkTensor('concat', t, `#${k}`));
  const first = xs[0];
  const a = normalizeAxis('concat', axis, first.rank);
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new Error(`concat: dtype mismatch: ${first.dtype} and ${t.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d: number, j: number) => j !== a && d !== first.shape[j])) {
      throw new Error(`concat: shapes ${xs.map((u) => fmt(u.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const forward = (): Tensor => concatForward(xs, a);
  if (first.dtype !== 'float32') return untracked(forward);
  return op(xs, forward, (g) => {
    let at = 0;
    return xs.map((t) => {
      const begin = t.shape.map(() => 0);
      begin[a] = at;
      at += t.shape[a];
      return slice(g, begin, t.shape);
    });
  });
}

function concatForward(xs: readonly Tensor[], a: number): Tensor {
  const first = xs[0];
  if (xs.length === 1) return stridedCopy('concat', first, first.shape, stridesOf(first.shape));
  const inner = sizeOf(first.shape.slice(a + 1));
  // Folds pairwise; each step is one kernel writing the joined prefix.
  let acc = xs[0];
  for (let k = 1; k < xs.length; k++) {
    const b = xs[k];
    const na = acc.shape[a];
    const nb = b.shape[a];
    const shape = [...first.shape];
    shape[a] = na + nb;
    const outer = sizeOf(first.shape.slice(0, a));
    const next =
      engine().name === 'wasm'
        ? launch('concat', CONCAT2_ROWS, shape, first.dtype, [acc, b], [na * inner, nb * inner], [(na + nb) * inner, outer])
        : launch('concat', CONCAT2, shape, first.dtype, [acc, b], [na, nb, inner]);
    if (acc !== xs[0]) acc.dispose();
    acc = next;
  }
  return acc;
}

/**
 * Joins tensors of one shape along a new axis.
 *
 * @example
 * ```ts
 * stack([zeros([3]), ones([3])], 0).shape; // [2, 3]
 * ```
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error('stack: expects a non-empty array of tensors');
  xs.forEach((t, k) => checkTensor('stack', t, `#${k}`));
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.shape.some((d: number, j: number) => d !== xs[0].shape[j])) {
      throw new Error(`stack: shapes ${xs.map((u) => fmt(u.shape)).join(', ')} differ`);
    }
  }
  const a = normalizeAxis('stack', axis, xs[0].rank + 1, `stacking tensors of shape ${fmt(xs[0].shape)} (rank ${xs[0].rank})`);
  const expanded = xs.map((t) => expandDims(t, a));
  try {
    return concat(expanded, a);
  } finally {
    for (const t of expanded) disposeIntermediate(t);
  }
}

/**
 * Pads with a constant: `paddings[j] = [before, after]` for each axis.
 *
 * @example
 * ```ts
 * pad(tensor([1, 2]), [[1, 2]]); // [0, 1, 2, 0, 0]
 * ```
 */
export function pad(x: Tensor, paddings: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensor('pad', x);
  if (!Array.isArray(paddings) || paddings.length !== x.rank) {
    throw new Error(`pad: paddings must give [before, after] for each of the ${x.rank} axes of ${fmt(x.shape)}, got ${JSON.stringify(paddings)}`);
  }
  for (const p of paddings) {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
      throw new Error(`pad: each padding must be [before, after] with non-negative integers, got ${JSON.stringify(p)}`);
    }
  }
  const shape = x.shape.map((d, j) => d + paddings[j][0] + paddings[j][1]);
  // A scalar has no axes to pad: a copy, whose gradient is the identity.
  if (x.rank === 0) return shapeOp(x, () => stridedCopy('pad', x, [], []), (g) => g);
  const os = stridesOf(shape);
  const is = stridesOf(x.shape);
  const r = x.rank;
  // On wasm a grid of [last axis, second-last axis, the rest] (see padKernel).
  const grid = engine().name === 'wasm' && r >= 2;
  const scalars = grid
    ? [...x.shape.flatMap((d, j) => [paddings[j][0], d, is[j]]), ...stridesOf(shape.slice(0, r - 2)).slice(0, Math.max(0, r - 3))]
    : x.shape.flatMap((d, j) => [os[j], paddings[j][0], d, is[j]]);
  const dims = grid ? [shape[r - 1], shape[r - 2], sizeOf(shape.slice(0, r - 2))] : undefined;
  return shapeOp(
    x,
    () => {
      const fill = constant(value, x.dtype);
      const out = launch('pad', padKernel(r, grid), shape, x.dtype, [x, fill], scalars, dims);
      fill.dispose();
      return out;
    },
    (g) => slice(g, paddings.map((p) => p[0]), x.shape),
  );
}
