/**
 * Every op against float64 references (test/reference.ts), on every backend available here.
 * Tolerances are multiples of float32 epsilon scaled by the size of the values involved.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import {
  EPS32,
  absMatmulRef,
  compare,
  count,
  matmulRef,
  mapRef,
  nd,
  randomData,
  ravel,
  reduceRef,
  transposeRef,
  unravel,
  type Nd,
} from './reference.js';

async function expectClose(t: Tensor, ref: Nd, tol: (i: number) => number): Promise<void> {
  const got = await t.data();
  const msg = compare(t.shape, got, ref, tol);
  expect(msg, msg ?? '').toBeNull();
}
const exact = (): number => 0;

/** A float32 tensor of random values and its float64 twin. */
function rand(shape: number[], seed: number, lo = -1, hi = 1): [Tensor, Nd] {
  const data = randomData(count(shape), seed, lo, hi);
  return [c.tensor(data, shape), nd(shape, data)];
}

// Unary ops: reference function, input range, and tolerance in eps of max(|ref|, |x|, 1)
// (exp, log and friends are correctly rounded to a few ulp on every backend seen).
const UNARY: [string, (v: number) => number, number, number, number][] = [
  ['neg', (v) => -v, -5, 5, 0],
  ['abs', Math.abs, -5, 5, 0],
  ['sign', Math.sign, -5, 5, 0],
  ['square', (v) => v * v, -5, 5, 1],
  ['exp', Math.exp, -10, 10, 8],
  ['log', Math.log, 0.01, 10, 8],
  ['log1p', Math.log1p, -0.5, 10, 8],
  ['sqrt', Math.sqrt, 0, 10, 4],
  ['rsqrt', (v) => 1 / Math.sqrt(v), 0.01, 10, 8],
  ['tanh', Math.tanh, -8, 8, 8],
  ['sigmoid', (v) => 1 / (1 + Math.exp(-v)), -20, 20, 8],
  ['relu', (v) => Math.max(v, 0), -5, 5, 0],
  ['gelu', (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), -6, 6, 16],
  ['silu', (v) => v / (1 + Math.exp(-v)), -20, 20, 8],
  ['sin', Math.sin, -6, 6, 8],
  ['cos', Math.cos, -6, 6, 8],
];

const BINARY: [string, (a: number, b: number) => number, number][] = [
  ['add', (a, b) => a + b, 1],
  ['sub', (a, b) => a - b, 1],
  ['mul', (a, b) => a * b, 1],
  ['div', (a, b) => a / b, 2],
  ['maximum', Math.max, 0],
  ['minimum', Math.min, 0],
  ['equal', (a, b) => (a === b ? 1 : 0), 0],
  ['greater', (a, b) => (a > b ? 1 : 0), 0],
  ['less', (a, b) => (a < b ? 1 : 0), 0],
];

// Pairs of shapes that broadcast, covering same shape, trailing and leading broadcast, scalars and rank-0.
const SHAPE_PAIRS: [number[], number[]][] = [
  [[7], [7]],
  [[2, 3], [3]],
  [[4, 1, 3], [2, 1]],
  [[3, 1], [1, 5]],
  [[], [2, 2]],
  [[1], [5]],
  [[2, 3, 4, 5], [3, 1, 5]],
  [[130, 70], [130, 70]],
];

forEachBackend('elementwise', () => {
  for (const [name, f, lo, hi, k] of UNARY) {
    it(`${name} matches float64 over [${lo}, ${hi}]`, async () => {
      const [x, xr] = rand([5, 41], name.length * 7 + 1, lo, hi);
      const ref = mapRef([xr], f);
      const y = (c as unknown as Record<string, (t: Tensor) => Tensor>)[name](x);
      await expectClose(y, ref, (i) => k * EPS32 * Math.max(Math.abs(ref.data[i]), Math.abs(xr.data[i]), 1));
    });
  }

  it('log1p keeps tiny arguments', async () => {
    const y = await c.log1p(c.tensor([1e-10, -1e-9, 3e-8])).data();
    [1e-10, -1e-9, 3e-8].forEach((v, i) => expect(Math.abs(y[i] - Math.log1p(v))).toBeLessThanOrEqual(4 * EPS32 * Math.abs(v)));
  });

  it('special values: exp(-Infinity) is 0, exp(100) is Infinity, NaN propagates, sigmoid saturates', async () => {
    expect(Array.from(await c.exp(c.tensor([-Infinity, 100])).data())).toEqual([0, Infinity]);
    expect(Number.isNaN((await c.exp(c.tensor([NaN])).data())[0])).toBe(true);
    expect(Array.from(await c.sigmoid(c.tensor([-200, 200])).data())).toEqual([0, 1]);
    expect(Array.from(await c.sign(c.tensor([-0.5, 0, 3])).data())).toEqual([-1, 0, 1]);
  });

  for (const [name, f, k] of BINARY) {
    it(`${name} broadcasts like NumPy and matches float64`, async () => {
      for (const [i, [sa, sb]] of SHAPE_PAIRS.entries()) {
        const [a, ar] = rand(sa, 100 + i);
        // Values drawn from a small grid in half the cases so equal/greater/less see ties.
        const [b, br] = name === 'equal' ? [a, ar] : rand(sb, 200 + i, 0.25, 2);
        const ref = mapRef([ar, br], f);
        const y = (c as unknown as Record<string, (a: Tensor, b: Tensor) => Tensor>)[name](a, b);
        await expectClose(y, ref, (j) => k * EPS32 * Math.abs(ref.data[j]));
      }
    });
  }

  it('binary ops take JS numbers on either side', async () => {
    const [x, xr] = rand([3, 4], 7);
    await expectClose(c.sub(2, x), mapRef([xr], (v) => 2 - v), () => EPS32 * 4);
    await expectClose(c.div(x, 4), mapRef([xr], (v) => v / 4), exact);
  });

  it('pow: positive bases, negative bases with integer exponents, NaN otherwise', async () => {
    const [a, ar] = rand([6, 7], 11, 0.1, 4);
    const [b, br] = rand([7], 12, -2, 2);
    const ref = mapRef([ar, br], Math.pow);
    await expectClose(c.pow(a, b), ref, (i) => 16 * EPS32 * Math.abs(ref.data[i]));
    const y = await c.pow(c.tensor([-2, -2, -2, -8]), c.tensor([3, 2, 0.5, -1])).data();
    expect(y[0]).toBe(-8);
    expect(y[1]).toBe(4);
    expect(Number.isNaN(y[2])).toBe(true);
    expect(y[3]).toBeCloseTo(-0.125, 6);
  });

  it('where picks by a nonzero condition, broadcasting all three', async () => {
    const [a, ar] = rand([4, 3], 21);
    const cond = c.tensor([[1], [0], [2], [0]]);
    const ref = mapRef([nd([4, 1], [1, 0, 2, 0]), ar, nd([], [-7])], (k, x, y) => (k !== 0 ? x : y));
    await expectClose(c.where(cond, a, -7), ref, exact);
  });

  it('clip limits to [lo, hi]', async () => {
    const [x, xr] = rand([50], 31, -3, 3);
    await expectClose(c.clip(x, -1, 0.5), mapRef([xr], (v) => Math.min(Math.max(v, -1), 0.5)), exact);
  });

  it('int32 arithmetic stays int32 and exact', async () => {
    const a = c.tensor([1, -2, 3, 16777216], undefined, 'int32');
    const b = c.tensor([5, 7, -9, 0], undefined, 'int32');
    const s = c.add(a, b);
    expect(s.dtype).toBe('int32');
    const d = await s.data();
    expect(d).toBeInstanceOf(Int32Array);
    expect(Array.from(d)).toEqual([6, 5, -6, 16777216]);
    expect(Array.from(await c.mul(a, 3).data())).toEqual([3, -6, 9, 50331648]);
    expect(Array.from(await c.cast(c.tensor([1.7, -1.7, 2]), 'int32').data())).toEqual([1, -1, 2]);
  });

  it('a kernel called twice leaves its first result intact', async () => {
    const x = c.tensor([1, 2, 3]);
    const y1 = c.mul(x, 2);
    const y2 = c.mul(x, 3);
    expect(Array.from(await y1.data())).toEqual([2, 4, 6]);
    expect(Array.from(await y2.data())).toEqual([3, 6, 9]);
  });
});

const REDUCTIONS: [string, (v: number[]) => number, (v: number[]) => number][] = [
  // [name, reference, tolerance from the group's values]
  ['sum', (v) => v.reduce((a, b) => a + b, 0), (v) => v.length * EPS32 * v.reduce((a, b) => a + Math.abs(b), 0)],
  ['mean', (v) => v.reduce((a, b) => a + b, 0) / v.length, (v) => (v.length + 1) * EPS32 * v.reduce((a, b) => a + Math.abs(b), 0) / v.length],
  ['max', (v) => Math.max(...v), () => 0],
  ['min', (v) => Math.min(...v), () => 0],
  [
    'logsumexp',
    (v) => {
      const m = Math.max(...v);
      return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
    },
    (v) => (v.length + 8) * EPS32 * Math.max(1, Math.max(...v.map(Math.abs))),
  ],
  ['norm', (v) => Math.sqrt(v.reduce((a, b) => a + b * b, 0)), (v) => (v.length + 8) * EPS32 * Math.sqrt(v.reduce((a, b) => a + b * b, 0))],
];

const AXES: [number[], number | number[] | undefined][] = [
  [[6], undefined],
  [[4, 5], 0],
  [[4, 5], 1],
  [[4, 5], -1],
  [[3, 4, 5], [0, 2]],
  [[3, 4, 5], [1, 2]],
  [[2, 3, 4, 5], [0, 1, 3]],
  [[3, 300], 1],
  [[1000], 0],
  // Leading axes of many rows (sum and mean take column sums in blocks of 64 rows).
  [[2, 150, 7], [0, 1]],
  [[130, 9], 0],
];

forEachBackend('reductions', () => {
  for (const [name, f, tolOf] of REDUCTIONS) {
    it(`${name} over every axis pattern, with and without keepdims`, async () => {
      for (const [k, [shape, axis]] of AXES.entries()) {
        for (const keepdims of [false, true]) {
          const [x, xr] = rand(shape, 300 + k, -3, 3);
          const axes = axis === undefined ? shape.map((_, j) => j) : (typeof axis === 'number' ? [axis] : axis).map((a) => (a < 0 ? a + shape.length : a));
          const ref = reduceRef(xr, axes, f, keepdims);
          const tols = reduceRef(xr, axes, tolOf, keepdims).data;
          const y = (c as unknown as Record<string, (t: Tensor, a?: unknown, k?: boolean) => Tensor>)[name](x, axis, keepdims);
          await expectClose(y, ref, (i) => tols[i]);
        }
      }
    });
  }

  it('argmax and argmin give the first extreme index as int32', async () => {
    const x = c.tensor([
      [1, 7, 7, -2],
      [0, 0, -5, -5],
    ]);
    const am = c.argmax(x, 1);
    expect(am.dtype).toBe('int32');
    expect(Array.from(await am.data())).toEqual([1, 0]);
    expect(Array.from(await c.argmin(x, 1).data())).toEqual([3, 2]);
    expect(Array.from(await c.argmax(x, 0).data())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await c.argmin(x, 0).data())).toEqual([1, 1, 1, 1]);
    expect(Array.from(await c.argmax(x).data())).toEqual([1]);
    expect(c.argmax(x, 1, true).shape).toEqual([2, 1]);
  });

  it('logsumexp and norm stay finite where the naive formulas overflow', async () => {
    expect((await c.logsumexp(c.tensor([1000, 1000])).data())[0]).toBeCloseTo(1000 + Math.log(2), 3);
    expect((await c.logsumexp(c.tensor([-Infinity, -Infinity])).data())[0]).toBe(-Infinity);
    expect((await c.norm(c.tensor([3e30, 4e30])).data())[0]).toBeCloseTo(5e30, -25);
    expect((await c.norm(c.tensor([3e-30, 4e-30])).data())[0] / 5e-30).toBeCloseTo(1, 5);
  });

  it('reductions of int32 stay int32 (mean gives float32)', async () => {
    const x = c.tensor([[1, 2], [3, 5]], undefined, 'int32');
    const s = c.sum(x, 1);
    expect(s.dtype).toBe('int32');
    expect(Array.from(await s.data())).toEqual([3, 8]);
    expect(c.mean(x).dtype).toBe('float32');
    expect(Array.from(await c.mean(x).data())).toEqual([2.75]);
  });
});

forEachBackend('shape ops', () => {
  it('reshape (with -1) keeps values in order', async () => {
    const [x, xr] = rand([2, 3, 4], 400);
    await expectClose(c.reshape(x, [4, -1]), nd([4, 6], xr.data), exact);
    expect(c.reshape(x, [24]).shape).toEqual([24]);
  });

  it('transpose by every permutation of rank 3, and the default reversal', async () => {
    const [x, xr] = rand([2, 3, 4], 401);
    for (const perm of [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
      await expectClose(c.transpose(x, perm), transposeRef(xr, perm), exact);
    }
    await expectClose(c.transpose(x), transposeRef(xr, [2, 1, 0]), exact);
    const [y, yr] = rand([3, 2, 5, 4], 402);
    await expectClose(c.transpose(y, [3, 1, 0, 2]), transposeRef(yr, [3, 1, 0, 2]), exact);
  });

  it('expandDims and squeeze', async () => {
    const x = c.zeros([3, 1, 2]);
    expect(c.expandDims(x, 0).shape).toEqual([1, 3, 1, 2]);
    expect(c.expandDims(x, -1).shape).toEqual([3, 1, 2, 1]);
    expect(c.squeeze(x).shape).toEqual([3, 2]);
    expect(c.squeeze(x, 1).shape).toEqual([3, 2]);
  });

  it('slice takes blocks with negative begins and -1 sizes', async () => {
    const [x, xr] = rand([5, 6, 7], 403);
    const y = c.slice(x, [1, -4, 2], [3, -1, 4]);
    const ref = new Float64Array(3 * 4 * 4);
    let k = 0;
    for (let i = 1; i < 4; i++) for (let j = 2; j < 6; j++) for (let l = 2; l < 6; l++) ref[k++] = xr.data[(i * 6 + j) * 7 + l];
    await expectClose(y, nd([3, 4, 4], ref), exact);
  });

  it('concat along each axis, of three inputs', async () => {
    const parts = [rand([2, 3, 4], 404), rand([2, 3, 4], 405), rand([2, 3, 4], 406)];
    for (const axis of [0, 1, 2]) {
      const shape = [2, 3, 4];
      shape[axis] *= 3;
      const ref = new Float64Array(count(shape));
      for (let p = 0; p < ref.length; p++) {
        const idx = [Math.floor(p / (shape[1] * shape[2])), Math.floor(p / shape[2]) % shape[1], p % shape[2]];
        const which = Math.floor(idx[axis] / [2, 3, 4][axis]);
        idx[axis] %= [2, 3, 4][axis];
        ref[p] = parts[which][1].data[(idx[0] * 3 + idx[1]) * 4 + idx[2]];
      }
      await expectClose(c.concat(parts.map((p) => p[0]), axis), nd(shape, ref), exact);
    }
  });

  it('stack along a new axis', async () => {
    const [a, ar] = rand([2, 3], 407);
    const [b, br] = rand([2, 3], 408);
    const y = c.stack([a, b], 1);
    const ref = new Float64Array(12);
    for (let i = 0; i < 2; i++) for (let s = 0; s < 2; s++) for (let j = 0; j < 3; j++) ref[(i * 2 + s) * 3 + j] = (s ? br : ar).data[i * 3 + j];
    await expectClose(y, nd([2, 2, 3], ref), exact);
  });

  it('broadcastTo materializes NumPy broadcasting', async () => {
    const [x, xr] = rand([3, 1], 409);
    await expectClose(c.broadcastTo(x, [2, 3, 4]), mapRef([xr, nd([2, 3, 4], new Float64Array(24))], (v) => v), exact);
  });

  it('take along axes 0 and 1, with negative indices and a 2-D index tensor', async () => {
    const [x, xr] = rand([4, 5], 410);
    const idx = c.tensor([3, -1, 0], undefined, 'int32');
    const want0 = [3, 3, 0].flatMap((r) => Array.from(xr.data.slice(r * 5, r * 5 + 5)));
    await expectClose(c.take(x, idx, 0), nd([3, 5], want0), exact);
    const idx2 = c.tensor([[4, 0], [1, 1]], undefined, 'int32');
    const want1: number[] = [];
    for (let r = 0; r < 4; r++) for (const j of [4, 0, 1, 1]) want1.push(xr.data[r * 5 + j]);
    await expectClose(c.take(x, idx2, 1), nd([4, 2, 2], want1), exact);
  });

  it('oneHot', async () => {
    const y = c.oneHot(c.tensor([2, 0, 1], undefined, 'int32'), 4);
    expect(y.shape).toEqual([3, 4]);
    expect(Array.from(await y.data())).toEqual([0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('pad with a constant', async () => {
    const [x, xr] = rand([2, 3], 411);
    const y = c.pad(x, [[1, 0], [2, 1]], 9);
    const ref = new Float64Array(3 * 6).fill(9);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) ref[(i + 1) * 6 + j + 2] = xr.data[i * 3 + j];
    await expectClose(y, nd([3, 6], ref), exact);
  });

  it('pad at ranks 1 to 5 (wasm splits the leading axes of its grid), padding every axis or none', async () => {
    const cases: [number[], [number, number][]][] = [
      [[5], [[2, 1]]],
      [[2, 3, 4], [[0, 1], [1, 0], [2, 3]]],
      [[2, 2, 3, 2], [[1, 0], [0, 2], [1, 1], [0, 1]]],
      [[3, 1, 2, 2, 3], [[0, 0], [1, 2], [0, 1], [1, 0], [2, 0]]],
      [[2, 3, 4], [[0, 0], [0, 0], [0, 0]]],
    ];
    for (const [shape, pads] of cases) {
      const [x, xr] = rand(shape, 412 + shape.length);
      const y = c.pad(x, pads, -7);
      const outShape = shape.map((d, j) => d + pads[j][0] + pads[j][1]);
      // Every output cell: the input's value where its coordinate minus the leading pad is inside, else -7.
      const ref = new Float64Array(count(outShape)).map((_, p) => {
        const at = unravel(p, outShape).map((v, j) => v - pads[j][0]);
        return at.every((v, j) => v >= 0 && v < shape[j]) ? xr.data[ravel(at, shape)] : -7;
      });
      await expectClose(y, nd(outShape, ref), exact);
      c.tree.dispose([x, y]);
    }
  });
});

forEachBackend('linear algebra', () => {
  const cases: [number[], number[], c.MatmulOptions?][] = [
    [[3, 5], [5, 4]],
    [[37, 29], [29, 53]],
    [[1, 8], [8, 1]],
    [[2, 3, 5], [5, 4]],
    [[3, 5], [2, 5, 4]],
    [[2, 1, 3, 5], [4, 5, 2]],
    [[5, 3], [5, 4], { transposeA: true }],
    [[3, 5], [4, 5], { transposeB: true }],
    [[2, 5, 3], [2, 4, 5], { transposeA: true, transposeB: true }],
    [[6], [6, 2]],
    [[3, 6], [6]],
    [[64, 70], [70, 66]],
    // Large enough (>= 4096 cells of 4 x 16 tiles) that wasm runs it on worker threads.
    [[2, 130, 20], [20, 260]],
    [[150, 33], [140, 33], { transposeB: true }],
    // wasm packs a transposed B into column panels from its strides; here with broadcast batches and N not a multiple of 4.
    [[2, 1, 24, 9], [3, 7, 9], { transposeB: true }],
    [[17, 6], [2, 5, 6], { transposeB: true }],
    // x @ Wᵀ with W much bigger than x and the result: wasm computes (W @ xᵀ)ᵀ; M = 1 (decoding), M not a multiple of 4, N not a multiple of 4.
    [[16, 64], [600, 64], { transposeB: true }],
    [[1, 24], [90, 24], { transposeB: true }],
    [[3, 40], [203, 40], { transposeB: true }],
  ];
  for (const [sa, sb, opts] of cases) {
    it(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)} ${opts ? JSON.stringify(opts) : ''}`, async () => {
      const [a, ar] = rand(sa, sa.length * 31 + sa[0]);
      const [b, br] = rand(sb, sb.length * 37 + sb[0]);
      // Reference: batch loop of plain triple loops over the broadcast batch.
      const A = sa.length === 1 ? nd([1, sa[0]], ar.data) : ar;
      const B = sb.length === 1 ? nd([sb[0], 1], br.data) : br;
      const At = opts?.transposeA ? transposeRef(A, [...A.shape.keys()].map((k, _, all) => (k < all.length - 2 ? k : k === all.length - 2 ? k + 1 : k - 1))) : A;
      const Bt = opts?.transposeB ? transposeRef(B, [...B.shape.keys()].map((k, _, all) => (k < all.length - 2 ? k : k === all.length - 2 ? k + 1 : k - 1))) : B;
      const batchA = At.shape.slice(0, -2);
      const batchB = Bt.shape.slice(0, -2);
      const rank = Math.max(batchA.length, batchB.length);
      const batch: number[] = [];
      for (let j = 0; j < rank; j++) {
        const da = batchA[j - (rank - batchA.length)] ?? 1;
        const db = batchB[j - (rank - batchB.length)] ?? 1;
        batch.push(Math.max(da, db));
      }
      const [m, k] = At.shape.slice(-2);
      const n = Bt.shape[Bt.shape.length - 1];
      const out: number[] = [];
      const tol: number[] = [];
      for (let p = 0; p < count(batch); p++) {
        const idx = batch.map((_, j) => Math.floor(p / count(batch.slice(j + 1))) % batch[j]);
        const pick = (X: Nd, bshape: number[], r: number, cc: number): Nd => {
          const off = rank - bshape.length;
          let q = 0;
          for (let j = 0; j < bshape.length; j++) q = q * bshape[j] + (bshape[j] === 1 ? 0 : idx[j + off]);
          return nd([r, cc], X.data.slice(q * r * cc, (q + 1) * r * cc));
        };
        const am = pick(At, batchA, m, k);
        const bm = pick(Bt, batchB, k, n);
        out.push(...matmulRef(am, bm).data);
        tol.push(...absMatmulRef(am, bm).data.map((v) => (k + 2) * EPS32 * v));
      }
      const shape = [...batch, ...(sa.length === 1 ? [] : [m]), ...(sb.length === 1 ? [] : [n])];
      await expectClose(c.matmul(a, b, opts), nd(shape, out), (i) => tol[i]);
    });
  }

  it('outer, diag and trace', async () => {
    const [u, ur] = rand([3], 500);
    const [v, vr] = rand([4], 501);
    await expectClose(c.outer(u, v), mapRef([nd([3, 1], ur.data), vr], (a, b) => a * b), () => EPS32);
    expect(Array.from(await c.diag(c.tensor([1, 2, 3])).data())).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 3]);
    expect(Array.from(await c.diag(c.tensor([[1, 2, 3], [4, 5, 6]])).data())).toEqual([1, 5]);
    expect(Array.from(await c.trace(c.tensor([[1, 2], [3, 4]])).data())).toEqual([5]);
  });
});

forEachBackend('creation', () => {
  it('zeros, ones, full, zerosLike, onesLike', async () => {
    expect(Array.from(await c.zeros([2, 2]).data())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await c.ones([3]).data())).toEqual([1, 1, 1]);
    expect(Array.from(await c.full([2], -2.5).data())).toEqual([-2.5, -2.5]);
    const i = c.full([2], 7, 'int32');
    expect(i.dtype).toBe('int32');
    expect(Array.from(await c.zerosLike(i).data())).toEqual([0, 0]);
    expect(Array.from(await c.onesLike(c.tensor([5, 6, 7])).data())).toEqual([1, 1, 1]);
  });

  it('arange, linspace and eye', async () => {
    const a = c.arange(5);
    expect(a.dtype).toBe('int32');
    expect(Array.from(await a.data())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await c.arange(2, 8, 3).data())).toEqual([2, 5]);
    expect(Array.from(await c.arange(1, 2, 0.25).data())).toEqual([1, 1.25, 1.5, 1.75]);
    expect(Array.from(await c.arange(5, 0, -2).data())).toEqual([5, 3, 1]);
    expect(Array.from(await c.linspace(0, 1, 5).data())).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(await c.eye(2, 3, 1).data())).toEqual([0, 1, 0, 0, 0, 1]);
    expect(Array.from(await c.eye(3).data())).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  });

  it('tensor reads nested arrays and typed arrays; toArray nests back', async () => {
    const t = c.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(await t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(await c.tensor(5).toArray()).toBe(5);
    const i = c.tensor(new Int32Array([1, 2]));
    expect(i.dtype).toBe('int32');
    expect(await i.data()).toBeInstanceOf(Int32Array);
    expect(c.tensor(new Float32Array(6), [3, 2]).shape).toEqual([3, 2]);
  });
});
