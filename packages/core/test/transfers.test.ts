/**
 * Host <-> device transfers (`internal.transfers()`), counted on the WebGPU device below gpu.js: that
 * the counters see every read and upload (so that a test asserting zero of them means something),
 * and that host data crosses to the device once: a tensor made by `tensor()` is uploaded by the first
 * kernel that reads it and bound from the device by every later one, and the constants ops make from
 * numbers are uploaded once per value. On the other backends `counted` is false and the counts stay 0.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { forEachBackend } from './backends.js';

type Counts = ReturnType<typeof internal.transfers>;

/** The counts of `run` (awaited, then everything queued finished), and its kernel launches. */
async function during(run: () => Promise<void> | void): Promise<Omit<Counts, 'counted'> & { launches: number }> {
  await c.sync();
  const a = internal.transfers();
  const l0 = internal.launches();
  await run();
  await c.sync();
  const b = internal.transfers();
  return { launches: internal.launches() - l0, reads: b.reads - a.reads, readBytes: b.readBytes - a.readBytes, uploads: b.uploads - a.uploads, uploadBytes: b.uploadBytes - a.uploadBytes, params: b.params - a.params, paramBytes: b.paramBytes - a.paramBytes };
}

forEachBackend('transfers', (name) => {
  const device = name === 'webgpu';

  it(device ? 'are counted on webgpu' : `are not counted on ${name}`, () => {
    expect(internal.transfers().counted).toBe(device);
  });

  it('a read back is one read of its bytes; a kernel result stays on the device', async () => {
    const x = c.tensor(Float32Array.from({ length: 1000 }, (_, i) => i));
    const y = c.mul(x, x);
    await c.sync();
    if (device) expect(internal.hostValues(y)).toBeUndefined();
    const got = await during(async () => {
      const v = await y.data();
      expect(v[999]).toBe(999 * 999);
    });
    expect(got.reads).toBe(device ? 1 : 0);
    expect(got.readBytes).toBe(device ? 4000 : 0);
    expect(got.uploads).toBe(0);
    c.tree.dispose([x, y]);
  });

  it('host data is uploaded by the first kernel that reads it, and never again', async () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => i / 500 - 1);
    let x: c.Tensor | undefined;
    const made = await during(() => {
      x = c.tensor(values);
    });
    expect(made.uploads).toBe(0);
    const outs: c.Tensor[] = [];
    const first = await during(() => {
      outs.push(c.exp(x!));
    });
    expect(first.uploads).toBe(device ? 1 : 0);
    expect(first.uploadBytes).toBe(device ? 4000 : 0);
    const later = await during(() => {
      for (let i = 0; i < 5; i++) outs.push(c.add(x!, outs[outs.length - 1]));
    });
    expect(later.uploads).toBe(0);
    expect(later.reads).toBe(0);
    // Host values are still what a read returns: no readback for them.
    const read = await during(async () => {
      expect(Array.from(await x!.data())).toEqual(Array.from(values));
    });
    expect(read.reads).toBe(0);
    // And the results are right (the device copy is the host data).
    const last = await outs[outs.length - 1].data();
    for (const i of [0, 1, 500, 999]) expect(last[i]).toBeCloseTo(Math.exp(values[i]) + 5 * values[i], 5);
    c.tree.dispose([x!, outs]);
  });

  it('constants made from numbers are uploaded once per value; every launch writes one parameter block', async () => {
    const x = c.cast(c.tensor([1, 2, 3, 4]), 'float32');
    const seen = 0.123456789 + Math.random(); // a value no earlier test met
    const first = await during(() => c.tidy(() => void c.mul(c.add(x, seen), 2.5)));
    expect(first.uploads).toBeLessThanOrEqual(device ? 2 : 0);
    expect(first.uploads).toBeGreaterThanOrEqual(device ? 1 : 0);
    const again = await during(() => {
      for (let i = 0; i < 10; i++) c.tidy(() => void c.mul(c.add(x, seen), 2.5));
    });
    expect(again.uploads).toBe(0);
    expect(again.reads).toBe(0);
    expect(again.launches).toBe(20);
    expect(again.params).toBe(device ? 20 : 0);
    // A new value is a new upload: the counter sees constants too.
    const fresh = await during(() => c.tidy(() => void c.add(x, seen + 1)));
    expect(fresh.uploads).toBe(device ? 1 : 0);
    x.dispose();
  });

  it('leaves no tensor or storage behind', async () => {
    await c.sync();
    const before = c.memory();
    const x = c.tensor(Float32Array.from({ length: 64 }, (_, i) => i));
    const y = c.tidy(() => c.sum(c.mul(c.add(x, 1), x)));
    expect((await y.data())[0]).toBe(Array.from({ length: 64 }, (_, i) => (i + 1) * i).reduce((a, b) => a + b, 0));
    c.tree.dispose([x, y]);
    await c.sync();
    expect(c.memory()).toEqual(before);
  });
});
