/**
 * Thin QR by Householder reflections, every step in core's kernels.
 * @module
 */
import type { Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { differentiableQr } from './grad.js';
import { householderInJob } from './qr-blocked.js';
import type { QR } from './types.js';

/**
 * Thin QR decomposition `A = Q R` by Householder reflections (backward stable: Q is orthonormal to
 * a small multiple of m·eps whatever A's condition). Blocked: each panel of 16 columns (when
 * min(m, n) <= 128) or 32 is reduced by one reflector per column (four fused kernels a column, on
 * the panel alone), and the rest of the matrix is updated by three matrix products (compact WY);
 * Q is the reflectors applied to the first columns of the identity the same way. R's diagonal may be negative (as LAPACK's geqrf); a column
 * that is zero below its diagonal makes no reflector.
 *
 * @example
 * ```ts
 * const { Q, R } = qr(tensor([[1, 2], [3, 4], [5, 6]]));
 * Q.shape; // [3, 2]
 * R.shape; // [2, 2]
 * ```
 */
export function qr(a: Tensor): QR {
  internal.checkMatrix('qr', a);
  internal.checkFiniteValues('qr', a);
  return differentiable(a);
}

/** Householder QR proper, as one job (the blocked QR of qr-blocked.ts); the public `qr` adds its VJP. */
function householderQr(a: Tensor): QR {
  const [m, n] = a.shape;
  const k = Math.min(m, n);
  const [Q, R] = internal.launchJob('qr', [a], [[m, k], [k, n]], async (ctx, [ap]) => {
    const f = await householderInJob(ctx, ap, m, n, true);
    return [f.Q, f.R!];
  });
  return { Q, R };
}

const differentiable = differentiableQr(householderQr);
