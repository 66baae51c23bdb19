/**
 * The arbitraries produce what they promise: spectra checked against an independent float64 SVD
 * (ml-matrix) of the float32 matrix, orthonormality in float64, adapter and tree structure, and
 * shrinking toward small shapes (a property that always fails shrinks to the smallest case).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import * as c from '@sorsajs/core';
import { EPS32, arb, assertOrthonormal, type ParamTree, type Spectrum } from '@sorsajs/testing';

const RUNS = Number(process.env.FC_RUNS ?? 25);

beforeAll(async () => {
  await c.init({ backend: 'cpu' });
});

/** Singular values of a row-major float32 matrix, descending, by ml-matrix in float64. */
function svd64(data: Float32Array, m: number, n: number): number[] {
  const A = new Matrix(Array.from({ length: m }, (_, i) => Array.from(data.subarray(i * n, (i + 1) * n))));
  const s = new SingularValueDecomposition(A, { computeLeftSingularVectors: false, computeRightSingularVectors: false, autoTranspose: true }).diagonal;
  return s.slice(0, Math.min(m, n)).sort((a, b) => b - a);
}

/** The shrunk counterexample of a property that always fails. */
function smallest<T>(a: fc.Arbitrary<T>): T {
  const out = fc.check(fc.property(a, () => false), { seed: 42, numRuns: 20 });
  if (!out.failed || !out.counterexample) throw new Error('expected the property to fail');
  return out.counterexample[0] as T;
}

describe('arb.matrix', () => {
  const families: Spectrum[] = ['random', 'graded', 'geometric', 'clustered', 'repeated', 'rankDeficient', 'zero'];
  for (const spectrum of families) {
    it(`${spectrum}: the returned singular values are the float64 SVD's, to float32 rounding`, async () => {
      await fc.assert(
        fc.asyncProperty(arb.matrix({ spectrum, cond: 1e3 }), async ({ matrix, data, singularValues }) => {
          const [m, n] = matrix.shape;
          expect(Array.from(await matrix.data())).toEqual(Array.from(data));
          expect(singularValues.length).toBe(Math.min(m, n));
          for (let i = 1; i < singularValues.length; i++) expect(singularValues[i]).toBeLessThanOrEqual(singularValues[i - 1]);
          const s = svd64(data, m, n);
          let fro = 0;
          for (const v of data) fro += v * v;
          // Weyl: rounding to float32 moves each singular value by at most the rounding's norm, and
          // the float64 SVD adds its own 1e-15-level error.
          const tol = EPS32 * Math.sqrt(fro) + 1e-12;
          s.forEach((v, i) => expect(Math.abs(v - singularValues[i]), `σ${i} of ${m}x${n}: svd ${v}, built ${singularValues[i]}`).toBeLessThanOrEqual(tol));
          if (spectrum === 'zero') expect(data.every((v) => v === 0)).toBe(true);
          if (spectrum === 'geometric' && singularValues.length > 1) expect(singularValues[0] / singularValues.at(-1)!).toBeCloseTo(1e3, 6);
          if (spectrum === 'rankDeficient') expect(singularValues.at(-1)).toBe(0);
          matrix.dispose();
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('fixed sizes are kept; it shrinks toward 1 x 1; an unknown family is refused', () => {
    const fixed = fc.sample(arb.matrix({ rows: 5, cols: 3 }), 3);
    fixed.forEach((x) => expect(x.matrix.shape).toEqual([5, 3]));
    const small = smallest(arb.matrix());
    expect(small.matrix.shape).toEqual([1, 1]);
    expect(() => arb.matrix({ spectrum: 'bogus' as Spectrum })).toThrow("unknown spectrum 'bogus'");
  });
});

describe('arb.orthonormal, arb.adapter', () => {
  it('orthonormal columns when tall, rows when wide', async () => {
    for (const [m, n] of [[6, 2], [2, 6], [4, 4], [1, 1]]) {
      await fc.assert(
        fc.asyncProperty(arb.orthonormal(m, n), async (Q) => {
          expect(Q.shape).toEqual([m, n]);
          await assertOrthonormal(Q, { tol: 4 * EPS32 * Math.max(m, n) });
          Q.dispose();
        }),
        { numRuns: 10 },
      );
    }
    expect(() => arb.orthonormal(0, 2)).toThrow('arb.orthonormal: rows and cols must be positive integers, got 0 x 2');
  });

  it('adapters: U [out, r] and Vt [r, in] orthonormal, S positive and descending, residual [out, in]; shrinks toward 1 x 1', async () => {
    await fc.assert(
      fc.asyncProperty(arb.adapter(), async ({ adapter, residual }) => {
        const [out, r] = adapter.U.shape;
        const inn = adapter.Vt.shape[1];
        expect(r).toBeLessThanOrEqual(Math.min(out, inn));
        expect(adapter.S.shape).toEqual([r]);
        expect(adapter.Vt.shape).toEqual([r, inn]);
        expect(residual.shape).toEqual([out, inn]);
        await assertOrthonormal(adapter.U);
        await assertOrthonormal(adapter.Vt);
        const s = await adapter.S.data();
        for (let i = 0; i < r; i++) {
          expect(s[i]).toBeGreaterThan(0);
          if (i > 0) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
        }
        c.tree.dispose([adapter, residual]);
      }),
      { numRuns: RUNS },
    );
    const small = smallest(arb.adapter());
    expect(small.residual.shape).toEqual([1, 1]);
  });
});

describe('arb.tensor, arb.paramTree, arb.key', () => {
  it('tensors respect shape, dtype and range, and shrink to a scalar 0', async () => {
    await fc.assert(
      fc.asyncProperty(arb.tensor({ min: -2, max: 3 }), async (t) => {
        expect(t.dtype).toBe('float32');
        for (const v of await t.data()) {
          expect(v).toBeGreaterThanOrEqual(-2);
          expect(v).toBeLessThanOrEqual(3);
        }
        t.dispose();
      }),
      { numRuns: RUNS },
    );
    for (const t of fc.sample(arb.tensor({ shape: [2, 3], dtype: 'int32', min: 0, max: 5 }), 5)) {
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('int32');
      expect((await t.data()).every((v) => Number.isInteger(v) && v >= 0 && v <= 5)).toBe(true);
    }
    const small = smallest(arb.tensor());
    expect(small.shape).toEqual([]);
    expect(Array.from(await small.data())).toEqual([0]);
  });

  it('param trees nest objects and arrays of tensors and shrink to one tensor', () => {
    const leaves = (t: ParamTree): number => (t instanceof c.Tensor ? 1 : Object.values(t).reduce((a: number, x) => a + leaves(x), 0));
    const trees = fc.sample(arb.paramTree({ depth: 3 }), 60);
    // Both kinds of node occur, nested, and every leaf is a tensor.
    const kinds = new Set<string>();
    const walk = (t: ParamTree, depth: number): void => {
      if (t instanceof c.Tensor) return;
      kinds.add(Array.isArray(t) ? 'array' : 'object');
      if (depth > 0) kinds.add('nested');
      Object.values(t).forEach((x) => {
        expect(x instanceof c.Tensor || typeof x === 'object').toBe(true);
        walk(x, depth + 1);
      });
    };
    trees.forEach((t) => walk(t, 0));
    expect([...kinds].sort()).toEqual(['array', 'nested', 'object']);
    trees.forEach((t) => expect(leaves(t)).toBeGreaterThan(0));
    expect(smallest(arb.paramTree())).toBeInstanceOf(c.Tensor);
  });

  it('keys are random.key(seed) and shrink to seed 0', async () => {
    const k = smallest(arb.key());
    expect(c.random.keyData(k)).toEqual(c.random.keyData(c.random.key(0)));
    const draws = fc.sample(arb.key(), 5).map((x) => c.random.keyData(x).join(','));
    expect(new Set(draws).size).toBeGreaterThan(1);
  });
});
