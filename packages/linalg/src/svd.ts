/**
 * The SVD entry point and the helpers built on it.
 * @module
 */
import { abs, div, eye, matmul, max, maximum, mul, norm, slice, sub, tidy, type Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import type * as core from '@sorsajs/core';
import { jacobiSvd } from './jacobi.js';
import { randomizedSvd } from './randomized.js';
import type { SVD } from './types.js';

/** Options of `svd`. */
export interface SvdOptions {
  /**
   * `'jacobi'` (exact thin SVD, differentiable), `'randomized'` (rank-`rank` approximation; refused
   * under a gradient) or `'auto'` (default: randomized for a rank below a tenth of min(m, n) >= 256,
   * but jacobi under a gradient).
   */
  method?: 'jacobi' | 'randomized' | 'auto';
  /** Number of triplets: required for randomized; with jacobi, truncates. */
  rank?: number;
  /** Randomized: extra basis columns (default max(10, rank)). */
  oversample?: number;
  /** Randomized: a fixed number of power iterations instead of iterating until `tol` is met. */
  powerIters?: number;
  /** Randomized: key of the test matrix. */
  key?: core.random.Key;
  /**
   * Jacobi: convergence threshold on max |a_i·a_j| / (|a_i||a_j|) (default sqrt(m)·eps, m the
   * longer side, or min(m, n) on the QR path; the run ends within up to 4 tol, and a tol far under
   * sqrt(m)·eps is never met: see `JacobiOptions.tol`).
   * Randomized: the accuracy asked of the top singular values and subspace (default 1e-3; see
   * `randomizedSvd`).
   */
  tol?: number;
  /** Randomized: most iterations (default 64). */
  maxIters?: number;
  /** Jacobi: most sweeps. */
  maxSweeps?: number;
}

/** The smallest min(m, n) for which svd's `'auto'` takes the randomized method. */
const AUTO_MIN = 256;

/**
 * Thin SVD `A = U diag(S) Vt`. `'auto'` uses the randomized method (iterated until accurate to
 * `tol`) when a `rank` below a tenth of min(m, n) is asked for and min(m, n) is at least 256, and
 * one-sided Jacobi otherwise. The Jacobi path is differentiable (VJP in
 * grad.ts: exact for distinct singular values; degenerate ones drop their coupling terms), also with
 * a `rank` (the leading triplets of the full SVD, so the gradient of the truncated SVD is exact).
 * The randomized path is not: under a gradient, `'auto'` takes the Jacobi path and `'randomized'`
 * throws.
 *
 * @example
 * ```ts
 * const { U, S, Vt } = svd(a);                       // Jacobi, k = min(m, n)
 * const top = svd(a, { method: 'randomized', rank: 16 });
 * ```
 */
export function svd(a: Tensor, opts: SvdOptions = {}): SVD {
  internal.checkMatrix('svd', a);
  const [m, n] = a.shape;
  const p = Math.min(m, n);
  const method = opts.method ?? 'auto';
  if (!['jacobi', 'randomized', 'auto'].includes(method)) throw new Error(`svd: unknown method "${method}" (jacobi, randomized or auto)`);
  if (opts.rank !== undefined) internal.checkInteger('svd', 'rank', opts.rank, { min: 1, max: p, note: `for shape [${m},${n}]` });
  // A gradient needs the full SVD (randomizedSvd refuses one), so 'auto' then takes Jacobi. Below
  // AUTO_MIN the Jacobi SVD costs no more (measured on wasm, rank 8: ~0.8 s either way at 128²) and
  // is exact.
  const small = opts.rank !== undefined && opts.rank < 0.1 * p && p >= AUTO_MIN && !internal.recording([a]);
  const useRandomized = method === 'randomized' || (method === 'auto' && small);
  if (useRandomized) {
    if (opts.rank === undefined) throw new Error('svd: the randomized method needs a rank');
    return randomizedSvd(a, { rank: opts.rank, oversample: opts.oversample, powerIters: opts.powerIters, key: opts.key, tol: opts.tol, maxIters: opts.maxIters });
  }
  const full = jacobiSvd(a, { tol: opts.tol, maxSweeps: opts.maxSweeps });
  if (opts.rank === undefined || opts.rank === p) return full;
  return truncate(full, opts.rank);
}

/** The leading k triplets of a full thin SVD (the full factors are disposed). */
function truncate(f: SVD, k: number): SVD {
  const [m] = f.U.shape;
  const n = f.Vt.shape[1];
  const out = { U: slice(f.U, [0, 0], [m, k]), S: slice(f.S, [0], [k]), Vt: slice(f.Vt, [0, 0], [k, n]) };
  f.U.dispose();
  f.S.dispose();
  f.Vt.dispose();
  return out;
}

/**
 * The singular values of `a`, descending.
 *
 * @example
 * ```ts
 * await svdvals(tensor([[3, 0], [0, 4]])).data(); // [4, 3]
 * ```
 */
export function svdvals(a: Tensor, opts: SvdOptions = {}): Tensor {
  const f = svd(a, opts);
  f.U.dispose();
  f.Vt.dispose();
  return f.S;
}

/**
 * The best rank-k approximation `U_k diag(S_k) Vt_k` (Eckart–Young), by `svd` with `rank: k`.
 *
 * @example
 * ```ts
 * const W2 = lowRank(W, 8);
 * ```
 */
export function lowRank(a: Tensor, k: number, opts: SvdOptions = {}): Tensor {
  return tidy(() => {
    const f = svd(a, { ...opts, rank: k });
    return matmul(mul(f.U, f.S), f.Vt);
  });
}

/**
 * How far the columns of `Q` are from orthonormal: `max |QᵀQ − I|` (a scalar tensor).
 *
 * @example
 * ```ts
 * await orthonormalityError(qr(a).Q).data(); // ~1e-7
 * ```
 */
export function orthonormalityError(Q: Tensor): Tensor {
  internal.checkMatrix('orthonormalityError', Q);
  return tidy(() => max(abs(sub(matmul(Q, Q, { transposeA: true }), eye(Q.shape[1])))));
}

/**
 * Relative reconstruction error `‖A − U diag(S) Vt‖_F / ‖A‖_F` (a scalar tensor; 0 for A = 0 reconstructed exactly).
 *
 * @example
 * ```ts
 * await reconstructionError(a, svd(a)).data(); // ~1e-7
 * ```
 */
export function reconstructionError(a: Tensor, f: SVD): Tensor {
  internal.checkMatrix('reconstructionError', a);
  return tidy(() => {
    const r = norm(sub(a, matmul(mul(f.U, f.S), f.Vt)));
    // max(‖A‖, tiny) keeps 0 / 0 out of the zero matrix's relative error.
    return div(r, maximum(norm(a), 1e-30));
  });
}
