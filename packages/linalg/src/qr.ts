/**
 * Thin QR by Householder reflections, every step in core's kernels.
 * @module
 */
import { add, arange, backend, eye, greater, mul, reshape, slice, tidy, type Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { PROJECT, REFLECTOR, UPDATE, UPDATE_2D, VECTOR } from './qr-kernels.js';

import { checkFinite, checkMatrix } from './checks.js';
import { differentiableQr } from './grad.js';
import type { QR } from './types.js';

const { launch, launchDims } = internal;

/** X - beta v wᵀ over X [rows, cols]: the 2-D form on wasm (rows uniform per SIMD quad), 1-D elsewhere. */
function update(X: Tensor, v: Tensor, w: Tensor, p: Tensor, rows: number, cols: number): Tensor {
  if (backend() === 'wasm') return reshape(launchDims('qr', UPDATE_2D, [cols, rows], [X, v, w, p], [cols]), [rows, cols]);
  return launch('qr', UPDATE, [rows, cols], 'float32', [X, v, w, p], [cols]);
}

/**
 * Thin QR decomposition `A = Q R` by Householder reflections (backward stable: Q is orthonormal to
 * a small multiple of m·eps whatever A's condition). Step j reflects column j's entries below the
 * diagonal onto it, applied to the whole matrix as `A - beta v (vᵀ A)` in four fused kernels; Q
 * accumulates the reflectors backwards from the identity. R's diagonal may be negative (as LAPACK's geqrf).
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

/** Householder QR proper (four fused kernels a step, qr-kernels.ts); the public `qr` adds its VJP. */
function householderQr(a: Tensor): QR {
  const [m, n] = a.shape;
  const k = Math.min(m, n);
  return tidy(() => {
    let A = mul(a, 1);
    const reflectors: { v: Tensor; p: Tensor; j: number }[] = [];
    // A reflector per column that has entries below the diagonal (the last square one has none).
    const steps = Math.min(k, m - 1);
    for (let j = 0; j < steps; j++) {
      const p = launch('qr', REFLECTOR, [3], 'float32', [A], [m, n, j]);
      const v = launch('qr', VECTOR, [m], 'float32', [A, p], [n, j]);
      const w = launch('qr', PROJECT, [n], 'float32', [A, v], [m, n, j]);
      A = update(A, v, w, p, m, n);
      reflectors.push({ v, p, j });
    }
    // R: the first k rows, exactly zero below the diagonal.
    const upper = greater(add(reshape(arange(0, n, 1, 'float32'), [1, n]), 0.5), reshape(arange(0, k, 1, 'float32'), [k, 1]));
    const R = mul(slice(A, [0, 0], [k, n]), upper);
    // Q = H_0 H_1 ... H_{s-1} applied to the first k columns of the identity, from the last reflector back.
    let Q = eye(m, k);
    for (let r = reflectors.length - 1; r >= 0; r--) {
      const { v, p, j } = reflectors[r];
      const w = launch('qr', PROJECT, [k], 'float32', [Q, v], [m, k, j]);
      Q = update(Q, v, w, p, m, k);
    }
    return { Q, R };
  });
}

const differentiable = differentiableQr(householderQr);
