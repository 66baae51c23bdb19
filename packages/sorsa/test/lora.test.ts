/**
 * The LoRA baseline and adaptParams' tree handling and errors (no SVD needed).
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptParams, lora, mergeParams, initAdapter, pissa, type LoraAdapter } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, closeTo, mm, rand, tr } from './ref.js';

const read = async (t: c.Tensor): Promise<number[]> => Array.from(await t.data());

forEachBackend('sorsa lora', () => {
  it('initAdapter: A Kaiming-uniform in [-1/sqrt(in), 1/sqrt(in)), B = 0, scale alpha / r; merge is W', async () => {
    const [out, inp, r] = [6, 25, 4];
    const Wd = rand(out * inp, 1);
    const W = c.tensor(Wd, [out, inp]);
    const { adapter, residual } = lora.initAdapter(W, { rank: r, alpha: 8, key: c.random.key(3) });
    expect(adapter.A.shape).toEqual([r, inp]);
    expect(adapter.B.shape).toEqual([out, r]);
    expect(adapter.scale).toBe(2);
    const A = await read(adapter.A);
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(inp));
    expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(inp));
    expect(await read(adapter.B)).toEqual(new Array(out * r).fill(0));
    // Deterministic in the key.
    const again = lora.initAdapter(W, { rank: r, alpha: 8, key: c.random.key(3) });
    expect(await read(again.adapter.A)).toEqual(A);
    // The residual is W (a separate handle): merge and linear give W back exactly at init.
    expect(residual).not.toBe(W);
    expect(await read(lora.merge(adapter, residual))).toEqual(Array.from(Wd));
    const xd = rand(3 * inp, 2);
    const x = c.tensor(xd, [3, inp]);
    const y = lora.adaptedLinear(adapter, residual, x);
    const want = mm(xd, tr(Wd, out, inp), 3, inp, out);
    expect(closeTo(await read(y), want, () => 4 * (inp + r + 2) * EPS32 * inp, 'y')).toEqual([]);
    // Default alpha = r: scale 1.
    const plain = lora.initAdapter(W, { rank: r, key: c.random.key(3) });
    expect(plain.adapter.scale).toBe(1);
    residual.dispose();
    expect(W.isDisposed).toBe(false);
    c.tree.dispose([W, adapter, again, x, y, plain]);
  });

  it('adaptParams (lora) splits a nested tree, keeps other leaves, and mergeParams gives the params back', async () => {
    const params = { blocks: [{ wq: c.tensor(rand(20, 1), [4, 5]), wv: c.tensor(rand(20, 2), [4, 5]), ln: c.ones([5]) }], head: c.tensor(rand(15, 3), [3, 5]), steps: 7 };
    const { trainable, frozen } = await adaptParams(params, { rank: 2, targets: ['blocks.0.wq', 'head'], method: 'lora', key: c.random.key(0), alpha: 4 });
    expect(Object.keys(trainable)).toEqual(['blocks.0.wq', 'head']);
    expect((trainable.head as LoraAdapter).A.shape).toEqual([2, 5]);
    expect(c.tree.leafPaths(frozen)).toEqual(c.tree.leafPaths(params));
    expect(frozen.steps).toBe(7);
    // Each target's key is folded from its leaf index: different targets, different A.
    expect(await read((trainable['blocks.0.wq'] as LoraAdapter).A)).not.toEqual(await read((trainable.head as LoraAdapter).A));
    const merged = mergeParams(trainable, frozen);
    for (const [g, w] of [[merged.blocks[0].wq, params.blocks[0].wq], [merged.blocks[0].wv, params.blocks[0].wv], [merged.head, params.head]]) {
      expect(await read(g)).toEqual(await read(w));
    }
    // params is untouched and independent of frozen.
    c.tree.dispose([frozen, merged]);
    for (const l of c.tree.leaves(params)) if (l instanceof c.Tensor) expect(l.isDisposed).toBe(false);
    // A predicate selects by path and leaf.
    const byPred = await adaptParams(params, { rank: 1, targets: (p, w) => p.endsWith('wv') && w.rank === 2, method: 'lora', key: c.random.key(1) });
    expect(Object.keys(byPred.trainable)).toEqual(['blocks.0.wv']);
    c.tree.dispose([byPred, trainable, params]);
  });

  it('errors: rank out of range, rank < 1, non-2-D target, missing target, NaN weight, no key; nothing leaks', async () => {
    const W = c.tensor(rand(12, 1), [3, 4]);
    const key = c.random.key(0);
    expect(() => lora.initAdapter(W, { rank: 4, key })).toThrow(/lora\.initAdapter: rank must be an integer in \[1, 3\] \(min\(out, in\) of W \[3,4\]\), got 4/);
    expect(() => lora.initAdapter(W, { rank: 0, key })).toThrow(/lora\.initAdapter: rank must be an integer in \[1, 3\].*got 0/);
    expect(() => lora.initAdapter(W, { rank: 1.5, key })).toThrow(/got 1\.5/);
    expect(() => lora.initAdapter(c.ones([3]), { rank: 1, key })).toThrow(/lora\.initAdapter: W must be a 2-D weight \[out, in\], got shape \[3\]/);
    expect(() => lora.initAdapter(W, { rank: 1 } as never)).toThrow(/lora\.initAdapter: key must be a random\.Key/);
    expect(() => lora.initAdapter(W, { rank: 1, key, alpha: -2 })).toThrow(/lora\.initAdapter: alpha must be a positive finite number, got -2/);
    const nan = c.tensor([1, 2, NaN, 4], [2, 2]);
    expect(() => lora.initAdapter(nan, { rank: 1, key })).toThrow(/lora\.initAdapter: W has a non-finite value NaN at \[1, 0\]/);
    // The SVD-based initializers check the same things before any SVD runs.
    expect(() => initAdapter(W, { rank: 5 })).toThrow(/^initAdapter: rank must be an integer in \[1, 3\].*got 5/);
    expect(() => initAdapter(W, { rank: 0 })).toThrow(/^initAdapter: rank must be an integer in \[1, 3\].*got 0/);
    expect(() => initAdapter(nan, { rank: 1 })).toThrow(/^initAdapter: W has a non-finite value NaN at \[1, 0\]/);
    expect(() => pissa.initAdapter(nan, { rank: 1 })).toThrow(/^pissa\.initAdapter: W has a non-finite value NaN/);
    expect(() => initAdapter(W, { rank: 1, svd: 'qr' as never })).toThrow(/^initAdapter: svd must be 'auto', 'jacobi' or 'randomized', got qr/);
    expect(() => initAdapter(W, { rank: 1, tol: 2 })).toThrow(/^initAdapter: tol must be in \(0, 1\), got 2/);

    const params = { a: W, b: c.ones([4]), n: nan };
    const before = c.memory().tensors;
    await expect(adaptParams(params, { rank: 1, targets: ['a', 'c'], method: 'lora', key })).rejects.toThrow(/adaptParams: target "c" not found in params \(leaves: a, b, n\)/);
    await expect(adaptParams(params, { rank: 1, targets: ['b'], method: 'lora', key })).rejects.toThrow(/adaptParams: target "b" must be a 2-D weight \[out, in\], got shape \[4\]/);
    await expect(adaptParams(params, { rank: 1, targets: () => false, method: 'lora', key })).rejects.toThrow(/adaptParams: the targets predicate matched no tensor leaf/);
    await expect(adaptParams(params, { rank: 1, targets: ['a'], method: 'lora' })).rejects.toThrow(/adaptParams: method 'lora' needs a key/);
    // A failure after some targets were done frees what was made.
    await expect(adaptParams(params, { rank: 1, targets: ['a', 'n'], method: 'lora', key })).rejects.toThrow(/adaptParams: target "n": lora\.initAdapter: W has a non-finite value NaN/);
    await expect(adaptParams(params, { rank: 4, targets: ['a'] })).rejects.toThrow(/adaptParams: target "a": initAdapter: rank must be an integer in \[1, 3\]/);
    expect(c.memory().tensors).toBe(before);
    c.tree.dispose(params);
  });
});
