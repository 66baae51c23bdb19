import type { Tensor } from '../tensor/tensor.js';

/** A learning rate (or any hyperparameter) as a function of the number of updates done so far. */
export type Schedule = (step: number) => number;

/** A number, or a schedule of the step count. */
export type ScalarOrSchedule = number | Schedule;

/**
 * An optax-style gradient transformation: a pure pair of functions. `update` maps gradients (and
 * optionally the current params) to updates, returning new state; nothing is mutated. Leaves that
 * are null in the gradients (frozen or masked out) get null updates and no state.
 */
export interface GradientTransformation<S = unknown> {
  /** Initial state for `params`. */
  init(params: unknown): S;
  /** Updates for `grads`, and the next state. `params` is needed by weight decay. */
  update(grads: unknown, state: S, params?: unknown): [unknown, S];
  /**
   * Optional, for `applyStep`: the new params and state, `applyUpdates(params, update(grads', state,
   * params)[0])` with `grads'` as `StepOptions` combines the gradients, computed in fewer kernels
   * (adam and adamw: three per leaf). Returns null where it cannot (a gradient being taken through
   * the step, a leaf it does not handle); `applyStep` then composes `update`. Called inside
   * `applyStep`'s scope, with its options checked.
   */
  fusedStep?(grads: unknown, state: S, params: unknown, options: StepOptions): [unknown, S] | null;
}

/**
 * How `applyStep` combines gradients before the update, and when it applies it. A fused step
 * reads these inside its kernels, as PyTorch's fused optimizers read `grad_scale` and `found_inf`.
 */
export interface StepOptions {
  /** Each gradient leaf is multiplied by this first: a scalar tensor (e.g. `clipCoefficient`'s) or a number. */
  gradScale?: Tensor | number;
  /**
   * A second gradient tree (mirroring the params), times `weight`, added to the scaled gradients
   * where both have a tensor: `g * gradScale + add.grads * add.weight` (a regularizer's gradient,
   * not clipped).
   */
  add?: {
    /** The tree to add, mirroring the params (null leaves add nothing). */
    grads: unknown;
    /** Its weight. */
    weight: number;
  };
  /**
   * A scalar tensor: where it is 0 the step keeps the params and the optimizer's tensors (optax's
   * `apply_if_finite`, decided on the device); where it is not, the step applies. Host-side state
   * (update counts) advances either way.
   */
  applyIf?: Tensor;
}

/** The value of a scalar-or-schedule at `step`. */
export function valueAt(v: ScalarOrSchedule, step: number): number {
  return typeof v === 'function' ? v(step) : v;
}

/** @internal A tensor leaf, or null for leaves that get no update. */
export type MaybeTensor = Tensor | null;
