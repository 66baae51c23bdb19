/**
 * optax's building blocks for Adam-style optimizers: `scaleByAdam` (the Adam direction),
 * `addDecayedWeights` (decoupled weight decay) and `scaleByLearningRate` (the step, sign flipped).
 * `chain(scaleByAdam(o), scaleByLearningRate(lr))` is Adam and
 * `chain(scaleByAdam(o), addDecayedWeights({ weightDecay }), scaleByLearningRate(lr))` is AdamW, as
 * optax defines them; `adam` and `adamw` (transforms.ts) compute the same updates in one fused kernel
 * per leaf, and test/optim.test.ts holds both forms to one float64 reference.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { map, mapAny } from '../tree/tree.js';
import { add, div, mul, sqrt } from '../ops/elementwise.js';
import { reshape } from '../ops/shape.js';
import type { AdamState } from './transforms.js';
import { asTensor, fused, moment, pure, zerosFor } from './fused.js';
import { valueAt, type GradientTransformation, type ScalarOrSchedule } from './types.js';
import { checkFiniteNumber } from '../tensor/checks.js';

/** Options of `scaleByAdam`; defaults as optax's and PyTorch's. */
export interface ScaleByAdamOptions {
  /** Decay of the first moment. Default 0.9. */
  b1?: number;
  /** Decay of the second moment. Default 0.999. */
  b2?: number;
  /** Added to the bias-corrected square root of the second moment. Default 1e-8. */
  eps?: number;
}

/**
 * The Adam direction (optax's `scale_by_adam`): `m̂ / (sqrt(v̂) + eps)` with the bias-corrected moment
 * estimates `m̂ = m / (1 - b1^t)` and `v̂ = v / (1 - b2^t)`. Its state is Adam's (`AdamState`).
 *
 * @example
 * ```ts
 * const adam = optim.chain(optim.scaleByAdam({ b1: 0.9 }), optim.scaleByLearningRate(1e-3));
 * ```
 */
export function scaleByAdam(o: ScaleByAdamOptions = {}): GradientTransformation<AdamState> {
  const b1 = o.b1 ?? 0.9;
  const b2 = o.b2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  for (const [k, v] of Object.entries({ b1, b2 })) {
    if (!(v >= 0 && v < 1)) throw new Error(`scaleByAdam: ${k} must be in [0, 1), got ${v}`);
  }
  if (!(eps >= 0)) throw new Error(`scaleByAdam: eps must be a non-negative number, got ${eps}`);
  return {
    init: (params) => ({ count: 0, mu: zerosFor(params), nu: zerosFor(params) }),
    update: (grads, state) =>
      pure(() => {
        const t = state.count + 1;
        const bc1 = 1 - b1 ** t;
        const bc2Sqrt = Math.sqrt(1 - b2 ** t);
        const mu = map((g, m) => (g instanceof Tensor ? moment('adam_m', 'v1 * v2 + v0 * v3', g, () => g, asTensor(m), b1) : null), grads, state.mu);
        const nu = map((g, v) => (g instanceof Tensor ? moment('adam_v', 'v1 * v2 + v0 * v0 * v3', g, () => mul(g, g), asTensor(v), b2) : null), grads, state.nu);
        const updates = mapAny(
          (m, v) => {
            if (!(m instanceof Tensor) || !(v instanceof Tensor)) return null;
            return fused('adam_dir', 'v0 / v2 / (Math.sqrt(v1) / v3 + v4)', [m, v, bc1, bc2Sqrt, eps], () => div(div(m, bc1), add(div(sqrt(v), bc2Sqrt), eps)));
          },
          mu,
          nu,
        );
        return [updates, { count: t, mu, nu }];
      }),
  };
}

/** Options of `addDecayedWeights`. */
export interface AddDecayedWeightsOptions {
  /** The decay rate: `weightDecay * p` is added to each update. */
  weightDecay: number;
  /**
   * A tree of booleans, or a function of the params giving one: only the leaves marked true decay.
   * Default: every leaf.
   */
  mask?: unknown;
}

/**
 * Decoupled weight decay (optax's `add_decayed_weights`): adds `weightDecay * p` to each update, so
 * that a later `scaleByLearningRate(lr)` subtracts `lr * weightDecay * p`. Needs the params in
 * `update`; stateless. Leaves that do not decay pass through as new handles.
 *
 * @example
 * ```ts
 * const adamw = optim.chain(optim.scaleByAdam(), optim.addDecayedWeights({ weightDecay: 0.01 }), optim.scaleByLearningRate(1e-3));
 * ```
 */
export function addDecayedWeights(o: AddDecayedWeightsOptions): GradientTransformation<null> {
  const wd = o?.weightDecay;
  checkFiniteNumber('addDecayedWeights', 'weightDecay', wd);
  return {
    init: () => null,
    update: (updates, _state, params) =>
      pure(() => {
        if (params === undefined) throw new Error('addDecayedWeights: update needs params (the weights to decay)');
        const mask = o.mask === undefined ? null : typeof o.mask === 'function' ? (o.mask as (p: unknown) => unknown)(params) : o.mask;
        const out = mapAny(
          (u, p, k) => {
            if (!(u instanceof Tensor)) return null;
            if (wd === 0 || !(p instanceof Tensor) || (mask !== null && !k)) return reshape(u, u.shape);
            return fused('decay', 'v0 + v1 * v2', [u, wd, p], () => add(u, mul(p, wd)));
          },
          updates,
          params,
          mask === null ? updates : mask,
        );
        return [out, null];
      }),
  };
}

/** State of `scaleByLearningRate`: the update count its schedule is evaluated at. */
export interface ScaleByLearningRateState {
  /** Updates done so far. */
  count: number;
}

/**
 * The step (optax's `scale_by_learning_rate`): each update times `-lr`, with a schedule evaluated at
 * the update count (0 for the first update), so that `applyUpdates` descends.
 *
 * @example
 * ```ts
 * optim.scaleByLearningRate(optim.warmupCosineDecay({ peak: 3e-4, warmupSteps: 100, decaySteps: 1000 }));
 * ```
 */
export function scaleByLearningRate(lr: ScalarOrSchedule): GradientTransformation<ScaleByLearningRateState> {
  if (typeof lr !== 'function' && (typeof lr !== 'number' || !Number.isFinite(lr))) {
    throw new Error(`scaleByLearningRate: lr must be a finite number or a schedule, got ${String(lr)}`);
  }
  return {
    init: () => ({ count: 0 }),
    update: (updates, state) =>
      pure(() => {
        const scale = -valueAt(lr, state.count);
        return [map((u) => (u instanceof Tensor ? mul(u, scale) : null), updates), { count: state.count + 1 }];
      }),
  };
}
