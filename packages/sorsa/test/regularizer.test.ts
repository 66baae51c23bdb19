/**
 * orthoRegularizer: value and gradient against float64 references; fast-check properties.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import { orthoRegularizer, type SorsaAdapter } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { arb, checkGrads, count, randomData, type CheckGradsReport, type Nd } from '@sorsajs/testing';
import { EPS32, closeTo, rand, regRef } from './ref.js';

const adapterOf = (U: Float32Array, S: Float32Array, Vt: Float32Array, m: number, r: number, n: number): SorsaAdapter => ({
  U: c.tensor(U, [m, r]),
  S: c.tensor(S, [r]),
  Vt: c.tensor(Vt, [r, n]),
});

/** Float32 arguments of the given shapes, argument j drawn from [-1, 1) with seed 31 · seed + j + 1. */
const argsOf = (seed: number, ...shapes: number[][]): c.Tensor[] => shapes.map((s, j) => c.tensor(randomData(count(s), seed * 31 + j + 1), s));

/** A float64 scalar, as a reference function of checkGrads returns it. */
const scalar = (v: number): Nd => ({ shape: [], data: Float64Array.of(v) });

/**
 * GRADCHECK_VERBOSE=1 prints a check's worst error as a fraction of its tolerance, as core's
 * gradient tests do, for calibrating k.
 */
function report({ worst }: CheckGradsReport, k: number): void {
  if (process.env.GRADCHECK_VERBOSE) console.log(`gradcheck worst ${worst.toFixed(4)} of tol (k=${k}) ${expect.getState().currentTestName}`);
}

forEachBackend('sorsa orthoRegularizer', () => {
  it('is the mean over the 2L matrices of the unsquared Frobenius norms (float64 reference)', async () => {
    // Two adapters at different depths, of different shapes and ranks, among other leaves.
    const specs = [
      { m: 6, r: 3, n: 5, seed: 1 },
      { m: 4, r: 2, n: 7, seed: 2 },
    ];
    const data = specs.map(({ m, r, n, seed }) => ({ m, r, n, U: rand(m * r, seed), S: rand(r, seed + 10), Vt: rand(r * n, seed + 20) }));
    const t = {
      layers: [{ attn: adapterOf(data[0].U, data[0].S, data[0].Vt, 6, 3, 5), bias: c.zeros([5]) }],
      head: { w: adapterOf(data[1].U, data[1].S, data[1].Vt, 4, 2, 7) },
      steps: 3,
    };
    const v = orthoRegularizer(t);
    expect(v.shape).toEqual([]);
    const want = regRef(data);
    const got = (await v.data())[0];
    expect(Math.abs(got - want)).toBeLessThanOrEqual(16 * 8 * EPS32 * (1 + want));
    // A lone adapter, and the empty tree (0).
    const one = orthoRegularizer(t.head.w);
    expect(Math.abs((await one.data())[0] - regRef([data[1]]))).toBeLessThanOrEqual(16 * 8 * EPS32 * (1 + want));
    const none = orthoRegularizer({ w: c.zeros([2, 2]) });
    expect(Array.from(await none.data())).toEqual([0]);
    c.tree.dispose([t, v, one, none]);
  });

  it('has the gradient of the float64 reference (central differences)', async () => {
    const [m, r, n] = [5, 3, 4];
    const ref = (U: Nd, _S: Nd, Vt: Nd): Nd => scalar(regRef([{ U: U.data, Vt: Vt.data, m, r, n }]));
    const xs = argsOf(3, [m, r], [r], [r, n]);
    report(await checkGrads((U, S, Vt) => orthoRegularizer({ a: { U, S, Vt } }), xs, { reference: ref, seed: 3, k: 64, normwise: true }), 64);
    // Two adapters sharing the mean.
    const ref2 = (U1: Nd, Vt1: Nd, U2: Nd, Vt2: Nd): Nd =>
      scalar(regRef([{ U: U1.data, Vt: Vt1.data, m, r, n }, { U: U2.data, Vt: Vt2.data, m: 4, r: 2, n: 6 }]));
    const xs2 = argsOf(4, [m, r], [r, n], [4, 2], [2, 6]);
    report(
      await checkGrads(
        (U1, Vt1, U2, Vt2) => orthoRegularizer([{ U: U1, S: c.ones([r]), Vt: Vt1 }, { U: U2, S: c.ones([2]), Vt: Vt2 }]),
        xs2,
        { reference: ref2, seed: 4, k: 64, normwise: true },
      ),
      64,
    );
    c.tree.dispose([xs, xs2]);
  });

  it('its gradient is differentiable again: the gradient in U against float64 U E / ‖E‖ (E = UᵀU - I)', async () => {
    // The regularizer of one adapter is (‖UᵀU - I‖ + ‖Vt Vtᵀ - I‖) / 2, so its gradient in U is U E / ‖E‖.
    const [m, r, n] = [5, 3, 4];
    const Vt = c.tensor(randomData(r * n, 90), [r, n]);
    const S = c.ones([r]);
    const gradRef = (U: Nd): Nd => {
      const E = new Float64Array(r * r);
      for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) {
        let acc = 0;
        for (let k = 0; k < m; k++) acc += U.data[k * r + i] * U.data[k * r + j];
        E[i * r + j] = acc - (i === j ? 1 : 0);
      }
      const nrm = Math.sqrt(E.reduce((a, v) => a + v * v, 0));
      const out = new Float64Array(m * r);
      for (let k = 0; k < m; k++) for (let i = 0; i < r; i++) {
        let acc = 0;
        for (let j = 0; j < r; j++) acc += U.data[k * r + j] * E[j * r + i];
        out[k * r + i] = acc / nrm;
      }
      return { shape: [m, r], data: out };
    };
    const f = (U: c.Tensor): c.Tensor => (c.grad((a: SorsaAdapter) => orthoRegularizer(a))({ U, S, Vt }) as SorsaAdapter).U;
    const xs = argsOf(91, [m, r]);
    report(await checkGrads(f, xs, { reference: gradRef, seed: 91, k: 256, normwise: true }), 256);
    c.tree.dispose([xs, Vt, S]);
  });

  it('at exactly orthonormal factors the value and gradient are 0, not NaN', async () => {
    const a = { U: c.tensor([1, 0, 0, 1, 0, 0], [3, 2]), S: c.ones([2]), Vt: c.tensor([0, 1, 0, 0, 0, 1], [2, 3]) };
    const v = orthoRegularizer(a);
    const g = c.grad((t: SorsaAdapter) => orthoRegularizer(t))(a) as SorsaAdapter;
    expect(Array.from(await v.data())).toEqual([0]);
    expect(Array.from(await g.U.data())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(await g.Vt.data())).toEqual([0, 0, 0, 0, 0, 0]);
    c.tree.dispose([a, v, g]);
  });

  it('property: orthonormal U and Vt (the kit\'s arb.adapter) give ~0', async () => {
    const size = fc.integer({ min: 1, max: 12 });
    await fc.assert(
      fc.asyncProperty(arb.adapter({ out: size, in: size, rank: fc.integer({ min: 1, max: 6 }) }), async ({ adapter, residual }) => {
        const [m, r] = adapter.U.shape;
        const n = adapter.Vt.shape[1];
        const v = orthoRegularizer(adapter);
        const got = (await v.data())[0];
        c.tree.dispose([adapter, residual, v]);
        // Each Gram entry is off by ~ (length + 1) eps (inputs rounded to float32, then the sum).
        expect(got).toBeGreaterThanOrEqual(0);
        expect(got).toBeLessThanOrEqual(4 * (Math.max(m, n) + 1) * r * EPS32);
      }),
      { numRuns: 25 },
    );
  });

  it('property: the regularizer is never negative and matches float64', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer(), fc.double({ min: 1e-3, max: 10, noNaN: true }), async (r, m, n, seed, size) => {
        const U = rand(m * r, seed, -size, size);
        const Vt = rand(r * n, seed + 1, -size, size);
        const a = adapterOf(U, rand(r, seed + 2), Vt, m, r, n);
        const v = orthoRegularizer(a);
        const got = (await v.data())[0];
        c.tree.dispose([a, v]);
        const want = regRef([{ U, Vt, m, r, n }]);
        expect(got).toBeGreaterThanOrEqual(0);
        expect(Math.abs(got - want)).toBeLessThanOrEqual(8 * (Math.max(m, n) + 2) * EPS32 * (1 + size * size * r * 2));
      }),
      { numRuns: 25 },
    );
  });

  it('many adapters (runs of ranks, several Gram launches and a chained mean): value and gradient against float64', async () => {
    // 25 adapters: Gram kernels take runs of up to 3 adapters of one rank, the mean up to 7 of their results.
    const ranks = [2, 2, 2, 2, 3, 3, 1, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 3];
    const data = ranks.map((r, a) => {
      const [m, n] = [3 + (a % 4), 2 + ((a * 3) % 5)];
      return { m, r, n, U: rand(m * r, 500 + a), Vt: rand(r * n, 600 + a) };
    });
    const t = data.map((d, a) => adapterOf(d.U, rand(d.r, 700 + a), d.Vt, d.m, d.r, d.n));
    const [v, g] = c.valueAndGrad((x: SorsaAdapter[]) => orthoRegularizer(x))(t);
    const want = regRef(data);
    expect(Math.abs((await v.data())[0] - want)).toBeLessThanOrEqual(16 * 8 * EPS32 * (1 + want));
    const L = data.length;
    for (const [a, d] of data.entries()) {
      // d/dU of ‖UᵀU - I‖ / 2L is U E / (L ‖E‖); d/dVt of ‖Vt Vtᵀ - I‖ / 2L is E Vt / (L ‖E‖).
      for (const side of ['U', 'Vt'] as const) {
        const M = side === 'U' ? d.U : d.Vt;
        const [rows, cols] = side === 'U' ? [d.m, d.r] : [d.r, d.n];
        const at = (k: number, i: number): number => (side === 'U' ? M[k * d.r + i] : M[i * d.n + k]);
        const K = side === 'U' ? d.m : d.n;
        const E = new Float64Array(d.r * d.r);
        for (let i = 0; i < d.r; i++) for (let j = 0; j < d.r; j++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += at(k, i) * at(k, j);
          E[i * d.r + j] = acc - (i === j ? 1 : 0);
        }
        const nrm = Math.sqrt(E.reduce((x, y) => x + y * y, 0));
        const ref = new Float64Array(rows * cols);
        for (let k = 0; k < K; k++) for (let i = 0; i < d.r; i++) {
          let acc = 0;
          for (let j = 0; j < d.r; j++) acc += at(k, j) * E[j * d.r + i];
          ref[side === 'U' ? k * d.r + i : i * d.n + k] = acc / (L * nrm);
        }
        const got = await (g[a] as SorsaAdapter)[side].data();
        const scale = Math.max(...ref.map(Math.abs));
        expect(closeTo(got, ref, () => 64 * (K + d.r) * EPS32 * (scale + 1e-3), `adapter ${a} ${side}`)).toEqual([]);
      }
    }
    c.tree.dispose([t, v, g]);
  });

  it('rejects malformed adapters, naming the path', () => {
    const bad = { blocks: [{ wq: { U: c.zeros([4, 2]), S: c.zeros([3]), Vt: c.zeros([2, 5]) } }] };
    expect(() => orthoRegularizer(bad)).toThrow(/orthoRegularizer: adapter "blocks.0.wq".S must be \[2\]/);
    c.tree.dispose(bad);
  });
});
