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
import { EPS32, closeTo, frob, gramMinusI, mm, rand, tr } from './ref.js';

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

it("DEFAULTS are PEFT's AdaLoraConfig defaults", () => {
  // peft/tuners/adalora/config.py: init_r 12, target_r 8, beta1 = beta2 = 0.85, deltaT 1, orth_reg_weight 0.5.
  expect(adalora.DEFAULTS).toEqual({ initR: 12, targetR: 8, beta1: 0.85, beta2: 0.85, deltaT: 1, orthRegWeight: 0.5 });
});

type Kind = 'A' | 'E' | 'B';
const KINDS: readonly Kind[] = ['A', 'E', 'B'];

/**
 * PEFT's rank allocation in float64 over plain arrays, written from peft/tuners/adalora
 * (RankAllocator.update_ipt, budget_schedule, mask_to_budget, mask_using_rank_pattern and
 * AdaLoraModel.update_and_allocate): while step < T = total − tfinal the EMAs are updated and E is
 * masked when the schedule says; at T it is masked with the EMAs as they are (no update), the rank
 * pattern is fixed and the EMAs are reset; after T the fixed pattern is applied again.
 */
class AllocatorRef {
  readonly I: Record<string, Record<Kind, Float64Array>> = {};
  readonly U: Record<string, Record<Kind, Float64Array>> = {};
  pattern: Record<string, boolean[]> = {};
  readonly initBgt: number;
  readonly targetBgt: number;
  /** Steps whose threshold fell between two scores closer than float32 can order (expected none). */
  ambiguous = 0;
  constructor(
    readonly dims: Record<string, { out: number; r: number; inp: number }>,
    readonly o: { targetR: number; tinit: number; tfinal: number; totalSteps: number; deltaT: number; beta1: number; beta2: number },
  ) {
    this.initBgt = Object.values(dims).reduce((s, d) => s + d.r, 0);
    this.targetBgt = o.targetR * Object.keys(dims).length;
    this.reset();
    for (const [p, d] of Object.entries(dims)) this.pattern[p] = new Array<boolean>(d.r).fill(true);
  }
  private sizes(p: string): Record<Kind, number> {
    const { out, r, inp } = this.dims[p];
    return { A: r * inp, E: r, B: out * r };
  }
  reset(): void {
    for (const p of Object.keys(this.dims)) {
      const n = this.sizes(p);
      this.I[p] = { A: new Float64Array(n.A), E: new Float64Array(n.E), B: new Float64Array(n.B) };
      this.U[p] = { A: new Float64Array(n.A), E: new Float64Array(n.E), B: new Float64Array(n.B) };
    }
  }
  /** One call after optimizer step `step`; returns E after it, the budget and whether E was masked. */
  update(params: Record<string, Record<Kind, Float32Array>>, grads: Record<string, Record<Kind, Float32Array>>, step: number): { E: Record<string, Float64Array>; budget: number; masked: boolean } {
    const { beta1, beta2, tinit, tfinal, totalSteps, deltaT } = this.o;
    const T = totalSteps - tfinal;
    const [budget, maskInd] = budgetRef(step, this.initBgt, this.targetBgt, tinit, tfinal, totalSteps, deltaT);
    if (step < T) {
      for (const p of Object.keys(this.dims)) {
        for (const k of KINDS) {
          const [P, G, I, U] = [params[p][k], grads[p][k], this.I[p][k], this.U[p][k]];
          for (let i = 0; i < I.length; i++) {
            const ipt = Math.abs(P[i] * G[i]);
            I[i] = beta1 * I[i] + (1 - beta1) * ipt;
            U[i] = beta2 * U[i] + (1 - beta2) * Math.abs(ipt - I[i]);
          }
        }
      }
    }
    let masked = false;
    if ((step < T && maskInd) || step === T) {
      this.maskToBudget(budget);
      masked = true;
    }
    if (step === T) this.reset();
    if (step > T) masked = true;
    const E: Record<string, Float64Array> = {};
    for (const p of Object.keys(this.dims)) E[p] = Float64Array.from(params[p].E, (v, i) => (!masked || this.pattern[p][i] ? v : 0));
    return { E, budget, masked };
  }
  private maskToBudget(budget: number): void {
    const scores: [string, number, number][] = [];
    for (const [p, { out, r, inp }] of Object.entries(this.dims)) {
      const s = (k: Kind, i: number): number => this.I[p][k][i] * this.U[p][k][i];
      for (let i = 0; i < r; i++) {
        let a = 0;
        for (let j = 0; j < inp; j++) a += s('A', i * inp + j);
        let b = 0;
        for (let q = 0; q < out; q++) b += s('B', q * r + i);
        scores.push([p, i, s('E', i) + a / inp + b / out]);
      }
    }
    const k = this.initBgt - budget;
    const sorted = scores.map((x) => x[2]).sort((x, y) => x - y);
    const thr = k > 0 ? sorted[k - 1] : -Infinity;
    if (k > 0 && k < sorted.length && sorted[k] - sorted[k - 1] <= 1e-3 * Math.abs(sorted[k])) this.ambiguous++;
    for (const [p, i, v] of scores) this.pattern[p][i] = !(v <= thr);
  }
}

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
      const got = await adalora.adaptedLinear(adapter, Wt, c.tensor(x, [tokens, IN])).data();
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

  it('initAdapter draws A and B from N(0, 0.02²) with the key: sample moments, determinism, independent streams', async (ctx) => {
    if (name === 'webgl') ctx.skip("SKIPPED on webgl: AdaLoRA's initialization draws random.normal, which webgl refuses (tested above)");
    const [o, i, r] = [40, 32, 12];
    const W = c.tensor(rand(o * i, 5), [o, i]);
    const a1 = adalora.initAdapter(W, { rank: r, key: c.random.key(11) });
    const a2 = adalora.initAdapter(W, { rank: r, key: c.random.key(11) });
    const a3 = adalora.initAdapter(W, { rank: r, key: c.random.key(12) });
    const A = Array.from(await a1.adapter.A.data());
    const B = Array.from(await a1.adapter.B.data());
    for (const [x, what] of [[A, 'A'], [B, 'B']] as const) {
      const n = x.length;
      const mean = x.reduce((s, v) => s + v, 0) / n;
      const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
      // 384 and 480 draws: the sample std within 20% of 0.02 (about 5 standard errors), the mean
      // within 5 standard errors of 0, and the share within one std near a normal's 0.683 (a
      // uniform law of the same std has 0.577), within 3 standard errors.
      expect(Math.abs(sd / 0.02 - 1), `${what} std ${sd}`).toBeLessThan(0.2);
      expect(Math.abs(mean), `${what} mean`).toBeLessThan((5 * 0.02) / Math.sqrt(n));
      const within = x.filter((v) => Math.abs(v) < 0.02).length / n;
      expect(Math.abs(within - 0.6827), `${what} share within 1 std`).toBeLessThan(3 * Math.sqrt((0.6827 * 0.3173) / n));
    }
    // The same key gives the same draws; another key others; A and B are not one stream.
    expect(Array.from(await a2.adapter.A.data())).toEqual(A);
    expect(Array.from(await a2.adapter.B.data())).toEqual(B);
    expect(Array.from(await a3.adapter.A.data())).not.toEqual(A);
    expect(B.slice(0, 16)).not.toEqual(A.slice(0, 16));
    expect(Array.from(await a1.adapter.E.data())).toEqual(new Array(r).fill(0));
    c.tree.dispose([W, a1, a2, a3]);
  });

  it('orthRegularizer added to the loss with weight 0.5 is inside the clipped gradient: makeTrainStep (returnGrads) against float64', async () => {
    const [N, r] = [6, R];
    const d = tensorsOf(400);
    const [Wd, Xd, Yd] = [rand(OUT * IN, 410), rand(N * IN, 411), rand(N * OUT, 412)];
    const s = adalora.scaleFor(r, 4);
    const maxGradNorm = 0.1;
    // Task: L = mean((X Mᵀ − Y)²), M = W + s B diag(E) A; G = dL/dM = 2/(N·OUT) (X Mᵀ − Y)ᵀ X [out, in].
    const M = mergeRef(d.A, d.E, d.B, Wd, s, OUT, r, IN);
    const P = mm(Xd, tr(M, OUT, IN), N, IN, OUT).map((v, q) => v - Yd[q]);
    const G = mm(tr(P, N, OUT), Xd, OUT, N, IN).map((v) => (2 * v) / (N * OUT));
    // dA[i,j] = s E_i (Bᵀ G)[i,j]; dB[o,i] = s E_i (G Aᵀ)[o,i]; dE_i = s Σ_j (Bᵀ G)[i,j] A[i,j].
    const BtG = mm(tr(d.B, OUT, r), G, r, OUT, IN);
    const GAt = mm(G, tr(d.A, r, IN), OUT, IN, r);
    const tA = BtG.map((v, q) => s * d.E[Math.floor(q / IN)] * v);
    const tB = GAt.map((v, q) => s * d.E[q % r] * v);
    const tE = Float64Array.from({ length: r }, (_, i) => {
      let acc = 0;
      for (let j = 0; j < IN; j++) acc += BtG[i * IN + j] * d.A[i * IN + j];
      return s * acc;
    });
    // 0.5 · (‖A Aᵀ − I‖ + ‖Bᵀ B − I‖) / 2: gradients 0.5 · 2 Mo A / ‖Mo‖ / 2 and 0.5 · 2 B No / ‖No‖ / 2.
    const Mo = gramMinusI(d.A, r, IN, false);
    const No = gramMinusI(d.B, OUT, r, true);
    const oA = mm(Mo, d.A, r, r, IN).map((v) => (0.5 * 2 * v) / frob(Mo) / 2);
    const oB = mm(d.B, No, OUT, r, r).map((v) => (0.5 * 2 * v) / frob(No) / 2);
    const whole = { A: tA.map((v, q) => v + oA[q]), E: tE, B: tB.map((v, q) => v + oB[q]) };
    const norm = Math.sqrt([...whole.A, ...whole.E, ...whole.B].reduce((acc, v) => acc + v * v, 0));
    expect(norm, 'the clip is active').toBeGreaterThan(2 * maxGradNorm);
    const coef = maxGradNorm / (norm + 1e-6);
    // Outside the clip (as SORSA's regularizer), A's gradient would be coef · task + orth instead.
    expect(Math.max(...oA.map((v) => Math.abs((1 - coef) * v)))).toBeGreaterThan(1e-2);

    const adapter: AdaloraAdapter = { A: c.tensor(d.A, [r, IN]), E: c.tensor(d.E, [r, 1]), B: c.tensor(d.B, [OUT, r]), scale: s };
    const frozen = { w: c.tensor(Wd, [OUT, IN]) };
    const [X, Y] = [c.tensor(Xd, [N, IN]), c.tensor(Yd, [N, OUT])];
    const { init, step } = makeTrainStep({
      loss: (t: Trainable, f: typeof frozen, [x, y]: [c.Tensor, c.Tensor]) => c.add(c.nn.mse(c.nn.linear(x, mergeParams(t, f).w), y), c.mul(adalora.orthRegularizer(t), adalora.DEFAULTS.orthRegWeight)),
      optimizer: c.optim.adamw({ lr: 0.01, weightDecay: 0 }),
      gamma: 0,
      maxGradNorm,
      returnGrads: true,
    });
    const t: Trainable = { w: adapter };
    const st = init(t);
    const out = step(t, st, frozen, [X, Y]);
    const g = (out.grads as Trainable).w as AdaloraAdapter;
    // The pre-clip norm is the whole loss's, regularizer included.
    expect(Math.abs((await out.metrics.gradNorm.data())[0] - norm)).toBeLessThan(1e-5 * norm);
    for (const k of KINDS) {
      const want = whole[k].map((v) => v * coef);
      const big = Math.max(...want.map(Math.abs));
      expect(closeTo(await g[k].data(), want, () => 1e-5 * big + 1e-8, `clipped d${k}`)).toEqual([]);
    }
    c.tree.dispose([adapter, frozen, X, Y, st, out]);
  });

  it("allocator.update over a whole run equals PEFT's update_and_allocate in float64 (two adapters, every phase)", async () => {
    const dims = { 'h.0.attn.c_attn.weight': { out: 5, r: 3, inp: 4 }, 'h.0.mlp.c_fc.weight': { out: 3, r: 4, inp: 6 } };
    const paths = Object.keys(dims) as (keyof typeof dims)[];
    // T = 11: warm-up to step 2, masking on even steps 4..10 with a cubic budget 7 -> 2, at 11 the
    // final mask and EMA reset, then the fixed pattern at 12 and 13.
    const o = { targetR: 1, tinit: 2, tfinal: 3, totalSteps: 14, deltaT: 2, beta1: 0.8, beta2: 0.6 };
    const ref = new AllocatorRef(dims, o);
    const alloc = adalora.allocator(o);
    const scale = adalora.scaleFor(3, 5);
    const draw = (step: number, salt: number): Record<string, Record<Kind, Float32Array>> =>
      Object.fromEntries(
        paths.map((p, a) => {
          const { out, r, inp } = dims[p];
          const seed = 1000 * step + 100 * salt + 10 * a;
          return [p, { A: rand(r * inp, seed), E: rand(r, seed + 1), B: rand(out * r, seed + 2) }];
        }),
      );
    const tensors = (v: Record<string, Record<Kind, Float32Array>>): Record<string, AdaloraAdapter> =>
      Object.fromEntries(
        paths.map((p) => {
          const { out, r, inp } = dims[p];
          return [p, { A: c.tensor(v[p].A, [r, inp]), E: c.tensor(v[p].E, [r, 1]), B: c.tensor(v[p].B, [out, r]), scale }];
        }),
      );
    const t0 = tensors(draw(0, 0));
    let state = alloc.init(t0);
    c.tree.dispose(t0);
    let prunedSeen = false;
    for (let step = 0; step < o.totalSteps; step++) {
      const [pv, gv] = [draw(step, 0), draw(step, 1)];
      const want = ref.update(pv, gv, step);
      const [t, g] = [tensors(pv), tensors(gv)];
      const u = alloc.update(t, g, state, step);
      expect([u.budget, u.masked], `step ${step}: budget, masked`).toEqual([want.budget, want.masked]);
      for (const p of paths) {
        const a = u.trainable[p];
        const at = `step ${step}, ${p}`;
        expect(Array.from(await a.E.data()), `${at}: E`).toEqual(Array.from(want.E[p]));
        expect(Array.from(await a.A.data()), `${at}: A`).toEqual(Array.from(pv[p].A));
        expect(Array.from(await a.B.data()), `${at}: B`).toEqual(Array.from(pv[p].B));
        // The scale's denominator stays the initial rank (PEFT's ranknum) while E is pruned.
        expect(a.scale, `${at}: scale`).toBe(scale);
        expect(Array.from(await u.state.pattern[p].data()), `${at}: pattern`).toEqual(ref.pattern[p].map((k) => (k ? 1 : 0)));
        for (const k of KINDS) {
          expect(closeTo(await u.state.ipt[p][k].data(), ref.I[p][k], () => 16 * EPS32, `${at}: Ī ${k}`)).toEqual([]);
          expect(closeTo(await u.state.unc[p][k].data(), ref.U[p][k], () => 16 * EPS32, `${at}: Ū ${k}`)).toEqual([]);
        }
        if (ref.pattern[p].includes(false)) prunedSeen = true;
      }
      c.tree.dispose([t, g, state, u.trainable]);
      state = u.state;
    }
    // No threshold fell between two scores closer than float32 can order: every decision above is PEFT's.
    expect(ref.ambiguous).toBe(0);
    expect(prunedSeen).toBe(true);
    // PEFT's rank_pattern: "<module>.lora_E" to a boolean per triplet; targetR 1 · 2 adapters kept.
    const rp = await adalora.rankPattern(state);
    expect(rp).toEqual({ 'h.0.attn.c_attn.lora_E': ref.pattern[paths[0]], 'h.0.mlp.c_fc.lora_E': ref.pattern[paths[1]] });
    expect(Object.values(rp).flat().filter(Boolean).length).toBe(2);
    c.tree.dispose(state);
  });

  it('the allocator with PEFT defaults: targetR 8 per adapter, beta1 = beta2 = 0.85, deltaT 1', async () => {
    const dims = { a: { out: 13, r: 12, inp: 12 }, b: { out: 12, r: 12, inp: 13 } };
    const ref = new AllocatorRef(dims, { targetR: 8, tinit: 0, tfinal: 1, totalSteps: 5, deltaT: 1, beta1: 0.85, beta2: 0.85 });
    const alloc = adalora.allocator({ tinit: 0, tfinal: 1, totalSteps: 5 });
    const mk = (seed: number): [Record<string, Record<Kind, Float32Array>>, Record<string, AdaloraAdapter>] => {
      const v: Record<string, Record<Kind, Float32Array>> = {};
      const t: Record<string, AdaloraAdapter> = {};
      Object.entries(dims).forEach(([p, { out, r, inp }], a) => {
        v[p] = { A: rand(r * inp, seed + 10 * a), E: rand(r, seed + 10 * a + 1), B: rand(out * r, seed + 10 * a + 2) };
        t[p] = { A: c.tensor(v[p].A, [r, inp]), E: c.tensor(v[p].E, [r, 1]), B: c.tensor(v[p].B, [out, r]) };
      });
      return [v, t];
    };
    let state = alloc.init(mk(0)[1]);
    for (let step = 0; step < 2; step++) {
      const [pv, t] = mk(500 + 100 * step);
      const [gv, g] = mk(550 + 100 * step);
      const want = ref.update(pv, gv, step);
      const u = alloc.update(t, g, state, step);
      // Step 1: budget floor(8 · (1 − 1/4)³ + 16) = 19 of 24, masked (deltaT 1).
      expect([u.budget, u.masked], `step ${step}`).toEqual([want.budget, want.masked]);
      for (const p of Object.keys(dims)) {
        expect(Array.from(await u.trainable[p].E.data()), `step ${step}, ${p}: E`).toEqual(Array.from(want.E[p]));
        for (const k of KINDS) expect(closeTo(await u.state.unc[p][k].data(), ref.U[p][k], () => 16 * EPS32, `step ${step}, ${p}: Ū ${k}`)).toEqual([]);
      }
      c.tree.dispose([t, g, state, u.trainable]);
      state = u.state;
    }
    expect(ref.ambiguous).toBe(0);
    c.tree.dispose(state);
  });

  it('bad input to initAdapter, orthRegularizer, the allocator, updateImportance, maskToBudget and rankPattern is refused, naming the function and the value', async () => {
    const t = { w: { A: c.zeros([3, IN]), E: c.zeros([3, 1]), B: c.zeros([OUT, 3]) } };
    const o = { tinit: 1, tfinal: 1, totalSteps: 10 };
    expect(() => adalora.allocator({ ...o, targetR: -1 })).toThrow(/adalora\.allocator: targetR must be an integer >= 0, got -1/);
    expect(() => adalora.allocator({ ...o, targetR: 1.5 })).toThrow(/adalora\.allocator: targetR must be an integer >= 0, got 1\.5/);
    expect(() => adalora.allocator({ ...o, beta1: 1 })).toThrow(/adalora\.allocator: beta1 must be in \[0, 1\), got 1/);
    expect(() => adalora.allocator({ ...o, beta2: -0.1 })).toThrow(/adalora\.allocator: beta2 must be in \[0, 1\), got -0\.1/);
    expect(() => adalora.allocator({ ...o, tinit: 9 })).toThrow(/adalora\.budget: tinit \(9\) must be below totalSteps - tfinal/);
    expect(() => adalora.allocator({ ...o, totalSteps: 12.5 })).toThrow(/adalora\.budget: totalSteps must be an integer >= 0, got 12\.5/);
    expect(() => adalora.allocator({ ...o, deltaT: 0 })).toThrow(/adalora\.budget: deltaT must be >= 1, got 0/);
    const alloc = adalora.allocator({ ...o, targetR: 2 });
    expect(() => alloc.init({})).toThrow(/adalora\.allocator\.init: trainable holds no AdaLoRA adapter/);
    expect(() => alloc.init([] as unknown as Record<string, unknown>)).toThrow(/adalora\.allocator\.init: trainable must be a record of adapters keyed by path, got an array/);
    const state = alloc.init(t);
    expect(() => alloc.update(t, { w: t.w }, state, -1)).toThrow(/adalora\.allocator\.update: step must be an integer >= 0, got -1/);
    expect(() => alloc.update(t, {}, state, 0)).toThrow(/adalora\.updateImportance: grads has no \{ A, E, B \} tensors at "w"/);
    expect(() => alloc.update(t, { w: t.w }, { ...state, pattern: {} }, 10)).toThrow(/adalora\.allocator\.update: state\.pattern has no tensor at "w"/);
    expect(() => adalora.allocator(o).update(t, { w: t.w }, state, 0)).toThrow(/adalora\.allocator\.update: targetR \(8\) times the 1 adapters is 8, more than the sum of their initial ranks \(3\)/);
    expect(() => adalora.updateImportance(t, { w: t.w }, state, 1)).toThrow(/adalora\.updateImportance: beta1 must be in \[0, 1\), got 1/);
    expect(() => adalora.updateImportance(t, { w: t.w }, state, 0.5, NaN)).toThrow(/adalora\.updateImportance: beta2 must be in \[0, 1\), got NaN/);
    expect(() => adalora.updateImportance(t, { w: t.w }, { ...state, unc: {} })).toThrow(/adalora\.updateImportance: state\.unc has no \{ A, E, B \} tensors at "w"/);
    expect(() => adalora.updateImportance(t, { w: t.w }, { ...state, pattern: {} })).toThrow(/adalora\.updateImportance: state\.pattern has no tensor at "w"/);
    const wrong = { ...state, ipt: { w: { A: c.zeros([2, IN]), E: c.zeros([3, 1]), B: c.zeros([OUT, 3]) } } };
    expect(() => adalora.maskToBudget(t, wrong, 2)).toThrow(/adalora\.maskToBudget: the scores of "w"\.A are \[2,4\] \/ \[3,4\], its tensor \[3,4\]/);
    expect(() => adalora.maskToBudget(t, state, 1.5)).toThrow(/adalora\.maskToBudget: budget must be an integer >= 0, got 1\.5/);
    expect(() => adalora.maskToBudget({ w: { ...t.w, B: c.zeros([OUT, 2]) } }, state, 1)).toThrow(/adalora\.maskToBudget: adapter "w"\.B must be \[out, r\] and adapter "w"\.A \[r, in\], got \[5,2\] and \[3,4\]/);
    expect(() => adalora.orthRegularizer({ l: { ...t.w, E: c.zeros([3]) } })).toThrow(/adalora\.orthRegularizer: adapter "l"\.E must be \[3, 1\]/);
    await expect(adalora.rankPattern({ ...state, pattern: { w: [1, 0] as unknown as c.Tensor } })).rejects.toThrow(/adalora\.rankPattern: state\.pattern\["w"\] is an array, not a Tensor/);
    const W = c.tensor(rand(OUT * IN, 1), [OUT, IN]);
    const key = c.random.key(0);
    expect(() => adalora.initAdapter(W, { rank: 2, alpha: NaN, key })).toThrow(/adalora\.initAdapter: alpha must be a finite number, got NaN/);
    expect(() => adalora.initAdapter(W, { rank: 2, key: 3 as unknown as c.random.Key })).toThrow(/adalora\.initAdapter: key must be a random\.Key, got number/);
    expect(() => adalora.initAdapter(W, { rank: 0, key })).toThrow(/adalora\.initAdapter: rank must be an integer in \[1, 4\].*got 0/);
    expect(() => adalora.initAdapter(c.zeros([4]), { rank: 1, key })).toThrow(/adalora\.initAdapter: W must be a 2-D weight \[out, in\], got shape \[4\]/);
    const bad = c.tensor([1, NaN, 3, 4], [2, 2]);
    expect(() => adalora.initAdapter(bad, { rank: 1, key })).toThrow(/adalora\.initAdapter: W has a non-finite value NaN at \[0, 1\]/);
    c.tree.dispose([t, state, wrong, W, bad]);
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
