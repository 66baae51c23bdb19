/**
 * The official PyTorch layout (key names, shapes, round trip through safetensors) and the paper's
 * drift measures against float64 references.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { drift, driftParams, fromOfficialStateDict, toOfficialStateDict } from '@sorsajs/sorsa';
import { forEachBackend } from '../../core/test/backends.js';
import { randomData } from '../../core/test/reference.js';
import { svdReference } from '../../linalg/test/svd-reference.js';


forEachBackend('sorsa interop and drift', () => {
  it('toOfficialStateDict writes the official key names and shapes; fromOfficialStateDict inverts it through safetensors', async () => {
    const [out, inp, r] = [6, 5, 2];
    const U = c.tensor(randomData(out * r, 1), [out, r]);
    const S = c.tensor([2, 1]);
    const Vt = c.tensor(randomData(r * inp, 2), [r, inp]);
    const residual = c.tensor(randomData(out * inp, 3), [out, inp]);
    const emb = c.tensor(randomData(12, 4), [4, 3]);
    const frozen = { blocks: [{ attn: { wq: residual } }], emb };
    const trainable = { 'blocks.0.attn.wq': { U, S, Vt } };
    const record = toOfficialStateDict(trainable, frozen);
    expect(Object.keys(record).sort()).toEqual(
      ['blocks.0.attn.wq.sorsa_A', 'blocks.0.attn.wq.sorsa_B', 'blocks.0.attn.wq.sorsa_S', 'blocks.0.attn.wq.weight', 'emb'].sort(),
    );
    expect(record['blocks.0.attn.wq.sorsa_A'].shape).toEqual([r, inp]);
    expect(record['blocks.0.attn.wq.sorsa_B'].shape).toEqual([out, r]);
    expect(record['blocks.0.attn.wq.sorsa_S'].shape).toEqual([r]);
    expect(record['blocks.0.attn.wq.weight'].shape).toEqual([out, inp]);
    const file = join(mkdtempSync(join(tmpdir(), 'sorsa-')), 'adapter.safetensors');
    await c.saveSafetensors(record, file);
    const loaded = await c.loadSafetensors(file);
    const back = fromOfficialStateDict(loaded);
    const f = back.frozen as { blocks: { attn: { wq: c.Tensor } }[]; emb: c.Tensor };
    expect(Array.isArray(f.blocks)).toBe(true);
    const a = back.trainable['blocks.0.attn.wq'];
    expect(Array.from(await a.U.data())).toEqual(Array.from(await U.data()));
    expect(Array.from(await a.S.data())).toEqual([2, 1]);
    expect(Array.from(await a.Vt.data())).toEqual(Array.from(await Vt.data()));
    expect(Array.from(await f.blocks[0].attn.wq.data())).toEqual(Array.from(await residual.data()));
    expect(Array.from(await f.emb.data())).toEqual(Array.from(await emb.data()));
    c.tree.dispose([record, loaded, back, U, S, Vt, residual, emb]);
  });

  it('bad layouts give clear errors', () => {
    const t = (shape: number[]) => c.zeros(shape);
    expect(() => fromOfficialStateDict({ 'l.sorsa_A': t([2, 3]), 'l.sorsa_B': t([4, 2]), 'l.sorsa_S': t([2]) })).toThrow(/fromOfficialStateDict: "l.sorsa_A" has no matching "l.weight"/);
    expect(() => fromOfficialStateDict({ 'l.sorsa_A': t([2, 3]), 'l.sorsa_B': t([4, 3]), 'l.sorsa_S': t([2]), 'l.weight': t([4, 3]) })).toThrow(/shapes at "l" do not fit/);
    expect(() => fromOfficialStateDict({ 'l.sorsa_B': t([4, 2]) })).toThrow(/"l.sorsa_B" has no matching sorsa_A/);
    expect(() => toOfficialStateDict({ x: { A: t([1, 2]), B: t([2, 1]) } }, { x: t([2, 2]) })).toThrow(/not a SORSA adapter/);
    expect(() => toOfficialStateDict({ y: { U: t([2, 1]), S: t([1]), Vt: t([1, 2]) } }, { x: t([2, 2]) })).toThrow(/no residual tensor at "y"/);
  });

  it('drift: ΔΣ and ΔD as the paper defines them, against float64 SVDs', async () => {
    const [m, n] = [8, 5];
    const w0 = randomData(m * n, 11);
    const wt = Float32Array.from(w0, (v, i) => v + 0.05 * Math.sin(i));
    const a = svdReference(w0, m, n);
    const b = svdReference(wt, m, n);
    let dS = 0;
    let dots = 0;
    for (let i = 0; i < n; i++) {
      dS += Math.abs(b.S[i] - a.S[i]);
      dots += Math.abs(b.U[i].reduce((acc, v, k) => acc + v * a.U[i][k], 0)) + Math.abs(b.V[i].reduce((acc, v, k) => acc + v * a.V[i][k], 0));
    }
    const want = { deltaSigma: dS / n, deltaD: 1 - (0.5 * dots) / n };
    const W0 = c.tensor(w0, [m, n]);
    const Wt = c.tensor(wt, [m, n]);
    const got = await drift(W0, Wt);
    expect(Math.abs(got.deltaSigma - want.deltaSigma)).toBeLessThan(1e-5);
    expect(Math.abs(got.deltaD - want.deltaD)).toBeLessThan(1e-4);
    const same = await drift(W0, W0);
    expect(same.deltaSigma).toBe(0);
    expect(Math.abs(same.deltaD)).toBeLessThan(1e-5);
    const per = await driftParams({ layer: { w: W0 }, b: c.zeros([3]) }, { layer: { w: Wt }, b: c.ones([3]) });
    expect(Object.keys(per)).toEqual(['layer.w']);
    expect(Math.abs(per['layer.w'].deltaSigma - want.deltaSigma)).toBeLessThan(1e-5);
    await expect(drift(W0, c.zeros([3, 3]))).rejects.toThrow(/drift: W0 \[8,5\] and Wt \[3,3\] differ in shape/);
    c.tree.dispose([W0, Wt]);
  });
});
