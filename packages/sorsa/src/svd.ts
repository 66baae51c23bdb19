/**
 * The principal part of a weight, from `@sorsajs/linalg`'s SVD.
 * @module
 */
import { type Tensor, type random } from '@sorsajs/core';
import { svd } from '@sorsajs/linalg';

/**
 * Which SVD initializes SORSA and PiSSA adapters: exact one-sided Jacobi, or randomized (fast, approximate).
 *
 * @example
 * ```ts
 * const method: SvdMethod = 'randomized';
 * initAdapter(W, { rank: 8, svd: method, powerIters: 4 });
 * ```
 */
export type SvdMethod = 'jacobi' | 'randomized';

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
  /** `'jacobi'` (exact thin SVD, the default) or `'randomized'` (peft's fast PiSSA init). */
  svd?: SvdMethod;
  /** Randomized only: power iterations (linalg's default when absent). */
  powerIters?: number;
  /** Randomized only: key of the Gaussian test matrix (linalg's default when absent). */
  key?: random.Key;
  /** The scale is `alpha / r`; without alpha it is 1 (the SORSA paper's setting). */
  alpha?: number;
}

/** The top-`rank` triplets of W; linalg's errors come back prefixed with `fn`. */
export function topTriplets(fn: string, W: Tensor, opts: SvdInitOptions): { U: Tensor; S: Tensor; Vt: Tensor } {
  const method = opts.svd ?? 'jacobi';
  if (method !== 'jacobi' && method !== 'randomized') throw new Error(`${fn}: svd must be 'jacobi' or 'randomized', got ${String(method)}`);
  if (opts.powerIters !== undefined && (!Number.isInteger(opts.powerIters) || opts.powerIters < 0)) {
    throw new Error(`${fn}: powerIters must be a non-negative integer, got ${String(opts.powerIters)}`);
  }
  try {
    return svd(W, { method, rank: opts.rank, ...(method === 'randomized' ? { powerIters: opts.powerIters, key: opts.key } : {}) });
  } catch (e) {
    throw new Error(`${fn}: ${(e as Error).message}`, { cause: e });
  }
}
