/**
 * Randomized SVD (Halko, Martinsson and Tropp 2011) on core's kernels.
 * @module
 */
import { matmul, random, slice, tidy, transpose, type Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { checkFinite, checkMatrix } from './checks.js';
import { jacobiSvd } from './jacobi.js';
import { qr } from './qr.js';
import type { SVD } from './types.js';

/** Options of `randomizedSvd`. */
export interface RandomizedOptions {
  /** Number of singular triplets to return. */
  rank: number;
  /** Extra sample columns beyond `rank` (default 10). */
  oversample?: number;
  /** Power iterations (default 4 when rank < 0.1 min(m, n), else 2). */
  powerIters?: number;
  /** Key of the Gaussian test matrix (default `random.key(0)`, so results are reproducible). */
  key?: random.Key;
}

/**
 * Rank-`rank` truncated SVD by randomized range finding: a Gaussian test matrix from `key`, `Y = A Ω`,
 * power iterations `(A Aᵀ)^q`, and a Jacobi SVD of the small projection `B = Qᵀ A` (through the
 * QR of Bᵀ, so the Jacobi runs on an l x l triangle). In float32 the
 * basis is re-orthonormalized (QR) after every multiply by A or Aᵀ: without that, rounding swamps
 * the small directions (error 15-600x larger with 1-4 power iterations, measured). Not available on
 * webgl (its Gaussian sketch needs `random.normal`). Not
 * differentiable: under a gradient it throws, pointing to `svd(a, { method: 'jacobi', rank })`.
 *
 * @example
 * ```ts
 * const { U, S, Vt } = randomizedSvd(W, { rank: 16, key: random.key(1) });
 * U.shape; // [m, 16]
 * ```
 */
export function randomizedSvd(a: Tensor, opts: RandomizedOptions): SVD {
  checkMatrix('randomizedSvd', a);
  // Its factors depend on the random sketch: the exact gradient of the top-k SVD needs the other
  // singular values too (the truncated formula is only right for matrices of rank <= k), so the
  // full SVD's VJP is the honest way, and svd({ method: 'jacobi', rank }) gives it.
  if (internal.recording([a])) {
    throw new Error(
      `randomizedSvd: no gradient: the input of shape [${a.shape.join(',')}] is being differentiated, but the randomized SVD records no VJP; use svd(a, { method: 'jacobi', rank: ${opts?.rank} }) (exact, differentiable)`,
    );
  }
  checkFinite('randomizedSvd', a);
  const [m, n] = a.shape;
  const p = Math.min(m, n);
  const k = opts.rank;
  if (!Number.isInteger(k) || k < 1 || k > p) throw new Error(`randomizedSvd: rank must be an integer in [1, ${p}] for shape [${m},${n}], got ${k}`);
  const oversample = opts.oversample ?? 10;
  if (!Number.isInteger(oversample) || oversample < 0) throw new Error(`randomizedSvd: oversample must be a non-negative integer, got ${oversample}`);
  const q = opts.powerIters ?? (k < 0.1 * p ? 4 : 2);
  if (!Number.isInteger(q) || q < 0) throw new Error(`randomizedSvd: powerIters must be a non-negative integer, got ${q}`);
  const l = Math.min(k + oversample, p);
  return tidy(() => {
    const omega = random.normal(opts.key ?? random.key(0), [n, l]);
    let Q = qr(matmul(a, omega)).Q;
    for (let i = 0; i < q; i++) {
      const Z = qr(matmul(a, Q, { transposeA: true })).Q;
      Q = qr(matmul(a, Z)).Q;
    }
    // B = Qᵀ A is l x n and wide: take Bᵀ = Q_b R_b first, so the Jacobi SVD runs on the small
    // l x l R_b = U_r S V_rᵀ; then B = V_r S (Q_b U_r)ᵀ.
    const B = matmul(Q, a, { transposeA: true });
    const { Q: Qb, R: Rb } = qr(transpose(B));
    const small = jacobiSvd(Rb);
    const U = matmul(Q, small.Vt, { transposeB: true });
    const Vt = matmul(small.U, Qb, { transposeA: true, transposeB: true });
    return {
      U: slice(U, [0, 0], [m, k]),
      S: slice(small.S, [0], [k]),
      Vt: slice(Vt, [0, 0], [k, n]),
    };
  });
}
