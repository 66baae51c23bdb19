/**
 * Neural-network functions: pure, with no hidden state. Each is composed from differentiable core
 * ops, so gradients (and gradients of gradients) come for free. softmax, the norms and
 * cross-entropy are fused kernels with their own backward pass (softmax.ts, norm.ts, cross-entropy.ts).
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { add, div, square, sub, where } from '../ops/elementwise.js';
import { logsumexp, mean } from '../ops/reduce.js';
import { sum } from '../ops/broadcast.js';
import { runScoped } from '../tensor/scope.js';
import { softmax } from './softmax.js';
import type { Reduction } from './cross-entropy.js';
import { take } from '../ops/indexing.js';
import { matmul } from '../ops/linalg.js';
import { causalScores, MASKED } from './causal.js';
import { checkTensor } from '../tensor/checks.js';
import { fmt, normalizeAxis } from '../util/shape-math.js';
export { gelu, silu, relu, sigmoid, tanh } from '../ops/elementwise.js';

/** Runs a composite with its intermediates disposed (those a gradient still needs survive). */
const scoped = (fn: () => Tensor): Tensor => runScoped(fn, (r) => [r]);

/**
 * `log(softmax(x))` along `axis` (default last), as `x - logsumexp(x)`: stable for large logits.
 *
 * @example
 * ```ts
 * logSoftmax(tensor([0, 0])); // [-0.693, -0.693]
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkTensor('logSoftmax', x);
  normalizeAxis('logSoftmax', axis, x.rank);
  return scoped(() => sub(x, logsumexp(x, axis, true)));
}


/**
 * Mean squared error (or its sum, or the per-element squares).
 *
 * @example
 * ```ts
 * mse(tensor([1, 2]), tensor([1, 4])); // 2
 * ```
 */
export function mse(pred: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  checkTensor('mse', pred, 'pred');
  checkTensor('mse', target, 'target');
  const r = opts.reduction ?? 'mean';
  return scoped(() => {
    const sq = square(sub(pred, target));
    return r === 'none' ? sq : r === 'sum' ? sum(sq) : mean(sq);
  });
}

/**
 * A linear layer with PyTorch's weight layout: `x @ Wᵀ + b`, W `[out, in]`.
 *
 * @example
 * ```ts
 * linear(ones([8, 3]), ones([4, 3]), zeros([4])).shape; // [8, 4]
 * ```
 */
export function linear(x: Tensor, W: Tensor, b?: Tensor | null): Tensor {
  checkTensor('linear', x);
  checkTensor('linear', W, 'W');
  if (W.rank !== 2 || x.shape[x.rank - 1] !== W.shape[1]) {
    throw new Error(`linear: W must be [out, in] with in = ${x.shape[x.rank - 1]} (the last axis of x ${fmt(x.shape)}), got ${fmt(W.shape)}`);
  }
  if (!b) return matmul(x, W, { transposeB: true });
  checkTensor('linear', b, 'b');
  if (b.rank !== 1 || b.shape[0] !== W.shape[0]) throw new Error(`linear: b must have shape [${W.shape[0]}], got ${fmt(b.shape)}`);
  return scoped(() => add(matmul(x, W, { transposeB: true }), b));
}

/**
 * Rows of `table` `[vocab, dim]` at int32 `ids`: shape `[...ids.shape, dim]`. As {@link take}: an
 * id in `[-vocab, 0)` counts from the end, any other id outside `[0, vocab)` gives a row of NaN
 * (never another row's values), on every backend and for ids computed on the device alike.
 *
 * @example
 * ```ts
 * embedding(table, tensor([[1, 5]], undefined, 'int32')).shape; // [1, 2, dim]
 * ```
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  checkTensor('embedding', table, 'table');
  if (table.rank !== 2) throw new Error(`embedding: table must be [vocab, dim], got ${fmt(table.shape)}`);
  return take(table, ids, 0);
}

/**
 * Scaled dot-product attention over `[batch, heads, seq, dim]` (any leading axes):
 * `softmax(q kᵀ / sqrt(dim) + masking) v`. `causal` lets query i attend to keys up to i (aligned to
 * the end when there are more keys than queries); `mask` (broadcastable to `[..., seqQ, seqK]`,
 * nonzero = may attend) restricts further.
 *
 * @example
 * ```ts
 * attention(q, k, v, { causal: true }).shape; // q.shape with v's last axis
 * ```
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: { causal?: boolean; mask?: Tensor } = {}): Tensor {
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) checkTensor('attention', t, name);
  if (q.rank < 2 || k.rank !== q.rank || v.rank !== q.rank) throw new Error(`attention: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} must have one rank >= 2`);
  const d = q.shape[q.rank - 1];
  if (k.shape[k.rank - 1] !== d) throw new Error(`attention: q and k need one feature size, got ${fmt(q.shape)} and ${fmt(k.shape)}`);
  if (k.shape[k.rank - 2] !== v.shape[v.rank - 2]) throw new Error(`attention: k and v need one sequence length, got ${fmt(k.shape)} and ${fmt(v.shape)}`);
  const sk = k.shape[k.rank - 2];
  const scoreShape = [...q.shape.slice(0, -1), sk];
  if (opts.mask) {
    checkTensor('attention', opts.mask, 'mask');
    const m = opts.mask.shape;
    const fits = m.length <= scoreShape.length && m.every((dm, i) => dm === 1 || dm === scoreShape[scoreShape.length - m.length + i]);
    if (!fits) throw new Error(`attention: mask ${fmt(m)} does not broadcast to the scores ${fmt(scoreShape)} ([..., seqQ, seqK])`);
  }
  return scoped(() => {
    const raw = matmul(q, k, { transposeB: true });
    // Causal: the scale and the mask in one kernel (causal.ts).
    let scores = opts.causal ? causalScores(raw, Math.sqrt(d)) : div(raw, Math.sqrt(d));
    if (opts.mask) scores = where(opts.mask, scores, MASKED);
    return matmul(softmax(scores, -1), v);
  });
}

