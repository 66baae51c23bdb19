/**
 * Kernels of the random module (launched by random/launch.ts). Each one runs Threefry-2x32 for its own element's counter and turns
 * the 64 output bits into a value, so the numbers depend only on the key and the element's index,
 * never on the backend, the dispatch or the worker split.
 *
 * Every step gives the same bits on every backend: integer expressions stay below 2^31 and variables
 * below 2^24 (see threefry.ts); float operations are either exact (an integer below 2^24 converted,
 * a product by a power of two) or one IEEE +, - or * (which WebAssembly, WGSL and float64-then-float32
 * all round correctly), with `Math.fround` where the cpu backend would otherwise keep float64.
 * Division, square roots and transcendental functions are never used, because their last bit differs
 * between WebAssembly, V8 and GPU drivers; nor is a rounded product followed by a sum in one kernel,
 * because a GPU compiler may fuse the two into an FMA.
 * @module
 */
import type { KernelSource } from '../backend/engine.js';
import { NORMAL_DEGREE, NORMAL_ROW, NORMAL_SPLIT_BITS } from './normal-table.js';
import { THREEFRY_SCALARS, threefryLines } from './threefry.js';

const TF = [...THREEFRY_SCALARS];

/** Lines leaving JAX's 32 random bits for element `index` (the two output words xor-ed) in `wh, wl`. */
function wordLines(index: string): string[] {
  return [...threefryLines(index), 'const wh = x0h ^ x1h;', 'const wl = x0l ^ x1l;'];
}

/** Raw Threefry blocks: cell `4i + k` is 16-bit half k of the block for counter + i (x0 high, x0 low, x1 high, x1 low). */
export const RANDOM_BLOCK: KernelSource = {
  key: 'random:block',
  arrays: [],
  scalars: TF,
  body: [
    'const cell = this.thread.x;',
    ...threefryLines('cell >> 2'),
    'const part = cell & 3;',
    'if (part === 0) { return x0h; }',
    'if (part === 1) { return x0l; }',
    'if (part === 2) { return x1h; }',
    'return x1l;',
  ].join('\n'),
};

/** JAX's random bits as 16-bit halves: cell `2i` is the high half of element i's word, `2i + 1` the low. */
export const RANDOM_BITS: KernelSource = {
  key: 'random:bits',
  arrays: [],
  scalars: TF,
  body: ['const cell = this.thread.x;', ...wordLines('cell >> 1'), 'if ((cell & 1) === 0) { return wh; }', 'return wl;'].join('\n'),
};

/**
 * Uniform floats: the top 23 bits of the word scaled by 2^-23 (JAX's construction, exact), times
 * the width `hi - lo` (one rounding). The shift by `lo` is a second kernel, {@link SHIFT}.
 */
export const RANDOM_UNIFORM: KernelSource = {
  key: 'random:uniform',
  arrays: [],
  scalars: [...TF, 'lo', 'hi'],
  floats: ['lo', 'hi'],
  body: [
    ...wordLines('this.thread.x'),
    'const u = ((wh << 7) | (wl >> 9)) * 0.00000011920928955078125;',
    // fround: the cpu backend computes in float64; the width is a float32 difference everywhere.
    'return u * Math.fround(hi - lo);',
  ].join('\n'),
};

/** `x + lo` (one rounding), kept below `hi`: `below` is the largest float32 under `hi`. */
export const RANDOM_SHIFT: KernelSource = {
  key: 'random:shift',
  arrays: ['x'],
  scalars: ['lo', 'hi', 'below'],
  floats: ['lo', 'hi', 'below'],
  body: ['const s = Math.fround(x[this.thread.x] + lo);', 'if (s < hi) { return s; }', 'return below;'].join('\n'),
};

/** `x * s` alone in a kernel (one rounding). */
export const RANDOM_MUL: KernelSource = { key: 'random:mul', arrays: ['x'], scalars: ['s'], floats: ['s'], body: 'return x[this.thread.x] * s;' };

/** `x + s` alone in a kernel (one rounding; with a product before it a GPU compiler may fuse an FMA). */
export const RANDOM_ADD: KernelSource = { key: 'random:add', arrays: ['x'], scalars: ['s'], floats: ['s'], body: 'return x[this.thread.x] + s;' };

/** Fixed-point Horner steps over the table row at `base` in the 24-bit fraction `t = th * 4096 + tl`. */
function hornerLines(): string[] {
  const L = [`let acc = tab[base + ${NORMAL_DEGREE + 1}];`, 'let ah = 0;', 'let al = 0;'];
  for (let k = NORMAL_DEGREE - 1; k >= 0; k--) {
    // acc = c_k + round(acc * t / 2^24), from 12-bit limbs so every product is below 2^24. Floors
    // of signed values shift an offset copy (+2^24), so no operand of a bitwise operator is negative.
    L.push('ah = (((acc | 0) + 16777216) >> 12) - 4096;', 'al = (acc | 0) - (ah | 0) * 4096;');
    L.push(
      `acc = (tab[base + ${k + 1}] | 0) + (ah | 0) * (th | 0) + ` +
        '((((ah | 0) * (tl | 0) + (al | 0) * (th | 0) + (((al | 0) * (tl | 0)) >> 12) + 16779264) >> 12) - 4096);',
    );
  }
  return L;
}

/**
 * Standard normals by inversion of the normal CDF in fixed point. Bit 31 of the word is the sign;
 * the other 31 bits `v` give the tail probability `p = (2v + 1) / 2^33` in (0, 1/2), never 0. The
 * binade of `p` (its exponent, 32 of them) and the next {@link NORMAL_SPLIT_BITS} bits pick a table
 * row, a polynomial in the remaining 24-bit fraction `t` evaluated in integers. Rows give the
 * quantile `x` itself times 2^F, except in the binade next to 1/2, where they give `x / q` with
 * `q = 1/2 - p` (so values near 0 keep their relative precision) and the kernel multiplies by `q`.
 */
export const RANDOM_NORMAL: KernelSource = {
  key: 'random:normal',
  arrays: ['tab'],
  scalars: TF,
  body: [
    ...wordLines('this.thread.x'),
    // P = 2v + 1 in halves; p = P / 2^33.
    'const sgn = wh >> 15;',
    'const ph = ((wh << 1) | (wl >> 15)) & 65535;',
    'const pl = ((wl << 1) | 1) & 65535;',
    // e = floor(log2 P), by binary search on the leading half.
    'let y = pl;',
    'let e = 0;',
    'if (ph > 0) { y = ph; e = 16; }',
    'if (y >= 256) { y = y >> 8; e = e + 8; }',
    'if (y >= 16) { y = y >> 4; e = e + 4; }',
    'if (y >= 4) { y = y >> 2; e = e + 2; }',
    'if (y >= 2) { e = e + 1; }',
    // f = (P - 2^e) / 2^e as a 24-bit fraction.
    'let f = 0;',
    'if (e >= 24) { f = ((ph << (40 - e)) | (pl >> (e - 24))) - 16777216; }',
    'else { f = ((ph * 65536 + pl) - (1 << e)) << (24 - e); }',
    `const seg = e * ${2 ** NORMAL_SPLIT_BITS} + (f >> ${24 - NORMAL_SPLIT_BITS});`,
    `const t = (f << ${NORMAL_SPLIT_BITS}) & 16777215;`,
    'const th = t >> 12;',
    'const tl = t & 4095;',
    `const base = seg * ${NORMAL_ROW};`,
    ...hornerLines(),
    // acc * 2^-F is exact; in the last binade a product by q = (2^32 - P) / 2^33 (folded into the scale).
    'let x = acc * tab[base];',
    'if (e > 30) { x = Math.fround(Math.fround((65535 - ph) * 65536 + (65536 - pl)) * x); }',
    'if (sgn > 0) { return -x; }',
    'return x;',
  ].join('\n'),
};

/** Sort keys for permutations: cell `2i` and `2i + 1` are the top 24 bits of element i's two block words. */
export const RANDOM_SORT_KEYS: KernelSource = {
  key: 'random:sortkeys',
  arrays: [],
  scalars: TF,
  body: [
    'const cell = this.thread.x;',
    ...threefryLines('cell >> 1'),
    'if ((cell & 1) === 0) { return (x0h << 8) | (x0l >> 8); }',
    'return (x1h << 8) | (x1l >> 8);',
  ].join('\n'),
};

/** Rank of element i among the n 48-bit keys (ties, of probability about n^2 / 2^49, broken by index). */
export const RANDOM_RANK: KernelSource = {
  key: 'random:rank',
  arrays: ['keys'],
  scalars: ['n'],
  threaded: true,
  body: [
    'const i = this.thread.x;',
    'const a = keys[2 * i];',
    'const b = keys[2 * i + 1];',
    'let r = 0;',
    'for (let j = 0; j < n; j++) {',
    '  const c = keys[2 * j];',
    '  if (c < a) { r = r + 1; }',
    '  if (c === a) {',
    '    const d = keys[2 * j + 1];',
    '    if (d < b) { r = r + 1; }',
    '    if (d === b && j < i) { r = r + 1; }',
    '  }',
    '}',
    'return r;',
  ].join('\n'),
};

/** Inverts a permutation given as ranks: output j is the i whose rank is j (a gather by search). */
export const RANDOM_INVERT: KernelSource = {
  key: 'random:invert',
  arrays: ['rank'],
  scalars: ['n'],
  threaded: true,
  body: ['const j = this.thread.x;', 'let out = 0;', 'for (let i = 0; i < n; i++) {', '  if (rank[i] === j) { out = i; }', '}', 'return out;'].join(
    '\n',
  ),
};
