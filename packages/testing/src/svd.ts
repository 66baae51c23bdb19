/**
 * A float64 SVD to compare against: cyclic one-sided Jacobi (Hestenes) in plain loops, with V
 * accumulated. It runs in plain JavaScript on purpose, independently of the library's kernels, so
 * it can judge `@sorsajs/linalg`'s SVDs and anything built on them.
 * @module
 */
import { orthonormalize, projectOut } from './host.js';

/**
 * A float64 thin SVD of an m x n matrix, k = min(m, n): singular vectors as rows (u_j = `U[j]`, of
 * length m; v_j = `V[j]`, of length n) and singular values `S` in descending order, so that
 * `A = Σ_j S[j] · u_j v_jᵀ`.
 *
 * @example
 * ```ts
 * const { U, S, V } = svdReference(a, m, n);
 * const top = S[0]; // the spectral norm of a
 * const u0 = U[0]; // its left singular vector, of length m
 * ```
 */
export interface ReferenceSvd {
  /** Left singular vectors, one row per singular value (k rows of length m). */
  U: number[][];
  /** Singular values, descending (k of them). */
  S: number[];
  /** Right singular vectors, one row per singular value (k rows of length n). */
  V: number[][];
}

/**
 * The thin SVD of the row-major m x n matrix `a` to float64 accuracy, by cyclic one-sided Jacobi
 * rotations until no pair of columns is coupled beyond 1e-15 relative (at most 80 sweeps). Any
 * shape: a wide matrix is handled through its transpose. Singular vectors of a zero singular value
 * are zero vectors in U; signs and the order within a repeated singular value are those the
 * rotations leave, so compare subspaces, or singular values, rather than vectors one by one.
 *
 * It is a reference, O(m n² · sweeps) in plain loops: for test-sized matrices.
 *
 * @example
 * ```ts
 * import { svdReference, withSpectrum } from '@sorsajs/testing';
 * const a = withSpectrum(5, 3, [4, 2, 1], 7);
 * svdReference(a, 5, 3).S; // [4, 2, 1] to float64 rounding
 * const { S } = await svd(tensor(Float32Array.from(a), [5, 3])); // the library's, to compare
 * ```
 */
export function svdReference(a: ArrayLike<number>, m: number, n: number): ReferenceSvd {
  if (!(Number.isInteger(m) && Number.isInteger(n) && m >= 0 && n >= 0)) throw new Error(`svdReference: m and n must be non-negative integers, got ${m} x ${n}`);
  if (a.length !== m * n) throw new Error(`svdReference: a has ${a.length} values, a ${m} x ${n} matrix needs ${m * n}`);
  if (m < n) {
    const t = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
    const r = svdReference(t, n, m);
    return { U: r.V, S: r.S, V: r.U };
  }
  const cols = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => a[i * n + j]));
  const V = Array.from({ length: n }, (_, j) => Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 80; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        let app = 0;
        let aqq = 0;
        let apq = 0;
        for (let r = 0; r < m; r++) {
          app += cols[p][r] ** 2;
          aqq += cols[q][r] ** 2;
          apq += cols[p][r] * cols[q][r];
        }
        if (app === 0 || aqq === 0 || Math.abs(apq) <= 1e-15 * Math.sqrt(app * aqq)) continue;
        rotated = true;
        const zeta = (aqq - app) / (2 * apq);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (const [X, Y, len] of [[cols[p], cols[q], m], [V[p], V[q], n]] as const) {
          for (let r = 0; r < len; r++) {
            const u = X[r];
            X[r] = cs * u - sn * Y[r];
            Y[r] = sn * u + cs * Y[r];
          }
        }
      }
    if (!rotated) break;
  }
  const S = cols.map((col) => Math.sqrt(col.reduce((acc, v) => acc + v * v, 0)));
  const order = S.map((_, i) => i).sort((i, j) => S[j] - S[i]);
  return {
    S: order.map((i) => S[i]),
    U: order.map((i) => Array.from(cols[i], (v) => (S[i] === 0 ? 0 : v / S[i]))),
    V: order.map((i) => Array.from(V[i])),
  };
}

/**
 * The sine of the largest principal angle between span(ref) and span(U), in float64: ref is k
 * columns of length m (as `orthonormalColumns` or `svdReference(..).U` give them; orthonormal), U a
 * row-major m x k matrix (as a `U` factor's data). Computed as ‖(I − Q Qᵀ) ref‖₂ with Q an
 * orthonormal basis of span(U) made here (Gram-Schmidt, twice): not as sqrt(1 − cos²) from the
 * singular values of refᵀ U, where float32 columns whose norms are 1 ± 1e-6 alone would put a floor
 * of ~1e-3 under the sine, whatever the subspace. For right singular vectors pass Vt's transpose
 * (n x k, row-major).
 *
 * @example
 * ```ts
 * import { orthonormalColumns, subspaceSine, withSpectrum } from '@sorsajs/testing';
 * const s = [5, 4, 3, 2, 1, 0.5];
 * const a = withSpectrum(50, 30, s, 7); // left singular vectors: orthonormalColumns(50, s.length, 7)
 * const { U } = randomizedSvd(tensor(Float32Array.from(a), [50, 30]), { rank: 4 });
 * subspaceSine(orthonormalColumns(50, 4, 7), await U.data(), 50, 4); // small: the same subspace
 * ```
 */
export function subspaceSine(ref: readonly ArrayLike<number>[], U: ArrayLike<number>, m: number, k: number): number {
  if (ref.length === 0 || ref.some((c) => c.length !== m)) throw new Error(`subspaceSine: ref must be columns of length m = ${m}, got ${ref.length} of lengths ${[...new Set(ref.map((c) => c.length))].join(',')}`);
  if (U.length !== m * k) throw new Error(`subspaceSine: U must hold m x k = ${m} x ${k} = ${m * k} values, got ${U.length}`);
  const Q = orthonormalize(Array.from({ length: k }, (_, j) => Float64Array.from({ length: m }, (_, r) => U[r * k + j])));
  const res = ref.map((c) => projectOut(c, Q));
  // ‖Res‖₂² is the largest eigenvalue of ResᵀRes (symmetric positive semidefinite).
  const p = res.length;
  const G = new Float64Array(p * p);
  for (let i = 0; i < p; i++)
    for (let j = 0; j < p; j++) {
      let acc = 0;
      for (let r = 0; r < m; r++) acc += res[i][r] * res[j][r];
      G[i * p + j] = acc;
    }
  return Math.sqrt(svdReference(G, p, p).S[0]);
}
