/**
 * The assertions: agreement passes, disagreement rejects with a message naming the tree path, the
 * index, both values and the tolerance; default tolerances follow float32 eps and the size.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { EPS32, assertAllClose, assertOrthonormal, defaultTolerance, orthonormalColumns, orthonormalize, randomData } from '@sorsajs/testing';

describe('assertAllClose', () => {
  it('passes equal tensors, typed arrays, numbers and trees, and rejects naming path, index, values and tolerance', async () => {
    await c.init({ backend: 'cpu' });
    const t = c.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    await assertAllClose(t, new Float64Array([1, 2, 3, 4, 5, 6]));
    await assertAllClose({ a: [t, 2], b: new Float32Array([0.5]) }, { a: [[1, 2, 3, 4, 5, 6], 2], b: [0.5] });
    const bad = c.tensor([1, 2, 3, 4, 5, 6.01], [2, 3]);
    await expect(assertAllClose({ layers: [{ W: t }, { W: bad }] }, { layers: [{ W: t }, { W: t }] })).rejects.toThrow(
      /at layers\[1\]\.W index 5 \[1, 2\]: actual 6\.01\d*, expected 6, \|diff\| .* > tol /,
    );
    t.dispose();
    bad.dispose();
  });

  it('rejects a shape, length or structure mismatch naming the path', async () => {
    const a = c.tensor([1, 2, 3, 4], [2, 2]);
    const b = c.tensor([1, 2, 3, 4], [4]);
    await expect(assertAllClose({ x: a }, { x: b })).rejects.toThrow('at x: actual shape [2, 2], expected [4]');
    await expect(assertAllClose([1, 2], [1, 2, 3])).rejects.toThrow('actual has 2 elements, expected 3');
    await expect(assertAllClose({ x: 1 }, { y: 1 })).rejects.toThrow('actual has keys {x}, expected {y}');
    await expect(assertAllClose([[1], [2]], [[1]])).rejects.toThrow('(root): actual has 2 items, expected 1');
    a.dispose();
    b.dispose();
  });

  it('default tolerance: a few float32 roundings per element, growing like √n; NaN matches NaN', async () => {
    expect(defaultTolerance(1)).toBe(8 * EPS32);
    expect(defaultTolerance(400)).toBe(8 * EPS32 * 20);
    const n = 400;
    const ref = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
    // Rounding to float32 (half an ulp) passes; an error of 2 · tolerance does not.
    await assertAllClose(Float32Array.from(ref), ref);
    const off = Float64Array.from(ref);
    off[17] += 2 * defaultTolerance(n) * 2;
    await expect(assertAllClose(off, ref)).rejects.toThrow(/index 17:/);
    await assertAllClose([NaN, Infinity], [NaN, Infinity]);
    await expect(assertAllClose([NaN], [1])).rejects.toThrow('actual NaN, expected 1');
    // Entries near zero are judged at the scale of their tensor (atol defaults to rtol · max|expected|).
    await assertAllClose([1000, 1e-4], [1000, 0]);
    await expect(assertAllClose([1000, 1e-4], [1000, 0], { atol: 0 })).rejects.toThrow(/index 1/);
  });
});

describe('assertOrthonormal', () => {
  it('passes orthonormal columns (tall) and rows (wide), rejects naming the entry of QᵀQ', async () => {
    const cols = orthonormalColumns(7, 3, 5);
    const tall = Float32Array.from({ length: 21 }, (_, p) => cols[p % 3][Math.floor(p / 3)]);
    await assertOrthonormal({ shape: [7, 3], data: tall });
    const wide = Float32Array.from({ length: 21 }, (_, p) => cols[Math.floor(p / 7)][p % 7]);
    const W = c.tensor(wide, [3, 7]);
    await assertOrthonormal(W);
    W.dispose();
    const skew = Float32Array.from(tall);
    skew[3 * 2 + 1] += 1e-3; // row 2, column 1
    await expect(assertOrthonormal({ shape: [7, 3], data: skew })).rejects.toThrow(/columns 0 and 1: \(QᵀQ\)\[0, 1\] = .* > tol/);
    await expect(assertOrthonormal({ shape: [2, 2], data: [2, 0, 0, 1] })).rejects.toThrow('(QᵀQ)[0, 0] = 4, expected 1');
  });
});

describe('orthonormalize', () => {
  it('gives an orthonormal basis of the same span, to float64 rounding, even of nearly parallel columns', () => {
    const m = 9;
    const base = Array.from({ length: 4 }, (_, j) => Float64Array.from(randomData(m, 70 + j)));
    // A fifth column nearly along the first (1e-6 off it, in a direction outside the others): one
    // pass of classical Gram-Schmidt would leave it ~1e-10 from orthogonal; two leave rounding.
    const off = randomData(m, 80);
    const cols = [...base, Float64Array.from(base[0], (v, i) => v + 1e-6 * off[i])];
    const q = orthonormalize(cols);
    for (let a = 0; a < q.length; a++)
      for (let b = 0; b < q.length; b++) {
        const d = q[a].reduce((s, v, i) => s + v * q[b][i], 0);
        expect(Math.abs(d - (a === b ? 1 : 0)), `q${a}·q${b}`).toBeLessThanOrEqual(64 * 2 ** -52 * m);
      }
    // Each original column lies in the span: its part outside is rounding-small.
    for (const col of cols) {
      const res = Float64Array.from(col);
      for (const c of q) {
        const d = c.reduce((s, v, i) => s + v * res[i], 0);
        for (let i = 0; i < m; i++) res[i] -= d * c[i];
      }
      const outside = Math.sqrt(res.reduce((s, v) => s + v * v, 0));
      expect(outside).toBeLessThanOrEqual(64 * 2 ** -52 * m * Math.sqrt(col.reduce((s, v) => s + v * v, 0)));
    }
  });
});

