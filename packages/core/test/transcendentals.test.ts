/**
 * exp, tanh, log and the ops built on them (sigmoid, silu, gelu, softmax, logsumexp, log1p) against
 * float64 references over dense grids and the edge values, in float32 ulps. The wasm backend computes
 * exp, tanh and log with its own polynomials (gpu.js patch, web-assembly/inline-math.js), so this is
 * where their accuracy is pinned: on wasm and cpu exp and log are within 1 ulp and tanh within 1.5
 * ulp of the exact result (measured 0.98, 0.82 and 1.41); the GPU backends use their drivers' exp,
 * tanh and log, checked with the looser bounds of ops.test.ts.
 *
 * A grid is laid out in rows of 7, so a row is one 4-lane SIMD quad plus a 3-cell scalar epilogue on
 * wasm: both code paths see every kind of value.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, randomData } from './reference.js';

/** Spacing of float32 values at |v| (rounded to float32), subnormals included. */
function ulp32(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (a < 2 ** -126) return 2 ** -149;
  if (!Number.isFinite(a)) return Infinity;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** Values from lo to hi in n steps, as float32, padded to a multiple of 7 (rows of 7). */
function grid(lo: number, hi: number, n: number, extra: number[] = []): Float32Array {
  const vals = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1)).concat(extra);
  while (vals.length % 7) vals.push(0);
  return Float32Array.from(vals);
}

/** 10^-45 ... 1 in both signs: the tiny arguments where tanh(x) = x must keep relative accuracy. */
function tinies(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = 10 ** (-45 + (45 * i) / n);
    out.push(v, -v);
  }
  return out;
}

async function run(f: (t: Tensor) => Tensor, xs: Float32Array): Promise<Float32Array> {
  const x = c.tensor(xs, [xs.length / 7, 7]);
  const y = f(x);
  const got = Float32Array.from(await y.data());
  x.dispose();
  y.dispose();
  return got;
}

/**
 * Largest |got - ref| / tol over the grid (<= 1 passes) and where; NaN must meet NaN and an infinite
 * reference its exact value.
 */
function worst(xs: Float32Array, got: Float32Array, ref: (v: number) => number, tol: (r: number, v: number) => number): { ratio: number; at: number; got: number; ref: number } {
  let w = { ratio: 0, at: NaN, got: NaN, ref: NaN };
  for (let i = 0; i < xs.length; i++) {
    const r = ref(xs[i]);
    const g = got[i];
    let ratio: number;
    if (Number.isNaN(r) || !Number.isFinite(Math.fround(r))) ratio = Object.is(g, Math.fround(r)) ? 0 : Infinity;
    else ratio = Math.abs(g - r) / tol(r, xs[i]);
    if (!(ratio <= w.ratio)) w = { ratio, at: xs[i], got: g, ref: r };
  }
  return w;
}

const sigmoidRef = (v: number): number => 1 / (1 + Math.exp(-v));
const geluRef = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

forEachBackend('transcendentals', (name) => {
  // Our own code (wasm's polynomials, cpu's float64 Math rounded once) gets ulp bounds and exact
  // edges. Drivers' exp, tanh and log get ops.test.ts's bound plus |x| eps (a GPU exp is exp2 of
  // x log2 e, whose rounding is |x| eps / 2 relative), and only the edges that ops.test.ts already
  // holds every backend to: they have not been run here on a GPU.
  const strict = name === 'wasm' || name === 'cpu';
  const ulps = (k: number, loose: number) => (r: number, v: number) =>
    strict ? k * ulp32(r) : (loose + Math.abs(v)) * EPS32 * Math.max(Math.abs(r), Math.abs(v), 1);

  it(`exp is within ${strict ? '1 ulp' : '(8 + |x|) eps'} over [-103.9, 88.72] (subnormal results included) and [-1, 1]`, async () => {
    // -103.97: e^x is half the smallest subnormal; 88.7228: the largest finite float32 e^x
    const lo = strict ? -103.9 : -87;
    for (const xs of [grid(lo, 88.72, 140000), grid(-1, 1, 70000)]) {
      const w = worst(xs, await run(c.exp, xs), Math.exp, ulps(1, 8));
      expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
    }
  });

  it(`exp at the edges: -Inf, NaN, ±0${strict ? ', under- and overflow' : ''}`, async () => {
    const xs = Float32Array.from([-Infinity, Infinity, NaN, 0, -0, -104, -1000, 88.7229, 1000, 1e-40, -1e-40, -3.4e38, 3.4e38, 0]);
    const got = Array.from(await run(c.exp, xs));
    expect(got.slice(0, 5)).toEqual([0, Infinity, NaN, 1, 1]);
    if (!strict) return;
    expect(got.slice(5, 13)).toEqual([0, 0, Infinity, Infinity, 1, 1, 0, Infinity]);
    // the largest finite result, within 1 ulp
    const top = await run(c.exp, grid(88.72283, 88.72283, 7));
    expect(Math.abs(top[0] - Math.exp(Math.fround(88.72283))) / ulp32(Math.exp(Math.fround(88.72283)))).toBeLessThanOrEqual(1);
  });

  it(`tanh is within ${strict ? '1.5 ulp' : '(8 + |x|) eps'} over [-12, 12], [-1, 1] and tiny arguments`, async () => {
    for (const xs of [grid(-12, 12, 140000), grid(-1, 1, 70000), grid(0, 0, 7, tinies(7000))]) {
      const w = worst(xs, await run(c.tanh, xs), Math.tanh, ulps(1.5, 8));
      expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
    }
  });

  it(`tanh at the edges: 0${strict ? ', ±Inf, NaN, -0, saturation, subnormals' : ''}`, async () => {
    const xs = Float32Array.from([Infinity, -Infinity, NaN, 0, 20, -20, 1e30, -1e30, -0, 1e-40, -1e-40, 0, 0, 0]);
    const got = Array.from(await run(c.tanh, xs));
    expect(got[3]).toBe(0);
    if (!strict) return;
    expect(got.slice(0, 8)).toEqual([1, -1, NaN, 0, 1, -1, 1, -1]);
    expect(Object.is(got[8], -0)).toBe(true);
    expect(got.slice(9, 11)).toEqual([Math.fround(1e-40), Math.fround(-1e-40)]);
  });

  it(`log is within ${strict ? '1 ulp' : '(8 + |x|) eps'} over 2^-149 ... 2^127 (subnormal arguments included) and [0.5, 2]`, async () => {
    const n = 140000;
    const pow2 = Float32Array.from({ length: n }, (_, i) => 2 ** ((strict ? -149 : -126) + ((strict ? 276 : 253) * i) / (n - 1)));
    for (const xs of [pow2, grid(0.5, 2, 70000), grid(0.999, 1.001, 14000)]) {
      const w = worst(xs, await run(c.log, xs), Math.log, ulps(1, 8));
      expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
    }
    // log1p takes log(1 + v) for |v| >= 0.1: the rounding of 1 + v (eps / 2 relative) adds eps / 2
    const xs = grid(0.1, 100, 70000);
    const w = worst(xs, await run(c.log1p, xs), Math.log1p, (r, v) => ulps(1, 8)(r, v) + 0.5 * EPS32);
    expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
  });

  it(`log at the edges: 1${strict ? ', ±0, negatives, ±Inf, NaN' : ''}`, async () => {
    const xs = Float32Array.from([0, -0, -1, -Infinity, Infinity, NaN, 1, -1e-40, 0, 0, 0, 0, 0, 0]);
    const got = Array.from(await run(c.log, xs));
    expect(got[6]).toBe(0);
    if (!strict) return;
    expect(got.slice(0, 8)).toEqual([-Infinity, -Infinity, NaN, NaN, Infinity, NaN, 0, NaN]);
  });

  it(`sigmoid and silu are within ${strict ? '4 ulp' : '(8 + |x|) eps'} where e^-x is finite (x >= -88.7), and saturate beyond`, async () => {
    const xs = grid(-88.7, 88.7, 140000);
    for (const [f, ref] of [
      [c.sigmoid, sigmoidRef],
      [c.silu, (v: number) => v * sigmoidRef(v)],
    ] as const) {
      const w = worst(xs, await run(f, xs), ref, ulps(4, 8));
      expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
    }
    const got = Array.from(await run(c.sigmoid, Float32Array.from([-200, 200, -Infinity, Infinity, 0, NaN, 0])));
    expect(got.slice(0, 2)).toEqual([0, 1]);
    if (strict) expect(got.slice(2, 6)).toEqual([0, 1, 0.5, NaN]);
  });

  it(`gelu is within ${strict ? 4 : 16} eps of 0.5 |x| (its rounding scale: 1 + tanh cancels for x < 0) over [-10, 10]`, async () => {
    const xs = grid(-10, 10, 140000);
    const w = worst(xs, await run(c.gelu, xs), geluRef, (r, v) => (strict ? 4 : 16) * EPS32 * Math.max(Math.abs(r), 0.5 * Math.abs(v), strict ? 0 : 1) + 2 ** -149);
    expect(w.ratio, JSON.stringify(w)).toBeLessThanOrEqual(1);
    if (!strict) return;
    const got = Array.from(await run(c.gelu, Float32Array.from([0, -Infinity, Infinity, NaN, 20, -20, 0])));
    expect(got.slice(0, 6).map((v) => (v === 0 ? 0 : v))).toEqual([0, NaN, Infinity, NaN, 20, 0]);
  });

  it('softmax and logsumexp over rows of 1000 logits, masked entries exactly 0', async () => {
    const rows = 8;
    const n = 1000;
    const data = Float32Array.from(randomData(rows * n, 17, -20, 20));
    for (let j = 0; j < n; j += 7) data[n + j] = -Infinity; // row 1: masked entries
    const x = c.tensor(data, [rows, n]);
    const [sm, lse] = [c.nn.softmax(x), c.logsumexp(x, -1)];
    const got = await sm.data();
    const gotLse = await lse.data();
    for (let r = 0; r < rows; r++) {
      const row = Array.from(data.subarray(r * n, (r + 1) * n));
      const m = Math.max(...row);
      const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
      // softmax_i = e^(x_i - m) / s: the float32 rounding of x_i - m (|x_i - m| eps / 2 relative,
      // after exp), exp's ulp, the row sum's rounding and the division
      for (let j = 0; j < n; j++) {
        const ref = Math.exp(row[j] - m) / s;
        if (row[j] === -Infinity) expect(got[r * n + j]).toBe(0);
        else expect(Math.abs(got[r * n + j] - ref), `row ${r} col ${j}`).toBeLessThanOrEqual((strict ? 8 + Math.abs(row[j] - m) : 16 + 2 * Math.abs(row[j] - m)) * EPS32 * ref);
      }
      const refLse = m + Math.log(s);
      expect(Math.abs(gotLse[r] - refLse)).toBeLessThanOrEqual(8 * EPS32 * Math.abs(refLse));
    }
    [x, sm, lse].forEach((t) => t.dispose());
  });
});
