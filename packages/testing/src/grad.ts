/**
 * Gradient checks, as JAX's `check_grads` does: the reverse-mode gradient of a function of tensors
 * against float64 central differences along random directions, optionally at second order.
 * @module
 */
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { EPS32, count, randomData, rng, unravel } from './host.js';

/**
 * A float64 n-dimensional array: what a float64 reference function of `checkGrads` takes and returns.
 *
 * @example
 * ```ts
 * const x: Nd = { shape: [2], data: Float64Array.of(1, 2) };
 * ```
 */
export interface Nd {
  /** Row-major shape. */
  shape: number[];
  /** Row-major values. */
  data: Float64Array;
}

/**
 * Options of `checkGrads`.
 *
 * @example
 * ```ts
 * await checkGrads(f, [x, y], { order: 2, argnums: [0], directions: 4, seed: 1 });
 * ```
 */
export interface CheckGradsOptions {
  /** 1 (default) checks the gradient; 2 also checks the gradient of the gradient along a random direction. */
  order?: 1 | 2;
  /**
   * Finite-difference step, relative to max(1, max |x|) of the argument (default 1e-3; 1e-4 with a
   * `reference`, whose float64 evaluation has no float32 rounding to drown).
   */
  eps?: number;
  /** Random directions per argument (default 3). */
  directions?: number;
  /** Which arguments to check (default all). */
  argnums?: readonly number[];
  /** Seeds the output weights and the directions (default 0). */
  seed?: number;
  /**
   * Relative tolerance of a directional check without a reference (default 1e-2, as JAX uses for
   * float32): the float32 function is differenced, so its rounding is divided by the step.
   */
  rtol?: number;
  /** Absolute tolerance of a directional check without a reference (default 1e-2 · the scale of the loss's terms). */
  atol?: number;
  /**
   * A float64 twin of `f` (plain loops, independent of the library). With it, the first-order check
   * differences the twin in float64 element by element (the whole Jacobian-transpose product) and
   * judges each component within `k · EPS32` per unit of its scale, much tighter than differencing
   * float32 `f`.
   */
  reference?: (...xs: Nd[]) => Nd;
  /** With `reference`: tolerance in float32 eps per unit of scale (default 64). */
  k?: number;
  /**
   * With `reference`: judge each component at the largest scale over its argument (norm-wise), for
   * composites whose backward pass cancels (a component's rounding is set by its tensor's terms).
   */
  normwise?: boolean;
}

/**
 * What a passing `checkGrads` measured.
 *
 * @example
 * ```ts
 * const { worst } = await checkGrads(f, [x], { reference: fRef });
 * console.log(`worst error: ${worst} of the tolerance`);
 * ```
 */
export interface CheckGradsReport {
  /** The largest error seen as a fraction of its tolerance (below 1 when the check passed). */
  worst: number;
  /** The value of the weighted loss `sum(f(x) · w)` at the arguments. */
  value: number;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** The loss whose gradient is checked, `sum(f(...xs) · w)`, and w. */
function weighted(f: (...xs: Tensor[]) => Tensor, xs: Tensor[], seed: number): { loss: (...xs: Tensor[]) => Tensor; w: Tensor; outShape: readonly number[] } {
  const outShape = c.tidy(() => {
    const y = f(...xs);
    if (!(y instanceof c.Tensor)) throw new Error(`checkGrads: f must return a Tensor, got ${typeof y}`);
    return y.shape;
  });
  // A random weight of f's output shape exercises the whole Jacobian (Jᵀw), not just its row sums.
  const w = c.tensor(randomData(count(outShape), seed * 31 + 97, -1, 1), outShape);
  return { loss: (...ts: Tensor[]) => c.sum(c.mul(f(...ts), w)), w, outShape };
}

async function gradients(loss: (...xs: Tensor[]) => Tensor, xs: Tensor[], argnums: readonly number[]): Promise<{ value: number; grads: Float32Array[] }> {
  const [value, grads] = c.valueAndGrad(loss, { argnums: [...argnums] })(...xs) as [Tensor, Tensor[]];
  try {
    grads.forEach((g, i) => {
      const j = argnums[i];
      if (g.shape.join(',') !== xs[j].shape.join(',')) {
        throw new Error(`checkGrads: the gradient of argument #${j} has shape [${g.shape.join(', ')}], the argument [${xs[j].shape.join(', ')}]`);
      }
    });
    return { value: (await value.data())[0], grads: await Promise.all(grads.map((g) => g.data() as Promise<Float32Array>)) };
  } finally {
    c.tree.dispose([value, grads]);
  }
}

/** The float32 loss at xs with argument j replaced by `data` (read back in float64). */
async function lossAt(loss: (...xs: Tensor[]) => Tensor, xs: Tensor[], j: number, data: Float32Array): Promise<number> {
  const xj = c.tensor(data, xs[j].shape);
  try {
    const v = c.tidy(() => loss(...xs.map((x, i) => (i === j ? xj : x))));
    const out = (await v.data())[0];
    v.dispose();
    return out;
  } finally {
    xj.dispose();
  }
}

/** First order without a reference: directional derivatives of the float32 loss. */
async function checkDirections(f: (...xs: Tensor[]) => Tensor, xs: Tensor[], opts: CheckGradsOptions, what: string): Promise<CheckGradsReport> {
  const argnums = opts.argnums ?? xs.map((_, j) => j);
  const seed = opts.seed ?? 0;
  const { loss, w } = weighted(f, xs, seed);
  try {
    const { value, grads } = await gradients(loss, xs, argnums);
    const r = rng(seed * 31 + 13);
    const eps = opts.eps ?? 1e-3;
    const rtol = opts.rtol ?? 1e-2;
    let worst = 0;
    for (let a = 0; a < argnums.length; a++) {
      const j = argnums[a];
      const x = (await xs[j].data()) as Float32Array;
      let top = 1;
      for (const v of x) top = Math.max(top, Math.abs(v));
      for (let d = 0; d < (opts.directions ?? 3); d++) {
        const v = Float64Array.from(x, () => 2 * r() - 1);
        // The float32 points actually evaluated: their difference (exact in float64) is the step
        // the autodiff side is projected on, so rounding x + hv to float32 costs nothing.
        const diff = async (h: number): Promise<{ fd: number; ad: number }> => {
          const xp = Float32Array.from(x, (xi, i) => xi + h * v[i]);
          const xm = Float32Array.from(x, (xi, i) => xi - h * v[i]);
          const fd = ((await lossAt(loss, xs, j, xp)) - (await lossAt(loss, xs, j, xm))) / (2 * h);
          let ad = 0;
          for (let i = 0; i < x.length; i++) ad += grads[a][i] * (xp[i] - xm[i]);
          return { fd, ad: ad / (2 * h) };
        };
        const h = eps * top;
        const one = await diff(h);
        const two = await diff(2 * h);
        // |D(h) - D(2h)| estimates truncation (3x its O(h²) error) plus the float32 rounding noise.
        const fdErr = Math.abs(one.fd - one.ad - (two.fd - two.ad));
        const scale = Math.max(Math.abs(one.fd), Math.abs(one.ad));
        const atol = opts.atol ?? rtol * Math.max(Math.abs(value), 1e-30);
        const err = Math.abs(one.fd - one.ad);
        const tol = atol + rtol * scale + fdErr;
        worst = Math.max(worst, err / tol);
        if (!(err <= tol)) {
          throw new Error(
            `checkGrads: ${what}argument #${j}, direction ${d + 1}: reverse-mode derivative ${one.ad}, float64 central difference ${one.fd}; ` +
              `they disagree by ${err.toExponential(3)} (${(err / Math.max(scale, 1e-300)).toExponential(2)} relative), tolerance ${tol.toExponential(3)} (step ${h})`,
          );
        }
      }
    }
    return { worst, value };
  } finally {
    w.dispose();
  }
}

/** First order against a float64 reference: every component, plus one directional derivative. */
async function checkReference(f: (...xs: Tensor[]) => Tensor, ref: (...xs: Nd[]) => Nd, xs: Tensor[], opts: CheckGradsOptions): Promise<CheckGradsReport> {
  const argnums = opts.argnums ?? xs.map((_, j) => j);
  const seed = opts.seed ?? 0;
  const h = opts.eps ?? 1e-4;
  const k = opts.k ?? 64;
  const datas = (await Promise.all(xs.map((x) => x.data()))).map((d) => Float64Array.from(d));
  const xsNd: Nd[] = datas.map((d, j) => ({ shape: [...xs[j].shape], data: d }));
  const y0 = ref(...xsNd);
  const { loss, w: wt, outShape } = weighted(f, xs, seed);
  try {
    if (outShape.join(',') !== y0.shape.join(',')) {
      throw new Error(`checkGrads: f returns shape [${outShape.join(', ')}], its reference [${y0.shape.join(', ')}]`);
    }
    const w = await wt.data();
    const lossRef = (ys: Nd[]): number => dot(ref(...ys).data, w);
    const { value, grads } = await gradients(loss, xs, argnums);

    // Reference Jacobian columns, component by component: the gradient Σ_i w_i J_ik and its scale
    // S_k = Σ_i |w_i J_ik| (the sum of |terms| the backward pass adds up), whose rounding is k·EPS32·S_k.
    const rows: { a: number; i: number; want: number; fdErr: number; scale: number }[] = [];
    argnums.forEach((j, a) => {
      for (let i = 0; i < datas[j].length; i++) {
        const at = (t: number): Nd[] => xsNd.map((x, jj) => (jj === j ? { shape: x.shape, data: x.data.map((v, p) => (p === i ? v + t : v)) } : x));
        const column = (step: number): Float64Array => {
          const yp = ref(...at(step)).data;
          const ym = ref(...at(-step)).data;
          return yp.map((v, p) => (v - ym[p]) / (2 * step));
        };
        const col = column(h);
        const want = dot(col, w);
        // |D(h) - D(2h)| is 3x the O(h²) truncation error of D(h): a conservative estimate.
        const fdErr = Math.abs(want - dot(column(2 * h), w));
        let scale = 0;
        for (let p = 0; p < col.length; p++) scale += Math.abs(w[p] * col[p]);
        rows.push({ a, i, want, fdErr, scale });
      }
    });
    if (opts.normwise) {
      const top = argnums.map((_, a) => Math.max(0, ...rows.filter((r) => r.a === a).map((r) => r.scale)));
      for (const r of rows) r.scale = top[r.a];
    }
    const r = rng(seed * 31 + 13);
    const dirs = argnums.map((j) => Float64Array.from(datas[j], () => 2 * r() - 1));
    let worst = 0;
    let vScale = 0;
    for (const { a, i, want, fdErr, scale } of rows) {
      vScale += Math.abs(dirs[a][i]) * scale;
      const got = grads[a][i];
      const tol = k * EPS32 * scale + fdErr;
      const err = Math.abs(got - want);
      if (scale > 0) worst = Math.max(worst, err / (k * EPS32 * scale));
      if (!(err <= tol)) {
        const j = argnums[a];
        throw new Error(
          `checkGrads: argument #${j} element ${i} [${unravel(i, xs[j].shape).join(', ')}]: reverse-mode ${got}, float64 central difference of the reference ${want}; ` +
            `they disagree by ${err.toExponential(3)}, ${(err / Math.max(k * EPS32 * scale, 1e-300)).toExponential(2)} times the tolerance ${tol.toExponential(3)} (k ${k}, scale ${scale.toExponential(3)})`,
        );
      }
    }
    // The directional derivative along v, as check_grads does.
    const shifted = (t: number): Nd[] => xsNd.map((x, j) => {
      const a = argnums.indexOf(j);
      return a < 0 ? x : { shape: x.shape, data: x.data.map((v, p) => v + t * dirs[a][p]) };
    });
    const dv = (step: number): number => (lossRef(shifted(step)) - lossRef(shifted(-step))) / (2 * step);
    const want = dv(h);
    const fdErr = Math.abs(want - dv(2 * h));
    let got = 0;
    grads.forEach((g, a) => (got += dot(g, dirs[a])));
    const err = Math.abs(got - want);
    const tol = k * EPS32 * vScale + fdErr;
    if (!(err <= tol)) {
      throw new Error(`checkGrads: directional derivative over arguments #${argnums.join(', #')}: reverse-mode ${got}, float64 central difference ${want}; they disagree by ${err.toExponential(3)} > tolerance ${tol.toExponential(3)}`);
    }
    return { worst, value };
  } finally {
    wt.dispose();
  }
}

/**
 * Checks the reverse-mode gradient of `f` at `args` against float64 central differences, as JAX's
 * `check_grads` does. `f` takes tensors and returns a tensor of any shape; the checked loss is
 * `L = sum(f(...args) · w)` for a fixed random `w`, so the whole Jacobian is exercised.
 *
 * - Without `reference`: for each checked argument and random direction v, the directional
 *   derivative ⟨∇L, v⟩ against the central difference of the float32 loss (read in float64), within
 *   `atol + rtol · |derivative|` plus the difference's own error (estimated from steps h and 2h).
 * - With `reference` (a float64 twin of `f`): every component of the gradient against the float64
 *   difference of the twin, within `k · EPS32` per unit of its scale, and one directional derivative.
 * - `order: 2` then checks, the same way (without the reference), the gradient of
 *   `x ↦ ⟨∇L(x), u⟩` for a random u: the gradient of the gradient.
 *
 * Resolves with what it measured; rejects with an Error naming the argument (and element) and the
 * size of the disagreement. `args` are not disposed.
 *
 * @example
 * ```ts
 * import { checkGrads } from '@sorsajs/testing';
 * const x = tensor([0.3, -1.2, 2]);
 * await checkGrads((x) => mul(sin(x), x), [x], { order: 2 });
 * // A wrong custom VJP is refused:
 * // Error: checkGrads: argument #0, direction 1: reverse-mode derivative 1.9, float64 central difference 0.95; they disagree by ...
 * ```
 */
export async function checkGrads(f: (...xs: Tensor[]) => Tensor, args: readonly Tensor[], opts: CheckGradsOptions = {}): Promise<CheckGradsReport> {
  const xs = [...args];
  xs.forEach((x, j) => {
    if (!(x instanceof c.Tensor)) throw new Error(`checkGrads: argument #${j} must be a Tensor, got ${typeof x}`);
    if (x.dtype !== 'float32') throw new Error(`checkGrads: argument #${j} is ${x.dtype}; only float32 arguments have gradients`);
  });
  const argnums = opts.argnums ?? xs.map((_, j) => j);
  argnums.forEach((j) => {
    if (!(Number.isInteger(j) && j >= 0 && j < xs.length)) throw new Error(`checkGrads: argnums has ${j}, but f has ${xs.length} argument(s)`);
  });
  const report = opts.reference ? await checkReference(f, opts.reference, xs, opts) : await checkDirections(f, xs, opts, '');
  if ((opts.order ?? 1) === 2) {
    const seed = (opts.seed ?? 0) + 7;
    const { loss, w } = weighted(f, xs, opts.seed ?? 0);
    const r = rng(seed * 31 + 5);
    const us = argnums.map((j) => c.tensor(Float32Array.from({ length: count(xs[j].shape) }, () => 2 * r() - 1), xs[j].shape));
    try {
      // ⟨∇L(x), u⟩ as a function of x: its gradient is the Hessian-vector product H u.
      const gu = (...ts: Tensor[]): Tensor => {
        const gs = c.grad(loss, { argnums: [...argnums] })(...ts) as Tensor[];
        return gs.map((g, a) => c.sum(c.mul(g, us[a]))).reduce((p, q) => c.add(p, q));
      };
      const second = await checkDirections(gu, xs, { ...opts, reference: undefined, seed }, 'second order (the gradient of ⟨∇L, u⟩), ');
      report.worst = Math.max(report.worst, second.worst);
    } finally {
      c.tree.dispose([w, us]);
    }
  }
  return report;
}
