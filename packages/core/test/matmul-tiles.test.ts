/**
 * matmul's wasm paths (kernels/matmul.ts: 4 x 16 tiles per SIMD quad, B packed into column panels
 * when large or transposed, the unpack of the tiles) against float64 loops, on every backend: tiles
 * cut off at M and N (neither a multiple of 4 or 16), whole tiles stored straight into C, K = 1
 * and K odd (the unrolled loop's rest),
 * batched and batch-broadcast operands, transposed operands read through strides, tall and wide
 * products, and sizes that pack B and run on worker threads (also few cells over a long k). The
 * job form (`matmulInJob`) runs the same plan.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { launchJob, matmulInJob, rowMajor } from '@sorsajs/core/internal';
import { forEachBackend } from './backends.js';
import { EPS32, absMatmulRef, compare, count, matmulRef, nd, randomData, transposeRef, type Nd } from './reference.js';

/** A float32 tensor of random values and its float64 twin. */
function rand(shape: number[], seed: number): [Tensor, Nd] {
  const data = randomData(count(shape), seed, -1, 1);
  return [c.tensor(data, shape), nd(shape, data)];
}

/** The last two axes of a 2-D or 3-D reference swapped. */
function swapLast(x: Nd): Nd {
  return transposeRef(x, x.shape.length === 2 ? [1, 0] : [0, 2, 1]);
}

/** Matrix `p` of a 3-D reference (or the matrix itself when 2-D). */
function pick(x: Nd, p: number): Nd {
  if (x.shape.length === 2) return x;
  const [r, cc] = x.shape.slice(1);
  return nd([r, cc], x.data.slice(p * r * cc, (p + 1) * r * cc));
}

forEachBackend('matmul tiles', () => {
  // [a shape, b shape, options]: batched operands are 3-D (one may be 2-D: broadcast over the batch).
  const cases: [number[], number[], c.MatmulOptions?][] = [
    // One partial tile: M < 4, N < 16, K = 1 and K odd.
    [[3, 1], [1, 5]],
    [[1, 7], [7, 13]],
    [[2, 3], [3, 1]],
    // Several tiles with partial edges (M % 4 = 1, N % 16 = 1, N % 4 = 1: the cell unpack).
    [[21, 9], [9, 33]],
    // N a multiple of 4 but not of 16 (the row unpack over a partial panel).
    [[9, 11], [11, 20]],
    // Tall and wide.
    [[301, 5], [5, 6]],
    [[2, 6], [6, 333]],
    // Batched, both full; A broadcast; B broadcast (one packed panel set shared by the batch).
    [[3, 7, 10], [3, 10, 18]],
    [[6, 10], [2, 10, 9]],
    [[2, 13, 40], [40, 24]],
    // Transposed operands: B packed straight from its strides, A read with a column stride.
    [[9, 5], [19, 5], { transposeB: true }],
    [[5, 9], [5, 19], { transposeA: true }],
    [[2, 6, 7], [2, 22, 6], { transposeA: true, transposeB: true }],
    // K * N >= 2^18: B packed from a row-major read; N % 16 = 14 (a zero-padded panel), M % 4 = 2.
    [[18, 520], [520, 510]],
    // Batched with packing (a panel set per batch) and worker threads (4096 cells and more).
    [[2, 66, 300], [2, 300, 900]],
    // Whole tiles (M % 4 = 0, N % 16 = 0): the tiled kernel stores row-major C itself, no unpack.
    // One tile; batched with B broadcast; transposed B (packed); transposed A; packed and threaded
    // (4096 cells); batched, packed per batch and threaded.
    [[4, 3], [3, 16]],
    [[3, 8, 5], [5, 32]],
    [[12, 7], [48, 7], { transposeB: true }],
    [[9, 20], [9, 16], { transposeA: true }],
    [[128, 520], [520, 512]],
    [[2, 64, 33], [2, 33, 512]],
    // Few cells over a long k (the randomized SVD's products): threaded below 4096 cells, on the
    // cell count derived from k (matmul.ts threadFrom); also with A transposed, as Aᵀ Q reads it.
    [[128, 3072], [3072, 32]],
    [[3072, 128], [3072, 32], { transposeA: true }],
    // A few rows (two row blocks, M % 4 = 3) by a packed weight: threaded on the same rule.
    [[7, 2048], [2048, 700]],
  ];
  for (const [sa, sb, opts] of cases) {
    it(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)} ${opts ? JSON.stringify(opts) : ''}`, async () => {
      const [a, ar] = rand(sa, sa.reduce((x, y) => x * 7 + y, 3));
      const [b, br] = rand(sb, sb.reduce((x, y) => x * 11 + y, 5));
      const batch = Math.max(sa.length === 3 ? sa[0] : 1, sb.length === 3 ? sb[0] : 1);
      const out: number[] = [];
      const tol: number[] = [];
      let shape: number[] = [];
      for (let p = 0; p < batch; p++) {
        const am = opts?.transposeA ? swapLast(pick(ar, p)) : pick(ar, p);
        const bm = opts?.transposeB ? swapLast(pick(br, p)) : pick(br, p);
        const k = am.shape[1];
        out.push(...matmulRef(am, bm).data);
        tol.push(...absMatmulRef(am, bm).data.map((v) => (k + 2) * EPS32 * v));
        shape = [am.shape[0], bm.shape[1]];
      }
      if (sa.length === 3 || sb.length === 3) shape = [batch, ...shape];
      const got = c.matmul(a, b, opts);
      const msg = compare(got.shape, await got.data(), nd(shape, out), (i) => tol[i]);
      expect(msg, msg ?? '').toBeNull();
      c.tree.dispose([a, b, got]);
    });
  }

  it.each([
    ['transposed and packed B, partial tiles', 10, 600, 450],
    ['transposed and packed B, whole tiles stored in place', 12, 600, 448],
  ])('matmulInJob runs the same plan (%s)', async (_, m, k, n) => {
    const [a, ar] = rand([m, k], 91);
    const [b, br] = rand([n, k], 92);
    const [c1] = launchJob('matmul-job-test', [a, b], [[m * n]], async (ctx, [pa, pb]) => {
      const [sa0, sa1] = rowMajor(k, false);
      const [sb0, sb1] = rowMajor(k, true);
      return [await matmulInJob(ctx, pa, pb, { M: m, N: n, K: k, sa0, sa1, sb0, sb1 })];
    });
    const bt = swapLast(br);
    const tol = absMatmulRef(ar, bt).data.map((v) => (k + 2) * EPS32 * v);
    const msg = compare([m * n], await c1.data(), nd([m * n], matmulRef(ar, bt).data), (i) => tol[i]);
    expect(msg, msg ?? '').toBeNull();
    c.tree.dispose([a, b, c1]);
  });

  it.each([
    // Whole tiles: the wasm tile kernel subtracts as it stores (threaded at this size); a partial
    // tile (M % 4 = 2, N % 16 = 14): the subtraction is a second kernel; transposed B as the
    // blocked QR reads it.
    ['whole tiles, threaded', 64, 96, 512, false],
    ['partial tiles', 10, 33, 30, false],
    ['whole tiles, transposed B', 8, 32, 48, true],
  ])('matmulInJob with c0 returns c0 - A @ B (%s)', async (_, m, k, n, tb) => {
    const [a, ar] = rand([m, k], 93);
    const [b, br] = rand(tb ? [n, k] : [k, n], 94);
    const [c0, c0r] = rand([m, n], 95);
    const [d] = launchJob('matmul-job-minus-test', [a, b, c0], [[m * n]], async (ctx, [pa, pb, pc]) => {
      const [sb0, sb1] = rowMajor(tb ? k : n, tb);
      const out = await matmulInJob(ctx, pa, pb, { M: m, N: n, K: k, sa0: k, sa1: 1, sb0, sb1 }, pc);
      return [out];
    });
    const bm = tb ? swapLast(br) : br;
    const prod = matmulRef(ar, bm).data;
    const want = c0r.data.map((v, i) => v - prod[i]);
    // The product's bound plus one rounding of the difference.
    const tol = absMatmulRef(ar, bm).data.map((v, i) => (k + 2) * EPS32 * v + 2 * EPS32 * Math.abs(c0r.data[i]));
    const msg = compare([m * n], await d.data(), nd([m * n], want), (i) => tol[i]);
    expect(msg, msg ?? '').toBeNull();
    // c0 is an input, not consumed.
    expect(Array.from(await c0.data())).toEqual(Array.from(c0r.data, Math.fround));
    c.tree.dispose([a, b, c0, d]);
  });
});
