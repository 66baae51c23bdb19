/**
 * merge, adaptedLinear and mergeParams against float64 references, with hand-built adapters (no SVD).
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptedLinear, linear, lora, pissa, adalora, merge, mergeParams, preferMerged, type SorsaAdapter, type LoraAdapter } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, closeTo, mm, mmAbs, rand, scaleCols, tr } from './ref.js';

const [OUT, IN, R] = [5, 4, 3];
const Ud = rand(OUT * R, 1);
const Sd = rand(R, 2, 0.5, 2);
const Vd = rand(R * IN, 3);
const Wrd = rand(OUT * IN, 4);
const bd = rand(OUT, 5);

/** W = Wr + scale U diag(S) Vt in float64, with its rounding scale |Wr| + |scale| |U| |S| |Vt|. */
function mergedRef(scale: number): { W: Float64Array; mag: Float64Array } {
  const P = mm(scaleCols(Ud, Sd, OUT, R), Vd, OUT, R, IN);
  const Pm = mmAbs(scaleCols(Ud, Sd, OUT, R), Vd, OUT, R, IN);
  return { W: Float64Array.from(Wrd, (w, i) => w + scale * P[i]), mag: Float64Array.from(Wrd, (w, i) => Math.abs(w) + Math.abs(scale) * Pm[i]) };
}

const read = async (t: c.Tensor): Promise<number[]> => Array.from(await t.data());

forEachBackend('sorsa forward', () => {
  const sorsaAdapter = (scale?: number): SorsaAdapter => ({ U: c.tensor(Ud, [OUT, R]), S: c.tensor(Sd, [R]), Vt: c.tensor(Vd, [R, IN]), ...(scale === undefined ? {} : { scale }) });

  it('merge gives residual + scale U diag(S) Vt (scale from the adapter, overridden by the option)', async () => {
    const Wr = c.tensor(Wrd, [OUT, IN]);
    for (const [adapterScale, optScale, want] of [[undefined, undefined, 1], [0.5, undefined, 0.5], [0.5, 3, 3]] as const) {
      const a = sorsaAdapter(adapterScale);
      const W = merge(a, Wr, optScale === undefined ? {} : { scale: optScale });
      expect(W.shape).toEqual([OUT, IN]);
      const ref = mergedRef(want);
      expect(closeTo(await read(W), ref.W, (i) => 4 * (R + 2) * EPS32 * ref.mag[i], 'W')).toEqual([]);
      c.tree.dispose([a, W]);
    }
    Wr.dispose();
  });

  it('merge of a LoRA-form adapter gives residual + scale B A', async () => {
    const a: LoraAdapter = { A: c.tensor(Vd, [R, IN]), B: c.tensor(Float32Array.from(scaleCols(Ud, Sd, OUT, R)), [OUT, R]), scale: 0.5 };
    const Wr = c.tensor(Wrd, [OUT, IN]);
    const W = merge(a, Wr);
    const ref = mergedRef(0.5);
    expect(closeTo(await read(W), ref.W, (i) => 4 * (R + 3) * EPS32 * ref.mag[i], 'W')).toEqual([]);
    c.tree.dispose([a, Wr, W]);
  });

  it('adaptedLinear equals x Wᵀ + b of the merged weight, on the factored and on the merged path', async () => {
    // One token: factored; 2 x 3 tokens: merged (see preferMerged's flop counts).
    expect(preferMerged(1, OUT, IN, R)).toBe(false);
    expect(preferMerged(6, OUT, IN, R)).toBe(true);
    for (const xShape of [[1, IN], [IN], [2, 3, IN]]) {
      for (const kind of ['sorsa', 'lora'] as const) {
        const tokens = xShape.slice(0, -1).reduce((p, q) => p * q, 1);
        const xd = rand(tokens * IN, 7 + tokens);
        const x = c.tensor(xd, xShape);
        const a = kind === 'sorsa' ? sorsaAdapter(0.5) : { A: c.tensor(Vd, [R, IN]), B: c.tensor(Float32Array.from(scaleCols(Ud, Sd, OUT, R)), [OUT, R]), scale: 0.5 };
        const Wr = c.tensor(Wrd, [OUT, IN]);
        const b = c.tensor(bd, [OUT]);
        const y = adaptedLinear(a, Wr, x, { bias: b });
        expect(y.shape).toEqual([...xShape.slice(0, -1), OUT]);
        const ref = mergedRef(0.5);
        const want = mm(xd, tr(ref.W, OUT, IN), tokens, IN, OUT).map((v, i) => v + bd[i % OUT]);
        const mag = mm(Array.from(xd, Math.abs), tr(ref.mag, OUT, IN), tokens, IN, OUT).map((v, i) => v + Math.abs(bd[i % OUT]));
        expect(closeTo(await read(y), want, (i) => 4 * (IN + R + 4) * EPS32 * mag[i], `y (${kind}, x ${xShape})`)).toEqual([]);
        c.tree.dispose([x, a, Wr, b, y]);
      }
    }
  });

  it('adaptedLinear and merge leave no intermediates and do not consume their inputs', async () => {
    const a = sorsaAdapter();
    const Wr = c.tensor(Wrd, [OUT, IN]);
    const x = c.tensor(rand(IN, 9), [1, IN]);
    const before = c.memory().tensors;
    const y = adaptedLinear(a, Wr, x);
    const W = merge(a, Wr);
    expect(c.memory().tensors).toBe(before + 2);
    c.tree.dispose([y, W]);
    expect(await read(a.U)).toEqual(Array.from(Ud));
    c.tree.dispose([a, Wr, x]);
  });

  it('mergeParams rebuilds the params tree and is differentiable in the adapters', async () => {
    const Wr = c.tensor(Wrd, [OUT, IN]);
    const head = c.tensor(rand(6, 11), [2, 3]);
    const bias = c.tensor(bd, [OUT]);
    const frozen = { blocks: [{ wq: Wr, b: bias }], head, n: 3 };
    const trainable = { 'blocks.0.wq': sorsaAdapter() };
    const merged = mergeParams(trainable, frozen);
    expect(c.tree.leafPaths(merged)).toEqual(['blocks.0.wq', 'blocks.0.b', 'head', 'n']);
    expect(merged.n).toBe(3);
    const ref = mergedRef(1);
    expect(closeTo(await read(merged.blocks[0].wq), ref.W, (i) => 4 * (R + 2) * EPS32 * ref.mag[i], 'wq')).toEqual([]);
    // Pass-through leaves are new handles: disposing the result leaves frozen usable.
    expect(merged.head).not.toBe(head);
    c.tree.dispose(merged);
    expect(await read(head)).toEqual(Array.from(rand(6, 11)));

    // d/dadapter of sum(G * W): dU = G Vtᵀ diag(S), dS_k = Σ U_ik G_ij Vt_kj, dVt = diag(S) Uᵀ G.
    const Gd = rand(OUT * IN, 12);
    const G = c.tensor(Gd, [OUT, IN]);
    const g = c.grad((t: typeof trainable) => c.sum(c.mul(mergeParams(t, frozen).blocks[0].wq, G)))(trainable);
    const GV = mm(Gd, tr(Vd, R, IN), OUT, IN, R);
    const dU = scaleCols(GV, Sd, OUT, R);
    const dS = Float64Array.from({ length: R }, (_, k) => {
      let s = 0;
      for (let i = 0; i < OUT; i++) s += Ud[i * R + k] * GV[i * R + k];
      return s;
    });
    const UtG = mm(tr(Ud, OUT, R), Gd, R, OUT, IN);
    const dVt = UtG.map((v, p) => v * Sd[Math.floor(p / IN)]);
    const tol = 8 * (OUT + IN) * EPS32 * 4;
    expect(closeTo(await read(g['blocks.0.wq'].U as c.Tensor), dU, () => tol, 'dU')).toEqual([]);
    expect(closeTo(await read(g['blocks.0.wq'].S as c.Tensor), dS, () => tol, 'dS')).toEqual([]);
    expect(closeTo(await read(g['blocks.0.wq'].Vt as c.Tensor), dVt, () => tol, 'dVt')).toEqual([]);
    c.tree.dispose([g, G, trainable, frozen]);
  });

  it('errors name the function and the offending value', () => {
    const a = sorsaAdapter();
    const Wr = c.tensor(Wrd, [OUT, IN]);
    const wrong = c.zeros([IN, OUT]);
    expect(() => merge(a, wrong)).toThrow(/merge: residual must be \[5,4\].*got \[4,5\]/);
    expect(() => merge({ U: a.U } as never, Wr)).toThrow(/merge: adapter must be a SORSA adapter/);
    expect(() => merge({ ...a, S: c.zeros([2]) }, Wr)).toThrow(/merge: adapter.S must be \[3\]/);
    // linear is adaptedLinear's deprecated old name, in every namespace.
    expect([linear, lora.linear, pissa.linear, adalora.linear]).toEqual([adaptedLinear, adaptedLinear, adaptedLinear, adaptedLinear]);
    expect(() => adaptedLinear(a, Wr, c.zeros([2, 5]))).toThrow(/adaptedLinear: x must be \[\.\.\., 4\].*got \[2,5\]/);
    expect(() => adaptedLinear(a, Wr, c.zeros([2, 4]), { bias: c.zeros([4]) })).toThrow(/adaptedLinear: bias must be a Tensor \[5\]/);
    expect(() => mergeParams({ 'blocks.1.wq': a }, { blocks: [{ wq: Wr }] })).toThrow(/mergeParams: trainable path "blocks.1.wq" is not a leaf of frozen/);
    expect(() => mergeParams({ w: a }, { w: wrong })).toThrow(/mergeParams: frozen "w" must be \[5,4\]/);
    c.tree.dispose([a, Wr, wrong]);
  });
});
