/**
 * The adapted layer: merge (materialize the weight) and linear (the forward pass, factored when
 * that is cheaper). Both take either kind of adapter.
 * @module
 */
import { Tensor, add, matmul, mul, nn, tidy } from '@sorsajs/core';
import { fmtShape as fmt, recording } from '@sorsajs/core/internal';
import { checkResidual, factors, resolveScale } from './checks.js';
import type { Adapter } from './types.js';

/**
 * Options of `merge`.
 *
 * @example
 * ```ts
 * merge(adapter, residual, { scale: 2 });
 * ```
 */
export interface MergeOptions {
  /** Multiplier of the adapter's contribution; default the adapter's `scale`, else 1. */
  scale?: number;
}

/**
 * Options of `adaptedLinear`.
 *
 * @example
 * ```ts
 * adaptedLinear(adapter, residual, x, { bias: b, scale: 0.5 });
 * ```
 */
export interface LinearOptions extends MergeOptions {
  /** Bias `[out]`, added to the output. */
  bias?: Tensor | null;
}

/**
 * `scale · left diag(mid) right` (mid absent: `scale · left right`): the adapter's contribution to
 * the weight. `initAdapter` and `merge` both compute it here, with the same kernels, so that
 * `merge(initAdapter(W))` gives W back to one rounding.
 */
export function principal(left: Tensor, mid: Tensor | null, right: Tensor, scale: number): Tensor {
  return tidy(() => {
    // AdaLoRA's E [r, 1] scales A's rows: B (A ⊙ E).
    if (mid && mid.rank === 2) return matmul(left, mul(right, scale === 1 ? mid : mul(mid, scale)));
    if (mid) return matmul(mul(left, scale === 1 ? mid : mul(mid, scale)), right);
    return matmul(scale === 1 ? left : mul(left, scale), right);
  });
}

/**
 * The adapted weight `residual + scale · U diag(S) Vt` (SORSA) or `residual + scale · B A`
 * (LoRA, PiSSA): what to serve at inference, with no extra latency. Differentiable.
 *
 * @example
 * ```ts
 * const { adapter, residual } = initAdapter(W, { rank: 8 });
 * const W2 = merge(adapter, residual);           // W, to float32 rounding
 * ```
 */
export function merge(adapter: Adapter, residual: Tensor, opts: MergeOptions = {}): Tensor {
  const f = factors('merge', adapter);
  checkResidual('merge', residual, f.out, f.inp);
  const scale = resolveScale('merge', adapter, opts.scale);
  return tidy(() => add(residual, principal(f.left, f.mid, f.right, scale)));
}

/**
 * Whether materializing the adapted weight costs fewer multiply-adds than the factored form, for
 * `tokens` rows of input through a layer `[out, in]` with an adapter of rank `rank`; with
 * `training`, counting the backward pass too (the gradients of the adapter's factors, not of the
 * frozen weight). Both forms share the layer's own `tokens·out·in` forward and its input gradient.
 *
 * - Forward only: materializing adds `out·in·r` (the product) `+ out·in` (the sum); the factored
 *   form adds `tokens·r·(in + out)` (two thin products) `+ tokens·(r + out)` (the S scaling and the
 *   sum of the two outputs).
 * - Training: materializing then also forms the weight's gradient `gᵀ x` (`tokens·out·in`) and
 *   takes the factors' gradients from it (`2·out·in·r`); the factored form's backward is four thin
 *   products (`2·tokens·r·(in + out)`) and the scalings. It also runs about five more kernels a
 *   step, most of them thin products that use the hardware poorly, so it is charged
 *   `FACTORED_TRAINING_OVERHEAD` multiply-adds more (measured on wasm, see below). So the factored
 *   form wins in training from far fewer tokens than at inference, on layers big enough for the
 *   saving to outweigh the extra kernels.
 *
 * @example
 * ```ts
 * preferMerged(1, 4096, 4096, 128);             // false: one token, factored
 * preferMerged(65536, 64, 64, 32);              // true: many tokens through a small layer
 * preferMerged(512, 768, 768, 16);              // true at inference,
 * preferMerged(512, 768, 768, 16, { training: true }); // false in a training step
 * ```
 */
export function preferMerged(tokens: number, out: number, inp: number, rank: number, opts: { training?: boolean } = {}): boolean {
  const thin = tokens * (rank * (inp + out) + rank + out);
  if (!opts.training) return out * inp * (rank + 1) < thin;
  return out * inp * (3 * rank + 1) + tokens * out * inp < thin + 2 * tokens * (rank * (inp + out) + rank) + FACTORED_TRAINING_OVERHEAD;
}

/**
 * What `preferMerged` charges the factored form of one layer in a training step for its extra
 * kernels, in multiply-adds: 2^26 (~67M). Measured on wasm (2 cores), and applied on every backend
 * (on webgpu launches cost more and multiply-adds less, so the charge errs towards merging there):
 * in a step of a width-128 GPT-2 (8 adapted layers, 512 tokens, rank 8) the factored form saved
 * ~160M multiply-adds over the merged one, ran 37 more kernels, and was 7-20 ms slower (medians of
 * 30 steps), so its extra kernels cost about what ~50-100M multiply-adds do per layer. At GPT-2
 * small (1 × 128 tokens, rank 8) each layer saves 85-350M, and the factored step took 1.9-2.0 s
 * against 3.0-3.9 s.
 *
 * @example
 * ```ts
 * FACTORED_TRAINING_OVERHEAD; // 67108864
 * ```
 */
export const FACTORED_TRAINING_OVERHEAD = 2 ** 26;

/**
 * The adapted linear layer `x W_rᵀ + scale · ((x Vtᵀ) * S) Uᵀ (+ bias)` (SORSA; `x W_rᵀ + scale ·
 * (x Aᵀ) Bᵀ` for LoRA-form adapters), with x `[..., in]` and the output `[..., out]`. It
 * materializes `U diag(S) Vt` into the weight only when that is cheaper (see `preferMerged`), and
 * is differentiable either way. (Core's `nn.linear(x, W, b)` is the plain layer of an unadapted
 * weight.)
 *
 * @example
 * ```ts
 * const y = adaptedLinear(adapter, residual, x, { bias: b });   // x [batch, seq, in] -> [batch, seq, out]
 * ```
 */
export function adaptedLinear(adapter: Adapter, residual: Tensor, x: Tensor, opts: LinearOptions = {}): Tensor {
  const f = factors('adaptedLinear', adapter);
  checkResidual('adaptedLinear', residual, f.out, f.inp);
  if (!(x instanceof Tensor)) throw new Error(`adaptedLinear: x must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== f.inp) throw new Error(`adaptedLinear: x must be [..., ${f.inp}] for an adapter [${f.out},${f.inp}], got ${fmt(x.shape)}`);
  const bias = opts.bias ?? null;
  if (bias !== null && (!(bias instanceof Tensor) || bias.rank !== 1 || bias.shape[0] !== f.out)) {
    throw new Error(`adaptedLinear: bias must be a Tensor [${f.out}], got ${bias instanceof Tensor ? fmt(bias.shape) : typeof bias}`);
  }
  const scale = resolveScale('adaptedLinear', adapter, opts.scale);
  const tokens = x.size / f.inp;
  return tidy(() => {
    // Training when a gradient is being taken through the factors: their backward pass then counts.
    const training = recording([f.left, f.mid, f.right]);
    if (preferMerged(tokens, f.out, f.inp, f.rank, { training })) return nn.linear(x, add(residual, principal(f.left, f.mid, f.right, scale)), bias);
    if (f.mid && f.mid.rank === 2) {
      const h2 = matmul(x, mul(f.right, scale === 1 ? f.mid : mul(f.mid, scale)), { transposeB: true });
      return add(nn.linear(x, residual, bias), matmul(h2, f.left, { transposeB: true }));
    }
    let h = matmul(x, f.right, { transposeB: true });
    if (f.mid) h = mul(h, scale === 1 ? f.mid : mul(f.mid, scale));
    else if (scale !== 1) h = mul(h, scale);
    return add(nn.linear(x, residual, bias), matmul(h, f.left, { transposeB: true }));
  });
}

/**
 * The old name of `adaptedLinear`, which read like core's `nn.linear(x, W, b)` (a plain layer, other
 * arguments).
 * @deprecated Use `adaptedLinear`; `linear` will be removed.
 */
export const linear = adaptedLinear;
