/**
 * Conversion of trained SVD-initialized adapters to plain LoRA on the untouched base weight.
 * @module
 */
import { concat, mul, neg, tidy } from '@sorsajs/core';
import { fmtShape as fmt } from '@sorsajs/core/internal';
import { factors, resolveScale } from './checks.js';
import { isAdaloraAdapter, isSorsaAdapter, type Adapter, type LoraAdapter } from './types.js';

/**
 * Converts a trained SORSA or PiSSA adapter and its value at initialization into a rank-2r LoRA
 * adapter for the original, untouched weight W0 (peft's PiSSA-to-LoRA conversion):
 * `ΔW = scale · (U diag(S) Vt − U₀ diag(S₀) Vt₀)` as `B = [U diag(S), −U₀ diag(S₀)]` `[out, 2r]`
 * and `A = [Vt; Vt₀]` `[2r, in]` (PiSSA: `B = [B, −B₀]`, `A = [A; A₀]`), with the trained adapter's
 * scale. Then `merge(toLoRA(a, a0), W0)` equals `merge(a, residual)` to float32 rounding, since
 * `W0 = residual + scale · U₀ diag(S₀) Vt₀`. Neither input is disposed.
 *
 * @example
 * ```ts
 * const init = initAdapter(W0, { rank: 8 });
 * const a0 = tree.map((t) => t, init.adapter);        // keep the initial factors
 * // ... train init.adapter into `trained` ...
 * const loraAdapter = toLoRA(trained, a0);            // rank 16, applies to W0
 * const W = merge(loraAdapter, W0);
 * ```
 */
export function toLoRA(adapter: Adapter, initial: Adapter): LoraAdapter {
  const fn = 'toLoRA';
  if (isAdaloraAdapter(adapter) || isAdaloraAdapter(initial)) throw new Error(`${fn}: AdaLoRA adapters apply to the untouched base weight already; save them as they are (savePeftAdapter writes PEFT's ADALORA format)`);
  const f = factors(fn, adapter);
  const f0 = factors(fn, initial, 'initial');
  if (isSorsaAdapter(adapter) !== isSorsaAdapter(initial)) throw new Error(`${fn}: adapter and initial must be of the same kind (both { U, S, Vt } or both { A, B })`);
  if (f.out !== f0.out || f.inp !== f0.inp || f.rank !== f0.rank) {
    throw new Error(`${fn}: initial must have the adapter's shapes (out ${f.out}, in ${f.inp}, rank ${f.rank}), got ${fmt([f0.out, f0.inp])} rank ${f0.rank}`);
  }
  const scale = resolveScale(fn, adapter, undefined);
  const scale0 = resolveScale(fn, initial, undefined);
  if (scale !== scale0) throw new Error(`${fn}: adapter and initial have different scales (${scale} vs ${scale0})`);
  return tidy(() => {
    const left = f.mid ? mul(f.left, f.mid) : f.left;
    const left0 = f0.mid ? mul(f0.left, f0.mid) : f0.left;
    return { A: concat([f.right, f0.right], 0), B: concat([left, neg(left0)], 1), scale };
  });
}
