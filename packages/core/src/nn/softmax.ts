/**
 * Softmax as fused kernels: 3 forward (the row maximum, the sum of exponentials, the quotient) and
 * 2 backward (`y (g - Σ g y)` per row), where the composition of max, exp, sum and div took 4
 * kernels forward and about 8 backward, each a pass over the scores. Attention's softmax over
 * `[batch, heads, seq, seq]` scores is the biggest such tensor of a transformer step after the MLP's.
 * Over an axis other than the last, and when the backward pass is itself differentiated, it runs
 * composed.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { div, exp, mapOp, sub } from '../ops/elementwise.js';
import { max } from '../ops/reduce.js';
import { sum } from '../ops/broadcast.js';
import { stopGradient } from '../autodiff/transforms.js';
import { op, recording } from '../autodiff/tape.js';
import { checkTensor } from '../tensor/checks.js';
import { normalizeAxis } from '../util/shape-math.js';
import type { LineReduce } from '../kernels/line-reduce.js';
import { composedVjp, lineReduce, scoped, withTemps } from './fused.js';

const F = { int: false };
const ROW_MAX: LineReduce = { name: 'softmax:max', expr: 'v0', kinds: ['full'], over: 'cols', combine: 'max' };
const ROW_SUM_EXP: LineReduce = { name: 'softmax:sum-exp', expr: 'Math.exp(v0 - v1)', kinds: ['full', 'row'], over: 'cols' };
const ROW_DOT: LineReduce = { name: 'softmax:dot', expr: 'v0 * v1', kinds: ['full', 'full'], over: 'cols' };

/** The composed softmax: the definition, and the backward pass under an outer tape. */
function softmaxComposed(x: Tensor, axis: number): Tensor {
  // exp(x - max) / sum: exp(x - logsumexp) would scale every entry by logsumexp's rounding
  // (~eps |lse|, 200 eps at logits near 1e3). The max is a constant to the gradient (softmax
  // does not change under a shift), so it carries none.
  return scoped(() => {
    const e = exp(sub(x, stopGradient(max(x, axis, true))));
    return div(e, sum(e, axis, true));
  });
}

/**
 * Softmax along `axis` (default last), computed as `exp(x - max) / sum(exp(x - max))`.
 *
 * @example
 * ```ts
 * softmax(tensor([[1, 2, 3]])); // [[0.090, 0.245, 0.665]]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkTensor('softmax', x);
  const a = normalizeAxis('softmax', axis, x.rank);
  if (a !== x.rank - 1 || x.size === 0) return softmaxComposed(x, a);
  const L = x.shape[a];
  const R = x.size / L;
  const rowShape = [...x.shape.slice(0, -1), 1];
  return scoped(() => {
    const forward = (): Tensor =>
      withTemps([lineReduce(ROW_MAX, [x], R, L, rowShape)], ([m]) =>
        withTemps([lineReduce(ROW_SUM_EXP, [x, m], R, L, rowShape)], ([s]) => mapOp('softmax', 'Math.exp(v0 - v1) / v2', [x, m, s], F)),
      );
    const backward = (g: Tensor, y: Tensor): Tensor => {
      if (recording([g, x, y])) return composedVjp((u: Tensor) => softmaxComposed(u, a), [x], g)[0]!;
      return withTemps([lineReduce(ROW_DOT, [g, y], R, L, rowShape)], ([dot]) => mapOp("softmax'", 'v1 * (v0 - v2)', [g, y, dot], F));
    };
    return op([x], forward, (g, y) => [backward(g, y)]);
  });
}
