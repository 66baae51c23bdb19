/**
 * Softmax cross-entropy. The per-example loss `logsumexp(logits) - logits[label]` is one fused op:
 * forward the row's logsumexp and a kernel that picks the label's logit (the composition built a
 * one-hot matrix of the logits' size, multiplied and summed it: three passes over `[tokens, vocab]`,
 * at a real vocabulary hundreds of megabytes each), backward one kernel, `g (softmax - onehot)`.
 * A differentiated backward pass runs the composed formula. Validity, ignoreIndex and the reduction
 * act on the per-example losses.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { cast, equal, greater, less, mapOp, maximum, mul, div, sub, where } from '../ops/elementwise.js';
import { logsumexp, mean } from '../ops/reduce.js';
import { sum } from '../ops/broadcast.js';
import { oneHot } from '../ops/indexing.js';
import { reshape } from '../ops/shape.js';
import { arange } from '../ops/create.js';
import { launch } from '../ops/operand.js';
import { checkTensor } from '../tensor/checks.js';
import { op, recording } from '../autodiff/tape.js';
import type { KernelSource } from '../backend/engine.js';
import { fmt } from '../util/shape-math.js';
import { composedVjp, scoped, withTemps } from './fused.js';

/** How per-example losses are combined. */
export type Reduction = 'mean' | 'sum' | 'none';

/**
 * `lse[r] - x[r, label[r]]` per row of `[R, C]` logits; a label outside `[0, C)` picks nothing (0),
 * as a one-hot row of it would. Scalars: C.
 */
const PICK: KernelSource = {
  key: 'crossEntropy:pick',
  arrays: ['x', 'labels', 'lse'],
  scalars: ['C'],
  body: `const r = this.thread.x;
const l = labels[r];
if (l >= 0 && l < C) { return lse[r] - x[r * C + l]; }
return lse[r];`,
};

/** The composed per-example loss: the definition, and the backward pass under an outer tape. */
function rowLossesComposed(logits: Tensor, labels: Tensor): Tensor {
  const C = logits.shape[logits.rank - 1];
  return scoped(() => sub(logsumexp(logits, -1), sum(mul(logits, oneHot(labels, C)), -1)));
}

/** `logsumexp(logits) - logits[label]` per example, shape of `labels`. */
function rowLosses(logits: Tensor, labels: Tensor): Tensor {
  const C = logits.shape[logits.rank - 1];
  if (logits.size === 0) return rowLossesComposed(logits, labels);
  const rowShape = [...labels.shape, 1];
  return scoped(() => {
    let lse: Tensor | undefined;
    const forward = (): Tensor => {
      lse = logsumexp(logits, -1, true);
      return launch('crossEntropy', PICK, labels.shape, 'float32', [logits, labels, lse], [C]);
    };
    const backward = (g: Tensor): Tensor => {
      if (recording([g, logits])) return composedVjp((x: Tensor) => rowLossesComposed(x, labels), [logits], g)[0]!;
      // g (softmax - onehot): the label as a float per row against each column's index.
      return withTemps([reshape(cast(labels, 'float32'), rowShape), arange(0, C, 1, 'float32'), reshape(g, rowShape)], ([lab, cols, gr]) =>
        mapOp("crossEntropy'", 'v0 * (Math.exp(v1 - v2) - (v3 === v4 ? 1 : 0))', [gr, logits, lse!, lab, cols], { int: false }),
      );
    };
    return op([logits], forward, (g) => [backward(g)], () => [lse!]);
  });
}

/**
 * Softmax cross-entropy of `logits` `[..., C]` against int32 class `labels` `[...]`, as PyTorch's
 * cross_entropy: `logsumexp(logits) - logits[label]` per example, then the mean over examples whose
 * label is not `ignoreIndex` (or their sum, or none: per-example losses, 0 where ignored).
 *
 * A label outside `[0, C)` that is not `ignoreIndex` gives that example a NaN loss (so a NaN mean or
 * sum) and a NaN gradient, on every backend, whether the labels are on the host or still being
 * computed on the device; no error is thrown.
 *
 * @example
 * ```ts
 * crossEntropy(tensor([[2, 0], [0, 2]]), tensor([0, 1], undefined, 'int32')); // 0.127
 * crossEntropy(tensor([[2, 0], [0, 2]]), tensor([0, 7], undefined, 'int32')); // NaN
 * ```
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: { reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  checkTensor('crossEntropy', logits, 'logits');
  checkTensor('crossEntropy', labels, 'labels');
  if (labels.dtype !== 'int32') throw new Error(`crossEntropy: labels must be int32, got ${labels.dtype}`);
  if (logits.rank < 1 || labels.rank !== logits.rank - 1 || labels.shape.some((d, i) => d !== logits.shape[i])) {
    throw new Error(`crossEntropy: logits ${fmt(logits.shape)} need labels of shape ${fmt(logits.shape.slice(0, -1))}, got ${fmt(labels.shape)}`);
  }
  const C = logits.shape[logits.rank - 1];
  const reduction = opts.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new Error(`crossEntropy: unknown reduction "${reduction}"`);
  return scoped(() => {
    // A label outside [0, C) that is not ignoreIndex makes its loss (and its gradient) NaN. Tested
    // on the device, so it holds for labels still being computed as for host ones.
    const inRange = mul(greater(labels, -1), less(labels, C));
    const valid = opts.ignoreIndex === undefined ? inRange : maximum(inRange, equal(labels, opts.ignoreIndex));
    const losses = mul(rowLosses(logits, labels), where(valid, 1, NaN));
    if (opts.ignoreIndex === undefined) {
      if (reduction === 'none') return losses;
      return reduction === 'sum' ? sum(losses) : mean(losses);
    }
    const keep = sub(1, equal(labels, opts.ignoreIndex));
    const kept = mul(losses, keep);
    if (reduction === 'none') return kept;
    if (reduction === 'sum') return sum(kept);
    return div(sum(kept), sum(keep));
  });
}

