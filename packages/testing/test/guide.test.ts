/**
 * The code of docs/guides/testing.md, run here: every ```ts block of the guide appears verbatim in
 * this file between the markers below (checked by the last test), so the guide's code runs in
 * `npm test`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect as vexpect, it as vit } from 'vitest';

// guide:start
import { beforeAll, expect, it } from 'vitest';
import fc from 'fast-check';
import '@sorsajs/testing/vitest';
import { arb, assertOrthonormal, checkGrads } from '@sorsajs/testing';
import { init, matmul, mul, nn, optim, sum, tanh, tensor, tree, type Tensor } from '@sorsajs/core';
import { initAdapter, makeTrainStep, merge, orthoRegularizer } from '@sorsajs/sorsa';

beforeAll(async () => {
  await init({ backend: 'cpu' });
});
// guide:end

// guide:start
it('the regularizer is 0 exactly when U and Vt are orthonormal', async () => {
  await fc.assert(
    fc.asyncProperty(arb.adapter({ out: 6, in: 5, rank: 3 }), async ({ adapter, residual }) => {
      await expect(orthoRegularizer({ layer: adapter })).toBeAllClose(0, { atol: 1e-5 });
      tree.dispose([adapter, residual]);
    }),
    { numRuns: 20 },
  );
});

it('and positive otherwise', async () => {
  await fc.assert(
    fc.asyncProperty(arb.adapter({ out: 6, in: 5, rank: 3 }), fc.double({ min: 0.05, max: 1, noNaN: true }), async ({ adapter, residual }, t) => {
      const U = mul(adapter.U, 1 + t); // columns no longer of unit length
      const reg = (await orthoRegularizer({ layer: { ...adapter, U } }).data())[0];
      expect(reg).toBeGreaterThan(0);
      tree.dispose([adapter, residual, U]);
    }),
    { numRuns: 20 },
  );
});
// guide:end

// guide:start
it('merge after init is the identity', async () => {
  await fc.assert(
    fc.asyncProperty(arb.matrix({ rows: 8, cols: 6, spectrum: 'geometric' }), fc.integer({ min: 1, max: 6 }), async ({ matrix }, rank) => {
      const { adapter, residual } = initAdapter(matrix, { rank });
      const W = merge(adapter, residual);
      await expect(W).toBeAllClose(matrix, { rtol: 1e-5, atol: 1e-5 });
      await assertOrthonormal(adapter.U);
      tree.dispose([matrix, adapter, residual, W]);
    }),
    { numRuns: 15 },
  );
});
// guide:end

// guide:start
/** ‖UᵀU − I‖ after `steps` SORSA steps with regularizer weight `gamma`, on a fixed regression task. */
async function driftAfter(gamma: number, steps: number): Promise<number> {
  const W = tensor(Array.from({ length: 48 }, (_, i) => Math.sin(i)), [8, 6]);
  const { adapter, residual } = initAdapter(W, { rank: 3 });
  const x = tensor(Array.from({ length: 24 }, (_, i) => Math.cos(3 * i)), [4, 6]);
  const y = tensor(Array.from({ length: 32 }, (_, i) => Math.sin(5 * i)), [4, 8]);
  const { init: initState, step } = makeTrainStep({
    loss: (t: { U: Tensor; S: Tensor; Vt: Tensor }, r: Tensor, [xb, yb]: Tensor[]) => nn.mse(nn.linear(xb, merge(t, r)), yb),
    optimizer: optim.sgd({ lr: 0.05 }),
    gamma,
    peakLr: 0.05,
  });
  let trainable = adapter;
  let state = initState(trainable);
  for (let i = 0; i < steps; i++) {
    const out = step(trainable, state, residual, [x, y]);
    tree.dispose([trainable, state, out.metrics]);
    ({ trainable, optState: state } = out);
  }
  const gram = matmul(trainable.U, trainable.U, { transposeA: true });
  const g = await gram.data();
  let err = 0;
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) err += (g[i * 3 + j] - (i === j ? 1 : 0)) ** 2;
  tree.dispose([W, residual, x, y, trainable, state, gram]);
  return Math.sqrt(err);
}

it('regularized steps keep U near orthonormal; γ = 0 lets it drift', async () => {
  const regularized = await driftAfter(0.01, 30);
  const free = await driftAfter(0, 30);
  expect(regularized).toBeLessThan(free / 10);
});
// guide:end

// guide:start
it('my loss has the gradient autodiff says', async () => {
  const myLoss = (w: Tensor, x: Tensor): Tensor => sum(tanh(matmul(x, w)));
  const w = tensor([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.8]]);
  const x = tensor([[1, 2, 3], [-1, 0.5, 2]]);
  await checkGrads(myLoss, [w, x], { order: 2 });
  tree.dispose([w, x]);
});
// guide:end

vit('docs/guides/testing.md shows exactly the code run above', () => {
  const here = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const guide = readFileSync(fileURLToPath(new URL('../../../docs/guides/testing.md', import.meta.url)), 'utf8');
  const run = [...here.matchAll(/\/\/ guide:start\n([\s\S]*?)\/\/ guide:end\n/g)].map((m) => m[1]);
  const shown = [...guide.matchAll(/```ts\n([\s\S]*?)```\n/g)].map((m) => m[1]);
  vexpect(shown).toEqual(run);
});
