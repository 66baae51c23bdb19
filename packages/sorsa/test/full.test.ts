/**
 * Full fine-tuning through adaptParams({ method: 'full' }): the trainable tree holds the targeted
 * weights, and makeTrainStep (gamma 0) with AdamW equals plain AdamW on them, against the testing
 * kit's float64 PyTorch AdamW and the MSE gradient written here.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptParams, driftParams, makeTrainStep, mergeParams, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { adamwReference } from '@sorsajs/testing';
import { closeTo, mm, rand, tr } from './ref.js';

const [N, OUT, IN] = [5, 4, 3];
const data = { W: rand(OUT * IN, 11), b: rand(OUT, 12), X: rand(N * IN, 13), T: rand(N * OUT, 14), E: rand(6, 15) };
const hp = { lr: 0.01, weightDecay: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8 };

/** Gradient of mean((X Wᵀ + b − T)²) with respect to W, in float64. */
function gradW(W: Float64Array): Float64Array {
  const P = mm(data.X, tr(W, OUT, IN), N, IN, OUT).map((v, i) => v + data.b[i % OUT] - data.T[i]);
  return mm(tr(P, N, OUT), data.X, OUT, N, IN).map((v) => (2 * v) / (N * OUT));
}

/** `steps` steps of PyTorch's AdamW on W, in float64 (the testing kit's reference). */
function adamwRef(steps: number): Float64Array {
  const W = Float64Array.from(data.W);
  const opt = adamwReference(hp);
  for (let t = 0; t < steps; t++) opt.step([W], [gradW(W)]);
  return W;
}

type Params = { w: c.Tensor; b: c.Tensor; emb: c.Tensor };
const makeParams = (): Params => ({ w: c.tensor(data.W, [OUT, IN]), b: c.tensor(data.b, [OUT]), emb: c.tensor(data.E, [2, 3]) });

forEachBackend('full fine-tuning', () => {
  it('the trainable tree holds the targeted weights; frozen keeps every leaf', async () => {
    const params = makeParams();
    const { trainable, frozen } = await adaptParams(params, { method: 'full', targets: ['w'] });
    expect(Object.keys(trainable)).toEqual(['w']);
    expect(trainable.w).toBeInstanceOf(c.Tensor);
    expect(Array.from(await (trainable.w as c.Tensor).data())).toEqual(Array.from(data.W));
    expect(Array.from(await frozen.b.data())).toEqual(Array.from(data.b));
    const merged = mergeParams(trainable, frozen);
    expect(Array.from(await merged.w.data())).toEqual(Array.from(data.W));
    // The trainable entry is what mergeParams puts at its path, not the frozen leaf.
    const moved = { w: c.add(trainable.w as c.Tensor, 1) };
    const merged2 = mergeParams(moved, frozen);
    expect(Array.from(await merged2.w.data())).toEqual(Array.from(data.W, (v) => Math.fround(v + 1)));
    c.tree.dispose([params, trainable, frozen, merged, moved, merged2]);
  });

  it('two makeTrainStep steps (gamma 0) equal two steps of AdamW on the weight (float64 reference)', async () => {
    const params = makeParams();
    const { trainable, frozen } = await adaptParams(params, { method: 'full', targets: (p) => p === 'w' });
    const X = c.tensor(data.X, [N, IN]);
    const T = c.tensor(data.T, [N, OUT]);
    const { init, step } = makeTrainStep({
      loss: (t: Trainable, f: Params, [x, y]: [c.Tensor, c.Tensor]) => {
        const p = mergeParams(t, f);
        return c.nn.mse(c.nn.linear(x, p.w, p.b), y);
      },
      optimizer: c.optim.adamw(hp),
      gamma: 0,
    });
    let t: Trainable = trainable;
    let s = init(t);
    for (let k = 0; k < 2; k++) {
      const out = step(t, s, frozen, [X, T]);
      c.tree.dispose([t, s, out.metrics]);
      ({ trainable: t, optState: s } = out);
    }
    const got = await (t.w as c.Tensor).data();
    const want = adamwRef(2);
    // Each step moves W by about lr; float32 rounding of W (|W| < 1.1) and of the ratio m̂ / √v̂.
    expect(closeTo(got, want, () => 2e-6 + hp.lr * 1e-4, 'W after 2 steps')).toEqual([]);
    // The frozen tree still holds the pre-training weight.
    expect(Array.from(await frozen.w.data())).toEqual(Array.from(data.W));
    // driftParams takes the merged tree unchanged: the trained weight moved, the frozen one did not.
    const merged = mergeParams(t, frozen);
    const d = await driftParams(params, merged);
    expect(Object.keys(d).sort()).toEqual(['emb', 'w']);
    expect(d.w.deltaSigma).toBeGreaterThan(1e-4);
    expect(d.emb.deltaSigma).toBe(0);
    c.tree.dispose([params, t, s, frozen, X, T, merged]);
  });

  it('bad input is refused, naming the path', async () => {
    const params = { ...makeParams(), ids: c.tensor([1, 2], [2], 'int32') };
    await expect(adaptParams(params, { method: 'full', targets: ['ids'] })).rejects.toThrow(/target "ids" must be a float32 Tensor/);
    await expect(adaptParams(params, { method: 'fulll' as 'full', targets: ['w'] })).rejects.toThrow(/'full', got fulll/);
    const { trainable, frozen } = await adaptParams(params, { method: 'full', targets: ['w'] });
    expect(() => mergeParams({ w: c.zeros([IN, OUT]) }, frozen)).toThrow(/trainable weight "w" is \[3,4\]/);
    expect(() => mergeParams({ nope: c.zeros([1]) }, frozen)).toThrow(/trainable path "nope"/);
    c.tree.dispose([params, trainable, frozen]);
  });
});

