/**
 * fast-check laws of the SVD on generated shapes up to 128 (few runs: each new shape compiles its
 * kernels): LAPACK's acceptance ratios, and invariance of the singular values under transpose,
 * scaling and orthogonal transforms (against float64 references where the law needs them); and on
 * zero and nearly-zero matrices, full orthonormal U and V.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { svd } from '@sorsajs/linalg';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, orthonormalColumns, randomData, svdReference } from '@sorsajs/testing';
import { nearlyZero } from './families.js';

const RUNS = Number(process.env.FC_RUNS ?? 4);

async function singularValues(a: c.Tensor): Promise<Float32Array> {
  const f = svd(a, { method: 'jacobi' });
  const s = (await f.S.data()) as Float32Array;
  c.tree.dispose(f);
  return s;
}

/** Max |x_i − y_i| over the larger first value: the bound is 50 max(m,n) eps σ₁. */
function svalsGap(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let g = 0;
  for (let i = 0; i < x.length; i++) g = Math.max(g, Math.abs(x[i] - y[i]));
  return g / Math.max(x[0] ?? 0, y[0] ?? 0, 1e-30);
}

forEachBackend('svd properties', (backend) => {
  const shape = fc.record({ m: fc.integer({ min: 1, max: 128 }), n: fc.integer({ min: 1, max: 128 }), seed: fc.integer({ min: 1, max: 1e6 }) });

  it('singular values match float64 and are invariant under transpose and scaling', async () => {
    await fc.assert(
      fc.asyncProperty(shape, fc.double({ min: 0.01, max: 100, noNaN: true }), async ({ m, n, seed }, alpha) => {
        const data = randomData(m * n, seed);
        const bound = 50 * Math.max(m, n) * EPS32;
        const ref = svdReference(data, m, n).S;
        const a = c.tensor(data, [m, n]);
        const s = await singularValues(a);
        expect(svalsGap(s, ref), `[${m},${n}] vs float64`).toBeLessThanOrEqual(bound);
        const at = c.transpose(a);
        const st = await singularValues(at);
        expect(svalsGap(s, st), `[${m},${n}] vs its transpose`).toBeLessThanOrEqual(bound);
        const scaled = c.mul(a, Math.fround(alpha));
        const ss = await singularValues(scaled);
        const want = Array.from(s, (v) => v * Math.fround(alpha));
        expect(svalsGap(ss, want), `[${m},${n}] scaled by ${alpha}`).toBeLessThanOrEqual(2 * bound);
        c.tree.dispose([a, at, scaled]);
      }),
      { numRuns: RUNS },
    );
  });

  it('zero and nearly-zero matrices of any shape: U, V full orthonormal sets, A = U S Vt, S as float64', async () => {
    await fc.assert(
      fc.asyncProperty(shape, fc.integer({ min: 0, max: 4 }), async ({ m, n, seed }, kind) => {
        const f = nearlyZero(m, n, seed, backend === 'webgl')[kind];
        const k = Math.min(m, n);
        const a = c.tensor(f.data, [m, n]);
        const r = svd(a, { method: 'jacobi' });
        const [u, s, vt] = await Promise.all([r.U.data(), r.S.data(), r.Vt.data()]);
        c.tree.dispose([a, r]);
        // LAPACK's ratios (each at most 50): ‖I − UᵀU‖₁ / (m eps), ‖I − V Vᵀ‖₁ / (n eps),
        // ‖A − U S Vt‖₁ / (‖A‖₁ max(m,n) eps) (exactly 0 for A = 0), max |s − s64| / (max(m,n) eps s64₁).
        const gram = (x: ArrayLike<number>, rows: number, byCols: boolean): number => {
          let worst = 0;
          for (let q = 0; q < k; q++) {
            let col = 0;
            for (let p = 0; p < k; p++) {
              let acc = 0;
              for (let t = 0; t < rows; t++) acc += byCols ? x[t * k + p] * x[t * k + q] : x[p * rows + t] * x[q * rows + t];
              col += Math.abs((p === q ? 1 : 0) - acc);
            }
            worst = Math.max(worst, col);
          }
          return worst;
        };
        expect(gram(u, m, true) / (m * EPS32), `${f.name}: U`).toBeLessThanOrEqual(50);
        expect(gram(vt, n, false) / (n * EPS32), `${f.name}: V`).toBeLessThanOrEqual(50);
        let an = 0;
        let rn = 0;
        for (let j = 0; j < n; j++) {
          let ac = 0;
          let rc = 0;
          for (let i = 0; i < m; i++) {
            let acc = 0;
            for (let t = 0; t < k; t++) acc += u[i * k + t] * s[t] * vt[t * n + j];
            ac += Math.abs(f.data[i * n + j]);
            rc += Math.abs(f.data[i * n + j] - acc);
          }
          an = Math.max(an, ac);
          rn = Math.max(rn, rc);
        }
        expect(an === 0 ? rn : rn / (an * Math.max(m, n) * EPS32), `${f.name}: A − U S Vt`).toBeLessThanOrEqual(an === 0 ? 0 : 50);
        const ref = svdReference(f.data, m, n).S;
        let gap = 0;
        for (let i = 0; i < k; i++) gap = Math.max(gap, Math.abs(s[i] - ref[i]));
        expect(ref[0] === 0 ? gap : gap / (Math.max(m, n) * EPS32 * ref[0]), `${f.name}: S`).toBeLessThanOrEqual(ref[0] === 0 ? 0 : 50);
      }),
      { numRuns: RUNS },
    );
  });

  it('singular values are invariant under orthogonal transforms Q A Z', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 48 }), fc.integer({ min: 2, max: 48 }), fc.integer({ min: 1, max: 1e6 }), async (m, n, seed) => {
        const data = randomData(m * n, seed);
        const Q = orthonormalColumns(m, m, seed + 1); // columns of an m x m orthogonal matrix
        const Z = orthonormalColumns(n, n, seed + 2);
        const q = c.tensor(Float32Array.from({ length: m * m }, (_, k) => Q[k % m][Math.floor(k / m)]), [m, m]);
        const z = c.tensor(Float32Array.from({ length: n * n }, (_, k) => Z[k % n][Math.floor(k / n)]), [n, n]);
        const a = c.tensor(data, [m, n]);
        const qaz = c.matmul(c.matmul(q, a), z);
        const s = await singularValues(a);
        const s2 = await singularValues(qaz);
        // Q and Z are orthogonal to float32 rounding; the product adds (m + n) eps of error.
        expect(svalsGap(s, s2)).toBeLessThanOrEqual(50 * Math.max(m, n) * EPS32 + 4 * (m + n) * EPS32);
        c.tree.dispose([q, z, a, qaz]);
      }),
      { numRuns: RUNS },
    );
  });
});
