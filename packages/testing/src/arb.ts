/**
 * fast-check arbitraries for tensors, matrices with known spectra, orthonormal bases, SORSA adapters,
 * parameter trees and PRNG keys. Every one draws plain numbers (sizes, seeds, values) and builds its
 * tensors from them, so fast-check shrinks toward small shapes, seed 0 and simple values. Tensors are
 * made on the backend `init` selected, when fast-check produces a value: dispose them in the property
 * (or run it under `tidy`).
 * @module
 */
import fc from 'fast-check';
import { random, tensor, type DType, type Tensor } from '@sorsajs/core';
import { count, orthonormalColumns, rng, withSpectrum } from './host.js';

/**
 * A size option of the arbitraries: a fixed number, or an arbitrary of one.
 *
 * @example
 * ```ts
 * arb.matrix({ rows: 4, cols: fc.integer({ min: 1, max: 16 }) });
 * ```
 */
export type Size = number | fc.Arbitrary<number>;
const sizeArb = (s: Size | undefined, max: number): fc.Arbitrary<number> =>
  s === undefined ? fc.integer({ min: 1, max }) : typeof s === 'number' ? fc.constant(s) : s;

/**
 * Options of `arb.tensor`.
 *
 * @example
 * ```ts
 * arb.tensor({ shape: [2, 3], min: -1, max: 1 });
 * ```
 */
export interface TensorArbOptions {
  /** A fixed shape, or an arbitrary of shapes. Default: rank 0 to 3, each dimension 1 to 4. */
  shape?: readonly number[] | fc.Arbitrary<number[]>;
  /** 'float32' (default) or 'int32' (integers in [min, max]). */
  dtype?: DType;
  /** Smallest value (default -10). */
  min?: number;
  /** Largest value (default 10). */
  max?: number;
}

/**
 * Shapes of rank 0 to `maxRank`, each dimension 1 to `maxDim`; they shrink toward `[]` and 1s.
 *
 * @example
 * ```ts
 * arb.tensor({ shape: shapeArb(2, 5) });
 * ```
 */
export function shapeArb(maxRank = 3, maxDim = 4): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 0, maxLength: maxRank });
}

function tensorArb(opts: TensorArbOptions = {}): fc.Arbitrary<Tensor> {
  const dtype = opts.dtype ?? 'float32';
  const min = opts.min ?? -10;
  const max = opts.max ?? 10;
  if (!(min <= max)) throw new Error(`arb.tensor: min ${min} > max ${max}`);
  const shapes = opts.shape === undefined ? shapeArb() : Array.isArray(opts.shape) ? fc.constant([...opts.shape]) : (opts.shape as fc.Arbitrary<number[]>);
  const value =
    dtype === 'int32'
      ? fc.integer({ min: Math.ceil(min), max: Math.floor(max) })
      : fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true, noDefaultInfinity: true });
  return shapes.chain((shape) => {
    const n = count(shape);
    return fc.array(value, { minLength: n, maxLength: n }).map((vals) => tensor(dtype === 'int32' ? Int32Array.from(vals) : Float32Array.from(vals), shape, dtype));
  });
}

/**
 * The spectrum families of `arb.matrix` (k = min(rows, cols), κ = `cond`):
 * - `random`: k values drawn in [1/κ, 1], sorted descending;
 * - `graded`: evenly spaced from 1 down to 1/κ;
 * - `geometric`: κ^(-i/(k-1)), from 1 down to 1/κ;
 * - `clustered`: 1 + 1e-3 · (k-1-i), distinct but within 1e-3 of each other;
 * - `repeated`: 2 for the first half, 1 for the rest;
 * - `rankDeficient`: a drawn rank r < k (r = 0 when k = 1) of values 3 - 0.1 i, then zeros;
 * - `zero`: all zero.
 *
 * @example
 * ```ts
 * const spectrum: Spectrum = 'geometric';
 * ```
 */
export type Spectrum = 'random' | 'graded' | 'geometric' | 'clustered' | 'repeated' | 'rankDeficient' | 'zero';

/**
 * Options of `arb.matrix`.
 *
 * @example
 * ```ts
 * arb.matrix({ rows: 8, cols: fc.integer({ min: 1, max: 8 }), spectrum: 'geometric', cond: 1e4 });
 * ```
 */
export interface MatrixArbOptions {
  /** Rows: a number or an arbitrary (default 1 to 8). */
  rows?: Size;
  /** Columns: a number or an arbitrary (default 1 to 8). */
  cols?: Size;
  /** The spectrum family (default `'random'`). */
  spectrum?: Spectrum;
  /** Condition number κ for `random`, `graded` and `geometric` (default 100). */
  cond?: number;
}

/**
 * A matrix drawn by `arb.matrix`, with the singular values it was built from.
 *
 * @example
 * ```ts
 * const { matrix, singularValues, data } = sample; // matrix: Tensor [m, n]
 * ```
 */
export interface MatrixSample {
  /** The float32 matrix, `[rows, cols]`. */
  matrix: Tensor;
  /** Its float32 values, row-major (the same as `await matrix.data()`). */
  data: Float32Array;
  /**
   * The singular values it was built from, descending, min(rows, cols) of them (zeros included).
   * Exact for the float64 matrix; rounding to float32 moves each by at most EPS32 · ‖A‖_F.
   */
  singularValues: Float64Array;
}

function spectrumValues(spectrum: Spectrum, k: number, cond: number, r: () => number): number[] {
  const t = (i: number): number => (k === 1 ? 0 : i / (k - 1));
  switch (spectrum) {
    case 'random':
      return Array.from({ length: k }, () => 1 / cond + (1 - 1 / cond) * r()).sort((a, b) => b - a);
    case 'graded':
      return Array.from({ length: k }, (_, i) => 1 - (1 - 1 / cond) * t(i));
    case 'geometric':
      return Array.from({ length: k }, (_, i) => cond ** -t(i));
    case 'clustered':
      return Array.from({ length: k }, (_, i) => 1 + 1e-3 * (k - 1 - i));
    case 'repeated':
      return Array.from({ length: k }, (_, i) => (i < Math.ceil(k / 2) ? 2 : 1));
    case 'rankDeficient': {
      const rank = Math.floor(r() * k); // 0 .. k-1
      return Array.from({ length: k }, (_, i) => (i < rank ? 3 - 0.1 * i : 0));
    }
    case 'zero':
      return new Array<number>(k).fill(0);
    default:
      throw new Error(`arb.matrix: unknown spectrum '${String(spectrum)}' (expected random, graded, geometric, clustered, repeated, rankDeficient or zero)`);
  }
}

function matrixArb(opts: MatrixArbOptions = {}): fc.Arbitrary<MatrixSample> {
  const spectrum = opts.spectrum ?? 'random';
  const cond = opts.cond ?? 100;
  if (!(cond >= 1)) throw new Error(`arb.matrix: cond must be >= 1, got ${cond}`);
  spectrumValues(spectrum, 1, cond, () => 0); // refuse an unknown family when the arbitrary is made
  return fc
    .tuple(sizeArb(opts.rows, 8), sizeArb(opts.cols, 8), fc.nat({ max: 0x7fffffff }))
    .map(([m, n, seed]) => {
      const s = spectrumValues(spectrum, Math.min(m, n), cond, rng(seed + 0x5eed));
      const data = Float32Array.from(withSpectrum(m, n, s, seed));
      return { matrix: tensor(data, [m, n]), data, singularValues: Float64Array.from(s) };
    });
}

/** Row-major float32 values of an orthonormal rows x cols matrix: orthonormal columns when tall, rows when wide. */
function orthonormalData(rows: number, cols: number, seed: number): Float32Array {
  const tall = rows >= cols;
  const vecs = orthonormalColumns(tall ? rows : cols, tall ? cols : rows, seed);
  return Float32Array.from({ length: rows * cols }, (_, p) => {
    const i = Math.floor(p / cols);
    const j = p % cols;
    return tall ? vecs[j][i] : vecs[i][j];
  });
}

function orthonormalArb(rows: number, cols: number): fc.Arbitrary<Tensor> {
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 1 && cols >= 1)) {
    throw new Error(`arb.orthonormal: rows and cols must be positive integers, got ${rows} x ${cols}`);
  }
  return fc.nat({ max: 0x7fffffff }).map((seed) => tensor(orthonormalData(rows, cols, seed), [rows, cols]));
}

/**
 * Options of `arb.adapter`: the adapted weight's `[out, in]` and the adapter's rank, each a number
 * or an arbitrary (defaults: out and in 1 to 8, rank 1 to min(out, in)).
 *
 * @example
 * ```ts
 * arb.adapter({ out: 6, in: 4, rank: 2 });
 * ```
 */
export interface AdapterArbOptions {
  /** Rows of the weight. */
  out?: Size;
  /** Columns of the weight. */
  in?: Size;
  /** Adapter rank; clipped to min(out, in). */
  rank?: Size;
}

/**
 * The tensors of a SORSA adapter, structurally `@sorsajs/sorsa`'s `SorsaAdapter`.
 *
 * @example
 * ```ts
 * const { U, S, Vt }: AdapterTensors = sample.adapter;
 * ```
 */
export interface AdapterTensors {
  /** Left singular vectors, `[out, r]`, orthonormal columns. */
  U: Tensor;
  /** Singular values, `[r]`, positive and descending. */
  S: Tensor;
  /** Right singular vectors as rows, `[r, in]`, orthonormal rows. */
  Vt: Tensor;
}

/**
 * A SORSA adapter and the residual it is trained against, as `arb.adapter` draws them: U and Vt
 * orthonormal, S positive and descending. The adapted weight is `residual + U diag(S) Vt`.
 *
 * @example
 * ```ts
 * const { adapter, residual } = sample; // adapter: { U [out, r], S [r], Vt [r, in] }
 * ```
 */
export interface AdapterSample {
  /** `{ U [out, r], S [r], Vt [r, in] }` (the shape of `@sorsajs/sorsa`'s SorsaAdapter). */
  adapter: AdapterTensors;
  /** The frozen residual `[out, in]`, Gaussian values scaled by 0.1. */
  residual: Tensor;
}

function adapterArb(opts: AdapterArbOptions = {}): fc.Arbitrary<AdapterSample> {
  return fc
    .tuple(sizeArb(opts.out, 8), sizeArb(opts.in, 8), sizeArb(opts.rank, 8), fc.nat({ max: 0x7fffffff }))
    .map(([out, inn, rank0, seed]) => {
      const r = Math.max(1, Math.min(rank0, out, inn));
      const g = rng(seed + 3);
      const S = Float32Array.from({ length: r }, () => 0.5 + g()).sort().reverse();
      const residual = Float32Array.from({ length: out * inn }, () => 0.1 * (2 * g() - 1));
      return {
        adapter: {
          U: tensor(orthonormalData(out, r, seed), [out, r]),
          S: tensor(S, [r]),
          Vt: tensor(orthonormalData(r, inn, seed + 1), [r, inn]),
        },
        residual: tensor(residual, [out, inn]),
      };
    });
}

/**
 * A parameter tree drawn by `arb.paramTree`: nested plain objects and arrays whose leaves are tensors.
 *
 * @example
 * ```ts
 * const t: ParamTree = { layers: [{ W: w0 }, { W: w1 }], bias: b };
 * ```
 */
export type ParamTree = Tensor | ParamTree[] | { [key: string]: ParamTree };

/**
 * Options of `arb.paramTree`.
 *
 * @example
 * ```ts
 * arb.paramTree({ depth: 2, leaf: arb.tensor({ shape: [3] }) });
 * ```
 */
export interface ParamTreeArbOptions {
  /** Deepest nesting of objects and arrays (default 2). */
  depth?: number;
  /** The leaves (default `arb.tensor()` with values in [-1, 1]). */
  leaf?: fc.Arbitrary<Tensor>;
}

function paramTreeArb(opts: ParamTreeArbOptions = {}): fc.Arbitrary<ParamTree> {
  const leaf = opts.leaf ?? tensorArb({ min: -1, max: 1 });
  const depth = opts.depth ?? 2;
  const key = fc.constantFrom('W', 'b', 'U', 'S', 'Vt', 'scale1', 'layers', 'attn', 'mlp');
  const { tree } = fc.letrec<{ tree: ParamTree; node: ParamTree }>((tie) => ({
    // Leaves come first so the tree shrinks toward a single tensor.
    tree: fc.oneof({ depthSize: 'small', maxDepth: depth, withCrossShrink: true }, leaf, tie('node')),
    node: fc.oneof(
      fc.array(tie('tree'), { minLength: 1, maxLength: 3 }),
      fc.dictionary(key, tie('tree'), { minKeys: 1, maxKeys: 3 }),
    ),
  }));
  return tree;
}

/**
 * The arbitraries, as `arb.tensor(...)`, `arb.matrix(...)` and so on. Each draws plain numbers and
 * builds tensors from them on the backend `init` selected, so call `init` first and dispose what a
 * property receives. Known limit: while fast-check shrinks a failing case it may pass the same drawn
 * tensors to the property again, so a property that disposed them then fails with "was disposed";
 * the first failure fast-check reports (run with `verbose: 2`) is the real one.
 *
 * @example
 * ```ts
 * import fc from 'fast-check';
 * import { arb, assertOrthonormal } from '@sorsajs/testing';
 * await fc.assert(fc.asyncProperty(arb.orthonormal(8, 3), async (Q) => {
 *   await assertOrthonormal(Q);
 *   Q.dispose();
 * }));
 * ```
 */
export const arb = {
  /**
   * Tensors of a given or drawn shape with values in [min, max]; shrinks toward small shapes and 0.
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.tensor({ shape: [4], min: 0, max: 1 }), async (t) => { ... });
   * ```
   */
  tensor: tensorArb,
  /**
   * Matrices `U diag(s) Vᵀ` (random orthonormal U, V) with a spectrum family, returned with their
   * singular values; shrinks toward 1 x 1 and seed 0.
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.matrix({ spectrum: 'rankDeficient' }), async ({ matrix, singularValues }) => { ... });
   * ```
   */
  matrix: matrixArb,
  /**
   * `rows x cols` matrices with orthonormal columns (tall or square) or orthonormal rows (wide).
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.orthonormal(6, 2), async (U) => { ... });
   * ```
   */
  orthonormal: orthonormalArb,
  /**
   * A SORSA adapter `{ U, S, Vt }` (orthonormal U and Vt, positive descending S) and a residual.
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.adapter({ out: 6, in: 4, rank: 2 }), async ({ adapter, residual }) => { ... });
   * ```
   */
  adapter: adapterArb,
  /**
   * Nested objects and arrays of tensors; shrinks toward a single small tensor.
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.paramTree(), async (params) => { ... });
   * ```
   */
  paramTree: paramTreeArb,
  /**
   * PRNG keys (`random.key(seed)`); shrinks toward seed 0.
   *
   * @example
   * ```ts
   * fc.asyncProperty(arb.key(), async (k) => { const x = random.normal(k, [3]); ... });
   * ```
   */
  key: (): fc.Arbitrary<random.Key> => fc.nat({ max: 0x7fffffff }).map((seed) => random.key(seed)),
};
