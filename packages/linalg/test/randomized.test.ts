/**
 * Randomized SVD on fast-decaying spectra (the linalg issue's bounds): the Frobenius error of the
 * rank-k approximation within 1.5x the optimal tail sqrt(sum_{i>k} s_i^2), and the top-k singular
 * values within 1e-3 relative error of the exact ones. Also svd's method selection and helpers.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { lowRank, orthonormalityError, randomizedSvd, reconstructionError, svd, svdvals } from '@sorsajs/linalg';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, svdReference } from '@sorsajs/testing';
import { hugeValued, nearlyZero, withSpectrum } from './families.js';

/** max |XᵀX − I| over the k columns of row-major X [rows, k] (byCols) or the k rows of X [k, rows], in float64. */
function orthError(x: ArrayLike<number>, rows: number, k: number, byCols: boolean): number {
  let e = 0;
  for (let p = 0; p < k; p++)
    for (let q = 0; q < k; q++) {
      let acc = 0;
      for (let r = 0; r < rows; r++) acc += byCols ? x[r * k + p] * x[r * k + q] : x[p * rows + r] * x[q * rows + r];
      e = Math.max(e, Math.abs(acc - (p === q ? 1 : 0)));
    }
  return e;
}

/**
 * randomizedSvd of f at rank k with rank + oversample >= min(m, n): the sample spans the whole range,
 * so U and Vt must be orthonormal and S the top singular values to float32 accuracy (float64
 * reference) whatever the spectrum.
 */
async function expectExactTop(f: { name: string; m: number; n: number; data: Float32Array }, k: number, key: number): Promise<void> {
  const { m, n } = f;
  const a = c.tensor(f.data, [m, n]);
  const r = randomizedSvd(a, { rank: k, key: c.random.key(key) });
  const [u, s, vt] = await Promise.all([r.U.data(), r.S.data(), r.Vt.data()]);
  c.tree.dispose([a, r]);
  const bound = 50 * Math.max(m, n) * EPS32;
  expect(orthError(u, m, k, true), `${f.name}: max |UᵀU − I|`).toBeLessThanOrEqual(bound);
  expect(orthError(vt, n, k, false), `${f.name}: max |Vt Vtᵀ − I|`).toBeLessThanOrEqual(bound);
  const ref = svdReference(f.data, m, n).S;
  for (let i = 0; i < k; i++) expect(Math.abs(s[i] - ref[i]), `${f.name}: S[${i}] = ${s[i]}, float64 ${ref[i]}`).toBeLessThanOrEqual(bound * ref[0]);
}

forEachBackend('randomized svd', (name) => {
  it('rank-k on a decaying spectrum: near-optimal tail, top-k values within 1e-3', async () => {
    const [m, n, k] = [96, 64, 8];
    const sigma = Array.from({ length: n }, (_, i) => 0.7 ** i);
    const f = withSpectrum('decaying', m, n, sigma, 31);
    const a = c.tensor(f.data, [m, n]);
    if (name === 'webgl') {
      // The Gaussian test matrix needs random.normal, which webgl refuses.
      expect(() => randomizedSvd(a, { rank: k })).toThrow(/normal: not available on webgl/);
      a.dispose();
      return;
    }
    const r = randomizedSvd(a, { rank: k, key: c.random.key(3) });
    expect(r.U.shape).toEqual([m, k]);
    expect(r.S.shape).toEqual([k]);
    expect(r.Vt.shape).toEqual([k, n]);
    const S = await r.S.data();
    const approx = await c.matmul(c.mul(r.U, r.S), r.Vt).data();
    // Float64 error of the approximation against the float32 input.
    let err = 0;
    for (let i = 0; i < m * n; i++) err += (f.data[i] - approx[i]) ** 2;
    const tail = Math.sqrt(sigma.slice(k).reduce((acc, s) => acc + s * s, 0));
    expect(Math.sqrt(err)).toBeLessThanOrEqual(1.5 * tail);
    for (let i = 0; i < k; i++) expect(Math.abs(S[i] - sigma[i]) / sigma[i], `sigma_${i}`).toBeLessThanOrEqual(1e-3);
    const orth = await orthonormalityError(r.U).data();
    expect(orth[0]).toBeLessThan(1e-4);
    c.tree.dispose([a, r]);
  });

  it('without a key: the same factors as key 0, whether the sketch is drawn or remembered (shapes interleaved)', async () => {
    if (name === 'webgl') return; // random.normal is refused there (see above)
    const k = 4;
    // [80, 24] and [24, 80] share a sketch shape ([80, l]: the long side); [96, 24] has its own. Both
    // sketches (80 x 14, 96 x 14) are of the size core's pool recycles, so a remembered sketch that
    // were not a copy would be overwritten by later results.
    const mats = [[80, 24], [96, 24], [24, 80], [80, 24], [96, 24]].map(([m, n], i) =>
      c.tensor(withSpectrum('decaying', m, n, Array.from({ length: Math.min(m, n) }, (_, j) => 0.8 ** j), 70 + (i % 3)).data, [m, n]),
    );
    for (const a of mats) {
      const d = randomizedSvd(a, { rank: k });
      const e = randomizedSvd(a, { rank: k, key: c.random.key(0) });
      for (const f of ['U', 'S', 'Vt'] as const) expect(Array.from(await d[f].data()), `${a.shape} ${f}`).toEqual(Array.from(await e[f].data()));
      c.tree.dispose([d, e]);
    }
    c.tree.dispose(mats);
  });

  it('zero and nearly-zero matrices: U and Vt orthonormal, S the exact top values', async () => {
    if (name === 'webgl') return; // random.normal is refused there (see above)
    // rank + oversample >= min(m, n): the sample spans the whole range, so S must equal the top
    // singular values to float32 accuracy (float64 reference) whatever the spectrum.
    for (const [m, n, k] of [[24, 16, 6], [16, 30, 6]]) {
      for (const f of nearlyZero(m, n, m * 100 + n)) {
        await expectExactTop(f, k, 5);
      }
    }
  });

  it('huge-valued matrices: S the exact top values (iterated scaled by a power of two, scaled back)', async () => {
    if (name === 'webgl') return; // random.normal is refused there (see above)
    // As above, rank + oversample >= min(m, n), so S must match the float64 reference to float32
    // accuracy; unscaled, A Aᵀ products of the 1e30 and 1e36 ones would overflow to Infinity.
    for (const [m, n, k] of [[24, 16, 6], [16, 30, 6]]) {
      for (const f of hugeValued(m, n, m * 100 + n)) {
        await expectExactTop(f, k, 6);
      }
    }
  });

  it('a non-finite input still on a device (made inside a job) is refused when the job runs', async () => {
    if (name === 'webgl') return; // random.normal is refused there (see above)
    const [m, n] = [40, 30];
    const g = withSpectrum('decaying', m, n, Array.from({ length: n }, (_, i) => 0.8 ** i), 90);
    const first = randomizedSvd(c.tensor(g.data, [m, n]), { rank: 3, key: c.random.key(1) });
    // U diag(Infinity, 1, 1) Vt: computed after the first job, so not on the host when the second
    // call starts (its up-front host check cannot see it; the job's own max|A| scan must).
    const a = c.matmul(c.mul(first.U, c.tensor([Infinity, 1, 1], [3])), first.Vt);
    expect(internal.hostValues(a), 'the product is still pending').toBeUndefined();
    const r = randomizedSvd(a, { rank: 3, key: c.random.key(2) });
    await expect(r.S.data()).rejects.toThrow(/randomizedSvd: input of shape \[40,30\] has a non-finite value \(NaN or Infinity\)/);
    c.tree.dispose([first, a, r]);
  });

  it('max|A| is taken over every value: a huge, infinite or NaN entry is seen in any round of the scan and in its tail', async () => {
    if (name === 'webgl') return; // random.normal is refused there (see above)
    // The scan (rsvd:absmax) gives each of 4096 cells every 4096th value, in full rounds and a
    // last partial one: 150 x 60 = 9000 values are two rounds and a tail of 808.
    const [m, n] = [150, 60];
    const g = withSpectrum('decaying', m, n, Array.from({ length: n }, (_, i) => 0.9 ** i), 91);
    for (const at of [100, 4096 + 100, 8192 + 100, m * n - 1]) {
      // One entry of 1e30: unless A is scaled first, A Aᵀ products overflow float32.
      const spiked = Float32Array.from(g.data);
      spiked[at] = 1e30;
      const a = c.tensor(spiked, [m, n]);
      const r = randomizedSvd(a, { rank: 2, key: c.random.key(7) });
      const s = await r.S.data();
      const ref = svdReference(spiked, m, n).S;
      expect(Math.abs(s[0] - ref[0]) / ref[0], `entry ${at}: S[0] = ${s[0]}, float64 ${ref[0]}`).toBeLessThanOrEqual(50 * Math.max(m, n) * EPS32);
      c.tree.dispose([a, r]);
      // An Infinity or a NaN there, in an A still pending when the call is made (the sum runs
      // after a job). NaN fails every comparison, so the scan's max alone would pass it by.
      for (const bad of [Infinity, NaN]) {
        const first = randomizedSvd(c.tensor(g.data, [m, n]), { rank: 2, key: c.random.key(8) });
        const spike = new Float32Array(m * n);
        spike[at] = bad;
        const b = c.add(c.matmul(c.mul(first.U, first.S), first.Vt), c.tensor(spike, [m, n]));
        expect(internal.hostValues(b), 'the sum is still pending').toBeUndefined();
        const rb = randomizedSvd(b, { rank: 2, key: c.random.key(9) });
        await expect(rb.S.data(), `${bad} at entry ${at}`).rejects.toThrow(/randomizedSvd: input of shape \[150,60\] has a non-finite value/);
        c.tree.dispose([first, b, rb]);
      }
    }
  });

  it('svd picks the method, truncates, and the helpers agree with it', async () => {
    const [m, n] = [12, 9];
    const sigma = Array.from({ length: n }, (_, i) => 2 / (i + 1));
    const f = withSpectrum('harmonic', m, n, sigma, 41);
    const a = c.tensor(f.data, [m, n]);
    const full = svd(a);
    expect(full.U.shape).toEqual([m, n]);
    const vals = await svdvals(a).data();
    for (let i = 0; i < n; i++) expect(Math.abs(vals[i] - sigma[i]) / sigma[0]).toBeLessThan(1e-5);
    const top = svd(a, { method: 'jacobi', rank: 3 });
    expect(top.U.shape).toEqual([m, 3]);
    expect(top.Vt.shape).toEqual([3, n]);
    // Eckart–Young: the best rank-3 approximation leaves exactly the tail.
    const l3 = await lowRank(a, 3, { method: 'jacobi' }).data();
    let err = 0;
    for (let i = 0; i < m * n; i++) err += (f.data[i] - l3[i]) ** 2;
    const tail = Math.sqrt(sigma.slice(3).reduce((acc, s) => acc + s * s, 0));
    expect(Math.abs(Math.sqrt(err) - tail) / tail).toBeLessThan(1e-4);
    const rec = await reconstructionError(a, full).data();
    expect(rec[0]).toBeLessThan(1e-5);
    expect(() => svd(a, { method: 'randomized' })).toThrow(/svd: the randomized method needs a rank/);
    expect(() => svd(a, { rank: 10 })).toThrow(/svd: rank must be an integer in \[1, 9\] for shape \[12,9\], got 10/);
    expect(() => svd(a, { method: 'qr' as never })).toThrow(/svd: unknown method "qr"/);
    c.tree.dispose([a, full, top]);
  });
});
