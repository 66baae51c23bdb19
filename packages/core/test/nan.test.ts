/**
 * NaN and infinities through reductions and `isfinite`, on every backend. NumPy's rule: a NaN
 * anywhere in a max, min, norm or logsumexp makes the result NaN. WGSL's max and min may drop a NaN
 * operand, which once made the norm of an all-NaN gradient 0 on webgpu (so clipping and
 * `skipNonFinite` could not see it).
 */
import { expect, it } from 'vitest';
import { clip, isfinite, logsumexp, max, maximum, min, minimum, norm, optim, relu, tensor, type Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';

const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

/** NumPy-style max or min of a row, in float64: NaN when any element is NaN. */
function reduceRef(op: 'max' | 'min', row: number[]): number {
  if (row.some(Number.isNaN)) return NaN;
  return op === 'max' ? Math.max(...row) : Math.min(...row);
}

forEachBackend('NaN through reductions', () => {
  // Rows of 9: the contiguous kernel's four accumulators and its tail each meet the NaN somewhere.
  const rows: number[][] = [];
  for (let at = 0; at < 9; at++) rows.push(Array.from({ length: 9 }, (_, j) => (j === at ? NaN : j - 4)));
  rows.push(Array.from({ length: 9 }, () => NaN));
  rows.push(Array.from({ length: 9 }, (_, j) => j - 4));

  for (const op of ['max', 'min'] as const) {
    const f = op === 'max' ? max : min;
    it(`${op} over rows (contiguous) and over columns (strided) propagates NaN`, async () => {
      const x = tensor(rows);
      const byRow = f(x, 1);
      expect(await read(byRow)).toEqual(rows.map((r) => reduceRef(op, r)));
      // Columns: the strided kernel; column j holds a NaN in row j (j < 9) and in the all-NaN row.
      const byCol = f(x, 0);
      expect(await read(byCol)).toEqual(Array.from({ length: 9 }, () => NaN));
      const clean = tensor([[1, -7, 3], [5, 2, -1]]);
      const c0 = f(clean, 0);
      expect(await read(c0)).toEqual(op === 'max' ? [5, 2, 3] : [1, -7, -1]);
      for (const t of [x, byRow, byCol, clean, c0]) t.dispose();
    });
  }

  it('norm is NaN when any element is NaN, all-NaN included, and Infinity for an infinite one', async () => {
    const x = tensor([[NaN, NaN, NaN], [3, NaN, 4], [3, Infinity, 4], [3, 0, 4]]);
    const n = norm(x, 1);
    expect(await read(n)).toEqual([NaN, NaN, Infinity, 5]);
    const g = optim.globalNorm({ a: tensor([NaN, NaN]), b: tensor([1]) });
    expect(await read(g)).toEqual([NaN]);
    for (const t of [x, n, g]) t.dispose();
  });

  it('logsumexp is NaN when any element is NaN, even beside +Infinity', async () => {
    const x = tensor([[NaN, 1, 2], [Infinity, NaN, 0], [Infinity, 1, 0], [0, 0, 0]]);
    const y = logsumexp(x, 1);
    const got = await read(y);
    expect(got.slice(0, 3)).toEqual([NaN, NaN, Infinity]);
    expect(Math.abs(got[3] - Math.log(3))).toBeLessThan(4e-7);
    for (const t of [x, y]) t.dispose();
  });

  it('isfinite is 1 for finite values only; every int32 value is finite', async () => {
    const x = tensor([0, -0, 1.5, -3.4028234663852886e38, 3.4028234663852886e38, NaN, Infinity, -Infinity, 1e-45]);
    const f = isfinite(x);
    expect(f.dtype).toBe('float32');
    expect(await read(f)).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 1]);
    const i = tensor([0, -5, 16777216], [3], 'int32');
    const fi = isfinite(i);
    expect(await read(fi)).toEqual([1, 1, 1]);
    for (const t of [x, f, i, fi]) t.dispose();
  });
});

forEachBackend('NaN through elementwise ops', () => {
  it('maximum, minimum, relu and clip keep a NaN (NumPy, PyTorch and JAX do)', async () => {
    const a = tensor([NaN, 1, NaN, -2, 3]);
    const b = tensor([1, NaN, NaN, 5, -Infinity]);
    const cases: [string, Tensor, number[]][] = [
      ['maximum', maximum(a, b), [NaN, NaN, NaN, 5, 3]],
      ['minimum', minimum(a, b), [NaN, NaN, NaN, -2, -Infinity]],
      ['relu', relu(a), [NaN, 1, NaN, 0, 3]],
      ['clip', clip(a, -1, 2), [NaN, 1, NaN, -1, 2]],
    ];
    for (const [name, t, want] of cases) expect(await read(t), name).toEqual(want);
    for (const t of [a, b, ...cases.map((c) => c[1])]) t.dispose();
  });
});
