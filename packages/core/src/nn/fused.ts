/**
 * @internal What the fused nn functions (norm.ts, softmax.ts) share: line reductions over `[R, d]`
 * views, the composed VJP for a backward pass that is itself differentiated, and scopes.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { runScoped } from '../tensor/scope.js';
import { launch } from '../ops/operand.js';
import { vjp } from '../autodiff/transforms.js';
import { lineReduceKernel, LINE_BLOCK, type LineReduce } from '../kernels/line-reduce.js';

/** Runs a composite with its intermediates disposed (those a gradient still needs survive). */
export const scoped = (fn: () => Tensor): Tensor => runScoped(fn, (r) => [r]);

/** Runs a line reduction over operands viewed as `[R, d]`; the result has `shape` (R or d cells). */
export function lineReduce(spec: LineReduce, xs: readonly Tensor[], R: number, d: number, shape: readonly number[], floats: readonly number[] = []): Tensor {
  const n = spec.over === 'cols' ? d : R;
  return launch(spec.name, lineReduceKernel(spec), shape, 'float32', xs, [R, d, Math.ceil(n / LINE_BLOCK), ...floats]);
}

/** `fn(temps)`, then the temporaries disposed (a pending kernel that reads them still runs). */
export function withTemps(temps: Tensor[], fn: (temps: Tensor[]) => Tensor): Tensor {
  try {
    return fn(temps);
  } finally {
    for (const t of temps) t.dispose();
  }
}

/**
 * The cotangents of `f` at `xs` for `g`, through its composed ops, so that the outer tape recording
 * this backward pass can differentiate it. Its intermediates are not disposed here: the outer
 * tape's ops read them, and the enclosing scope (the gradient's) disposes them when it ends.
 */
export function composedVjp<A extends Tensor[]>(f: (...xs: A) => Tensor, xs: A, g: Tensor): (Tensor | null)[] {
  const [, pullback] = vjp(f, ...xs);
  return pullback(g) as unknown as Tensor[];
}
