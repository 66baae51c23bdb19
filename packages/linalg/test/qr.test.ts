/**
 * QR against LAPACK's acceptance ratios, on every backend: ‖A − QR‖₁ / (‖A‖₁ max(m,n) eps) and
 * ‖I − QᵀQ‖₁ / (m eps) each at most 50, R upper triangular, over the linalg issue's families and
 * at the shapes where the blocked QR (qr-blocked.ts: panels of 16 columns up to k = min(m, n) = 128,
 * of 32 beyond) differs: one panel, several, a partial last one, a last one with no reflector, tall,
 * square and wide, at both panel widths.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { qr } from '@sorsajs/linalg';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, matmulReference } from '@sorsajs/testing';
import { families, nearlyZero, randomGaussian, withSpectrum, type Matrix } from './families.js';

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

/**
 * R of a float64 Householder QR with qr's convention (geqrf's: each reflector maps x onto
 * −sign(x_j) ‖x‖ e_j, so R's diagonal may be negative; no reflector for a column zero below the
 * diagonal), row-major `[k, n]`.
 */
function householderR64(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const A = Float64Array.from(a);
  const k = Math.min(m, n);
  for (let j = 0; j < Math.min(k, m - 1); j++) {
    let below = 0;
    for (let i = j + 1; i < m; i++) below += A[i * n + j] ** 2;
    if (below === 0) continue;
    const xj = A[j * n + j];
    const alpha = (xj < 0 ? 1 : -1) * Math.sqrt(below + xj * xj);
    const v = new Float64Array(m);
    v[j] = xj - alpha;
    for (let i = j + 1; i < m; i++) v[i] = A[i * n + j];
    const vtv = v[j] ** 2 + below;
    for (let c = j; c < n; c++) {
      let d = 0;
      for (let i = j; i < m; i++) d += v[i] * A[i * n + c];
      for (let i = j; i < m; i++) A[i * n + c] -= (2 * d * v[i]) / vtv;
    }
  }
  const R = new Float64Array(k * n);
  for (let i = 0; i < k; i++) for (let c = i; c < n; c++) R[i * n + c] = A[i * n + c];
  return R;
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

  it('several panels of 16: full, partial and reflector-free last panels, tall, square and wide', async () => {
    // 64: four full panels; 70 and 100: a partial fifth / seventh; 17, 33 and 65 square: a last
    // panel of one column with nothing below its diagonal (no reflector); wide: panels only over
    // the first m.
    const shapes = [[64, 64], [70, 70], [100, 70], [70, 100], [130, 100], [100, 130], [17, 17], [33, 33], [65, 65], [40, 97]];
    for (const [m, n] of shapes) await check(randomGaussian(m, n, m * 1000 + n));
  });

  it('several panels of 32 (k > 128): full, partial and reflector-free last panels, tall and wide, rank-deficient', async () => {
    // 160 x 150: four full panels and a partial fifth; 129 square: a last panel of one column with
    // no reflector; wide: panels only over the first m.
    for (const [m, n] of [[160, 150], [129, 129], [140, 200]]) await check(randomGaussian(m, n, m * 1000 + n));
    // Rank 20, and zero columns at the 32-column panels' edges and in the partial last one.
    await check(withSpectrum('rank 20', 160, 150, Array.from({ length: 150 }, (_, i) => (i < 20 ? 2 - i * 0.05 : 0)), 14));
    const g = randomGaussian(160, 150, 15);
    g.name = 'gaussian 160x150 with zero columns';
    for (const j of [0, 31, 32, 64, 130, 149]) for (let i = 0; i < 160; i++) g.data[i * 150 + j] = 0;
    await check(g);
  });

  it('rank-deficient and zero columns across panels', async () => {
    const m = 110;
    const n = 100;
    // Rank 20 over 100 columns: most panels meet columns already in the span of earlier ones.
    await check(withSpectrum('rank 20', m, n, Array.from({ length: n }, (_, i) => (i < 20 ? 2 - i * 0.05 : 0)), 11));
    // Zero columns at a panel's first, middle and last column and in the partial last panel, and a
    // column repeated from an earlier panel.
    const g = randomGaussian(m, n, 12);
    g.name = `gaussian ${m}x${n} with zero and repeated columns`;
    for (const j of [0, 17, 31, 32, 63, 96, 99]) for (let i = 0; i < m; i++) g.data[i * n + j] = 0;
    for (let i = 0; i < m; i++) g.data[i * n + 70] = g.data[i * n + 5];
    await check(g);
    // Zero below the diagonal from the start (upper triangular): every reflector is trivial or a sign.
    const u = randomGaussian(n, n, 13);
    u.name = `upper triangular ${n}x${n}`;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) u.data[i * n + j] = 0;
    await check(u);
  });

  it('the issue families at 70 columns (five panels)', async () => {
    for (const f of families(70)) await check(f);
  });

  it("R's signs are Householder's (geqrf's): as a float64 reference's, over several panels", async () => {
    for (const [m, n] of [[90, 70], [70, 90]]) {
      const f = randomGaussian(m, n, m + 7 * n);
      const k = Math.min(m, n);
      const a = c.tensor(f.data, [m, n]);
      const { Q, R } = qr(a);
      const r = await R.data();
      c.tree.dispose([a, Q, R]);
      const ref = householderR64(f.data, m, n);
      // The same R to float32 accuracy (a Gaussian's R is well conditioned), not only |R|.
      let err = 0;
      let scale = 0;
      for (let i = 0; i < k * n; i++) {
        err = Math.max(err, Math.abs(r[i] - ref[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      expect(err / (scale * Math.max(m, n) * EPS32), `${f.name}: max |R − R64| / (max|R64| max(m,n) eps)`).toBeLessThanOrEqual(50);
      for (let i = 0; i < k; i++) expect(Math.sign(r[i * n + i]), `${f.name}: sign of R[${i},${i}]`).toBe(Math.sign(ref[i * n + i]));
    }
  });

  it('rejects bad input with clear errors', () => {
    expect(() => qr(c.zeros([2, 2, 2]))).toThrow(/qr: expects a matrix \(rank 2\), got shape \[2,2,2\]/);
    expect(() => qr(c.tensor([[1, NaN]]))).toThrow(/qr: input has a non-finite value NaN at \[0, 1\]/);
    expect(() => qr(c.tensor([[1, 2]], undefined, 'int32'))).toThrow(/qr: expects a float32 matrix, got int32/);
  });
});
