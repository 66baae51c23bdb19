/**
 * Assertions that compare tensors, typed arrays and nested trees of them with tolerances derived
 * from float32 rounding, and that say exactly where they disagree.
 * @module
 */
import { Tensor } from '@sorsajs/core';
import { EPS32, count, unravel } from './host.js';

/**
 * What `assertAllClose` compares: a tensor, a typed array, a number, an array of numbers, or nested
 * arrays and plain objects of those.
 *
 * @example
 * ```ts
 * const value: AllCloseValue = { W: tensor([[1, 2]]), b: new Float32Array([0]), lr: 0.1 };
 * ```
 */
export type AllCloseValue =
  | Tensor
  | Float32Array
  | Float64Array
  | Int32Array
  | number
  | readonly AllCloseValue[]
  | { readonly [key: string]: AllCloseValue };

/**
 * Tolerances of `assertAllClose`: element i passes when
 * `|actual_i - expected_i| <= atol + rtol · |expected_i|`.
 *
 * @example
 * ```ts
 * await assertAllClose(y, ref, { rtol: 1e-5, atol: 1e-6 });
 * ```
 */
export interface AllCloseOptions {
  /** Relative tolerance. Default: `defaultTolerance(n)` for a leaf of n elements. */
  rtol?: number;
  /**
   * Absolute tolerance. Default: the default rtol times the largest |expected| of the leaf, so
   * entries near zero are judged at the scale of their tensor (their rounding error is).
   */
  atol?: number;
}

/**
 * The default relative tolerance for a float32 result of `n` elements compared with an exact or
 * float64 reference: `8 · EPS32 · max(1, √n)`, i.e. a few roundings per element, growing like the
 * typical error of a sum over the tensor. Derived, not tuned: pass `rtol`/`atol` for computations
 * whose error grows faster (long reductions, ill-conditioned problems).
 *
 * @example
 * ```ts
 * defaultTolerance(1);   // 9.5e-7
 * defaultTolerance(100); // 9.5e-6
 * ```
 */
export function defaultTolerance(n: number): number {
  return 8 * EPS32 * Math.max(1, Math.sqrt(n));
}

interface Leaf {
  shape: readonly number[] | null;
  data: ArrayLike<number>;
}

async function leafOf(v: unknown): Promise<Leaf | null> {
  if (v instanceof Tensor) return { shape: v.shape, data: await v.data() };
  // Only tensors carry a shape: numbers, arrays and typed arrays are compared by length.
  if (typeof v === 'number') return { shape: null, data: [v] };
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return { shape: null, data: v as unknown as ArrayLike<number> };
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')) return { shape: null, data: v };
  return null;
}

const fmtPath = (path: string): string => (path === '' ? '(root)' : path);
const fmtShape = (s: readonly number[] | null): string => (s ? `[${s.join(', ')}]` : 'typed array');

function describeKind(v: unknown): string {
  if (v instanceof Tensor) return `Tensor${fmtShape(v.shape)}`;
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (v === null) return 'null';
  return typeof v;
}

async function compareTrees(actual: unknown, expected: unknown, path: string, opts: AllCloseOptions): Promise<void> {
  const [a, e] = await Promise.all([leafOf(actual), leafOf(expected)]);
  if (a && e) return compareLeaves(a, e, path, opts);
  if (a || e) throw new Error(`assertAllClose: at ${fmtPath(path)}: actual is ${describeKind(actual)}, expected ${describeKind(expected)}`);
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) throw new Error(`assertAllClose: at ${fmtPath(path)}: actual has ${actual.length} items, expected ${expected.length}`);
    for (let i = 0; i < actual.length; i++) await compareTrees(actual[i], expected[i], `${path}[${i}]`, opts);
    return;
  }
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObj(actual) && isObj(expected)) {
    const ka = Object.keys(actual).sort();
    const ke = Object.keys(expected).sort();
    if (ka.join('\0') !== ke.join('\0')) {
      throw new Error(`assertAllClose: at ${fmtPath(path)}: actual has keys {${ka.join(', ')}}, expected {${ke.join(', ')}}`);
    }
    for (const k of ka) await compareTrees(actual[k], expected[k], path === '' ? k : `${path}.${k}`, opts);
    return;
  }
  throw new Error(`assertAllClose: at ${fmtPath(path)}: cannot compare ${describeKind(actual)} with ${describeKind(expected)}`);
}

function compareLeaves(a: Leaf, e: Leaf, path: string, opts: AllCloseOptions): void {
  if (a.shape && e.shape && (a.shape.length !== e.shape.length || a.shape.some((d, j) => d !== e.shape![j]))) {
    throw new Error(`assertAllClose: at ${fmtPath(path)}: actual shape ${fmtShape(a.shape)}, expected ${fmtShape(e.shape)}`);
  }
  if (a.data.length !== e.data.length) {
    throw new Error(`assertAllClose: at ${fmtPath(path)}: actual has ${a.data.length} elements, expected ${e.data.length}`);
  }
  const n = e.data.length;
  const shape = a.shape ?? e.shape;
  const rtol = opts.rtol ?? defaultTolerance(n);
  let atol = opts.atol;
  if (atol === undefined) {
    let top = 0;
    for (let i = 0; i < n; i++) if (Number.isFinite(e.data[i])) top = Math.max(top, Math.abs(e.data[i]));
    atol = defaultTolerance(n) * top;
  }
  for (let i = 0; i < n; i++) {
    const x = a.data[i];
    const y = e.data[i];
    // NaN matches NaN and an infinity matches the same infinity (numpy's assert_allclose does too).
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (!Number.isFinite(y) && x === y) continue;
    const diff = Math.abs(x - y);
    const tol = atol + rtol * Math.abs(y);
    if (!(diff <= tol)) {
      const at = shape && shape.length > 1 ? ` [${unravel(i, shape).join(', ')}]` : '';
      throw new Error(
        `assertAllClose: at ${fmtPath(path)} index ${i}${at}: actual ${x}, expected ${y}, ` +
          `|diff| ${diff.toExponential(3)} > tol ${tol.toExponential(3)} (atol ${atol.toExponential(3)} + rtol ${rtol.toExponential(3)} · |expected|; ${n} elements)`,
      );
    }
  }
}

/**
 * Asserts that `actual` and `expected` have the same structure and shapes and that every element
 * satisfies `|actual_i - expected_i| <= atol + rtol · |expected_i|` (defaults: see
 * {@link AllCloseOptions} and {@link defaultTolerance}). Trees are nested arrays and plain objects;
 * leaves are tensors, typed arrays, numbers or arrays of numbers. Two tensors must have the same
 * shape; any other pair of leaves is compared by length and row-major order (so a tensor can be
 * compared with a flat float64 reference). Resolves when they agree; rejects with an Error naming the tree
 * path, the flat index (and multi-index), both values and the tolerance when they do not.
 *
 * @example
 * ```ts
 * const y = matmul(a, b);
 * await assertAllClose(y, Float64Array.from(refMatmul(aData, bData)));
 * await assertAllClose({ W: grads.W, b: grads.b }, { W: refW, b: refB }, { rtol: 1e-4 });
 * // Error: assertAllClose: at W index 5 [1, 2]: actual 0.51, expected 0.5, |diff| 1.000e-2 > tol ...
 * ```
 */
export async function assertAllClose(actual: AllCloseValue, expected: AllCloseValue, opts: AllCloseOptions = {}): Promise<void> {
  await compareTrees(actual, expected, '', opts);
}

/**
 * Options of `assertOrthonormal`.
 *
 * @example
 * ```ts
 * await assertOrthonormal(U, { tol: 1e-5 });
 * ```
 */
export interface OrthonormalOptions {
  /**
   * Largest allowed |(QᵀQ - I)_ij| (or QQᵀ for a wide Q). Default `8 · EPS32 · max(m, n)`: each
   * entry is an inner product of float32 vectors of up to max(m, n) terms.
   */
  tol?: number;
}

/**
 * Asserts that a matrix has orthonormal columns (when it has at least as many rows as columns, as
 * SORSA's U does) or orthonormal rows (when wide, as Vt does): every entry of QᵀQ - I (or QQᵀ - I),
 * computed in float64 on the host, is within `tol`. Rejects with an Error naming the entry, its value
 * and the tolerance.
 *
 * @example
 * ```ts
 * const { Q } = qr(A);
 * await assertOrthonormal(Q);
 * ```
 */
export async function assertOrthonormal(Q: Tensor | { shape: readonly number[]; data: ArrayLike<number> }, opts: OrthonormalOptions = {}): Promise<void> {
  const shape = Q.shape;
  if (shape.length !== 2) throw new Error(`assertOrthonormal: expects a matrix, got shape [${shape.join(', ')}]`);
  const [m, n] = shape;
  const data = Q instanceof Tensor ? await Q.data() : Q.data;
  if (data.length !== count(shape)) throw new Error(`assertOrthonormal: ${data.length} values for shape [${m}, ${n}]`);
  const tall = m >= n;
  const k = tall ? n : m; // the vectors compared
  const len = tall ? m : n; // their length
  const at = (v: number, i: number): number => (tall ? data[i * n + v] : data[v * n + i]);
  const tol = opts.tol ?? 8 * EPS32 * Math.max(m, n);
  for (let p = 0; p < k; p++)
    for (let q = p; q < k; q++) {
      let s = 0;
      for (let i = 0; i < len; i++) s += at(p, i) * at(q, i);
      const want = p === q ? 1 : 0;
      const err = Math.abs(s - want);
      if (!(err <= tol)) {
        const what = tall ? `columns ${p} and ${q}: (QᵀQ)[${p}, ${q}]` : `rows ${p} and ${q}: (QQᵀ)[${p}, ${q}]`;
        throw new Error(`assertOrthonormal: ${m} x ${n} matrix, ${what} = ${s}, expected ${want}, |diff| ${err.toExponential(3)} > tol ${tol.toExponential(3)}`);
      }
    }
}
