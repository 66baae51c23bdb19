/**
 * svdReference: on matrices with known singular values (withSpectrum: U diag(s) Vᵀ built in
 * float64), tall, wide, square, rank-deficient and zero, it returns those values in descending order,
 * orthonormal singular vectors, and factors whose product is the matrix, all to float64 rounding.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { orthonormalColumns, subspaceSine, svdReference, withSpectrum } from '@sorsajs/testing';

const EPS64 = 2 ** -52;

/** max |A - Σ_j S[j] u_j v_jᵀ| over the entries. */
function reconstructionError(a: ArrayLike<number>, m: number, n: number, { U, S, V }: ReturnType<typeof svdReference>): number {
  let worst = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < S.length; k++) acc += S[k] * U[k][i] * V[k][j];
      worst = Math.max(worst, Math.abs(acc - a[i * n + j]));
    }
  return worst;
}

/** max |⟨x_i, x_j⟩ - δ_ij| over the rows given (those of nonzero singular values). */
function orthonormalityError(rows: number[][]): number {
  let worst = 0;
  for (let i = 0; i < rows.length; i++)
    for (let j = 0; j < rows.length; j++) {
      let d = 0;
      for (let t = 0; t < rows[i].length; t++) d += rows[i][t] * rows[j][t];
      worst = Math.max(worst, Math.abs(d - (i === j ? 1 : 0)));
    }
  return worst;
}

describe('svdReference', () => {
  it('gives the known singular values, descending, with orthonormal vectors whose product is the matrix (any shape)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.double({ min: 1e-3, max: 10, noNaN: true }), { minLength: 9, maxLength: 9 }),
        (m, n, seed, pool) => {
          const k = Math.min(m, n);
          const s = pool.slice(0, k).sort((x, y) => y - x);
          const a = withSpectrum(m, n, s, seed);
          const r = svdReference(a, m, n);
          expect(r.S).toHaveLength(k);
          expect(r.U).toHaveLength(k);
          expect(r.V).toHaveLength(k);
          r.U.forEach((u) => expect(u).toHaveLength(m));
          r.V.forEach((v) => expect(v).toHaveLength(n));
          // Backward stable: errors are a modest multiple of EPS64 · ‖A‖ (‖A‖₂ = s[0]).
          const tol = 64 * Math.max(m, n) * EPS64 * s[0];
          r.S.forEach((v, j) => expect(Math.abs(v - s[j]), `S[${j}]`).toBeLessThanOrEqual(tol));
          expect(reconstructionError(a, m, n, r)).toBeLessThanOrEqual(tol);
          // Vectors are as accurate as the gaps allow: s[j] ≥ 1e-3 and gaps may be tiny, so judge the
          // bases as a whole (the rows are orthonormal whatever the gaps).
          expect(orthonormalityError(r.U)).toBeLessThanOrEqual(1e-10);
          expect(orthonormalityError(r.V)).toBeLessThanOrEqual(1e-10);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a rank-deficient matrix: the missing singular values are 0, the product is still the matrix', () => {
    const [m, n] = [7, 5];
    const a = withSpectrum(m, n, [3, 2], 11);
    const r = svdReference(a, m, n);
    expect(r.S).toHaveLength(5);
    expect(Math.abs(r.S[0] - 3)).toBeLessThan(1e-13);
    expect(Math.abs(r.S[1] - 2)).toBeLessThan(1e-13);
    for (const v of r.S.slice(2)) expect(v).toBeLessThan(1e-13);
    expect(reconstructionError(a, m, n, r)).toBeLessThan(1e-13);
    expect(orthonormalityError(r.V)).toBeLessThan(1e-12);
    // The wide transpose has the same singular values.
    const t = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
    const rt = svdReference(t, n, m);
    rt.S.forEach((v, j) => expect(Math.abs(v - r.S[j])).toBeLessThan(1e-13));
    expect(reconstructionError(t, n, m, rt)).toBeLessThan(1e-13);
  });

  it('the zero matrix: singular values 0, U zero vectors, V orthonormal', () => {
    const r = svdReference(new Float64Array(12), 4, 3);
    expect(r.S).toEqual([0, 0, 0]);
    for (const u of r.U) expect(u).toEqual([0, 0, 0, 0]);
    expect(orthonormalityError(r.V)).toBe(0);
  });

  it('a 1 x 1 and a known 2 x 2', () => {
    expect(svdReference([-2.5], 1, 1).S).toEqual([2.5]);
    // [[3, 0], [4, 5]] has singular values √45 and √5.
    const r = svdReference([3, 0, 4, 5], 2, 2);
    expect(Math.abs(r.S[0] - Math.sqrt(45))).toBeLessThan(1e-14);
    expect(Math.abs(r.S[1] - Math.sqrt(5))).toBeLessThan(1e-14);
  });

  it('refuses data of the wrong length, naming the sizes', () => {
    expect(() => svdReference([1, 2, 3], 2, 2)).toThrow('svdReference: a has 3 values, a 2 x 2 matrix needs 4');
    expect(() => svdReference([1, 2], 1.5, 2)).toThrow(/non-negative integers/);
  });
});

describe('subspaceSine', () => {
  it('is the sine of the largest principal angle: k columns each turned by its own θ_j out of span(ref) give max sin θ_j', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.double({ min: 0, max: Math.PI / 2, noNaN: true }), { minLength: 4, maxLength: 4 }),
        fc.boolean(),
        (k, seed, thetas, float32) => {
          const m = 2 * k + 3;
          // 2k orthonormal columns: ref = the first k, the turned ones leave along the other k.
          const cols = orthonormalColumns(m, 2 * k, seed);
          const ref = cols.slice(0, k);
          const U = new Float64Array(m * k);
          for (let j = 0; j < k; j++)
            for (let r = 0; r < m; r++) U[r * k + j] = Math.cos(thetas[j]) * cols[j][r] + Math.sin(thetas[j]) * cols[k + j][r];
          const want = Math.max(...thetas.slice(0, k).map(Math.sin));
          const got = subspaceSine(ref, float32 ? Float32Array.from(U) : U, m, k);
          // Float32 U rounds each value by 2^-24 relative: the sine moves by about that times sqrt(m k).
          const tol = float32 ? 8 * Math.sqrt(m * k) * 2 ** -24 : 1e-12;
          expect(Math.abs(got - want)).toBeLessThanOrEqual(tol);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('does not depend on the basis chosen for span(U): scaled and mixed columns give the same sine', () => {
    const m = 9;
    const cols = orthonormalColumns(m, 4, 3);
    const ref = cols.slice(0, 2);
    const t = 0.3;
    // span{cos t c0 + sin t c2, c1}, written as the columns (2 (cos t c0 + sin t c2) + c1, -5 c1).
    const U = new Float64Array(m * 2);
    for (let r = 0; r < m; r++) {
      U[r * 2] = 2 * (Math.cos(t) * cols[0][r] + Math.sin(t) * cols[2][r]) + cols[1][r];
      U[r * 2 + 1] = -5 * cols[1][r];
    }
    expect(subspaceSine(ref, U, m, 2)).toBeCloseTo(Math.sin(t), 12);
  });

  it('names the bad argument', () => {
    expect(() => subspaceSine([new Float64Array(3)], new Float64Array(8), 4, 2)).toThrow(/subspaceSine: ref must be columns of length m = 4/);
    expect(() => subspaceSine([new Float64Array(4)], new Float64Array(7), 4, 2)).toThrow(/subspaceSine: U must hold m x k = 4 x 2 = 8 values, got 7/);
  });
});
