/**
 * Deterministic memory: `memory()` counts live tensors, storage buffers and bytes; a
 * reshape view shares its input's storage; disposing a handle never breaks a pending computation.
 * On wasm, a matmul whose tiled kernel has 4096 cells or more (4 x 16 tiles: [256, k] @ [k, 256])
 * runs on worker threads and returns before its result exists, so the "pending" cases below really
 * are pending there (each checks it). On webgpu every kernel is
 * asynchronous and results are device buffers that `dispose` frees, so counts are read after `sync()`.
 *
 * Inputs are made with `upload` (tensor(), then one kernel) so that on device backends the storage
 * under test is a device buffer, whose early free would show, and so that every kernel in this file
 * sees device-resident arguments (see the note on `upload`).
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, absMatmulRef, compare, count, matmulRef, nd, randomData, type Nd } from './reference.js';

/** What these tests count: live tensors, buffers and bytes (the cache of packed matmul operands has its own tests). */
type Mem = Omit<ReturnType<typeof c.memory>, 'cache'>;

/**
 * `tensor(values, shape)` copied once by a kernel: on webgpu/webgl the result lives in a device
 * buffer, so these tests exercise device storage where there is one.
 */
function upload(values: Float32Array | number[], shape: number[]): Tensor {
  const host = c.tensor(values, shape);
  const t = c.cast(host, 'float32');
  host.dispose();
  return t;
}

/** A float32 tensor of seeded random values (device-resident where the backend has a device) and its float64 twin. */
function rand(shape: number[], seed: number): [Tensor, Nd] {
  const data = randomData(count(shape), seed);
  return [upload(data, shape), nd(shape, data)];
}

function delta(now: Mem, before: Mem): Mem {
  return { tensors: now.tensors - before.tensors, buffers: now.buffers - before.buffers, bytes: now.bytes - before.bytes };
}

async function expectClose(t: Tensor, ref: Nd, tol: (i: number) => number): Promise<void> {
  const got = await t.data();
  const msg = compare(t.shape, got, ref, tol);
  expect(msg, msg ?? '').toBeNull();
}

const matmulTol = (a: Nd, b: Nd): ((i: number) => number) => {
  const scale = absMatmulRef(a, b).data;
  const k = a.shape[1];
  return (i) => (k + 2) * EPS32 * scale[i];
};

forEachBackend('memory', (name) => {
  it('memory() is back where it started after 200 iterations of ops that dispose what they make', async () => {
    await c.sync();
    const start = c.memory();
    let checked = 0;
    for (let iter = 0; iter < 200; iter++) {
      const made: Tensor[] = [];
      const keep = <T extends Tensor>(t: T): T => (made.push(t), t);
      // Every 25th iteration uses a matmul big enough to be queued on worker threads on wasm.
      const big = iter % 25 === 0;
      const [m, k, n] = big ? [256, 70, 256] : [3 + (iter % 5), 4 + (iter % 3), 5];
      const a = keep(upload(randomData(m * k, iter), [m, k]));
      const b = keep(upload(randomData(k * n, iter + 1000), [k, n]));
      const ab = keep(c.matmul(a, b));
      const shifted = keep(c.add(ab, 1));
      const flat = keep(c.reshape(shifted, [-1])); // a view
      const col = keep(c.expandDims(flat, 1)); // a view of a view
      const t = keep(c.transpose(shifted));
      const joined = keep(c.concat([shifted, keep(c.transpose(t))], 0));
      const total = keep(c.sum(joined));
      const rows = keep(c.sum(col, 1, true));
      expect(joined.shape).toEqual([2 * m, n]);
      expect(rows.shape).toEqual([m * n, 1]);
      if (iter % 40 === 0) {
        // Read now and then, so reads interleave with queued work; the check is on the values.
        const ar = nd([m, k], randomData(m * k, iter));
        const br = nd([k, n], randomData(k * n, iter + 1000));
        const want = 2 * (m * n + matmulRef(ar, br).data.reduce((x, y) => x + y, 0));
        // matmul (k terms), +1, then a sum of 2mn terms: within (2mn + k + 4) eps of 2 sum(|A||B| + 1).
        const scale = 2 * (m * n + absMatmulRef(ar, br).data.reduce((x, y) => x + y, 0));
        const got = (await total.data())[0];
        expect(Math.abs(got - want)).toBeLessThanOrEqual((2 * m * n + k + 4) * EPS32 * scale);
        checked++;
      }
      for (const x of made) x.dispose();
      if (iter === 0 || iter === 99) {
        await c.sync();
        expect(delta(c.memory(), start)).toEqual({ tensors: 0, buffers: 0, bytes: 0 });
      }
    }
    await c.sync();
    expect(checked).toBe(5);
    expect(c.memory()).toEqual(start);
  });

  it('ops count exactly what they make: one tensor, one buffer and its bytes per result', async () => {
    await c.sync();
    const before = c.memory();
    const x = c.ones([3, 5]);
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: 1, buffers: 1, bytes: 3 * 5 * 4 });
    const t = c.transpose(x);
    const y = c.matmul(x, t);
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: 3, buffers: 3, bytes: (15 + 15 + 9) * 4 });
    // Ops that make temporaries (a negative-index take, a reduction over non-adjacent axes) count only their result.
    const idx = c.tensor([-1, 0], undefined, 'int32');
    const xv = c.reshape(x, [3, 1, 5]); // a view: a tensor, no buffer
    const g = c.take(x, idx, 1);
    const r = c.sum(xv, [0, 2]);
    await c.sync();
    expect(g.shape).toEqual([3, 2]);
    expect(r.shape).toEqual([1]);
    expect(delta(c.memory(), before)).toEqual({ tensors: 7, buffers: 6, bytes: (15 + 15 + 9 + 2 + 6 + 1) * 4 });
    for (const u of [idx, xv, g, r]) u.dispose();
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: 3, buffers: 3, bytes: (15 + 15 + 9) * 4 });
    for (const u of [x, t, y]) u.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
  });

  it('a reshape view keeps the storage alive after the original is disposed', async () => {
    const [x, xr] = rand([4, 6], 11);
    await c.sync();
    const before = c.memory();
    const v = c.reshape(x, [2, 3, 4]);
    // A view is one more tensor, but no new buffer or bytes.
    expect(delta(c.memory(), before)).toEqual({ tensors: 1, buffers: 0, bytes: 0 });
    const e = c.expandDims(v, 0);
    const w = c.squeeze(e, 0); // a view of a view
    e.dispose();
    expect(delta(c.memory(), before)).toEqual({ tensors: 2, buffers: 0, bytes: 0 });
    x.dispose();
    expect(x.isDisposed).toBe(true);
    expect(v.isDisposed).toBe(false);
    // The storage is still counted: two views hold it.
    expect(delta(c.memory(), before)).toEqual({ tensors: 1, buffers: 0, bytes: 0 });
    expect(Array.from(await v.data())).toEqual(Array.from(xr.data));
    const s = c.sum(v, [1, 2]);
    await expectClose(s, nd([2], [0, 1].map((h) => xr.data.slice(h * 12, h * 12 + 12).reduce((a, b) => a + b, 0))), () => 12 * EPS32 * 12);
    s.dispose();
    v.dispose();
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: 0, buffers: 0, bytes: 0 });
    expect(Array.from(await w.data())).toEqual(Array.from(xr.data));
    w.dispose();
    // The last holder is gone: the buffer and its bytes are released.
    expect(delta(c.memory(), before)).toEqual({ tensors: -1, buffers: -1, bytes: -24 * 4 });
  });

  it('inputs disposed right after an op was issued still give a correct result', async () => {
    // [256,70] @ [70,256]: 4096 cells of 4 x 16 tiles, queued on worker threads on wasm, so the inputs are
    // disposed while the kernel has not run yet.
    const [a, ar] = rand([256, 70], 21);
    const [b, br] = rand([70, 256], 22);
    await c.sync();
    const before = c.memory();
    const y = c.matmul(a, b);
    if (name === 'wasm') expect(internal.isComputed(y), 'the matmul is still on the worker threads').toBe(false);
    a.dispose();
    b.dispose();
    const z = c.add(y, 1);
    y.dispose();
    const s = c.sum(z, 1);
    const want = matmulRef(ar, br);
    const tol = matmulTol(ar, br);
    const zd = await z.data();
    const msg = compare(z.shape, zd, nd(want.shape, want.data.map((v) => v + 1)), (i) => tol(i) + EPS32 * 2);
    expect(msg, msg ?? '').toBeNull();
    const rowSums = Array.from({ length: 256 }, (_, i) => Array.from(zd.slice(i * 256, i * 256 + 256)).reduce((p, q) => p + q, 0));
    await expectClose(s, nd([256], rowSums), (i) => 256 * EPS32 * Math.abs(rowSums[i]) + 256 * 256 * EPS32);
    z.dispose();
    s.dispose();
    await c.sync();
    // Everything made here is gone, and so are a and b (counted before, released now).
    expect(delta(c.memory(), before)).toEqual({ tensors: -2, buffers: -2, bytes: -2 * 256 * 70 * 4 });
  });

  it('a chain of ops each disposing its input as soon as the next is issued reads back correctly', async () => {
    const [x, xr] = rand([64, 64], 31);
    await c.sync();
    const before = c.memory();
    let t: Tensor = x;
    for (let i = 0; i < 5; i++) {
      const next: Tensor = i % 2 === 0 ? c.matmul(t, t, { transposeB: true }) : c.mul(t, 0.01);
      t.dispose();
      t = next;
    }
    // Reference: the same chain in float64.
    let r = xr;
    for (let i = 0; i < 5; i++) {
      r = i % 2 === 0 ? matmulRef(r, nd([r.shape[1], r.shape[0]], transposeData(r))) : nd(r.shape, r.data.map((v) => v * 0.01));
    }
    const got = await t.data();
    const scale = Math.max(...r.data.map(Math.abs));
    const msg = compare(t.shape, got, r, () => 1e-4 * scale);
    expect(msg, msg ?? '').toBeNull();
    t.dispose();
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: -1, buffers: -1, bytes: -64 * 64 * 4 });
  });

  // Library bug (webgpu; verified on the lavapipe adapter): data() takes the storage's payload, then
  // dispose() frees it (WebGPUBufferResult.delete()) before the read runs, so the read rejects with
  // "WebGPUBufferResult has been deleted". Host payloads (wasm, cpu) are left to the GC and survive.
  it('a read issued before dispose still resolves to the values', async () => {
    const [a, ar] = rand([256, 70], 41);
    const [b, br] = rand([70, 256], 42);
    const y = c.matmul(a, b);
    if (name === 'wasm') expect(internal.isComputed(y), 'the matmul is still on the worker threads').toBe(false);
    const pending = y.data();
    y.dispose();
    a.dispose();
    b.dispose();
    const got = await pending;
    const msg = compare([256, 256], got, matmulRef(ar, br), matmulTol(ar, br));
    expect(msg, msg ?? '').toBeNull();
  });

  it('dispose is idempotent, for a tensor and for a view sharing its storage', async () => {
    await c.sync();
    const before = c.memory();
    const x = upload([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = c.reshape(x, [3, 2]);
    v.dispose();
    v.dispose();
    v.dispose();
    await c.sync();
    // Disposing the view three times released its one reference once: x is intact.
    expect(delta(c.memory(), before)).toEqual({ tensors: 1, buffers: 1, bytes: 24 });
    expect(Array.from(await x.data())).toEqual([1, 2, 3, 4, 5, 6]);
    const y = c.add(x, 1);
    x.dispose();
    x.dispose();
    await c.sync();
    expect(delta(c.memory(), before)).toEqual({ tensors: 1, buffers: 1, bytes: 24 });
    expect(Array.from(await y.data())).toEqual([2, 3, 4, 5, 6, 7]);
    y.dispose();
    y.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
    expect(y.isDisposed).toBe(true);
  });

  it('ops rejected by their checks leave memory() unchanged', async () => {
    const x = c.zeros([2, 3]);
    const four = c.zeros([4]);
    const i = c.tensor([1, 2], undefined, 'int32');
    const far = c.tensor([0, 2], undefined, 'int32');
    await c.sync();
    const before = c.memory();
    expect(() => c.add(x, four)).toThrow(/add/);
    expect(() => c.matmul(x, x)).toThrow(/matmul/);
    expect(() => c.where(x, 1, i)).toThrow(/where/); // a constant is made, then freed when broadcasting fails
    expect(() => c.where(four, 1, x)).toThrow(/where/);
    expect(() => c.take(x, four)).toThrow(/take/); // float32 indices
    expect(() => c.reshape(x, [4])).toThrow(/reshape/);
    expect(() => c.concat([x, four])).toThrow(/concat/);
    expect(() => c.stack([x, four])).toThrow(/stack/);
    expect(c.memory()).toEqual(before);
    for (const t of [x, four, i, far]) t.dispose();
  });

  // An op whose checks fail after a JS number was turned into a constant tensor must not leak it.
  it('div of an int32 tensor by a number throws without leaking the constant', () => {
    const i = c.tensor([2, 4], undefined, 'int32');
    const before = c.memory();
    expect(() => c.div(i, 2)).toThrow(/div/);
    i.dispose();
    expect(delta(c.memory(), before)).toEqual({ tensors: -1, buffers: -1, bytes: -8 });
  });

  it('add of a number and a disposed tensor throws without leaking the constant', () => {
    const x = c.ones([2]);
    x.dispose();
    const before = c.memory();
    expect(() => c.add(3, x)).toThrow(/disposed/);
    expect(c.memory()).toEqual(before);
  });

  it('clip with a bound of the wrong dtype throws without leaking the other bound', () => {
    const x = c.ones([2]);
    const hi = c.tensor([1, 1], undefined, 'int32');
    const before = c.memory();
    expect(() => c.clip(x, 0, hi)).toThrow(/clip/);
    expect(c.memory()).toEqual(before);
    x.dispose();
    hi.dispose();
  });

  // Same family: full() uploads [start, step] before launch() rejects an output of 2^31 elements
  // (one more than a tensor may hold on any backend).
  it('full of 2^31 elements throws without leaking its parameter tensor', () => {
    const before = c.memory();
    expect(() => c.full([65536, 32768], 1)).toThrow(/full: output of shape \[65536,32768\] has 2147483648 elements/);
    expect(c.memory()).toEqual(before);
  });

  // A loop that never awaits: queued work finishes only in the event loop, which such a loop never
  // reaches. On wasm the first matmul below ([256, 8] @ [8, 256]: 4096 cells of 4 x 16 tiles) is
  // queued for worker threads; before the engine bounded its queue, every later op queued behind it
  // and memory().buffers grew with every step. On webgpu every kernel call completes in the event
  // loop, so no loop can progress without an await: the next test checks that it is refused instead.
  // On cpu no kernel is asynchronous (only jobs and pipelines queue: the next test, and sorsa's).
  if (name === 'wasm') {
    it('a gradient-descent loop of 2400 steps without an await keeps memory().buffers bounded, with the float64 result', async () => {
      const [m, k, n, steps] = [256, 8, 256, 2400];
      const [A, Ar] = rand([m, k], 51);
      const [W0, Wr] = rand([k, n], 52);
      const [Y, Yr] = rand([m, n], 53);
      let frob = 0;
      for (const v of Ar.data) frob += v * v;
      const lr = 0.5 / frob; // below 2 / λmax(AᵀA): the iteration contracts, so errors do not grow
      await c.sync();
      const before = c.memory();
      let W = W0;
      const counts: number[] = [];
      for (let i = 0; i < steps; i++) {
        const next = c.tidy(() => {
          const R = c.sub(c.matmul(A, W), Y);
          return c.sub(W, c.mul(c.matmul(A, R, { transposeA: true }), lr));
        });
        W.dispose();
        W = next;
        counts.push(c.memory().buffers - before.buffers);
      }
      const peak = (from: number, to: number): number => Math.max(...counts.slice(from, to));
      // Bounded by a constant (the engine drains its queue at 4096 calls, here every 800 steps or
      // so at 5 launches a step; 8 buffers a step, unbounded, would reach 19200), and no growth from
      // the first half of the loop to the second: each half holds at least one whole drain cycle.
      expect(peak(0, steps)).toBeLessThan(6000);
      expect(peak(steps / 2, steps)).toBeLessThanOrEqual(peak(0, steps / 2) + 8);
      // Reference: the same iteration in float64; per step, each element's float32 error is within
      // (k + 4) eps of the magnitudes it is made of, and the contracting iteration only adds them up.
      let w = Float64Array.from(Wr.data);
      let perStep = 0;
      for (let i = 0; i < steps; i++) {
        const r = new Float64Array(m * n);
        const rAbs = new Float64Array(m * n);
        for (let a = 0; a < m; a++) {
          for (let b = 0; b < n; b++) {
            let acc = 0;
            let abs = 0;
            for (let t = 0; t < k; t++) {
              acc += Ar.data[a * k + t] * w[t * n + b];
              abs += Math.abs(Ar.data[a * k + t] * w[t * n + b]);
            }
            r[a * n + b] = acc - Yr.data[a * n + b];
            rAbs[a * n + b] = abs + Math.abs(Yr.data[a * n + b]);
          }
        }
        const out = new Float64Array(k * n);
        for (let t = 0; t < k; t++) {
          for (let b = 0; b < n; b++) {
            let g = 0;
            let gAbs = 0;
            for (let a = 0; a < m; a++) {
              g += Ar.data[a * k + t] * r[a * n + b];
              gAbs += Math.abs(Ar.data[a * k + t]) * rAbs[a * n + b];
            }
            out[t * n + b] = w[t * n + b] - lr * g;
            perStep = Math.max(perStep, (k + m + 4) * EPS32 * (Math.abs(w[t * n + b]) + lr * gAbs));
          }
        }
        w = out;
      }
      await expectClose(W, nd([k, n], w), () => steps * perStep);
      for (const t of [A, W, Y]) t.dispose();
      await c.sync();
      // A, Y and W0 (counted before the loop) are gone too.
      expect(delta(c.memory(), before)).toEqual({ tensors: -3, buffers: -3, bytes: -(m * k + m * n + k * n) * 4 });
    });
  }

  it('ops queued behind work that needs an await are refused past a limit, naming it; what was queued still runs', async () => {
    await c.sync();
    const before = c.memory();
    const x = upload([1, 2], [2]);
    // A job whose body waits for a timer: it cannot finish until the program yields.
    const [j] = internal.launchJob('test:waits', [x], [[2]], async (ctx, [p]) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return [await ctx.run({ key: 'test:copy', arrays: ['a'], scalars: [], body: 'return a[this.thread.x];' }, [2], [p], [])];
    });
    let t = c.add(j, 0);
    let issued = 0;
    let error: Error | undefined;
    for (; issued < 200_000; issued++) {
      try {
        const next = c.add(t, 1);
        t.dispose();
        t = next;
      } catch (e) {
        error = e as Error;
        break;
      }
    }
    // On webgpu the queue's first call is the upload's kernel (every webgpu call waits for the event loop).
    const head = name === 'webgpu' ? '(a job "test:waits"|kernel "[^"]+")' : 'a job "test:waits"';
    expect(error?.message).toMatch(new RegExp(`^kernel "[^"]+" on ${name}: \\d+ calls are already queued behind ${head}, which can only finish when the program awaits.*await sync\\(\\)`, 's'));
    // Refused at a bound far below what was tried, and not before tens of thousands of ops.
    expect(issued).toBeGreaterThan(10_000);
    expect(issued).toBeLessThan(100_000);
    // The queue holds a couple of storages per call (its result and its operand 1), no more.
    expect(c.memory().buffers - before.buffers).toBeLessThanOrEqual(2 * issued + 8);
    // A refused op makes nothing.
    const full = c.memory();
    expect(() => c.mul(t, 2)).toThrow(/calls are already queued behind/);
    expect(c.memory()).toEqual(full);
    // Everything queued runs once the program awaits, in order: 1 + issued, 2 + issued.
    expect(Array.from(await t.data())).toEqual([1 + issued, 2 + issued]);
    for (const u of [x, j, t]) u.dispose();
    await c.sync();
    expect(c.memory()).toEqual(before);
  });

  it(`runs on ${name}`, () => {
    expect(c.backend()).toBe(name);
  });
});

function transposeData(x: Nd): Float64Array {
  const [m, n] = x.shape;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = x.data[i * n + j];
  return out;
}
