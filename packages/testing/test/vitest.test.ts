/**
 * The vitest matchers, registered by one import and no config: they pass, fail with the assertion's
 * message (path, index, values, tolerance), and negate with `.not`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import '@sorsajs/testing/vitest';
import * as c from '@sorsajs/core';

beforeAll(async () => {
  await c.init({ backend: 'cpu' });
});

describe('@sorsajs/testing/vitest', () => {
  it('toBeAllClose passes, fails naming the index, and negates', async () => {
    const t = c.tensor([1, 2, 3], [3]);
    await expect(t).toBeAllClose([1, 2, 3]);
    await expect({ w: t }).toBeAllClose({ w: new Float64Array([1, 2, 3]) });
    await expect(expect(t).toBeAllClose([1, 2, 3.1])).rejects.toThrow(/assertAllClose: at \(root\) index 2: actual 3, expected 3\.1/);
    await expect(t).not.toBeAllClose([1, 2, 3.1]);
    await expect(expect(t).not.toBeAllClose([1, 2, 3])).rejects.toThrow('expected the values not to satisfy toBeAllClose');
    t.dispose();
  });

  it('toBeOrthonormal', async () => {
    const q = c.tensor([0.6, 0.8, -0.8, 0.6], [2, 2]);
    await expect(q).toBeOrthonormal();
    const p = c.tensor([1, 1, 0, 1], [2, 2]);
    await expect(p).not.toBeOrthonormal();
    await expect(expect(p).toBeOrthonormal()).rejects.toThrow('assertOrthonormal: 2 x 2 matrix, columns 0 and 1: (QᵀQ)[0, 1] = 1, expected 0');
    c.tree.dispose([p, q]);
  });
});
