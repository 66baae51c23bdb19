/**
 * The QR path's triangular solve (jacobi-solve.ts) against a float64 forward substitution written
 * here, on every backend available: Y = X⁻¹ U diag(S) for lower-triangular X at sizes of one block
 * (5), exactly one (32) and several with a partial last block (70), with k columns from 3 to 70; and
 * the diagonal screen that rules the solve out.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, gaussian, rng } from '@sorsajs/testing';
import { COND_SOLVE, lowerSolveInJob, mayBeWellConditioned } from '../src/jacobi-solve.js';

/** A lower-triangular n x n matrix with a dominant diagonal (cond of a few), float32 values. */
function lower(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) x[i * n + j] = i === j ? (1 + Math.abs(gaussian(r))) * (r() < 0.5 ? -1 : 1) : gaussian(r) / n;
  return x;
}

/** Y = X⁻¹ U diag(S) in float64 by forward substitution, column by column. */
function reference(x: Float32Array, u: Float32Array, s: Float32Array, n: number, k: number): Float64Array {
  const y = new Float64Array(n * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) {
    let acc = u[i * k + j] * s[j];
    for (let l = 0; l < i; l++) acc -= x[i * n + l] * y[l * k + j];
    y[i * k + j] = acc / x[i * n + i];
  }
  return y;
}

forEachBackend('jacobi-solve', () => {
  for (const [n, k] of [[5, 3], [32, 32], [70, 70], [70, 9]]) {
    it(`solves a lower-triangular ${n}x${n} system with ${k} right-hand sides to float32 accuracy`, async () => {
      const x = lower(n, n + k);
      const r = rng(7 * n + k);
      const u = Float32Array.from({ length: n * k }, () => gaussian(r));
      const s = Float32Array.from({ length: k }, (_, j) => 2 ** (-j / 8));
      const [X, U, S] = [c.tensor(x, [n, n]), c.tensor(u, [n, k]), c.tensor(s, [k])];
      const [Y] = internal.launchJob('test', [X, U, S], [[n, k]], async (ctx, [px, pu, ps]) => [await lowerSolveInJob(ctx, px, pu, ps, n, k)]);
      const y = await Y.data();
      const want = reference(x, u, s, n, k);
      // Forward substitution's error is about cond(X) n eps |Y|; cond(X) is a few here.
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      let worst = 0;
      for (let i = 0; i < n * k; i++) worst = Math.max(worst, Math.abs(y[i] - want[i]));
      expect(worst).toBeLessThanOrEqual(8 * n * EPS32 * scale);
      for (const t of [X, U, S, Y]) t.dispose();
    });
  }

  it('keeps each row of the solution to float32 accuracy when X is graded by rows (cond 1e4)', async () => {
    // X = D L, D from 1e-4 up to 1: forward substitution is invariant to row scaling, so each row
    // of Y = X⁻¹ B keeps the accuracy of a well-conditioned system relative to its own size (an
    // error relative to max |Y| alone would let the small rows go).
    const n = 70;
    const k = 9;
    const x = lower(n, 5);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) x[i * n + j] *= 10 ** ((-4 * (n - 1 - i)) / (n - 1));
    const r = rng(11);
    const u = Float32Array.from({ length: n * k }, () => gaussian(r));
    const s = new Float32Array(k).fill(1);
    const [X, U, S] = [c.tensor(x, [n, n]), c.tensor(u, [n, k]), c.tensor(s, [k])];
    const [Y] = internal.launchJob('test', [X, U, S], [[n, k]], async (ctx, [px, pu, ps]) => [await lowerSolveInJob(ctx, px, pu, ps, n, k)]);
    const y = await Y.data();
    const want = reference(x, u, s, n, k);
    for (let i = 0; i < n; i++) {
      let rowMax = 0;
      for (let j = 0; j < k; j++) rowMax = Math.max(rowMax, Math.abs(want[i * k + j]));
      for (let j = 0; j < k; j++) expect(Math.abs(y[i * k + j] - want[i * k + j]), `row ${i}`).toBeLessThanOrEqual(8 * n * EPS32 * rowMax);
    }
    for (const t of [X, U, S, Y]) t.dispose();
  });

  it('the screen rules the solve out when the diagonal alone shows cond(X) > COND_SOLVE', async () => {
    const screen = async (d: number[]): Promise<boolean> => {
      const n = d.length;
      const x = new Float32Array(n * n);
      d.forEach((v, i) => (x[i * n + i] = v));
      for (let i = 1; i < n; i++) x[i * n] = 0.5;
      const X = c.tensor(x, [n, n]);
      let got = false;
      const [out] = internal.launchJob('test', [X], [[1]], async (ctx, [px]) => {
        got = await mayBeWellConditioned(ctx, px, n);
        return [new Float32Array(1)];
      });
      await out.data();
      for (const t of [X, out]) t.dispose();
      return got;
    };
    expect(await screen([1, -2, 3])).toBe(true);
    expect(await screen([1, 1, -1 / COND_SOLVE])).toBe(true);
    expect(await screen([1, 1, 0.5 / COND_SOLVE])).toBe(false);
    expect(await screen([0, 0, 0])).toBe(false);
  });
});
