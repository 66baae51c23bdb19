/**
 * The LoRA baseline: `W + scale · B A` with A Kaiming-uniform (as peft's default) and B = 0.
 *
 * @example
 * ```ts
 * import { lora } from '@sorsajs/sorsa';
 * const { adapter, residual } = lora.initAdapter(W, { rank: 8, alpha: 16, key: random.key(0) });
 * const y = lora.adaptedLinear(adapter, residual, x);
 * ```
 * @module
 */
import { random, reshape, tidy, zeros, type Tensor } from '@sorsajs/core';
import { checkFiniteValues } from '@sorsajs/core/internal';
import { checkRank, checkWeight, scaleOf } from './checks.js';
import type { Init, LoraAdapter } from './types.js';

export { merge, adaptedLinear, linear } from './forward.js';

/**
 * Options of `lora.initAdapter`.
 *
 * @example
 * ```ts
 * lora.initAdapter(W, { rank: 8, alpha: 16, key: random.key(0) });
 * ```
 */
export interface LoraInitOptions {
  /** Adapter rank r, in [1, min(out, in)]. */
  rank: number;
  /** The scale is `alpha / r` (default alpha = r: scale 1). */
  alpha?: number;
  /** Key of A's initialization. */
  key: random.Key;
}

/**
 * A LoRA adapter for `W [out, in]`, as peft's default (`init_lora_weights=True`): A `[r, in]` from
 * `kaiming_uniform_(a=√5)`, i.e. uniform in `[−1/√in, 1/√in)`, and B `[out, r]` zero, so the
 * adapted weight starts at W. The residual is W itself (a new handle on the same storage: the base
 * weight is not modified and may be disposed separately). `adapter.scale` is `alpha / rank`.
 *
 * @example
 * ```ts
 * const { adapter, residual } = lora.initAdapter(W, { rank: 8, alpha: 16, key: random.key(0) });
 * adapter.scale; // 2
 * ```
 */
export function initAdapter(W: Tensor, opts: LoraInitOptions): Init<LoraAdapter> {
  const fn = 'lora.initAdapter';
  checkWeight(fn, W);
  const rank = checkRank(fn, opts?.rank, W.shape);
  const scale = scaleOf(fn, opts.alpha ?? rank, rank);
  if (!(opts.key instanceof random.Key)) throw new Error(`lora.initAdapter: key must be a random.Key, got ${opts.key === null ? 'null' : typeof opts.key}`);
  checkFiniteValues(fn, W, 'W');
  const [out, inp] = W.shape;
  const bound = 1 / Math.sqrt(inp);
  return tidy(() => ({
    adapter: { A: random.uniform(opts.key, [rank, inp], { min: -bound, max: bound }), B: zeros([out, rank]), scale },
    residual: reshape(W, W.shape),
  }));
}
