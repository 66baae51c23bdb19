/**
 * Reverse-mode transformations over functions of parameter trees: grad, valueAndGrad, vjp,
 * stopGradient, customVjp, plus tidy for memory. Gradients mirror the differentiated argument's tree.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { collect, runScoped, tensorsIn } from '../tensor/scope.js';
import { map } from '../tree/tree.js';
import { add } from '../ops/elementwise.js';
import { onesLike, zerosLike } from '../ops/create.js';
import { alias, backward, op, recording, untracked, withTape, type Tape } from './tape.js';
import { fmt } from '../util/shape-math.js';

/** Which arguments to differentiate: one index or several. */
export type Argnums = number | readonly number[];

/** Options of `grad` and `valueAndGrad`. */
export interface GradOptions<N extends Argnums = Argnums> {
  /** Argument(s) to differentiate with respect to (default 0). */
  argnums?: N;
  /** `f` returns `[loss, aux]`; aux is passed through untouched. */
  hasAux?: boolean;
}

/**
 * The gradient of a tree `T`: the same structure, a tensor for each tensor leaf, and null for each
 * number, null or undefined leaf (not differentiated).
 *
 * @example
 * ```ts
 * type P = { w: Tensor; layers: { eps: number }[] };
 * const g: GradTree<P> = grad((p: P) => sum(p.w))(params); // { w: Tensor; layers: { eps: null }[] }
 * ```
 */
export type GradTree<T> = T extends Tensor
  ? Tensor
  : T extends number | null | undefined
    ? null
    : T extends readonly unknown[]
      ? { [K in keyof T]: GradTree<T[K]> }
      : T extends object
        ? { [K in keyof T]: GradTree<T[K]> }
        : T;

/** Gradients for `argnums` N of arguments A: one tree for a number, a tuple of trees for a list. */
export type GradsOf<A extends readonly unknown[], N> = N extends number
  ? GradTree<A[N]>
  : N extends readonly number[]
    ? { [K in keyof N]: GradTree<A[N[K] & number]> }
    : GradTree<A[0]>;

function argnumList(fnName: string, argnums: Argnums, count: number): number[] {
  const list = typeof argnums === 'number' ? [argnums] : [...argnums];
  for (const n of list) {
    if (!Number.isInteger(n) || n < 0 || n >= count) {
      throw new Error(`${fnName}: argnums ${JSON.stringify(argnums)} out of range for ${count} argument(s)`);
    }
  }
  return list;
}

/** The identity as a recorded op: a fresh tensor object to track, linked to x on outer tapes. */
function variable(x: Tensor): Tensor {
  return op([x], () => alias(x), (g) => [g]);
}

function checkScalar(fnName: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) {
    throw new Error(`${fnName}: the function must return a scalar tensor (or [scalar, aux] with hasAux), got ${v === null ? 'null' : typeof v}`);
  }
  if (v.size !== 1 || v.dtype !== 'float32') {
    throw new Error(`${fnName}: the function must return a float32 tensor with one element, got ${v.dtype} of shape ${fmt(v.shape)}`);
  }
  return v;
}

/** Replaces the tensor leaves of the differentiated arguments by fresh variables. */
function wrapArgs<A extends unknown[]>(args: A, nums: number[]): { wrapped: A; vars: Tensor[][] } {
  const vars: Tensor[][] = [];
  const wrapped = args.map((a, i) => {
    if (!nums.includes(i)) return a;
    const vs: Tensor[] = [];
    vars[i] = vs;
    return map((leaf) => {
      if (!(leaf instanceof Tensor)) return leaf;
      const v = variable(leaf);
      vs.push(v);
      return v;
    }, a);
  }) as A;
  return { wrapped, vars };
}

/** Backpropagates from `value` and rebuilds the gradient trees of the arguments in `nums`. */
function gradients(tape: Tape, value: Tensor, seed: Tensor, args: readonly unknown[], nums: number[], vars: Tensor[][]): unknown[] {
  const all = nums.flatMap((i) => vars[i]);
  const gs = backward(tape, value, seed, all, add);
  const byVar = new Map<Tensor, Tensor | undefined>(all.map((v, k) => [v, gs[k]]));
  return nums.map((i) => {
    let k = 0;
    return map((leaf) => {
      if (!(leaf instanceof Tensor)) return null;
      const v = vars[i][k++];
      return byVar.get(v) ?? zerosLike(leaf);
    }, args[i]);
  });
}

/**
 * Returns a function computing `f`'s value and its gradient with respect to the arguments in
 * `argnums` (default 0). Each differentiated argument may be a tensor or a tree of tensors; its
 * gradient has the same structure (zeros where f does not depend on a leaf; null for number and
 * null leaves). Arguments not in argnums cost no gradient work. Every tensor made while computing is
 * disposed except the value, aux and the gradients: do not keep intermediates made inside `f`.
 *
 * @example
 * ```ts
 * const loss = (w: Tensor, x: Tensor) => sum(square(matmul(x, w)));
 * const [value, dw] = valueAndGrad(loss)(w, x);
 * const [[value2, aux], grads] = valueAndGrad((p: { w: Tensor }) => [sum(p.w), 'note'], { hasAux: true })({ w });
 * ```
 */
export function valueAndGrad<A extends unknown[], const N extends Argnums = 0>(
  f: (...args: A) => Tensor,
  opts?: GradOptions<N> & { hasAux?: false },
): (...args: A) => [Tensor, GradsOf<A, N>];
export function valueAndGrad<A extends unknown[], Aux, const N extends Argnums = 0>(
  f: (...args: A) => [Tensor, Aux],
  opts: GradOptions<N> & { hasAux: true },
): (...args: A) => [[Tensor, Aux], GradsOf<A, N>];
export function valueAndGrad<A extends unknown[], const N extends Argnums = 0>(
  f: (...args: A) => unknown,
  opts: GradOptions<N> = {},
): (...args: A) => [unknown, GradsOf<A, N>] {
  return valueAndGradNamed('valueAndGrad', f, opts);
}

function valueAndGradNamed<A extends unknown[], N extends Argnums>(
  fnName: string,
  f: (...args: A) => unknown,
  opts: GradOptions<N>,
): (...args: A) => [unknown, GradsOf<A, N>] {
  return (...args: A) =>
    runScoped(() => {
      const nums = argnumList(fnName, opts.argnums ?? 0, args.length);
      const { wrapped, vars } = wrapArgs(args, nums);
      const [res, tape] = withTape(
        nums.flatMap((i) => vars[i]),
        () => f(...wrapped),
      );
      let value: Tensor;
      let aux: unknown;
      if (opts.hasAux) {
        if (!Array.isArray(res) || res.length !== 2) throw new Error(`${fnName}: with hasAux the function must return [loss, aux]`);
        value = checkScalar(fnName, res[0]);
        aux = res[1];
      } else {
        value = checkScalar(fnName, res);
      }
      const seed = onesLike(value);
      const grads = gradients(tape, value, seed, args, nums, vars);
      const g = typeof (opts.argnums ?? 0) === 'number' ? grads[0] : grads;
      return [opts.hasAux ? [value, aux] : value, g] as [unknown, GradsOf<A, N>];
    });
}

/**
 * Returns a function computing the gradient of scalar-valued `f` with respect to the arguments in
 * `argnums`; with `hasAux`, it returns `[grads, aux]`. See `valueAndGrad`.
 *
 * @example
 * ```ts
 * const dx = grad((x: Tensor) => sum(square(x)))(tensor([1, 2])); // [2, 4]
 * const d2 = grad((x: Tensor) => sum(grad((y: Tensor) => sum(mul(y, mul(y, y))))(x)))(x); // 6x
 * ```
 */
export function grad<A extends unknown[], const N extends Argnums = 0>(
  f: (...args: A) => Tensor,
  opts?: GradOptions<N> & { hasAux?: false },
): (...args: A) => GradsOf<A, N>;
export function grad<A extends unknown[], Aux, const N extends Argnums = 0>(
  f: (...args: A) => [Tensor, Aux],
  opts: GradOptions<N> & { hasAux: true },
): (...args: A) => [GradsOf<A, N>, Aux];
export function grad<A extends unknown[], const N extends Argnums = 0>(f: (...args: A) => unknown, opts: GradOptions<N> = {}): (...args: A) => unknown {
  const vg = valueAndGradNamed('grad', f, opts);
  return (...args: A) =>
    runScoped(() => {
      const [v, g] = vg(...args) as [unknown, unknown];
      return opts.hasAux ? [g, (v as [Tensor, unknown])[1]] : g;
    });
}

/** What `vjp` returns beside the output: cotangents from an output cotangent, and a dispose. */
export interface VjpFn<A extends unknown[]> {
  /** The cotangents of the primals (each mirroring its tree) for an output cotangent. */
  (cotangent: Tensor): GradTree<A[number]>[];
  /** Frees the tensors kept for the backward pass. */
  dispose(): void;
}

/**
 * Evaluates `f` at `primals` and returns its output with a function mapping an output cotangent to
 * the cotangents of the primals (one per primal, each mirroring its tree). The tensors `f` made are
 * kept for the backward pass until `vjpFn.dispose()`.
 *
 * @example
 * ```ts
 * const [y, vjpFn] = vjp((x: Tensor) => mul(x, x), tensor([3]));
 * const [dx] = vjpFn(onesLike(y)); // [6]
 * vjpFn.dispose();
 * ```
 */
export function vjp<A extends unknown[]>(
  f: (...args: A) => Tensor,
  ...primals: A
): [Tensor, VjpFn<A>] {
  const nums = primals.map((_, i) => i);
  const [[out, tape, wrapped, vars], made] = collect(() => {
    const { wrapped, vars } = wrapArgs(primals, nums);
    const [o, t] = withTape(
      nums.flatMap((i) => vars[i]),
      () => f(...wrapped),
    );
    if (!(o instanceof Tensor)) throw new Error('vjp: the function must return a tensor');
    return [o, t, wrapped, vars] as const;
  });
  void wrapped;
  const fn = ((ct: Tensor) => {
    if (!(ct instanceof Tensor) || ct.shape.length !== out.shape.length || ct.shape.some((d, i) => d !== out.shape[i])) {
      throw new Error(`vjp: the cotangent must be a tensor of the output's shape ${fmt(out.shape)}`);
    }
    return runScoped(() => gradients(tape, out, ct, primals, nums, vars));
  }) as VjpFn<A>;
  fn.dispose = () => {
    for (const t of made) if (t !== out) t.dispose();
  };
  return [out, fn];
}

/**
 * The same values with no gradient flowing back: a constant to every transformation.
 *
 * @example
 * ```ts
 * grad((x: Tensor) => sum(mul(x, stopGradient(x))))(tensor([3])); // [3], not [6]
 * ```
 */
export function stopGradient(x: Tensor): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`stopGradient: expects a Tensor, got ${typeof x}`);
  return untracked(() => alias(x));
}

/**
 * Defines a function with a custom VJP. `fwd(...xs)` returns `[output, residuals]`; `bwd(residuals,
 * g)` returns one cotangent per input (null for none). Under a gradient, `fwd` is recorded like any
 * code, so residuals that depend on the inputs are differentiated by higher-order gradients (as JAX
 * does); the output itself flows back only through `bwd`. Outside a gradient, residual tensors are
 * disposed right after `fwd`.
 *
 * @example
 * ```ts
 * // x^3 with a hand-written derivative 3x^2, kept as the residual.
 * const cube = customVjp(
 *   (x: Tensor) => [mul(x, mul(x, x)), mul(mul(x, x), 3)],
 *   (r, g) => [mul(g, r)],
 * );
 * ```
 */
export function customVjp<X extends Tensor[], R>(
  fwd: (...xs: X) => [Tensor, R],
  bwd: (residuals: R, g: Tensor) => (Tensor | null)[],
): (...xs: X) => Tensor {
  return (...xs: X) => {
    xs.forEach((x, k) => {
      if (!(x instanceof Tensor)) throw new Error(`customVjp: input #${k} must be a Tensor, got ${typeof x}`);
    });
    const result = fwd(...xs);
    if (!Array.isArray(result) || result.length !== 2 || !(result[0] instanceof Tensor)) {
      throw new Error('customVjp: fwd must return [output tensor, residuals]');
    }
    const [o, residuals] = result;
    if (!recording(xs)) {
      for (const t of tensorsIn(residuals)) if (t !== o && !xs.includes(t)) t.dispose();
      return o;
    }
    // A fresh identity for the output, whose only path back is bwd.
    return op(
      xs,
      () => alias(o),
      (g) => {
        const gs = bwd(residuals, g);
        if (!Array.isArray(gs) || gs.length !== xs.length) {
          throw new Error(`customVjp: bwd must return ${xs.length} cotangent(s) (null for none), got ${Array.isArray(gs) ? gs.length : typeof gs}`);
        }
        return gs;
      },
      () => [o, ...tensorsIn(residuals)],
    );
  };
}

/**
 * Runs `fn` and disposes every tensor made while it ran except those in its result (found in arrays
 * and plain objects). Keeps training loops' memory flat.
 *
 * @example
 * ```ts
 * const loss = tidy(() => mean(square(sub(predict(params, x), y))));
 * ```
 */
export function tidy<R>(fn: () => R): R {
  return runScoped(fn, (r) => tensorsIn(r));
}
