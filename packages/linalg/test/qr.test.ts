/**
 * QR against LAPACK's acceptance ratios, on every backend: ‖A − QR‖₁ / (‖A‖₁ max(m,n) eps) and
 * ‖I − QᵀQ‖₁ / (m eps) each at most 50, R upper triangular, over the linalg issue's families.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { qr } from '@sorsajs/linalg';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, matmulReference } from '@sorsajs/testing';
import { families, nearlyZero, type Matrix } from './families.js';

/** ‖X‖₁: the largest absolute column sum, in float64. */
function norm1(x: ArrayLike<number>, m: number, n: number): number {
  let best = 0;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += Math.abs(x[i * n + j]);
    best = Math.max(best, s);
  }
  return best;
}

async function check(f: Matrix): Promise<void> {
  const { m, n } = f;
  const k = Math.min(m, n);
  const a = c.tensor(f.data, [m, n]);
  const { Q, R } = qr(a);
  expect(Q.shape).toEqual([m, k]);
  expect(R.shape).toEqual([k, n]);
  const q = await Q.data();
  const r = await R.data();
  c.tree.dispose([a, Q, R]);
  // R is exactly upper triangular.
  for (let i = 0; i < k; i++) for (let j = 0; j < Math.min(i, n); j++) expect(Math.abs(r[i * n + j]), `${f.name}: R[${i},${j}]`).toBe(0);
  const qrProd = matmulReference(q, r, m, k, n);
  const diff = qrProd.map((v, i) => v - f.data[i]);
  const an = norm1(f.data, m, n);
  // A zero A has nothing to be relative to: QR must then be exactly zero.
  const resid = an === 0 ? (norm1(diff, m, n) === 0 ? 0 : Infinity) : norm1(diff, m, n) / (an * Math.max(m, n) * EPS32);
  expect(resid, `${f.name}: ‖A − QR‖₁ / (‖A‖₁ max(m,n) eps)`).toBeLessThanOrEqual(50);
  const qtq = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < m; t++) s += q[t * k + i] * q[t * k + j];
      qtq[i * k + j] = (i === j ? 1 : 0) - s;
    }
  expect(norm1(qtq, k, k) / (m * EPS32), `${f.name}: ‖I − QᵀQ‖₁ / (m eps)`).toBeLessThanOrEqual(50);
}

forEachBackend('qr', (backend) => {
  it('meets LAPACK acceptance ratios over the matrix families', async () => {
    for (const f of families(16)) await check(f);
  });

  it('zero and nearly-zero matrices, tall, square and wide: Q orthonormal, A = QR', async () => {
    // A zero column below the diagonal makes no reflector (beta = 0): Q's column is the identity's.
    for (const [m, n] of [[5, 2], [16, 16], [2, 5], [40, 24], [24, 40]]) for (const f of nearlyZero(m, n, m * 100 + n, backend === 'webgl')) await check(f);
  });

  it('a tall 48x24 Gaussian', async () => {
    await check(families(24)[1]);
  });

  it('rejects bad input with clear errors', () => {
    expect(() => qr(c.zeros([2, 2, 2]))).toThrow(/qr: expects a matrix \(rank 2\), got shape \[2,2,2\]/);
    expect(() => qr(c.tensor([[1, NaN]]))).toThrow(/qr: input has a non-finite value NaN at \[0, 1\]/);
    expect(() => qr(c.tensor([[1, 2]], undefined, 'int32'))).toThrow(/qr: expects a float32 matrix, got int32/);
  });
});
