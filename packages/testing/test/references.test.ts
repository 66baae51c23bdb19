/**
 * The float64 references matmulReference and adamwReference. The matmul against ml-matrix's (an
 * independent implementation) on integer matrices, where float64 is exact, and a product worked by
 * hand; AdamW against closed forms: a constant gradient moves each element by lr · sign(g) per step
 * (the bias corrections make m̂ = g and v̂ = g² exactly), a zero gradient only decays, two steps
 * written out in full, and a skipped step that only counts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Matrix } from 'ml-matrix';
import { adamwReference, matmulReference } from '@sorsajs/testing';

describe('matmulReference', () => {
  it('a product worked by hand, and ml-matrix’s product of integer matrices exactly', () => {
    // [[1, 2, 3], [4, 5, 6]] · [[7, 8], [9, 10], [11, 12]]
    expect(Array.from(matmulReference([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], 2, 3, 2))).toEqual([58, 64, 139, 154]);
    const dims = fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 6 }));
    const ints = (n: number) => fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: n, maxLength: n });
    fc.assert(
      fc.property(dims.chain(([m, k, n]) => fc.tuple(fc.constant([m, k, n]), ints(m * k), ints(k * n))), ([[m, k, n], a, b]) => {
        const got = matmulReference(a, b, m, k, n);
        const rows = (x: number[], r: number, c: number) => Array.from({ length: r }, (_, i) => x.slice(i * c, (i + 1) * c));
        const want = k === 0 ? new Array<number>(m * n).fill(0) : new Matrix(rows(a, m, k)).mmul(new Matrix(rows(b, k, n))).to1DArray();
        expect(Array.from(got)).toEqual(want);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses data of the wrong length, naming the sizes', () => {
    expect(() => matmulReference([1, 2, 3], [1, 2], 2, 2, 1)).toThrow('matmulReference: a has 3 values, a 2 x 2 matrix needs 4');
    expect(() => matmulReference([1, 2], [1, 2, 3], 1, 2, 2)).toThrow('matmulReference: b has 3 values, a 2 x 2 matrix needs 4');
    expect(() => matmulReference([], [], 1.5, 0, 1)).toThrow(/non-negative integers/);
  });
});

describe('adamwReference', () => {
  it('a constant gradient moves each element by lr · sign(g) per step (eps 0, no decay)', () => {
    const ref = adamwReference({ lr: 0.01, eps: 0, weightDecay: 0 });
    const p = Float64Array.of(0.5, -2, 3);
    const g = [3e-4, -7, 2];
    for (let t = 1; t <= 5; t++) {
      const scale = ref.step([p], [g])[0];
      [0.5 - 0.01 * t, -2 + 0.01 * t, 3 - 0.01 * t].forEach((want, i) => expect(Math.abs(p[i] - want)).toBeLessThan(1e-14));
      // With a gradient of one sign, |g| and g give the same moments: the scale is the step.
      scale.forEach((s) => expect(Math.abs(s - 0.01)).toBeLessThan(1e-15));
    }
    expect(ref.state().t).toBe(5);
  });

  it('a zero gradient only decays, p (1 - lr wd)^t, and only the parameters marked to', () => {
    const ref = adamwReference({ lr: 0.1, weightDecay: 0.5, decay: [true, false] });
    const a = Float64Array.of(1, -4);
    const b = Float64Array.of(2);
    for (let t = 1; t <= 3; t++) {
      const [sa, sb] = ref.step([a, b], [[0, 0], [0]]);
      expect(Math.abs(a[0] - 0.95 ** t)).toBeLessThan(1e-15);
      expect(Math.abs(a[1] + 4 * 0.95 ** t)).toBeLessThan(1e-14);
      expect(b[0]).toBe(2);
      // The decay's own scale, lr · wd · |p| before the step.
      expect(Math.abs(sa[1] - 0.05 * 4 * 0.95 ** (t - 1))).toBeLessThan(1e-15);
      expect(sb[0]).toBe(0);
    }
  });

  it('two steps written out: PyTorch’s AdamW with a schedule', () => {
    const [b1, b2, eps, wd] = [0.8, 0.99, 1e-3, 0.2];
    const lrs: number[] = [];
    const ref = adamwReference({ lr: (s) => (lrs.push(s), 0.1 * (s + 1)), b1, b2, eps, weightDecay: wd });
    const p = Float64Array.of(1.5);
    const [g1, g2] = [0.3, -0.05];
    ref.step([p], [[g1]]);
    ref.step([p], [[g2]]);
    expect(lrs).toEqual([0, 1]);
    // Step 1 (lr 0.1): m̂ = g1, v̂ = g1².
    const p1 = 1.5 * (1 - 0.1 * wd) - (0.1 * g1) / (Math.abs(g1) + eps);
    // Step 2 (lr 0.2): m = (1 - b1)(b1 g1 + g2), v = (1 - b2)(b2 g1² + g2²), bias corrections 1 - b².
    const mHat = ((1 - b1) * (b1 * g1 + g2)) / (1 - b1 ** 2);
    const vHat = ((1 - b2) * (b2 * g1 ** 2 + g2 ** 2)) / (1 - b2 ** 2);
    const p2 = p1 * (1 - 0.2 * wd) - (0.2 * mHat) / (Math.sqrt(vHat) + eps);
    expect(Math.abs(p[0] - p2)).toBeLessThan(1e-15);
    const { m, v, mAbs, t } = ref.state();
    expect(t).toBe(2);
    expect(Math.abs(m[0][0] - (1 - b1) * (b1 * g1 + g2))).toBeLessThan(1e-16);
    expect(Math.abs(v[0][0] - (1 - b2) * (b2 * g1 ** 2 + g2 ** 2))).toBeLessThan(1e-17);
    expect(Math.abs(mAbs[0][0] - (1 - b1) * (b1 * Math.abs(g1) + Math.abs(g2)))).toBeLessThan(1e-16);
  });

  it('a skipped step leaves parameters and moments, and counts: the next step is the second', () => {
    const skipped = adamwReference({ lr: (s) => 0.1 * (s + 1), b1: 0.5, b2: 0.9, eps: 0, weightDecay: 0 });
    const p = Float64Array.of(1);
    skipped.skip();
    expect(skipped.state().t).toBe(1);
    expect(p[0]).toBe(1);
    skipped.step([p], [[0.4]]);
    // t = 2, lr 0.2: m̂ = (1 - b1) g / (1 - b1²), v̂ = (1 - b2) g² / (1 - b2²).
    const mHat = (0.5 * 0.4) / (1 - 0.25);
    const vHat = (0.1 * 0.16) / (1 - 0.81);
    expect(Math.abs(p[0] - (1 - (0.2 * mHat) / Math.sqrt(vHat)))).toBeLessThan(1e-15);
    expect(skipped.state().t).toBe(2);
  });

  it('refuses gradients that do not match the parameters', () => {
    const ref = adamwReference({ lr: 0.1 });
    expect(() => ref.step([new Float64Array(2)], [])).toThrow('adamwReference: 1 parameters, 0 gradients');
    expect(() => ref.step([new Float64Array(2)], [[1]])).toThrow('adamwReference: parameter 0 has 2 values, its gradient 1');
    ref.step([new Float64Array(2)], [[1, 2]]);
    expect(() => ref.step([new Float64Array(3)], [[1, 2, 3]])).toThrow('adamwReference: the parameters changed shape since the first step');
  });
});
