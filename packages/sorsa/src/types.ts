/**
 * Adapter trees and how they are recognized.
 * @module
 */
import { Tensor, tree } from '@sorsajs/core';

/**
 * A SORSA adapter: the principal singular triplets of a weight `W [out, in]`, trained in place of W
 * while the residual `W_r` stays frozen. The adapted weight is `W_r + scale · U diag(S) Vt`.
 *
 * - `U` `[out, r]`: left singular vectors (official name `sorsa_B`);
 * - `S` `[r]`: singular values (`sorsa_S`);
 * - `Vt` `[r, in]`: right singular vectors as rows (`sorsa_A`);
 * - `scale`: a number leaf (no gradient, no optimizer state); 1 when absent, `alpha / r` when
 *   `initAdapter` is given `alpha`.
 *
 * @example
 * ```ts
 * const adapter: SorsaAdapter = { U, S, Vt };          // scale 1
 * const W = merge(adapter, residual);                  // residual + U diag(S) Vt
 * ```
 */
export interface SorsaAdapter {
  /** Left singular vectors, `[out, r]`. */
  U: Tensor;
  /** Singular values, `[r]`. */
  S: Tensor;
  /** Right singular vectors as rows, `[r, in]`. */
  Vt: Tensor;
  /** Multiplier of the adapter's contribution; 1 when absent. */
  scale?: number;
}

/**
 * A LoRA-form adapter (LoRA, PiSSA): the adapted weight is `W_r + scale · B A`, with `A` `[r, in]`
 * and `B` `[out, r]` (peft's `lora_A.weight` and `lora_B.weight`). For LoRA the residual is the
 * untouched base weight; for PiSSA it is W minus its principal part.
 *
 * @example
 * ```ts
 * const adapter: LoraAdapter = { A, B, scale: 2 };
 * const W = merge(adapter, base);                      // base + 2 · B A
 * ```
 */
export interface LoraAdapter {
  /** Down projection, `[r, in]`. */
  A: Tensor;
  /** Up projection, `[out, r]`. */
  B: Tensor;
  /** Multiplier of the adapter's contribution (`alpha / r`); 1 when absent. */
  scale?: number;
}

/**
 * An AdaLoRA adapter (PEFT's `SVDLinear`): the adapted weight is `W + scale · B (A ⊙ E)`, i.e.
 * `W + scale · B diag(E) A`, with `A` `[r, in]`, `E` `[r, 1]` (the singular values, masked to 0 as
 * rank is pruned) and `B` `[out, r]` (peft's `lora_A`, `lora_E`, `lora_B`). `scale` is PEFT's
 * `scaling / (ranknum + 1e-5)`, ranknum the initial rank.
 *
 * @example
 * ```ts
 * const adapter: AdaloraAdapter = { A, E, B, scale: 1 };
 * const W = merge(adapter, base);                      // base + B diag(E) A
 * ```
 */
export interface AdaloraAdapter {
  /** Right factor, `[r, in]`. */
  A: Tensor;
  /** Singular values as a column, `[r, 1]`. */
  E: Tensor;
  /** Left factor, `[out, r]`. */
  B: Tensor;
  /** Multiplier of the adapter's contribution; 1 when absent. */
  scale?: number;
}

/**
 * Any kind of adapter. Both are plain trees: the optimizers and `tree` functions take them as they are.
 *
 * @example
 * ```ts
 * const W = merge(adapter as Adapter, residual); // either kind
 * ```
 */
export type Adapter = SorsaAdapter | LoraAdapter | AdaloraAdapter;

/**
 * Trainable adapters keyed by the dotted path (as `tree.mapWithPath` spells it) of the weight they
 * adapt in the frozen tree. With full fine-tuning (`adaptParams(..., { method: 'full' })`) the
 * entry is the weight itself, a Tensor `[out, in]`, which replaces the frozen leaf at its path.
 *
 * @example
 * ```ts
 * const trainable: Trainable = { 'blocks.0.attn.wq': { U, S, Vt } };
 * const full: Trainable = { 'blocks.0.attn.wq': wq };   // full fine-tuning
 * ```
 */
export type Trainable = Record<string, Adapter | Tensor>;

/**
 * What every `initAdapter` returns: the trainable adapter and the frozen residual `[out, in]`.
 *
 * @example
 * ```ts
 * const { adapter, residual }: Init<SorsaAdapter> = initAdapter(W, { rank: 8 });
 * ```
 */
export interface Init<A extends Adapter> {
  /** The trainable part. */
  adapter: A;
  /** The frozen part: `merge(adapter, residual)` gives the original weight back. */
  residual: Tensor;
}

/**
 * Whether `x` is a SORSA adapter: a plain object whose `U`, `S` and `Vt` are tensors.
 *
 * @example
 * ```ts
 * isSorsaAdapter({ U, S, Vt }); // true
 * isSorsaAdapter({ A, B });     // false
 * ```
 */
export function isSorsaAdapter(x: unknown): x is SorsaAdapter {
  if (!tree.isNode(x) || Array.isArray(x)) return false;
  return x.U instanceof Tensor && x.S instanceof Tensor && x.Vt instanceof Tensor;
}

/**
 * Whether `x` is an AdaLoRA adapter: a plain object whose `A`, `E` and `B` are tensors.
 *
 * @example
 * ```ts
 * isAdaloraAdapter({ A, E, B }); // true
 * isAdaloraAdapter({ A, B });    // false
 * ```
 */
export function isAdaloraAdapter(x: unknown): x is AdaloraAdapter {
  if (!tree.isNode(x) || Array.isArray(x)) return false;
  return x.A instanceof Tensor && x.E instanceof Tensor && x.B instanceof Tensor;
}

/**
 * Whether `x` is a LoRA-form adapter: a plain object whose `A` and `B` are tensors (and that is not
 * an AdaLoRA adapter, which has an `E` too).
 *
 * @example
 * ```ts
 * isLoraAdapter({ A, B, scale: 2 }); // true
 * ```
 */
export function isLoraAdapter(x: unknown): x is LoraAdapter {
  if (!tree.isNode(x) || Array.isArray(x)) return false;
  return x.A instanceof Tensor && x.B instanceof Tensor && !(x.E instanceof Tensor);
}

/**
 * Every value in a tree that `match` accepts, with its dotted path, in key order; matched values
 * are not searched inside. What `findAdapters` (SORSA) and `adalora.findAdapters` walk with.
 *
 * @example
 * ```ts
 * findIn({ a: { U, S, Vt } }, isSorsaAdapter); // [{ path: 'a', adapter: { U, S, Vt } }]
 * ```
 */
export function findIn<A>(t: unknown, match: (x: unknown) => x is A): { path: string; adapter: A }[] {
  const out: { path: string; adapter: A }[] = [];
  const walk = (x: unknown, path: string): void => {
    if (match(x)) out.push({ path, adapter: x });
    else if (Array.isArray(x)) x.forEach((v, i) => walk(v, path ? `${path}.${i}` : String(i)));
    else if (tree.isNode(x)) for (const [k, v] of Object.entries(x)) walk(v, path ? `${path}.${k}` : k);
  };
  walk(t, '');
  return out;
}
