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
}

/** The value of a scalar-or-schedule at `step`. */
export function valueAt(v: ScalarOrSchedule, step: number): number {
  return typeof v === 'function' ? v(step) : v;
}

/** @internal A tensor leaf, or null for leaves that get no update. */
export type MaybeTensor = Tensor | null;
