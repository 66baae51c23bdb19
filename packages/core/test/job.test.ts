/**
 * Engine jobs (`internal.launchJob`): asynchronous multi-kernel work that holds the queue and may
 * read values back between kernels, with synchronous-looking results. Checked on every backend:
 * results arrive in order with later ops, a loop decided by read-back values runs as decided, an
 * error inside the body rejects the results with its message, and nothing leaks: every test compares
 * all of `memory()` (tensors, storage buffers, bytes) with its value before, after `sync()`. A job's
 * body makes no tensors, so only the buffer and byte counts can show a job that keeps its inputs or
 * results alive.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { forEachBackend } from './backends.js';

const DOUBLE: internal.KernelSource = { key: 'test:double', arrays: ['a'], scalars: [], body: 'return a[this.thread.x] * 2.0;' };
const SUM: internal.KernelSource = { key: 'test:sum', arrays: ['a'], scalars: ['n'], body: 'let s = 0.0;\nfor (let i = 0; i < n; i++) { s += a[i]; }\nreturn s;' };

forEachBackend('jobs', () => {
  it('doubles until the sum passes a bound read back each round, in order with later ops', async () => {
    await c.sync();
    const before = c.memory();
    const x = c.tensor([1, 2, 3]);
    let rounds = 0;
    const [y] = internal.launchJob('test', [x], [[3]], async (ctx, [p]) => {
      let cur = p;
      for (;;) {
        const next = await ctx.run(DOUBLE, [3], [cur], []);
        if (cur !== p) ctx.free(cur);
        cur = next;
        rounds++;
        const s = await ctx.run(SUM, [1], [cur], [3]);
        const total = (await ctx.read(s))[0];
        ctx.free(s);
        if (total > 100) return [cur];
      }
    });
    // An op issued after the job queues behind it and sees its result.
    const z = c.add(y, 1);
    expect(Array.from(await z.data())).toEqual([33, 65, 97]);
    // 6 -> 12 -> 24 -> 48 -> 96 -> 192: five rounds, decided on values read back.
    expect(rounds).toBe(5);
    expect(Array.from(await y.data())).toEqual([32, 64, 96]);
    for (const t of [x, y, z]) t.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
  });

  it('rejects its results with the error thrown in the body, and later work still runs', async () => {
    await c.sync();
    const before = c.memory();
    const x = c.tensor([1, 2]);
    const [y] = internal.launchJob('test', [x], [[2]], async () => {
      throw new Error('test: the body failed on purpose');
    });
    await expect(y.data()).rejects.toThrow(/the body failed on purpose/);
    const z = c.mul(x, 3);
    expect(Array.from(await z.data())).toEqual([3, 6]);
    for (const t of [x, y, z]) t.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
  });

  it('keeps its inputs alive when the caller disposes them at once, and leaves nothing behind', async () => {
    await c.sync();
    const before = c.memory();
    const x = c.tensor([4, 5]);
    const [y] = internal.launchJob('test', [x], [[2]], async (ctx, [p]) => [await ctx.run(DOUBLE, [2], [p], [])]);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([8, 10]);
    y.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
  });
});
