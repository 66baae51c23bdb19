/**
 * A float64 reference of PyTorch's AdamW (and Adam, with no weight decay), to compare a float32
 * optimizer, or a training step built on one, against.
 * @module
 */

/**
 * Options of `adamwReference`: PyTorch's `torch.optim.AdamW` hyperparameters.
 *
 * @example
 * ```ts
 * const opts: AdamwReferenceOptions = { lr: (t) => 1e-3 * Math.min(1, (t + 1) / 10), weightDecay: 0.1 };
 * ```
 */
export interface AdamwReferenceOptions {
  /** Learning rate: a number, or a schedule of the step index (0 for the first step). */
  lr: number | ((step: number) => number);
  /** First-moment decay (default 0.9). */
  b1?: number;
  /** Second-moment decay (default 0.999). */
  b2?: number;
  /** Added to √v̂ (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, PyTorch's and `optim.adamw`'s); 0 gives Adam. */
  weightDecay?: number;
  /** Which parameters decay, by position (default all). */
  decay?: readonly boolean[];
}

/**
 * The moments of an `adamwReference` after its last step, per parameter.
 *
 * @example
 * ```ts
 * const { m, v, t } = ref.state(); // m[j][i]: the first moment of element i of parameter j
 * ```
 */
export interface AdamwReferenceState {
  /** First moments. */
  m: Float64Array[];
  /** Second moments. */
  v: Float64Array[];
  /** First moments of |g|: what `m` would be without cancellation (the scale of its rounding). */
  mAbs: Float64Array[];
  /** Steps taken. */
  t: number;
}

/**
 * A float64 AdamW, stepped by `step(params, grads)`.
 *
 * @example
 * ```ts
 * const scale = ref.step(params, grads); // params updated in place
 * ```
 */
export interface AdamwReference {
  /**
   * One step: updates `params` (float64, one array per parameter) in place from `grads`, and
   * returns each element's update scale, `lr/bc1 · mAbs / (√v/√bc2 + eps) + lr · wd · |p|`: the
   * update with |g| in place of g, which a float32 step's rounding error is a few EPS32 of.
   */
  step(params: Float64Array[], grads: readonly ArrayLike<number>[]): Float64Array[];
  /**
   * A skipped step: the step count advances (so later bias corrections and schedule steps count it)
   * while the parameters and moments stay as they are, as a training step that skips a non-finite
   * loss or gradient does.
   */
  skip(): void;
  /** The moments and the step count (no arrays before the first step). */
  state(): AdamwReferenceState;
}

/**
 * PyTorch's `torch.optim.AdamW` (amsgrad off, single-tensor) in float64 plain loops, written
 * independently of `@sorsajs/core`'s optimizers: per element, `p ← p (1 − lr wd)`,
 * `m ← b1 m + (1 − b1) g`, `v ← b2 v + (1 − b2) g²`, `p ← p − (lr / bc1) m / (√v / √bc2 + eps)`
 * with `bc_i = 1 − b_i^t`. With `weightDecay: 0` it is `torch.optim.Adam` without weight decay.
 *
 * @example
 * ```ts
 * import { adamwReference } from '@sorsajs/testing';
 * const ref = adamwReference({ lr: 1e-2, weightDecay: 0.1 });
 * const w = Float64Array.from(await params.w.data());
 * for (let t = 0; t < 3; t++) ref.step([w], [gradOf(w)]); // the float64 trajectory
 * await assertAllClose(trainedW, w, { atol: 1e-6 });
 * ```
 */
export function adamwReference(opts: AdamwReferenceOptions): AdamwReference {
  const b1 = opts.b1 ?? 0.9;
  const b2 = opts.b2 ?? 0.999;
  const eps = opts.eps ?? 1e-8;
  const wd = opts.weightDecay ?? 0.01;
  const { lr: schedule } = opts;
  const lrAt = (step: number): number => (typeof schedule === 'number' ? schedule : schedule(step));
  let m: Float64Array[] = [];
  let v: Float64Array[] = [];
  let mAbs: Float64Array[] = [];
  let t = 0;
  let started = false;
  return {
    step(params, grads) {
      if (params.length !== grads.length) throw new Error(`adamwReference: ${params.length} parameters, ${grads.length} gradients`);
      params.forEach((p, j) => {
        if (p.length !== grads[j].length) throw new Error(`adamwReference: parameter ${j} has ${p.length} values, its gradient ${grads[j].length}`);
      });
      if (!started) {
        const zeros = (): Float64Array[] => params.map((p) => new Float64Array(p.length));
        [m, v, mAbs] = [zeros(), zeros(), zeros()];
        started = true;
      } else if (params.length !== m.length || params.some((p, j) => p.length !== m[j].length)) {
        throw new Error('adamwReference: the parameters changed shape since the first step');
      }
      t++;
      const lr = lrAt(t - 1);
      const bc1 = 1 - b1 ** t;
      const bc2Sqrt = Math.sqrt(1 - b2 ** t);
      return params.map((p, j) => {
        const g = grads[j];
        const decays = wd !== 0 && (opts.decay?.[j] ?? true);
        const scale = new Float64Array(p.length);
        for (let i = 0; i < p.length; i++) {
          const pOld = p[i];
          if (decays) p[i] *= 1 - lr * wd;
          m[j][i] = b1 * m[j][i] + (1 - b1) * g[i];
          v[j][i] = b2 * v[j][i] + (1 - b2) * g[i] * g[i];
          mAbs[j][i] = b1 * mAbs[j][i] + (1 - b1) * Math.abs(g[i]);
          const denom = Math.sqrt(v[j][i]) / bc2Sqrt + eps;
          p[i] -= ((lr / bc1) * m[j][i]) / denom;
          scale[i] = ((lr / bc1) * mAbs[j][i]) / denom + (decays ? lr * wd * Math.abs(pOld) : 0);
        }
        return scale;
      });
    },
    skip() {
      t++;
    },
    state: () => ({ m, v, mAbs, t }),
  };
}
