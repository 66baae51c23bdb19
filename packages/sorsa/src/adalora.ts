/**
 * The AdaLoRA baseline as PEFT implements it: adapters `{ A, E, B }` on the frozen weight, an
 * orthogonal regularizer added to the task loss, and rank allocation (importance EMAs, a cubic
 * budget schedule, masking of the lowest-scoring triplets) after each optimizer step.
 *
 * @example
 * ```ts
 * import { adalora } from '@sorsajs/sorsa';
 * const { adapter, residual } = adalora.initAdapter(W, { rank: 12, key: random.key(0) });
 * const y = adalora.adaptedLinear(adapter, residual, x);
 * const alloc = adalora.allocator({ targetR: 8, tinit: 100, tfinal: 200, totalSteps: 1000 });
 * ```
 * @module
 */
import { Tensor, abs, add, concat, div, eye, full, less, matmul, mean, mul, norm, random, reshape, slice, sub, sum, tidy, tree, where, zeros } from '@sorsajs/core';
import { checkFiniteNumber, checkFiniteValues, describe } from '@sorsajs/core/internal';
import { checkRank, checkWeight, factors } from './checks.js';
import { findIn, isAdaloraAdapter, type AdaloraAdapter, type Init } from './types.js';

export { merge, adaptedLinear, linear } from './forward.js';

/** PEFT's defaults (`AdaLoraConfig`). */
export const DEFAULTS = {
  /** Initial rank of each adapter. */
  initR: 12,
  /** Average rank per adapter that the budget ends at. */
  targetR: 8,
  /** EMA factor of the sensitivity Ī. */
  beta1: 0.85,
  /** EMA factor of the uncertainty Ū. */
  beta2: 0.85,
  /** Steps between two maskings during the budget phase. */
  deltaT: 1,
  /** Weight of the orthogonal regularizer added to the task loss. */
  orthRegWeight: 0.5,
} as const;

/**
 * Options of `adalora.initAdapter`.
 *
 * @example
 * ```ts
 * adalora.initAdapter(W, { rank: 12, alpha: 32, key: random.key(0) });
 * ```
 */
export interface AdaloraInitOptions {
  /** The initial rank r (PEFT's `init_r`, default 12 in its config), in [1, min(out, in)]. */
  rank: number;
  /** PEFT's `lora_alpha`: the scaling is alpha when alpha > 0, else r. Default 0 (scaling r). */
  alpha?: number;
  /** Key of A's and B's initialization. */
  key: random.Key;
}

/**
 * An AdaLoRA adapter for `W [out, in]`, as PEFT's `SVDLinear`: E `[r, 1]` zero, A `[r, in]` and
 * B `[out, r]` from N(0, 0.02²) (A with `random.foldIn(key, 0)`, B with `foldIn(key, 1)`), so the
 * adapted weight starts at W. `adapter.scale` is `scaling / (r + 1e-5)` with scaling = alpha if
 * alpha > 0, else r; r stays the initial rank (PEFT's `ranknum`) while rank is pruned. The residual
 * is W itself (a new handle on the same storage).
 *
 * @example
 * ```ts
 * const { adapter, residual } = adalora.initAdapter(W, { rank: 12, key: random.key(0) });
 * adapter.E;      // zeros [12, 1]
 * ```
 */
export function initAdapter(W: Tensor, opts: AdaloraInitOptions): Init<AdaloraAdapter> {
  const fn = 'adalora.initAdapter';
  checkWeight(fn, W);
  const rank = checkRank(fn, opts?.rank, W.shape);
  const alpha = opts.alpha ?? 0;
  checkFiniteNumber(fn, 'alpha', alpha);
  if (!(opts.key instanceof random.Key)) throw new Error(`${fn}: key must be a random.Key, got ${describe(opts.key)}`);
  checkFiniteValues(fn, W, 'W');
  const [out, inp] = W.shape;
  const scale = scaleFor(rank, alpha);
  return tidy(() => ({
    adapter: {
      A: random.normal(random.foldIn(opts.key, 0), [rank, inp], { std: 0.02 }),
      E: zeros([rank, 1]),
      B: random.normal(random.foldIn(opts.key, 1), [out, rank], { std: 0.02 }),
      scale,
    },
    residual: reshape(W, W.shape),
  }));
}

/**
 * PEFT's factor `scaling / (ranknum + 1e-5)`, scaling = alpha if alpha > 0, else r.
 *
 * @example
 * ```ts
 * adalora.scaleFor(12, 0);   // 12 / (12 + 1e-5)
 * adalora.scaleFor(12, 32);  // 32 / (12 + 1e-5)
 * ```
 */
export function scaleFor(rank: number, alpha: number): number {
  return (alpha > 0 ? alpha : rank) / (rank + 1e-5);
}

/** Every AdaLoRA adapter in a tree with its dotted path (adapters are not searched inside). */
export function findAdapters(t: unknown): {
  /** The adapter's dotted path in the tree. */
  path: string;
  /** The adapter itself. */
  adapter: AdaloraAdapter;
}[] {
  return findIn(t, isAdaloraAdapter);
}

/**
 * PEFT's orthogonal regularizer: the mean, over every A and every B of every AdaLoRA adapter in
 * `tree`, of the unsquared Frobenius norms `‖A Aᵀ − I‖` and `‖Bᵀ B − I‖`. A scalar tensor,
 * differentiable; 0 when the tree holds no AdaLoRA adapter. Add it to the task loss with weight
 * `orthRegWeight` (PEFT's default 0.5), so that it is inside the clipped gradient.
 *
 * @example
 * ```ts
 * const loss = (t, f, b) => add(task(mergeParams(t, f), b), mul(adalora.orthRegularizer(t), 0.5));
 * ```
 */
export function orthRegularizer(t: unknown): Tensor {
  const found = findAdapters(t);
  for (const { path, adapter } of found) factors('adalora.orthRegularizer', adapter, path ? `adapter "${path}"` : 'adapter');
  if (found.length === 0) return zeros([]);
  return tidy(() => {
    let total: Tensor | null = null;
    for (const { adapter: { A, B } } of found) {
      const r = A.shape[0];
      const I = eye(r);
      const both = add(norm(sub(matmul(A, A, { transposeB: true }), I)), norm(sub(matmul(B, B, { transposeA: true }), I)));
      total = total ? add(total, both) : both;
    }
    return div(total as Tensor, 2 * found.length);
  });
}

/**
 * The budget schedule's options (PEFT's `AdaLoraConfig` names in brackets).
 *
 * @example
 * ```ts
 * adalora.budget(150, { initBudget: 48, targetBudget: 32, tinit: 100, tfinal: 200, totalSteps: 1000, deltaT: 10 });
 * ```
 */
export interface BudgetOptions {
  /** The sum of the initial ranks. */
  initBudget: number;
  /** targetR times the number of adapters. */
  targetBudget: number;
  /** Steps of warm-up before pruning starts (`tinit`). */
  tinit: number;
  /** Steps at the end with the final rank pattern fixed (`tfinal`). */
  tfinal: number;
  /** Total training steps (`total_step`). */
  totalSteps: number;
  /** Steps between two maskings (`deltaT`, default 1). */
  deltaT?: number;
}

/**
 * PEFT's budget schedule at `step`: `{ budget: initBudget, mask: false }` while step ≤ tinit;
 * `{ budget: targetBudget, mask: true }` once step > totalSteps − tfinal; in between, budget =
 * floor((initBudget − targetBudget) · (1 − (step − tinit) / (totalSteps − tfinal − tinit))³ +
 * targetBudget), with mask when step % deltaT == 0.
 *
 * @example
 * ```ts
 * adalora.budget(0, { initBudget: 48, targetBudget: 32, tinit: 10, tfinal: 20, totalSteps: 100 }); // { budget: 48, mask: false }
 * ```
 */
export function budget(
  step: number,
  opts: BudgetOptions,
): {
  /** How many triplets may stay nonzero over all adapters after this step. */
  budget: number;
  /** Whether this step masks E down to the budget. */
  mask: boolean;
} {
  const fn = 'adalora.budget';
  const { initBudget, targetBudget, tinit, tfinal, totalSteps } = opts;
  const deltaT = opts.deltaT ?? DEFAULTS.deltaT;
  const ints = { step, initBudget, targetBudget, tinit, tfinal, totalSteps, deltaT };
  for (const [k, v] of Object.entries(ints)) if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${fn}: ${k} must be an integer >= 0, got ${String(v)}`);
  if (deltaT < 1) throw new Error(`${fn}: deltaT must be >= 1, got ${deltaT}`);
  if (tinit >= totalSteps - tfinal) throw new Error(`${fn}: tinit (${tinit}) must be below totalSteps - tfinal (${totalSteps} - ${tfinal}): the budget phase would be empty`);
  if (targetBudget > initBudget) throw new Error(`${fn}: targetBudget (${targetBudget}) must not exceed initBudget (${initBudget})`);
  if (step <= tinit) return { budget: initBudget, mask: false };
  if (step > totalSteps - tfinal) return { budget: targetBudget, mask: true };
  const c = 1 - (step - tinit) / (totalSteps - tfinal - tinit);
  return { budget: Math.floor((initBudget - targetBudget) * c ** 3 + targetBudget), mask: step % deltaT === 0 };
}

/**
 * Importance statistics of every entry of one adapter's A, E and B (same shapes).
 *
 * @example
 * ```ts
 * const s: adalora.Scores = state.ipt['blocks.0.wq'];   // { A, E, B }
 * ```
 */
export interface Scores {
  /** `[r, in]`. */
  A: Tensor;
  /** `[r, 1]`. */
  E: Tensor;
  /** `[out, r]`. */
  B: Tensor;
}

/**
 * The rank allocator's state: a tree of tensors, keyed by adapter path.
 *
 * @example
 * ```ts
 * let state: adalora.AllocatorState = alloc.init(trainable);
 * ```
 */
export interface AllocatorState {
  /** The sensitivity EMA Ī of every entry (PEFT's `exp_avg_ipt`). */
  ipt: Record<string, Scores>;
  /** The uncertainty EMA Ū of every entry (PEFT's `exp_avg_unc`). */
  unc: Record<string, Scores>;
  /** Per adapter `[r]`: 1 where the triplet is kept, 0 where the last masking pruned it. */
  pattern: Record<string, Tensor>;
}

/**
 * Options of `adalora.allocator` (PEFT's `AdaLoraConfig`; its defaults where optional).
 *
 * @example
 * ```ts
 * adalora.allocator({ targetR: 8, tinit: 200, tfinal: 1000, totalSteps: 5000, deltaT: 10 });
 * ```
 */
export interface AllocatorOptions {
  /** The average target rank per adapter (`target_r`, default 8). */
  targetR?: number;
  /** Warm-up steps before pruning (`tinit`). */
  tinit: number;
  /** Final steps with the rank pattern fixed (`tfinal`). */
  tfinal: number;
  /** Total training steps (`total_step`). */
  totalSteps: number;
  /** Steps between maskings (`deltaT`, default 1). */
  deltaT?: number;
  /** Sensitivity EMA coefficient (`beta1`, default 0.85). */
  beta1?: number;
  /** Uncertainty EMA coefficient (`beta2`, default 0.85). */
  beta2?: number;
}

/**
 * What `allocator().update` returns.
 *
 * @example
 * ```ts
 * const { trainable: pruned, state: next, budget, masked } = alloc.update(trainable, grads, state, step);
 * ```
 */
export interface AllocatorUpdate<T> {
  /** The trainable tree with pruned E entries set to 0 (new handles throughout). */
  trainable: T;
  /** The next allocator state. */
  state: AllocatorState;
  /** This step's budget. */
  budget: number;
  /** Whether this step masked to the budget (or, after the budget phase, applied the fixed pattern). */
  masked: boolean;
}

/**
 * A pure rank allocator (PEFT's `RankAllocator` and `update_and_allocate`).
 *
 * @example
 * ```ts
 * const alloc = adalora.allocator({ tinit: 10, tfinal: 20, totalSteps: 100 });
 * let state = alloc.init(trainable);
 * ```
 */
export interface Allocator {
  /** Zero EMAs and an all-kept pattern for every AdaLoRA adapter of `trainable`. */
  init<T extends Record<string, unknown>>(trainable: T): AllocatorState;
  /** One allocation after the optimizer step `step`; see `allocator`. */
  update<T extends Record<string, unknown>>(trainable: T, grads: unknown, state: AllocatorState, step: number): AllocatorUpdate<T>;
}

/** New handles on every tensor of a tree (the caller may dispose the input and the output separately). */
const handles = <T>(t: T): T => tree.map((x) => (x instanceof Tensor ? reshape(x, x.shape) : x), t) as T;

/** The AdaLoRA adapters of a trainable record, in key order, checked. */
function adaptersOf(fn: string, trainable: unknown): [string, AdaloraAdapter][] {
  if (!tree.isNode(trainable) || Array.isArray(trainable)) throw new Error(`${fn}: trainable must be a record of adapters keyed by path, got ${describe(trainable)}`);
  const out: [string, AdaloraAdapter][] = [];
  for (const [p, a] of Object.entries(trainable)) {
    if (!isAdaloraAdapter(a)) continue;
    factors(fn, a, `adapter "${p}"`);
    out.push([p, a]);
  }
  if (out.length === 0) throw new Error(`${fn}: trainable holds no AdaLoRA adapter { A, E, B } (keys: ${Object.keys(trainable).slice(0, 8).join(', ')})`);
  return out;
}

/** `x`'s tensors of an adapter path, or an Error naming what is missing. */
function scoresAt(fn: string, t: unknown, what: string, p: string): Scores {
  const s = tree.isNode(t) && !Array.isArray(t) && Object.hasOwn(t, p) ? (t as Record<string, unknown>)[p] : undefined;
  if (!tree.isNode(s) || Array.isArray(s) || !(s.A instanceof Tensor) || !(s.E instanceof Tensor) || !(s.B instanceof Tensor)) {
    throw new Error(`${fn}: ${what} has no { A, E, B } tensors at "${p}", got ${describe(s)}`);
  }
  return s as unknown as Scores;
}

/**
 * One step of the importance EMAs (PEFT's `update_ipt`), for every entry p of A, E and B with
 * gradient g: ipt = |p ⊙ g|, Ī ← β1 Ī + (1 − β1) ipt, Ū ← β2 Ū + (1 − β2) |ipt − Ī| (with the
 * new Ī). Pure: returns new `ipt` and `unc` records; the pattern is carried over.
 *
 * @example
 * ```ts
 * const next = adalora.updateImportance(trainable, grads, state, 0.85, 0.85);
 * ```
 */
export function updateImportance(trainable: Record<string, unknown>, grads: unknown, state: AllocatorState, beta1: number = DEFAULTS.beta1, beta2: number = DEFAULTS.beta2): AllocatorState {
  const fn = 'adalora.updateImportance';
  for (const [k, b] of [['beta1', beta1], ['beta2', beta2]] as const) if (!(typeof b === 'number' && b >= 0 && b < 1)) throw new Error(`${fn}: ${k} must be in [0, 1), got ${String(b)}`);
  const found = adaptersOf(fn, trainable);
  return tidy(() => {
    const ipt: Record<string, Scores> = {};
    const unc: Record<string, Scores> = {};
    const pattern: Record<string, Tensor> = {};
    for (const [p, a] of found) {
      const g = scoresAt(fn, grads, 'grads', p);
      const I0 = scoresAt(fn, state?.ipt, 'state.ipt', p);
      const U0 = scoresAt(fn, state?.unc, 'state.unc', p);
      const i1 = {} as Scores;
      const u1 = {} as Scores;
      for (const k of ['A', 'E', 'B'] as const) {
        const now = abs(mul(a[k], g[k]));
        i1[k] = add(mul(I0[k], beta1), mul(now, 1 - beta1));
        u1[k] = add(mul(U0[k], beta2), mul(abs(sub(now, i1[k])), 1 - beta2));
      }
      ipt[p] = i1;
      unc[p] = u1;
      const pat = state?.pattern && Object.hasOwn(state.pattern, p) ? state.pattern[p] : undefined;
      if (!(pat instanceof Tensor)) throw new Error(`${fn}: state.pattern has no tensor at "${p}"`);
      pattern[p] = reshape(pat, pat.shape);
    }
    return { ipt, unc, pattern };
  });
}

/**
 * Masks to `budget` (PEFT's `mask_to_budget`): each triplet i of an adapter scores s(E_i) + mean_j
 * s(A_ij) + mean_k s(B_ki), with s = Ī ⊙ Ū; the threshold is the (initBudget − budget)-th smallest
 * triplet score over all adapters (initBudget the sum of their ranks), and every E_i whose score is
 * ≤ the threshold is set to 0. Decided on the device, with no read-back: triplet i is pruned exactly
 * when fewer than k = initBudget − budget scores are strictly below its own. With k ≤ 0 nothing is
 * pruned. Returns the masked trainable record (new handles) and the new pattern.
 *
 * @example
 * ```ts
 * const { trainable: pruned, pattern } = adalora.maskToBudget(trainable, state, 32);
 * ```
 */
export function maskToBudget<T extends Record<string, unknown>>(
  trainable: T,
  state: AllocatorState,
  budgetNow: number,
): {
  /** The trainable tree with the lowest-scoring triplets' E entries set to 0. */
  trainable: T;
  /** Per adapter path, 1 where a triplet is kept and 0 where it was pruned (PEFT's rank_pattern). */
  pattern: Record<string, Tensor>;
} {
  const fn = 'adalora.maskToBudget';
  const found = adaptersOf(fn, trainable);
  const initBudget = found.reduce((s, [, a]) => s + a.A.shape[0], 0);
  if (typeof budgetNow !== 'number' || !Number.isInteger(budgetNow) || budgetNow < 0) throw new Error(`${fn}: budget must be an integer >= 0, got ${String(budgetNow)}`);
  const k = initBudget - budgetNow;
  return tidy(() => {
    const triplet: Tensor[] = [];
    for (const [p, a] of found) {
      const I = scoresAt(fn, state?.ipt, 'state.ipt', p);
      const U = scoresAt(fn, state?.unc, 'state.unc', p);
      const r = a.A.shape[0];
      for (const key of ['A', 'E', 'B'] as const) {
        if (I[key].shape.join() !== a[key].shape.join() || U[key].shape.join() !== a[key].shape.join()) {
          throw new Error(`${fn}: the scores of "${p}".${key} are [${I[key].shape}] / [${U[key].shape}], its tensor [${a[key].shape}]`);
        }
      }
      const sE = reshape(mul(I.E, U.E), [r]);
      const sA = mean(mul(I.A, U.A), 1);
      const sB = mean(mul(I.B, U.B), 0);
      triplet.push(add(add(sE, sA), sB));
    }
    const all = triplet.length === 1 ? triplet[0] : concat(triplet, 0);
    const n = all.shape[0];
    // below[i] = #{j : s_j < s_i}; triplet i is pruned when below[i] < k (it is <= the k-th smallest).
    const below = sum(less(reshape(all, [1, n]), reshape(all, [n, 1])), 1);
    const keep = k > 0 ? sub(1, less(below, k)) : full([n], 1);
    const out = handles(trainable) as Record<string, unknown>;
    const pattern: Record<string, Tensor> = {};
    let offset = 0;
    for (const [p, a] of found) {
      const r = a.A.shape[0];
      const kp = slice(keep, [offset], [r]);
      offset += r;
      pattern[p] = kp;
      (out[p] as AdaloraAdapter).E = where(reshape(kp, [r, 1]), a.E, 0);
    }
    return { trainable: out as T, pattern };
  });
}

/**
 * PEFT's rank allocation as a pure transform. `init(trainable)` gives zero EMAs and an all-kept
 * pattern; `update(trainable, grads, state, step)` runs after optimizer step `step`, on the updated
 * trainable record and that step's (clipped) gradients, as PEFT's `update_and_allocate`:
 * - while step < totalSteps − tfinal: the importance EMAs are updated (`updateImportance`), and when
 *   `budget(step).mask`, E is masked to the budget (`maskToBudget`);
 * - at step = totalSteps − tfinal: masked to the target budget (targetR · number of adapters), the
 *   pattern is fixed and the EMAs are reset;
 * - after it: the fixed pattern is applied again (E entries it pruned are set back to 0).
 * The initial budget is the sum of the initial ranks. Nothing is read back; inputs are neither
 * mutated nor disposed (dispose what the outputs replace).
 *
 * @example
 * ```ts
 * const alloc = adalora.allocator({ targetR: 8, tinit: 10, tfinal: 20, totalSteps: 100 });
 * let state = alloc.init(trainable);
 * // after each step: const r = alloc.update(next.trainable, next.grads, state, step);
 * ```
 */
export function allocator(opts: AllocatorOptions): Allocator {
  const fn = 'adalora.allocator';
  const targetR = opts?.targetR ?? DEFAULTS.targetR;
  const beta1 = opts.beta1 ?? DEFAULTS.beta1;
  const beta2 = opts.beta2 ?? DEFAULTS.beta2;
  const deltaT = opts.deltaT ?? DEFAULTS.deltaT;
  if (!Number.isInteger(targetR) || targetR < 0) throw new Error(`${fn}: targetR must be an integer >= 0, got ${String(targetR)}`);
  const sched = (step: number, initBudget: number, count: number): { budget: number; mask: boolean } =>
    budget(step, { initBudget, targetBudget: targetR * count, tinit: opts.tinit, tfinal: opts.tfinal, totalSteps: opts.totalSteps, deltaT });
  // Check the schedule's options once, up front.
  sched(0, Number.MAX_SAFE_INTEGER, 0);
  for (const [k, b] of [['beta1', beta1], ['beta2', beta2]] as const) if (!(typeof b === 'number' && b >= 0 && b < 1)) throw new Error(`${fn}: ${k} must be in [0, 1), got ${String(b)}`);
  const zerosLike = (a: AdaloraAdapter): Scores => ({ A: zeros(a.A.shape), E: zeros(a.E.shape), B: zeros(a.B.shape) });
  const fresh = (found: [string, AdaloraAdapter][]): { ipt: Record<string, Scores>; unc: Record<string, Scores> } => {
    const ipt: Record<string, Scores> = {};
    const unc: Record<string, Scores> = {};
    for (const [p, a] of found) [ipt[p], unc[p]] = [zerosLike(a), zerosLike(a)];
    return { ipt, unc };
  };
  return {
    init: (trainable) => {
      const found = adaptersOf(`${fn}.init`, trainable);
      return tidy(() => {
        const pattern: Record<string, Tensor> = {};
        for (const [p, a] of found) pattern[p] = add(zeros([a.A.shape[0]]), 1);
        return { ...fresh(found), pattern };
      });
    },
    update: (trainable, grads, state, step) => {
      const f = `${fn}.update`;
      const found = adaptersOf(f, trainable);
      if (!Number.isInteger(step) || step < 0) throw new Error(`${f}: step must be an integer >= 0, got ${String(step)}`);
      const initBudget = found.reduce((s, [, a]) => s + a.A.shape[0], 0);
      if (targetR * found.length > initBudget) {
        throw new Error(`${f}: targetR (${targetR}) times the ${found.length} adapters is ${targetR * found.length}, more than the sum of their initial ranks (${initBudget}): the target budget cannot exceed the initial one`);
      }
      const T = opts.totalSteps - opts.tfinal;
      const b = sched(step, initBudget, found.length);
      return tidy(() => {
        if (step < T) {
          const next = updateImportance(trainable, grads, state, beta1, beta2);
          if (!b.mask) return { trainable: handles(trainable), state: next, budget: b.budget, masked: false };
          const m = maskToBudget(trainable, next, b.budget);
          return { trainable: m.trainable, state: { ipt: next.ipt, unc: next.unc, pattern: m.pattern }, budget: b.budget, masked: true };
        }
        if (step === T) {
          const m = maskToBudget(trainable, state, b.budget);
          return { trainable: m.trainable, state: { ...fresh(found), pattern: m.pattern }, budget: b.budget, masked: true };
        }
        const out = handles(trainable) as Record<string, unknown>;
        const pattern: Record<string, Tensor> = {};
        for (const [p, a] of found) {
          const pat = state?.pattern && Object.hasOwn(state.pattern, p) ? state.pattern[p] : undefined;
          if (!(pat instanceof Tensor)) throw new Error(`${f}: state.pattern has no tensor at "${p}"`);
          pattern[p] = reshape(pat, pat.shape);
          (out[p] as AdaloraAdapter).E = where(reshape(pat, [a.A.shape[0], 1]), a.E, 0);
        }
        return { trainable: out as typeof trainable, state: { ipt: handles(state.ipt), unc: handles(state.unc), pattern }, budget: b.budget, masked: true };
      });
    },
  };
}

/**
 * The rank pattern as PEFT's config holds it: for every adapter path `p` (module `m`, `p` without
 * `.weight`), `"<m>.lora_E"` maps to a boolean per triplet, true where it is kept. Async: the
 * pattern is read back.
 *
 * @example
 * ```ts
 * const rp = await adalora.rankPattern(state);  // { 'h.0.attn.c_attn.lora_E': [true, false, ...] }
 * ```
 */
export async function rankPattern(state: AllocatorState, modulePath: (path: string) => string = (p) => p.replace(/\.weight$/, '')): Promise<Record<string, boolean[]>> {
  const out: Record<string, boolean[]> = {};
  for (const [p, t] of Object.entries(state?.pattern ?? {})) {
    if (!(t instanceof Tensor)) throw new Error(`adalora.rankPattern: state.pattern["${p}"] is ${describe(t)}, not a Tensor`);
    const v = await t.data();
    Object.defineProperty(out, `${modulePath(p)}.lora_E`, { value: Array.from(v, (x) => x !== 0), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
