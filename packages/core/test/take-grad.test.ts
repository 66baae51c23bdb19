/**
 * The gradient of take (an embedding lookup's): a segment sum computed by kernels (sorted indices,
 * each row summing its run), not a one-hot matmul. Checked against float64 sums written here with
 * plain loops, on every backend: repeated and unused rows, one token, rows 0 and D - 1, negative
 * indices (which wrap) and out-of-range ones (which add nothing, take's documented rule), an axis
 * with outer and inner extents, more tokens than one sorting block (4096), GPT-2's vocabulary
 * (50257 rows at 1024 tokens) without a [tokens, vocab] one-hot alive at any point, and the second
 * derivative through the segment sum's own VJP (a gather).
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { randomData } from '@sorsajs/testing';
import { forEachBackend } from './backends.js';

const EPS32 = 2 ** -24;
const i32 = (v: ArrayLike<number>, shape?: number[]): Tensor => c.tensor(Array.from(v), shape, 'int32');

/** Deterministic values in [-3, 3) (the testing kit's seeded generator), not from the library. */
const values = (n: number, seed: number): Float32Array => randomData(n, seed, -3, 3);

/**
 * float64 reference of take's cotangent over x `[outer, D, inner]` with K indices: each index in
 * [-D, 0) wraps, any other outside [0, D) adds nothing. Returns the sums and, per cell, the sum of
 * the terms' magnitudes and their count (the float32 error bound's inputs).
 */
function segmentRef(g: Float32Array, idx: readonly number[], outer: number, D: number, inner: number): { sum: Float64Array; abs: Float64Array; count: Float64Array } {
  const K = idx.length;
  const sum = new Float64Array(outer * D * inner);
  const abs = new Float64Array(sum.length);
  const count = new Float64Array(sum.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < K; k++) {
      let v = idx[k];
      if (v < -D || v >= D) continue;
      if (v < 0) v += D;
      for (let n = 0; n < inner; n++) {
        const at = (o * D + v) * inner + n;
        const term = g[(o * K + k) * inner + n];
        sum[at] += term;
        abs[at] += Math.abs(term);
        count[at] += 1;
      }
    }
  }
  return { sum, abs, count };
}

/** Every cell within float32's sequential-sum bound of the reference; cells no index reaches are exactly 0. */
function expectSegment(got: ArrayLike<number>, ref: ReturnType<typeof segmentRef>): void {
  expect(got.length).toBe(ref.sum.length);
  let bad = -1;
  for (let i = 0; i < got.length; i++) {
    const tol = ref.count[i] === 0 ? 0 : (ref.count[i] + 1) * EPS32 * ref.abs[i] * 1.01;
    if (!(Math.abs(got[i] - ref.sum[i]) <= tol)) {
      bad = i;
      break;
    }
  }
  if (bad >= 0) expect.fail(`cell ${bad}: got ${got[bad]}, expected ${ref.sum[bad]} (${ref.count[bad]} terms)`);
}

/** take's cotangent for x of `xShape` (axis `axis`), indices `idx` (shape `idxShape`) and cotangent g. */
async function takeGrad(xShape: number[], idx: readonly number[], idxShape: number[], axis: number, g: Float32Array): Promise<ArrayLike<number>> {
  const x = c.zeros(xShape);
  const ids = i32(idx, idxShape);
  const [y, back] = c.vjp((t: Tensor) => c.take(t, ids, axis), x);
  const gt = c.tensor(g, y.shape);
  const [dx] = back(gt);
  const out = await dx.data();
  back.dispose();
  c.tree.dispose([x, ids, y, gt, dx]);
  return out;
}

/** Checks take's gradient on axis 0 of a `[D, inner]` table against the reference. */
async function checkRows(D: number, inner: number, idx: readonly number[], seed: number): Promise<void> {
  const g = values(idx.length * inner, seed);
  expectSegment(await takeGrad([D, inner], idx, [idx.length], 0, g), segmentRef(g, idx, 1, D, inner));
}

forEachBackend('take gradient (segment sum)', (name) => {
  it('repeated ids, ids never used, rows 0 and D - 1, negative and out-of-range ids', async () => {
    // Row 3 four times (once as -7), rows 0 and 9 (= D - 1, also as -1), rows 1, 2, 4-8 never;
    // 10, -11 and 1000 are out of range and add nothing.
    await checkRows(10, 5, [3, 0, 9, 3, 10, -7, 3, -1, -11, 9, 1000, 3, 0], 1);
  });

  it('a single token, and every token on one row', async () => {
    await checkRows(6, 4, [5], 2);
    await checkRows(6, 4, [0], 3);
    await checkRows(6, 4, Array.from({ length: 300 }, () => 2), 4);
  });

  it('no tokens: a zero gradient', async () => {
    const x = c.ones([4, 3]);
    const ids = i32([], [0]);
    const [y, back] = c.vjp((t: Tensor) => c.take(t, ids, 0), x);
    expect(y.shape).toEqual([0, 3]);
    const [dx] = back(c.zeros([0, 3]));
    expect(Array.from(await dx.data())).toEqual(new Array(12).fill(0));
    back.dispose();
    c.tree.dispose([x, ids, y, dx]);
  });

  it('axis 1 of [outer, D, inner] with a 2-D index tensor', async () => {
    const idx = [4, 1, 1, -2, 0, 7, 4, 1];
    const g = values(3 * idx.length * 2, 5);
    const got = await takeGrad([3, 5, 2], idx, [2, 4], 1, g);
    expectSegment(got, segmentRef(g, idx, 3, 5, 2));
  });

  it('more tokens than one sorting block (4096): three blocks, runs crossing them, sums in token order', async () => {
    const K = 2 * 4096 + 5;
    const idx = Array.from({ length: K }, (_, k) => (k % 11 === 0 ? 6 : (k * 7 + (k >> 5)) % 13) - (k % 97 === 0 ? 13 : 0));
    idx[K - 1] = 99; // out of range, in the last block
    await checkRows(13, 3, idx, 6);
  });

  it("GPT-2's vocabulary: [50257, 64] at 1024 tokens, without a [1024, 50257] one-hot alive", async () => {
    const V = 50257;
    const d = 64;
    const K = 1024;
    const idx = Array.from({ length: K }, (_, k) => (k * 40503 + 17) % V);
    idx[0] = 0;
    idx[1] = V - 1;
    idx[2] = idx[500];
    idx[3] = idx[700];
    const x = c.zeros([V, d]);
    const ids = i32(idx);
    const g = values(K * d, 7);
    const gt = c.tensor(g, [K, d]);
    await c.sync();
    const before = c.memory().bytes;
    let during = Infinity;
    // An identity whose backward runs after take's and reads the live bytes while the gradient's
    // intermediates still exist (they are disposed when the whole backward pass ends).
    const probe = c.customVjp(
      (t: Tensor) => [c.add(t, 0), null],
      (_r: null, ct: Tensor) => {
        during = c.memory().bytes;
        return [ct];
      },
    );
    const t0 = performance.now();
    const dx = c.grad((t: Tensor) => c.sum(c.mul(c.take(probe(t), ids, 0), gt)))(x);
    const got = await dx.data();
    const ms = performance.now() - t0;
    const tableBytes = V * d * 4;
    const oneHotBytes = K * V * 4; // 206 MB
    // Alive during the backward pass: x's copy, the take's output and its cotangent, the gradient.
    expect(during - before).toBeLessThan(3 * tableBytes + 4 * K * d * 4);
    expect(during - before).toBeLessThan(oneHotBytes / 3);
    expectSegment(got, segmentRef(g, idx, 1, V, d));
    console.log(`take gradient [${V}, ${d}] x ${K} tokens on ${c.backend()}: ${ms.toFixed(0)} ms, ${((during - before) / 2 ** 20).toFixed(1)} MiB alive in the backward pass`);
    c.tree.dispose([x, ids, gt, dx]);
  });

  // webgl holds tensors below 2^24 elements (its indices are float32).
  it.skipIf(name === 'webgl')('a [32000, 768] table (24.6M cells, past 2^24) at 4100 tokens: two blocks, the last rows exact', async () => {
    const V = 32000;
    const d = 768;
    const K = 4100;
    const idx = Array.from({ length: K }, (_, k) => (k % 3 === 0 ? V - 1 - (k % 17) : (k * 7919) % V));
    idx[4099] = V - 1;
    idx[5] = 21846; // the first row wholly past 2^24 = 21845.33 rows
    await checkRows(V, d, idx, 11);
  });

  it('second derivative: the segment sum differentiates through its own VJP (a gather)', async () => {
    // h(x) = Σ_k Σ_n x[id_k, n]² w[k, n];  q(x) = Σ ∇h(x) ⊙ cw;  ∂q/∂x[v, n] = Σ_{k: id_k = v} 2 w[k, n] cw[v, n].
    const D = 6;
    const d = 3;
    const idx = [2, 5, 2, -1, 0, 2];
    const K = idx.length;
    const w = values(K * d, 8);
    const cw = values(D * d, 9);
    const xv = values(D * d, 10);
    const x = c.tensor(xv, [D, d]);
    const ids = i32(idx);
    const wt = c.tensor(w, [K, d]);
    const ct = c.tensor(cw, [D, d]);
    const h = (t: Tensor): Tensor => c.sum(c.mul(c.square(c.take(t, ids, 0)), wt));
    const q = (t: Tensor): Tensor => c.sum(c.mul(c.grad(h)(t), ct));
    const d2 = c.grad(q)(x);
    const got = await d2.data();
    const ref = new Float64Array(D * d);
    for (let k = 0; k < K; k++) {
      const v = idx[k] < 0 ? idx[k] + D : idx[k];
      for (let n = 0; n < d; n++) ref[v * d + n] += 2 * w[k * d + n] * cw[v * d + n];
    }
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i] - ref[i])).toBeLessThanOrEqual(16 * EPS32 * (Math.abs(ref[i]) + 10));
    // Rows 1, 3 and 4 are never taken: exactly zero.
    for (const v of [1, 3, 4]) for (let n = 0; n < d; n++) expect(got[v * d + n]).toBe(0);
    c.tree.dispose([x, ids, wt, ct, d2]);
  });
});
