/**
 * random: Threefry against the published known-answer vectors and JAX's numbers, every sampler
 * against plain-JS references written here from the specs (exact where the design says exact),
 * statistics, errors, and bit-identical results on every backend available here.
 */
import { describe, expect, it } from 'vitest';
import { backendReasons, init, memory, reshape, slice, tensor, type BackendName, type Tensor } from '@sorsajs/core';
import * as random from '../src/random/index.js';
import { threefryBlocks } from '../src/random/launch.js';
import { NORMAL_DEGREE, NORMAL_ROW, NORMAL_SPLIT_BITS, NORMAL_TABLE } from '../src/kernels/normal-table.js';
import { rng } from '@sorsajs/testing';
import { forEachBackend } from './backends.js';

// ---------------------------------------------------------------------------------------------
// References, written from the specs without reusing src/.

/** Threefry-2x32, 20 rounds (Salmon et al. SC 2011; Random123's threefry.h): 5 groups of 4 rounds. */
function threefryRef(key: readonly [number, number], ctr: readonly [number, number]): [number, number] {
  const rot = [
    [13, 15, 26, 6],
    [17, 29, 16, 24],
  ];
  const ks = [key[0] >>> 0, key[1] >>> 0, (0x1bd11bda ^ key[0] ^ key[1]) >>> 0];
  const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
  let x0 = (ctr[0] + ks[0]) >>> 0;
  let x1 = (ctr[1] + ks[1]) >>> 0;
  for (let g = 0; g < 5; g++) {
    for (const r of rot[g % 2]) {
      x0 = (x0 + x1) >>> 0;
      x1 = (rotl(x1, r) ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(g + 1) % 3]) >>> 0;
    x1 = (x1 + ks[(g + 2) % 3] + g + 1) >>> 0;
  }
  return [x0, x1];
}

/** JAX's 32 random bits for element i (partitionable Threefry: counter (0, i), the two words xor-ed). */
function jaxBits(key: readonly [number, number], i: number): number {
  const [a, b] = threefryRef(key, [0, i]);
  return (a ^ b) >>> 0;
}

/** JAX's uniform [0, 1) from a word: its top 23 bits as the mantissa of a float in [1, 2), minus 1. */
const uniformRef = (w: number): number => (w >>> 9) / 2 ** 23;

const f32 = Math.fround;

/** sum c[k] r^k by Horner's rule. */
const poly = (r: number, c: readonly number[]): number => c.reduceRight((acc, v) => acc * r + v, 0);

// AS241 PPND16 (Wichura 1988, Applied Statistics 37), coefficients from the lowest power.
const A = [3.3871328727963665, 133.14166789178438, 1971.5909503065513, 13731.69376550946, 45921.95393154987, 67265.7709270087, 33430.57558358813, 2509.0809287301227];
const B = [1, 42.31333070160091, 687.1870074920579, 5394.196021424751, 21213.794301586597, 39307.89580009271, 28729.085735721943, 5226.495278852546];
const C = [1.4234371107496835, 4.630337846156546, 5.769497221460691, 3.6478483247632045, 1.2704582524523684, 0.2417807251774506, 0.022723844989269184, 7.745450142783414e-4];
const D = [1, 2.053191626637759, 1.6763848301838038, 0.6897673349851, 0.14810397642748008, 0.015198666563616457, 5.475938084995345e-4, 1.0507500716444169e-9];
const E = [6.657904643501103, 5.463784911164114, 1.7848265399172913, 0.29656057182850487, 0.026532189526576124, 0.0012426609473880784, 2.7115555687434876e-5, 2.0103343992922881e-7];
const F = [1, 0.599832206555888, 0.1369298809227358, 0.014875361290850615, 7.868691311456133e-4, 1.8463183175100548e-5, 1.421511758316446e-7, 2.0442631033899397e-15];

/** x / q of the normal quantile for |q| <= 0.425, float64. */
function centralRatio(q: number): number {
  const r = 0.180625 - q * q;
  return poly(r, A) / poly(r, B);
}

/** Upper normal quantile Phi^-1(1 - p) for p in (0, 1/2] (AS241 PPND16, about 1e-16 relative). */
function upperQuantile(p: number): number {
  const q = 0.5 - p;
  if (q <= 0.425) return q * centralRatio(q);
  const r = Math.sqrt(-Math.log(p));
  return r <= 5 ? poly(r - 1.6, C) / poly(r - 1.6, D) : poly(r - 5, E) / poly(r - 5, F);
}

/** The normal a word maps to, exactly: sign bit, p = (2v + 1) / 2^33, float64 quantile. */
function normalExact(w: number): number {
  const P = ((w << 1) | 1) >>> 0;
  const x = upperQuantile(P / 2 ** 33);
  return w >>> 31 ? -x : x;
}

/**
 * The kernel's fixed-point algorithm, replayed in plain JS over uint32 words (Math.floor for the
 * shifts): the kernels must match it bit for bit, and it must match {@link normalExact} closely.
 */
function normalFixed(w: number): number {
  const P = ((w << 1) | 1) >>> 0;
  const e = 31 - Math.clz32(P);
  const f = e >= 24 ? Math.floor(P / 2 ** (e - 24)) - 2 ** 24 : (P - 2 ** e) * 2 ** (24 - e);
  const parts = 2 ** NORMAL_SPLIT_BITS;
  const seg = e * parts + Math.floor(f / 2 ** (24 - NORMAL_SPLIT_BITS));
  const t = (f * parts) % 2 ** 24;
  const row = NORMAL_TABLE.slice(seg * NORMAL_ROW, (seg + 1) * NORMAL_ROW);
  const th = Math.floor(t / 4096);
  const tl = t % 4096;
  let acc = row[NORMAL_DEGREE + 1];
  for (let k = NORMAL_DEGREE - 1; k >= 0; k--) {
    const ah = Math.floor(acc / 4096);
    const al = acc - ah * 4096;
    acc = row[k + 1] + ah * th + Math.floor((ah * tl + al * th + Math.floor((al * tl) / 4096) + 2048) / 4096);
  }
  let x = f32(acc * row[0]);
  if (e === 31) x = f32(f32(2 ** 32 - P) * x);
  return w >>> 31 ? -x : x;
}

/**
 * Regenerates the normal table: on each part of each binade, Chebyshev interpolation at degree + 1
 * nodes of the quantile (of x / q in binade 31), as monomials in t, scaled to integers whose Horner
 * intermediates stay below 2^24 - 256.
 */
function normalTable(): number[] {
  const d = NORMAL_DEGREE;
  const parts = 2 ** NORMAL_SPLIT_BITS;
  const out: number[] = [];
  for (let e = 0; e < 32; e++) {
    for (let j = 0; j < parts; j++) {
      const pAt = (t: number): number => (2 ** e * (1 + (j + t) / parts)) / 2 ** 33;
      const fn = e === 31 ? (t: number): number => centralRatio(0.5 - pAt(t)) : (t: number): number => upperQuantile(pAt(t));
      const n = d + 1;
      const fv = Array.from({ length: n }, (_, k) => fn((Math.cos((Math.PI * (k + 0.5)) / n) + 1) / 2));
      const cheb = Array.from({ length: n }, (_, m) => ((m === 0 ? 1 : 2) / n) * fv.reduce((s, v, k) => s + v * Math.cos((Math.PI * m * (k + 0.5)) / n), 0));
      // Monomial coefficients of sum cheb_m T_m(2t - 1), by the recurrence T_m = 2 (2t - 1) T_(m-1) - T_(m-2).
      const mono = new Array<number>(n).fill(0);
      let prev = [1];
      let cur = [-1, 2];
      mono[0] += cheb[0];
      cur.forEach((v, i) => (mono[i] += cheb[1] * v));
      for (let m = 2; m < n; m++) {
        const next = new Array<number>(m + 1).fill(0);
        cur.forEach((v, i) => {
          next[i] -= 2 * v;
          next[i + 1] += 4 * v;
        });
        prev.forEach((v, i) => (next[i] -= v));
        [prev, cur] = [cur, next];
        cur.forEach((v, i) => (mono[i] += cheb[m] * v));
      }
      let bound = 0;
      for (let g = 0; g <= 4096; g++) {
        let a = 0;
        for (let k = d; k >= 0; k--) {
          a = mono[k] + a * (g / 4096);
          bound = Math.max(bound, Math.abs(a));
        }
      }
      const F = Math.floor(Math.log2((2 ** 24 - 256) / bound));
      out.push(2 ** -(F + (e === 31 ? 33 : 0)), ...mono.map((v) => Math.round(v * 2 ** F)));
    }
  }
  return out;
}

/** Standard normal CDF (erfc by Numerical Recipes' Chebyshev fit, relative error below 1.2e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Kolmogorov-Smirnov distance between a sample and a CDF. */
function ksDistance(sample: ArrayLike<number>, cdf: (x: number) => number): number {
  const s = Float64Array.from(sample).sort();
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const F = cdf(s[i]);
    d = Math.max(d, Math.abs(F - i / s.length), Math.abs((i + 1) / s.length - F));
  }
  return d;
}

/** KS critical value at significance 1e-4: sqrt(-ln(5e-5) / 2) / sqrt(n). */
const ksLimit = (n: number): number => Math.sqrt(-Math.log(5e-5) / 2) / Math.sqrt(n);

function moments(x: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, variance: v / (x.length - 1) };
}

/** The largest float32 below a positive float32. */
function nextDown(v: number): number {
  const i = new Int32Array(new Float32Array([v]).buffer);
  i[0] -= 1;
  return new Float32Array(i.buffer)[0];
}

async function read(t: Tensor): Promise<Float32Array | Int32Array> {
  try {
    return await t.data();
  } finally {
    t.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

describe('random on the host: Threefry, keys and the normal table', () => {
  it('the reference Threefry-2x32-20 gives the Random123 known answers', () => {
    // Random123 tests/kat_vectors: "threefry2x32 20 ctr0 ctr1 key0 key1 out0 out1".
    const kat: [number[], number[], number[]][] = [
      [[0, 0], [0, 0], [0x6b200159, 0x99ba4efe]],
      [[0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]],
      [[0x243f6a88, 0x85a308d3], [0x13198a2e, 0x03707344], [0xc4923a9c, 0x483df7a0]],
    ];
    for (const [ctr, k, out] of kat) expect(threefryRef([k[0], k[1]], [ctr[0], ctr[1]])).toEqual(out);
  });

  it('key, split and foldIn give JAX keys (jax_threefry_partitionable, the default since 0.5)', () => {
    expect(random.keyData(random.key(42))).toEqual([0, 42]);
    expect(random.keyData(random.key(-1))).toEqual([0, 0xffffffff]);
    expect(random.keyData(random.key(2 ** 32 + 5))).toEqual([1, 5]);
    // jax.random.split(jax.random.PRNGKey(seed)) for seeds 0, 1, 2, as printed by JAX.
    const jax = [
      [
        [1797259609, 2579123966],
        [928981903, 3453687069],
      ],
      [
        [507451445, 1853169794],
        [1948878966, 4237131848],
      ],
      [
        [1821159224, 3364244817],
        [637334850, 3278974502],
      ],
    ];
    jax.forEach((pair, seed) => expect(random.split(random.key(seed)).map(random.keyData)).toEqual(pair));
    // Split keys are blocks at counters (0, i); foldIn(k, i) is the same block (as in JAX).
    const k = random.key(123);
    const many = random.split(k, 5).map(random.keyData);
    many.forEach((w, i) => {
      expect(w).toEqual(threefryRef([0, 123], [0, i]));
      expect(random.keyData(random.foldIn(k, i))).toEqual(w);
    });
    expect(random.keyData(random.foldIn(k, -1))).toEqual(threefryRef([0, 123], [0, 0xffffffff]));
    expect(random.keyData(random.wrapKeyData([7, 9]))).toEqual([7, 9]);
    expect(random.split(k, 0)).toEqual([]);
    expect(String(random.key(3))).toBe('Key(0, 3)');
  });

  it('the normal table is what its generator gives', () => {
    const regen = normalTable();
    expect(regen.length).toBe(NORMAL_TABLE.length);
    for (let i = 0; i < regen.length; i++) {
      if (i % NORMAL_ROW === 0) expect(NORMAL_TABLE[i]).toBe(regen[i]);
      else expect(Math.abs(NORMAL_TABLE[i] - regen[i])).toBeLessThanOrEqual(1);
      expect(Number.isInteger(NORMAL_TABLE[i]) || i % NORMAL_ROW === 0).toBe(true);
    }
  });

  it('the fixed-point normal is within 5e-7 relative of the float64 quantile in every segment', () => {
    let worst = 0;
    const check = (w: number): void => {
      const want = normalExact(w);
      const got = normalFixed(w);
      expect(Math.sign(got)).toBe(Math.sign(want));
      worst = Math.max(worst, Math.abs(got - want) / Math.abs(want));
    };
    const next = rng(12345); // uniform on [0, 1)
    const parts = 2 ** NORMAL_SPLIT_BITS;
    for (let e = 0; e < 32; e++) {
      for (let j = 0; j < parts; j++) {
        // Odd P across part j of binade e, with both ends; v = (P - 1) / 2, both signs.
        const lo = 2 ** e + (j * 2 ** e) / parts;
        const hi = 2 ** e + ((j + 1) * 2 ** e) / parts;
        const ps = [lo, hi - 1, ...Array.from({ length: 300 }, () => lo + next() * (hi - lo))].map((p) => Math.floor(p) | 1);
        for (const P of ps) {
          if (P < lo || P >= hi) continue;
          const v = (P - 1) / 2;
          check(v);
          check((v + 2 ** 31) >>> 0);
        }
      }
    }
    expect(worst).toBeLessThan(5e-7);
    // The extremes: p = 2^-33 (|x| largest) and p just below 1/2 (x smallest).
    const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
    expect(rel(normalFixed(0), upperQuantile(2 ** -33))).toBeLessThan(5e-7);
    expect(upperQuantile(2 ** -33)).toBeCloseTo(6.338, 3);
    expect(rel(normalFixed(0x7fffffff), 2 ** -33 * Math.sqrt(2 * Math.PI))).toBeLessThan(5e-7);
    expect(normalFixed(0xffffffff)).toBe(-normalFixed(0x7fffffff));
  });
});

/** webgl refuses normal (its GL kernels cannot do the exact integer arithmetic), loudly. */
function expectNormalRefused(): void {
  expect(() => random.normal(random.key(0), [4])).toThrow(/normal: not available on webgl/);
}

forEachBackend('random', (name) => {
  it('Threefry kernels match the reference, carrying across both counter words', async () => {
    const k: [number, number] = [0x13198a2e, 0x03707344];
    const c: [number, number] = [0xffffffff, 0xfffff800];
    const n = 4096;
    const got = await read(threefryBlocks('test', k, c, n));
    for (let i = 0; i < n; i++) {
      const lo = (c[1] + i) >>> 0;
      const hi = (c[0] + (c[1] + i >= 2 ** 32 ? 1 : 0)) >>> 0;
      const [x0, x1] = threefryRef(k, [hi, lo]);
      expect([got[4 * i] * 65536 + got[4 * i + 1], got[4 * i + 2] * 65536 + got[4 * i + 3]], `block ${i}`).toEqual([x0, x1]);
    }
    // The known-answer vector through the kernel.
    const kat = await read(threefryBlocks('test', k, [0x243f6a88, 0x85a308d3], 1));
    expect([kat[0] * 65536 + kat[1], kat[2] * 65536 + kat[3]]).toEqual([0xc4923a9c, 0x483df7a0]);
  });

  it("bits are JAX's random bits, as 16-bit halves", async () => {
    const k = random.key(2024);
    const b = random.bits(k, [3, 5]);
    expect(b.shape).toEqual([3, 5, 2]);
    expect(b.dtype).toBe('int32');
    const got = await read(b);
    for (let i = 0; i < 15; i++) expect(got[2 * i] * 65536 + got[2 * i + 1]).toBe(jaxBits([0, 2024], i));
  });

  it("uniform gives JAX's numbers exactly", async () => {
    // jax.random.uniform(jax.random.split(jax.random.PRNGKey(0))[1], (4, 4)), as printed by JAX (8 digits).
    const jax = [
      0.00729382, 0.02089119, 0.5814265, 0.36183798, 0.22303772, 0.11928833, 0.12543893, 0.61683, 0.0950073, 0.9834225, 0.4248221, 0.8324801, 0.0966121,
      0.22702086, 0.3545748, 0.67104137,
    ];
    const u = random.uniform(random.split(random.key(0))[1], [4, 4]);
    expect(u.shape).toEqual([4, 4]);
    const got = await read(u);
    jax.forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThan(1e-8 + 1e-7 * v));
    // And every value is exactly the reference construction.
    const n = 10000;
    const all = await read(random.uniform(random.key(9), [n]));
    for (let i = 0; i < n; i++) if (all[i] !== uniformRef(jaxBits([0, 9], i))) expect(all[i], `element ${i}`).toBe(uniformRef(jaxBits([0, 9], i)));
  });

  it('uniform(min, max): u * (max - min) + min, each step rounded once, and below max', async () => {
    const n = 20000;
    for (const [lo, hi] of [
      [-3, 5],
      [0, 0.1],
      [1e6, 1e6 + 1], // max's float32 spacing is 1/16: the sum rounds up to max for ~3% of u
      [-2.5, -2.25],
    ]) {
      const got = await read(random.uniform(random.key(5), [n], { min: lo, max: hi }));
      const width = f32(f32(hi) - f32(lo));
      let clamped = 0;
      for (let i = 0; i < n; i++) {
        let want = f32(f32(uniformRef(jaxBits([0, 5], i)) * width) + (lo === 0 ? 0 : f32(lo)));
        if (want >= f32(hi)) {
          want = nextDown(f32(hi));
          clamped++;
        }
        if (got[i] !== want) expect(got[i], `[${lo}, ${hi}) element ${i}`).toBe(want);
        expect(got[i] >= f32(lo) && got[i] < f32(hi)).toBe(true);
      }
      if (lo === 1e6) expect(clamped).toBeGreaterThan(0);
    }
  });

  it('normal: the fixed-point algorithm bit for bit, within 5e-7 of the exact quantile', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const n = 1 << 16;
    const k = random.key(77);
    const got = await read(random.normal(k, [n]));
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const w = jaxBits([0, 77], i);
      const want = normalFixed(w);
      if (got[i] !== want) expect(got[i], `element ${i} (word ${w})`).toBe(want);
      worst = Math.max(worst, Math.abs(got[i] - normalExact(w)) / Math.abs(normalExact(w)));
    }
    expect(worst).toBeLessThan(5e-7);
  });

  it('normal(mean, std): std * z, then + mean, each rounded once', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const n = 5000;
    const z = await read(random.normal(random.key(3), [n]));
    const y = await read(random.normal(random.key(3), [n], { mean: 1.5, std: 0.02 }));
    const s = await read(random.normal(random.key(3), [n], { std: 3 }));
    for (let i = 0; i < n; i++) {
      expect(y[i]).toBe(f32(f32(z[i] * f32(0.02)) + 1.5));
      expect(s[i]).toBe(f32(z[i] * 3));
    }
  });

  it('statistics: normal and uniform moments and KS distance for 1e5 samples', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const n = 100000;
    const z = await read(random.normal(random.key(1), [n]));
    const zm = moments(z);
    // Standard errors: 1/sqrt(n) for the mean, sqrt(2/n) for the variance; allow 4 of them.
    expect(Math.abs(zm.mean)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(zm.variance - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
    expect(ksDistance(z, normalCdf)).toBeLessThan(ksLimit(n));
    const u = await read(random.uniform(random.key(2), [n]));
    const um = moments(u);
    expect(Math.abs(um.mean - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(um.variance - 1 / 12)).toBeLessThan(4 * Math.sqrt(1 / 180 / n));
    expect(ksDistance(u, (x) => Math.min(1, Math.max(0, x)))).toBeLessThan(ksLimit(n));
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
  });

  it('bernoulli: JAX definition (uniform < p), float32 0/1, frequency within 4 standard errors', async () => {
    const n = 100000;
    const b = random.bernoulli(random.key(11), 0.3, [n]);
    expect(b.dtype).toBe('float32');
    const got = await read(b);
    let ones = 0;
    for (let i = 0; i < n; i++) {
      expect(got[i]).toBe(uniformRef(jaxBits([0, 11], i)) < f32(0.3) ? 1 : 0);
      ones += got[i];
    }
    expect(Math.abs(ones / n - 0.3)).toBeLessThan(4 * Math.sqrt((0.3 * 0.7) / n));
    expect(Array.from(await read(random.bernoulli(random.key(1), 0, [50])))).toEqual(new Array(50).fill(0));
    expect(Array.from(await read(random.bernoulli(random.key(1), 1, [50])))).toEqual(new Array(50).fill(1));
    // p as a tensor, broadcast over the shape (which defaults to p's).
    const p = tensor([0, 1, 0.5]);
    const rows = await read(random.bernoulli(random.key(4), p, [100, 3]));
    for (let r = 0; r < 100; r++) expect([rows[3 * r], rows[3 * r + 1]]).toEqual([0, 1]);
    expect(random.bernoulli(random.key(4), p).shape).toEqual([3]);
    p.dispose();
  });

  it('permutation: a permutation of 0..n-1, different per key, uniform over the 24 orders of 4', async () => {
    for (const n of [0, 1, 2, 7, 1000]) {
      const p = random.permutation(random.key(n), n);
      expect(p.dtype).toBe('int32');
      const got = Array.from(await read(p));
      expect(got.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
    const a = Array.from(await read(random.permutation(random.key(1), 1000)));
    const b = Array.from(await read(random.permutation(random.key(2), 1000)));
    expect(a).not.toEqual(b);
    // Chi-square over the 24 orders of 4 elements, 240 keys (10 expected each; 23 dof, p = 0.001: 49.7).
    const keys = random.split(random.key(31), 240);
    const perms = await Promise.all(keys.map((k) => read(random.permutation(k, 4))));
    const counts = new Map<string, number>();
    for (const q of perms) counts.set(Array.from(q).join(''), (counts.get(Array.from(q).join('')) ?? 0) + 1);
    expect(counts.size).toBeLessThanOrEqual(24);
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - 10) ** 2 / 10;
    chi2 += (24 - counts.size) * 10;
    expect(chi2).toBeLessThan(49.7);
  });

  it('permutation of 5000 (worker threads on wasm)', async () => {
    const n = 5000;
    const got = Array.from(await read(random.permutation(random.key(8), n)));
    expect(got.slice().sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    // Not the identity, and no long run kept in place.
    let fixed = 0;
    got.forEach((v, i) => (fixed += v === i ? 1 : 0));
    expect(fixed).toBeLessThan(10);
  });

  it('same key, same numbers; split keys, different streams', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const k = random.key(0);
    const a = await read(random.normal(k, [256]));
    const b = await read(random.normal(k, [256]));
    expect(Array.from(a)).toEqual(Array.from(b));
    const [k1, k2] = random.split(k);
    const c1 = await read(random.normal(k1, [256]));
    const c2 = await read(random.normal(k2, [256]));
    let same = 0;
    for (let i = 0; i < 256; i++) same += c1[i] === c2[i] || c1[i] === a[i] ? 1 : 0;
    expect(same).toBe(0);
    // A sample's first elements do not depend on its shape (counters are flat indices).
    const small = await read(random.uniform(k, [10]));
    const big = await read(random.uniform(k, [4, 50]));
    expect(Array.from(big.slice(0, 10))).toEqual(Array.from(small));
  });

  it('shapes up to 2^20 elements', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const z = random.normal(random.key(6), [1024, 1024]);
    expect(z.shape).toEqual([1024, 1024]);
    const got = await read(z);
    for (const i of [0, 1, 4095, 524288, 1048575]) expect(got[i]).toBe(normalFixed(jaxBits([0, 6], i)));
    const m = moments(got);
    expect(Math.abs(m.mean)).toBeLessThan(4 / 1024);
    expect(Math.abs(m.variance - 1)).toBeLessThan(4 * Math.sqrt(2) / 1024);
    const u = await read(random.uniform(random.key(6), [1 << 20]));
    expect(u[(1 << 20) - 1]).toBe(uniformRef(jaxBits([0, 6], (1 << 20) - 1)));
  });

  it('shapes past 2^24 elements (a 32000 x 768 embedding table): the values there are JAX\'s', async () => {
    const n = 32000 * 768; // a Llama-style token table, 24.6M elements
    if (name === 'webgl') {
      expect(() => random.uniform(random.key(7), [32000, 768])).toThrow(/uniform: shape \[32000,768\] has 24576000 elements, more than the 16777215/);
      return;
    }
    const u = random.uniform(random.key(7), [32000, 768]);
    const z = random.normal(random.key(7), [32000, 768]);
    const tailU = slice(reshape(u, [n]), [n - 40], [40]);
    const tailZ = slice(reshape(z, [n]), [n - 40], [40]);
    // Element indices from 2^24 on are where float32 counters would collide.
    const mid = slice(reshape(u, [n]), [2 ** 24 - 4], [8]);
    const [gu, gz, gm] = [await read(tailU), await read(tailZ), await read(mid)];
    for (let k = 0; k < 40; k++) {
      const i = n - 40 + k;
      expect(gu[k], `uniform element ${i}`).toBe(uniformRef(jaxBits([0, 7], i)));
      expect(gz[k], `normal element ${i}`).toBe(normalFixed(jaxBits([0, 7], i)));
    }
    for (let k = 0; k < 8; k++) expect(gm[k], `uniform element ${2 ** 24 - 4 + k}`).toBe(uniformRef(jaxBits([0, 7], 2 ** 24 - 4 + k)));
    for (const t of [u, z, tailU, tailZ, mid]) t.dispose();
  });

  it('scalars, empty shapes, and no leaked tensors', async () => {
    if (name === 'webgl') return expectNormalRefused();
    const before = memory().tensors;
    const s = random.normal(random.key(1));
    expect(s.shape).toEqual([]);
    expect((await read(s))[0]).toBe(normalFixed(jaxBits([0, 1], 0)));
    const empty = random.uniform(random.key(1), [0, 3]);
    expect(empty.size).toBe(0);
    empty.dispose();
    (await Promise.all([random.uniform(random.key(1), [3], { min: 2, max: 3 }), random.normal(random.key(1), [3], { mean: 1, std: 2 }), random.permutation(random.key(1), 9)].map(read))).forEach(
      (v) => expect(v.length).toBeGreaterThan(0),
    );
    expect(memory().tensors).toBe(before);
  });

  it('errors name the function and the offending value', () => {
    expect(() => random.key(1.5)).toThrow(/key: seed must be an integer/);
    expect(() => random.normal({} as random.Key, [2])).toThrow(/normal: expected a random Key/);
    expect(() => random.uniform(random.key(0), [2, -1])).toThrow(/uniform: shape \[2,-1\]/);
    expect(() => random.uniform(random.key(0), [2], { min: 1, max: 1 })).toThrow(/uniform: needs min < max/);
    expect(() => random.normal(random.key(0), [2], { std: NaN })).toThrow(/normal: std must be a finite number/);
    expect(() => random.bernoulli(random.key(0), 1.5, [2])).toThrow(/bernoulli: p must be in \[0, 1\], got 1.5/);
    expect(() => random.permutation(random.key(0), -3)).toThrow(/permutation: n must be an integer/);
    expect(() => random.split(random.key(0), 1.5)).toThrow(/split: n must be/);
    expect(() => random.wrapKeyData([1, 2 ** 32])).toThrow(/wrapKeyData: word 1 must be an integer/);
    // Past the backend's element limit: 2^31 - 1 (2^24 - 1 on webgl).
    expect(() => random.normal(random.key(0), [65536, 32768])).toThrow(/normal: shape \[65536,32768\] has 2147483648 elements, more than the/);
    void name;
  });
});

describe('bit-identical results on every backend', () => {
  it('uniform, normal, bernoulli, permutation, bits: the same bytes on wasm, cpu, webgpu (those available)', async () => {
    const reasons = await backendReasons();
    const only = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim());
    // webgl refuses normal (tested per backend above), so it is not in this comparison.
    const names = (['webgpu', 'wasm', 'cpu'] as BackendName[]).filter((b) => !reasons[b] && (!only || only.includes(b)));
    if (names.length === 0) {
      console.warn('[random] SKIPPING the cross-backend comparison: none of webgpu, wasm, cpu is selected');
      return;
    }
    const outputs: Record<string, Uint8Array[]> = {};
    const k = random.key(2025);
    for (const b of names) {
      await init({ backend: b });
      const [k1, k2, k3, k4] = random.split(k, 4);
      const ts = [
        random.uniform(k1, [65536]),
        random.uniform(k1, [4096], { min: -2, max: 3 }),
        random.normal(k2, [65536]),
        random.normal(k2, [4096], { mean: 0.5, std: 2 }),
        random.bernoulli(k3, 0.25, [65536]),
        random.permutation(k4, 3000),
        random.bits(k1, [1024]),
      ];
      outputs[b] = await Promise.all(ts.map(async (t) => new Uint8Array((await read(t)).buffer)));
    }
    const [first, ...rest] = names;
    expect(names.length).toBeGreaterThan(0);
    for (const b of rest) {
      outputs[b].forEach((bytes, i) => {
        const same = bytes.length === outputs[first][i].length && bytes.every((v, j) => v === outputs[first][i][j]);
        expect(same, `output ${i} on ${b} vs ${first}`).toBe(true);
      });
    }
    console.info(`[random] bit-identical across: ${names.join(', ')}`);
  });
});
