/**
 * The Jacobi SVD's plan (jacobi-plan.ts) and inner schedules (jacobi-inner.ts), checked as laws with
 * fast-check over shapes and block sizes: the sizes cover the matrix, pairs are padded as the inner
 * kernels need, every pair of blocks meets exactly once per sweep and the blocks are home again at
 * the end of it, and every inner schedule is a sequence of perfect matchings meeting each pair of
 * columns it must exactly once. Host-side planning only: no kernels run.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planFor, stallTolFor } from '../src/jacobi-plan.js';
import { innerSchedule } from '../src/jacobi-inner.js';

/** The unordered pairs a schedule of matchings meets, counted; throws on a row that is not a perfect matching. */
function meetings(rows: number, width: number, partner: (row: number, i: number) => number): Map<string, number> {
  const met = new Map<string, number>();
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < width; i++) {
      const j = partner(r, i);
      if (!(j >= 0 && j < width && j !== i && partner(r, j) === i)) throw new Error(`row ${r}: position ${i} pairs with ${j}, not a perfect matching`);
      if (i < j) met.set(`${i},${j}`, (met.get(`${i},${j}`) ?? 0) + 1);
    }
  }
  return met;
}

describe('Jacobi plan', () => {
  const shape = fc
    .record({ n: fc.integer({ min: 1, max: 300 }), extra: fc.integer({ min: 0, max: 200 }), bq: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }), tiled: fc.boolean() })
    .map(({ n, extra, bq, tiled }) => ({ m: n + extra, n, blockSize: bq === undefined ? undefined : 4 * bq, tiled }));

  it('covers the matrix, pads pairs for the SIMD quads, and keeps the work matrix indexable', () => {
    fc.assert(
      fc.property(shape, ({ m, n, blockSize, tiled }) => {
        const p = planFor(m, n, { blockSize }, tiled, `[${m},${n}]`);
        expect(p.b % 4).toBe(0);
        expect(p.w).toBe(2 * p.b);
        expect(p.P * p.w).toBeGreaterThanOrEqual(n);
        expect((p.P - 1) * p.w).toBeLessThan(n);
        expect(p.Pp).toBe(p.P <= 2 ? p.P : 4 * Math.ceil(p.P / 4));
        expect(p.Np).toBe(p.nb * p.b);
        expect(p.mp % 4).toBe(0);
        expect(p.mp).toBeGreaterThanOrEqual(m);
        expect(p.Mp * p.Np).toBeLessThan(2 ** 24);
        expect(p.chunks * p.QC).toBeGreaterThanOrEqual(p.QA);
        expect(p.lanesOnRows).toBe(tiled && p.P === 1);
        expect(p.tol).toBeCloseTo(Math.sqrt(m) * 2 ** -23, 15);
      }),
      { numRuns: 300 },
    );
  });

  it('pairs every two blocks exactly once a sweep, and brings every block home at its end', () => {
    fc.assert(
      fc.property(shape, ({ m, n, blockSize, tiled }) => {
        const { nb, BP, ids } = planFor(m, n, { blockSize }, tiled, `[${m},${n}]`);
        // BP row st: the block at each position before outer step st (a permutation); step st pairs
        // the blocks at positions 2K and 2K + 1.
        const blockMet = new Map<string, number>();
        for (let st = 0; st < nb - 1; st++) {
          const row = Array.from(BP.subarray(st * nb, (st + 1) * nb));
          expect([...row].sort((x, y) => x - y)).toEqual(Array.from({ length: nb }, (_, i) => i));
          for (let K = 0; K < nb / 2; K++) {
            const [x, y] = [row[2 * K], row[2 * K + 1]].sort((u, v) => u - v);
            blockMet.set(`${x},${y}`, (blockMet.get(`${x},${y}`) ?? 0) + 1);
          }
        }
        expect(blockMet.size).toBe((nb * (nb - 1)) / 2);
        for (const count of blockMet.values()) expect(count).toBe(1);
        // After the last outer step every block is back at its own position (the next sweep starts there).
        if (nb > 2) expect(Array.from(ids.subarray((nb - 2) * nb, (nb - 1) * nb))).toEqual(Array.from({ length: nb }, (_, i) => i));
      }),
      { numRuns: 200 },
    );
  });

  it('inner schedules: the full one meets every pair of a block pair\'s columns once, the cross one every pair across the two blocks once', () => {
    for (let b = 4; b <= 48; b += 4) {
      const w = 2 * b;
      const { full, cross } = innerSchedule(b);
      const all = meetings(w - 1, w, (r, i) => full[r * w + i]);
      expect(all.size).toBe((w * (w - 1)) / 2);
      for (const count of all.values()) expect(count).toBe(1);
      const across = meetings(b, w, (r, i) => cross[r * w + i]);
      expect(across.size).toBe(b * b);
      for (const [key, count] of across) {
        const [i, j] = key.split(',').map(Number);
        expect(i < b && j >= b, `cross pair ${key}`).toBe(true);
        expect(count).toBe(1);
      }
    }
  });

  it('ends the iteration at tol when tol is loose, at 4 sqrt(m) eps (the rounding floor\'s band) for the default, at 4 tol below the floor', () => {
    const eps = 2 ** -23;
    // m = 256: the floor sqrt(m) eps is 16 eps, its band 64 eps.
    expect(stallTolFor(16 * eps, 256)).toBe(64 * eps);
    expect(stallTolFor(1e-3, 256)).toBe(1e-3);
    expect(stallTolFor(32 * eps, 256)).toBe(64 * eps);
    expect(stallTolFor(eps, 256)).toBe(4 * eps);
    expect(planFor(256, 256, {}, true, '[256,256]').stallTol).toBe(64 * eps);
  });

  it('names the bad option and its value', () => {
    expect(() => planFor(10, 10, { blockSize: 6 }, true, '[10,10]')).toThrow(/blockSize must be a positive multiple of 4, got 6/);
    expect(() => planFor(10, 10, { maxSweeps: 1.5 }, true, '[10,10]')).toThrow(/maxSweeps must be a non-negative integer, got 1.5/);
    expect(() => planFor(10, 10, { tol: -1 }, true, '[10,10]')).toThrow(/tol must be positive, got -1/);
    expect(() => planFor(5000, 4000, {}, true, '[5000,4000]')).toThrow(/a \[5000,4000\] matrix needs a .* work matrix, over 2\^24 elements/);
  });
});
