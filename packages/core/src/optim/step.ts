/**
 * `applyStep`: an optimizer's update applied to the params in one call, in the optimizer's fused
 * kernels when it has them (adam and adamw), with the gradients' scale, an added gradient tree and
 * a skip gate read inside those kernels, as PyTorch's foreach and fused optimizers do.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { map } from '../tree/tree.js';
import { add, mul, where } from '../ops/elementwise.js';
import { pure } from './fused.js';
import { applyUpdates } from './transforms.js';
import type { GradientTransformation, StepOptions } from './types.js';
import { checkFiniteNumber } from '../tensor/checks.js';

function checkScalar(what: string, x: unknown): void {
  if (!(x instanceof Tensor) || x.size !== 1) throw new Error(`applyStep: ${what} must be a one-element tensor, got ${x instanceof Tensor ? `shape [${x.shape.join(',')}]` : typeof x}`);
}

/**
 * One optimizer step: the new params and state, what `applyUpdates(params, opt.update(grads',
 * state, params)[0])` gives, where `grads'` is `grads * gradScale + add.grads * add.weight` leafwise
 * (see `StepOptions`), and, with `applyIf`, the old params and tensor state where it is 0. With an
 * optimizer that has a fused step (`adam`, `adamw`) this is three kernels per leaf (one on wasm),
 * whatever the options, instead of one per operation; any other optimizer (or a gradient taken
 * through the step) composes the same operations. Pure: nothing is mutated or disposed; the caller
 * disposes what the results replace. On wasm a leaf's new param and moments share one array, freed
 * when all three are (`memory()` counts it until then): to keep trained params alone after
 * disposing the optimizer state, keep a copy (`mul(p, 1)`) rather than the step's own tensor.
 *
 * @example
 * ```ts
 * const opt = adamw({ lr: 1e-3 });
 * const norm = globalNorm(grads);
 * const [next, state2] = applyStep(opt, grads, opt.init(params), params, { gradScale: clipCoefficient(norm, 1) });
 * ```
 */
export function applyStep<T, S>(opt: GradientTransformation<S>, grads: unknown, state: S, params: T, options: StepOptions = {}): [T, S] {
  if (!opt || typeof opt.update !== 'function') throw new Error('applyStep: opt must be a GradientTransformation { init, update }');
  if (params === undefined) throw new Error('applyStep: params are needed (the step applies to them)');
  const { gradScale, add: extra, applyIf } = options;
  if (gradScale !== undefined && !(typeof gradScale === 'number' && Number.isFinite(gradScale))) checkScalar('gradScale (or a finite number)', gradScale);
  if (extra !== undefined) checkFiniteNumber('applyStep', 'add.weight', extra?.weight);
  if (applyIf !== undefined) checkScalar('applyIf', applyIf);
  return pure(() => {
    const fused = opt.fusedStep?.(grads, state, params, options);
    if (fused) return fused;
    let g = grads;
    if (gradScale !== undefined) g = map((x) => (x instanceof Tensor ? mul(x, gradScale) : x), g);
    if (extra) g = map((x, r) => (x instanceof Tensor && r instanceof Tensor ? add(x, mul(r, extra.weight)) : x), g, extra.grads);
    const [updates, next] = opt.update(g, state, params);
    const updated = applyUpdates(params, updates);
    if (!applyIf) return [updated, next];
    // where, not arithmetic: NaN * 0 is NaN, a selection is not.
    const keep = (n: unknown, o: unknown): Tensor | null => (n instanceof Tensor && o instanceof Tensor ? where(applyIf, n, o) : (n as Tensor | null));
    // The states share a structure; host leaves (update counts) come from `next`.
    return [map(keep, updated, params), map(keep, next, state) as S];
  }) as [T, S];
}
