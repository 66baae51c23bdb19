/**
 * SORSA initialization: the top-r SVD triplets become the adapter, the rest the frozen residual.
 * @module
 */
import { sub, type Tensor } from '@sorsajs/core';
import { principal } from './forward.js';
import { svdInit, type SvdInitOptions } from './svd.js';
import type { Init, SorsaAdapter } from './types.js';

export type { SvdMethod, SvdInitOptions } from './svd.js';

/**
 * Splits a weight `W [out, in]` as SORSA does: from the thin SVD `W = U diag(σ) Vᵀ`, the adapter is
 * the top-`rank` triplets `{ U [out, r], S [r], Vt [r, in] }` and the residual is
 * `W − scale · U diag(S) Vt`, computed as that difference, so `merge(adapter, residual)` gives W
 * back to float32 rounding. `scale` is 1, or `alpha / rank` (then stored as `adapter.scale`).
 * W is neither mutated nor disposed.
 *
 * Errors: W not a float32 matrix, rank not an integer in [1, min(out, in)], alpha not positive,
 * and NaN or Infinity in W where its values are on the host (device-resident values are not read
 * back: the API is synchronous).
 *
 * @example
 * ```ts
 * const { adapter, residual } = initAdapter(W, { rank: 8 });
 * const fast = initAdapter(W, { rank: 8, svd: 'randomized', powerIters: 4, key: random.key(0) });
 * ```
 */
export function initAdapter(W: Tensor, opts: SvdInitOptions): Init<SorsaAdapter> {
  return svdInit('initAdapter', W, opts, ({ U, S, Vt }, _rank, scale) => {
    const residual = sub(W, principal(U, S, Vt, scale));
    const adapter: SorsaAdapter = opts.alpha === undefined ? { U, S, Vt } : { U, S, Vt, scale };
    return { adapter, residual };
  });
}
