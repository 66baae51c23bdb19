/**
 * checkGrads accepts right gradients and rejects a deliberately wrong custom VJP, naming the
 * argument and the size of the disagreement, at first and second order, with and without a float64
 * reference.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { checkGrads, type Nd } from '@sorsajs/testing';

beforeAll(async () => {
  await c.init({ backend: 'cpu' });
});

/** x³ with a hand-written derivative `coef · x²`; 3 is right. `detach` hides the residual from higher-order gradients. */
const cube = (coef: number, detach = false) =>
  c.customVjp(
    (x: Tensor) => [c.mul(x, c.mul(x, x)), c.mul(c.mul(x, x), coef)],
    (r: Tensor, g: Tensor) => [c.mul(g, detach ? c.stopGradient(r) : r)],
  );
/** x · y with a custom VJP whose y-cotangent is scaled by `yCoef` (1 is right). */
const product = (yCoef: number) =>
  c.customVjp(
    (x: Tensor, y: Tensor) => [c.mul(x, y), [x, y]],
    ([x, y]: Tensor[], g: Tensor) => [c.mul(g, y), c.mul(c.mul(g, x), yCoef)],
  );
const cubeRef = (x: Nd): Nd => ({ shape: x.shape, data: x.data.map((v) => v ** 3) });

describe('checkGrads', () => {
  const x = (): Tensor => c.tensor([0.3, -1.2, 0.7, 2, -0.4, 1.1], [2, 3]);

  it('accepts a right custom VJP, at first and second order, with and without a reference', async () => {
    const t = x();
    const r1 = await checkGrads(cube(3), [t]);
    expect(r1.worst).toBeLessThan(1);
    await checkGrads(cube(3), [t], { order: 2 });
    const r2 = await checkGrads(cube(3), [t], { reference: cubeRef });
    expect(r2.worst).toBeLessThan(1);
    // Non-scalar outputs of several arguments, built-in ops.
    const y = c.tensor([1, 2, 3], [3]);
    await checkGrads((a, b) => c.matmul(c.sin(a), c.reshape(b, [3, 1])), [t, y], { order: 2 });
    c.tree.dispose([t, y]);
  });

  it('rejects a wrong custom VJP, naming the argument and the size of the disagreement', async () => {
    const t = x();
    await expect(checkGrads(cube(2), [t])).rejects.toThrow(/checkGrads: argument #0, direction 1: reverse-mode derivative .*, float64 central difference .*; they disagree by .* \(3\.3\de-1 relative\)/);
    await expect(checkGrads(cube(2), [t], { reference: cubeRef })).rejects.toThrow(/argument #0 element 0 \[0, 0\]: reverse-mode [\d.]+, float64 central difference of the reference [\d.]+; they disagree by [\d.]+e-2, [\d.]+e\+4 times the tolerance/);
    const y = c.tensor([0.5, -2, 1.5, 0.25, 3, -1], [2, 3]);
    await checkGrads(product(1), [t, y]);
    await expect(checkGrads(product(1.5), [t, y])).rejects.toThrow(/argument #1, direction 1/);
    // Only the arguments asked for are checked.
    await checkGrads(product(1.5), [t, y], { argnums: [0] });
    c.tree.dispose([t, y]);
  });

  it('order 2 rejects a VJP that is right at first order but hides its residual from the second', async () => {
    const t = x();
    await checkGrads(cube(3, true), [t]);
    await expect(checkGrads(cube(3, true), [t], { order: 2 })).rejects.toThrow(/second order \(the gradient of ⟨∇L, u⟩\), argument #0/);
    t.dispose();
  });

  it('refuses arguments it cannot check', async () => {
    const i = c.tensor([1, 2], [2], 'int32');
    await expect(checkGrads((a) => a, [i])).rejects.toThrow('checkGrads: argument #0 is int32; only float32 arguments have gradients');
    const t = x();
    await expect(checkGrads((a) => a, [t], { argnums: [1] })).rejects.toThrow('checkGrads: argnums has 1, but f has 1 argument(s)');
    c.tree.dispose([i, t]);
  });
});
