/**
 * Layer and RMS normalization, each a few fused kernels forward and backward.
 *
 * Composed from elementwise ops and reductions, layerNorm took 8 kernels forward and about 15
 * backward, each a pass over the activations (on wasm a pass is mostly the memory traffic of
 * copying its operands in and its result out). Here the per-row statistics and the sums of the
 * backward pass are computed where their terms are read (kernels/line-reduce.ts), and each
 * elementwise step is one kernel: layerNorm is 4 kernels forward and 5 backward, rmsNorm 2 and 3.
 *
 * A kernel has no VJP of its own, so when the gradient is itself being differentiated (a tape
 * records the backward pass), the backward pass is the VJP of the composed formula instead.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { add, mapOp, mul, rsqrt, square, sub } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { checkTensor } from '../tensor/checks.js';
import { op, recording } from '../autodiff/tape.js';
import type { LineReduce } from '../kernels/line-reduce.js';
import { composedVjp, lineReduce, scoped, withTemps } from './fused.js';
import { fmt } from '../util/shape-math.js';

const F = { int: false };

/** The reductions of the norms, over `[R, d]` views (kinds: full `[R, d]`, row `[R]`, col `[d]`). */
const MEAN: LineReduce = { name: 'norm:mean', expr: 'v0', kinds: ['full'], over: 'cols', finish: 'acc / n' };
const RSTD_CENTERED: LineReduce = { name: 'norm:rstd-centered', expr: '(v0 - v1) * (v0 - v1)', kinds: ['full', 'row'], over: 'cols', finish: '1 / Math.sqrt(acc / n + eps)', floats: ['eps'] };
const RSTD: LineReduce = { name: 'norm:rstd', expr: 'v0 * v0', kinds: ['full'], over: 'cols', finish: '1 / Math.sqrt(acc / n + eps)', floats: ['eps'] };
/** mean(g γ) per row. */
const MEAN_GG: LineReduce = { name: 'norm:mean-g-gamma', expr: 'v0 * v1', kinds: ['full', 'col'], over: 'cols', finish: 'acc / n' };
/** mean(g γ xhat) per row, xhat given. */
const MEAN_GGX: LineReduce = { name: 'norm:mean-g-gamma-xhat', expr: 'v0 * v1 * v2', kinds: ['full', 'col', 'full'], over: 'cols', finish: 'acc / n' };
/** mean(g γ x rstd) per row (rmsNorm's xhat = x rstd). */
const MEAN_GGXR: LineReduce = { name: 'norm:mean-g-gamma-x-rstd', expr: 'v0 * v1 * (v2 * v3)', kinds: ['full', 'col', 'full', 'row'], over: 'cols', finish: 'acc / n' };
/** Σ over rows of g xhat (γ's gradient), xhat given. */
const SUM_GX: LineReduce = { name: 'norm:sum-g-xhat', expr: 'v0 * v1', kinds: ['full', 'full'], over: 'rows' };
/** Σ over rows of g x rstd (rmsNorm's γ gradient). */
const SUM_GXR: LineReduce = { name: 'norm:sum-g-x-rstd', expr: 'v0 * (v1 * v2)', kinds: ['full', 'full', 'row'], over: 'rows' };
/** Σ over rows of g (β's gradient). */
const SUM_G: LineReduce = { name: 'norm:sum-g', expr: 'v0', kinds: ['full'], over: 'rows' };

/** Checks a norm's `[d]` parameter against x's last axis. */
function checkParam(name: string, x: Tensor, t: Tensor, arg: string): void {
  checkTensor(name, t, arg);
  const d = x.shape[x.rank - 1];
  if (t.rank !== 1 || t.shape[0] !== d) throw new Error(`${name}: ${arg} must have shape [${d}] for x ${fmt(x.shape)}, got ${fmt(t.shape)}`);
}

/** The composed layerNorm: the definition, and the backward pass under an outer tape. */
function layerNormComposed(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  return scoped(() => {
    const centered = sub(x, mean(x, -1, true));
    const variance = mean(square(centered), -1, true);
    return add(mul(mul(centered, rsqrt(add(variance, eps))), gamma), beta);
  });
}

/**
 * Layer normalization over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta`, with the
 * biased variance (as PyTorch).
 *
 * @example
 * ```ts
 * layerNorm(x, ones([d]), zeros([d])); // eps 1e-5
 * ```
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  checkTensor('layerNorm', x);
  checkParam('layerNorm', x, gamma, 'gamma');
  checkParam('layerNorm', x, beta, 'beta');
  // An empty tensor (no rows, or rows of nothing): the definition's own result.
  if (x.size === 0) return layerNormComposed(x, gamma, beta, eps);
  const d = x.shape[x.rank - 1];
  const R = x.size / d;
  const rowShape = [...x.shape.slice(0, -1), 1];
  return scoped(() => {
    let mu: Tensor | undefined;
    let rstd: Tensor | undefined;
    let xhat: Tensor | undefined;
    const forward = (): Tensor => {
      mu = lineReduce(MEAN, [x], R, d, rowShape);
      rstd = lineReduce(RSTD_CENTERED, [x, mu], R, d, rowShape, [eps]);
      xhat = mapOp('layerNorm', '(v0 - v1) * v2', [x, mu, rstd], F);
      return mapOp('layerNorm', 'v0 * v1 + v2', [xhat, gamma, beta], F);
    };
    const backward = (g: Tensor, needs: readonly boolean[]): (Tensor | null)[] => {
      if (recording([g, x, gamma, beta])) return composedVjp((a, b, c) => layerNormComposed(a, b, c, eps), [x, gamma, beta], g);
      // dx = rstd (g γ - mean(g γ) - xhat mean(g γ xhat)), per row.
      const dx = needs[0] ? withTemps([lineReduce(MEAN_GG, [g, gamma], R, d, rowShape), lineReduce(MEAN_GGX, [g, gamma, xhat!], R, d, rowShape)], ([a, b]) =>
        mapOp('layerNorm', 'v3 * ((v0 * v1 - v4) - v2 * v5)', [g, gamma, xhat!, rstd!, a, b], F)) : null;
      const dgamma = needs[1] ? lineReduce(SUM_GX, [g, xhat!], R, d, [d]) : null;
      const dbeta = needs[2] ? lineReduce(SUM_G, [g], R, d, [d]) : null;
      return [dx, dgamma, dbeta];
    };
    return op([x, gamma, beta], forward, (g, _y, needs) => backward(g, needs), () => [mu!, rstd!, xhat!]);
  });
}

/** The composed rmsNorm: the definition, and the backward pass under an outer tape. */
function rmsNormComposed(x: Tensor, gamma: Tensor, eps: number): Tensor {
  return scoped(() => mul(mul(x, rsqrt(add(mean(square(x), -1, true), eps))), gamma));
}

/**
 * RMS normalization over the last axis: `x / sqrt(mean(x^2) + eps) * gamma`.
 *
 * @example
 * ```ts
 * rmsNorm(x, ones([d])); // eps 1e-6
 * ```
 */
export function rmsNorm(x: Tensor, gamma: Tensor, eps = 1e-6): Tensor {
  checkTensor('rmsNorm', x);
  checkParam('rmsNorm', x, gamma, 'gamma');
  if (x.size === 0) return rmsNormComposed(x, gamma, eps);
  const d = x.shape[x.rank - 1];
  const R = x.size / d;
  const rowShape = [...x.shape.slice(0, -1), 1];
  return scoped(() => {
    let rstd: Tensor | undefined;
    const forward = (): Tensor => {
      rstd = lineReduce(RSTD, [x], R, d, rowShape, [eps]);
      return mapOp('rmsNorm', 'v0 * v1 * v2', [x, rstd, gamma], F);
    };
    const backward = (g: Tensor, needs: readonly boolean[]): (Tensor | null)[] => {
      if (recording([g, x, gamma])) return composedVjp((a, b) => rmsNormComposed(a, b, eps), [x, gamma], g);
      // dx = rstd (g γ - xhat mean(g γ xhat)) with xhat = x rstd, per row.
      const dx = needs[0] ? withTemps([lineReduce(MEAN_GGXR, [g, gamma, x, rstd!], R, d, rowShape)], ([q]) =>
        mapOp('rmsNorm', 'v3 * (v0 * v1 - (v2 * v3) * v4)', [g, gamma, x, rstd!, q], F)) : null;
      const dgamma = needs[1] ? lineReduce(SUM_GXR, [g, x, rstd!], R, d, [d]) : null;
      return [dx, dgamma];
    };
    return op([x, gamma], forward, (g, _y, needs) => backward(g, needs), () => [rstd!]);
  });
}
