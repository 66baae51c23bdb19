/**
 * makeTrainStep against an independent float64 re-implementation of the official order (task
 * gradients -> clip_grad_norm_ -> + grad of (gamma / peakLr) * regularizer -> AdamW), on one
 * adapted linear layer with an MSE loss.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptedLinear, makeTrainStep, mergeParams, type SorsaAdapter, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { adamwReference } from '@sorsajs/testing';
import { EPS32, closeTo, frob, gramMinusI, mm, rand, scaleCols, tr } from './ref.js';

const [N, OUT, IN, R] = [6, 5, 4, 3];
const data = {
  U: rand(OUT * R, 1),
  S: rand(R, 2, 0.5, 2),
  Vt: rand(R * IN, 3),
  Wr: rand(OUT * IN, 4, -0.5, 0.5),
  b: rand(OUT, 5),
  X: rand(N * IN, 6),
  T: rand(N * OUT, 7),
};

interface P64 {
  U: Float64Array;
  S: Float64Array;
  Vt: Float64Array;
}
interface Opts {
  lr: number;
  weightDecay: number;
  gamma: number;
  peakLr: number;
  maxGradNorm?: number;
}

/** Loss and gradients of mean((X Wᵀ + b − T)²), W = Wr + U diag(S) Vt, in float64. */
function taskRef(p: P64): { loss: number; g: P64 } {
  const W = mm(scaleCols(p.U, p.S, OUT, R), p.Vt, OUT, R, IN).map((v, i) => v + data.Wr[i]);
  const P = mm(data.X, tr(W, OUT, IN), N, IN, OUT).map((v, i) => v + data.b[i % OUT]);
  const D = P.map((v, i) => v - data.T[i]);
  const loss = D.reduce((s, v) => s + v * v, 0) / (N * OUT);
  const dP = D.map((v) => (2 * v) / (N * OUT));
  const dW = mm(tr(dP, N, OUT), data.X, OUT, N, IN);
  const dWV = mm(dW, tr(p.Vt, R, IN), OUT, IN, R);
  const U = scaleCols(dWV, p.S, OUT, R);
  const S = Float64Array.from({ length: R }, (_, k) => {
    let s = 0;
    for (let i = 0; i < OUT; i++) s += p.U[i * R + k] * dWV[i * R + k];
    return s;
  });
  const Vt = mm(tr(p.U, OUT, R), dW, R, OUT, IN).map((v, q) => v * p.S[Math.floor(q / IN)]);
  return { loss, g: { U, S, Vt } };
}

/** The regularizer (L = 1) and its gradient: d/dU = U E / ‖E‖, d/dVt = F Vt / ‖F‖ (E, F the Gram matrices minus I). */
function regRef(p: P64): { value: number; g: P64 } {
  const E = gramMinusI(p.U, OUT, R, true);
  const F = gramMinusI(p.Vt, R, IN, false);
  const [ne, nf] = [frob(E), frob(F)];
  return {
    value: (ne + nf) / 2,
    g: { U: mm(p.U, E, OUT, R, R).map((v) => v / ne), S: new Float64Array(R), Vt: mm(F, p.Vt, R, R, IN).map((v) => v / nf) },
  };
}

/**
 * `steps` official steps with PyTorch's AdamW (the testing kit's float64 reference; b1 0.9, b2 0.999,
 * eps 1e-8). `skipped` earlier steps were skipped: they left the parameters and moments alone but
 * advanced the update count.
 */
function trainRef(o: Opts, steps: number, skipped = 0): { p: P64; metrics: { loss: number; reg: number; norm: number }[] } {
  const keys = ['U', 'S', 'Vt'] as const;
  const p: P64 = { U: Float64Array.from(data.U), S: Float64Array.from(data.S), Vt: Float64Array.from(data.Vt) };
  const adamw = adamwReference({ lr: o.lr, weightDecay: o.weightDecay });
  for (let t = 0; t < skipped; t++) adamw.skip();
  const metrics = [];
  for (let t = 0; t < steps; t++) {
    const { loss, g } = taskRef(p);
    const norm = Math.sqrt(keys.reduce((s, k) => s + g[k].reduce((a, x) => a + x * x, 0), 0));
    if (o.maxGradNorm !== undefined) {
      const coef = Math.min(1, o.maxGradNorm / (norm + 1e-6));
      for (const k of keys) g[k] = g[k].map((x) => x * coef);
    }
    const reg = regRef(p);
    if (o.gamma > 0) for (const k of keys) g[k] = g[k].map((x, i) => x + (o.gamma / o.peakLr) * reg.g[k][i]);
    metrics.push({ loss, reg: reg.value, norm });
    adamw.step(keys.map((k) => p[k]), keys.map((k) => g[k]));
  }
  return { p, metrics };
}

const read = async (t: c.Tensor): Promise<number[]> => Array.from(await t.data());

forEachBackend('sorsa makeTrainStep', () => {
  type Frozen = { w: c.Tensor; b: c.Tensor };
  type Batch = [c.Tensor, c.Tensor];
  const setup = (): { trainable: Trainable; frozen: Frozen; batch: Batch } => ({
    trainable: { w: { U: c.tensor(data.U, [OUT, R]), S: c.tensor(data.S, [R]), Vt: c.tensor(data.Vt, [R, IN]) } },
    frozen: { w: c.tensor(data.Wr, [OUT, IN]), b: c.tensor(data.b, [OUT]) },
    batch: [c.tensor(data.X, [N, IN]), c.tensor(data.T, [N, OUT])],
  });
  // Model code for plain weights, through mergeParams; and the factored forward.
  const viaMerge = (t: Trainable, f: Frozen, [x, y]: Batch): c.Tensor => {
    const p = mergeParams(t, f);
    return c.nn.mse(c.nn.linear(x, p.w, p.b), y);
  };
  const viaLinear = (t: Trainable, f: Frozen, [x, y]: Batch): c.Tensor => c.nn.mse(adaptedLinear(t.w as SorsaAdapter, f.w, x, { bias: f.b }), y);

  const configs: [string, Opts, typeof viaMerge][] = [
    ['clipped, regularized, weight decay', { lr: 1e-2, weightDecay: 0.01, gamma: 4e-4, peakLr: 1e-2, maxGradNorm: 0.1 }, viaMerge],
    ['unclipped, regularized, factored forward', { lr: 1e-2, weightDecay: 0, gamma: 4e-4, peakLr: 2e-3 }, viaLinear],
    ['no regularizer (gamma 0), loose clip', { lr: 3e-3, weightDecay: 0, gamma: 0, peakLr: 3e-3, maxGradNorm: 100 }, viaMerge],
  ];
  for (const [name, o, loss] of configs) {
    for (const steps of [1, 5]) {
      it(`${steps} step(s) match float64: ${name}`, async () => {
        const { trainable, frozen, batch } = setup();
        const { init, step } = makeTrainStep({ loss, optimizer: c.optim.adamw({ lr: o.lr, weightDecay: o.weightDecay }), gamma: o.gamma, peakLr: o.peakLr, maxGradNorm: o.maxGradNorm });
        let t = trainable;
        let s = init(t);
        const got: { loss: number; reg: number; norm: number }[] = [];
        for (let i = 0; i < steps; i++) {
          const out = step(t, s, frozen, batch);
          got.push({ loss: (await out.metrics.loss.data())[0], reg: (await out.metrics.regularizer.data())[0], norm: (await out.metrics.gradNorm.data())[0] });
          c.tree.dispose(out.metrics);
          if (t !== trainable) c.tree.dispose([t, s]);
          t = out.trainable;
          s = out.optState;
        }
        const ref = trainRef(o, steps);
        for (let i = 0; i < steps; i++) {
          const [g, w] = [got[i], ref.metrics[i]];
          expect(Math.abs(g.loss - w.loss), `loss at step ${i}`).toBeLessThanOrEqual(1e-5 * (1 + w.loss));
          expect(Math.abs(g.reg - w.reg), `regularizer at step ${i}`).toBeLessThanOrEqual(1e-5 * (1 + w.reg));
          expect(Math.abs(g.norm - w.norm), `gradNorm at step ${i}`).toBeLessThanOrEqual(1e-5 * (1 + w.norm));
        }
        // Adam moves each parameter by about lr per step; float32 errors stay far below that.
        const a = t.w as SorsaAdapter;
        for (const k of ['U', 'S', 'Vt'] as const) {
          const want = ref.p[k];
          expect(closeTo(await read(a[k]), want, (i) => 64 * steps * EPS32 * (1 + Math.abs(want[i])), `${k} after ${steps} step(s)`)).toEqual([]);
        }
        c.tree.dispose([t, s, trainable, frozen, batch]);
      });
    }
  }

  it('returnGrads: the gradients given to the optimizer (clipped task + (gamma / peakLr) regularizer) against float64', async () => {
    const o: Opts = { lr: 1e-2, weightDecay: 0, gamma: 4e-4, peakLr: 2e-3, maxGradNorm: 0.1 };
    const { trainable, frozen, batch } = setup();
    const { init, step } = makeTrainStep({ loss: viaMerge, optimizer: c.optim.adamw({ lr: o.lr, weightDecay: 0 }), gamma: o.gamma, peakLr: o.peakLr, maxGradNorm: o.maxGradNorm, returnGrads: true });
    const s = init(trainable);
    const out = step(trainable, s, frozen, batch);
    const p: P64 = { U: Float64Array.from(data.U), S: Float64Array.from(data.S), Vt: Float64Array.from(data.Vt) };
    const { g } = taskRef(p);
    const norm = Math.sqrt((['U', 'S', 'Vt'] as const).reduce((acc, k) => acc + g[k].reduce((a, x) => a + x * x, 0), 0));
    const coef = Math.min(1, o.maxGradNorm! / (norm + 1e-6));
    const reg = regRef(p);
    const got = out.grads!.w as SorsaAdapter;
    for (const k of ['U', 'S', 'Vt'] as const) {
      const want = g[k].map((x, i) => x * coef + (o.gamma / o.peakLr) * reg.g[k][i]);
      expect(closeTo(await read(got[k]), want, () => 1e-6, `grad ${k}`)).toEqual([]);
    }
    // Without the option there is no grads field.
    const plain = makeTrainStep({ loss: viaMerge, optimizer: c.optim.adamw({ lr: o.lr, weightDecay: 0 }), gamma: 0 }).step(trainable, s, frozen, batch);
    expect(plain.grads).toBeUndefined();
    c.tree.dispose([out, plain, s, trainable, frozen, batch]);
  });

  it('is pure: inputs are neither mutated nor disposed, and memory() stays flat over a loop', async () => {
    const { trainable, frozen, batch } = setup();
    const { init, step } = makeTrainStep({ loss: viaMerge, optimizer: c.optim.chain(c.optim.adamw({ lr: 1e-2 })), gamma: 4e-4, peakLr: 1e-2, maxGradNorm: 1 });
    const s0 = init(trainable);
    const first = step(trainable, s0, frozen, batch);
    for (const x of [...c.tree.leaves(trainable), ...c.tree.leaves(frozen), ...batch]) expect((x as c.Tensor).isDisposed).toBe(false);
    expect(await read((trainable.w as SorsaAdapter).U)).toEqual(Array.from(data.U));
    expect(first.trainable.w).not.toBe(trainable.w);
    for (const m of Object.values(first.metrics)) expect(m.shape).toEqual([]);
    c.tree.dispose(first.metrics);
    let t = first.trainable;
    let s = first.optState;
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const out = step(t, s, frozen, batch);
      c.tree.dispose([t, s, out.metrics]);
      t = out.trainable;
      s = out.optState;
      await (t.w as SorsaAdapter).U.data();
      counts.push(c.memory().tensors);
    }
    expect(new Set(counts).size, `live tensors per step: ${counts.join(', ')}`).toBe(1);
    c.tree.dispose([t, s, s0, trainable, frozen, batch]);
  });

  describe('skipNonFinite', () => {
    const o: Opts = { lr: 1e-2, weightDecay: 0.01, gamma: 4e-4, peakLr: 1e-2, maxGradNorm: 0.1 };
    const make = (skipNonFinite: boolean, loss = viaMerge) =>
      makeTrainStep({ loss, optimizer: c.optim.adamw({ lr: o.lr, weightDecay: o.weightDecay }), gamma: o.gamma, peakLr: o.peakLr, maxGradNorm: o.maxGradNorm, skipNonFinite });
    const nanBatch = (): Batch => {
      const T = Float32Array.from(data.T);
      T[3] = NaN;
      return [c.tensor(data.X, [N, IN]), c.tensor(T, [N, OUT])];
    };
    const expectSkipped = async (out: { trainable: Trainable; optState: c.optim.AdamState; metrics: { skipped?: c.Tensor } }): Promise<void> => {
      expect(await read(out.metrics.skipped!)).toEqual([1]);
      const a = out.trainable.w as SorsaAdapter;
      expect(await read(a.U)).toEqual(Array.from(data.U));
      expect(await read(a.S)).toEqual(Array.from(data.S));
      expect(await read(a.Vt)).toEqual(Array.from(data.Vt));
      // The moments are still the initial zeros; the host count moved on.
      for (const m of [...c.tree.leaves(out.optState.mu), ...c.tree.leaves(out.optState.nu)]) {
        expect((await read(m as c.Tensor)).every((v) => v === 0)).toBe(true);
      }
      expect(out.optState.count).toBe(1);
    };

    it('a NaN loss: keeps the inputs, reports skipped = 1, and training goes on (float64 reference)', async () => {
      const { trainable, frozen, batch } = setup();
      const bad = nanBatch();
      const { init, step } = make(true);
      const s0 = init(trainable);
      const out = step(trainable, s0, frozen, bad);
      expect(Number.isNaN((await read(out.metrics.loss))[0])).toBe(true);
      await expectSkipped(out);
      // The next, finite step is the official step 1 taken with the update count at 2.
      const next = step(out.trainable, out.optState, frozen, batch);
      expect(await read(next.metrics.skipped!)).toEqual([0]);
      const ref = trainRef(o, 1, 1);
      const a = next.trainable.w as SorsaAdapter;
      for (const k of ['U', 'S', 'Vt'] as const) {
        const want = ref.p[k];
        expect(closeTo(await read(a[k]), want, (i) => 64 * EPS32 * (1 + Math.abs(want[i])), `${k} after a skipped and a finite step`)).toEqual([]);
      }
      c.tree.dispose([out, next, s0, trainable, frozen, batch, bad]);
    });

    it('a finite loss with NaN gradients is skipped too', async () => {
      const { trainable, frozen, batch } = setup();
      // sqrt(S - S) adds 0 to the loss, but its derivative at 0 is 1 / 0 times 0: NaN.
      const nanGrad = (t: Trainable, f: Frozen, b: Batch): c.Tensor => c.add(viaMerge(t, f, b), c.sum(c.sqrt(c.sub((t.w as SorsaAdapter).S, (t.w as SorsaAdapter).S))));
      const { init, step } = make(true, nanGrad);
      const s0 = init(trainable);
      const out = step(trainable, s0, frozen, batch);
      expect(Number.isFinite((await read(out.metrics.loss))[0])).toBe(true);
      expect(Number.isFinite((await read(out.metrics.gradNorm))[0])).toBe(false);
      await expectSkipped(out);
      c.tree.dispose([out, s0, trainable, frozen, batch]);
    });

    it('a finite step is the plain step, with skipped = 0; without the option a NaN spreads', async () => {
      const { trainable, frozen, batch } = setup();
      const [on, off] = [make(true), make(false)];
      const s0 = on.init(trainable);
      const a = on.step(trainable, s0, frozen, batch);
      const b = off.step(trainable, s0, frozen, batch);
      expect(await read(a.metrics.skipped!)).toEqual([0]);
      expect(b.metrics.skipped).toBeUndefined();
      for (const k of ['U', 'S', 'Vt'] as const) expect(await read((a.trainable.w as SorsaAdapter)[k])).toEqual(await read((b.trainable.w as SorsaAdapter)[k]));
      const bad = nanBatch();
      const spread = off.step(trainable, s0, frozen, bad);
      expect((await read((spread.trainable.w as SorsaAdapter).U)).some(Number.isNaN)).toBe(true);
      c.tree.dispose([a, b, spread, s0, trainable, frozen, batch, bad]);
    });
  });

  it('rejects bad options, naming the option and value', () => {
    const optimizer = c.optim.adamw({ lr: 1e-3 });
    const loss = (): c.Tensor => c.zeros([]);
    expect(() => makeTrainStep({ loss, optimizer, gamma: 4e-4 })).toThrow(/makeTrainStep: peakLr must be a positive finite number when gamma > 0, got undefined/);
    expect(() => makeTrainStep({ loss, optimizer, gamma: -1, peakLr: 1 })).toThrow(/makeTrainStep: gamma must be a finite number >= 0, got -1/);
    expect(() => makeTrainStep({ loss, optimizer, gamma: 0, maxGradNorm: 0 })).toThrow(/makeTrainStep: maxGradNorm must be a positive finite number, got 0/);
    expect(() => makeTrainStep({ loss: 3 as never, optimizer, gamma: 0 })).toThrow(/makeTrainStep: loss must be a function/);
    expect(() => makeTrainStep({ loss, optimizer, gamma: 0, skipNonFinite: 1 as never })).toThrow(/makeTrainStep: skipNonFinite must be a boolean, got 1/);
  });
});
