/**
 * Recycled result arrays on wasm (backend/pool.ts and the gpu.js patch's `outputTarget`): results
 * land in arrays of disposed tensors, and that never changes a value anyone can still see: a live
 * tensor's, a user's array given to `tensor()`, an array read back with `data()`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

const reasons = await c.backendReasons();
const only = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim());
const skip = reasons.wasm ?? (only && !only.includes('wasm') ? `not in SORSA_BACKENDS=${process.env.SORSA_BACKENDS}` : undefined);
if (skip) console.warn(`[sorsajs tests] SKIPPING the result-array pool checks: wasm backend unavailable: ${skip}`);

const N = 4096;
/** x -> x * 1.5 + 1, in float32 as the kernel rounds it (two roundings). */
const stepRef = (v: number): number => Math.fround(Math.fround(v * 1.5) + 1);

describe.skipIf(!!skip)(`result-array pool on wasm${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
  beforeAll(async () => {
    await c.init({ backend: 'wasm' });
  });

  it('a chain of results over disposed tensors equals the float32 formula at every step, kept tensors keep theirs, and arrays are recycled', async () => {
    const start = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
    let x = c.tensor(start, [N]);
    let xv = Array.from(start);
    const kept: { t: c.Tensor; want: number[] }[] = [];
    const reusedBefore = internal.poolStats().reused;
    for (let k = 0; k < 40; k++) {
      const m = c.mul(x, 1.5);
      const y = c.add(m, 1);
      m.dispose();
      const yv = xv.map(stepRef);
      // Every 7th tensor stays alive while later results reuse the arrays freed around it.
      if (k % 7 === 0) kept.push({ t: x, want: xv });
      else x.dispose();
      x = y;
      xv = yv;
      expect(Array.from(await x.data())).toEqual(xv);
    }
    // Two results a step (the product and the sum), all but the first few into recycled arrays.
    expect(internal.poolStats().reused - reusedBefore).toBeGreaterThanOrEqual(60);
    for (const { t, want } of kept) expect(Array.from(await t.data())).toEqual(want);
    c.tree.dispose([x, kept.map(({ t }) => t)]);
  });

  it('never writes into an array a user gave to tensor() or one data() returned', async () => {
    const user = Float32Array.from({ length: N }, (_, i) => i);
    const t = c.tensor(user, [N]);
    const y = c.mul(t, 2);
    const read = await y.data();
    const readCopy = Array.from(read);
    c.tree.dispose([t, y]);
    for (let k = 0; k < 10; k++) {
      const z = c.add(c.ones([N]), k);
      await z.data();
      z.dispose();
    }
    await c.sync();
    expect(Array.from(user)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(Array.from(read)).toEqual(readCopy);
  });

  it('threaded kernels (matmul) write recycled arrays correctly: products against float64', async () => {
    const n = 64; // 4096 cells: worker threads
    const rand = (seed: number): Float32Array => Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.7 + seed));
    for (let k = 0; k < 6; k++) {
      const [a, b] = [rand(k), rand(k + 10)];
      const A = c.tensor(a, [n, n]);
      const B = c.tensor(b, [n, n]);
      const C = c.matmul(A, B);
      const got = await C.data();
      for (let i = 0; i < n; i += 9) {
        for (let j = 0; j < n; j += 7) {
          let acc = 0;
          let scale = 0;
          for (let q = 0; q < n; q++) {
            acc += a[i * n + q] * b[q * n + j];
            scale += Math.abs(a[i * n + q] * b[q * n + j]);
          }
          expect(Math.abs(got[i * n + j] - acc)).toBeLessThanOrEqual(2 * n * 2 ** -24 * scale);
        }
      }
      c.tree.dispose([A, B, C]);
    }
  });

  it("a kernel's results in parts (launchParts): each part its formula, live parts untouched by recycling, the shared array back only after the last part", async () => {
    // Three results one after another: 2v, v + 1, v·v (float32, one rounding each).
    const parts = (n: number, threaded: boolean): internal.KernelSource => ({
      key: `test:parts:${n}:${threaded}`,
      arrays: ['a'],
      scalars: [],
      threaded,
      components: 3,
      store: { strides: [1, 0, 0], offsets: [0, n, 2 * n] },
      body: 'const v = a[this.thread.x];\nreturn [v * 2, v + 1, v * v];',
    });
    const want = (x: Float32Array): number[][] => [Array.from(x, (v) => Math.fround(v * 2)), Array.from(x, (v) => Math.fround(v + 1)), Array.from(x, (v) => Math.fround(v * v))];
    for (const [n, threaded] of [[5, false], [N, false], [5000, true]] as const) {
      const xv = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
      const x = c.tensor(xv, [n]);
      await c.sync();
      const mem = c.memory();
      const out = internal.launchParts('test', parts(n, threaded), n, [[n], [n], [n]], [x], []);
      expect(out.map((t) => t.shape)).toEqual([[n], [n], [n]]);
      const w = want(xv);
      for (let k = 0; k < 3; k++) expect(Array.from(await out[k].data()), `part ${k} of ${n}`).toEqual(w[k]);
      // Parts 0 and 2 go; part 1 stays while results of every size reuse what comes back.
      const pooled = internal.poolStats().bytes;
      out[0].dispose();
      out[2].dispose();
      await c.sync();
      // The shared array is still read by part 1: nothing of it is back in the pool, and memory()
      // still counts all of it.
      expect(internal.poolStats().bytes).toBe(pooled);
      expect(c.memory().bytes - mem.bytes).toBe(3 * n * 4);
      for (let k = 0; k < 6; k++) {
        const again = internal.launchParts('test', parts(n, threaded), n, [[n], [n], [n]], [x], []);
        const y = c.add(x, k);
        await c.sync();
        c.tree.dispose([again, y]);
      }
      expect(Array.from(await out[1].data())).toEqual(w[1]);
      out[1].dispose();
      await c.sync();
      // Below 1024 elements arrays are not pooled; from there the last part brings the array back.
      if (3 * n >= 1024) expect(internal.poolStats().bytes).toBeGreaterThanOrEqual(pooled + 3 * n * 4);
      const now = c.memory();
      expect([now.tensors, now.buffers, now.bytes]).toEqual([mem.tensors, mem.buffers, mem.bytes]);
      x.dispose();
    }
  });
});
