/**
 * Host-side (float64) builders the arbitraries and the gradient checks share: a seeded generator,
 * Gaussian draws, orthonormal bases, matrices with a chosen spectrum and a float64 matmul. They run in plain
 * JavaScript on purpose: they are the independent side of every comparison, so they must not go
 * through the library under test.
 * @module
 */

/**
 * The float32 machine epsilon, 2^-23: the spacing of float32 numbers just above 1. Tolerances in
 * this package are multiples of it.
 *
 * @example
 * ```ts
 * const tol = 8 * EPS32 * Math.sqrt(n); // a sum of n float32 terms
 * ```
 */
export const EPS32 = 2 ** -23;

/**
 * A seeded uniform generator on [0, 1) (mulberry32), so failures reproduce from their seed.
 *
 * @example
 * ```ts
 * const r = rng(42);
 * const x = r(); // the same number on every run
 * ```
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` float32-representable values drawn uniformly from [lo, hi) with a seeded generator.
 *
 * @example
 * ```ts
 * const x = tensor(randomData(12, 7), [3, 4]); // values in [-1, 1)
 * ```
 */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/**
 * One standard normal draw from a uniform generator (Box-Muller, in float64).
 *
 * @example
 * ```ts
 * const r = rng(1);
 * const z = gaussian(r);
 * ```
 */
export function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-300);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/**
 * A random orthonormal m x k basis in float64, as k columns of length m (k <= m), by Gram-Schmidt
 * applied twice to Gaussian columns (the second pass restores orthogonality to rounding level).
 *
 * @example
 * ```ts
 * const cols = orthonormalColumns(5, 3, 1); // cols[j][i] is entry (i, j)
 * ```
 */
export function orthonormalColumns(m: number, k: number, seed: number): Float64Array[] {
  if (!(Number.isInteger(k) && k >= 0 && k <= m)) throw new Error(`orthonormalColumns: need 0 <= k <= m, got m = ${m}, k = ${k}`);
  const r = rng(seed);
  return orthonormalize(Array.from({ length: k }, () => Float64Array.from({ length: m }, () => gaussian(r))));
}

/**
 * An orthonormal basis of the span of `cols` (k columns of one length, linearly independent) in
 * float64: classical Gram-Schmidt applied twice to each column against the ones before it, then
 * normalized, so the basis is orthonormal to rounding level. Returns new arrays.
 *
 * @example
 * ```ts
 * const q = orthonormalize([Float64Array.of(1, 1, 0), Float64Array.of(1, 0, 0)]); // q[0] = [0.707, 0.707, 0]
 * ```
 */
export function orthonormalize(cols: readonly ArrayLike<number>[]): Float64Array[] {
  const out: Float64Array[] = [];
  for (const col of cols) {
    const v = projectOut(col, out);
    const m = v.length;
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += v[i] * v[i];
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < m; i++) v[i] /= nrm;
    out.push(v);
  }
  return out;
}

/**
 * `v` minus its projection onto span(Q), Q orthonormal columns, as a new Float64Array: classical
 * Gram-Schmidt twice, so the result is orthogonal to Q to float64 rounding.
 *
 * @example
 * ```ts
 * projectOut([1, 1, 0], [Float64Array.of(1, 0, 0)]); // [0, 1, 0]
 * ```
 */
export function projectOut(v: ArrayLike<number>, Q: readonly Float64Array[]): Float64Array {
  const out = Float64Array.from(v);
  const m = out.length;
  for (let pass = 0; pass < 2; pass++) {
    for (const q of Q) {
      let d = 0;
      for (let i = 0; i < m; i++) d += q[i] * out[i];
      for (let i = 0; i < m; i++) out[i] -= d * q[i];
    }
  }
  return out;
}

/**
 * `U diag(s) Vᵀ` (m x n, row-major float64) with random orthonormal U (m x k) and V (n x k) and the
 * given singular values s (k = s.length <= min(m, n)). Its singular values are s exactly in real
 * arithmetic; rounding the result to float32 moves each by at most EPS32 · ‖A‖_F (Weyl).
 *
 * @example
 * ```ts
 * const A = withSpectrum(4, 3, [3, 2, 1], 7); // a 4 x 3 matrix with singular values 3, 2, 1
 * const A32 = Float32Array.from(A);
 * ```
 */
export function withSpectrum(m: number, n: number, s: readonly number[], seed: number): Float64Array {
  const k = s.length;
  if (k > Math.min(m, n)) throw new Error(`withSpectrum: ${k} singular values for a ${m} x ${n} matrix (at most ${Math.min(m, n)})`);
  const U = orthonormalColumns(m, k, seed);
  const V = orthonormalColumns(n, k, seed + 1);
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += U[t][i] * s[t] * V[t][j];
      data[i * n + j] = acc;
    }
  return data;
}

/**
 * The float64 product of a row-major m x k matrix `a` and a row-major k x n matrix `b`, as an
 * m x n row-major Float64Array: the plain triple loop, independent of the library's kernels, to
 * compare a float32 matmul (or anything built on one) against. The same call with `|a|` and `|b|`
 * gives the scale of each entry's float32 rounding error (a sum of k products).
 *
 * @example
 * ```ts
 * const ref = matmulReference(aData, bData, 2, 3, 4); // [2, 3] x [3, 4]
 * const scale = matmulReference(aData.map(Math.abs), bData.map(Math.abs), 2, 3, 4);
 * await assertAllClose(matmul(a, b), ref);
 * ```
 */
export function matmulReference(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  if (![m, k, n].every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`matmulReference: m, k and n must be non-negative integers, got ${m}, ${k}, ${n}`);
  if (a.length !== m * k) throw new Error(`matmulReference: a has ${a.length} values, a ${m} x ${k} matrix needs ${m * k}`);
  if (b.length !== k * n) throw new Error(`matmulReference: b has ${b.length} values, a ${k} x ${n} matrix needs ${k * n}`);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) {
      const x = a[i * k + t];
      for (let j = 0; j < n; j++) out[i * n + j] += x * b[t * n + j];
    }
  return out;
}

/**
 * The number of elements of a shape (1 for a scalar's `[]`).
 *
 * @example
 * ```ts
 * count([2, 3]); // 6
 * ```
 */
export function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The multi-index of flat position `p` in a row-major `shape`.
 *
 * @example
 * ```ts
 * unravel(5, [2, 3]); // [1, 2]
 * ```
 */
export function unravel(p: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let j = shape.length - 1; j >= 0; j--) {
    idx[j] = p % shape[j];
    p = Math.floor(p / shape[j]);
  }
  return idx;
}
