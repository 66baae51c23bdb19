/**
 * Reverse-mode autodiff against float64 finite differences (test/gradcheck.ts), on every backend
 * available here: every differentiable op, composites (an MLP with cross-entropy, layer norm plus
 * causal attention, an embedding), second derivatives, and the transformations' API (argnums,
 * hasAux, trees, vjp, stopGradient, customVjp, tidy, memory, errors).
 *
 * Each checked function has an independent float64 reference written as plain loops here (with the
 * helpers of reference.ts). The tolerance is `k * EPS32 * S`, S the sum of |terms| of the gradient
 * (gradcheck.ts), with k chosen per group below:
 *  - K_EW = 32 for elementwise ops: the forward values are within 8 eps (ops.test.ts), a VJP
 *    formula adds at most ~8 roundings, and the inputs are kept where the formulas' cancellation
 *    (1 - tanh², the zero of gelu', ...) amplifies by at most ~2;
 *  - plus the length of every sum the backward pass adds up (un-broadcasting, reductions, matmul's
 *    inner products), since a float32 sum of n terms is within (n - 1) eps of their |sum|.
 * Composites with a scalar loss are checked norm-wise per input (gradcheck.ts: `normwise`), since
 * their Jacobian does not show the terms the backward pass cancels.
 * Inputs stay away from kinks (relu, abs, clip bounds) and ties (maximum, max) by far more than
 * the 2e-4 that the difference steps move them.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, count, mapRef, matmulRef, nd, randomData, ravel, reduceRef, transposeRef, unravel, type Nd } from './reference.js';
import { awayFrom, checkGrads, distinct, type Arg } from './gradcheck.js';

const K_EW = 32;

// ---------------------------------------------------------------------------------------------
// Float64 references (plain loops; nothing from src/).

const gelu64 = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const sigmoid64 = (v: number): number => 1 / (1 + Math.exp(-v));

const un =
  (f: (v: number) => number) =>
  (x: Nd): Nd =>
    mapRef([x], f);
const bin =
  (f: (a: number, b: number) => number) =>
  (a: Nd, b: Nd): Nd =>
    mapRef([a, b], f);

const sum64 = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const lse64 = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(sum64(v.map((x) => Math.exp(x - m))));
};
const REDUCERS: Record<string, (v: number[]) => number> = {
  sum: sum64,
  mean: (v) => sum64(v) / v.length,
  max: (v) => Math.max(...v),
  min: (v) => Math.min(...v),
  logsumexp: lse64,
  norm: (v) => Math.sqrt(sum64(v.map((x) => x * x))),
};

const axesOf = (axis: number | number[] | undefined, rank: number): number[] =>
  axis === undefined ? Array.from({ length: rank }, (_, i) => i) : (typeof axis === 'number' ? [axis] : axis).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);

const reshapeRef = (x: Nd, shape: number[]): Nd => nd(shape, x.data);
const broadcastRef = (x: Nd, shape: number[]): Nd => mapRef([x, nd(shape, new Float64Array(count(shape)))], (v) => v);

function sliceRef(x: Nd, begin: number[], size: number[]): Nd {
  const start = x.shape.map((d, j) => ((begin[j] ?? 0) < 0 ? begin[j] + d : (begin[j] ?? 0)));
  const shape = x.shape.map((d, j) => ((size[j] ?? -1) === -1 ? d - start[j] : size[j]));
  const out = new Float64Array(count(shape));
  for (let p = 0; p < out.length; p++) out[p] = x.data[ravel(unravel(p, shape).map((v, j) => v + start[j]), x.shape)];
  return nd(shape, out);
}

function padRef(x: Nd, pads: [number, number][]): Nd {
  const shape = x.shape.map((d, j) => d + pads[j][0] + pads[j][1]);
  const out = new Float64Array(count(shape));
  for (let p = 0; p < x.data.length; p++) out[ravel(unravel(p, x.shape).map((v, j) => v + pads[j][0]), shape)] = x.data[p];
  return nd(shape, out);
}

function concatRef(xs: Nd[], axis: number): Nd {
  const shape = [...xs[0].shape];
  shape[axis] = sum64(xs.map((x) => x.shape[axis]));
  const out = new Float64Array(count(shape));
  let at = 0;
  for (const x of xs) {
    for (let p = 0; p < x.data.length; p++) {
      const idx = unravel(p, x.shape);
      idx[axis] += at;
      out[ravel(idx, shape)] = x.data[p];
    }
    at += x.shape[axis];
  }
  return nd(shape, out);
}

function takeRef(x: Nd, idx: number[], idxShape: number[], axis: number): Nd {
  const D = x.shape[axis];
  const shape = [...x.shape.slice(0, axis), ...idxShape, ...x.shape.slice(axis + 1)];
  const out = new Float64Array(count(shape));
  for (let p = 0; p < out.length; p++) {
    const o = unravel(p, shape);
    const k = ravel(o.slice(axis, axis + idxShape.length), idxShape);
    const i = idx[k] < 0 ? idx[k] + D : idx[k];
    out[p] = x.data[ravel([...o.slice(0, axis), i, ...o.slice(axis + idxShape.length)], x.shape)];
  }
  return nd(shape, out);
}

/** NumPy matmul with optional transposes of the last two axes, vectors, and batch broadcasting. */
function bmmRef(a: Nd, b: Nd, ta = false, tb = false): Nd {
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const aT = a.shape.length > 1 && ta;
  const bT = b.shape.length > 1 && tb;
  const [ar, ac] = as.slice(-2);
  const [br, bc] = bs.slice(-2);
  const M = aT ? ac : ar;
  const K = aT ? ar : ac;
  const N = bT ? br : bc;
  const ba = as.slice(0, -2);
  const bb = bs.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const batch = Array.from({ length: rank }, (_, j) => {
    const da = ba[j - (rank - ba.length)] ?? 1;
    const db = bb[j - (rank - bb.length)] ?? 1;
    return da === 1 ? db : da;
  });
  const nb = count(batch);
  const out = new Float64Array(nb * M * N);
  for (let q = 0; q < nb; q++) {
    const bi = unravel(q, batch);
    const pick = (own: number[]): number => (own.length ? ravel(own.map((d, j) => (d === 1 ? 0 : bi[j + rank - own.length])), own) : 0);
    const oa = pick(ba) * ar * ac;
    const ob = pick(bb) * br * bc;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let t = 0; t < K; t++) s += a.data[oa + (aT ? t * ac + i : i * ac + t)] * b.data[ob + (bT ? j * bc + t : t * bc + j)];
        out[(q * M + i) * N + j] = s;
      }
  }
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [M]), ...(b.shape.length === 1 ? [] : [N])];
  return nd(shape, out);
}

function diagRef(x: Nd): Nd {
  if (x.shape.length === 1) {
    const n = x.shape[0];
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) out[i * n + i] = x.data[i];
    return nd([n, n], out);
  }
  const [m, n] = x.shape;
  const k = Math.min(m, n);
  return nd([k], Array.from({ length: k }, (_, i) => x.data[i * n + i]));
}

/** Row-wise softmax of a [rows, cols] array in float64. */
function softmaxRows(s: Nd): Nd {
  const [r, cc] = s.shape;
  const out = new Float64Array(r * cc);
  for (let i = 0; i < r; i++) {
    const row = Array.from(s.data.slice(i * cc, (i + 1) * cc));
    const l = lse64(row);
    row.forEach((v, j) => (out[i * cc + j] = Math.exp(v - l)));
  }
  return nd([r, cc], out);
}

const scalar = (v: number): Nd => nd([], [v]);
const sumAll = (x: Nd): number => sum64(Array.from(x.data));

// ---------------------------------------------------------------------------------------------

const ints = (v: number[], shape?: number[]): Tensor => c.tensor(v, shape, 'int32');
const dataOf = (shape: number[], seed: number, lo = -1, hi = 1): Arg => ({ shape, data: randomData(count(shape), seed, lo, hi) });
const away = (shape: number[], seed: number, lo: number, hi: number, points: number[], gap: number): Arg => ({
  shape,
  data: awayFrom(randomData(count(shape), seed, lo, hi), points, gap),
});

/** Unary ops: float64 reference, input range, and points whose neighbourhood (±0.2) to avoid. */
const UNARY: [string, (v: number) => number, number, number, number[]][] = [
  ['neg', (v) => -v, -2, 2, []],
  ['abs', Math.abs, -2, 2, [0]],
  ['square', (v) => v * v, -2, 2, []],
  ['exp', Math.exp, -2, 2, []],
  ['log', Math.log, 0.2, 3, []],
  ['log1p', Math.log1p, -0.5, 2, []],
  ['sqrt', Math.sqrt, 0.2, 3, []],
  ['rsqrt', (v) => 1 / Math.sqrt(v), 0.2, 3, []],
  ['tanh', Math.tanh, -1.5, 1.5, []],
  ['sigmoid', sigmoid64, -2, 2, []],
  ['relu', (v) => Math.max(v, 0), -2, 2, [0]],
  // gelu' and silu' vanish near -0.7518 and -1.2785: kept away so 0.5(1+t) - ... does not cancel.
  // Below -1.5, 1 + tanh(u) in gelu' cancels (amplifying by over 7), so the range starts there.
  ['gelu', gelu64, -1.5, 3, [-0.7518]],
  ['silu', (v) => v * sigmoid64(v), -3, 3, [-1.2785]],
  // sin' = cos vanishes at ±pi/2, cos' = -sin at 0 (and ±pi, outside the range).
  ['sin', Math.sin, -3, 3, [-Math.PI / 2, Math.PI / 2]],
  ['cos', Math.cos, -3, 3, [0]],
];

const op1 = (name: string): ((x: Tensor) => Tensor) => (c as unknown as Record<string, (x: Tensor) => Tensor>)[name];
const op2 = (name: string): ((a: Tensor, b: Tensor) => Tensor) => (c as unknown as Record<string, (a: Tensor, b: Tensor) => Tensor>)[name];

forEachBackend('grad', () => {
  describe('elementwise ops', () => {
    for (const [name, f, lo, hi, kinks] of UNARY) {
      it(`${name}`, async () => {
        await checkGrads((x) => op1(name)(x), un(f), [away([3, 4], name.length * 13, lo, hi, kinks, 0.2)], { seed: 1, k: K_EW });
      });
    }

    // Same shapes, then a broadcast on each side: the un-broadcast sums add at most 3 terms.
    const BIN: [string, (a: number, b: number) => number, number, number][] = [
      ['add', (a, b) => a + b, -1, 1],
      ['sub', (a, b) => a - b, -1, 1],
      ['mul', (a, b) => a * b, -1, 1],
      ['div', (a, b) => a / b, 0.5, 2],
    ];
    for (const [name, f, lo, hi] of BIN) {
      it(`${name}, same shape and broadcast on either side`, async () => {
        await checkGrads(op2(name), bin(f), [dataOf([3, 4], 5), dataOf([3, 4], 6, lo, hi)], { seed: 2, k: K_EW });
        await checkGrads(op2(name), bin(f), [dataOf([3, 4], 7), dataOf([4], 8, lo, hi)], { seed: 3, k: K_EW + 3 });
        await checkGrads(op2(name), bin(f), [dataOf([3, 1], 9), dataOf([2, 1, 4], 10, lo, hi)], { seed: 4, k: K_EW + 4 });
      });
    }

    it('pow in both arguments (positive base), broadcast exponent, and a negative base with integer exponents', async () => {
      await checkGrads((a, b) => c.pow(a, b), bin(Math.pow), [dataOf([3, 4], 11, 0.5, 2), dataOf([3, 4], 12, -2, 2)], { seed: 5, k: K_EW });
      await checkGrads((a, b) => c.pow(a, b), bin(Math.pow), [dataOf([3, 4], 13, 0.5, 2), dataOf([4], 14, -2, 2)], { seed: 6, k: K_EW + 3 });
      // Base only (the exponent is a constant): negative bases with integer exponents are real.
      const e = c.tensor([2, 3, -1, 3], [4]);
      await checkGrads((a) => c.pow(a, e), (a) => mapRef([a, nd([4], [2, 3, -1, 3])], Math.pow), [away([3, 4], 15, -2, 2, [0], 0.3)], { seed: 7, k: K_EW });
      await checkGrads((a) => c.pow(a, 3), un((v) => v ** 3), [dataOf([3, 4], 16, -2, 2)], { seed: 8, k: K_EW });
      e.dispose();
    });

    it('maximum and minimum (no ties), same shape and broadcast', async () => {
      // b takes three values; a keeps 0.1 away from each of them.
      const bv = [-0.45, 0.05, 0.55];
      const a = away([3, 4], 17, -1, 1, bv, 0.1);
      const bSame: Arg = { shape: [3, 4], data: Array.from({ length: 12 }, (_, i) => bv[i % 3]) };
      const bRow: Arg = { shape: [4], data: [bv[0], bv[2], bv[1], bv[0]] };
      for (const name of ['maximum', 'minimum']) {
        const f = name === 'maximum' ? Math.max : Math.min;
        await checkGrads(op2(name), bin(f), [a, bSame], { seed: 9, k: K_EW });
        await checkGrads(op2(name), bin(f), [a, bRow], { seed: 10, k: K_EW + 3 });
      }
    });

    it('where: both branches, with a broadcast condition and operands', async () => {
      const condData = [1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1];
      const cond = c.tensor(condData, [3, 4]);
      const condNd = nd([3, 4], condData);
      await checkGrads((a, b) => c.where(cond, a, b), (a, b) => mapRef([condNd, a, b], (k, x, y) => (k !== 0 ? x : y)), [dataOf([3, 4], 18), dataOf([3, 4], 19)], { seed: 11, k: K_EW });
      const col = c.tensor([1, 0, 1], [3, 1]);
      const colNd = nd([3, 1], [1, 0, 1]);
      await checkGrads((a, b) => c.where(col, a, b), (a, b) => mapRef([colNd, a, b], (k, x, y) => (k !== 0 ? x : y)), [dataOf([4], 20), dataOf([3, 4], 21)], { seed: 12, k: K_EW + 3 });
      cond.dispose();
      col.dispose();
    });

    it('clip with number bounds and with tensor bounds (constants)', async () => {
      const x = away([3, 4], 22, -2, 2, [-0.5, 0.7], 0.1);
      await checkGrads((t) => c.clip(t, -0.5, 0.7), un((v) => Math.min(Math.max(v, -0.5), 0.7)), [x], { seed: 13, k: K_EW });
      const loData = [-0.5, -1.5, 0.3, -0.8];
      const lo = c.tensor(loData, [4]);
      const x2 = away([3, 4], 23, -2, 2, [...loData, 1.2], 0.1);
      await checkGrads(
        (t) => c.clip(t, lo, 1.2),
        (t) => mapRef([t, nd([4], loData)], (v, l) => Math.min(Math.max(v, l), 1.2)),
        [x2],
        { seed: 14, k: K_EW },
      );
      lo.dispose();
    });

    it('cast to float32 is the identity; through int32 there is no gradient', async () => {
      await checkGrads((x) => c.mul(c.cast(x, 'float32'), x), un((v) => v * v), [dataOf([3, 4], 24)], { seed: 15, k: K_EW });
      const g = c.grad((x: Tensor) => c.sum(c.add(c.cast(c.cast(x, 'int32'), 'float32'), x)))(c.tensor([1.5, -2.5, 3]));
      expect(Array.from(await g.data())).toEqual([1, 1, 1]);
      // sign and comparisons are constants to the tape.
      const xs = c.tensor([1.5, -2.5, 3]);
      const gs = c.grad((t: Tensor) => c.sum(c.add(c.sign(t), c.mul(c.greater(t, 0), t))))(xs);
      expect(Array.from(await gs.data())).toEqual([1, 0, 1]);
      c.tree.dispose([xs, gs, g]);
    });
  });

  it('the checker itself rejects a gradient that is off by 1e-4 relative', async () => {
    // tanh with a custom VJP that scales the true derivative by 1 + 1e-4 (~840 eps).
    const skewed = c.customVjp(
      (x: Tensor) => {
        const y = c.tanh(x);
        return [y, y] as [Tensor, Tensor];
      },
      (y, g) => [c.mul(c.mul(g, c.sub(1, c.square(y))), 1 + 1e-4)],
    );
    const x = [dataOf([3, 4], 3, -1.5, 1.5)];
    await expect(checkGrads((t) => skewed(t), un(Math.tanh), x, { seed: 1, k: K_EW })).rejects.toThrow(/argument #0 element \d+ \[\d+, \d+\]: reverse-mode .* float64 central difference of the reference .* times the tolerance/);
    await checkGrads((t) => c.tanh(t), un(Math.tanh), x, { seed: 1, k: K_EW });
  });

  describe('reductions', () => {
    const PATTERNS: [number | number[] | undefined, boolean][] = [
      [undefined, false],
      [1, false],
      [[0, 2], false],
      [-1, true],
      [[1, 2], true],
    ];
    const shape = [2, 3, 4];
    for (const name of ['sum', 'mean', 'max', 'min', 'logsumexp', 'norm']) {
      it(`${name} over axis patterns, with keepdims`, async () => {
        for (const [i, [axis, keep]] of PATTERNS.entries()) {
          const axes = axesOf(axis, 3);
          const L = count(axes.map((a) => shape[a]));
          // Distinct values 1/12 apart: the max and min of every group are unique by far.
          const x: Arg = { shape, data: distinct(24, 30 + i, -1.5, 1.5) };
          const f = (t: Tensor): Tensor => (c as unknown as Record<string, (t: Tensor, a?: number | number[], k?: boolean) => Tensor>)[name](t, axis, keep);
          // logsumexp's backward exponentiates x - y, y within L eps: 4L more eps.
          await checkGrads(f, (t) => reduceRef(t, axes, REDUCERS[name], keep), [x], { seed: 20 + i, k: K_EW + 4 * L });
        }
      });
    }

    it('max and min split the cotangent evenly over exact ties, as JAX does', async () => {
      const x = c.tensor([[1, 3, 3], [2, 2, 2]]);
      const third = Math.fround(1 / 3);
      expect(await c.grad((t: Tensor) => c.sum(c.max(t, 1)))(x).toArray()).toEqual([
        [0, 0.5, 0.5],
        [third, third, third],
      ]);
      expect(await c.grad((t: Tensor) => c.sum(c.min(t, 1)))(x).toArray()).toEqual([
        [1, 0, 0],
        [third, third, third],
      ]);
      expect(await c.grad((t: Tensor) => c.sum(c.maximum(t, 2)))(x).toArray()).toEqual([
        [0, 1, 1],
        [0.5, 0.5, 0.5],
      ]);
      x.dispose();
    });

    it('norm has gradient 0 at 0', async () => {
      const g = c.grad((t: Tensor) => c.sum(c.norm(t, 1)))(c.tensor([[0, 0], [3, 4]]));
      expect(await g.toArray()).toEqual([
        [0, 0],
        [Math.fround(0.6), Math.fround(0.8)],
      ]);
    });
  });

  describe('shape ops', () => {
    const x3: Arg = dataOf([2, 3, 4], 40);
    const k = K_EW;
    it('reshape, transpose, expandDims, squeeze', async () => {
      await checkGrads((t) => c.mul(c.reshape(t, [6, -1]), c.reshape(t, [6, 4])), (t) => mapRef([reshapeRef(t, [6, 4])], (v) => v * v), [x3], { seed: 40, k });
      await checkGrads((t) => c.transpose(t, [2, 0, 1]), (t) => transposeRef(t, [2, 0, 1]), [x3], { seed: 41, k });
      await checkGrads((t) => c.transpose(t), (t) => transposeRef(t, [2, 1, 0]), [x3], { seed: 42, k });
      await checkGrads((t) => c.expandDims(t, 1), (t) => reshapeRef(t, [2, 1, 3, 4]), [x3], { seed: 43, k });
      await checkGrads((t) => c.squeeze(t, [0, 2]), (t) => reshapeRef(t, [3, 4]), [dataOf([1, 3, 1, 4], 44)], { seed: 44, k });
    });

    it('broadcastTo sums the cotangent back', async () => {
      await checkGrads((t) => c.broadcastTo(t, [2, 3, 4]), (t) => broadcastRef(t, [2, 3, 4]), [dataOf([3, 1], 45)], { seed: 45, k: k + 8 });
      await checkGrads((t) => c.broadcastTo(t, [2, 3, 4]), (t) => broadcastRef(t, [2, 3, 4]), [dataOf([4], 46)], { seed: 46, k: k + 6 });
    });

    it('slice and pad', async () => {
      await checkGrads((t) => c.slice(t, [0, 1, -3], [2, 2, -1]), (t) => sliceRef(t, [0, 1, 1], [2, 2, 3]), [x3], { seed: 47, k });
      const pads: [number, number][] = [
        [1, 0],
        [0, 2],
        [2, 1],
      ];
      await checkGrads((t) => c.pad(t, pads, 0.5), (t) => mapRef([padRef(t, pads)], (v) => v), [x3], { seed: 48, k });
    });

    it('concat along each axis and stack', async () => {
      await checkGrads(
        (a, b, d) => c.concat([a, b, d], 1),
        (a, b, d) => concatRef([a, b, d], 1),
        [dataOf([2, 1, 4], 49), dataOf([2, 3, 4], 50), dataOf([2, 2, 4], 51)],
        { seed: 49, k },
      );
      await checkGrads((a, b) => c.concat([a, b], -1), (a, b) => concatRef([a, b], 2), [dataOf([2, 3, 1], 52), x3], { seed: 50, k });
      await checkGrads((a, b) => c.stack([a, b], 1), (a, b) => concatRef([reshapeRef(a, [3, 1, 4]), reshapeRef(b, [3, 1, 4])], 1), [dataOf([3, 4], 53), dataOf([3, 4], 54)], { seed: 51, k });
      // The same tensor twice: both cotangents accumulate into it.
      await checkGrads((a) => c.stack([a, c.mul(a, a), a], 0), (a) => concatRef([reshapeRef(a, [1, 3, 4]), reshapeRef(mapRef([a], (v) => v * v), [1, 3, 4]), reshapeRef(a, [1, 3, 4])], 0), [dataOf([3, 4], 55)], { seed: 52, k });
    });

    it('take on axis 0 and 1 with repeated (and negative) indices: the scatter-add accumulates', async () => {
      const i0 = [2, 0, 2, 2, -1];
      const t0 = ints(i0);
      // The gradient of a row taken three times adds three cotangents: 3 more terms.
      await checkGrads((t) => c.take(t, t0, 0), (t) => takeRef(t, i0, [5], 0), [dataOf([4, 5], 56)], { seed: 53, k: k + 4 });
      const i1 = [1, 2, 1, 1, 0, -1];
      const t1 = ints(i1, [2, 3]);
      await checkGrads((t) => c.take(t, t1, 1), (t) => takeRef(t, i1, [2, 3], 1), [x3], { seed: 54, k: k + 4 });
      t0.dispose();
      t1.dispose();
    });
  });

  describe('linear algebra', () => {
    // Each gradient entry is an inner product over at most 6 terms, plus the batch sums.
    const k = K_EW + 8;
    const cases: [string, number[], number[], boolean, boolean][] = [
      ['plain', [3, 4], [4, 5], false, false],
      ['batched', [2, 3, 4], [2, 4, 5], false, false],
      ['batched with broadcasting', [2, 1, 3, 4], [3, 4, 2], false, false],
      ['broadcast matrix on the right', [2, 3, 4], [4, 5], false, false],
      ['transposeA', [4, 3], [4, 5], true, false],
      ['transposeB', [3, 4], [5, 4], false, true],
      ['both transposed, batched', [2, 4, 3], [5, 4], true, true],
      ['vector @ matrix', [4], [4, 5], false, false],
      ['matrix @ vector', [3, 4], [4], false, false],
      ['vector @ vector', [4], [4], false, false],
      ['batched matrix @ vector', [2, 3, 4], [4], false, false],
      ['vector @ batched matrix, transposeB', [4], [2, 5, 4], false, true],
    ];
    for (const [label, as, bs, ta, tb] of cases) {
      it(`matmul: ${label}`, async () => {
        await checkGrads(
          (a, b) => c.matmul(a, b, { transposeA: ta, transposeB: tb }),
          (a, b) => bmmRef(a, b, ta, tb),
          [dataOf(as, 60 + as.length), dataOf(bs, 70 + bs.length)],
          { seed: 60 + label.length, k: k + 6 },
        );
      });
    }

    it('outer', async () => {
      await checkGrads(
        (a, b) => c.outer(a, b),
        (a, b) => matmulRef(reshapeRef(a, [3, 1]), reshapeRef(b, [1, 4])),
        [dataOf([3], 80), dataOf([4], 81)],
        { seed: 80, k },
      );
    });

    it('diag (vector and matrix), trace', async () => {
      await checkGrads((v) => c.diag(v), diagRef, [dataOf([4], 82)], { seed: 81, k });
      await checkGrads((m) => c.diag(m), diagRef, [dataOf([3, 5], 83)], { seed: 82, k });
      await checkGrads((m) => c.diag(m), diagRef, [dataOf([4, 2], 84)], { seed: 83, k });
      await checkGrads((m) => c.trace(m), (m) => scalar(sumAll(diagRef(m))), [dataOf([4, 4], 85)], { seed: 84, k });
    });
  });

  describe('composites', () => {
    it('2-layer MLP with cross-entropy (logsumexp minus the label logits, mean over the batch)', async () => {
      const [B, D, H, C] = [6, 5, 8, 4];
      const labels = [2, 0, 3, 3, 1, 0];
      // The label logit of row i is element i * C + label_i of the flattened logits.
      const flatIdx = ints(labels.map((l, i) => i * C + l));
      const f = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor): Tensor => {
        const h = c.gelu(c.add(c.matmul(x, w1), b1));
        const logits = c.add(c.matmul(h, w2), b2);
        const picked = c.take(c.reshape(logits, [-1]), flatIdx, 0);
        return c.mean(c.sub(c.logsumexp(logits, 1), picked));
      };
      const fRef = (x: Nd, w1: Nd, b1: Nd, w2: Nd, b2: Nd): Nd => {
        const h = mapRef([matmulRef(x, w1), b1], (u, b) => gelu64(u + b));
        const logits = mapRef([matmulRef(h, w2), b2], (u, b) => u + b);
        let loss = 0;
        for (let i = 0; i < B; i++) {
          const row = Array.from(logits.data.slice(i * C, (i + 1) * C));
          loss += lse64(row) - row[labels[i]];
        }
        return scalar(loss / B);
      };
      // Sums of up to H = 8 terms in each of four backward stages.
      await checkGrads(f, fRef, [dataOf([B, D], 90, -2, 2), dataOf([D, H], 91), dataOf([H], 92), dataOf([H, C], 93), dataOf([C], 94)], { seed: 90, k: 4 * (K_EW + H), normwise: true });
      flatIdx.dispose();
    });

    it('layer norm then causal single-head attention', async () => {
      const [T, D] = [5, 6];
      const maskData = Array.from({ length: T * T }, (_, p) => (p % T <= Math.floor(p / T) ? 1 : 0));
      const mask = c.tensor(maskData, [T, T]);
      const f = (x: Tensor, gamma: Tensor, beta: Tensor, wq: Tensor, wk: Tensor, wv: Tensor): Tensor => {
        const mu = c.mean(x, -1, true);
        const xc = c.sub(x, mu);
        const v = c.mean(c.square(xc), -1, true);
        const xn = c.add(c.mul(c.mul(xc, c.rsqrt(c.add(v, 1e-5))), gamma), beta);
        const q = c.matmul(xn, wq);
        const k = c.matmul(xn, wk);
        const vv = c.matmul(xn, wv);
        const s = c.where(mask, c.div(c.matmul(q, k, { transposeB: true }), Math.sqrt(D)), -1e9);
        const p = c.exp(c.sub(s, c.logsumexp(s, -1, true)));
        return c.matmul(p, vv);
      };
      const fRef = (x: Nd, gamma: Nd, beta: Nd, wq: Nd, wk: Nd, wv: Nd): Nd => {
        const xn = new Float64Array(T * D);
        for (let t = 0; t < T; t++) {
          const row = Array.from(x.data.slice(t * D, (t + 1) * D));
          const mu = sum64(row) / D;
          const v = sum64(row.map((u) => (u - mu) ** 2)) / D;
          row.forEach((u, j) => (xn[t * D + j] = ((u - mu) / Math.sqrt(v + 1e-5)) * gamma.data[j] + beta.data[j]));
        }
        const xnNd = nd([T, D], xn);
        const q = matmulRef(xnNd, wq);
        const k = matmulRef(xnNd, wk);
        const vv = matmulRef(xnNd, wv);
        const s = matmulRef(q, transposeRef(k, [1, 0]));
        const masked = nd([T, T], s.data.map((u, p) => (maskData[p] ? u / Math.sqrt(D) : -1e9)));
        return matmulRef(softmaxRows(masked), vv);
      };
      await checkGrads(
        f,
        fRef,
        [dataOf([T, D], 100, -2, 2), dataOf([D], 101, 0.5, 1.5), dataOf([D], 102), dataOf([D, D], 103), dataOf([D, D], 104), dataOf([D, D], 105)],
        // Five backward stages with sums of up to D = 6 terms, and the layer norm's 1/sqrt(var).
        { seed: 100, k: 8 * (K_EW + D), normwise: true },
      );
      mask.dispose();
    });

    it('embedding (take on axis 0 with repeated ids) followed by reductions', async () => {
      const ids = [3, 1, 3, 0, 6, 1, 3, 2, 5, 4];
      const idsT = ints(ids, [2, 5]);
      const [V, D] = [7, 4];
      const f = (table: Tensor): Tensor => {
        const e = c.take(table, idsT, 0); // [2, 5, 4]
        // max over the sequence sees exact ties where an id repeats: the even split adds back to 1.
        return c.add(c.add(c.sum(c.tanh(e), 1), c.max(e, 1)), c.logsumexp(e, [0, 1]));
      };
      const fRef = (table: Nd): Nd => {
        const e = takeRef(table, ids, [2, 5], 0);
        const a = reduceRef(mapRef([e], Math.tanh), [1], sum64);
        const m = reduceRef(e, [1], (v) => Math.max(...v));
        const l = reduceRef(e, [0, 1], lse64);
        return mapRef([a, m, l], (x, y, z) => x + y + z);
      };
      // Rows appear up to 3 times in a batch of 10: sums of up to 10 terms.
      await checkGrads(f, fRef, [{ shape: [V, D], data: distinct(V * D, 110, -1.5, 1.5) }], { seed: 110, k: 2 * (K_EW + 10), normwise: true });
      idsT.dispose();
    });
  });

  describe('second derivatives', () => {
    it('d²/dx² sum(x³) = 6x', async () => {
      const xs = randomData(12, 120, -2, 2);
      const x = c.tensor(xs, [3, 4]);
      const cube = (y: Tensor): Tensor => c.sum(c.mul(y, c.mul(y, y)));
      const d2 = c.grad((y: Tensor) => c.sum(c.grad(cube)(y)))(x);
      const got = await d2.data();
      // 6x is formed from products and sums of x with small integers: within 4 eps of 6|x|.
      xs.forEach((v, i) => expect(Math.abs(got[i] - 6 * v)).toBeLessThanOrEqual(4 * EPS32 * 6 * Math.abs(v)));
      x.dispose();
      d2.dispose();
    });

    it('grad of grad of elementwise functions: x³, tanh, exp·sin', async () => {
      const x = [dataOf([3, 4], 121, -1.5, 1.5)];
      await checkGrads((t) => c.grad((y: Tensor) => c.sum(c.mul(y, c.square(y))))(t), un((v) => 3 * v * v), x, { seed: 121, k: K_EW });
      await checkGrads((t) => c.grad((y: Tensor) => c.sum(c.tanh(y)))(t), un((v) => 1 - Math.tanh(v) ** 2), x, { seed: 122, k: K_EW });
      await checkGrads(
        (t) => c.grad((y: Tensor) => c.sum(c.mul(c.exp(y), c.sin(y))))(t),
        un((v) => Math.exp(v) * (Math.sin(v) + Math.cos(v))),
        // Kept away from the zero of the second derivative 2 e^x cos x.
        [away([3, 4], 123, -1.5, 1.5, [-Math.PI / 2, Math.PI / 2], 0.2)],
        { seed: 123, k: K_EW },
      );
    });

    it('grad of grad of gelu, silu, sigmoid, sqrt and relu (their first derivatives run fused, their second composed)', async () => {
      const gelu1 = (v: number): number => {
        const c0 = Math.sqrt(2 / Math.PI);
        const t = Math.tanh(c0 * (v + 0.044715 * v ** 3));
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c0 * (1 + 3 * 0.044715 * v * v);
      };
      const cases: [string, (v: number) => number, number, number][] = [
        // Kept away from the zeros of the second derivatives (gelu'' and silu'' near ±1.6 / ±2.4).
        ['gelu', gelu1, -1.2, 1.2],
        ['silu', (v) => sigmoid64(v) * (1 + v * (1 - sigmoid64(v))), -2, 2],
        ['sigmoid', (v) => sigmoid64(v) * (1 - sigmoid64(v)), -2, 2],
        ['sqrt', (v) => 0.5 / Math.sqrt(v), 0.3, 3],
      ];
      for (const [name, d1, lo, hi] of cases) {
        await checkGrads((t) => c.grad((y: Tensor) => c.sum(op1(name)(y)))(t), un(d1), [away([3, 4], 130 + name.length, lo, hi, [0], 0.15)], { seed: 130, k: K_EW });
      }
      // relu'' is 0 away from the kink: the inner gradient's kernel must still be differentiable.
      const x = c.tensor([-1, 2, -3, 4], [4]);
      const d2 = c.grad((y: Tensor) => c.sum(c.mul(c.grad((u: Tensor) => c.sum(c.relu(u)))(y), y)))(x);
      expect(Array.from(await d2.data())).toEqual([0, 1, 0, 1]);
      x.dispose();
      d2.dispose();
    });

    it('logsumexp: Hessian-vector products against differences of the float64 softmax', async () => {
      // grad of sum(w * softmax(x)) is the Hessian of logsumexp times w (H = diag(p) - p pᵀ per row).
      await checkGrads((t) => c.grad((y: Tensor) => c.sum(c.logsumexp(y, 1)))(t), softmaxRows, [dataOf([3, 5], 124, -2, 2)], { seed: 124, k: 2 * (K_EW + 5) });
      // Over all axes at once (one row of 12).
      await checkGrads(
        (t) => c.grad((y: Tensor) => c.logsumexp(y))(t),
        (t) => reshapeRef(softmaxRows(reshapeRef(t, [1, 12])), [3, 4]),
        [dataOf([3, 4], 125, -2, 2)],
        { seed: 125, k: 2 * (K_EW + 12) },
      );
    });

    it('an inner gradient in x only, differentiated in x and y (operands the inner pass skips)', async () => {
      // d/du of u y / (y - u²) is y (y + u²) / (y - u²)²; the outer pass needs the y paths that the
      // inner one, tracking only u, has no use for.
      const f = (x: Tensor, y: Tensor): Tensor => c.grad((u: Tensor) => c.sum(c.div(c.mul(u, y), c.sub(y, c.square(u)))))(x);
      const fRef = (x: Nd, y: Nd): Nd => mapRef([x, y], (u, v) => (v * (v + u * u)) / (v - u * u) ** 2);
      await checkGrads(f, fRef, [dataOf([3, 4], 128), dataOf([4], 129, 2, 3)], { seed: 128, k: 2 * K_EW + 3 });
    });

    it('matmul: the gradient of a function of a gradient', async () => {
      // G = dA sum(tanh(A B)) = (1 - tanh²(AB)) Bᵀ; then differentiate sum(w * G²) in A and B.
      const f = (a: Tensor, b: Tensor): Tensor => c.square(c.grad((u: Tensor) => c.sum(c.tanh(c.matmul(u, b))))(a));
      const fRef = (a: Nd, b: Nd): Nd => {
        const s = mapRef([matmulRef(a, b)], (v) => 1 - Math.tanh(v) ** 2);
        return mapRef([matmulRef(s, transposeRef(b, [1, 0]))], (v) => v * v);
      };
      await checkGrads(f, fRef, [dataOf([3, 4], 126), dataOf([4, 5], 127)], { seed: 126, k: 4 * (K_EW + 5), normwise: true });
    });
  });

  describe('transformations', () => {
    it('arguments outside argnums are not tracked; f sees them unchanged; argnums as an array gives a tuple', async () => {
      let bwdCalls = 0;
      // An identity whose custom VJP counts its calls: a spy on the backward pass.
      const spy = customSpy(() => bwdCalls++);
      const w = c.tensor([1, 2, 3]);
      const frozen = c.tensor([4, 5, 6]);
      let seen: unknown;
      const f = (a: Tensor, b: Tensor): Tensor => {
        seen = b;
        return c.add(c.sum(c.mul(a, b)), c.sum(spy(c.mul(b, b))));
      };
      const g = c.grad(f)(w, frozen);
      expect(g).toBeInstanceOf(c.Tensor);
      expect(seen).toBe(frozen);
      expect(Array.from(await g.data())).toEqual([4, 5, 6]);
      expect(bwdCalls).toBe(0);

      const both = c.grad(f, { argnums: [0, 1] })(w, frozen);
      expect(Array.isArray(both)).toBe(true);
      expect(both).toHaveLength(2);
      expect(Array.from(await both[0].data())).toEqual([4, 5, 6]);
      expect(Array.from(await both[1].data())).toEqual([1 + 8, 2 + 10, 3 + 12]);
      expect(bwdCalls).toBe(1);

      // Only the second argument; a one-element list still gives a tuple.
      const only1 = c.grad(f, { argnums: [1] })(w, frozen);
      expect(only1).toHaveLength(1);
      expect(Array.from(await only1[0].data())).toEqual([9, 12, 15]);

      // A differentiated argument reaches f as a new tensor of the same values (a variable sharing
      // its storage): returned as aux, it reads the same, and disposing it leaves w intact.
      const [gw, inside] = c.grad((a: Tensor) => [c.sum(a), a] as [Tensor, Tensor], { hasAux: true })(w);
      expect(inside).toBeInstanceOf(c.Tensor);
      expect(inside).not.toBe(w);
      expect(Array.from(await inside.data())).toEqual([1, 2, 3]);
      inside.dispose();
      gw.dispose();
      expect(Array.from(await w.data())).toEqual([1, 2, 3]);
      for (const t of [w, frozen, g, ...both, ...only1]) t.dispose();
    });

    it('hasAux: valueAndGrad gives [[value, aux], grads], grad gives [grads, aux]; aux passes through', async () => {
      const x = c.tensor([1, 2]);
      const aux = { note: 'kept', n: 7 };
      const [[value, a1], g1] = c.valueAndGrad((t: Tensor) => [c.sum(c.square(t)), aux] as [Tensor, typeof aux], { hasAux: true })(x);
      expect(a1).toBe(aux);
      expect(Array.from(await value.data())).toEqual([5]);
      expect(Array.from(await g1.data())).toEqual([2, 4]);
      const [g2, a2] = c.grad((t: Tensor) => [c.sum(c.square(t)), aux] as [Tensor, typeof aux], { hasAux: true })(x);
      expect(a2).toBe(aux);
      expect(Array.from(await g2.data())).toEqual([2, 4]);
      // A tensor in aux survives the gradient's scope.
      const [g3, a3] = c.grad((t: Tensor) => {
        const y = c.mul(t, 3);
        return [c.sum(y), { y }] as [Tensor, { y: Tensor }];
      }, { hasAux: true })(x);
      expect(Array.from(await a3.y.data())).toEqual([3, 6]);
      expect(Array.from(await g3.data())).toEqual([3, 3]);
      for (const t of [x, value, g1, g2, g3, a3.y]) t.dispose();
    });

    it('gradients mirror nested trees: null for number and null leaves, zeros for unused tensors', async () => {
      const t1 = c.tensor([1, 2]);
      const t2 = c.tensor([[1, 2], [3, 4]]);
      const p = { a: [t1, { b: t2 }], n: 3, z: null };
      const g = c.grad((q: typeof p) => c.sum(c.mul(c.mul(q.a[0] as Tensor, q.a[0] as Tensor), q.n)))(p);
      expect(c.tree.structure(g)).toEqual(c.tree.structure(p));
      expect(g.n).toBeNull();
      expect(g.z).toBeNull();
      const [ga, gb] = [g.a[0] as Tensor, (g.a[1] as { b: Tensor }).b];
      expect(Array.from(await ga.data())).toEqual([6, 12]);
      expect(gb.shape).toEqual([2, 2]);
      expect(Array.from(await gb.data())).toEqual([0, 0, 0, 0]);
      // The same tensor in two leaves: each leaf gets its own gradient.
      const shared = c.grad((q: { u: Tensor; v: Tensor }) => c.add(c.sum(c.mul(q.u, 2)), c.sum(q.v)))({ u: t1, v: t1 });
      expect(Array.from(await shared.u.data())).toEqual([2, 2]);
      expect(Array.from(await shared.v.data())).toEqual([1, 1]);
      // A tree as the second argument.
      const g2 = c.grad((x: Tensor, q: { w: Tensor[] }) => c.sum(c.mul(x, c.add(q.w[0], q.w[1]))), { argnums: 1 })(t1, { w: [t1, t1] });
      expect(g2.w).toHaveLength(2);
      expect(Array.from(await g2.w[1].data())).toEqual([1, 2]);
      c.tree.dispose([t1, t2, g, shared, g2]);
    });

    it('vjp with a non-scalar output and a cotangent; dispose releases what it kept', async () => {
      await c.sync();
      const before = c.memory().tensors;
      const xd = randomData(12, 130);
      const yd = randomData(4, 131, 0.5, 1.5);
      const ctd = randomData(12, 132);
      const x = c.tensor(xd, [3, 4]);
      const y = c.tensor(yd, [4]);
      const ct = c.tensor(ctd, [3, 4]);
      const [out, vjpFn] = c.vjp((a: Tensor, b: Tensor) => c.mul(c.tanh(a), b), x, y);
      expect(out.shape).toEqual([3, 4]);
      const [dx, dy] = vjpFn(ct) as Tensor[];
      const dxRef = mapRef([nd([3, 4], ctd), nd([3, 4], xd), nd([4], yd)], (g, a, b) => g * (1 - Math.tanh(a) ** 2) * b);
      const dyRef = reduceRef(mapRef([nd([3, 4], ctd), nd([3, 4], xd)], (g, a) => g * Math.tanh(a)), [0], sum64);
      const gx = await dx.data();
      const gy = await dy.data();
      dxRef.data.forEach((v, i) => expect(Math.abs(gx[i] - v)).toBeLessThanOrEqual(K_EW * EPS32 * Math.max(Math.abs(v), 1e-3)));
      dyRef.data.forEach((v, i) => expect(Math.abs(gy[i] - v)).toBeLessThanOrEqual((K_EW + 3) * EPS32 * 3));
      // A second cotangent reuses the recorded pass.
      const ct2 = c.mul(ct, 2);
      const [dx2, dy2] = vjpFn(ct2) as Tensor[];
      const gx2 = await dx2.data();
      gx.forEach((v, i) => expect(gx2[i]).toBe(2 * v));
      const wrong = c.tensor([1, 2]);
      expect(() => vjpFn(wrong)).toThrow(/cotangent must be a tensor of the output's shape \[3,4\]/);
      vjpFn.dispose();
      c.tree.dispose([x, y, ct, ct2, wrong, out, dx, dy, dx2, dy2]);
      await c.sync();
      expect(c.memory().tensors).toBe(before);
    });

    it('stopGradient blocks the gradient, also in a grad of grad', async () => {
      const x = c.tensor([3, -2]);
      const g = c.grad((t: Tensor) => c.sum(c.mul(t, c.stopGradient(t))))(x);
      expect(Array.from(await g.data())).toEqual([3, -2]);
      // d/dx of grad(sum(x² · sg(x))) = d/dx (2x · sg(x)) = 2 sg(x) (the sg factor is constant).
      const gg = c.grad((t: Tensor) => c.sum(c.grad((u: Tensor) => c.sum(c.mul(c.square(u), c.stopGradient(u))))(t)))(x);
      expect(Array.from(await gg.data())).toEqual([6, -4]);
      c.tree.dispose([x, g, gg]);
    });

    it('customVjp: the custom bwd is used, and grad of grad works when bwd uses ops on the inputs', async () => {
      const clipGrad = c.customVjp(
        (x: Tensor) => [c.mul(x, 1), null] as [Tensor, null],
        (_r, g) => [c.clip(g, -1, 1)],
      );
      const x = c.tensor([0.5, -2, 3]);
      const g = c.grad((t: Tensor) => c.sum(c.mul(clipGrad(t), c.tensor([5, 0.25, -7]))))(x);
      expect(Array.from(await g.data())).toEqual([1, 0.25, -1]);

      // cube with a bwd written from the saved input: 3x²g. Its second derivative is 6x.
      const cube = c.customVjp(
        (t: Tensor) => [c.mul(t, c.square(t)), t] as [Tensor, Tensor],
        (t, g2) => [c.mul(g2, c.mul(c.square(t), 3))],
      );
      const d1 = c.grad((t: Tensor) => c.sum(cube(t)))(x);
      expect(Array.from(await d1.data())).toEqual([0.75, 12, 27]);
      const d2 = c.grad((t: Tensor) => c.sum(c.grad((u: Tensor) => c.sum(cube(u)))(t)))(x);
      expect(Array.from(await d2.data())).toEqual([3, -12, 18]);
      // Two inputs, null for one of them.
      const scaled = c.customVjp(
        (a: Tensor, s: Tensor) => [c.mul(a, s), s] as [Tensor, Tensor],
        (s, g3) => [c.mul(g3, s), null],
      );
      const [ga, gs] = c.grad((a: Tensor, s: Tensor) => c.sum(scaled(a, s)), { argnums: [0, 1] })(x, c.tensor([2, 2, 2]));
      expect(Array.from(await ga.data())).toEqual([2, 2, 2]);
      expect(Array.from(await gs.data())).toEqual([0, 0, 0]);
      // A bwd returning the wrong number of cotangents is an Error naming customVjp.
      const bad = c.customVjp((t: Tensor) => [c.mul(t, 2), null] as [Tensor, null], () => []);
      expect(() => c.grad((t: Tensor) => c.sum(bad(t)))(x)).toThrow(/customVjp: bwd must return 1 cotangent/);
      c.tree.dispose([x, g, d1, d2, ga, gs]);
    });

    it('customVjp: grad of grad through residuals computed in fwd', async () => {
      const cube = c.customVjp(
        (t: Tensor) => [c.mul(t, c.square(t)), c.mul(c.square(t), 3)] as [Tensor, Tensor],
        (r, g) => [c.mul(g, r)],
      );
      const x = c.tensor([0.5, -2, 3]);
      const d2 = c.grad((t: Tensor) => c.sum(c.grad((u: Tensor) => c.sum(cube(u)))(t)))(x);
      const got = Array.from(await d2.data());
      c.tree.dispose([x, d2]);
      expect(got).toEqual([3, -12, 18]);
    });

    it('customVjp: fwd may return its input unchanged', async () => {
      const x = c.tensor([1, 2]);
      const id = c.customVjp((t: Tensor) => [t, null] as [Tensor, null], (_r, g) => [c.mul(g, 10)]);
      const g = c.grad((t: Tensor) => c.sum(id(t)))(x);
      const got = Array.from(await g.data());
      c.tree.dispose([x, g]);
      expect(got).toEqual([10, 10]);
    });

    it('customVjp outside a gradient leaves only its output', async () => {
      const x = c.tensor([1, 2]);
      const sq = c.customVjp((t: Tensor) => [c.mul(t, t), c.mul(t, 2)] as [Tensor, Tensor], (r, g) => [c.mul(g, r)]);
      await c.sync();
      const before = c.memory().tensors;
      const y = sq(x);
      expect(Array.from(await y.data())).toEqual([1, 4]);
      y.dispose();
      x.dispose();
      await c.sync();
      expect(c.memory().tensors).toBe(before - 1);
    });

    it('tidy disposes what it made except its result', async () => {
      await c.sync();
      const before = c.memory().tensors;
      const x = c.tensor([1, 2, 3]);
      const r = c.tidy(() => {
        const a = c.add(x, 1);
        const b = c.mul(a, 2);
        c.exp(b);
        return { b, rest: [c.sum(b)], n: 3 };
      });
      expect(c.memory().tensors - before).toBe(3);
      expect(Array.from(await r.b.data())).toEqual([4, 6, 8]);
      expect(() =>
        c.tidy(() => {
          c.add(x, 1);
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(c.memory().tensors - before).toBe(3);
      c.tree.dispose([x, r]);
      expect(c.memory().tensors).toBe(before);
    });

    it('memory stays flat over 200 steps of valueAndGrad and SGD, and returns to the baseline', async () => {
      await c.sync();
      const base = c.memory();
      const x = c.tensor(randomData(32, 140), [8, 4]);
      const y = c.tensor(randomData(8, 141), [8, 1]);
      let params: { w1: Tensor; b1: Tensor; w2: Tensor; step: number } = {
        w1: c.tensor(randomData(24, 142, -0.5, 0.5), [4, 6]),
        b1: c.tensor(new Float32Array(6)),
        w2: c.tensor(randomData(6, 143, -0.5, 0.5), [6, 1]),
        step: 0,
      };
      const loss = (p: typeof params, xs: Tensor, ys: Tensor): Tensor => c.mean(c.square(c.sub(c.matmul(c.tanh(c.add(c.matmul(xs, p.w1), p.b1)), p.w2), ys)));
      const step = c.valueAndGrad(loss);
      let steady: ReturnType<typeof c.memory> | undefined;
      const losses: number[] = [];
      for (let i = 0; i < 200; i++) {
        const [value, g] = step(params, x, y);
        expect(g.step).toBeNull();
        const next = c.tidy(() => ({ ...c.tree.map((p, d) => (p instanceof c.Tensor ? c.sub(p, c.mul(d as Tensor, 0.1)) : p), params, g), step: params.step + 1 })) as typeof params;
        if (i % 50 === 0 || i === 199) losses.push((await value.data())[0]);
        c.tree.dispose([params, g, value]);
        params = next;
        if (i % 20 === 0 || i === 199) {
          await c.sync();
          const now = c.memory();
          if (!steady) steady = now;
          else expect(now).toEqual(steady);
        }
      }
      expect(params.step).toBe(200);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      c.tree.dispose([params, x, y]);
      await c.sync();
      expect(c.memory()).toEqual(base);
    });

    it('second-order gradients and vjp leave memory unchanged', async () => {
      const x = c.tensor(randomData(6, 150), [2, 3]);
      const idx = ints([-1, 0, 2]);
      const w = c.tensor(randomData(6, 151), [3, 2]);
      const w3 = c.tensor([0.5, 1, 1.5], [3]);
      const b3 = c.tensor([0.1, -0.2, 0.3], [3]);
      const f = (t: Tensor): Tensor => c.sum(c.tanh(c.matmul(c.take(t, idx, 1), w)));
      let base: ReturnType<typeof c.memory> | undefined;
      for (let i = 0; i < 5; i++) {
        c.grad((t: Tensor) => c.sum(c.square(c.grad(f)(t))))(x).dispose();
        c.grad((t: Tensor) => c.logsumexp(c.grad((u: Tensor) => c.sum(c.max(c.mul(u, u), 1)))(t)))(x).dispose();
        // Fused ops whose differentiated backward pass runs composed (nn/norm.ts, unary derivatives).
        c.grad((t: Tensor) => c.sum(c.square(c.grad((u: Tensor) => c.sum(c.gelu(c.nn.layerNorm(u, w3, b3))))(t))))(x).dispose();
        c.grad((t: Tensor) => c.sum(c.grad((u: Tensor) => c.sum(c.mul(c.nn.rmsNorm(u, w3), u)))(t)))(x).dispose();
        // First order, fused: the norms' saved statistics go with the gradient's scope.
        c.grad((t: Tensor) => c.sum(c.silu(c.nn.layerNorm(t, w3, b3))))(x).dispose();
        const [o, fn] = c.vjp((t: Tensor) => c.take(t, idx, 1), x);
        const ones = c.onesLike(o);
        c.tree.dispose([fn(ones), ones, o]);
        fn.dispose();
        await c.sync();
        if (!base) base = c.memory();
        else expect(c.memory()).toEqual(base);
      }
      c.tree.dispose([x, idx, w, w3, b3]);
    });

    it('errors: non-scalar output, argnums out of range, hasAux with a non-pair; nothing leaks', async () => {
      await c.sync();
      const before = c.memory().tensors;
      const x = c.tensor([1, 2]);
      expect(() => c.grad((t: Tensor) => c.mul(t, 2))(x)).toThrow(/one element, got float32 of shape \[2\]/);
      expect(() => c.grad((t: Tensor) => c.sum(c.cast(t, 'int32')))(x)).toThrow(/float32 tensor with one element, got int32/);
      expect(() => c.grad((_t: Tensor) => 3 as unknown as Tensor)(x)).toThrow(/must return a scalar tensor.*got number/);
      expect(() => c.grad((t: Tensor) => c.sum(t), { argnums: 1 })(x)).toThrow(/argnums 1 out of range for 1 argument/);
      expect(() => c.grad((t: Tensor) => c.sum(t), { argnums: [0, 2] as const })(x)).toThrow(/argnums \[0,2\] out of range/);
      expect(() => c.grad((t: Tensor) => c.sum(t), { argnums: -1 })(x)).toThrow(/argnums -1 out of range/);
      expect(() => c.valueAndGrad((t: Tensor) => c.sum(t) as unknown as [Tensor, null], { hasAux: true })(x)).toThrow(/hasAux the function must return \[loss, aux\]/);
      expect(() => c.grad((t: Tensor) => [c.sum(t), 1, 2] as unknown as [Tensor, null], { hasAux: true })(x)).toThrow(/hasAux the function must return \[loss, aux\]/);
      // Any one-element float32 tensor is a valid loss.
      const [g1] = c.grad((t: Tensor) => [c.sum(t, 0, true), 1] as [Tensor, number], { hasAux: true })(x);
      expect(Array.from(await g1.data())).toEqual([1, 1]);
      g1.dispose();
      expect(() => c.grad((t: Tensor) => [t, 1] as [Tensor, number], { hasAux: true })(x)).toThrow(/one element/);
      x.dispose();
      await c.sync();
      expect(c.memory().tensors).toBe(before);
    });

    it('errors: vjp of a function that does not return a tensor throws and leaks nothing', async () => {
      await c.sync();
      const before = c.memory().tensors;
      const x = c.tensor([1, 2]);
      expect(() => c.vjp((_t: Tensor) => 3 as unknown as Tensor, x)).toThrow(/vjp: the function must return a tensor/);
      x.dispose();
      await c.sync();
      expect(c.memory().tensors).toBe(before);
    });
  });
});

/** An identity op whose backward pass calls `onBwd`. */
function customSpy(onBwd: () => void): (x: Tensor) => Tensor {
  return c.customVjp(
    (x: Tensor) => [c.mul(x, 1), null] as [Tensor, null],
    (_r, g) => {
      onBwd();
      return [g];
    },
  );
}

