/**
 * @internal attention's scaled, causally masked scores as one fused op: forward one kernel where the
 * composition took five (the scale, two index ranges, a comparison and a select), backward one
 * kernel where it took two. A differentiated backward pass runs the composed formula.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { div, less, where } from '../ops/elementwise.js';
import { arange } from '../ops/create.js';
import { reshape } from '../ops/shape.js';
import { launch } from '../ops/operand.js';
import { op, recording } from '../autodiff/tape.js';
import type { KernelSource } from '../backend/engine.js';
import { divmod } from '../kernels/index-math.js';
import { composedVjp, scoped } from './fused.js';

/**
 * What a masked score holds: the most negative float32, so that softmax gives it weight 0.
 *
 * @example
 * ```ts
 * where(mask, scores, MASKED);
 * ```
 */
export const MASKED = -3.4028234663852886e38;

/**
 * Cell c of scores `[..., sq, sk]` (j = c mod sk, i = (c div sk) mod sq): whether query i may see key
 * j (`j <= i + off`), the value `x / den` there, else `fill` (forward); `g / den` there, else 0
 * (backward, with `fill` 0). Scalars: sk, sq, off, den, fill.
 */
const CAUSAL: KernelSource = {
  key: 'attention:causal',
  arrays: ['x'],
  scalars: ['sk', 'sq', 'off', 'den', 'fill'],
  floats: ['den', 'fill'],
  body: `const c = this.thread.x;
${divmod('row', 'j', 'c', 'sk')}
${divmod('b', 'i', 'row', 'sq')}
if (j <= i + off) { return x[c] / den; }
return fill;`,
};

/** The composition: `where(keep, x / den, MASKED)` with keep built from two ranges. */
function causalComposed(x: Tensor, den: number): Tensor {
  const sq = x.shape[x.rank - 2];
  const sk = x.shape[x.rank - 1];
  return scoped(() => {
    // keep[i, j] = j <= i + (sk - sq), built by kernels from two ranges.
    const rows = reshape(arange(sk - sq + 1, sk + 1), [sq, 1]);
    return where(less(arange(sk), rows), div(x, den), MASKED);
  });
}

/**
 * `x / den` where query i may see key j (`j <= i + sk - sq`, aligned to the end when there are more
 * keys than queries), `MASKED` elsewhere, for scores `x` `[..., sq, sk]`: attention's causal scores.
 * Differentiable.
 *
 * @example
 * ```ts
 * const scores = causalScores(matmul(q, k, { transposeB: true }), Math.sqrt(d));
 * ```
 */
export function causalScores(x: Tensor, den: number): Tensor {
  const sq = x.shape[x.rank - 2];
  const sk = x.shape[x.rank - 1];
  if (x.size === 0) return causalComposed(x, den);
  const d = Math.fround(den);
  const scalars = (fill: number): number[] => [sk, sq, sk - sq, d, fill];
  return scoped(() =>
    op(
      [x],
      () => launch('attention', CAUSAL, x.shape, 'float32', [x], scalars(MASKED)),
      (g) => [recording([g, x]) ? composedVjp((t: Tensor) => causalComposed(t, den), [x], g)[0]! : launch('attention', CAUSAL, g.shape, 'float32', [g], scalars(0))],
    ),
  );
}
