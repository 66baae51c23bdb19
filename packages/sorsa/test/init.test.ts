/**
 * SVD-based initialization (SORSA and PiSSA) against float64 references: merge reproduces W, S are
 * the top singular values, linear equals x Wᵀ, and at initialization SORSA and PiSSA agree.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import { adaptParams, initAdapter, adaptedLinear, merge, mergeParams, orthoRegularizer, pissa, toLoRA, type SorsaAdapter, type LoraAdapter } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { withSpectrum } from '@sorsajs/testing';
import { EPS32, closeTo, mm, mmAbs, rand, scaleCols, singularValues, tr } from './ref.js';

const read = async (t: c.Tensor): Promise<number[]> => Array.from(await t.data());

/** |W| + |U| |S| |Vt| from the read-back factors: the scale of merge's two roundings. */
async function mergeScale(W: ArrayLike<number>, a: SorsaAdapter, m: number, r: number, n: number): Promise<Float64Array> {
  const P = mmAbs(scaleCols(await read(a.U), (await read(a.S)).map(Math.abs), m, r), await read(a.Vt), m, r, n);
  return Float64Array.from(W, (w, i) => Math.abs(w) + P[i]);
}

forEachBackend('sorsa initAdapter', (name) => {
  for (const [m, n, r] of [[8, 6, 3], [5, 9, 2], [6, 6, 6]]) {
    it(`SORSA [${m},${n}] rank ${r}: S is the top-r spectrum, merge gives W, linear gives x Wᵀ`, async () => {
      const Wd = rand(m * n, m * 100 + n);
      const W = c.tensor(Wd, [m, n]);
      const { adapter, residual } = initAdapter(W, { rank: r });
      expect(adapter.U.shape).toEqual([m, r]);
      expect(adapter.S.shape).toEqual([r]);
      expect(adapter.Vt.shape).toEqual([r, n]);
      expect(adapter.scale).toBeUndefined();
      expect(residual.shape).toEqual([m, n]);
      const sigma = singularValues(Wd, m, n);
      expect(closeTo(await read(adapter.S), sigma.slice(0, r), () => 32 * Math.max(m, n) * EPS32 * sigma[0], 'S')).toEqual([]);
      const scale = await mergeScale(Wd, adapter, m, r, n);
      const W2 = merge(adapter, residual);
      expect(closeTo(await read(W2), Wd, (i) => 4 * EPS32 * scale[i], 'merge(W)')).toEqual([]);
      // The residual holds the rest of the spectrum.
      const rest = singularValues(await read(residual), m, n);
      expect(closeTo(rest.slice(0, Math.min(m, n) - r), sigma.slice(r), () => 64 * Math.max(m, n) * EPS32 * sigma[0], 'residual spectrum')).toEqual([]);
      // Orthonormal factors: the regularizer is ~0.
      const reg = orthoRegularizer(adapter);
      expect((await reg.data())[0]).toBeLessThanOrEqual(64 * Math.max(m, n) * r * EPS32);
      for (const tokens of [1, 40]) {
        const xd = rand(tokens * n, tokens);
        const x = c.tensor(xd, [tokens, n]);
        const y = adaptedLinear(adapter, residual, x);
        const want = mm(xd, tr(Wd, m, n), tokens, n, m);
        const mag = mm(Array.from(xd, Math.abs), tr(scale, m, n), tokens, n, m);
        expect(closeTo(await read(y), want, (i) => 8 * (n + r + 4) * EPS32 * mag[i], `y (${tokens} tokens)`)).toEqual([]);
        c.tree.dispose([x, y]);
      }
      expect(W.isDisposed).toBe(false);
      c.tree.dispose([W, adapter, residual, W2, reg]);
    });
  }

  it('a zero weight: orthonormal factors (regularizer ~0), S = 0, residual 0, for the Jacobi and randomized SVDs', async () => {
    // Sizes on the Jacobi SVD's single-pair path (n <= 32) and past it, tall and wide.
    for (const [m, n, r] of [[10, 3, 2], [16, 16, 4], [64, 64, 8], [20, 40, 5]]) {
      for (const svd of ['jacobi', 'randomized'] as const) {
        if (svd === 'randomized' && name === 'webgl') continue; // random.normal is refused there
        const W = c.zeros([m, n]);
        const { adapter, residual } = initAdapter(W, { rank: r, svd });
        const reg = orthoRegularizer(adapter);
        expect((await reg.data())[0], `[${m},${n}] rank ${r}, ${svd}: regularizer`).toBeLessThanOrEqual(64 * Math.max(m, n) * r * EPS32);
        expect(Array.from(await adapter.S.data()), `[${m},${n}] ${svd}: S`).toEqual(new Array(r).fill(0));
        expect((await residual.data()).every((v) => v === 0), `[${m},${n}] ${svd}: residual`).toBe(true);
        c.tree.dispose([W, adapter, residual, reg]);
      }
    }
  });

  it('alpha sets scale = alpha / r and merge still gives W', async () => {
    const [m, n, r] = [7, 5, 2];
    const Wd = rand(m * n, 9);
    const W = c.tensor(Wd, [m, n]);
    const { adapter, residual } = initAdapter(W, { rank: r, alpha: 8 });
    expect(adapter.scale).toBe(4);
    const scale = await mergeScale(Wd, { ...adapter, S: c.mul(adapter.S, 4) }, m, r, n);
    const W2 = merge(adapter, residual);
    expect(closeTo(await read(W2), Wd, (i) => 4 * EPS32 * scale[i], 'merge(W)')).toEqual([]);
    c.tree.dispose([W, adapter, residual, W2]);
  });

  it('randomized SVD with power iterations finds a decaying spectrum; merge gives W', async () => {
    const [m, n, r] = [40, 30, 4];
    const sigma = Array.from({ length: 30 }, (_, k) => 2 ** -k);
    const Wd = Float32Array.from(withSpectrum(m, n, sigma, 5)); // Q1 diag(sigma) Q2ᵀ, rounded to float32
    const W = c.tensor(Wd, [m, n]);
    if (name === 'webgl') {
      // The Gaussian test matrix needs random.normal, which webgl refuses.
      expect(() => initAdapter(W, { rank: r, svd: 'randomized', powerIters: 4, key: c.random.key(1) })).toThrow(/normal: not available on webgl/);
      W.dispose();
      return;
    }
    const { adapter, residual } = initAdapter(W, { rank: r, svd: 'randomized', powerIters: 4, key: c.random.key(1) });
    expect(closeTo(await read(adapter.S), sigma.slice(0, r), () => 1e-4, 'S')).toEqual([]);
    const scale = await mergeScale(Wd, adapter, m, r, n);
    const W2 = merge(adapter, residual);
    expect(closeTo(await read(W2), Wd, (i) => 4 * EPS32 * scale[i], 'merge(W)')).toEqual([]);
    const p = pissa.initAdapter(W, { rank: r, svd: 'randomized', powerIters: 4, key: c.random.key(1) });
    const W3 = pissa.merge(p.adapter, p.residual);
    expect(closeTo(await read(W3), Wd, (i) => 8 * EPS32 * scale[i], 'pissa merge(W)')).toEqual([]);
    c.tree.dispose([W, adapter, residual, W2, p, W3]);
  });

  it('PiSSA: A = sqrt(S) Vt, B = U sqrt(S) (S / scale with alpha)', async () => {
    const [m, n, r] = [6, 8, 3];
    const W = c.tensor(rand(m * n, 21), [m, n]);
    const s = initAdapter(W, { rank: r });
    for (const alpha of [undefined, 6]) {
      const p = pissa.initAdapter(W, { rank: r, alpha });
      const scale = alpha === undefined ? 1 : alpha / r;
      expect(p.adapter.scale).toBe(alpha === undefined ? undefined : scale);
      const S = await read(s.adapter.S);
      const root = S.map((v) => Math.sqrt(v / scale));
      const U = await read(s.adapter.U);
      const Vt = await read(s.adapter.Vt);
      const tol = () => 64 * EPS32 * Math.max(1, ...root);
      expect(closeTo(await read(p.adapter.B), scaleCols(U, root, m, r), tol, 'B')).toEqual([]);
      expect(closeTo(await read(p.adapter.A), Vt.map((v, q) => v * root[Math.floor(q / n)]), tol, 'A')).toEqual([]);
      c.tree.dispose(p);
    }
    c.tree.dispose([W, s]);
  });

  it('property: merge after init is the identity, and SORSA and PiSSA of the same rank agree at init', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer(), async (m, n, r0, seed) => {
        const r = Math.min(r0, m, n);
        const Wd = rand(m * n, seed);
        const W = c.tensor(Wd, [m, n]);
        const s = initAdapter(W, { rank: r });
        const p = pissa.initAdapter(W, { rank: r });
        const xd = rand(2 * n, seed + 1);
        const x = c.tensor(xd, [2, n]);
        const [ws, wp, ys, yp] = [merge(s.adapter, s.residual), pissa.merge(p.adapter, p.residual), adaptedLinear(s.adapter, s.residual, x), pissa.adaptedLinear(p.adapter, p.residual, x)];
        const scale = await mergeScale(Wd, s.adapter, m, r, n);
        const [gs, gp] = [await read(ws), await read(wp)];
        expect(closeTo(gs, Wd, (i) => 4 * EPS32 * scale[i], 'SORSA merge')).toEqual([]);
        expect(closeTo(gp, gs, (i) => 16 * (r + 2) * EPS32 * scale[i], 'PiSSA vs SORSA merge')).toEqual([]);
        const mag = mm(Array.from(xd, Math.abs), tr(scale, m, n), 2, n, m);
        expect(closeTo(await read(yp), await read(ys), (i) => 16 * (n + r + 4) * EPS32 * mag[i], 'PiSSA vs SORSA forward')).toEqual([]);
        c.tree.dispose([W, s, p, x, ws, wp, ys, yp]);
      }),
      { numRuns: 12 },
    );
  });

  it('adaptParams (sorsa): adapters at the targets, residuals in frozen, mergeParams gives params back', async () => {
    const Wq = rand(6 * 5, 31);
    const params = { layers: [{ wq: c.tensor(Wq, [6, 5]), b: c.ones([6]) }], out: c.tensor(rand(8, 32), [2, 4]) };
    const { trainable, frozen } = await adaptParams(params, { rank: 2, targets: ['layers.0.wq'] });
    const a = trainable['layers.0.wq'] as SorsaAdapter;
    expect(closeTo(await read(a.S), singularValues(Wq, 6, 5).slice(0, 2), () => 256 * EPS32 * 4, 'S')).toEqual([]);
    const merged = mergeParams(trainable, frozen);
    const scale = await mergeScale(Wq, a, 6, 2, 5);
    expect(closeTo(await read(merged.layers[0].wq), Wq, (i) => 4 * EPS32 * scale[i], 'wq')).toEqual([]);
    expect(await read(merged.out)).toEqual(await read(params.out));
    // PiSSA through adaptParams: the same merged weight.
    const pi = await adaptParams(params, { rank: 2, targets: ['layers.0.wq'], method: 'pissa' });
    expect((pi.trainable['layers.0.wq'] as LoraAdapter).A.shape).toEqual([2, 5]);
    const mergedP = mergeParams(pi.trainable, pi.frozen);
    expect(closeTo(await read(mergedP.layers[0].wq), Wq, (i) => 16 * EPS32 * scale[i], 'pissa wq')).toEqual([]);
    c.tree.dispose([params, trainable, frozen, merged, pi, mergedP]);
  });
});

forEachBackend('sorsa toLoRA', () => {
  it('a trained SORSA or PiSSA adapter plus its initial value is a rank-2r LoRA on the untouched W', async () => {
    const [m, n, r] = [7, 6, 2];
    const Wd = rand(m * n, 41);
    const W = c.tensor(Wd, [m, n]);
    for (const kind of ['sorsa', 'pissa'] as const) {
      const init = kind === 'sorsa' ? initAdapter(W, { rank: r, alpha: 4 }) : pissa.initAdapter(W, { rank: r, alpha: 4 });
      // "Trained": every factor perturbed.
      const trained = c.tree.map((t) => (t instanceof c.Tensor ? c.add(t, c.tensor(rand(t.size, t.size), t.shape)) : t), init.adapter) as typeof init.adapter;
      const lo = toLoRA(trained, init.adapter);
      expect(lo.A.shape).toEqual([2 * r, n]);
      expect(lo.B.shape).toEqual([m, 2 * r]);
      expect(lo.scale).toBe(2);
      const want = await read(merge(trained, init.residual));
      const got = await read(merge(lo, W));
      const mag = Math.max(...want.map(Math.abs), ...Array.from(Wd, Math.abs));
      expect(closeTo(got, want, () => 64 * r * EPS32 * 4 * mag, `${kind} toLoRA`)).toEqual([]);
      c.tree.dispose([init, trained, lo]);
    }
    expect(() => toLoRA({ A: c.zeros([2, n]), B: c.zeros([m, 2]) }, { A: c.zeros([3, n]), B: c.zeros([m, 3]) })).toThrow(/toLoRA: initial must have the adapter's shapes/);
    c.tree.dispose(W);
  });
});
