/**
 * Out-of-range and negative indices, one rule on every backend, applied inside the kernels:
 * take/embedding wrap an index in [-n, 0) and give NaN (float32) or -2^31 (int32) for any other
 * index outside [0, n); oneHot gives an all-zero row for any index outside [0, depth); crossEntropy
 * gives a NaN loss for a label outside [0, C) that is not ignoreIndex. Each case runs with indices
 * made on the host and with indices still queued behind a threaded kernel (on wasm a matmul big
 * enough for the worker threads; elsewhere the same program), so no host check can stand in for
 * the kernel. Expected values are written here from the rule, not taken from the library.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';

const { nn } = c;
const i32 = (v: number[]): Tensor => c.tensor(v, undefined, 'int32');

/**
 * `values` as int32 indices computed on the device behind a threaded matmul: `v + 0 * s` with s a
 * scalar from the matmul's result, so the indices' kernel waits in the queue for it.
 */
function queued(values: number[]): { ids: Tensor; pending: boolean; dispose(): void } {
  const a = c.ones([256, 256]);
  const p = c.matmul(a, a); // 65536 cells: threaded on wasm
  const s = c.cast(c.mul(c.sum(p), 0), 'int32');
  const base = i32(values);
  const ids = c.add(base, s);
  const pending = !internal.isComputed(ids);
  return { ids, pending, dispose: () => c.tree.dispose([a, p, s, base, ids]) };
}

/** [rows, cols] table with entry (r, k) = 10 r + k + 1, so every row differs. */
function table(rows: number, cols: number): { t: Tensor; row: (r: number) => number[] } {
  const v = Array.from({ length: rows * cols }, (_, i) => 10 * Math.floor(i / cols) + (i % cols) + 1);
  return { t: c.tensor(v, [rows, cols]), row: (r) => Array.from({ length: cols }, (_, k) => 10 * r + k + 1) };
}

const NAN3 = [NaN, NaN, NaN];

forEachBackend('indices', (backend) => {
  for (const source of ['host', 'queued'] as const) {
    /** Indices from the host or from the queue; on wasm the queued ones must really be pending. */
    const make = (values: number[]): { ids: Tensor; dispose(): void } => {
      if (source === 'host') {
        const ids = i32(values);
        return { ids, dispose: () => ids.dispose() };
      }
      const q = queued(values);
      if (backend === 'wasm') expect(q.pending).toBe(true);
      return q;
    };

    describe(`${source} indices`, () => {
      it('take wraps [-n, 0) and gives NaN rows for other out-of-range indices (axis 0 and 1)', async () => {
        const { t, row } = table(4, 3);
        const { ids, dispose } = make([1, -1, 9, -5, 4, -4, 0]);
        const got = Array.from(await c.take(t, ids, 0).data());
        expect(got).toEqual([...row(1), ...row(3), ...NAN3, ...NAN3, ...NAN3, ...row(0), ...row(0)]);
        const cols = Array.from(await c.take(t, ids, 1).data());
        // Axis 1 has 3 entries: 1 -> 1, -1 -> 2, 9 -> NaN, -5 -> NaN, 4 -> NaN, -4 -> NaN, 0 -> 0.
        const want: number[] = [];
        for (let r = 0; r < 4; r++) for (const k of [1, 2, NaN, NaN, NaN, NaN, 0]) want.push(Number.isNaN(k) ? NaN : row(r)[k]);
        expect(cols).toEqual(want);
        dispose();
        t.dispose();
      });

      it('embedding ids [1, 9] on 4 rows: row 1, then NaN, never another row', async () => {
        const { t, row } = table(4, 3);
        const { ids, dispose } = make([1, 9]);
        expect(Array.from(await nn.embedding(t, ids).data())).toEqual([...row(1), ...NAN3]);
        dispose();
        t.dispose();
      });

      it('take of an int32 tensor fills -2^31', async () => {
        const x = c.tensor([5, 6, 7], undefined, 'int32');
        const { ids, dispose } = make([2, 3, -1, -4]);
        const out = c.take(x, ids);
        expect(out.dtype).toBe('int32');
        expect(Array.from(await out.data())).toEqual([7, -(2 ** 31), 7, -(2 ** 31)]);
        dispose();
        c.tree.dispose([x, out]);
      });

      it('oneHot: all-zero rows outside [0, depth), negative indices included', async () => {
        const { ids, dispose } = make([-1, 3, 1, 0, 2]);
        expect(Array.from(await c.oneHot(ids, 3).data())).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1]);
        dispose();
      });

      it('crossEntropy: a label outside [0, C) gives NaN unless it is ignoreIndex', async () => {
        const logits = c.tensor([
          [2, 0, 1],
          [0, 2, 1],
        ]);
        // Row losses in float64: logsumexp(row) - row[label].
        const lse = (r: number[]): number => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
        const l0 = lse([2, 0, 1]) - 2;
        const bad = make([0, 7]);
        expect((await nn.crossEntropy(logits, bad.ids).data())[0]).toBeNaN();
        const perRow = await nn.crossEntropy(logits, bad.ids, { reduction: 'none' }).data();
        expect(perRow[0]).toBeCloseTo(l0, 5);
        expect(perRow[1]).toBeNaN();
        bad.dispose();
        const neg = make([0, -1]);
        expect((await nn.crossEntropy(logits, neg.ids, { ignoreIndex: -100 }).data())[0]).toBeNaN();
        neg.dispose();
        const ignored = make([0, -100]);
        expect((await nn.crossEntropy(logits, ignored.ids, { ignoreIndex: -100 }).data())[0]).toBeCloseTo(l0, 5);
        ignored.dispose();
        logits.dispose();
      });
    });
  }

  it("take's gradient: a wrapped index adds to its row, an out-of-range one adds nothing", async () => {
    const x = c.zeros([4, 2]);
    const ids = i32([-1, 9, 1, -1]);
    const [, back] = c.vjp((t: Tensor) => c.take(t, ids, 0), x);
    const [g] = back(c.ones([4, 2]));
    // Rows 3 (twice, from -1) and 1 (once); 9 adds nothing.
    expect(Array.from(await g.data())).toEqual([0, 0, 1, 1, 0, 0, 2, 2]);
    c.tree.dispose([x, ids, g]);
  });
});

describe('indices: semantics do not depend on where the indices live', () => {
  it('a take with host indices does not throw', () => {
    const x = c.zeros([4, 5]);
    const ids = i32([0, 4, -5]);
    expect(() => c.take(x, ids).dispose()).not.toThrow();
    c.tree.dispose([x, ids]);
  });
});
