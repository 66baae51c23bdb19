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

/** The few WebGPU calls the raw checks below make (the spec's flag values: Node has no GPUBufferUsage before Dawn loads). */
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
interface RawBuffer {
  size: number;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}
interface RawDevice {
  queue: { writeBuffer(b: RawBuffer, offset: number, data: ArrayBufferView): void; submit(cbs: unknown[]): void };
  createBuffer(desc: { size: number; usage: number }): RawBuffer;
  createCommandEncoder(): { copyBufferToBuffer(s: RawBuffer, so: number, d: RawBuffer, dOff: number, n: number): void; finish(): unknown };
  pushErrorScope(f: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
  destroy(): void;
}

/** A device of its own from sorsajs's navigator.gpu (so batched, as gpu.js's is), for checks in plain WebGPU calls. */
async function rawDevice(): Promise<RawDevice> {
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<{ requestDevice(): Promise<RawDevice> } | null> } } }).navigator.gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no adapter');
  return adapter.requestDevice();
}

function copy(device: RawDevice, src: RawBuffer, dst: RawBuffer, bytes: number): void {
  const e = device.createCommandEncoder();
  e.copyBufferToBuffer(src, 0, dst, 0, bytes);
  device.queue.submit([e.finish()]);
}

async function read(device: RawDevice, src: RawBuffer, bytes: number): Promise<number[]> {
  const staging = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
  copy(device, src, staging, bytes);
  try {
    await staging.mapAsync(MAP_READ);
    const out = Array.from(new Float32Array(staging.getMappedRange().slice(0)));
    staging.unmap();
    return out;
  } finally {
    staging.destroy();
  }
}

suite(`webgpu launch batching, in plain WebGPU calls${reason ? ` — SKIPPED: ${reason}` : ''}`, () => {
  let device: RawDevice;
  beforeAll(async () => {
    await c.init({ backend: 'webgpu' });
    device = await rawDevice();
  });

  it('writes while copies are pending land in order; one past the end fails alone, at the write; one over 1 MiB goes straight in', async () => {
    const src = device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST });
    const [first, second, third] = [0, 1, 2].map(() => device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST }));
    const big = device.createBuffer({ size: (1 << 20) + 16, usage: COPY_SRC | COPY_DST });
    device.queue.writeBuffer(src, 0, new Float32Array([1, 2, 3, 4]));
    copy(device, src, first, 16);
    device.queue.writeBuffer(src, 0, new Float32Array([5, 6, 7, 8]));
    copy(device, src, second, 16);
    device.pushErrorScope('validation');
    device.queue.writeBuffer(src, 8, new Float32Array(4)); // 8 + 16 bytes > 16
    const error = await device.popErrorScope();
    expect(error?.message).toBeTruthy();
    const values = new Float32Array((1 << 18) + 4).fill(9);
    device.queue.writeBuffer(big, 0, values); // over 1 MiB: what is pending goes out first
    copy(device, big, third, 16);
    expect(await read(device, first, 16)).toEqual([1, 2, 3, 4]);
    expect(await read(device, second, 16)).toEqual([5, 6, 7, 8]);
    expect(await read(device, third, 16)).toEqual([9, 9, 9, 9]);
    for (const b of [src, first, second, third, big]) b.destroy();
  });

  it('a read whose batch holds an invalid command rejects, naming the failure, instead of returning old values', async () => {
    const src = device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST });
    const small = device.createBuffer({ size: 8, usage: COPY_SRC | COPY_DST });
    device.queue.writeBuffer(src, 0, new Float32Array([1, 2, 3, 4]));
    const staging = device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
    // A first read through the same staging buffer, so that it holds values a failed read could return.
    copy(device, src, staging, 16);
    await staging.mapAsync(MAP_READ);
    staging.unmap();
    copy(device, src, small, 16); // 16 bytes into an 8-byte buffer: invalid
    copy(device, src, staging, 16);
    await expect(staging.mapAsync(MAP_READ)).rejects.toThrow(/^webgpu: a batch of kernel launches failed, so this read has no result: /);
    // The next batch is whole again.
    expect(await read(device, src, 16)).toEqual([1, 2, 3, 4]);
    for (const b of [src, small, staging]) b.destroy();
  });

  it('staged writes past the upload ring\'s 4 MiB send what is pending first, and every write lands in order', async () => {
    const target = device.createBuffer({ size: 1 << 20, usage: COPY_SRC | COPY_DST });
    const outs = Array.from({ length: 8 }, () => device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST }));
    const before = internal.webgpuBatches();
    for (let k = 0; k < 8; k++) {
      copy(device, target, outs[Math.max(0, k - 1)], 16); // a pending launch, so the next write is staged
      device.queue.writeBuffer(target, 0, new Float32Array((1 << 18) - 1).fill(k + 1)); // just under 1 MiB
      copy(device, target, outs[k], 16);
    }
    // 8 MiB staged: the ring filled at least once before any read or idle moment.
    expect(internal.webgpuBatches().submits - before.submits).toBeGreaterThanOrEqual(1);
    for (let k = 0; k < 8; k++) expect(await read(device, outs[k], 16)).toEqual([k + 1, k + 1, k + 1, k + 1]);
    for (const b of [target, ...outs]) b.destroy();
  });

  it('256 pending launches go out without a read, and the rest when the host is idle', async () => {
    const src = device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST });
    const dst = device.createBuffer({ size: 16, usage: COPY_SRC | COPY_DST });
    device.queue.writeBuffer(src, 0, new Float32Array([4, 3, 2, 1]));
    const before = internal.webgpuBatches();
    for (let i = 0; i < 300; i++) copy(device, src, dst, 16);
    const atCap = internal.webgpuBatches();
    expect(atCap.launches - before.launches).toBe(300);
    expect(atCap.submits - before.submits).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(internal.webgpuBatches().submits - before.submits).toBe(2);
    expect(await read(device, dst, 16)).toEqual([4, 3, 2, 1]);
    src.destroy();
    dst.destroy();
  });
});
