/**
 * Changes `patches/gpu.js+2.24.1.patch` makes to gpu.js's webasm backend, checked on wasm
 * against plain host loops: a read at `uniform + this.thread.x` (or at a `const` equal to
 * `this.thread.x`) becomes one SIMD load (with the clamped gather kept for quads that run past the
 * end), and a threaded kernel's calling thread
 * computes alongside the pool, chunks claimed from a shared counter. Both must give exactly what the
 * single-threaded scalar formula gives, for any output size and shape. And a result is copied into
 * the array a caller sets as `outputTarget` (core's recycled arrays), for that one call.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

const reasons = await c.backendReasons();
const only = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim());
const skip = reasons.wasm ?? (only && !only.includes('wasm') ? `not in SORSA_BACKENDS=${process.env.SORSA_BACKENDS}` : undefined);
if (skip) console.warn(`[sorsajs tests] SKIPPING the gpu.js patch checks: wasm backend unavailable: ${skip}`);

const gpujsDir = dirname(createRequire(import.meta.url).resolve('gpu.js/package.json'));

/** A cell's value from a read at `off + this.thread.x` and a per-cell loop, so chunks have real work. */
const SHIFTED: internal.KernelSource = {
  key: 'test:patch:shifted',
  arrays: ['a'],
  scalars: ['off', 'it'],
  body: `let t = 0.0;
const v = a[off + this.thread.x];
for (let i = 0; i < it; i++) { t = t * 0.5 + v; }
return t + this.thread.x * 0.001;`,
};
const THREADED: internal.KernelSource = { ...SHIFTED, key: 'test:patch:shifted:threads', threaded: true };

/** The kernel's formula in float64, clamping the read like gpu.js does for indices past the end. */
function reference(a: Float32Array, off: number, it: number, cells: number): Float64Array {
  const out = new Float64Array(cells);
  for (let x = 0; x < cells; x++) {
    const v = a[Math.min(off + x, a.length - 1)];
    let t = 0;
    for (let i = 0; i < it; i++) t = t * 0.5 + v;
    out[x] = t + x * 0.001;
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: Float64Array): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  // A few float32 roundings per cell (the loop's halving is exact; the last add rounds).
  expect(worst).toBeLessThan(8 * 2 ** -23);
}

describe.skipIf(!!skip)(`gpu.js patch on wasm${skip ? ` — SKIPPED: ${skip}` : ''}`, () => {
  beforeAll(async () => {
    await c.init({ backend: 'wasm' });
  });

  it('is applied to the installed gpu.js (postinstall ran)', () => {
    const fn = readFileSync(join(gpujsDir, 'src/backend/web-assembly/function-node.js'), 'utf8');
    const kernel = readFileSync(join(gpujsDir, 'src/backend/web-assembly/kernel.js'), 'utf8');
    expect(fn).toContain('sorsajs patch');
    expect(kernel).toContain('_dispatchShared');
  });

  it("tensor size limits follow the patch's marker property, not comments a bundler may drop", async () => {
    const gpujs = (await import('gpu.js')).default as unknown as Record<string, { sorsajsIntegerLocals?: unknown }>;
    const nodes = [gpujs.WebAssemblyFunctionNode, gpujs.WGSLFunctionNode];
    expect(nodes.map((n) => n.sorsajsIntegerLocals)).toEqual([true, true]);
    expect(c.maxElements('wasm')).toBe(2 ** 31 - 1);
    // Without the marker (an unpatched gpu.js) wasm falls back to float32 addressing's 2^24 - 1,
    // and says why; the marker back, int32 again.
    delete nodes[0].sorsajsIntegerLocals;
    try {
      expect(c.maxElements('wasm')).toBe(2 ** 24 - 1);
      expect(() => c.zeros([4097, 4097])).toThrow(/more than the 16777215 .*gpu.js is not patched/);
    } finally {
      nodes[0].sorsajsIntegerLocals = true;
    }
    expect(c.maxElements('wasm')).toBe(2 ** 31 - 1);
  });
  it("the wasm probe passes with the patch, and names the patch when kernels cannot return Array(16)", async () => {
    await c.init({ backend: 'wasm' });
    const e = internal.currentEngine();
    expect(await internal.probeWide(e)).toBeNull();
    // What upstream gpu.js's wasm code generator says to a wide return, as init would meet it.
    const run = e.run;
    e.run = () => {
      throw new Error('kernel "probe:wide" failed on wasm: WebAssembly backend does not yet support returning Array(16) on line 2, position 1:');
    };
    try {
      expect(await internal.probeWide(e)).toMatch(/^gpu\.js is not patched: its wasm kernels cannot return Array\(16\), which matmul needs \(.*does not yet support returning Array\(16\).*patches\/gpu\.js\+2\.24\.1\.patch.*init\(\{ backend: 'cpu' \}\)/);
      // Another failure is reported as it is, not blamed on the patch.
      e.run = () => {
        throw new Error('out of memory');
      };
      expect(await internal.probeWide(e)).toBe('a kernel returning Array(16) failed: out of memory');
    } finally {
      e.run = run;
    }
  });

  it('reads at uniform + thread.x match the scalar formula, also past the end (clamped)', async () => {
    const a = new Float32Array(37).map((_, i) => Math.sin(i) * 3);
    const t = c.tensor(a, [37]);
    for (const off of [0, 1, 3, 30, 34, 36]) {
      const out = internal.launch('test', SHIFTED, [8], 'float32', [t], [off, 1]);
      expectClose(await out.data(), reference(a, off, 1, 8));
      out.dispose();
    }
    t.dispose();
  });

  it('a `const` that is this.thread.x reads as one SIMD load; a reassigned or twice-declared name keeps the gather, and all equal the formula', async () => {
    const require = createRequire(import.meta.url);
    const node = require('gpu.js/src/backend/web-assembly/function-node.js') as { WebAssemblyFunctionNode: { prototype: { vContiguousBase(p: unknown): unknown } } };
    const proto = node.WebAssemblyFunctionNode.prototype;
    const original = proto.vContiguousBase;
    const seen: { kernel: string; fast: boolean }[] = [];
    let current = '';
    proto.vContiguousBase = function (this: unknown, p: unknown) {
      const r = original.call(this, p);
      seen.push({ kernel: current, fast: r !== null });
      return r;
    };
    // Each kernel's value at cell x, from a plain loop: a[clamp(x + off)] * 2 + 1, or a shifted read.
    const cases: { name: string; body: string; fast: boolean; at: (x: number, off: number) => number }[] = [
      { name: 'alias', body: 'const i = this.thread.x;\nreturn a[i + off] * 2.0 + 1.0;', fast: true, at: (x, off) => x + off },
      { name: 'alias-left', body: 'const i = this.thread.x;\nreturn a[off + i] * 2.0 + 1.0;', fast: true, at: (x, off) => x + off },
      { name: 'let', body: 'let i = this.thread.x;\ni = i + 1;\nreturn a[i + off] * 2.0 + 1.0;', fast: false, at: (x, off) => x + off + 1 },
      {
        name: 'twice',
        body: 'let t = 0.0;\nif (this.thread.x % 2 === 0) { const i = this.thread.x; t = a[i + off]; } else { const i = this.thread.x + 1; t = a[i + off]; }\nreturn t * 2.0 + 1.0;',
        fast: false,
        at: (x, off) => x + off + (x % 2),
      },
    ];
    try {
      const a = new Float32Array(41).map((_, i) => Math.sin(i) * 3);
      const t = c.tensor(a, [41]);
      for (const k of cases) {
        const src: internal.KernelSource = { key: `test:patch:lanex:${k.name}`, arrays: ['a'], scalars: ['off'], body: k.body };
        current = k.name;
        for (const off of [0, 1, 3, 30, 37]) {
          const out = internal.launch('test', src, [12], 'float32', [t], [off]);
          const want = Float64Array.from({ length: 12 }, (_, x) => a[Math.min(k.at(x, off), a.length - 1)] * 2 + 1);
          expectClose(await out.data(), want);
          out.dispose();
        }
        const mine = seen.filter((s) => s.kernel === k.name);
        expect(mine.length, `${k.name}: the SIMD emitter looked at its reads`).toBeGreaterThan(0);
        expect(mine.some((s) => s.fast), `${k.name}: one v128.load`).toBe(k.fast);
      }
      t.dispose();
    } finally {
      proto.vContiguousBase = original;
    }
  });

  it("a run gpu.js switched to a new kernel instance (arguments that do not fit the declared types) is refused: sorsajs's settings are not on it", async () => {
    const { KernelCache } = await import('../src/backend/kernel-cache.js');
    const cache = new KernelCache('wasm');
    const src: internal.KernelSource = { key: 'test:patch:switch', arrays: ['a'], scalars: ['s'], flat: true, body: 'return a[this.thread.x] * s;' };
    const a = Float32Array.from([1, 2, 3, 4]);
    expect(Array.from(cache.call(src, [4], [a], [3], '') as Float32Array)).toEqual([3, 6, 9, 12]);
    // A gpu.js Input where an array was declared: gpu.js builds and runs a second instance for it,
    // which computes, but without what core set on the first (the flat result, the declared types).
    const { Input } = createRequire(import.meta.url)('gpu.js') as { Input: new (v: Float32Array, size: number[]) => unknown };
    expect(() => cache.call(src, [4], [new Input(a, [4]) as Float32Array], [3], '')).toThrow(/switched it to a new kernel instance for argument types \[Input, Float\]/);
  });

  it('threaded runs equal the formula for any size, queued back to back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 4096, max: 40000 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 40 }), async (cells, off, it) => {
        const a = new Float32Array(cells + 64).map((_, i) => Math.cos(i * 0.37));
        const t = c.tensor(a, [a.length]);
        // Three calls queued without waiting: each run's arguments must not leak into another's.
        const outs = [0, 1, 2].map((k) => internal.launch('test', THREADED, [cells], 'float32', [t], [off + k, it]));
        for (let k = 0; k < 3; k++) expectClose(await outs[k].data(), reference(a, off + k, it, cells));
        for (const o of [t, ...outs]) o.dispose();
      }),
      { numRuns: 12 },
    );
  });

  it('a threaded run whose kernel traps rejects, and the next run is whole', async () => {
    // Straight through gpu.js (core's kernels never trap): an out-of-bounds read traps in the scalar
    // export (1-D, width not a multiple of 4). The trapping cell is in the first chunk (the calling
    // thread's) or the last (a worker's, when it wakes in time); either way the run must reject, and
    // no chunk of it may still be running, or counted, when the next run starts.
    const require = createRequire(import.meta.url);
    const { GPU } = require('gpu.js') as { GPU: new (o: object) => { createKernel(f: unknown, o: object): ((...a: unknown[]) => Promise<Float32Array>) & { destroy(): void }; destroy(): void } };
    const gpu = new GPU({ mode: 'webasm' });
    const N = 16385;
    const k = gpu.createKernel(
      function (this: { thread: { x: number } }, a: number[], s: number, t: number) {
        let j = this.thread.x;
        if (this.thread.x === t) j = j - 100000000;
        return a[this.thread.x] * s + a[j] * 0.0;
      },
      { asyncMode: true, output: [N], poolSize: 2 },
    );
    const a = new Float32Array(N).map((_, i) => i % 1000);
    for (const [trial, trap] of [0, N - 1, 0, N - 1].entries()) {
      await expect(k(a, 1, trap)).rejects.toThrow(/out of bounds|trapped/);
      const s = 2 + trial;
      const got = await k(a, s, -1);
      let bad = 0;
      for (let i = 0; i < N; i++) if (got[i] !== Math.fround(a[i] * s)) bad++;
      expect(bad).toBe(0);
    }
    gpu.destroy();
  });

  it('threadMinCells lowers the cells from which a kernel runs threaded, and its values equal the formula', async () => {
    // Straight through gpu.js, to see the path each run took: 1000 cells are under gpu.js's own
    // 4096-cell gate, and run threaded only once the kernel's threadMinCells (what core sets from
    // a KernelSource's threadFrom) lets them.
    const require = createRequire(import.meta.url);
    type K = ((...a: unknown[]) => Promise<Float32Array>) & {
      kernel: { threadMinCells?: number; _lastRunPath: string | null; _pool?: { lastDispatch: { workerCount: number } | null } | null };
    };
    const { GPU } = require('gpu.js') as { GPU: new (o: object) => { createKernel(f: unknown, o: object): K; destroy(): void } };
    const gpu = new GPU({ mode: 'webasm' });
    const N = 1000;
    const make = (): K =>
      gpu.createKernel(
        function (this: { thread: { x: number } }, a: number[], s: number) {
          let t = 0;
          for (let i = 0; i < 200; i++) t = t * 0.5 + a[this.thread.x] * s;
          return t;
        },
        { asyncMode: true, output: [N], poolSize: 2 },
      );
    const a = new Float32Array(N).map((_, i) => Math.sin(i));
    const want = (s: number): Float64Array => {
      const out = new Float64Array(N);
      for (let x = 0; x < N; x++) {
        let t = 0;
        for (let i = 0; i < 200; i++) t = t * 0.5 + Math.fround(a[x] * s);
        out[x] = t;
      }
      return out;
    };
    const plain = make();
    expectClose(await plain(a, 3), want(3));
    expect(plain.kernel._lastRunPath).not.toBe('threaded');
    for (const min of [64, 500, 999]) {
      const k = make();
      k.kernel.threadMinCells = min;
      for (const s of [2, 5]) {
        expectClose(await k(a, s), want(s));
        expect(k.kernel._lastRunPath).toBe('threaded');
        // The calling thread and one worker of the pool of 2 (at least min cells each: 1000 / 999 rounds up to 2).
        expect(k.kernel._pool?.lastDispatch?.workerCount).toBe(2);
      }
    }
    const above = make();
    above.kernel.threadMinCells = 1001;
    expectClose(await above(a, 7), want(7));
    expect(above.kernel._lastRunPath).not.toBe('threaded');
    gpu.destroy();
  });

  it("core's matmul engages the workers below 4096 cells from 2^23 multiply-adds, and one row block keeps the 4096-cell gate", async () => {
    // [a, b, threaded]: 256 cells of k = 3072; two row blocks by a packed weight (352 cells); one
    // row block (176 cells); 2 M multiply-adds (256 cells, under the work rule).
    const cases: [number[], number[], boolean][] = [
      [[128, 3072], [3072, 32], true],
      [[7, 2048], [2048, 700], true],
      [[4, 2048], [2048, 700], false],
      [[64, 512], [512, 64], false],
    ];
    for (const [sa, sb, threaded] of cases) {
      const a = c.tensor(Float32Array.from({ length: sa[0] * sa[1] }, (_, i) => Math.sin(i)), sa);
      const b = c.tensor(Float32Array.from({ length: sb[0] * sb[1] }, (_, i) => Math.cos(i)), sb);
      const before = internal.workerRuns();
      const y = c.matmul(a, b);
      await y.data();
      expect(internal.workerRuns() - before > 0, `[${sa}] @ [${sb}]`).toBe(threaded);
      c.tree.dispose([a, b, y]);
    }
  });

  it('threaded 3-D runs with a row width that is not a multiple of 4 equal the formula', async () => {
    const src: internal.KernelSource = {
      key: 'test:patch:cube:threads',
      arrays: ['a'],
      scalars: ['w'],
      threaded: true,
      flat: true,
      body: 'return a[(this.thread.z * 7 + this.thread.y) * w + this.thread.x] * 2.0 + this.thread.z;',
    };
    const [w, h, d] = [13, 7, 60];
    const a = new Float32Array(w * h * d).map((_, i) => (i % 97) / 7);
    const x = c.tensor(a, [a.length]);
    const [out] = internal.launchJob('test', [x], [[w * h * d]], async (ctx, [p]) => [await ctx.run(src, [w, h, d], [p], [w])]);
    const got = await out.data();
    const want = new Float64Array(a.length);
    for (let z = 0; z < d; z++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) want[(z * h + y) * w + xx] = a[(z * h + y) * w + xx] * 2 + z;
    expectClose(got, want);
    x.dispose();
    out.dispose();
  });

  it('outputStore places each value of a wide return at its affine address (Array(4) and Array(2); SIMD quads and the scalar rest of a row; sync and threaded)', async () => {
    // Cell (x, y, z) returns v_k = x + 10 y + 100 z + 1000 k for k < C, stored at x + 6 k + 6 C y +
    // 6 C Y z (X = 6: each row is one SIMD quad and two scalar cells), a permutation of the flat result.
    for (const [C, Y, Z, threaded] of [[4, 3, 2, false], [4, 30, 30, true], [2, 3, 2, false], [2, 30, 30, true]] as const) {
      const values = Array.from({ length: C }, (_, k) => `b + ${1000 * k}`).join(', ');
      const src: internal.KernelSource = {
        key: `test:patch:store:${C}:${threaded}`,
        arrays: ['a'],
        scalars: [],
        components: C,
        threaded,
        store: { strides: [1, 6 * C, 6 * C * Y], offsets: Array.from({ length: C }, (_, k) => 6 * k) },
        body: `const b = a[0] + this.thread.x + 10 * this.thread.y + 100 * this.thread.z;\nreturn [${values}];`,
      };
      const cells = 6 * Y * Z;
      const x = c.tensor([0], [1]);
      const [out] = internal.launchJob('test', [x], [[cells * C]], async (ctx, [p]) => [await ctx.run(src, [6, Y, Z], [p], [])]);
      const got = await out.data();
      const want = new Float64Array(cells * C).fill(NaN);
      for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let xx = 0; xx < 6; xx++) for (let k = 0; k < C; k++) want[xx + 6 * k + 6 * C * y + 6 * C * Y * z] = xx + 10 * y + 100 * z + 1000 * k;
      expect(want.every((v) => !Number.isNaN(v))).toBe(true);
      expect(Array.from(got)).toEqual(Array.from(want));
      x.dispose();
      out.dispose();
    }
  });

  it('a sealed argument the memory already holds is not copied again (sync, threaded, staged); unsealing or sealing again copies it', async () => {
    const require = createRequire(import.meta.url);
    type GpuKernel = ((a: Float32Array) => Float32Array | Promise<Float32Array>) & { setOutput(o: number[]): void };
    const g = require('gpu.js') as {
      GPU: new (o: object) => { createKernel(f: unknown, o: object): GpuKernel };
      WebAssemblyKernel: { sealArray(a: Float32Array): void; unsealArray(a: Float32Array): void; argumentCopiesSkipped: number };
    };
    const W = g.WebAssemblyKernel;
    const gpu = new g.GPU({ mode: 'webasm' });
    const double = function (this: { thread: { x: number } }, a: Float32Array): number {
      return a[this.thread.x] * 2;
    };
    const twice = (a: Float32Array): number[] => Array.from(a, (v) => v * 2);
    for (const asyncMode of [false, true]) {
      const k = gpu.createKernel(double, { dynamicOutput: true, dynamicArguments: true, argumentTypes: { a: 'Array' }, asyncMode });
      const n = 8192; // threaded under asyncMode (>= 4096 cells)
      k.setOutput([n]);
      const a = Float32Array.from({ length: n }, (_, i) => i - 100);
      const b = Float32Array.from({ length: n }, (_, i) => 3 * i);
      W.sealArray(a);
      expect(Array.from(await k(a))).toEqual(twice(a));
      // Changing a sealed array breaks the promise; done here only to see that the copy was skipped:
      // the run reads what the memory holds, the old values.
      const old = twice(a);
      const skipped = W.argumentCopiesSkipped;
      a[0] = 1000;
      expect(Array.from(await k(a))).toEqual(old);
      expect(W.argumentCopiesSkipped).toBe(skipped + 1);
      // Unsealed, it is copied (the new values); sealed again, it has a new stamp and is copied once more.
      W.unsealArray(a);
      expect(Array.from(await k(a))).toEqual(twice(a));
      a[1] = 2000;
      W.sealArray(a);
      expect(Array.from(await k(a))).toEqual(twice(a));
      // Another sealed array replaces it in the memory, and a's next run copies a back.
      W.sealArray(b);
      expect(Array.from(await k(b))).toEqual(twice(b));
      expect(Array.from(await k(a))).toEqual(twice(a));
      expect(W.argumentCopiesSkipped).toBe(skipped + 1);
      W.unsealArray(a);
      W.unsealArray(b);
    }
    // Threaded runs queued back to back: the second is staged (the first holds the memory); a sealed
    // argument is then read at its run, not copied at the call, and must still be sealed by then.
    const k = gpu.createKernel(double, { dynamicOutput: true, dynamicArguments: true, argumentTypes: { a: 'Array' }, asyncMode: true });
    const n = 8192;
    k.setOutput([n]);
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
    W.sealArray(a);
    W.sealArray(b);
    const runs = [k(a), k(b), k(a), k(a)];
    const got = await Promise.all(runs);
    expect(got.map((r) => Array.from(r))).toEqual([twice(a), twice(b), twice(a), twice(a)]);
    const first = k(b);
    const second = k(a);
    W.unsealArray(a);
    expect(Array.from(await first)).toEqual(twice(b));
    await expect(second).rejects.toThrow(/sealed when the kernel was called was unsealed before its run/);
    W.unsealArray(b);
  });

  it("core seals a tensor's array: a kernel reading it again skips the copy, and a recycled array (new contents) is copied", async () => {
    const require = createRequire(import.meta.url);
    const W = (require('gpu.js') as { WebAssemblyKernel: { argumentCopiesSkipped: number } }).WebAssemblyKernel;
    const n = 5000;
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(3 * i));
    const ta = c.tensor(a);
    const tb = c.tensor(b);
    const skipped = W.argumentCopiesSkipped;
    // x is a kernel result in a pooled array; neg reads it twice, the second time without a copy.
    const x = c.add(ta, 1);
    const y1 = c.neg(x);
    const y2 = c.neg(x);
    const want = Array.from(a, (v) => -Math.fround(v + 1));
    expect(Array.from(await y1.data())).toEqual(want);
    expect(Array.from(await y2.data())).toEqual(want);
    expect(W.argumentCopiesSkipped).toBeGreaterThan(skipped);
    // x's array goes back to the pool and serves the next result of its length, with other values:
    // neg must read those, not what its memory held from x.
    x.dispose();
    const reused = internal.poolStats().reused;
    const x2 = c.add(tb, 1);
    expect(internal.poolStats().reused).toBeGreaterThan(reused);
    const y3 = c.neg(x2);
    expect(Array.from(await y3.data())).toEqual(Array.from(b, (v) => -Math.fround(v + 1)));
    for (const t of [ta, tb, y1, y2, x2, y3]) t.dispose();
  });

  it('two big sealed arrays read in turn by one kernel keep an entry slot each, so neither is copied again', async () => {
    const require = createRequire(import.meta.url);
    const W = (require('gpu.js') as { WebAssemblyKernel: { argumentCopiesSkipped: number } }).WebAssemblyKernel;
    const n = 1 << 18; // core's slot threshold (1 MiB)
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 2);
    const ta = c.tensor(a);
    const tb = c.tensor(b);
    // The first round fills the two slots (copies); in the next two rounds every call finds its array.
    const first = [c.neg(ta), c.neg(tb)];
    await Promise.all(first.map((t) => t.data()));
    const skipped = W.argumentCopiesSkipped;
    const later = [c.neg(ta), c.neg(tb), c.neg(ta), c.neg(tb)];
    const got = await Promise.all(later.map((t) => t.data()));
    expect(W.argumentCopiesSkipped - skipped).toBe(4);
    const negA = Array.from(a, (v) => -v);
    const negB = Array.from(b, (v) => -v);
    for (const [i, g] of got.entries()) expect(Array.from(g)).toEqual(i % 2 ? negB : negA);
    for (const t of [ta, tb, ...first, ...later]) t.dispose();
  });

  it('a result goes into the outputTarget set for its call, once, when the length matches (sync and threaded); else a fresh array', async () => {
    const require = createRequire(import.meta.url);
    const { GPU } = require('gpu.js') as { GPU: new (o: object) => { createKernel(f: unknown, o: object): GpuKernel } };
    type GpuKernel = ((a: Float32Array) => Float32Array | Promise<Float32Array>) & { setOutput(o: number[]): void; kernel: { outputTarget?: Float32Array | null } };
    const gpu = new GPU({ mode: 'webasm' });
    const double = function (this: { thread: { x: number } }, a: Float32Array): number {
      return a[this.thread.x] * 2;
    };
    for (const asyncMode of [false, true]) {
      const k = gpu.createKernel(double, { dynamicOutput: true, dynamicArguments: true, argumentTypes: { a: 'Array' }, asyncMode });
      const n = 8192; // threaded under asyncMode (>= 4096 cells)
      k.setOutput([n]);
      const a = Float32Array.from({ length: n }, (_, i) => i - 100);
      const want = Array.from(a, (v) => v * 2);
      const target = new Float32Array(n).fill(7);
      k.kernel.outputTarget = target;
      const r1 = await k(a);
      expect(r1.buffer).toBe(target.buffer);
      expect(Array.from(target)).toEqual(want);
      // Claimed by that call: the next call writes a fresh array and leaves the target alone.
      target.fill(7);
      const r2 = await k(a);
      expect(r2.buffer).not.toBe(target.buffer);
      expect(Array.from(r2)).toEqual(want);
      expect(target.every((v) => v === 7)).toBe(true);
      // A target of another length is not used.
      const short = new Float32Array(n - 4).fill(7);
      k.kernel.outputTarget = short;
      const r3 = await k(a);
      expect(r3.buffer).not.toBe(short.buffer);
      expect(Array.from(r3)).toEqual(want);
      expect(short.every((v) => v === 7)).toBe(true);
    }
  });
});
