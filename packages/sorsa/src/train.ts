/**
 * The SORSA training step in the official order, as a pure function.
 * @module
 */
import { Tensor, add as addOp, isfinite, mul, sub, optim, tidy, tree, valueAndGrad } from '@sorsajs/core';
import { checkPositiveNumber, mustBe } from '@sorsajs/core/internal';
import { findAdapters, orthoRegularizer } from './regularizer.js';
import { regularizerOfFactors } from './defect.js';

/**
 * Options of `makeTrainStep`.
 *
 * @example
 * ```ts
 * makeTrainStep({ loss, optimizer: optim.adamw({ lr: 3e-5, weightDecay: 0 }), gamma: 4e-4, peakLr: 3e-5, maxGradNorm: 1 });
 * ```
 */
export interface TrainStepOptions<T, F, B, S = unknown> {
  /** The task loss: a scalar tensor from the trainable tree, the frozen tree and a batch. */
  loss: (trainable: T, frozen: F, batch: B) => Tensor;
  /** An optax-style optimizer (e.g. `optim.adamw({ lr: optim.warmupCosineDecay(...), weightDecay: 0 })`). */
  optimizer: optim.GradientTransformation<S>;
  /** Regularizer weight γ (the paper's default 4e-4; 0 for LoRA and PiSSA, which skips its gradient). */
  gamma: number;
  /** The peak learning rate: the regularizer's gradient is scaled by `gamma / peakLr`. Needed when gamma > 0. */
  peakLr?: number;
  /** Clip the task-loss gradients to this global norm (PyTorch's clip_grad_norm_); none when absent. */
  maxGradNorm?: number;
  /**
   * Skip a step whose loss or gradients are not finite (optax's `apply_if_finite`): the step then
   * returns the input trainable values and optimizer moments unchanged, and `metrics.skipped` is 1.
   * Decided on the device, with no read-back. The optimizer's host-side update count (what
   * schedules and bias corrections read) still advances by one, as a PyTorch loop's scheduler does
   * when its GradScaler skips a step. Default false: one NaN then spreads into every later step.
   */
  skipNonFinite?: boolean;
  /**
   * Also return the gradients that went into the optimizer (clipped, plus the regularizer's) as
   * `StepResult.grads`: AdaLoRA's rank allocation (`adalora.allocator`) reads them. Default false.
   */
  returnGrads?: boolean;
}

/**
 * What a step reports: scalar tensors (read them with `await t.data()`, then dispose them).
 *
 * @example
 * ```ts
 * const { metrics } = step(trainable, state, frozen, batch);
 * console.log((await metrics.loss.data())[0]);
 * tree.dispose(metrics);
 * ```
 */
export interface StepMetrics {
  /** The task loss at the step's input parameters. */
  loss: Tensor;
  /** The orthonormal regularizer at the step's input parameters (unscaled). */
  regularizer: Tensor;
  /** The global norm of the task-loss gradients before clipping. */
  gradNorm: Tensor;
  /** With `skipNonFinite`: 1 when this step was skipped (non-finite loss or gradients), else 0. */
  skipped?: Tensor;
}

/**
 * The result of one step.
 *
 * @example
 * ```ts
 * const { trainable: next, optState, metrics }: StepResult<Trainable, unknown> = step(trainable, state, frozen, batch);
 * ```
 */
export interface StepResult<T, S> {
  /** The updated trainable tree (new tensors). */
  trainable: T;
  /** The optimizer's next state. */
  optState: S;
  /** The step's metrics. */
  metrics: StepMetrics;
  /** With `returnGrads`: the gradients given to the optimizer, mirroring the trainable tree. */
  grads?: T;
}

/**
 * A training step and its state initializer.
 *
 * @example
 * ```ts
 * const { init, step }: TrainStep<Trainable, Frozen, Batch, unknown> = makeTrainStep(opts);
 * ```
 */
export interface TrainStep<T, F, B, S = unknown> {
  /** The optimizer state for `trainable`. */
  init(trainable: T): S;
  /** One optimizer step; see `makeTrainStep`. */
  step(trainable: T, optState: S, frozen: F, batch: B): StepResult<T, S>;
}

/**
 * A SORSA training step in the official trainer's order:
 * 1. the task loss and its gradients with respect to `trainable` only (the frozen residuals cost no
 *    gradient work);
 * 2. when `maxGradNorm` is set, the gradients are clipped as PyTorch's `clip_grad_norm_`:
 *    `g · min(1, maxGradNorm / (‖g‖ + 1e-6))`;
 * 3. the gradient of `(gamma / peakLr) · orthoRegularizer(trainable)` is added (not clipped);
 * 4. `optimizer.update`, then `optim.applyUpdates`, as one `optim.applyStep` (which reads steps 2
 *    and 3 inside adam's and adamw's fused kernels);
 * 5. with `skipNonFinite`, a step whose loss or gradients (task or regularizer) hold a NaN or an
 *    infinity keeps the input values (see `TrainStepOptions.skipNonFinite`).
 *
 * The loss's parameter types cannot be inferred from the trees the step is later called with (they
 * are not arguments of `makeTrainStep`): give the first three type parameters, the trainable tree,
 * the frozen tree and the batch, and the loss's parameters need no annotation,
 * `makeTrainStep<Trainable, typeof frozen, [Tensor, Tensor]>({ loss: (t, f, [x, y]) => ... })` (the
 * optimizer state's type `S` then defaults to `unknown`); or annotate the loss's parameters, and
 * every type parameter, `S` included, is inferred.
 *
 * The step is pure: it neither mutates nor disposes its inputs, and disposes every intermediate it
 * makes. The caller disposes what the step's outputs replace (old trainable, old optState, metrics)
 * to keep `memory()` flat. Every value stays on the device: nothing is read back.
 *
 * @example
 * ```ts
 * const { init, step } = makeTrainStep<Trainable, typeof frozen, [Tensor, Tensor]>({
 *   loss: (t, f, [x, y]) => nn.mse(model(mergeParams(t, f), x), y),
 *   optimizer: optim.adamw({ lr: 3e-5, weightDecay: 0 }),
 *   gamma: 4e-4, peakLr: 3e-5, maxGradNorm: 1,
 * });
 * let state = init(trainable);
 * const out = step(trainable, state, frozen, batch);
 * tree.dispose([trainable, state, out.metrics]);
 * ({ trainable, optState: state } = out);
 * ```
 */
export function makeTrainStep<T, F, B, S = unknown>(opts: TrainStepOptions<T, F, B, S>): TrainStep<T, F, B, S> {
  const fn = 'makeTrainStep';
  if (typeof opts?.loss !== 'function') throw new Error(`${fn}: loss must be a function (trainable, frozen, batch) => scalar tensor, got ${typeof opts?.loss}`);
  if (!opts.optimizer || typeof opts.optimizer.init !== 'function' || typeof opts.optimizer.update !== 'function') {
    throw new Error(`${fn}: optimizer must be a GradientTransformation { init, update }`);
  }
  const { gamma, peakLr, maxGradNorm } = opts;
  const skipNonFinite = opts.skipNonFinite ?? false;
  if (typeof skipNonFinite !== 'boolean') throw new Error(`${fn}: skipNonFinite must be a boolean, got ${String(skipNonFinite)}`);
  if (typeof gamma !== 'number' || !Number.isFinite(gamma) || gamma < 0) throw mustBe(fn, 'gamma', 'a finite number >= 0', String(gamma));
  if (gamma > 0) checkPositiveNumber(fn, 'peakLr', peakLr, 'when gamma > 0');
  if (maxGradNorm !== undefined) checkPositiveNumber(fn, 'maxGradNorm', maxGradNorm);
  const regWeight = gamma > 0 ? gamma / (peakLr as number) : 0;
  const taskGrad = valueAndGrad((t: T, f: F, b: B) => opts.loss(t, f, b));
  const regGrad = valueAndGrad((t: T) => orthoRegularizer(t));
  const regGradFactors = valueAndGrad((fs: Tensor[]) => regularizerOfFactors(fs));

  return {
    init: (trainable) => opts.optimizer.init(trainable),
    step: (trainable, optState, frozen, batch) =>
      tidy(() => {
        const [loss, g] = taskGrad(trainable, frozen, batch);
        const gradNorm = optim.globalNorm(g);
        const coef = maxGradNorm !== undefined ? optim.clipCoefficient(gradNorm, maxGradNorm) : undefined;
        let regularizer: Tensor;
        let rg: unknown = null;
        // 1 while everything that enters the update is finite (the global norm of a tree is finite
        // exactly when every leaf is, short of float32 overflow of the sum of squares).
        let finite = skipNonFinite ? mul(isfinite(loss), isfinite(gradNorm)) : undefined;
        const found = regWeight > 0 ? findAdapters(trainable) : [];
        if (found.length > 0) {
          // Differentiated in the adapters' U and Vt only: S and the other leaves get no (zero)
          // gradient to make, and none to add (null leaves of rg).
          const fs = found.flatMap(({ adapter }) => [adapter.U, adapter.Vt]);
          if (new Set(fs).size === fs.length && fs.every((f) => f.size > 0)) {
            const [value, dfs] = regGradFactors(fs);
            const byFactor = new Map(fs.map((f, k) => [f, dfs[k]]));
            regularizer = value;
            rg = tree.map((x) => (x instanceof Tensor ? (byFactor.get(x) ?? null) : null), trainable);
          } else {
            [regularizer, rg] = regGrad(trainable);
          }
          if (finite) finite = mul(finite, isfinite(optim.globalNorm(rg)));
        } else {
          regularizer = orthoRegularizer(trainable);
        }
        // The clip scale, the regularizer's gradient and the skip gate go into the optimizer's step
        // (adamw's fused kernels read them: three kernels per leaf, where composing them took ten).
        const add = rg === null ? undefined : { grads: rg, weight: regWeight };
        let grads: unknown = g;
        let options: optim.StepOptions = { gradScale: coef, add, applyIf: finite };
        if (opts.returnGrads) {
          // The combined gradients are a result here: computed once, then stepped with as they are.
          if (coef) grads = tree.map((x) => (x instanceof Tensor ? mul(x, coef) : x), grads);
          if (add) grads = tree.map((x, r) => (x instanceof Tensor && r instanceof Tensor ? addOp(x, mul(r, regWeight)) : x), grads, rg);
          options = { applyIf: finite };
        }
        const [updated, next] = optim.applyStep(opts.optimizer, grads, optState, trainable, options);
        const extra = opts.returnGrads ? { grads: grads as T } : {};
        const metrics: StepMetrics = finite ? { loss, regularizer, gradNorm, skipped: sub(1, finite) } : { loss, regularizer, gradNorm };
        return { trainable: updated, optState: next, metrics, ...extra };
      }),
  };
}

