/**
 * WebGPU launches batched into shared command buffers (backend/webgpu-batch.ts): many launches go
 * out in one submit, and the queue's order is kept: a kernel launched again before the submit still
 * reads its own parameters, a host upload lands between the launches around it, and a readback
 * waits for exactly what was launched before it. Checked against values computed here in float64.
 * Skipped, saying why, where there is no WebGPU (Mesa's lavapipe stands in for a GPU in CI).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { skipReason } from '@sorsajs/testing/backends';

const reason = skipReason('webgpu');
if (reason) console.warn(`[sorsajs tests] SKIPPING the webgpu launch batching checks: ${reason}`);
const suite = reason ? describe.skip : describe;

/** a * x + b per cell, with a and b scalar arguments: they live in the launch's parameter block. */
const AXPB: internal.KernelSource = {
  key: 'test:batch:axpb',
  arrays: ['x'],
  scalars: ['a', 'b'],
  floats: ['a', 'b'],
  body: 'return a * x[this.thread.x] + b;',
};

suite(`webgpu launch batching${reason ? ` — SKIPPED: ${reason}` : ''}`, () => {
  beforeAll(async () => {
    await c.init({ backend: 'webgpu' });
  });

  it('one kernel launched 40 times with different scalars before any read: each result is its own', async () => {
    const n = 8;
    const host = Float32Array.from({ length: n }, (_, i) => i - 3);
    const x = c.tensor(host);
    const before = internal.webgpuBatches();
    // Dependent and independent launches of the same kernel, none read until all are encoded.
    const outs: c.Tensor[] = [];
    let chain = x;
    for (let k = 0; k < 40; k++) {
      outs.push(internal.launch('test', AXPB, [n], 'float32', [x], [k + 1, -k]));
      chain = internal.launch('test', AXPB, [n], 'float32', [chain], [1, 0.25 * k]);
    }
    await c.sync();
    const after = internal.webgpuBatches();
    // Each read then submits what is pending and maps its buffer: reads synchronize, launches do not.
    const got = await Promise.all([...outs, chain].map((t) => t.data()));
    for (let k = 0; k < 40; k++) {
      expect(Array.from(got[k])).toEqual(Array.from(host, (v) => (k + 1) * v - k));
    }
    // chain: x + 0.25 (0 + 1 + ... + 39) = x + 195, exact in float32.
    expect(Array.from(got[40])).toEqual(Array.from(host, (v) => v + 195));
    const launched = after.launches - before.launches;
    expect(launched).toBeGreaterThanOrEqual(80);
    // Fewer command buffers than launches: they went out together (here in 0-2 submits; a compile
    // or the host going idle may send a batch off early).
    expect(after.submits - before.submits).toBeLessThan(launched / 4);
    c.tree.dispose([x, ...outs, chain]);
  });

  it('a host upload between pending launches lands between them, and a read in the middle sees only what came before', async () => {
    const n = 1024;
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
    const x = c.tensor(a);
    const first = internal.launch('test', AXPB, [n], 'float32', [x], [2, 1]);
    // A fresh host array passed to a kernel is uploaded while `first` is pending.
    const y = c.tensor(b);
    const second = internal.launch('test', AXPB, [n], 'float32', [y], [-1, 0.5]);
    const mid = await first.data();
    const third = internal.launch('test', AXPB, [n], 'float32', [second], [3, 0]);
    const [s2, s3] = await Promise.all([second.data(), third.data()]);
    for (let i = 0; i < n; i++) {
      expect(mid[i]).toBe(Math.fround(Math.fround(2 * a[i]) + 1));
      const v = Math.fround(Math.fround(-b[i]) + 0.5);
      expect(s2[i]).toBe(v);
      expect(s3[i]).toBe(Math.fround(3 * v));
    }
    c.tree.dispose([x, y, first, second, third]);
  });

  it('a tensor disposed while launches that read it are pending leaves their results whole', async () => {
    const n = 4096;
    const host = Float32Array.from({ length: n }, (_, i) => i % 97);
    const x = c.tensor(host);
    const y = internal.launch('test', AXPB, [n], 'float32', [x], [1, 1]);
    const z = internal.launch('test', AXPB, [n], 'float32', [y], [2, 0]);
    y.dispose();
    x.dispose();
    const got = await z.data();
    expect(Array.from(got)).toEqual(Array.from(host, (v) => 2 * (v + 1)));
    z.dispose();
  });
});
