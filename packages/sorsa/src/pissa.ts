/**
 * The PiSSA baseline: the same SVD split as SORSA, with the principal part as a LoRA-form adapter
 * `A = √S Vt`, `B = U √S` and no regularizer.
 *
 * @example
 * ```ts
 * import { pissa } from '@sorsajs/sorsa';
 * const { adapter, residual } = pissa.initAdapter(W, { rank: 8, svd: 'randomized', powerIters: 4 });
 * const y = pissa.adaptedLinear(adapter, residual, x);
 * ```
 * @module
 */
import { div, mul, reshape, sqrt, sub, type Tensor } from '@sorsajs/core';
import { principal } from './forward.js';
import { svdInit, type SvdInitOptions } from './svd.js';
import type { Init, LoraAdapter } from './types.js';

export { merge, adaptedLinear, linear } from './forward.js';

/**
 * A PiSSA adapter for `W [out, in]`, as peft's `init_lora_weights="pissa"` (`"pissa_niter_K"` with
 * `svd: 'randomized', powerIters: K`): from the top-`rank` triplets, with `S' = S / scale`,
 * `A = diag(√S') Vt` `[r, in]` and `B = U diag(√S')` `[out, r]`; the residual is
 * `W − scale · B A`, computed as that difference, so `merge` gives W back to float32 rounding.
 * At initialization the merged weight and the forward output equal SORSA's of the same rank.
 *
 * @example
 * ```ts
 * const { adapter, residual } = pissa.initAdapter(W, { rank: 8 });
 * ```
 */
export function initAdapter(W: Tensor, opts: SvdInitOptions): Init<LoraAdapter> {
  return svdInit('pissa.initAdapter', W, opts, ({ U, S, Vt }, rank, scale) => {
    const root = sqrt(scale === 1 ? S : div(S, scale));
    const A = mul(Vt, reshape(root, [rank, 1]));
    const B = mul(U, root);
    const residual = sub(W, principal(B, null, A, scale));
    const adapter: LoraAdapter = opts.alpha === undefined ? { A, B } : { A, B, scale };
    return { adapter, residual };
  });
}
