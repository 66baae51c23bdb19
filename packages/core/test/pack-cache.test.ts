/**
 * The cache of derived forms (backend/storage.ts `Storage.derive`): on wasm, a matmul operand B
 * packed the same way a second time keeps its packed panels, later products read them, they are
 * freed with B, evicted least recently used past `setCacheLimit`, and `memory()` reports them apart
 * from the live buffers. Every product is checked against a float64 loop, before and after caching,
 * including generation's shape (one row through a large transposed weight, swapped at first use).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { EPS32, absMatmulRef, compare, matmulRef, nd, randomData, transposeRef, type Nd } from './reference.js';

const reasons = await c.backendReasons();
const only = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim());
const skip = reasons.wasm ?? (only && !only.includes('wasm') ? `not in SORSA_BACKENDS=${process.env.SORSA_BACKENDS}` : undefined);
if (skip) console.warn(`[sorsajs tests] SKIPPING the matmul pack cache checks: wasm backend unavailable: ${skip}`);

function rand(shape: number[], seed: number): [Tensor, Nd] {
  const data = randomData(shape.reduce((a, b) => a * b, 1), seed);
  return [c.tensor(data, shape), nd(shape, data)];
}

/** x @ Wᵀ on the backend, checked against float64 with a bound of (K + 2) eps |x| |W|ᵀ per entry. */
async function checkLinear(x: Tensor, xr: Nd, w: Tensor, wr: Nd): Promise<void> {
  const y = c.matmul(x, w, { transposeB: true });
  const wt = transposeRef(wr, [1, 0]);
  const k = xr.shape[1];
  const tol = absMatmulRef(xr, wt).data.map((v) => (k + 2) * EPS32 * v);
  const msg = compare(y.shape, await y.data(), matmulRef(xr, wt), (i) => tol[i]);
  y.dispose();
  expect(msg, msg ?? '').toBeNull();
}

describe.skipIf(!!skip)(`matmul pack cache on wasm${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
  let limit = 0;
  beforeAll(async () => {
    await c.init({ backend: 'wasm' });
    limit = c.setCacheLimit(1 << 30);
  });
  afterEach(() => {
    c.setCacheLimit(limit);
  });

  it('keeps a transposed weight packed from its second product on, reads it after, frees it with the weight', async () => {
    const start = c.memory();
    const [w, wr] = rand([48, 40], 1);
    const [x, xr] = rand([12, 40], 2);
    const before = c.memory();
    await checkLinear(x, xr, w, wr);
    expect(c.memory().cache.buffers).toBe(before.cache.buffers);
    await checkLinear(x, xr, w, wr);
    const kept = c.memory();
    // 3 panels of 16 columns x K = 40 rows.
    expect(kept.cache.buffers - before.cache.buffers).toBe(1);
    expect(kept.cache.bytes - before.cache.bytes).toBe(3 * 40 * 16 * 4);
    // The live buffers do not count it: a loop of products leaks nothing it can see.
    expect(kept.buffers).toBe(before.buffers);
    // A different x (other M) reuses the same panels.
    const [x2, x2r] = rand([20, 40], 3);
    await checkLinear(x2, x2r, w, wr);
    expect(c.memory().cache.buffers - before.cache.buffers).toBe(1);
    c.tree.dispose([w, x, x2]);
    expect(c.memory().cache).toEqual(start.cache);
    expect(c.memory().buffers).toBe(start.buffers);
  });

  it('one row through a large weight (generation): swapped at first, then the kept panels, same values', async () => {
    // N K > 2 M (K + N): the first product runs swapped, (W xᵀ)ᵀ; the second packs W and keeps it.
    const [w, wr] = rand([320, 64], 4);
    const [x, xr] = rand([1, 64], 5);
    const before = c.memory().cache.buffers;
    for (let i = 0; i < 3; i++) {
      await checkLinear(x, xr, w, wr);
      expect(c.memory().cache.buffers - before).toBe(i === 0 ? 0 : 1);
    }
    c.tree.dispose([w, x]);
    expect(c.memory().cache.buffers).toBe(before);
  });

  it('evicts the least recently used panels past the limit, keeps none above it, and 0 turns it off', async () => {
    const bytes = 3 * 40 * 16 * 4;
    c.setCacheLimit(bytes);
    const [w1, w1r] = rand([48, 40], 6);
    const [w2, w2r] = rand([48, 40], 7);
    // 12 rows: not few enough for matmul to run x Wᵀ swapped, as (W xᵀ)ᵀ.
    const [x, xr] = rand([12, 40], 8);
    const base = c.memory().cache.bytes;
    expect(base).toBe(0);
    await checkLinear(x, xr, w1, w1r);
    await checkLinear(x, xr, w1, w1r);
    expect(c.memory().cache.bytes).toBe(bytes);
    await checkLinear(x, xr, w2, w2r);
    await checkLinear(x, xr, w2, w2r);
    // w2's panels took w1's place.
    expect(c.memory().cache.bytes).toBe(bytes);
    await checkLinear(x, xr, w1, w1r);
    expect(c.memory().cache.bytes).toBe(bytes);
    // A form larger than the limit is not kept.
    c.setCacheLimit(bytes - 4);
    expect(c.memory().cache.bytes).toBe(0);
    await checkLinear(x, xr, w1, w1r);
    await checkLinear(x, xr, w1, w1r);
    expect(c.memory().cache.bytes).toBe(0);
    c.setCacheLimit(0);
    await checkLinear(x, xr, w2, w2r);
    await checkLinear(x, xr, w2, w2r);
    expect(c.memory().cache.buffers).toBe(0);
    c.tree.dispose([w1, w2, x]);
  });

  it('setCacheLimit refuses a bound that is not a finite number >= 0', () => {
    expect(() => c.setCacheLimit(-1)).toThrow(/setCacheLimit: bytes must be a finite number >= 0, got -1/);
    expect(() => c.setCacheLimit(Number.NaN)).toThrow(/got NaN/);
  });
});
