/**
 * optim: the optimizers against float64 implementations of PyTorch's update formulas written here
 * (torch.optim.Adam / AdamW, non-amsgrad, single-tensor semantics; SGD with momentum, dampening 0,
 * and nesterov; clip_grad_norm_), optax's building blocks chained into Adam and AdamW (held to the same
 * references, and to the fused adam/adamw), optax's schedules, the combinators (chain, partition, masked,
 * setToZero, applyUpdates), purity, and memory over a training loop, on every backend available here.
 *
 * Tolerances. A run of T steps on random parameter/gradient trees is compared element by element
 * with |got - ref| <= EPS32 * Σ_{k=1..T} (C_P |p_k| + (C_U + k) U_k), where p_k is the reference
 * parameter after step k and U_k the update's "absolute" scale (the same formula with |g| in the
 * first moment and |p| in the decay term, so cancellation in m cannot shrink it to nothing):
 *  - C_P = 2: applyUpdates rounds p + u once per step (relative to |p_k|);
 *  - C_U = 32: the update is a handful of roundings (the step size, bias corrections and b1, b2,
 *    1 - b1, 1 - b2 are rounded to float32 once; sqrt and division are within 2.5 ulp on WebGPU),
 *    and the moment estimates carry their own rounding history, ~1/(1 - b1) = 10 roundings for m;
 *  - + k: v forgets its rounding errors only at rate 1 - b2 = 1e-3, so by step k it carries up to
 *    ~k roundings (sqrt halves them);
 *  - with clipping first, + n (the number of gradient elements): the global norm is a sum of n
 *    squares, so the clip coefficient, hence every clipped gradient, is within ~n eps relative.
 * The error therefore grows with the step count (the sum over k), as the accumulation of roundings does.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, count, randomData } from './reference.js';
import { adamwReference } from '@sorsajs/testing';
import * as internal from '@sorsajs/core/internal';

const { optim } = c;
type GT = c.optim.GradientTransformation<unknown>;

// ---------------------------------------------------------------------------------------------
// Trees. Five leaves in nested objects and arrays, with few distinct shapes (kernels are compiled
// per shape, which is slow on a software WebGPU adapter).

const SHAPES: number[][] = [[4, 3], [3], [4, 3], [3], [2, 6]];
const N_ELEMS = SHAPES.reduce((a, s) => a + count(s), 0);
/** Gradient scale per leaf, so leaves differ in magnitude (one tiny, one large). */
const GSCALE = [1, 1e-6, 3, 1, 0.01];

interface P<L = Tensor> {
  enc: { w: L; b: L };
  layers: [{ w: L; b: L }, { g: L }];
}

function build(ds: ArrayLike<number>[]): P {
  const t = ds.map((d, i) => c.tensor(Float32Array.from(d), SHAPES[i]));
  return { enc: { w: t[0], b: t[1] }, layers: [{ w: t[2], b: t[3] }, { g: t[4] }] };
}

const paramData = (seed: number): Float32Array[] => SHAPES.map((s, i) => randomData(count(s), seed * 100 + i, -1, 1));
/** Gradients of step k (1-based), float32-representable. */
const gradData = (seed: number, k: number): Float32Array[] =>
  SHAPES.map((s, i) => {
    const d = randomData(count(s), seed * 100_000 + k * 37 + i, -1, 1);
    return d.map((v) => Math.fround(v * GSCALE[i]));
  });

/** Tensor leaves' data in tree order; null leaves are skipped. */
async function read(t: unknown): Promise<Float32Array[]> {
  const ls = c.tree.leaves(t).filter((l): l is Tensor => l instanceof c.Tensor);
  return (await Promise.all(ls.map((l) => l.data()))) as Float32Array[];
}

function expectClose(got: Float32Array[], want: Float64Array[], tol: Float64Array[], what: string): void {
  expect(got.length, `${what}: number of leaves`).toBe(want.length);
  const bad: string[] = [];
  let worst = 0;
  got.forEach((g, j) => {
    expect(g.length, `${what}: leaf ${j} size`).toBe(want[j].length);
    for (let i = 0; i < g.length; i++) {
      const err = Math.abs(g[i] - want[j][i]);
      if (tol[j][i] > 0) worst = Math.max(worst, err / tol[j][i]);
      if (!(err <= tol[j][i]) && bad.length < 5) bad.push(`${what}: leaf ${j} element ${i}: got ${g[i]}, float64 ${want[j][i]}, |diff| ${err.toExponential(3)} > tol ${tol[j][i].toExponential(3)}`);
    }
  });
  if (process.env.OPTIM_VERBOSE) console.log(`${what}: worst error ${worst.toFixed(4)} of tol`);
  expect(bad, bad.join('\n')).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// Float64 references of PyTorch's formulas (leafwise over lists of Float64Array).

type Vecs = Float64Array[];
const f64 = (ds: ArrayLike<number>[]): Vecs => ds.map((d) => Float64Array.from(d));
const zerosOf = (ds: Vecs): Vecs => ds.map((d) => new Float64Array(d.length));

/** A reference optimizer step: updates `p` in place from `g`; returns the update's absolute scale U. */
type RefStep = (p: Vecs, g: Vecs) => Vecs;

interface AdamRefOpts {
  lr: (step: number) => number;
  b1?: number;
  b2?: number;
  eps?: number;
  /** AdamW's decoupled weight decay (0 for Adam). */
  wd?: number;
  /** Leaves that decay (all by default). */
  decay?: boolean[];
}

/** torch.optim.Adam / AdamW (amsgrad=False, maximize=False, foreach=False): the kit's float64 AdamW, Adam when wd is 0. */
function adamRef(o: AdamRefOpts, _n: number) {
  const ref = adamwReference({ lr: o.lr, b1: o.b1, b2: o.b2, eps: o.eps, weightDecay: o.wd ?? 0, decay: o.decay });
  const step: RefStep = (p, g) => ref.step(p, g);
  return { step, state: () => ref.state() };
}

/** torch.optim.SGD with momentum (dampening 0) and nesterov. */
function sgdRef(o: { lr: (step: number) => number; momentum?: number; nesterov?: boolean }): RefStep {
  const mu = o.momentum ?? 0;
  let buf: Vecs | null = null;
  let bufAbs: Vecs | null = null;
  let t = 0;
  return (p, g) => {
    const lr = o.lr(t++);
    const first = buf === null;
    buf ??= zerosOf(g);
    bufAbs ??= zerosOf(g);
    return p.map((pj, j) => {
      const u = new Float64Array(pj.length);
      for (let i = 0; i < pj.length; i++) {
        let d = g[j][i];
        let dAbs = Math.abs(d);
        if (mu !== 0) {
          // PyTorch clones the gradient into the buffer on the first step.
          buf![j][i] = first ? g[j][i] : mu * buf![j][i] + g[j][i];
          bufAbs![j][i] = first ? Math.abs(g[j][i]) : mu * bufAbs![j][i] + Math.abs(g[j][i]);
          d = o.nesterov ? g[j][i] + mu * buf![j][i] : buf![j][i];
          dAbs = o.nesterov ? Math.abs(g[j][i]) + mu * bufAbs![j][i] : bufAbs![j][i];
        }
        pj[i] -= lr * d;
        u[i] = lr * dAbs;
      }
      return u;
    });
  };
}

/** torch.nn.utils.clip_grad_norm_(max_norm, norm_type=2), returning new arrays. */
function clipRef(g: Vecs, maxNorm: number): Vecs {
  let ss = 0;
  for (const gj of g) for (const x of gj) ss += x * x;
  const coef = Math.min(1, maxNorm / (Math.sqrt(ss) + 1e-6));
  return g.map((gj) => gj.map((x) => x * coef));
}

/**
 * Runs `opt` from paramData(seed) for `steps` steps of gradData(seed, k), disposing what each step
 * replaces, and reads the params after each step in `at`. Returns them and the final state's leaves.
 */
async function runLib(opt: GT, seed: number, steps: number, at: number[]): Promise<{ params: Map<number, Float32Array[]>; state: Float32Array[] }> {
  let params = build(paramData(seed));
  let state = opt.init(params);
  const out = new Map<number, Float32Array[]>();
  for (let k = 1; k <= steps; k++) {
    const g = build(gradData(seed, k));
    const [u, s] = opt.update(g, state, params);
    const next = optim.applyUpdates(params, u);
    c.tree.dispose([g, u, params, state]);
    params = next;
    state = s;
    if (at.includes(k)) out.set(k, await read(params));
  }
  const st = await read(state);
  c.tree.dispose([params, state]);
  return { params: out, state: st };
}

/** The float64 run of `step` (with `pre` applied to each step's gradients), and its tolerance. */
function runRef(step: RefStep, seed: number, steps: number, at: number[], cu: number, pre: (g: Vecs) => Vecs = (g) => g): Map<number, { p: Vecs; tol: Vecs }> {
  const p = f64(paramData(seed));
  const acc = zerosOf(p);
  const out = new Map<number, { p: Vecs; tol: Vecs }>();
  for (let k = 1; k <= steps; k++) {
    const U = step(p, pre(f64(gradData(seed, k))));
    for (let j = 0; j < p.length; j++) for (let i = 0; i < p[j].length; i++) acc[j][i] += 2 * Math.abs(p[j][i]) + (cu + k) * U[j][i];
    if (at.includes(k)) out.set(k, { p: p.map((x) => x.slice()), tol: acc.map((a) => a.map((x) => EPS32 * x)) });
  }
  return out;
}

async function compareRuns(opt: GT, step: RefStep, seed: number, cu: number, pre?: (g: Vecs) => Vecs, at = [1, 5, 50]): Promise<Float32Array[]> {
  const steps = Math.max(...at);
  const lib = await runLib(opt, seed, steps, at);
  const ref = runRef(step, seed, steps, at, cu, pre);
  for (const k of at) expectClose(lib.params.get(k)!, ref.get(k)!.p, ref.get(k)!.tol, `params after ${k} steps`);
  return lib.state;
}

const C_U = 32;

// ---------------------------------------------------------------------------------------------
// Schedules: host functions of the step count, checked against optax's definitions in float64.

/** optax.linear_schedule. */
const linearRef = (init: number, end: number, steps: number) => (k: number) => (steps <= 0 ? init : (init - end) * (1 - Math.min(Math.max(k, 0), steps) / steps) + end);
/** optax.cosine_decay_schedule with alpha = end / init. */
const cosineRef = (init: number, steps: number, end: number) => (k: number) => {
  const alpha = init === 0 ? 0 : end / init;
  const d = 0.5 * (1 + Math.cos((Math.PI * Math.min(k, steps)) / steps));
  return init * ((1 - alpha) * d + alpha);
};
/** optax.warmup_cosine_decay_schedule: join_schedules([linear, cosine(decay_steps - warmup_steps)], [warmup_steps]). */
const warmupCosineRef = (init: number, peak: number, warmup: number, decay: number, end: number) => (k: number) =>
  k < warmup ? linearRef(init, peak, warmup)(k) : cosineRef(peak, decay - warmup, end)(k - warmup);

const near = (got: number, want: number, what: string): void => {
  expect(Math.abs(got - want), `${what}: got ${got}, want ${want}`).toBeLessThanOrEqual(1e-14 * Math.max(1, Math.abs(want)));
};

describe('optim schedules (host functions)', () => {
  it('constant', () => {
    const s = optim.constant(3e-4);
    for (const k of [0, 1, 100, 1e6]) expect(s(k)).toBe(3e-4);
    expect(() => optim.constant(NaN)).toThrow(/constant: value must be a finite number, got NaN/);
  });

  it('linearWarmup as optax.linear_schedule(init, peak, warmupSteps), peak afterwards', () => {
    for (const [init, peak, w] of [[0, 1e-3, 10], [1e-5, 3e-4, 7], [2, 0.5, 4]] as const) {
      const s = optim.linearWarmup({ init, peak, warmupSteps: w });
      const r = linearRef(init, peak, w);
      for (let k = 0; k <= 3 * w; k++) near(s(k), r(k), `linearWarmup(${init}, ${peak}, ${w}) at ${k}`);
      expect(s(0)).toBe(init);
      expect(s(w)).toBe(peak);
    }
    // The init default is 0; no warmup is the peak from step 0.
    near(optim.linearWarmup({ peak: 1, warmupSteps: 4 })(1), 0.25, 'default init');
    expect(optim.linearWarmup({ peak: 1, warmupSteps: 0 })(0)).toBe(1);
    expect(() => optim.linearWarmup({ peak: 1, warmupSteps: 2.5 })).toThrow(/linearWarmup: warmupSteps must be a non-negative integer, got 2.5/);
    expect(() => optim.linearWarmup({ peak: Infinity, warmupSteps: 2 })).toThrow(/linearWarmup: peak must be a finite number, got Infinity/);
  });

  it('cosineDecay as optax.cosine_decay_schedule (alpha = end / init), end afterwards', () => {
    for (const [init, steps, end] of [[1, 100, 0], [3e-4, 17, 3e-5], [0.5, 1, 0.1]] as const) {
      const s = optim.cosineDecay({ init, decaySteps: steps, end });
      const r = cosineRef(init, steps, end);
      for (let k = 0; k <= steps + 5; k++) near(s(k), r(k), `cosineDecay(${init}, ${steps}, ${end}) at ${k}`);
      expect(s(0)).toBe(init);
      near(s(steps), end, 'end');
      near(s(steps + 1000), end, 'after the end');
    }
    near(optim.cosineDecay({ init: 1, decaySteps: 100 })(50), 0.5, 'doc example');
    expect(() => optim.cosineDecay({ init: 1, decaySteps: 0 })).toThrow(/cosineDecay: decaySteps must be a positive integer, got 0/);
  });

  it('warmupCosineDecay as optax.warmup_cosine_decay_schedule: decaySteps counts from step 0, warmup included', () => {
    for (const [init, peak, w, d, end] of [[0, 3e-5, 30, 1000, 0], [1e-6, 1e-3, 5, 20, 1e-4], [0, 1, 1, 2, 0]] as const) {
      const s = optim.warmupCosineDecay({ init, peak, warmupSteps: w, decaySteps: d, end });
      const r = warmupCosineRef(init, peak, w, d, end);
      for (let k = 0; k <= d + 10; k++) near(s(k), r(k), `warmupCosineDecay(${init}, ${peak}, ${w}, ${d}, ${end}) at ${k}`);
      expect(s(0)).toBe(init);
      expect(s(w)).toBe(peak);
      // The end value is reached at step decaySteps (not warmupSteps + decaySteps).
      near(s(d), end, 'end at decaySteps');
      near(s(w + (d - w) / 2), (peak + end) / 2, 'half way through the decay');
    }
    expect(() => optim.warmupCosineDecay({ peak: 1, warmupSteps: 10, decaySteps: 10 })).toThrow(/warmupCosineDecay: decaySteps \(10\) must exceed warmupSteps \(10\)/);
  });
});

// ---------------------------------------------------------------------------------------------

forEachBackend('optim', () => {
  describe('optimizers against float64 PyTorch formulas (1, 5 and 50 steps)', () => {
    it('adam with the defaults (b1 0.9, b2 0.999, eps 1e-8); the moments too', async () => {
      const ref = adamRef({ lr: () => 1e-2 }, SHAPES.length);
      const state = await compareRuns(optim.adam({ lr: 1e-2 }), ref.step, 1, C_U);
      // state leaves: mu (5 leaves) then nu (5 leaves); count is a number.
      const { m, v, mAbs } = ref.state();
      const t = ref.state().t;
      const ms = state.slice(0, SHAPES.length);
      const vs = state.slice(SHAPES.length);
      expectClose(ms, m, mAbs.map((a) => a.map((x) => 2 * (C_U + t) * EPS32 * x)), 'mu');
      expectClose(vs, v, v.map((a) => a.map((x) => 2 * (C_U + t) * EPS32 * x)), 'nu');
    });

    it('adam with other b1, b2, eps and a schedule evaluated at the update count (0 for the first)', async () => {
      const calls: number[] = [];
      const sched = optim.warmupCosineDecay({ init: 1e-3, peak: 2e-2, warmupSteps: 10, decaySteps: 40, end: 1e-3 });
      const lr = (k: number): number => (calls.push(k), sched(k));
      const o = { b1: 0.8, b2: 0.99, eps: 1e-4 };
      await compareRuns(optim.adam({ lr, ...o }), adamRef({ lr: sched, ...o }, SHAPES.length).step, 2, C_U);
      expect(calls).toEqual(Array.from({ length: 50 }, (_, k) => k));
    });

    it('adamw: the default weightDecay is 0.01, applied as p (1 - lr wd) before the Adam step', async () => {
      await compareRuns(optim.adamw({ lr: 5e-2 }), adamRef({ lr: () => 5e-2, wd: 0.01 }, SHAPES.length).step, 3, C_U);
    });

    it('adamw with a large weight decay and a linear warmup', async () => {
      const sched = optim.linearWarmup({ init: 0, peak: 5e-2, warmupSteps: 8 });
      await compareRuns(optim.adamw({ lr: sched, weightDecay: 0.5 }), adamRef({ lr: sched, wd: 0.5 }, SHAPES.length).step, 4, C_U);
    });

    it('adamw mask limits the decay to the leaves marked true (a tree, or a function of the params)', async () => {
      const decay = [true, false, true, false, true];
      const maskTree = { enc: { w: true, b: false }, layers: [{ w: true, b: false }, { g: true }] };
      const ref = () => adamRef({ lr: () => 5e-2, wd: 0.3, decay }, SHAPES.length).step;
      await compareRuns(optim.adamw({ lr: 5e-2, weightDecay: 0.3, mask: maskTree }), ref(), 5, C_U, undefined, [1, 5]);
      // A function of the params giving the mask.
      const maskFn = (p: unknown): unknown => {
        const q = p as P;
        return { enc: { w: q.enc.w instanceof c.Tensor, b: false }, layers: [{ w: true, b: false }, { g: true }] };
      };
      await compareRuns(optim.adamw({ lr: 5e-2, weightDecay: 0.3, mask: maskFn }), ref(), 5, C_U, undefined, [5]);
    });

    it('adamw needs params', () => {
      const p = build(paramData(6));
      const opt = optim.adamw({ lr: 1e-3 });
      const s = opt.init(p);
      expect(() => opt.update(p, s)).toThrow(/adamw: update needs params for weight decay/);
      c.tree.dispose([p, s]);
    });

    it('sgd: plain, with momentum, and nesterov (dampening 0), with a schedule', async () => {
      const sched = optim.cosineDecay({ init: 0.1, decaySteps: 50, end: 0.01 });
      await compareRuns(optim.sgd({ lr: 0.05 }), sgdRef({ lr: () => 0.05 }), 7, C_U);
      await compareRuns(optim.sgd({ lr: sched, momentum: 0.9 }), sgdRef({ lr: sched, momentum: 0.9 }), 8, C_U);
      await compareRuns(optim.sgd({ lr: 0.02, momentum: 0.8, nesterov: true }), sgdRef({ lr: () => 0.02, momentum: 0.8, nesterov: true }), 9, C_U);
      expect(() => optim.sgd({ lr: 0.1, nesterov: true })).toThrow(/sgd: nesterov needs a positive momentum/);
    });

    it('adam hyperparameter errors name the optimizer and the value', () => {
      expect(() => optim.adam({ lr: 1e-3, b1: 1 })).toThrow(/adam: b1 must be in \[0, 1\), got 1/);
      expect(() => optim.adamw({ lr: 1e-3, b2: -0.1 })).toThrow(/adamw: b2 must be in \[0, 1\), got -0.1/);
      expect(() => optim.clipByGlobalNorm(0)).toThrow(/clipByGlobalNorm: maxNorm must be positive, got 0/);
      const n = c.tensor(1);
      expect(() => optim.clipCoefficient(n, -2)).toThrow(/clipCoefficient: maxNorm must be positive, got -2/);
      n.dispose();
    });
  });

  describe("optax's building blocks: Adam and AdamW as chains, against the same float64 PyTorch formulas", () => {
    it('chain(scaleByAdam, scaleByLearningRate) is Adam', async () => {
      const opt = optim.chain(optim.scaleByAdam(), optim.scaleByLearningRate(1e-2));
      await compareRuns(opt, adamRef({ lr: () => 1e-2 }, SHAPES.length).step, 21, C_U);
    });

    it('chain(scaleByAdam, addDecayedWeights, scaleByLearningRate) is AdamW, with other b1, b2, eps and a schedule', async () => {
      const sched = optim.linearWarmup({ init: 0, peak: 5e-2, warmupSteps: 8 });
      const o = { b1: 0.8, b2: 0.99, eps: 1e-4 };
      const opt = optim.chain(optim.scaleByAdam(o), optim.addDecayedWeights({ weightDecay: 0.5 }), optim.scaleByLearningRate(sched));
      await compareRuns(opt, adamRef({ lr: sched, wd: 0.5, ...o }, SHAPES.length).step, 22, C_U);
    });

    it("addDecayedWeights' mask limits the decay to the leaves marked true", async () => {
      const decay = [true, false, true, false, true];
      const mask = { enc: { w: true, b: false }, layers: [{ w: true, b: false }, { g: true }] };
      const opt = optim.chain(optim.scaleByAdam(), optim.addDecayedWeights({ weightDecay: 0.3, mask }), optim.scaleByLearningRate(3e-2));
      await compareRuns(opt, adamRef({ lr: () => 3e-2, wd: 0.3, decay }, SHAPES.length).step, 23, C_U, undefined, [1, 5]);
    });

    it('the fused adamw gives what its chain gives, within the float32 tolerance of the reference', async () => {
      const at = [1, 5, 20];
      const chainRun = await runLib(optim.chain(optim.scaleByAdam(), optim.addDecayedWeights({ weightDecay: 0.05 }), optim.scaleByLearningRate(2e-2)), 24, 20, at);
      const fusedRun = await runLib(optim.adamw({ lr: 2e-2, weightDecay: 0.05 }), 24, 20, at);
      const ref = runRef(adamRef({ lr: () => 2e-2, wd: 0.05 }, SHAPES.length).step, 24, 20, at, C_U);
      for (const k of at) {
        const fusedNow = fusedRun.params.get(k)!.map((d) => Float64Array.from(d));
        // Each run is within tol of the float64 reference, so the two are within 2 tol of each other.
        expectClose(chainRun.params.get(k)!, fusedNow, ref.get(k)!.tol.map((t) => t.map((x) => 2 * x)), `chain vs fused adamw after ${k} steps`);
      }
      // The moments depend on the gradients only and run the same kernels: bit for bit the same
      // ([scaleByAdam's { count, mu, nu }, null, { count }] against adamw's { count, mu, nu }).
      expect(chainRun.state).toEqual(fusedRun.state);
    });

    it('the chain state is the tuple of named states, with update counts', async () => {
      const params = build(paramData(25));
      const g = build(gradData(25, 1));
      const opt = optim.chain(optim.scaleByAdam(), optim.addDecayedWeights({ weightDecay: 0.1 }), optim.scaleByLearningRate(1e-3));
      const s0 = opt.init(params);
      expect((s0[0] as c.optim.AdamState).count).toBe(0);
      expect(s0[1]).toBeNull();
      expect(s0[2] as c.optim.ScaleByLearningRateState).toEqual({ count: 0 });
      const [u, s1] = opt.update(g, s0, params);
      expect((s1[0] as c.optim.AdamState).count).toBe(1);
      expect(s1[2]).toEqual({ count: 1 });
      c.tree.dispose([params, g, s0, u, s1]);
    });

    it('errors name the building block and the value', () => {
      expect(() => optim.scaleByAdam({ b1: 1 })).toThrow(/scaleByAdam: b1 must be in \[0, 1\), got 1/);
      expect(() => optim.scaleByAdam({ eps: -1 })).toThrow(/scaleByAdam: eps must be a non-negative number, got -1/);
      expect(() => optim.addDecayedWeights({ weightDecay: NaN })).toThrow(/addDecayedWeights: weightDecay must be a finite number, got NaN/);
      expect(() => optim.scaleByLearningRate(Infinity)).toThrow(/scaleByLearningRate: lr must be a finite number or a schedule, got Infinity/);
      const g = build(gradData(26, 1));
      const decay = optim.addDecayedWeights({ weightDecay: 0.1 });
      expect(() => decay.update(g, null)).toThrow(/addDecayedWeights: update needs params/);
      c.tree.dispose(g);
    });
  });

  describe('clipping and combinators', () => {
    it('globalNorm is the float64 norm of all leaves (null leaves skipped); a tree without tensors has norm 0', async () => {
      const ds = gradData(10, 1);
      const g = build(ds);
      const n = optim.globalNorm({ ...g, skip: null, count: 3 });
      let ss = 0;
      for (const d of ds) for (const x of d) ss += x * x;
      const got = (await n.data())[0];
      expect(n.shape).toEqual([]);
      expect(Math.abs(got - Math.sqrt(ss))).toBeLessThanOrEqual((N_ELEMS + 4) * EPS32 * Math.sqrt(ss));
      // A tree without tensor leaves has norm 0, as optax's global_norm.
      const empty = optim.globalNorm({ a: null, b: [1] });
      expect(Array.from(await empty.data())).toEqual([0]);
      empty.dispose();
      c.tree.dispose([g, n]);
    });

    it('clipByGlobalNorm is clip_grad_norm_: scaled to maxNorm / (norm + 1e-6) above it, unchanged below', async () => {
      const ds = gradData(11, 1);
      const g = build(ds);
      const opt = optim.clipByGlobalNorm(1);
      expect(opt.init(g)).toBeNull();
      const [u, s] = opt.update(g, null);
      expect(s).toBeNull();
      const want = clipRef(f64(ds), 1);
      expectClose(await read(u), want, want.map((w) => w.map((x) => (N_ELEMS + 8) * EPS32 * Math.abs(x))), 'clipped');
      // Below maxNorm the coefficient is exactly 1.
      const [u2] = optim.clipByGlobalNorm(100).update(g, null);
      expect(await read(u2)).toEqual(ds);
      c.tree.dispose([g, u, u2]);
    });

    it('clipCoefficient is min(1, maxNorm / (norm + 1e-6)) for a norm already computed', async () => {
      for (const [norm, maxNorm] of [[4, 1], [0.5, 1], [0, 2], [3e5, 0.25]]) {
        const t = c.tensor(norm);
        const coef = optim.clipCoefficient(t, maxNorm);
        expect(coef.shape).toEqual([]);
        const want = Math.min(1, maxNorm / (norm + 1e-6));
        expect(Math.abs((await coef.data())[0] - want)).toBeLessThanOrEqual(4 * EPS32 * want);
        c.tree.dispose([t, coef]);
      }
    });

    it('chain(clipByGlobalNorm(1), adamw) is clip_grad_norm_ then AdamW, and the two applied by hand', async () => {
      const ref = adamRef({ lr: () => 2e-2, wd: 0.05 }, SHAPES.length).step;
      const pre = (g: Vecs): Vecs => clipRef(g, 1);
      await compareRuns(optim.chain(optim.clipByGlobalNorm(1), optim.adamw({ lr: 2e-2, weightDecay: 0.05 })), ref, 12, C_U + N_ELEMS, pre);

      // The chain's state is the tuple of states, and it gives bit for bit what the two steps give by hand.
      const params = build(paramData(13));
      const g = build(gradData(13, 1));
      const clip = optim.clipByGlobalNorm(1);
      const aw = optim.adamw({ lr: 2e-2, weightDecay: 0.05 });
      const ch = optim.chain(clip, aw);
      const s0 = ch.init(params);
      expect(s0[0]).toBeNull();
      expect((s0[1] as c.optim.AdamState).count).toBe(0);
      const [u, s1] = ch.update(g, s0, params);
      const [clipped] = clip.update(g, null);
      const sa = aw.init(params);
      const [u2, sa1] = aw.update(clipped, sa, params);
      expect(await read(u)).toEqual(await read(u2));
      expect(await read(s1)).toEqual(await read(sa1));
      expect((s1 as unknown[])[1]).toMatchObject({ count: 1 });
      c.tree.dispose([params, g, s0, u, s1, clipped, sa, u2, sa1]);
    });

    it('partition: frozen leaves get zero updates and no optimizer state; labels as a function of the params', async () => {
      await c.sync();
      const before = c.memory();
      const params = build(paramData(14));
      const labelsFn = (p: unknown): unknown => {
        const q = p as P;
        const lab = (t: Tensor, frozen: boolean): string => (t.shape.length && frozen ? 'frozen' : 'train');
        return { enc: { w: lab(q.enc.w, false), b: lab(q.enc.b, false) }, layers: [{ w: lab(q.layers[0].w, true), b: lab(q.layers[0].b, true) }, { g: lab(q.layers[1].g, false) }] };
      };
      const opt = optim.partition({ train: optim.adam({ lr: 1e-2 }), frozen: optim.setToZero() }, labelsFn);
      const afterParams = c.memory();
      let state = opt.init(params);
      await c.sync();
      // Adam holds mu and nu for the three trainable leaves only: 6 tensors, 2 * 4 bytes per element.
      const trainElems = count(SHAPES[0]) + count(SHAPES[1]) + count(SHAPES[4]);
      expect(c.memory().tensors - afterParams.tensors).toBe(6);
      expect(c.memory().buffers - afterParams.buffers).toBe(6);
      expect(c.memory().bytes - afterParams.bytes).toBe(2 * 4 * trainElems);
      expect(state.frozen).toBeNull();
      const train = state.train as c.optim.AdamState;
      expect((train.mu as P<Tensor | null>).layers[0]).toEqual({ w: null, b: null });
      expect((train.nu as P<Tensor | null>).layers[0]).toEqual({ w: null, b: null });
      expect((train.mu as P<Tensor | null>).enc.w).toBeInstanceOf(c.Tensor);

      // Five steps against the float64 Adam on the trainable leaves (a zero gradient on the frozen
      // ones leaves them exactly in place in the reference).
      let p = params;
      const p0 = paramData(14);
      for (let k = 1; k <= 5; k++) {
        const g = build(gradData(14, k));
        const [u, s] = opt.update(g, state, p);
        const ud = await read(u);
        expect(ud[2]).toEqual(new Float32Array(12));
        expect(ud[3]).toEqual(new Float32Array(3));
        const next = optim.applyUpdates(p, u);
        c.tree.dispose([g, u, state, p]);
        p = next;
        state = s;
      }
      expect(Object.keys(state)).toEqual(['train', 'frozen']);
      expect((state.train as c.optim.AdamState).count).toBe(5);
      const got = await read(p);
      // The frozen leaves are exactly where they started.
      expect(got[2]).toEqual(p0[2]);
      expect(got[3]).toEqual(p0[3]);
      const frozen = (g: Vecs): Vecs => g.map((x, j) => (j === 2 || j === 3 ? new Float64Array(x.length) : x));
      const ref = runRef(adamRef({ lr: () => 1e-2 }, SHAPES.length).step, 14, 5, [5], C_U, frozen).get(5)!;
      expectClose(got, ref.p, ref.tol, 'params');
      c.tree.dispose([p, state]);
      await c.sync();
      expect(c.memory()).toEqual(before);
    });

    it('partition: an unknown label errors naming the label and the known ones', () => {
      const params = build(paramData(15));
      const labels = { enc: { w: 'train', b: 'train' }, layers: [{ w: 'train', b: 'bais' }, { g: 'train' }] };
      const opt = optim.partition({ train: optim.adam({ lr: 1e-2 }), frozen: optim.setToZero() }, labels);
      expect(() => opt.init(params)).toThrow(/partition: label "bais" has no transformation \(have: train, frozen\)/);
      c.tree.dispose(params);
    });

    it('masked: masked-out leaves pass through unchanged and get no state', async () => {
      const params = build(paramData(16));
      const mask = { enc: { w: true, b: false }, layers: [{ w: true, b: false }, { g: false }] };
      const opt = optim.masked(optim.adam({ lr: 1e-2 }), mask);
      const state = opt.init(params) as c.optim.AdamState;
      expect((state.mu as P<Tensor | null>).enc.b).toBeNull();
      expect((state.nu as P<Tensor | null>).layers[1].g).toBeNull();
      expect(c.tree.leaves(state.mu).filter((l) => l instanceof c.Tensor)).toHaveLength(2);
      const gd = gradData(16, 1);
      const g = build(gd);
      const [u, s] = opt.update(g, state, params);
      const ud = await read(u);
      // Pass-through leaves are the gradients, bit for bit.
      for (const j of [1, 3, 4]) expect(ud[j]).toEqual(gd[j]);
      // The others took one Adam step: -lr * g / (|g| + eps) at t = 1.
      for (const j of [0, 2]) {
        const want = Float64Array.from(gd[j], (x) => (-1e-2 * x) / (Math.abs(x) + 1e-8));
        expectClose([ud[j]], [want], [want.map((x) => C_U * EPS32 * Math.abs(x))], `masked leaf ${j}`);
      }
      // A mask given as a function of the params.
      const opt2 = optim.masked(optim.adam({ lr: 1e-2 }), () => mask);
      const s2 = opt2.init(params);
      const [u2, s3] = opt2.update(g, s2, params);
      expect(await read(u2)).toEqual(ud);
      c.tree.dispose([params, state, g, u, s, s2, u2, s3]);
    });

    it('masked: the updates are new handles, so disposing the gradients first is safe', async () => {
      const params = build(paramData(17));
      const opt = optim.masked(optim.adam({ lr: 1e-2 }), { enc: { w: true, b: false }, layers: [{ w: true, b: true }, { g: true }] });
      const state = opt.init(params);
      const g = build(gradData(17, 1));
      const [u, s] = opt.update(g, state, params);
      c.tree.dispose(g);
      try {
        const next = optim.applyUpdates(params, u);
        expect((await read(next))[1]).toEqual((await read(params))[1].map((x, i) => Math.fround(x + gradData(17, 1)[1][i])));
        c.tree.dispose(next);
      } finally {
        c.tree.dispose([params, state, u, s]);
      }
    });

    it('setToZero: zero updates, no state', async () => {
      const g = build(gradData(18, 1));
      const z = optim.setToZero();
      expect(z.init(g)).toBeNull();
      const [u, s] = z.update(g, null);
      expect(s).toBeNull();
      expect(await read(u)).toEqual(SHAPES.map((sh) => new Float32Array(count(sh))));
      c.tree.dispose([g, u]);
    });

    it('applyUpdates: p + u; null updates pass through as new handles; disposing the old params is safe', async () => {
      await c.sync();
      const before = c.memory();
      const pd = paramData(19);
      const ud = gradData(19, 1);
      const params = { ...build(pd), step: 7, nothing: null };
      const upd = build(ud);
      const updates = { enc: upd.enc, layers: [{ w: null, b: upd.layers[0].b }, { g: null }], step: null, nothing: null };
      const next = optim.applyUpdates(params, updates);
      expect(next.step).toBe(7);
      expect(next.nothing).toBeNull();
      expect(next.layers[0].w).not.toBe(params.layers[0].w);
      expect(next.layers[0].w.shape).toEqual(SHAPES[2]);
      c.tree.dispose([params, upd]);
      const got = await read(next);
      expect(got[2]).toEqual(pd[2]);
      expect(got[4]).toEqual(pd[4]);
      for (const j of [0, 1, 3]) expect(got[j]).toEqual(pd[j].map((x, i) => Math.fround(x + ud[j][i])));
      // Pass-through handles share their storage: three new buffers for the three sums only.
      await c.sync();
      const now = c.memory();
      expect(now.tensors - before.tensors).toBe(5);
      expect(now.buffers - before.buffers).toBe(5);
      c.tree.dispose(next);
      await c.sync();
      expect(c.memory()).toEqual(before);
    });
  });

  describe('applyStep: the update applied in fused kernels (adam, adamw), the gradients combined and gated inside them', () => {
    /** What a fused step composes: the same transformation without its fusedStep. */
    const composed = (opt: GT): GT => ({ init: (p) => opt.init(p), update: (g, s, p) => opt.update(g, s, p) });
    /** Gradients of the added term (a regularizer's), and the scale, for step k. */
    const extraData = (seed: number, k: number): Float32Array[] => gradData(seed + 7, k);
    const SCALE = Math.fround(0.37);
    const WEIGHT = 0.4;

    /** runLib through applyStep, with `options(k, toDispose)` giving each step's StepOptions. */
    async function runStep(opt: GT, seed: number, steps: number, at: number[], options: (k: number, own: unknown[]) => c.optim.StepOptions = () => ({})) {
      let params = build(paramData(seed));
      let state = opt.init(params);
      const out = new Map<number, Float32Array[]>();
      for (let k = 1; k <= steps; k++) {
        const g = build(gradData(seed, k));
        const own: unknown[] = [];
        const [next, s] = optim.applyStep(opt, g, state, params, options(k, own));
        c.tree.dispose([g, own, params, state]);
        params = next as P;
        state = s;
        if (at.includes(k)) out.set(k, await read(params));
      }
      const st = await read(state);
      c.tree.dispose([params, state]);
      return { params: out, state: st };
    }

    it('adamw (with a decay mask) and adam through applyStep: against the float64 reference, and the moments bit for bit those of update', async () => {
      const decay = [true, false, true, false, true];
      const mask = { enc: { w: true, b: false }, layers: [{ w: true, b: false }, { g: true }] };
      const cases: [GT, RefStep][] = [
        [optim.adamw({ lr: 5e-2, weightDecay: 0.3, mask }) as GT, adamRef({ lr: () => 5e-2, wd: 0.3, decay }, SHAPES.length).step],
        [optim.adam({ lr: optim.linearWarmup({ init: 0, peak: 2e-2, warmupSteps: 4 }), b1: 0.8, b2: 0.99, eps: 1e-4 }) as GT, adamRef({ lr: optim.linearWarmup({ init: 0, peak: 2e-2, warmupSteps: 4 }), b1: 0.8, b2: 0.99, eps: 1e-4 }, SHAPES.length).step],
      ];
      for (const [opt, step] of cases) {
        const at = [1, 5, 50];
        const lib = await runStep(opt, 40, 50, at);
        const ref = runRef(step, 40, 50, at, C_U);
        for (const k of at) expectClose(lib.params.get(k)!, ref.get(k)!.p, ref.get(k)!.tol, `applyStep params after ${k} steps`);
        // The moments are the same kernels' arithmetic as update's: bit for bit the same.
        expect(lib.state).toEqual((await runLib(opt, 40, 50, [])).state);
      }
    });

    it('gradScale (a scalar tensor), add and applyIf = 1 read inside the kernels: the float64 step of g * scale + r * weight, and the composed step', async () => {
      const opt = optim.adamw({ lr: 2e-2, weightDecay: 0.05 }) as GT;
      const options = (k: number, own: unknown[]): c.optim.StepOptions => {
        const scale = c.tensor(SCALE);
        const r = build(extraData(41, k));
        const one = c.tensor(1);
        own.push(scale, r, one);
        return { gradScale: scale, add: { grads: r, weight: WEIGHT }, applyIf: one };
      };
      const at = [1, 5, 50];
      const fusedRun = await runStep(opt, 41, 50, at, options);
      let k = 0;
      const pre = (g: Vecs): Vecs => {
        const r = f64(extraData(41, ++k));
        return g.map((gj, j) => gj.map((x, i) => x * SCALE + r[j][i] * WEIGHT));
      };
      const ref = runRef(adamRef({ lr: () => 2e-2, wd: 0.05 }, SHAPES.length).step, 41, 50, at, C_U + 4, pre);
      for (const s of at) expectClose(fusedRun.params.get(s)!, ref.get(s)!.p, ref.get(s)!.tol, `fused step after ${s} steps`);
      const composedRun = await runStep(composed(opt), 41, 50, at, options);
      for (const s of at) {
        // Each within tol of the float64 reference, so within 2 tol of each other.
        expectClose(composedRun.params.get(s)!, fusedRun.params.get(s)!.map((d) => Float64Array.from(d)), ref.get(s)!.tol.map((t) => t.map((x) => 2 * x)), `composed vs fused after ${s} steps`);
      }
      // A number scale, and the composed path of another optimizer (sgd has no fused step).
      const numbered = await runStep(opt, 41, 5, [5], (q, own) => ({ ...options(q, own), gradScale: SCALE }));
      expectClose(numbered.params.get(5)!, fusedRun.params.get(5)!.map((d) => Float64Array.from(d)), ref.get(5)!.tol, 'a number scale');
      const sgd = optim.sgd({ lr: 0.1, momentum: 0.9 }) as GT;
      expect((await runStep(sgd, 42, 3, [3])).params.get(3)).toEqual((await runLib(sgd, 42, 3, [3])).params.get(3));
    });

    it('applyIf = 0 keeps the params and the moments (a NaN gradient included) and advances the count, fused and composed', async () => {
      for (const opt of [optim.adamw({ lr: 2e-2 }) as GT, composed(optim.adamw({ lr: 2e-2 }) as GT)]) {
        const params = build(paramData(43));
        const [, s1] = [null, opt.init(params)];
        const g1 = build(gradData(43, 1));
        const [p1, s2] = optim.applyStep(opt, g1, s1, params);
        const gd = gradData(43, 2);
        gd[0][3] = NaN;
        const g2 = build(gd);
        const zero = c.tensor(0);
        const [p2, s3] = optim.applyStep(opt, g2, s2, p1, { applyIf: zero, gradScale: c.tensor(NaN) });
        expect(await read(p2)).toEqual(await read(p1));
        expect(await read(s3)).toEqual(await read(s2));
        expect((s3 as c.optim.AdamState).count).toBe(2);
        c.tree.dispose([params, s1, g1, p1, s2, g2, zero, p2, s3]);
      }
    });

    it('a gradient through applyStep runs the composed step (adamw: d p_new / d p = 1 - lr wd)', async () => {
      const opt = optim.adamw({ lr: 0.1, weightDecay: 0.5, mask: { enc: { w: true, b: false }, layers: [{ w: true, b: false }, { g: true }] } });
      const params = build(paramData(44));
      const g = build(gradData(44, 1));
      const s0 = opt.init(params);
      const scale = c.tensor(0.5);
      const total = (p: P): Tensor =>
        c.tidy(() => {
          const [next] = optim.applyStep(opt, g, s0, p, { gradScale: scale });
          return c.tree.leaves(next).reduce<Tensor>((acc, l) => c.add(acc, c.sum(l as Tensor)), c.tensor(0));
        });
      const d = c.grad(total)(params);
      const got = await read(d);
      const want = [1 - 0.05, 1, 1 - 0.05, 1, 1 - 0.05];
      got.forEach((leaf, j) => leaf.forEach((x) => expect(Math.abs(x - want[j])).toBeLessThanOrEqual(2 * EPS32)));
      c.tree.dispose([params, g, s0, scale, d]);
    });

    it('kernel launches: globalNorm of 24 leaves in 5, adamw 1 per leaf on wasm (3 elsewhere) whatever the options', async () => {
      const xs = Array.from({ length: 24 }, (_, i) => c.tensor(randomData(3 + i, 45 + i, -1, 1)));
      const params = Array.from({ length: 24 }, (_, i) => c.tensor(randomData(3 + i, 90 + i, -1, 1)));
      await c.sync();
      let before = internal.launches();
      const n = optim.globalNorm(xs);
      await c.sync();
      expect(internal.launches() - before).toBe(5);
      const opt = optim.adamw({ lr: 1e-2 });
      const s0 = opt.init(params);
      const coef = optim.clipCoefficient(n, 1);
      const one = c.tensor(1);
      await c.sync();
      before = internal.launches();
      const [p1, s1] = optim.applyStep(opt, xs, s0, params, { gradScale: coef, add: { grads: xs, weight: 0.4 }, applyIf: one });
      await c.sync();
      // wasm: one kernel a leaf stores the moments and the parameter one after another.
      expect(internal.launches() - before).toBe((c.backend() === 'wasm' ? 1 : 3) * 24);
      c.tree.dispose([xs, params, n, s0, coef, one, p1, s1]);
    });

    it('globalNorm over many leaves (more than 49: two combining levels) is the float64 norm; scaled, so no overflow or underflow; NaN and Inf propagate', async () => {
      const sizes = Array.from({ length: 60 }, (_, i) => (i * 7) % 23);
      const ds = sizes.map((s, i) => randomData(s, 200 + i, -3, 3));
      const xs = ds.map((d) => c.tensor(d));
      let ss = 0;
      for (const d of ds) for (const x of d) ss += x * x;
      const n = optim.globalNorm({ xs, none: null });
      expect(Math.abs((await n.data())[0] - Math.sqrt(ss))).toBeLessThanOrEqual(64 * EPS32 * Math.sqrt(ss));
      const big = optim.globalNorm(Array.from({ length: 9 }, () => c.tensor([3e30, -4e30])));
      expect((await big.data())[0] / (5e30 * 3)).toBeCloseTo(1, 5);
      const tiny = optim.globalNorm([c.tensor([3e-30]), c.tensor([4e-30])]);
      expect((await tiny.data())[0] / 5e-30).toBeCloseTo(1, 5);
      const withNaN = optim.globalNorm([...xs.slice(0, 10), c.tensor([1, NaN])]);
      expect((await withNaN.data())[0]).toBeNaN();
      const withInf = optim.globalNorm([...xs.slice(0, 10), c.tensor([1, -Infinity])]);
      expect((await withInf.data())[0]).toBe(Infinity);
      // Under a gradient the composed norm runs: d‖x‖/dx = x / ‖x‖.
      const gr = c.grad((t: Tensor[]) => optim.globalNorm(t))(xs.slice(0, 9));
      const g9 = await read(gr);
      let s9 = 0;
      for (const d of ds.slice(0, 9)) for (const x of d) s9 += x * x;
      g9.forEach((leaf, j) => leaf.forEach((x, i) => expect(Math.abs(x - ds[j][i] / Math.sqrt(s9))).toBeLessThanOrEqual(64 * EPS32)));
      c.tree.dispose([xs, n, big, tiny, withNaN, withInf, gr]);
    });
  });

  describe('purity and memory', () => {
    it('update mutates nothing: gradients, state and params keep their values, objects and count', async () => {
      const opts: [string, GT][] = [
        ['adamw', optim.adamw({ lr: 1e-2 }) as GT],
        ['sgd momentum', optim.sgd({ lr: 1e-2, momentum: 0.9 }) as GT],
        ['chain(clip, adamw)', optim.chain(optim.clipByGlobalNorm(0.5), optim.adamw({ lr: 1e-2 })) as GT],
        ['partition', optim.partition({ a: optim.adam({ lr: 1e-2 }), z: optim.setToZero() }, { enc: { w: 'a', b: 'z' }, layers: [{ w: 'a', b: 'a' }, { g: 'z' }] }) as GT],
        ['masked', optim.masked(optim.adam({ lr: 1e-2 }), { enc: { w: true, b: false }, layers: [{ w: true, b: true }, { g: false }] })],
      ];
      for (const [label, opt] of opts) {
        const params = build(paramData(20));
        const g0 = build(gradData(20, 1));
        // A state after one step, so the moments are not zeros.
        const s0 = opt.init(params);
        const [u0, state] = opt.update(g0, s0, params);
        c.tree.dispose([s0, u0]);
        const g = build(gradData(20, 2));
        const snapshot = async (): Promise<unknown> => ({ g: await read(g), s: await read(state), p: await read(params) });
        const shape = JSON.stringify(state, (_k, v: unknown) => (v instanceof c.Tensor ? `T${v.shape}` : v));
        const leavesBefore = [...c.tree.leaves(g), ...c.tree.leaves(state), ...c.tree.leaves(params)];
        const before = await snapshot();
        const [u, s2] = opt.update(g, state, params);
        await c.sync();
        expect(await snapshot(), label).toEqual(before);
        expect(JSON.stringify(state, (_k, v: unknown) => (v instanceof c.Tensor ? `T${v.shape}` : v)), label).toBe(shape);
        const leavesAfter = [...c.tree.leaves(g), ...c.tree.leaves(state), ...c.tree.leaves(params)];
        expect(leavesAfter.every((l, i) => l === leavesBefore[i]), label).toBe(true);
        expect(leavesAfter.some((l) => l instanceof c.Tensor && l.isDisposed), label).toBe(false);
        expect(s2, label).not.toBe(state);
        c.tree.dispose([params, g0, g, state, u, s2]);
      }
    });

    it('400 steps of an MLP with chain(clipByGlobalNorm, adamw): memory flat, back to the baseline, loss down', async () => {
      await c.sync();
      const base = c.memory();
      const [B, D, H, C] = [16, 4, 8, 3];
      const xd = randomData(B * D, 30, -2, 2);
      // Labels from a fixed linear rule, so the data can be fit.
      const yd = Array.from({ length: B }, (_, i) => {
        const r = xd.slice(i * D, (i + 1) * D);
        return r[0] + r[1] > 0.5 ? 0 : r[2] - r[3] > 0 ? 1 : 2;
      });
      const x = c.tensor(xd, [B, D]);
      const y = c.tensor(yd, [B], 'int32');
      let params = {
        l1: { W: c.tensor(randomData(H * D, 31, -0.5, 0.5), [H, D]), b: c.tensor(new Float32Array(H)) },
        l2: { W: c.tensor(randomData(C * H, 32, -0.5, 0.5), [C, H]), b: c.tensor(new Float32Array(C)) },
      };
      type Params = typeof params;
      const loss = (p: Params): Tensor => c.nn.crossEntropy(c.nn.linear(c.nn.relu(c.nn.linear(x, p.l1.W, p.l1.b)), p.l2.W, p.l2.b), y);
      const vg = c.valueAndGrad(loss);
      const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adamw({ lr: optim.warmupCosineDecay({ peak: 3e-2, warmupSteps: 12, decaySteps: 400 }) }));
      let state = opt.init(params);
      const losses: number[] = [];
      let steady: ReturnType<typeof c.memory> | undefined;
      for (let i = 0; i < 400; i++) {
        const [value, g] = vg(params);
        const [u, s] = opt.update(g, state, params);
        const next = optim.applyUpdates(params, u);
        if (i === 0 || i === 399) losses.push((await value.data())[0]);
        c.tree.dispose([value, g, u, state, params]);
        params = next;
        state = s;
        if (i % 50 === 0 || i === 399) {
          await c.sync();
          const now = c.memory();
          if (!steady) steady = now;
          else expect(now, `memory at step ${i}`).toEqual(steady);
        }
      }
      expect((state[1] as c.optim.AdamState).count).toBe(400);
      expect(losses[1]).toBeLessThan(0.5 * losses[0]);
      c.tree.dispose([params, state, x, y]);
      await c.sync();
      expect(c.memory()).toEqual(base);
    });
  });
});
