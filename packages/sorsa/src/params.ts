/**
 * Whole parameter trees: `adaptParams` splits a model's params into trainable adapters and frozen
 * residuals, `mergeParams` rebuilds plain params from them (differentiably, inside the loss), and
 * `factoredParams` gives `@sorsajs/models`' forward the adapted layers unmerged.
 * @module
 */
import { Tensor, random, reshape, sync, tidy, tree } from '@sorsajs/core';
import { describe } from '@sorsajs/core/internal';
import { checkResidual, checkWeight, factors } from './checks.js';
import { adaptedLinear, merge } from './forward.js';
import type { ForwardParams, LinearWeight } from '@sorsajs/models';
import { initAdapter } from './init.js';
import type { SvdInitOptions } from './svd.js';
import * as adalora from './adalora.js';
import * as lora from './lora.js';
import * as pissa from './pissa.js';
import type { Adapter, Trainable } from './types.js';

/**
 * The plain parameter tree that `trainable` and `frozen` stand for: `frozen` (the original params
 * tree with each adapted weight replaced by its residual) where every path `p` that `trainable`
 * holds an adapter for becomes `merge(trainable[p], frozen at p)`. Every other frozen leaf passes
 * through (as a new handle on the same storage, so the result may be disposed on its own).
 * Differentiable in `trainable`: call it inside the loss and model code written for plain weights
 * runs unchanged; the frozen residuals cost no gradient work. A Tensor entry of `trainable` (full
 * fine-tuning) takes the place of the frozen leaf at its path, which must have its shape.
 *
 * @example
 * ```ts
 * const { trainable, frozen } = await adaptParams(params, { rank: 8, targets: ['blocks.0.wq'] });
 * const loss = (t: Trainable, f: typeof frozen, x: Tensor) => model(mergeParams(t, f), x);
 * ```
 */
export function mergeParams<F>(trainable: Trainable, frozen: F): F {
  return withAdapters('mergeParams', trainable, frozen, (a, residual) => merge(a, residual), (t) => reshape(t, t.shape)) as F;
}

/**
 * The tree a model's forward reads for `trainable` and `frozen`, with every adapted weight left
 * factored: `frozen`, where each path `p` that `trainable` holds an adapter for becomes a
 * `LinearWeight` (see `@sorsajs/models`) that computes the layer as `adaptedLinear(trainable[p],
 * frozen at p, x)` (and gives the merged weight where the forward reads the path as a tensor: an
 * adapted embedding table). Inside a training step that is `x W_rᵀ + ((x Vtᵀ) S) Uᵀ` wherever it costs fewer
 * multiply-adds than building `W_r + U diag(S) Vt` (whose backward pass forms the `[out, in]`
 * gradient `gᵀ x` of every layer, as many multiply-adds as the layer's forward); see
 * `preferMerged`. The values equal `mergeParams`' to float32 rounding. Tensor entries of
 * `trainable` (full fine-tuning) and every other frozen leaf pass through as themselves, so the
 * result owns no tensors: there is nothing to dispose (and `tree.dispose` does not take its
 * `LinearWeight` leaves). It is for `Model.forward` and `generate`, not for `savePretrained`,
 * which needs tensors: give that `mergeParams`.
 *
 * @example
 * ```ts
 * const { trainable, frozen } = await adaptParams(model.params, { rank: 8, targets: (p) => p.endsWith('c_attn.weight') });
 * const loss = (t: Trainable, f: ParamTree, b: { x: Tensor; y: Tensor }) => nn.crossEntropy(model.forward(factoredParams(t, f), b.x), b.y);
 * ```
 */
export function factoredParams(trainable: Trainable, frozen: object): ForwardParams {
  const layer = (a: Adapter, residual: Tensor, out: number, inp: number): LinearWeight => ({
    shape: [out, inp],
    linear: (x, bias) => adaptedLinear(a, residual, x, { bias }),
    // Where the forward reads the path as a tensor (an adapted embedding table): the merged weight.
    weight: () => merge(a, residual),
  });
  return withAdapters('factoredParams', trainable, frozen, layer, (t) => t) as ForwardParams;
}

/**
 * `frozen` with every path that `trainable` holds replaced: a Tensor entry (full fine-tuning) by
 * `pass(it)`, an adapter by `adapted(adapter, residual, out, in)`; every other tensor leaf by
 * `pass(leaf)`. Paths, adapters and residuals are checked first, errors naming `op`.
 */
function withAdapters(op: string, trainable: Trainable, frozen: unknown, adapted: (a: Adapter, residual: Tensor, out: number, inp: number) => unknown, pass: (t: Tensor) => unknown): unknown {
  if (!trainable || typeof trainable !== 'object' || Array.isArray(trainable)) throw new Error(`${op}: trainable must be a record of adapters keyed by path, got ${describe(trainable)}`);
  const paths = tree.leafPaths(frozen);
  const known = new Set(paths);
  for (const [p, a] of Object.entries(trainable)) {
    if (!known.has(p)) throw new Error(`${op}: trainable path "${p}" is not a leaf of frozen (leaves: ${paths.slice(0, 8).join(', ')}${paths.length > 8 ? ', ...' : ''})`);
    if (!(a instanceof Tensor)) factors(op, a, `adapter "${p}"`);
  }
  return tidy(() =>
    tree.mapWithPath((path, leaf) => {
      const a = Object.prototype.hasOwnProperty.call(trainable, path) ? trainable[path] : undefined;
      if (a instanceof Tensor) {
        a.use(op);
        if (!(leaf instanceof Tensor) || leaf.rank !== a.rank || leaf.shape.some((d, i) => d !== a.shape[i])) {
          throw new Error(`${op}: trainable weight "${path}" is [${a.shape}], but frozen holds ${describe(leaf)} there`);
        }
        return pass(a) as tree.Leaf;
      }
      if (a !== undefined) {
        const f = factors(op, a, `adapter "${path}"`);
        // mergeParams: the merged weight; factoredParams: a LinearWeight (models' forward takes either).
        return adapted(a, checkResidual(op, leaf, f.out, f.inp, `frozen "${path}"`), f.out, f.inp) as tree.Leaf;
      }
      return leaf instanceof Tensor ? (pass(leaf) as tree.Leaf) : leaf;
    }, frozen),
  );
}

/**
 * Options of `adaptParams`: which weights, which adapter, and the initializers' own options. The SVD
 * options (`svd`, `tol`, `powerIters`) are those of `SvdInitOptions`, passed to every SORSA and PiSSA target;
 * `rank`, `key` and `alpha` go to every method's initializer, as said below.
 *
 * @example
 * ```ts
 * await adaptParams(params, { rank: 8, targets: ['wq', 'wv'], svd: 'randomized', powerIters: 4, key: random.key(0) });
 * ```
 */
export interface AdaptOptions extends Omit<SvdInitOptions, 'rank' | 'key' | 'alpha'> {
  /** Adapter rank r (the same for every target); not used by `'full'`. */
  rank?: number;
  /** Dotted paths of the weights to adapt, or a predicate over each tensor leaf. */
  targets: readonly string[] | ((path: string, leaf: Tensor) => boolean);
  /**
   * Which adapter: `'sorsa'` (default), `'pissa'`, `'lora'`, `'adalora'` (`adalora.initAdapter`;
   * `alpha` is then PEFT's lora_alpha), or `'full'` (full fine-tuning: the targeted weights
   * themselves are trainable).
   */
  method?: 'sorsa' | 'pissa' | 'lora' | 'adalora' | 'full';
  /** Randomized SVD, LoRA and AdaLoRA: the key; each target gets `random.foldIn(key, i)`, i its index in leaf order. Required for LoRA and AdaLoRA. */
  key?: random.Key;
  /** Scale `alpha / r`; without it the scale is 1 (SORSA, PiSSA) or must be given (LoRA: default alpha = r). */
  alpha?: number;
  /**
   * Called after each target is initialized (its SVD done), with the count done, the total and
   * its path: progress for large models, whose SVDs take seconds per layer.
   */
  onProgress?: (done: number, total: number, path: string) => void;
}

/**
 * What `adaptParams` returns.
 *
 * @example
 * ```ts
 * const { trainable, frozen }: Adapted<typeof params> = await adaptParams(params, { rank: 8, targets: ['wq'] });
 * ```
 */
export interface Adapted<P> {
  /** One adapter per targeted weight (with `'full'`: the weight itself), keyed by its dotted path. */
  trainable: Trainable;
  /** `params` with each targeted weight replaced by its residual. */
  frozen: P;
}

/**
 * Splits a parameter tree for fine-tuning: each targeted 2-D weight `[out, in]` becomes an adapter
 * in `trainable` (keyed by its dotted path) and its residual takes its place in `frozen`; every
 * other leaf goes to `frozen` unchanged (as a new handle on the same storage). `params` is neither
 * mutated nor disposed. `mergeParams(trainable, frozen)` gives the params back.
 *
 * With `method: 'full'` (full fine-tuning, the paper's other baseline) `trainable[p]` is the weight
 * at `p` itself (a new handle on its storage) and `frozen` keeps the pre-training weight at `p`
 * (also a handle on the same storage, so no copy is made; `mergeParams` puts the trained weight in
 * its place). Every other leaf stays frozen. `rank` is not used. `makeTrainStep` (gamma 0),
 * `mergeParams` and `driftParams` take the result unchanged, so every method of a comparison runs
 * through one code path.
 *
 * Asynchronous: it resolves once the SVDs have run (they read values back between sweeps, so they
 * finish only while the program awaits). A training loop started after it runs its ops at once and
 * needs no await of its own; started behind a pending SVD, every op would queue behind it.
 * Invalid arguments reject the promise.
 *
 * @example
 * ```ts
 * const { trainable, frozen } = await adaptParams(params, {
 *   rank: 8,
 *   targets: (path) => /\.(wq|wv)$/.test(path),
 * });
 * const full = await adaptParams(params, { method: 'full', targets: ['blocks.0.wq'] });
 * full.trainable['blocks.0.wq']; // the weight itself, a Tensor
 * ```
 */
export async function adaptParams<P>(params: P, opts: AdaptOptions): Promise<Adapted<P>> {
  const fn = 'adaptParams';
  const paths = tree.leafPaths(params);
  const leaves = tree.leaves(params);
  const byPath = new Map(paths.map((p, i) => [p, leaves[i]]));
  const method = opts.method ?? 'sorsa';
  if (!['sorsa', 'pissa', 'lora', 'adalora', 'full'].includes(method)) throw new Error(`${fn}: method must be 'sorsa', 'pissa', 'lora', 'adalora' or 'full', got ${String(method)}`);
  let chosen: Set<string>;
  if (typeof opts.targets === 'function') {
    const pred = opts.targets;
    chosen = new Set(paths.filter((p) => byPath.get(p) instanceof Tensor && pred(p, byPath.get(p) as Tensor)));
    if (chosen.size === 0) throw new Error(`${fn}: the targets predicate matched no tensor leaf (leaves: ${paths.slice(0, 8).join(', ')}${paths.length > 8 ? ', ...' : ''})`);
  } else if (Array.isArray(opts.targets)) {
    for (const p of opts.targets) {
      if (!byPath.has(p)) throw new Error(`${fn}: target "${p}" not found in params (leaves: ${paths.slice(0, 8).join(', ')}${paths.length > 8 ? ', ...' : ''})`);
    }
    chosen = new Set(opts.targets);
  } else {
    throw new Error(`${fn}: targets must be an array of dotted paths or a predicate, got ${describe(opts.targets)}`);
  }
  if ((method === 'lora' || method === 'adalora') && !opts.key) throw new Error(`${fn}: method '${method}' needs a key for A's initialization`);
  // Check every target before computing any SVD.
  for (const p of chosen) {
    const leaf = byPath.get(p);
    // Full fine-tuning trains any float32 tensor (a bias too); adapters need a 2-D weight.
    if (method !== 'full') checkWeight(fn, leaf, `target "${p}"`);
    else if (!(leaf instanceof Tensor) || leaf.dtype !== 'float32') throw new Error(`${fn}: target "${p}" must be a float32 Tensor for full fine-tuning, got ${leaf instanceof Tensor ? leaf.dtype : describe(leaf)}`);
  }
  const trainable: Trainable = {};
  const residuals = new Map<string, Tensor>();
  const total = chosen.size;
  let done = 0;
  try {
    // One target at a time, each in its own scope: progress can be reported between them, and if
    // one fails, every tensor made so far (adapters, residuals) is freed below.
    for (const [i, path] of paths.entries()) {
      if (!chosen.has(path)) continue;
      const W = byPath.get(path) as Tensor;
      const made = tidy(() => {
        if (method === 'full') return { adapter: reshape(W, W.shape), residual: reshape(W, W.shape) };
        const key = opts.key ? random.foldIn(opts.key, i) : undefined;
        const rank = opts.rank as number;
        try {
          if (method === 'lora') return lora.initAdapter(W, { rank, alpha: opts.alpha, key: key as random.Key });
          if (method === 'adalora') return adalora.initAdapter(W, { rank, alpha: opts.alpha, key: key as random.Key });
          const svdOpts: SvdInitOptions = { rank, svd: opts.svd, tol: opts.tol, powerIters: opts.powerIters, key, alpha: opts.alpha };
          return (method === 'pissa' ? pissa.initAdapter : initAdapter)(W, svdOpts);
        } catch (e) {
          throw new Error(`${fn}: target "${path}": ${(e as Error).message}`, { cause: e });
        }
      });
      trainable[path] = made.adapter;
      residuals.set(path, made.residual);
      await sync();
      done++;
      opts.onProgress?.(done, total, path);
    }
    const frozen = tidy(() => tree.mapWithPath((path, leaf) => residuals.get(path) ?? (leaf instanceof Tensor ? reshape(leaf, leaf.shape) : leaf), params)) as P;
    await sync();
    return { trainable, frozen };
  } catch (e) {
    tree.dispose([trainable, [...residuals.values()]]);
    throw e;
  }
}
