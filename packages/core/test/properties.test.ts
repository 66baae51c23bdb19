/**
 * Algebraic laws as fast-check properties, on every backend available here: broadcasting, view round
 * trips, reduction identities and matmul associativity. Shapes come from fast-check; values come from
 * the seeded generator in reference.ts (the seed is part of the property's input, so a failure
 * reproduces from fast-check's report). Set FC_SEED to replay a run, FC_RUNS for a longer search.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import {
  EPS32,
  absMatmulRef,
  broadcastShape,
  compare,
  count,
  mapRef,
  matmulRef,
  nd,
  randomData,
  reduceRef,
  transposeRef,
  type Nd,
} from './reference.js';

const RUNS = Number(process.env.FC_RUNS ?? 30);
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({
  numRuns,
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
});

const fmt = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Tensors made in one property run, disposed when it ends (pass or fail). */
class Scope {
  private readonly made: Tensor[] = [];
  keep<T extends Tensor>(t: T): T {
    this.made.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.made) t.dispose();
    this.made.length = 0;
  }
}

async function scoped<R>(body: (s: Scope) => Promise<R>): Promise<R> {
  const s = new Scope();
  try {
    return await body(s);
  } finally {
    s.dispose();
  }
}

/** A float32 tensor of seeded random values in [lo, hi) and its float64 twin. */
function rand(s: Scope, shape: number[], seed: number, lo = -1, hi = 1): [Tensor, Nd] {
  const data = randomData(count(shape), seed, lo, hi);
  return [s.keep(c.tensor(data, shape)), nd(shape, data)];
}

async function expectClose(t: Tensor, ref: Nd, tol: (i: number) => number): Promise<void> {
  const got = await t.data();
  const msg = compare(t.shape, got, ref, tol);
  expect(msg, msg ?? '').toBeNull();
}

const dim = fc.integer({ min: 1, max: 5 });
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const shapeOf = (minRank: number, maxRank: number): fc.Arbitrary<number[]> => fc.array(dim, { minLength: minRank, maxLength: maxRank });

/**
 * Two shapes that broadcast: `other` is `base` with some leading axes dropped and, per shared axis,
 * either the same dimension, a 1 in `other`, or a 1 in `base` (so both sides broadcast). The pair
 * may come back in either order.
 */
const compatiblePair: fc.Arbitrary<[number[], number[]]> = shapeOf(0, 4).chain((base) =>
  fc
    .record({
      drop: fc.integer({ min: 0, max: base.length }),
      modes: fc.array(fc.constantFrom('same', 'oneInOther', 'oneInBase'), { minLength: base.length, maxLength: base.length }),
      swap: fc.boolean(),
    })
    .map(({ drop, modes, swap }): [number[], number[]] => {
      const a = [...base];
      const b = base.slice(drop);
      b.forEach((_, i) => {
        const mode = modes[i + drop];
        if (mode === 'oneInOther') b[i] = 1;
        else if (mode === 'oneInBase') a[i + drop] = 1;
      });
      return swap ? [b, a] : [a, b];
    }),
);

/** Two shapes that do not broadcast: one aligned axis has different sizes, both above 1. */
const incompatiblePair: fc.Arbitrary<[number[], number[]]> = shapeOf(1, 4).chain((base) =>
  fc
    .record({
      drop: fc.integer({ min: 0, max: base.length - 1 }),
      at: fc.nat(),
      sizes: fc.uniqueArray(fc.integer({ min: 2, max: 5 }), { minLength: 2, maxLength: 2 }),
      swap: fc.boolean(),
    })
    .map(({ drop, at, sizes, swap }): [number[], number[]] => {
      const a = [...base];
      const b = base.slice(drop);
      const j = at % b.length;
      a[j + drop] = sizes[0];
      b[j] = sizes[1];
      return swap ? [b, a] : [a, b];
    }),
);

/** A permutation of 0..rank-1. */
const permOf = (rank: number): fc.Arbitrary<number[]> => {
  const axes = Array.from({ length: rank }, (_, i) => i);
  return fc.shuffledSubarray(axes, { minLength: rank, maxLength: rank });
};

/**
 * Another shape with the same number of elements as `shape`: its dimensions shuffled, runs of
 * neighbours multiplied together, 1s inserted, and possibly one dimension written as -1.
 */
const reshapeTarget = (shape: number[]): fc.Arbitrary<{ target: number[]; resolved: number[] }> =>
  fc
    .record({
      order: permOf(shape.length),
      merges: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
      ones: fc.array(fc.nat({ max: shape.length }), { maxLength: 2 }),
      free: fc.option(fc.nat(), { nil: undefined }),
    })
    .map(({ order, merges, ones, free }) => {
      const resolved: number[] = [];
      order.forEach((a, k) => {
        if (k > 0 && merges[k]) resolved[resolved.length - 1] *= shape[a];
        else resolved.push(shape[a]);
      });
      for (const at of ones) resolved.splice(Math.min(at, resolved.length), 0, 1);
      const target = [...resolved];
      if (free !== undefined && target.length > 0) target[free % target.length] = -1;
      return { target, resolved };
    });

/** Non-empty subset of the axes of a rank, each written as a positive or a negative axis. */
const axesOf = (rank: number): fc.Arbitrary<{ axes: number[]; written: number[] }> =>
  fc
    .record({
      pick: fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
      negative: fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
      first: fc.nat({ max: rank - 1 }),
    })
    .map(({ pick, negative, first }) => {
      const axes = pick.map((p, j) => (p || j === first ? j : -1)).filter((j) => j >= 0);
      return { axes, written: axes.map((j) => (negative[j] ? j - rank : j)) };
    });

const sumAbs = (x: Nd): number => x.data.reduce((a, b) => a + Math.abs(b), 0);

forEachBackend('properties: broadcasting', () => {
  it('add of broadcastable shapes has the NumPy shape, commutes exactly and matches float64', async () => {
    await fc.assert(
      fc.asyncProperty(compatiblePair, seed, async ([sa, sb], sd) =>
        scoped(async (s) => {
          const [a, ar] = rand(s, sa, sd, -4, 4);
          const [b, br] = rand(s, sb, sd + 1, -4, 4);
          const ab = s.keep(c.add(a, b));
          const ba = s.keep(c.add(b, a));
          expect(ab.shape).toEqual(broadcastShape(sa, sb));
          expect(ba.shape).toEqual(ab.shape);
          const [dab, dba] = [await ab.data(), await ba.data()];
          expect(Array.from(dba)).toEqual(Array.from(dab));
          const ref = mapRef([ar, br], (x, y) => x + y);
          // A float32 sum of float32 inputs is the exact sum rounded once: within eps/2 of it.
          await expectClose(ab, ref, (i) => EPS32 * Math.abs(ref.data[i]));
        }),
      ),
      params(),
    );
  });

  it('add of shapes that do not broadcast throws, naming add and both shapes', async () => {
    await fc.assert(
      fc.asyncProperty(incompatiblePair, async ([sa, sb]) =>
        scoped(async (s) => {
          expect(broadcastShape(sa, sb)).toBeNull();
          const a = s.keep(c.zeros(sa));
          const b = s.keep(c.ones(sb));
          let err: unknown;
          try {
            s.keep(c.add(a, b));
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(Error);
          const msg = (err as Error).message;
          expect(msg).toContain('add');
          expect(msg).toContain(fmt(sa));
          expect(msg).toContain(fmt(sb));
        }),
      ),
      params(),
    );
  });
});

forEachBackend('properties: views', () => {
  it('reshape to another shape of the same size and back gives identical data', async () => {
    const arb = shapeOf(0, 4).chain((shape) => fc.tuple(fc.constant(shape), reshapeTarget(shape), seed));
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, { target, resolved }, sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd);
          const y = s.keep(c.reshape(x, target));
          expect(y.shape).toEqual(resolved);
          const z = s.keep(c.reshape(y, shape));
          expect(z.shape).toEqual(shape);
          expect(Array.from(await y.data())).toEqual(Array.from(xr.data));
          expect(Array.from(await z.data())).toEqual(Array.from(xr.data));
        }),
      ),
      params(),
    );
  });

  it('transpose matches the reference, and transposing by the inverse permutation restores x', async () => {
    const arb = shapeOf(0, 4).chain((shape) => fc.tuple(fc.constant(shape), permOf(shape.length), seed));
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, perm, sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd);
          const inv = new Array<number>(perm.length);
          perm.forEach((a, j) => (inv[a] = j));
          const y = s.keep(c.transpose(x, perm));
          await expectClose(y, transposeRef(xr, perm), () => 0);
          const z = s.keep(c.transpose(y, inv));
          expect(z.shape).toEqual(shape);
          expect(Array.from(await z.data())).toEqual(Array.from(xr.data));
        }),
      ),
      params(),
    );
  });
});

forEachBackend('properties: reductions', () => {
  const shaped = shapeOf(1, 4).chain((shape) => fc.tuple(fc.constant(shape), axesOf(shape.length), seed));

  it('sum over all axes equals sum over axis 0 then the rest, within n eps sum|x|', async () => {
    await fc.assert(
      fc.asyncProperty(shaped, async ([shape, , sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd, -3, 3);
          const total = s.keep(c.sum(x));
          expect(total.shape).toEqual([]);
          const s0 = s.keep(c.sum(x, 0));
          expect(s0.shape).toEqual(shape.slice(1));
          const rest = s.keep(c.sum(s0));
          const [t, r] = [(await total.data())[0], (await rest.data())[0]];
          const n = xr.data.length;
          // Both orders are within gamma_(n-1) sum|x| of the exact sum (u = eps/2), so of each other
          // within (n-1) eps sum|x| to first order.
          expect(Math.abs(t - r)).toBeLessThanOrEqual(n * EPS32 * sumAbs(xr));
          const exact = xr.data.reduce((a, b) => a + b, 0);
          expect(Math.abs(t - exact)).toBeLessThanOrEqual(n * EPS32 * sumAbs(xr));
        }),
      ),
      params(),
    );
  });

  it('sum with keepdims has 1s on the reduced axes (positive or negative), and matches float64', async () => {
    await fc.assert(
      fc.asyncProperty(shaped, async ([shape, { axes, written }, sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd, -3, 3);
          const y = s.keep(c.sum(x, written, true));
          expect(y.shape).toEqual(shape.map((d, j) => (axes.includes(j) ? 1 : d)));
          const y2 = s.keep(c.sum(x, written));
          expect(y2.shape).toEqual(shape.filter((_, j) => !axes.includes(j)));
          const ref = reduceRef(xr, axes, (v) => v.reduce((a, b) => a + b, 0), true);
          const tols = reduceRef(xr, axes, (v) => v.length * EPS32 * v.reduce((a, b) => a + Math.abs(b), 0), true).data;
          await expectClose(y, ref, (i) => tols[i]);
          expect(Array.from(await y2.data())).toEqual(Array.from(await y.data()));
        }),
      ),
      params(),
    );
  });

  it('max is >= every element and equal to one of them, exactly (over all axes and over some)', async () => {
    await fc.assert(
      fc.asyncProperty(shaped, async ([shape, { axes, written }, sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd, -3, 3);
          const m = (await s.keep(c.max(x)).data())[0];
          const vals = Array.from(xr.data);
          for (const v of vals) expect(m).toBeGreaterThanOrEqual(v);
          expect(vals).toContain(m);
          const mAxes = s.keep(c.max(x, written, true));
          const ref = reduceRef(xr, axes, (v) => Math.max(...v), true);
          await expectClose(mAxes, ref, () => 0);
        }),
      ),
      params(),
    );
  });

  it('mean times the count equals sum, within n eps sum|x|', async () => {
    await fc.assert(
      fc.asyncProperty(shaped, async ([shape, { axes, written }, sd]) =>
        scoped(async (s) => {
          const [x, xr] = rand(s, shape, sd, -3, 3);
          const n = count(axes.map((j) => shape[j]));
          const m = await s.keep(c.mean(x, written)).data();
          const sm = await s.keep(c.sum(x, written)).data();
          const tols = reduceRef(xr, axes, (v) => v.length * EPS32 * v.reduce((a, b) => a + Math.abs(b), 0)).data;
          expect(m.length).toBe(sm.length);
          for (let i = 0; i < m.length; i++) expect(Math.abs(m[i] * n - sm[i])).toBeLessThanOrEqual(tols[i]);
          const all = (await s.keep(c.mean(x)).data())[0] * xr.data.length;
          const total = (await s.keep(c.sum(x)).data())[0];
          expect(Math.abs(all - total)).toBeLessThanOrEqual(xr.data.length * EPS32 * sumAbs(xr));
        }),
      ),
      params(),
    );
  });

  it('max <= logsumexp <= max + log(n), over all axes and over some', async () => {
    await fc.assert(
      fc.asyncProperty(shaped, async ([shape, { axes, written }, sd]) =>
        scoped(async (s) => {
          const [x] = rand(s, shape, sd, -20, 20);
          const check = (lse: ArrayLike<number>, mx: ArrayLike<number>, n: number): void => {
            expect(lse.length).toBe(mx.length);
            for (let i = 0; i < lse.length; i++) {
              const tol = (n + 8) * EPS32 * Math.max(1, Math.abs(mx[i]));
              expect(lse[i]).toBeGreaterThanOrEqual(mx[i] - tol);
              expect(lse[i]).toBeLessThanOrEqual(mx[i] + Math.log(n) + tol);
            }
          };
          check(await s.keep(c.logsumexp(x)).data(), await s.keep(c.max(x)).data(), x.size);
          const n = count(axes.map((j) => shape[j]));
          check(await s.keep(c.logsumexp(x, written)).data(), await s.keep(c.max(x, written)).data(), n);
        }),
      ),
      params(),
    );
  });
});

forEachBackend('properties: matmul', () => {
  const mdim = fc.integer({ min: 1, max: 12 });

  it('(AB)C equals A(BC) within 2 (k1 + k2 + 2) eps (|A||B||C|)_ij', async () => {
    await fc.assert(
      fc.asyncProperty(mdim, mdim, mdim, mdim, seed, async (m, k1, k2, n, sd) =>
        scoped(async (s) => {
          const [a, ar] = rand(s, [m, k1], sd);
          const [b, br] = rand(s, [k1, k2], sd + 1);
          const [cc, cr] = rand(s, [k2, n], sd + 2);
          const left = s.keep(c.matmul(s.keep(c.matmul(a, b)), cc));
          const right = s.keep(c.matmul(a, s.keep(c.matmul(b, cc))));
          expect(left.shape).toEqual([m, n]);
          expect(right.shape).toEqual([m, n]);
          const scale = matmulRef(absMatmulRef(ar, br), nd(cr.shape, cr.data.map(Math.abs)));
          const want = nd([m, n], await right.data());
          await expectClose(left, want, (i) => 2 * (k1 + k2 + 2) * EPS32 * scale.data[i]);
        }),
      ),
      params(),
    );
  });

  it('matmul matches the float64 triple loop within (k + 2) eps (|A||B|)_ij', async () => {
    await fc.assert(
      fc.asyncProperty(mdim, mdim, mdim, seed, async (m, k, n, sd) =>
        scoped(async (s) => {
          const [a, ar] = rand(s, [m, k], sd);
          const [b, br] = rand(s, [k, n], sd + 1);
          const scale = absMatmulRef(ar, br);
          await expectClose(s.keep(c.matmul(a, b)), matmulRef(ar, br), (i) => (k + 2) * EPS32 * scale.data[i]);
        }),
      ),
      params(),
    );
  });

  it('matmul(A, B, { transposeB: true }) equals matmul(A, transpose(B))', async () => {
    await fc.assert(
      fc.asyncProperty(mdim, mdim, mdim, seed, async (m, k, n, sd) =>
        scoped(async (s) => {
          const [a, ar] = rand(s, [m, k], sd);
          const [b, br] = rand(s, [n, k], sd + 1);
          const viaFlag = s.keep(c.matmul(a, b, { transposeB: true }));
          const viaCopy = s.keep(c.matmul(a, s.keep(c.transpose(b))));
          expect(viaFlag.shape).toEqual([m, n]);
          const scale = absMatmulRef(ar, transposeRef(br, [1, 0]));
          await expectClose(viaFlag, nd([m, n], await viaCopy.data()), (i) => 2 * (k + 2) * EPS32 * scale.data[i]);
        }),
      ),
      params(),
    );
  });
});
