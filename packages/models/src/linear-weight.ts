/**
 * Linear weights given as functions: what a params tree passed to a model's forward may hold at a
 * linear layer's weight path in place of the `[out, in]` tensor, so that an adapter can run beside
 * its frozen weight without the weight being materialized (PEFT's layer injection, as a value).
 * @module
 */
import { Tensor, nn } from '@sorsajs/core';

/**
 * A linear layer's weight as a function of the layer's input. Where a params tree holds one at a
 * linear weight's path (`transformer.h.0.attn.c_attn.weight`, `model.layers.0.mlp.up_proj.weight`,
 * an untied `lm_head.weight`), the forward pass calls `linear(x, bias)` where it would compute
 * `x Wᵀ + bias`. `@sorsajs/sorsa`'s `factoredParams` puts one at every adapted path, so that a
 * training step computes `x W_rᵀ + ((x Vtᵀ) S) Uᵀ` instead of building `W_r + U diag(S) Vt` and its
 * gradient `gᵀ x` (`[out, in]`) for every layer.
 *
 * @example
 * ```ts
 * import { nn, type Tensor } from '@sorsajs/core';
 * import type { LinearWeight } from '@sorsajs/models';
 * declare const W: Tensor; // [out, in]
 * const plain: LinearWeight = { shape: W.shape, linear: (x, bias) => nn.linear(x, W, bias), weight: () => W };
 * ```
 */
export interface LinearWeight {
  /** `[out, in]`: the shape of the weight it stands for. */
  readonly shape: readonly number[];
  /** `x Wᵀ + bias` for `x` `[..., in]`: `[..., out]`. */
  linear(x: Tensor, bias: Tensor | null): Tensor;
  /**
   * The weight as a tensor `[out, in]`, for where the forward reads the path other than as a linear
   * layer: an embedding table (GPT-2's `wte` and `wpe`, Llama's `embed_tokens`), which a tied head
   * also multiplies by. Without it such a read is an Error naming the path.
   */
  weight?(): Tensor;
}

/**
 * A tree a model's forward reads: a {@link ParamTree} whose linear weights may also be
 * {@link LinearWeight}s. Every ParamTree is one.
 *
 * @example
 * ```ts
 * const p: ForwardParams = model.params;
 * ```
 */
export interface ForwardParams {
  readonly [key: string]: ForwardParams | readonly ForwardParams[] | Tensor | LinearWeight;
}

/**
 * Whether `x` is a {@link LinearWeight} (an object with a `linear` function and a shape), not a
 * Tensor.
 *
 * @example
 * ```ts
 * isLinearWeight(model.params.lm_head?.weight); // false: a Tensor
 * ```
 */
export function isLinearWeight(x: unknown): x is LinearWeight {
  if (x === null || typeof x !== 'object' || x instanceof Tensor) return false;
  const w = x as { linear?: unknown; shape?: unknown };
  return typeof w.linear === 'function' && Array.isArray(w.shape);
}

/**
 * `x Wᵀ + bias` through a weight leaf that is a Tensor (core's `nn.linear`) or a
 * {@link LinearWeight}, whose shape must be `[out, in]` with `in` x's last axis, and whose result
 * must be `[..., out]`: a function that answers with another shape is an Error naming the path.
 */
export function applyLinear(op: string, path: string, w: Tensor | LinearWeight, x: Tensor, bias: Tensor | null): Tensor {
  if (w instanceof Tensor) return nn.linear(x, w, bias);
  const [out, inp] = w.shape;
  const xin = x.shape[x.rank - 1];
  if (w.shape.length !== 2 || inp !== xin) throw new Error(`${op}: "${path}" is a LinearWeight of shape [${w.shape.join(', ')}], but the layer's input is [..., ${xin}]`);
  const y = w.linear(x, bias);
  const want = [...x.shape.slice(0, -1), out];
  if (!(y instanceof Tensor) || y.rank !== want.length || y.shape.some((d, i) => d !== want[i])) {
    throw new Error(`${op}: "${path}".linear returned ${y instanceof Tensor ? `[${y.shape.join(', ')}]` : String(y)}, expected a Tensor [${want.join(', ')}]`);
  }
  return y;
}

/**
 * The tensor at a path the forward reads as a tensor (not through `applyLinear`): the leaf itself,
 * or a {@link LinearWeight}'s `weight()`; a LinearWeight without one is an Error naming the path.
 */
export function tensorOf(op: string, path: string, w: Tensor | LinearWeight): Tensor {
  if (w instanceof Tensor) return w;
  if (typeof w.weight !== 'function') throw new Error(`${op}: params "${path}" is a LinearWeight without weight(), but the forward reads it as a tensor (an embedding table, or the tied head); give it a weight() or put the tensor there`);
  const t = w.weight();
  if (!(t instanceof Tensor) || t.rank !== 2 || t.shape[0] !== w.shape[0] || t.shape[1] !== w.shape[1]) {
    throw new Error(`${op}: "${path}".weight() returned ${t instanceof Tensor ? `[${t.shape.join(', ')}]` : String(t)}, expected a Tensor [${w.shape.join(', ')}]`);
  }
  return t;
}

