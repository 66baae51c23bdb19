/**
 * Thin QR by Householder reflections, every step in core's kernels.
 * @module
 */
import { add, arange, div, equal, eye, greater, less, matmul, mul, neg, norm, reshape, slice, sum, square, sub, tidy, where, type Tensor } from '@sorsajs/core';
import { checkFinite, checkMatrix } from './checks.js';
import { differentiableQr } from './grad.js';

/** The factors of a thin QR: Q `[m, k]` with orthonormal columns and upper-triangular R `[k, n]`, k = min(m, n). */
export interface QR {
  /** Orthonormal columns, `[m, k]`. */
  Q: Tensor;
  /** Upper triangular, `[k, n]`. */
  R: Tensor;
}

/**
 * Thin QR decomposition `A = Q R` by Householder reflections (backward stable: Q is orthonormal to
 * a small multiple of m·eps whatever A's condition). Step j reflects column j's entries below the
 * diagonal onto it, applied to the whole matrix as `A - beta v (vᵀ A)`; Q accumulates the
 * reflectors backwards from the identity. R's diagonal may be negative (as LAPACK's geqrf).
 *
 * @example
 * ```ts
 * const { Q, R } = qr(tensor([[1, 2], [3, 4], [5, 6]]));
 * Q.shape; // [3, 2]
 * R.shape; // [2, 2]
 * ```
 */
export function qr(a: Tensor): QR {
  checkMatrix('qr', a);
  checkFinite('qr', a);
  return differentiable(a);
}

/** Householder QR proper; the public `qr` wraps it with its VJP. */
function householderQr(a: Tensor): QR {
  const [m, n] = a.shape;
  const k = Math.min(m, n);
  return tidy(() => {
    const rowIndex = reshape(arange(0, m, 1, 'float32'), [m, 1]);
    let A = mul(a, 1);
    const reflectors: { v: Tensor; beta: Tensor }[] = [];
    // A reflector per column that has entries below the diagonal (the last square one has none).
    const steps = Math.min(k, m - 1);
    for (let j = 0; j < steps; j++) {
      const col = slice(A, [0, j], [m, 1]);
      const below = mul(col, greater(rowIndex, j - 0.5)); // rows >= j
      const xj = slice(A, [j, j], [1, 1]);
      const nx = norm(below);
      // alpha = -sign(x_j) ||x||: the reflection moves x away from its own sign (no cancellation).
      const alpha = where(less(xj, 0), nx, neg(nx));
      const ej = equal(rowIndex, j);
      const v = sub(below, mul(ej, alpha));
      const vtv = sum(square(v));
      // beta = 2 / vᵀv, or 0 for a column that is already zero below the diagonal.
      const zero = equal(vtv, 0);
      const beta = div(mul(sub(1, zero), 2), where(zero, 1, vtv));
      A = sub(A, mul(mul(v, beta), matmul(v, A, { transposeA: true })));
      reflectors.push({ v, beta });
    }
    // R: the first k rows, exactly zero below the diagonal.
    const upper = greater(add(reshape(arange(0, n, 1, 'float32'), [1, n]), 0.5), reshape(arange(0, k, 1, 'float32'), [k, 1]));
    const R = mul(slice(A, [0, 0], [k, n]), upper);
    let Q = eye(m, k);
    for (let j = reflectors.length - 1; j >= 0; j--) {
      const { v, beta } = reflectors[j];
      Q = sub(Q, mul(mul(v, beta), matmul(v, Q, { transposeA: true })));
    }
    return { Q, R };
  });
}

const differentiable = differentiableQr(householderQr);
