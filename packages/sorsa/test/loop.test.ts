/**
 * A SORSA fine-tune loop that never awaits. `adaptParams` computes each adapter's SVD as a core job
 * that reads values back between sweeps, so it finishes only while the program awaits; before
 * `adaptParams` returned a Promise, a loop started at once queued every op behind the pending SVD
 * and memory().buffers grew by about 140 a step (600 steps: 84,000). Awaiting `adaptParams` lets the
 * loop's ops run at once: memory stays flat however many steps run.
 *
 * wasm and cpu: there a small model's kernels are synchronous. On webgpu every kernel call completes
 * in the event loop, so a loop that never awaits cannot progress on any model; the core engine
 * refuses it past a bound with an Error that says to await (core/test/memory.test.ts). There the
 * test awaits every 50 steps, as such a loop must.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptParams, makeTrainStep, mergeParams, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { rand } from './ref.js';

type Params = { w1: c.Tensor; w2: c.Tensor };

forEachBackend('sorsa loop without an await', (name) => {
  // On webgpu (and webgl) a loop must await now and then; with an await every 50 steps the live
  // set after each await is the same.
  const device = name === 'webgpu' || name === 'webgl';
  const steps = device ? 200 : 600;
  it(device ? '200 steps after `await adaptParams`, awaiting sync() every 50, keep memory().buffers flat' : '600 steps after `await adaptParams` keep memory().buffers flat from step 200 on', async () => {
    const [D, OUT, N] = [16, 4, 8];
    const params: Params = { w1: c.tensor(rand(D * D, 1), [D, D]), w2: c.tensor(rand(OUT * D, 2), [OUT, D]) };
    const x = c.tensor(rand(N * D, 3), [N, D]);
    const y = c.tensor(rand(N * OUT, 4), [N, OUT]);
    await c.sync();
    const before = c.memory();
    const adapted = await adaptParams(params, { rank: 4, targets: ['w1'] });
    let trainable: Trainable = adapted.trainable;
    const frozen = adapted.frozen;
    const model = (p: Params, v: c.Tensor): c.Tensor => c.matmul(c.tanh(c.matmul(v, p.w1, { transposeB: true })), p.w2, { transposeB: true });
    const { init, step } = makeTrainStep({
      loss: (t: Trainable, f: Params, b: [c.Tensor, c.Tensor]) => c.nn.mse(model(mergeParams(t, f), b[0]), b[1]),
      optimizer: c.optim.adamw({ lr: 1e-3 }),
      gamma: 4e-4,
      peakLr: 1e-3,
    });
    let state = init(trainable);
    const lossNow = (): c.Tensor => c.tidy(() => c.nn.mse(model(mergeParams(trainable, frozen), x), y));
    const firstLoss = lossNow();
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
      const out = step(trainable, state, frozen, [x, y]);
      c.tree.dispose([trainable, state, out.metrics]);
      ({ trainable, optState: state } = out);
      if (device && i % 50 === 49) await c.sync();
      if (!device || i % 50 === 49) counts.push(c.memory().buffers);
    }
    // The same live set (adapter, residual, AdamW state, the first loss) after every step from 200
    // to 600, or after every await on a device: no step leaves anything queued behind it.
    const from = device ? 0 : 199;
    expect(Math.max(...counts.slice(from))).toBe(counts[from]);
    expect(Math.min(...counts.slice(from))).toBe(counts[from]);
    expect(counts[from] - before.buffers).toBeLessThan(20);
    const lastLoss = lossNow();
    const [l0, l1] = [(await firstLoss.data())[0], (await lastLoss.data())[0]];
    expect(Number.isFinite(l1)).toBe(true);
    expect(l1).toBeLessThan(l0);
    c.tree.dispose([trainable, state, frozen, firstLoss, lastLoss]);
    await c.sync();
    // frozen held w2 as a new handle: params, x and y are what remain (and on wasm w2's packed
    // panels in the cache of derived forms, freed with w2).
    const { cache, ...live } = c.memory();
    const { cache: cacheBefore, ...liveBefore } = before;
    expect(live).toEqual(liveBefore);
    c.tree.dispose([params, x, y]);
    expect(cache.buffers).toBeLessThanOrEqual(cacheBefore.buffers + 2);
    expect(c.memory().cache).toEqual(cacheBefore);
  });
});
