/**
 * @internal The pieces optim's transformations share: fused update kernels (with a differentiable
 * fallback), the scope that keeps updates pure, and zero states.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { runScoped, tensorsIn } from '../tensor/scope.js';
import { map, type Leaf } from '../tree/tree.js';
import { add, mapOp, mul } from '../ops/elementwise.js';
import type { Operand } from '../ops/operand.js';
import { recording } from '../autodiff/tape.js';
import { zerosLike } from '../ops/create.js';

const F = { int: false };

/**
 * One fused update kernel `expr` over `xs`, or, when a gradient is being taken through one of its
 * tensors (differentiating through an optimizer step, as meta-learning does), the same formula
 * `composed` of differentiable ops. The kernel has no VJP of its own, so without this a gradient
 * through an update would be refused (autodiff/tape.ts checkLaunch).
 */
export function fused(name: string, expr: string, xs: readonly Operand[], composed: () => Tensor): Tensor {
  return recording(xs.filter((x): x is Tensor => x instanceof Tensor)) ? composed() : mapOp(name, expr, xs, F);
}

/** Runs an update with every intermediate disposed except the returned updates and state. */
export function pure<S>(fn: () => [unknown, S]): [unknown, S] {
  return runScoped(fn, (r) => tensorsIn(r));
}

export function asTensor(x: Leaf): Tensor | null {
  return x instanceof Tensor ? x : null;
}

export function zerosFor(params: unknown): unknown {
  return map((p) => (p instanceof Tensor ? zerosLike(p) : null), params);
}

/** A moment estimate `beta * prev + (1 - beta) * x`, where the kernel's `expr` squares g itself for the second moment. */
export function moment(name: string, expr: string, g: Tensor, x: () => Tensor, prev: Tensor | null, beta: number): Tensor {
  return fused(name, expr, [g, prev ?? 0, beta, 1 - beta], () => {
    const fresh = mul(x(), 1 - beta);
    return prev ? add(mul(prev, beta), fresh) : fresh;
  });
}

