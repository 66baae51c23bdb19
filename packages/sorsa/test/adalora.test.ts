/**
 * AdaLoRA against float64 references written here: forward and merge, the orthogonal regularizer's
 * value and gradient, the budget schedule over every step of a run, masking of a crafted score
 * state, the importance EMAs over a few steps, and (fast-check) that masking never leaves more
 * nonzero E entries than the budget.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import { adalora, adaptParams, makeTrainStep, mergeParams, type AdaloraAdapter, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, closeTo, frob, mm, rand, tr } from './ref.js';

const [OUT, IN, R] = [5, 4, 3];

/** B diag(E) A · s + W in float64. */
function mergeRef(A: ArrayLike<number>, E: ArrayLike<number>, B: ArrayLike<number>, W: ArrayLike<number>, s: number, out: number, r: number, inp: number): Float64Array {
  const BE = Float64Array.from({ length: out * r }, (_, q) => B[q] * E[q % r]);
  return mm(BE, A, out, r, inp).map((v, i) => W[i] + s * v);
}

const tensorsOf = (seed: number, out = OUT, r = R, inp = IN): { A: Float32Array; E: Float32Array; B: Float32Array } => ({
  A: rand(r * inp, seed),
  E: rand(r, seed + 1, 0.5, 2),
  B: rand(out * r, seed + 2),
});

/** PEFT's budget schedule, in plain JS. */
function budgetRef(step: number, init: number, target: number, tinit: number, tfinal: number, total: number, deltaT: number): [number, boolean] {
  if (step <= tinit) return [init, false];
  if (step > total - tfinal) return [target, true];
  const m = 1 - (step - tinit) / (total - tfinal - tinit);
  return [Math.floor((init - target) * m ** 3 + target), step % deltaT === 0];
}

it('budget: every step of a run matches PEFT\'s schedule; bad options refused', () => {
  const o = { initBudget: 36, targetBudget: 16, tinit: 7, tfinal: 9, totalSteps: 60, deltaT: 3 };
  for (let step = 0; step <= o.totalSteps + 2; step++) {
    const [b, m] = budgetRef(step, o.initBudget, o.targetBudget, o.tinit, o.tfinal, o.totalSteps, o.deltaT);
    expect(adalora.budget(step, o), `step ${step}`).toEqual({ budget: b, mask: m });
  }
  expect(() => adalora.budget(1.5, o)).toThrow(/step must be an integer >= 0, got 1.5/);
  expect(() => adalora.budget(0, { ...o, tinit: 51 })).toThrow(/tinit \(51\) must be below totalSteps - tfinal/);
  expect(() => adalora.budget(0, { ...o, targetBudget: 40 })).toThrow(/targetBudget \(40\) must not exceed initBudget \(36\)/);
  expect(() => adalora.budget(0, { ...o, deltaT: 0 })).toThrow(/deltaT must be >= 1/);
});

forEachBackend('adalora', (name) => {
  it('initAdapter: E = 0, A and B ~ N(0, 0.02²), the merged weight is W; scale as PEFT', async () => {
    const W = c.tensor(rand(OUT * IN, 1), [OUT, IN]);
    if (name === 'webgl') {
      // A and B are drawn with random.normal, which webgl refuses (as LoRA's initialization).
      expect(() => adalora.initAdapter(W, { rank: R, key: c.random.key(3) })).toThrow(/normal: not available on webgl/);
      W.dispose();
      return;
    }
    const { adapter, residual } = adalora.initAdapter(W, { rank: R, key: c.random.key(3) });
    expect(adapter.A.shape).toEqual([R, IN]);
    expect(adapter.E.shape).toEqual([R, 1]);
    expect(adapter.B.shape).toEqual([OUT, R]);
    expect(Array.from(await adapter.E.data())).toEqual([0, 0, 0]);
    const ab = [...(await adapter.A.data()), ...(await adapter.B.data())];
    expect(Math.max(...ab.map(Math.abs))).toBeLessThan(0.02 * 6);
    expect(Math.max(...ab.map(Math.abs))).toBeGreaterThan(0.002);
    expect(adapter.scale).toBe(R / (R + 1e-5));
    expect(adalora.initAdapter(W, { rank: R, alpha: 32, key: c.random.key(3) }).adapter.scale).toBe(32 / (R + 1e-5));
    const M = adalora.merge(adapter, residual);
    expect(Array.from(await M.data())).toEqual(Array.from(await W.data()));
    expect(() => adalora.initAdapter(W, { rank: 9, key: c.random.key(0) })).toThrow(/rank must be an integer in \[1, 4\]/);
    c.tree.dispose([W, adapter, residual, M]);
  });

  it("adaptParams({ method: 'adalora' }): adapters { A, E, B } on the untouched weights", async (ctx) => {
    if (name === 'webgl') ctx.skip("SKIPPED on webgl: AdaLoRA's initialization draws random.normal, which webgl refuses (tested above)");
    const params = { a: { weight: c.tensor(rand(OUT * IN, 2), [OUT, IN]) }, b: c.tensor([1, 2], [2]) };
    const { trainable, frozen } = await adaptParams(params, { method: 'adalora', rank: 2, alpha: 8, targets: ['a.weight'], key: c.random.key(1) });
    const a = trainable['a.weight'] as AdaloraAdapter;
    expect(adalora.findAdapters(trainable).map((f) => f.path)).toEqual(['a.weight']);
    expect([a.A.shape, a.E.shape, a.B.shape]).toEqual([[2, IN], [2, 1], [OUT, 2]]);
    expect(a.scale).toBe(8 / (2 + 1e-5));
    expect(Array.from(await frozen.a.weight.data())).toEqual(Array.from(await params.a.weight.data()));
    await expect(adaptParams(params, { method: 'adalora', rank: 2, targets: ['a.weight'] })).rejects.toThrow(/method 'adalora' needs a key/);
    c.tree.dispose([params, trainable, frozen]);
  });

  it('merge and linear (factored and merged paths) against float64', async () => {
    const d = tensorsOf(10);
    const W = rand(OUT * IN, 13);
    const s = adalora.scaleFor(R, 7);
    const adapter: AdaloraAdapter = { A: c.tensor(d.A, [R, IN]), E: c.tensor(d.E, [R, 1]), B: c.tensor(d.B, [OUT, R]), scale: s };
    const Wt = c.tensor(W, [OUT, IN]);
    const want = mergeRef(d.A, d.E, d.B, W, s, OUT, R, IN);
    const tol = (): number => 32 * R * EPS32 * 8;
    expect(closeTo(await adalora.merge(adapter, Wt).data(), want, tol, 'merge')).toEqual([]);
    for (const tokens of [2, 8]) {
      const x = rand(tokens * IN, 20 + tokens);
      const y = mm(x, tr(want, OUT, IN), tokens, IN, OUT);
      const got = await adalora.linear(adapter, Wt, c.tensor(x, [tokens, IN])).data();
      expect(closeTo(got, y, () => 64 * R * EPS32 * 16, `linear, ${tokens} tokens`)).toEqual([]);
    }
    // mergeParams takes AdaLoRA adapters like any other.
    const merged = mergeParams({ w: adapter }, { w: Wt });
    expect(closeTo(await merged.w.data(), want, tol, 'mergeParams')).toEqual([]);
    expect(() => adalora.merge({ ...adapter, E: c.zeros([R]) }, Wt)).toThrow(/adapter\.E must be \[3, 1\]/);
    c.tree.dispose([adapter, Wt, merged]);
  });

  it('orthRegularizer: value and gradient against float64', async () => {
    const shapes = [
      [OUT, R, IN],
      [3, 2, 6],
    ] as const;
    const data = shapes.map(([o, r, i], k) => tensorsOf(30 + 5 * k, o, r, i));
    const t: Trainable = {};
    shapes.forEach(([o, r, i], k) => {
      t[`l${k}`] = { A: c.tensor(data[k].A, [r, i]), E: c.tensor(data[k].E, [r, 1]), B: c.tensor(data[k].B, [o, r]), scale: 1 };
    });
    // M = A Aᵀ − I [r,r], N = Bᵀ B − I [r,r]; value = mean of ‖M‖, ‖N‖; d‖M‖/dA = 2 M A / ‖M‖, d‖N‖/dB = 2 B N / ‖N‖.
    let value = 0;
    const gA: Float64Array[] = [];
    const gB: Float64Array[] = [];
    const L = shapes.length;
    shapes.forEach(([o, r, i], k) => {
      const { A, B } = data[k];
      const M = mm(A, tr(A, r, i), r, i, r);
      const N = mm(tr(B, o, r), B, r, o, r);
      for (let q = 0; q < r; q++) [M[q * r + q], N[q * r + q]] = [M[q * r + q] - 1, N[q * r + q] - 1];
      const [nm, nn] = [frob(M), frob(N)];
      value += (nm + nn) / (2 * L);
      gA.push(mm(M, A, r, r, i).map((v) => (2 * v) / nm / (2 * L)));
      gB.push(mm(B, N, o, r, r).map((v) => (2 * v) / nn / (2 * L)));
    });
    const [v, g] = c.valueAndGrad((x: Trainable) => adalora.orthRegularizer(x))(t);
    expect(Math.abs((await v.data())[0] - value)).toBeLessThan(64 * EPS32 * value + 1e-6);
    for (let k = 0; k < L; k++) {
      const gk = g[`l${k}`] as AdaloraAdapter;
      expect(closeTo(await gk.A.data(), gA[k], () => 1e-5, `dA ${k}`)).toEqual([]);
      expect(closeTo(await gk.B.data(), gB[k], () => 1e-5, `dB ${k}`)).toEqual([]);
    }
    expect((await adalora.orthRegularizer({}).data())[0]).toBe(0);
    c.tree.dispose([t, v, g]);
  });

  /** A crafted state: two adapters (ranks 3 and 2); ipt ⊙ unc chosen so the triplet scores are known. */
  const crafted = (sE: number[][]): { t: Record<string, AdaloraAdapter>; state: adalora.AllocatorState; scores: number[] } => {
    const rs = [3, 2];
    const t: Record<string, AdaloraAdapter> = {};
    const ipt: Record<string, adalora.Scores> = {};
    const unc: Record<string, adalora.Scores> = {};
    const pattern: Record<string, c.Tensor> = {};
    const scores: number[] = [];
    rs.forEach((r, k) => {
      const p = `m${k}.weight`;
      t[p] = { A: c.tensor(rand(r * IN, 50 + k), [r, IN]), E: c.tensor(rand(r, 60 + k, 1, 2), [r, 1]), B: c.tensor(rand(OUT * r, 70 + k), [OUT, r]), scale: 1 };
      // Ī = 2 everywhere; Ū chosen so that s(E_i) = sE[k][i], and s(A_ij) = s(B_ki) = 0.25 (means add 0.5).
      ipt[p] = { A: c.full([r, IN], 2), E: c.full([r, 1], 2), B: c.full([OUT, r], 2) };
      unc[p] = { A: c.full([r, IN], 0.125), E: c.tensor(sE[k].map((s) => s / 2), [r, 1]), B: c.full([OUT, r], 0.125) };
      pattern[p] = c.full([r], 1);
      for (const s of sE[k]) scores.push(s + 0.5);
    });
    return { t, state: { ipt, unc, pattern }, scores };
  };

  it('maskToBudget zeroes the lowest-scoring triplets and only those (ties included)', async () => {
    const { t, state, scores } = crafted([
      [0.9, 0.1, 0.5],
      [0.3, 0.7],
    ]);
    for (const b of [5, 4, 3, 1, 0]) {
      const k = 5 - b;
      const sorted = [...scores].sort((x, y) => x - y);
      const thr = k > 0 ? sorted[k - 1] : -Infinity;
      const { trainable, pattern } = adalora.maskToBudget(t, state, b);
      let idx = 0;
      for (const p of Object.keys(t)) {
        const E0 = await t[p].E.data();
        const E1 = await trainable[p].E.data();
        const pat = await pattern[p].data();
        for (let i = 0; i < E0.length; i++, idx++) {
          const pruned = scores[idx] <= thr;
          expect(E1[i], `budget ${b}, ${p} triplet ${i}`).toBe(pruned ? 0 : E0[i]);
          expect(pat[i]).toBe(pruned ? 0 : 1);
        }
      }
      c.tree.dispose([trainable, pattern]);
    }
    // Ties: two triplets at the threshold are both pruned.
    const tie = crafted([
      [0.2, 0.2, 0.9],
      [0.8, 0.7],
    ]);
    const m = adalora.maskToBudget(tie.t, tie.state, 4);
    expect(Array.from(await m.pattern['m0.weight'].data())).toEqual([0, 0, 1]);
    expect(Array.from(await m.pattern['m1.weight'].data())).toEqual([1, 1]);
    expect(() => adalora.maskToBudget(t, { ...state, ipt: {} }, 3)).toThrow(/state\.ipt has no \{ A, E, B \} tensors at "m0\.weight"/);
    expect(() => adalora.maskToBudget(t, state, -1)).toThrow(/budget must be an integer >= 0, got -1/);
    c.tree.dispose([t, state, tie.t, tie.state, m]);
  });

  it('fast-check: after masking, the nonzero E entries never exceed the budget', async () => {
    const rs = [3, 4];
    const n = rs.reduce((s, r) => s + r, 0);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.float({ min: 0, max: 4, noNaN: true }), { minLength: n, maxLength: n }), fc.integer({ min: 0, max: n }), async (vals, b) => {
        const t: Record<string, AdaloraAdapter> = {};
        const ipt: Record<string, adalora.Scores> = {};
        const unc: Record<string, adalora.Scores> = {};
        const pattern: Record<string, c.Tensor> = {};
        let off = 0;
        rs.forEach((r, k) => {
          const p = `m${k}`;
          t[p] = { A: c.full([r, 2], 1), E: c.full([r, 1], 1), B: c.full([2, r], 1) };
          ipt[p] = { A: c.full([r, 2], 1), E: c.tensor(vals.slice(off, off + r).map((v) => Math.fround(v)), [r, 1]), B: c.full([2, r], 0) };
          unc[p] = { A: c.full([r, 2], 0.5), E: c.full([r, 1], 1), B: c.full([2, r], 1) };
          pattern[p] = c.full([r], 1);
          off += r;
        });
        const out = adalora.maskToBudget(t, { ipt, unc, pattern }, b);
        let nonzero = 0;
        for (const p of Object.keys(t)) nonzero += Array.from(await out.trainable[p].E.data()).filter((v) => v !== 0).length;
        c.tree.dispose([t, ipt, unc, pattern, out]);
        return nonzero <= b;
      }),
      { numRuns: 25, seed: 7 },
    );
  });

  it('updateImportance: the EMAs over three steps against float64', async () => {
    const r = R;
    const [b1, b2] = [0.85, 0.7];
    const ref = { I: {} as Record<string, Float64Array>, U: {} as Record<string, Float64Array> };
    const shapes = { A: [r, IN], E: [r, 1], B: [OUT, r] } as const;
    const t: Record<string, AdaloraAdapter> = { w: { A: c.zeros([r, IN]), E: c.zeros([r, 1]), B: c.zeros([OUT, r]) } };
    const alloc = adalora.allocator({ tinit: 1, tfinal: 1, totalSteps: 10, beta1: b1, beta2: b2 });
    let state = alloc.init(t);
    for (const k of ['A', 'E', 'B'] as const) [ref.I[k], ref.U[k]] = [new Float64Array(shapes[k][0] * shapes[k][1]), new Float64Array(shapes[k][0] * shapes[k][1])];
    for (let step = 0; step < 3; step++) {
      const pv: Record<string, Float32Array> = {};
      const gv: Record<string, Float32Array> = {};
      const params: Record<string, c.Tensor> = {};
      const grads: Record<string, c.Tensor> = {};
      (['A', 'E', 'B'] as const).forEach((k, j) => {
        const size = shapes[k][0] * shapes[k][1];
        pv[k] = rand(size, 100 * step + j);
        gv[k] = rand(size, 100 * step + j + 10);
        params[k] = c.tensor(pv[k], [...shapes[k]]);
        grads[k] = c.tensor(gv[k], [...shapes[k]]);
        for (let i = 0; i < size; i++) {
          const ipt = Math.abs(pv[k][i] * gv[k][i]);
          ref.I[k][i] = b1 * ref.I[k][i] + (1 - b1) * ipt;
          ref.U[k][i] = b2 * ref.U[k][i] + (1 - b2) * Math.abs(ipt - ref.I[k][i]);
        }
      });
      const next = adalora.updateImportance({ w: params as unknown as AdaloraAdapter }, { w: grads }, state, b1, b2);
      c.tree.dispose([state, params, grads]);
      state = next;
    }
    for (const k of ['A', 'E', 'B'] as const) {
      expect(closeTo(await state.ipt.w[k].data(), ref.I[k], () => 8 * EPS32, `Ī ${k}`)).toEqual([]);
      expect(closeTo(await state.unc.w[k].data(), ref.U[k], () => 8 * EPS32, `Ū ${k}`)).toEqual([]);
    }
    expect(() => adalora.updateImportance(t, {}, state)).toThrow(/grads has no \{ A, E, B \} tensors at "w"/);
    c.tree.dispose([t, state]);
  });

  it('a short run: makeTrainStep (returnGrads) then allocator.update; the final pattern holds targetR per adapter on average', async (ctx) => {
    if (name === 'webgl') ctx.skip("SKIPPED on webgl: AdaLoRA's initialization draws random.normal, which webgl refuses (tested above)");
    const Wd = rand(OUT * IN, 200);
    const W = c.tensor(Wd, [OUT, IN]);
    const X = c.tensor(rand(6 * IN, 201), [6, IN]);
    const Y = c.tensor(rand(6 * OUT, 202), [6, OUT]);
    const init = adalora.initAdapter(W, { rank: 4, key: c.random.key(5) });
    let t: Trainable = { w: init.adapter };
    const frozen = { w: init.residual };
    const { init: optInit, step } = makeTrainStep({
      loss: (tt: Trainable, f: typeof frozen, [x, y]: [c.Tensor, c.Tensor]) => c.add(c.nn.mse(c.nn.linear(x, mergeParams(tt, f).w), y), c.mul(adalora.orthRegularizer(tt), 0.5)),
      optimizer: c.optim.adamw({ lr: 0.05, weightDecay: 0 }),
      gamma: 0,
      maxGradNorm: 1,
      returnGrads: true,
    });
    const total = 8;
    const alloc = adalora.allocator({ targetR: 2, tinit: 1, tfinal: 2, totalSteps: total, deltaT: 1 });
    let s = optInit(t);
    let a = alloc.init(t as Record<string, AdaloraAdapter>);
    const budgets: number[] = [];
    for (let k = 0; k < total; k++) {
      const out = step(t, s, frozen, [X, Y]);
      const u = alloc.update(out.trainable as Record<string, AdaloraAdapter>, out.grads, a, k);
      budgets.push(u.budget);
      c.tree.dispose([t, s, a, out.metrics, out.grads, out.trainable]);
      [t, s, a] = [u.trainable, out.optState, u.state];
      if (k >= total - 2) {
        const E = await (t.w as AdaloraAdapter).E.data();
        expect(Array.from(E).filter((v) => v !== 0).length, `step ${k}`).toBeLessThanOrEqual(2);
      }
    }
    expect(budgets).toEqual(Array.from({ length: total }, (_, k) => budgetRef(k, 4, 2, 1, 2, total, 1)[0]));
    const rp = await adalora.rankPattern(a);
    expect(Object.keys(rp)).toEqual(['w.lora_E']);
    expect(rp['w.lora_E'].filter(Boolean).length).toBeLessThanOrEqual(2);
    c.tree.dispose([t, s, a, W, X, Y, frozen]);
  });
});
