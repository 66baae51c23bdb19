/**
 * Elementwise ops: one table of kernel expressions, broadcasting as NumPy does.
 * @module
 */
import { engine } from '../backend/registry.js';
import { mapKernel } from '../kernels/map.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides } from '../util/shape-math.js';
import { launch, operands, type Operand } from './operand.js';
import { checkTensor } from '../tensor/checks.js';
import { op, recording, untracked } from '../autodiff/tape.js';
import { sumTo } from './broadcast.js';

/** Kernel expressions of the unary ops over `v0`. `int` marks those defined on int32 too. */
const UNARY: Record<string, { expr: string; int?: boolean }> = {
  neg: { expr: '-v0', int: true },
  abs: { expr: 'Math.abs(v0)', int: true },
  sign: { expr: 'v0 > 0 ? 1 : (v0 < 0 ? -1 : v0)', int: true },
  square: { expr: 'v0 * v0', int: true },
  exp: { expr: 'Math.exp(v0)' },
  log: { expr: 'Math.log(v0)' },
  // log(1 + v) loses v's low bits to the rounding of 1 + v, so |v| < 0.1 uses the series
  // v - v²/2 + ... + v⁸/8 (truncation below 1e-9 relative). Goldberg's log(u) v / (u - 1) trick
  // needs IEEE rounding of u - 1, which GLSL compilers fold away.
  log1p: {
    expr:
      'Math.abs(v0) < 0.1 ? v0 * (1 - v0 * (0.5 - v0 * (0.3333333333333333 - v0 * (0.25 - v0 * (0.2 - v0 * (0.16666666666666666 - v0 * (0.14285714285714285 - v0 * 0.125))))))) : Math.log(1 + v0)',
  },
  sqrt: { expr: 'Math.sqrt(v0)' },
  rsqrt: { expr: '1 / Math.sqrt(v0)' },
  tanh: { expr: 'Math.tanh(v0)' },
  // 1 / (1 + e^-v): e^-v overflows to Infinity for v < -88 and the quotient is then exactly 0.
  sigmoid: { expr: '1 / (1 + Math.exp(-v0))' },
  // NaN stays NaN (as PyTorch and JAX): a NaN fails `v0 > 0` and `v0 === v0`.
  relu: { expr: 'v0 > 0 || !(v0 === v0) ? v0 : 0', int: true },
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
  // NaN-propagating, as NumPy's maximum: WGSL's max and min may return the non-NaN operand.
  maximum: { expr: '(v0 > v1 || !(v0 === v0)) ? v0 : v1', int: true },
  minimum: { expr: '(v0 < v1 || !(v0 === v0)) ? v0 : v1', int: true },
  equal: { expr: 'v0 === v1 ? 1 : 0', int: true, out: 'float32' },
  greater: { expr: 'v0 > v1 ? 1 : 0', int: true, out: 'float32' },
  less: { expr: 'v0 < v1 ? 1 : 0', int: true, out: 'float32' },
};

/**
 * VJPs of the unary ops: the input cotangent from the output cotangent `g`, the input `x` and the
 * output `y`, written with public ops so that they are differentiable again. null: zero gradient.
 */
const UNARY_VJP: Record<string, (g: Tensor, x: Tensor, y: Tensor) => Tensor | null> = {
  neg: (g) => neg(g),
  abs: (g, x) => mul(g, sign(x)),
  sign: () => null,
  square: (g, x) => mul(g, mul(x, 2)),
  exp: (g, _x, y) => mul(g, y),
  log: (g, x) => div(g, x),
  log1p: (g, x) => div(g, add(x, 1)),
  sqrt: (g, _x, y) => div(g, mul(y, 2)),
  rsqrt: (g, _x, y) => mul(g, mul(mul(y, square(y)), -0.5)),
  tanh: (g, _x, y) => mul(g, sub(1, square(y))),
  sigmoid: (g, _x, y) => mul(g, mul(y, sub(1, y))),
  relu: (g, x) => mul(g, greater(x, 0)),
  gelu: (g, x) => {
    // d/dx of 0.5 x (1 + tanh(u)), u = c (x + a x^3): 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
    const c = 0.7978845608028654;
    const a = 0.044715;
    const x2 = square(x);
    const t = tanh(mul(add(x, mul(mul(x, x2), a)), c));
    const du = mul(add(mul(x2, 3 * a), 1), c);
    return mul(g, add(mul(add(t, 1), 0.5), mul(mul(mul(x, sub(1, square(t))), du), 0.5)));
  },
  silu: (g, x) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  },
  sin: (g, x) => mul(g, cos(x)),
  cos: (g, x) => neg(mul(g, sin(x))),
};

/**
 * The same derivatives as UNARY_VJP, each as one kernel over `g` (v0) and the op's input x or its
 * output y (v1, as `of` says), with the composed formula's operations in its order. A composed VJP
 * is a chain of kernels, each a pass over memory (gelu's was 17 passes of its size); this is one.
 * It is used when the gradient is not itself being differentiated: a kernel has no VJP of its own,
 * so under an outer tape the composed form runs instead (see `unaryVjp`). Ops missing here are one
 * kernel composed already.
 */
const UNARY_GRAD: Record<string, { of: 'x' | 'y'; expr: string }> = {
  square: { of: 'x', expr: 'v0 * (v1 * 2)' },
  log1p: { of: 'x', expr: 'v0 / (v1 + 1)' },
  sqrt: { of: 'y', expr: 'v0 / (v1 * 2)' },
  rsqrt: { of: 'y', expr: 'v0 * ((v1 * (v1 * v1)) * -0.5)' },
  tanh: { of: 'y', expr: 'v0 * (1 - v1 * v1)' },
  sigmoid: { of: 'y', expr: 'v0 * (v1 * (1 - v1))' },
  relu: { of: 'x', expr: 'v0 * (v1 > 0 ? 1 : 0)' },
  gelu: {
    of: 'x',
    expr: `const t_ = Math.tanh((v1 + (v1 * (v1 * v1)) * 0.044715) * 0.7978845608028654);
return v0 * ((t_ + 1) * 0.5 + ((v1 * (1 - t_ * t_)) * (((v1 * v1) * 0.134145 + 1) * 0.7978845608028654)) * 0.5);`,
  },
  silu: { of: 'x', expr: 'const t_ = 1 / (1 + Math.exp(-v1));\nreturn v0 * (t_ * (1 + v1 * (1 - t_)));' },
};

/** The input cotangent of unary op `name`: one fused kernel, or the composed VJP under an outer tape. */
function unaryVjp(name: string, g: Tensor, x: Tensor, y: Tensor): Tensor | null {
  const fused = UNARY_GRAD[name];
  if (!fused || recording([g, x, y])) return UNARY_VJP[name](g, x, y);
  return mapOp(`${name}'`, fused.expr, [g, fused.of === 'x' ? x : y], { int: false });
}

function unary(name: string, x: Tensor): Tensor {
  checkTensor(name, x);
  const def = UNARY[name];
  if (!def.int && x.dtype !== 'float32') throw new Error(`${name}: expects a float32 tensor, got ${x.dtype} (cast with cast(x, 'float32'))`);
  const forward = (): Tensor => {
    const { src, scalars } = mapKernel(name, def.expr, x.shape, [broadcastStrides(x.shape, x.shape)]);
    return launch(name, src, x.shape, x.dtype, [x], scalars);
  };
  if (x.dtype !== 'float32') return untracked(forward);
  return op([x], forward, (g, y) => [unaryVjp(name, g, x, y)]);
}

/**
 * @internal Runs an elementwise kernel `expr` over broadcast operands. Used by the binary table,
 * `where`, `clip` and take's VJP.
 */
export function mapOp(op: string, expr: string, xs: readonly Operand[], opts: { int: boolean; out?: DType }): Tensor {
  const first = xs.find((x) => typeof x !== 'number');
  if (!opts.int && first instanceof Tensor && first.dtype !== 'float32') {
    throw new Error(`${op}: expects float32 tensors, got ${first.dtype} (cast with cast(x, 'float32'))`);
  }
  const { tensors, made } = operands(op, xs);
  const dtype = tensors[0].dtype;
  try {
    const shape = broadcastShapes(op, ...tensors.map((t) => t.shape));
    const { src, scalars, dims } = mapKernel(op, expr, shape, tensors.map((t) => broadcastStrides(t.shape, shape)), undefined, engine().name === 'wasm');
    return launch(op, src, shape, opts.out ?? dtype, tensors, scalars, dims);
  } finally {
    for (const t of made) t.dispose();
  }
}

/** VJPs of the binary ops: cotangents of `a` and `b` (before un-broadcasting) from `g`, the operands and `y`. */
const BINARY_VJP: Record<string, ((g: Tensor, a: Operand, b: Operand, y: Tensor, needs: readonly boolean[]) => [Tensor | null, Tensor | null]) | undefined> = {
  add: (g) => [g, g],
  sub: (g, _a, _b, _y, n) => [g, n[1] ? neg(g) : null],
  mul: (g, a, b, _y, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null],
  div: (g, _a, b, y, n) => [n[0] ? div(g, b) : null, n[1] ? neg(mul(g, div(y, b))) : null],
  // Ties split the cotangent evenly, as JAX does.
  maximum: (g, a, b) => {
    const wa = add(greater(a, b), mul(equal(a, b), 0.5));
    return [mul(g, wa), mul(g, sub(1, wa))];
  },
  minimum: (g, a, b) => {
    const wa = add(less(a, b), mul(equal(a, b), 0.5));
    return [mul(g, wa), mul(g, sub(1, wa))];
  },
};

function tensorOrNull(x: Operand): Tensor | null {
  return x instanceof Tensor ? x : null;
}

/**
 * Records a broadcasting binary op whose VJP gives cotangents of the operands' broadcast shape.
 * `saved` lists any other tensor the VJP reads (where's condition), which the tape then keeps alive.
 */
function binaryOp(
  name: string,
  a: Operand,
  b: Operand,
  forward: () => Tensor,
  vjp: (g: Tensor, y: Tensor, needs: readonly boolean[]) => [Tensor | null, Tensor | null],
  saved?: readonly Tensor[],
): Tensor {
  const ta = tensorOrNull(a);
  const tb = tensorOrNull(b);
  if ((ta && ta.dtype !== 'float32') || (tb && tb.dtype !== 'float32')) return untracked(forward);
  return op(
    [ta, tb],
    forward,
    (g, y, needs) => {
      const [ga, gb] = vjp(g, y, needs);
      return [ta && ga ? sumTo(ga, ta.shape) : null, tb && gb ? sumTo(gb, tb.shape) : null];
    },
    saved && (() => saved),
  );
}

function binary(name: string, a: Operand, b: Operand): Tensor {
  const def = BINARY[name];
  const forward = (): Tensor => mapOp(name, def.expr, [a, b], { int: !!def.int, out: def.out });
  const vjp = BINARY_VJP[name];
  // Comparisons have no gradient: their output is a constant to the tape.
  if (!vjp) return untracked(forward);
  return binaryOp(name, a, b, forward, (g, y, needs) => vjp(g, a, b, y, needs));
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
  const forward = (): Tensor =>
    mapOp(
      'pow',
      'v0 >= 0 ? Math.pow(v0, v1) : (Math.floor(v1) === v1 ? (Math.floor(v1 * 0.5) * 2 === v1 ? Math.pow(-v0, v1) : -Math.pow(-v0, v1)) : v2)',
      [a, b, NaN],
      { int: false },
    );
  // d/da = b a^(b-1); d/db = y log(a), taken as 0 where a <= 0 (log(a) is not real there).
  return binaryOp('pow', a, b, forward, (g, y) => {
    const ga = mul(g, mul(b, pow(a, sub(b, 1))));
    if (!(b instanceof Tensor)) return [ga, null];
    const pos = greater(a, 0);
    return [ga, mul(mul(g, y), mul(log(where(pos, a, 1)), pos))];
  });
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
 * 1 where `x` is finite (not NaN, not ±Infinity), else 0 (float32); every int32 value is finite.
 * Not differentiable (its output is a constant to the tape).
 *
 * @example
 * ```ts
 * isfinite(tensor([1, NaN, Infinity, -3])); // [1, 0, 0, 1]
 * ```
 */
export function isfinite(x: Tensor): Tensor {
  checkTensor('isfinite', x);
  // A range test rather than `v0 === v0`: GPU shader compilers may fold a self-comparison away
  // (GLSL did, for a NaN test), but NaN fails every ordered comparison and ±Infinity exceeds the
  // largest float32.
  const expr = x.dtype === 'int32' ? '1' : 'Math.abs(v0) <= 3.4028234663852886e38 ? 1 : 0';
  return untracked(() => {
    const { src, scalars } = mapKernel(`isfinite_${x.dtype}`, expr, x.shape, [broadcastStrides(x.shape, x.shape)]);
    return launch('isfinite', src, x.shape, 'float32', [x], scalars);
  });
}

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
  // cond selects and has no gradient of its own (untracked), but the VJP reads it: it is saved, so
  // a scope that made it (attention's causal mask) cannot dispose it before the backward pass.
  const forward = (): Tensor => untracked(() => whereForward(cond, a, b));
  return binaryOp('where', a, b, forward, (g) => [where(cond, g, 0), where(cond, 0, g)], [cond]);
}

function whereForward(cond: Tensor, a: Operand, b: Operand): Tensor {
  // cond is passed as a float32 view of the same storage; only its nonzero-ness is read.
  const { tensors, made, dtype } = operands('where', [a, b]);
  try {
    const shape = broadcastShapes('where', cond.shape, ...tensors.map((t) => t.shape));
    const all = [cond, ...tensors];
    const { src, scalars, dims } = mapKernel('where', 'v0 !== 0 ? v1 : v2', shape, all.map((t) => broadcastStrides(t.shape, shape)), undefined, engine().name === 'wasm');
    return launch('where', src, shape, dtype, all, scalars, dims);
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
  const forward = (): Tensor => mapOp('clip', '!(v0 === v0) ? v0 : Math.min(Math.max(v0, v1), v2)', [x, lo, hi], { int: true });
  if (x.dtype !== 'float32') return untracked(forward);
  // The cotangent goes to x where it is inside [lo, hi], else to the bound that is active (tensor
  // bounds are inputs too, so a gradient with respect to them is not silently zero).
  const tlo = tensorOrNull(lo);
  const thi = tensorOrNull(hi);
  return op([x, tlo, thi], forward, (g, _y, needs) => {
    // Written for lo > hi too (tensor bounds are not checked): the result is then hi.
    const above = greater(maximum(x, lo), hi);
    const below = mul(less(x, lo), sub(1, above));
    return [
      sumTo(mul(g, sub(1, add(below, above))), x.shape),
      tlo && needs[1] ? sumTo(mul(g, below), tlo.shape) : null,
      thi && needs[2] ? sumTo(mul(g, above), thi.shape) : null,
    ];
  });
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
  const forward = (): Tensor => {
    const { src, scalars } = mapKernel(`cast_${expr === 'v0' ? 'id' : 'trunc'}`, expr, x.shape, [broadcastStrides(x.shape, x.shape)]);
    return launch('cast', src, x.shape, dtype, [x], scalars);
  };
  if (x.dtype !== 'float32' || dtype !== 'float32') return untracked(forward);
  return op([x], forward, (g) => [g]);
}
