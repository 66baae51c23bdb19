/**
 * The principal part of a weight, from `@sorsajs/linalg`'s SVD.
 * @module
 */
import { tidy, type Tensor, type random } from '@sorsajs/core';
import { checkFiniteValues, checkInteger } from '@sorsajs/core/internal';
import { svd } from '@sorsajs/linalg';
import { checkRank, checkWeight, scaleOf } from './checks.js';
import type { Adapter, Init } from './types.js';

/**
 * Which SVD initializes SORSA and PiSSA adapters: `'auto'` (the default: randomized when the rank is
 * below a tenth of min(out, in) and that is at least 256, else exact), exact one-sided Jacobi, or randomized subspace
 * iteration run until its stopping rule meets `tol` (`@sorsajs/linalg`'s `randomizedSvd`).
 *
 * @example
 * ```ts
 * const method: SvdMethod = 'randomized';
 * initAdapter(W, { rank: 8, svd: method, tol: 1e-4 });
 * ```
 */
export type SvdMethod = 'auto' | 'jacobi' | 'randomized';

/**
 * Options shared by the SVD-based initializers (`initAdapter`, `pissa.initAdapter`).
 *
 * @example
 * ```ts
 * initAdapter(W, { rank: 8, alpha: 16 }); // scale 2
 * ```
 */
export interface SvdInitOptions {
  /** Adapter rank r, in [1, min(out, in)]. */
  rank: number;
  /**
   * `'auto'` (default: randomized for a rank below a tenth of min(out, in) when that is at least
   * 256, where it is much faster, else Jacobi), `'jacobi'` (exact thin SVD) or `'randomized'`.
   */
  svd?: SvdMethod;
  /**
   * Randomized: the accuracy asked of the top-r singular values (relative) and, where σ_r stands
   * apart from σ_(r+1), of their subspace (angle); default 1e-3. See linalg's `randomizedSvd`.
   */
  tol?: number;
  /** Randomized only: a fixed number of power iterations instead of iterating until `tol` is met (PEFT's fast PiSSA init uses 2-4). */
  powerIters?: number;
  /** Randomized only: key of the Gaussian test matrix (linalg's default when absent). */
  key?: random.Key;
  /** The scale is `alpha / r`; without alpha it is 1 (the SORSA paper's setting). */
  alpha?: number;
}

/** The top-`rank` triplets of a weight, `U [out, r]`, `S [r]`, `Vt [r, in]`. */
export interface Triplets {
  U: Tensor;
  S: Tensor;
  Vt: Tensor;
}

/**
 * What SORSA's and PiSSA's initializers share: it checks W (a float32 matrix, finite where its values
 * are on the host), the rank, alpha and the SVD options, then, in one scope, hands the top-`rank`
 * triplets, the rank and the scale (`alpha / rank`, or 1) to `split`, which makes the adapter and the
 * residual; the triplets and every intermediate `split` does not return are freed. Errors are
 * prefixed with `fn`.
 */
export function svdInit<A extends Adapter>(fn: string, W: Tensor, opts: SvdInitOptions, split: (t: Triplets, rank: number, scale: number) => Init<A>): Init<A> {
  checkWeight(fn, W);
  const rank = checkRank(fn, opts?.rank, W.shape);
  const scale = scaleOf(fn, opts.alpha, rank);
  checkFiniteValues(fn, W, 'W');
  return tidy(() => split(topTriplets(fn, W, opts), rank, scale));
}

/** The top-`rank` triplets of W; linalg's errors come back prefixed with `fn`. */
export function topTriplets(fn: string, W: Tensor, opts: SvdInitOptions): Triplets {
  const method = opts.svd ?? 'auto';
  if (method !== 'auto' && method !== 'jacobi' && method !== 'randomized') throw new Error(`${fn}: svd must be 'auto', 'jacobi' or 'randomized', got ${String(method)}`);
  if (opts.tol !== undefined && !(opts.tol > 0 && opts.tol < 1)) throw new Error(`${fn}: tol must be in (0, 1), got ${String(opts.tol)}`);
  if (opts.powerIters !== undefined) checkInteger(fn, 'powerIters', opts.powerIters);
  try {
    return svd(W, { method, rank: opts.rank, ...(method === 'jacobi' ? {} : { powerIters: opts.powerIters, key: opts.key, tol: opts.tol }) });
  } catch (e) {
    throw new Error(`${fn}: ${(e as Error).message}`, { cause: e });
  }
}
