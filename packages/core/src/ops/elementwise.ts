/**
 * Elementwise ops: one table of kernel expressions, broadcasting as NumPy does.
 * @module
 */
import { mapKernel } from '../kernels/map.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides } from '../util/shape.js';
import { checkTensor, launch, operands, type Operand } from './operand.js';

/** Kernel expressions of the unary ops over `v0`. `int` marks those defined on int32 too. */
const UNARY: Record<string, { expr: string; int?: boolean }> = {
  neg: { expr: '-v0', int: true },
  abs: { expr: 'Math.abs(v0)', int: true },
  sign: { expr: 'v0 > 0 ? 1 : (v0 < 0 ? -1 : v0)', int: true },
  square: { expr: 'v0 * v0', int: true },
  exp: { expr: 'Math.exp(v0)' },
  log: { expr: 'Math.log(v0)' },
  // log(1 + v) loses v below eps; Goldberg's correction log(u) * v / (u - 1) with u = 1 + v keeps it.
  log1p: { expr: '(1 + v0) === 1 ? v0 : Math.log(1 + v0) * v0 / ((1 + v0) - 1)' },
  sqrt: { expr: 'Math.sqrt(v0)' },
  rsqrt: { expr: '1 / Math.sqrt(v0)' },
  tanh: { expr: 'Math.tanh(v0)' },
  // 1 / (1 + e^-v): e^-v overflows to Infinity for v < -88 and the quotient is then exactly 0.
  sigmoid: { expr: '1 / (1 + Math.exp(-v0))' },
  relu: { expr: 'v0 > 0 ? v0 : 0', int: true },
  // GELU, tanh approximation (as GPT-2 and jax.nn.gelu's default).
  gelu: { expr: '0.5 * v0 * (1 + Math.tanh(0.7978845608028654 * (v0 + 0.044715 * v0 * v0 * v0)))' },
  silu: { expr: 'v0 / (1 + Math.exp(-v0))' },
  sin: { expr: 'Math.sin(v0)' },
  cos: { expr: 'Math.cos(v0)' },
};

/** Kernel expressions of the binary ops over `v0, v1`; `out` overrides the result dtype. */
const BINARY: Record<string, { expr: string; int?: boolean; out?: DType }> = {
  add: { expr: 'v0 + v1', int: true },
  sub: { expr: 'v0 - v1', int: true },
  mul: { expr: 'v0 * v1', int: true },
  div: { expr: 'v0 / v1' },
  maximum: { expr: 'Math.max(v0, v1)', int: true },
  minimum: { expr: 'Math.min(v0, v1)', int: true },
  equal: { expr: 'v0 === v1 ? 1 : 0', int: true, out: 'float32' },
  greater: { expr: 'v0 > v1 ? 1 : 0', int: true, out: 'float32' },
  less: { expr: 'v0 < v1 ? 1 : 0', int: true, out: 'float32' },
};

function unary(op: string, x: Tensor): Tensor {
  checkTensor(op, x);
  const def = UNARY[op];
  if (!def.int && x.dtype !== 'float32') throw new Error(`${op}: expects a float32 tensor, got ${x.dtype} (cast with cast(x, 'float32'))`);
  const { src, scalars } = mapKernel(op, def.expr, x.shape, [broadcastStrides(x.shape, x.shape)]);
  return launch(op, src, x.shape, x.dtype, [x], scalars);
}

/** Runs an elementwise kernel `expr` over broadcast operands. Used by the binary table, `where` and `clip`. */
/** @internal */
export function mapOp(op: string, expr: string, xs: readonly Operand[], opts: { int: boolean; out?: DType }): Tensor {
  const first = xs.find((x) => typeof x !== 'number');
  if (!opts.int && first instanceof Tensor && first.dtype !== 'float32') {
    throw new Error(`${op}: expects float32 tensors, got ${first.dtype} (cast with cast(x, 'float32'))`);
  }
  const { tensors, made } = operands(op, xs);
  const dtype = tensors[0].dtype;
  try {
    const shape = broadcastShapes(op, ...tensors.map((t) => t.shape));
    const { src, scalars } = mapKernel(op, expr, shape, tensors.map((t) => broadcastStrides(t.shape, shape)));
    return launch(op, src, shape, opts.out ?? dtype, tensors, scalars);
  } finally {
    for (const t of made) t.dispose();
  }
}

function binary(op: string, a: Operand, b: Operand): Tensor {
  const def = BINARY[op];
  return mapOp(op, def.expr, [a, b], { int: !!def.int, out: def.out });
}

/** `-x`. @example `neg(tensor([1, -2]))` gives `[-1, 2]`. */
export const neg = (x: Tensor): Tensor => unary('neg', x);
/** `|x|`. @example `abs(tensor([-1, 2]))` gives `[1, 2]`. */
export const abs = (x: Tensor): Tensor => unary('abs', x);
/** -1, 0 or 1 by the sign of x (NaN stays NaN). @example `sign(tensor([-3, 0, 2]))` gives `[-1, 0, 1]`. */
export const sign = (x: Tensor): Tensor => unary('sign', x);
/** `x * x`. @example `square(tensor([3]))` gives `[9]`. */
export const square = (x: Tensor): Tensor => unary('square', x);
/** `e^x`. @example `exp(tensor([0]))` gives `[1]`. */
export const exp = (x: Tensor): Tensor => unary('exp', x);
/** Natural logarithm. @example `log(tensor([1]))` gives `[0]`. */
export const log = (x: Tensor): Tensor => unary('log', x);
/** `log(1 + x)`, accurate for small x. @example `log1p(tensor([1e-10]))` gives `[1e-10]`. */
export const log1p = (x: Tensor): Tensor => unary('log1p', x);
/** Square root. @example `sqrt(tensor([4]))` gives `[2]`. */
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
/** `1 / sqrt(x)`. @example `rsqrt(tensor([4]))` gives `[0.5]`. */
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
/** Hyperbolic tangent. @example `tanh(tensor([0]))` gives `[0]`. */
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
/** Logistic sigmoid `1 / (1 + e^-x)`. @example `sigmoid(tensor([0]))` gives `[0.5]`. */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/** `max(x, 0)`. @example `relu(tensor([-1, 2]))` gives `[0, 2]`. */
export const relu = (x: Tensor): Tensor => unary('relu', x);
/** GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`. @example `gelu(tensor([0]))` gives `[0]`. */
export const gelu = (x: Tensor): Tensor => unary('gelu', x);
/** SiLU (swish): `x * sigmoid(x)`. @example `silu(tensor([0]))` gives `[0]`. */
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** Sine. @example `sin(tensor([0]))` gives `[0]`. */
export const sin = (x: Tensor): Tensor => unary('sin', x);
/** Cosine. @example `cos(tensor([0]))` gives `[1]`. */
export const cos = (x: Tensor): Tensor => unary('cos', x);

/** `a + b`, broadcasting. @example `add(tensor([[1], [2]]), tensor([10, 20]))` gives `[[11, 21], [12, 22]]`. */
export const add = (a: Operand, b: Operand): Tensor => binary('add', a, b);
/** `a - b`, broadcasting. @example `sub(tensor([3]), 1)` gives `[2]`. */
export const sub = (a: Operand, b: Operand): Tensor => binary('sub', a, b);
/** `a * b`, broadcasting. @example `mul(tensor([2, 3]), 2)` gives `[4, 6]`. */
export const mul = (a: Operand, b: Operand): Tensor => binary('mul', a, b);
/** `a / b`, broadcasting (float32 only). @example `div(tensor([1]), 4)` gives `[0.25]`. */
export const div = (a: Operand, b: Operand): Tensor => binary('div', a, b);
/**
 * `a ** b`, broadcasting; a negative base needs an integer exponent (else NaN).
 *
 * @example
 * ```ts
 * pow(tensor([-2, 4]), tensor([3, 0.5])); // [-8, 2]
 * ```
 */
export function pow(a: Operand, b: Operand): Tensor {
  // A negative base has a real power only for integer exponents (odd ones keep the sign). The NaN
  // for the others comes in as an operand: gpu.js has no NaN literal and WGSL rejects 0 / 0.
  return mapOp(
    'pow',
    'v0 >= 0 ? Math.pow(v0, v1) : (Math.floor(v1) === v1 ? (Math.floor(v1 * 0.5) * 2 === v1 ? Math.pow(-v0, v1) : -Math.pow(-v0, v1)) : v2)',
    [a, b, NaN],
    { int: false },
  );
}
/** Elementwise maximum. @example `maximum(tensor([1, 5]), 3)` gives `[3, 5]`. */
export const maximum = (a: Operand, b: Operand): Tensor => binary('maximum', a, b);
/** Elementwise minimum. @example `minimum(tensor([1, 5]), 3)` gives `[1, 3]`. */
export const minimum = (a: Operand, b: Operand): Tensor => binary('minimum', a, b);
/** 1 where `a == b`, else 0 (float32). @example `equal(tensor([1, 2]), 2)` gives `[0, 1]`. */
export const equal = (a: Operand, b: Operand): Tensor => binary('equal', a, b);
/** 1 where `a > b`, else 0 (float32). @example `greater(tensor([1, 3]), 2)` gives `[0, 1]`. */
export const greater = (a: Operand, b: Operand): Tensor => binary('greater', a, b);
/** 1 where `a < b`, else 0 (float32). @example `less(tensor([1, 3]), 2)` gives `[1, 0]`. */
export const less = (a: Operand, b: Operand): Tensor => binary('less', a, b);

/**
 * Picks `a` where `cond` is nonzero and `b` elsewhere, broadcasting all three. `cond` may be of
 * either dtype; `a` and `b` share theirs.
 *
 * @example
 * ```ts
 * where(tensor([1, 0]), tensor([1, 2]), tensor([9, 9])); // [1, 9]
 * ```
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  checkTensor('where', cond, 'cond');
  // cond is passed as a float32 view of the same storage; only its nonzero-ness is read.
  const { tensors, made, dtype } = operands('where', [a, b]);
  try {
    const shape = broadcastShapes('where', cond.shape, ...tensors.map((t) => t.shape));
    const all = [cond, ...tensors];
    const { src, scalars } = mapKernel('where', 'v0 !== 0 ? v1 : v2', shape, all.map((t) => broadcastStrides(t.shape, shape)));
    return launch('where', src, shape, dtype, all, scalars);
  } finally {
    for (const t of made) t.dispose();
  }
}

/**
 * Limits values to `[lo, hi]`.
 *
 * @example
 * ```ts
 * clip(tensor([-2, 0.5, 3]), 0, 1); // [0, 0.5, 1]
 * ```
 */
export function clip(x: Tensor, lo: Operand, hi: Operand): Tensor {
  checkTensor('clip', x);
  if (typeof lo === 'number' && typeof hi === 'number' && lo > hi) throw new Error(`clip: lo ${lo} is greater than hi ${hi}`);
  return mapOp('clip', 'Math.min(Math.max(v0, v1), v2)', [x, lo, hi], { int: true });
}

/**
 * Converts to another dtype. float32 to int32 truncates toward zero (as NumPy's astype does).
 *
 * @example
 * ```ts
 * cast(tensor([1.7, -1.7]), 'int32'); // [1, -1]
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', x);
  if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`cast: unknown dtype "${String(dtype)}"`);
  const expr = dtype === 'int32' && x.dtype === 'float32' ? 'Math.trunc(v0)' : 'v0';
  const { src, scalars } = mapKernel(`cast_${expr === 'v0' ? 'id' : 'trunc'}`, expr, x.shape, [broadcastStrides(x.shape, x.shape)]);
  return launch('cast', src, x.shape, dtype, [x], scalars);
}
