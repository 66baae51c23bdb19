/**
 * Gradient transformations in the style of optax: optimizers (sgd; adam and adamw, each one fused
 * kernel per leaf for the chain of blocks.ts), combinators (chain, partition, masked), clipping, and
 * applyUpdates. Each is pure: `update` returns new updates and state and disposes only the
 * intermediates it made; the caller disposes what it replaces.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { runScoped } from '../tensor/scope.js';
import { map, mapAny } from '../tree/tree.js';
import { add, div, minimum, mul, sqrt, sub } from '../ops/elementwise.js';
import { zeros, zerosLike } from '../ops/create.js';
import { asTensor, fused, moment, pure, zerosFor } from './fused.js';
import { adamFusedStep } from './fused-adam.js';
import { launch } from '../ops/operand.js';
import { recording } from '../autodiff/tape.js';
import { MAX_ARRAYS, normsKernel } from '../kernels/optim.js';
import { norm } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { valueAt, type GradientTransformation, type ScalarOrSchedule } from './types.js';

/** The momentum buffer `momentum * buf + g` (buf null: zeros, on the first step). */
function sgdBuffer(g: Tensor, buf: Tensor | null, momentum: number): Tensor {
  return fused('sgd_buf', 'v1 * v2 + v0', [g, buf ?? 0, momentum], () => (buf ? add(mul(buf, momentum), g) : mul(g, 1)));
}

/** State of sgd: the update count and, with momentum, the momentum buffers. */
export interface SgdState {
  /** Updates done so far (what schedules are evaluated at). */
  count: number;
  /** Momentum buffers mirroring the params (null without momentum). */
  momentum: unknown;
}

/**
 * Stochastic gradient descent, as PyTorch's SGD (dampening 0): with momentum,
 * `buf = momentum * buf + g` and the step is `-lr * buf` (or `-lr * (g + momentum * buf)` with nesterov).
 *
 * @example
 * ```ts
 * const opt = sgd({ lr: 0.1, momentum: 0.9 });
 * let state = opt.init(params);
 * const [updates, next] = opt.update(grads, state);
 * ```
 */
export function sgd(o: { lr: ScalarOrSchedule; momentum?: number; nesterov?: boolean }): GradientTransformation<SgdState> {
  const momentum = o.momentum ?? 0;
  if (o.nesterov && momentum <= 0) throw new Error('sgd: nesterov needs a positive momentum');
  return {
    init: (params) => ({ count: 0, momentum: momentum ? zerosFor(params) : null }),
    update: (grads, state) =>
      pure(() => {
        const lr = valueAt(o.lr, state.count);
        if (!momentum) {
          const updates = map((g) => (g instanceof Tensor ? fused('sgd', '-(v0 * v1)', [g, lr], () => mul(g, -lr)) : null), grads);
          return [updates, { count: state.count + 1, momentum: null }];
        }
        const bufs = map((g, b) => (g instanceof Tensor ? sgdBuffer(g, asTensor(b), momentum) : null), grads, state.momentum);
        const updates = map((g, b) => {
          if (!(g instanceof Tensor) || !(b instanceof Tensor)) return null;
          return o.nesterov
            ? fused('sgd_nesterov', '-(v3 * (v0 + v2 * v1))', [g, b, momentum, lr], () => mul(add(g, mul(b, momentum)), -lr))
            : fused('sgd', '-(v0 * v1)', [b, lr], () => mul(b, -lr));
        }, grads, bufs);
        return [updates, { count: state.count + 1, momentum: bufs }];
      }),
  };
}

/** State of adam and adamw: the update count and the first and second moment estimates. */
export interface AdamState {
  /** Updates done so far (what schedules are evaluated at; t - 1 in PyTorch's bias corrections). */
  count: number;
  /** First-moment estimates mirroring the params. */
  mu: unknown;
  /** Second-moment estimates mirroring the params. */
  nu: unknown;
}

/** Options of `adam`; defaults as PyTorch's Adam. */
export interface AdamOptions {
  /** Learning rate, or a schedule of the update count. */
  lr: ScalarOrSchedule;
  /** Default 0.9. */
  b1?: number;
  /** Default 0.999. */
  b2?: number;
  /** Default 1e-8. */
  eps?: number;
}

function adamCore(o: AdamOptions, decay: { weightDecay: number; mask?: unknown } | null): GradientTransformation<AdamState> {
  const b1 = o.b1 ?? 0.9;
  const b2 = o.b2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  const name = decay ? 'adamw' : 'adam';
  for (const [k, v] of Object.entries({ b1, b2 })) {
    if (!(v >= 0 && v < 1)) throw new Error(`${name}: ${k} must be in [0, 1), got ${v}`);
  }
  const maskOf = (params: unknown): unknown =>
    decay?.mask === undefined ? null : typeof decay.mask === 'function' ? (decay.mask as (p: unknown) => unknown)(params) : decay.mask;
  return {
    init: (params) => ({ count: 0, mu: zerosFor(params), nu: zerosFor(params) }),
    // applyStep's path: three kernels per leaf (both moments and the new param), the gradient's
    // scale, added term and gate read inside them; test/optim.test.ts holds it to `update` then
    // applyUpdates and to the float64 reference.
    fusedStep: (grads, state, params, so) => {
      const t = state.count + 1;
      const lr = valueAt(o.lr, state.count);
      const r = adamFusedStep(grads, state.mu, state.nu, params, so, {
        b1,
        b2,
        eps,
        stepSize: lr / (1 - b1 ** t),
        bc2: Math.sqrt(1 - b2 ** t),
        wd: decay && decay.weightDecay !== 0 ? lr * decay.weightDecay : null,
        mask: decay ? maskOf(params) : null,
      });
      return r && [r.params, { count: t, mu: r.mu, nu: r.nu }];
    },
    update: (grads, state, params) =>
      pure(() => {
        const t = state.count + 1;
        const lr = valueAt(o.lr, state.count);
        // PyTorch's order: step = lr / (1 - b1^t); denom = sqrt(v) / sqrt(1 - b2^t) + eps.
        const stepSize = lr / (1 - b1 ** t);
        const bc2 = Math.sqrt(1 - b2 ** t);
        const mu = map((g, m) => (g instanceof Tensor ? moment('adam_m', 'v1 * v2 + v0 * v3', g, () => g, asTensor(m), b1) : null), grads, state.mu);
        const nu = map((g, v) => (g instanceof Tensor ? moment('adam_v', 'v1 * v2 + v0 * v0 * v3', g, () => mul(g, g), asTensor(v), b2) : null), grads, state.nu);
        let mask: unknown = null;
        if (decay) {
          if (params === undefined) throw new Error('adamw: update needs params for weight decay');
          mask = maskOf(params);
        }
        const updates = mapAny(
          (m, v, p, k) => {
            if (!(m instanceof Tensor) || !(v instanceof Tensor)) return null;
            const useDecay = decay && decay.weightDecay !== 0 && p instanceof Tensor && (mask === null || !!k);
            const step = (): Tensor => div(mul(m, -stepSize), add(div(sqrt(v), bc2), eps));
            if (!useDecay) return fused('adam_u', '-(v2 * v0) / (Math.sqrt(v1) / v3 + v4)', [m, v, stepSize, bc2, eps], step);
            // AdamW: p <- p (1 - lr wd), then the Adam step: the update adds -lr wd p.
            const wd = lr * decay.weightDecay;
            return fused('adamw_u', '-(v2 * v0) / (Math.sqrt(v1) / v3 + v4) - v5 * v6', [m, v, stepSize, bc2, eps, wd, p], () => sub(step(), mul(p, wd)));
          },
          mu,
          nu,
          decay ? params : mu,
          mask === null ? mu : mask,
        );
        return [updates, { count: t, mu, nu }];
      }),
  };
}

/**
 * Adam, with PyTorch's defaults and formulas (b1 0.9, b2 0.999, eps 1e-8, eps added after the
 * bias-corrected square root).
 *
 * @example
 * ```ts
 * const opt = adam({ lr: 1e-3 });
 * const [updates, state2] = opt.update(grads, opt.init(params));
 * ```
 */
export function adam(o: AdamOptions): GradientTransformation<AdamState> {
  return adamCore(o, null);
}

/**
 * AdamW, as PyTorch's: decoupled weight decay `p <- p (1 - lr wd)` then the Adam step. Default
 * weightDecay 0.01. `mask` (a tree of booleans, or a function of params giving one) limits decay
 * to the leaves marked true.
 *
 * @example
 * ```ts
 * const opt = adamw({ lr: 3e-5, weightDecay: 0 });
 * const [updates, next] = opt.update(grads, state, params);
 * ```
 */
export function adamw(o: AdamOptions & { weightDecay?: number; mask?: unknown }): GradientTransformation<AdamState> {
  return adamCore(o, { weightDecay: o.weightDecay ?? 0.01, mask: o.mask });
}

/**
 * The global L2 norm of every tensor leaf of a tree, as a scalar tensor.
 *
 * @example
 * ```ts
 * globalNorm({ a: tensor([3]), b: tensor([4]) }); // 5
 * ```
 */
export function globalNorm(t: unknown): Tensor {
  return runScoped(() => {
    const xs: Tensor[] = [];
    map((g) => {
      if (g instanceof Tensor) xs.push(g);
      return null;
    }, t);
    // A few launches for the whole tree (kernels/optim.ts normsKernel), unless a gradient is taken
    // through the norm (the composed form below has one) or a leaf is not float32 (norm refuses it).
    if (xs.length > 0 && xs.every((x) => x.dtype === 'float32') && !recording(xs)) {
      // Empty leaves add nothing (and have no payload to launch over).
      const full = xs.filter((x) => x.size > 0);
      return full.length > 0 ? treeNorm(full) : zeros([]);
    }
    const norms = map((g) => (g instanceof Tensor && g.size > 0 ? norm(g) : null), t);
    let acc: Tensor | null = null;
    map((n) => {
      if (n instanceof Tensor) acc = acc ? add(acc, mul(n, n)) : mul(n, n);
      return null;
    }, norms);
    // A tree without tensor leaves has norm 0 (as optax), e.g. an empty partition group.
    return acc ? sqrt(acc) : zeros([]);
  });
}

/** Splits `xs` into runs of at most `MAX_ARRAYS`. */
function chunks<X>(xs: readonly X[]): X[][] {
  const out: X[][] = [];
  for (let i = 0; i < xs.length; i += MAX_ARRAYS) out.push(xs.slice(i, i + MAX_ARRAYS));
  return out;
}

/**
 * The norm of all of `xs` together: each tensor's norm (as `norm`, up to 7 tensors a launch), then
 * the norm of those norms, as a scalar tensor. 24 tensors take 4 + 1 launches, where a norm, a
 * square and a sum per tensor took 72.
 */
function treeNorm(xs: readonly Tensor[]): Tensor {
  const norms = (group: readonly Tensor[], joint: boolean): Tensor =>
    launch('globalNorm', normsKernel(group.length, joint), joint ? [] : [group.length], 'float32', group, [...group.map((x) => x.size), Infinity]);
  if (xs.length <= MAX_ARRAYS) return norms(xs, true);
  let level = chunks(xs).map((g) => norms(g, false));
  while (level.length > MAX_ARRAYS) level = chunks(level).map((g) => norms(g, true));
  return norms(level, true);
}

/**
 * Scales updates so their global norm is at most `maxNorm`, as PyTorch's clip_grad_norm_:
 * `g * min(1, maxNorm / (norm + 1e-6))`. Stateless. The norm stays on the device (no readback).
 *
 * @example
 * ```ts
 * const opt = chain(clipByGlobalNorm(1.0), adamw({ lr: 3e-5, weightDecay: 0 }));
 * ```
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<null> {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be positive, got ${maxNorm}`);
  return {
    init: () => null,
    update: (grads) =>
      pure(() => {
        const coef = clipCoefficient(globalNorm(grads), maxNorm);
        return [map((g) => (g instanceof Tensor ? mul(g, coef) : null), grads), null];
      }),
  };
}

/**
 * PyTorch clip_grad_norm_'s factor for a global norm already computed: the scalar tensor
 * `min(1, maxNorm / (norm + 1e-6))`, which `clipByGlobalNorm` multiplies every leaf by. For a
 * training step that reports the norm and clips with it, without computing it twice.
 *
 * @example
 * ```ts
 * const norm = globalNorm(grads);
 * const coef = clipCoefficient(norm, 1.0);
 * const clipped = tree.map((g) => mul(g, coef), grads);
 * ```
 */
export function clipCoefficient(norm: Tensor, maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new Error(`clipCoefficient: maxNorm must be positive, got ${maxNorm}`);
  return fused('clip_coef', 'Math.min(1, v1 / (v0 + 0.000001))', [norm, maxNorm], () => minimum(div(maxNorm, add(norm, 0.000001)), 1));
}

/**
 * Applies transformations in sequence; the state is the tuple of their states.
 *
 * @example
 * ```ts
 * const opt = chain(clipByGlobalNorm(1), adam({ lr: 1e-3 }));
 * ```
 */
export function chain(...ts: GradientTransformation<unknown>[]): GradientTransformation<unknown[]> {
  return {
    init: (params) => ts.map((t) => t.init(params)),
    update: (grads, state, params) =>
      pure(() => {
        let u = grads;
        const next = ts.map((t, i) => {
          const [u2, s] = t.update(u, state[i], params);
          u = u2;
          return s;
        });
        return [u, next];
      }),
  };
}

/** A tree of labels (strings), or a function of the params giving one. */
export type Labels = unknown | ((params: unknown) => unknown);

function resolve(labels: Labels, params: unknown): unknown {
  return typeof labels === 'function' ? (labels as (p: unknown) => unknown)(params) : labels;
}

/**
 * Routes each leaf to the transformation named by its label. Each transformation sees only its
 * leaves (the others are null, so they get no state there).
 *
 * @example
 * ```ts
 * const opt = partition({ train: adam({ lr: 1e-3 }), frozen: setToZero() }, { w: 'train', emb: 'frozen' });
 * ```
 */
export function partition(transforms: Record<string, GradientTransformation<unknown>>, labels: Labels): GradientTransformation<Record<string, unknown>> {
  const view = (t: unknown, lab: unknown, name: string): unknown => mapAny((x, l) => (l === name ? x : null), t, lab);
  const check = (lab: unknown): void => {
    mapAny((l) => {
      if (typeof l !== 'string' || !(l in transforms)) {
        throw new Error(`partition: label ${JSON.stringify(l)} has no transformation (have: ${Object.keys(transforms).join(', ')})`);
      }
      return null;
    }, lab);
  };
  return {
    init: (params) => {
      const lab = resolve(labels, params);
      check(lab);
      return Object.fromEntries(Object.entries(transforms).map(([name, t]) => [name, t.init(view(params, lab, name))]));
    },
    update: (grads, state, params) =>
      pure(() => {
        const lab = resolve(labels, params ?? grads);
        check(lab);
        const outs: Record<string, unknown> = {};
        const next: Record<string, unknown> = {};
        for (const [name, t] of Object.entries(transforms)) {
          const [u, s] = t.update(view(grads, lab, name), state[name], params === undefined ? undefined : view(params, lab, name));
          outs[name] = u;
          next[name] = s;
        }
        // Each leaf takes the update of its label's transformation.
        const names = Object.keys(transforms);
        const merged = mapAny((l, ...us) => us[names.indexOf(l as string)] ?? null, lab, ...names.map((n) => outs[n]));
        return [merged, next];
      }),
  };
}

/**
 * Applies `inner` only to the leaves where `mask` is true; other leaves' updates pass through
 * unchanged and get no state (as optax.masked).
 *
 * @example
 * ```ts
 * const opt = masked(adam({ lr: 1e-3 }), { w: true, b: false });
 * ```
 */
export function masked(inner: GradientTransformation<unknown>, mask: Labels): GradientTransformation<unknown> {
  const view = (t: unknown, m: unknown): unknown => mapAny((x, k) => (k ? x : null), t, m);
  return {
    init: (params) => inner.init(view(params, resolve(mask, params))),
    update: (grads, state, params) =>
      pure(() => {
        const m = resolve(mask, params ?? grads);
        const [u, s] = inner.update(view(grads, m), state, params === undefined ? undefined : view(params, m));
        // Masked-out leaves pass through as new handles, so disposing the gradients stays safe.
        return [mapAny((g, k, ui) => (k ? ui : g instanceof Tensor ? reshape(g, g.shape) : g), grads, m, u), s];
      }),
  };
}

/**
 * Updates of zero and no state: for frozen leaves (with `partition`).
 *
 * @example
 * ```ts
 * partition({ train: adam({ lr: 1e-3 }), frozen: setToZero() }, labels);
 * ```
 */
export function setToZero(): GradientTransformation<null> {
  return {
    init: () => null,
    update: (grads) => pure(() => [map((g) => (g instanceof Tensor ? zerosLike(g) : null), grads), null]),
  };
}

/**
 * `params + updates`, leafwise. A leaf with a null update is passed through as a new handle on the
 * same storage, so the caller may dispose the whole old params tree.
 *
 * @example
 * ```ts
 * const next = applyUpdates(params, updates);
 * tree.dispose(params);
 * ```
 */
export function applyUpdates<T>(params: T, updates: unknown): T {
  return map((p, u) => {
    if (!(p instanceof Tensor)) return p;
    if (!(u instanceof Tensor)) return reshape(p, p.shape);
    return add(p, u);
  }, params, updates) as T;
}
