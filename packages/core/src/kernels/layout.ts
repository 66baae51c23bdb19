import type { KernelSource } from '../backend/engine.js';
import { divmod } from './index-math.js';

/**
 * Kernels that move data without arithmetic: the joins, gathers and fills that `reshape`'s
 * strided copy (kernels/map.ts) cannot express. Each addresses its output flat.
 */

/** Concatenation of two inputs seen as `[outer, na, inner]` and `[outer, nb, inner]` along the middle axis. Scalars: na, nb, inner. */
export const CONCAT2: KernelSource = {
  key: 'concat2',
  arrays: ['a', 'b'],
  scalars: ['na', 'nb', 'inner'],
  body: `const i = this.thread.x;
${divmod('o', 'r', 'i', '(na + nb) * inner')}
${divmod('j', 'n', 'r', 'inner')}
if (j < na) { return a[(o * na + j) * inner + n]; }
return b[(o * nb + j - na) * inner + n];`,
};

/**
 * CONCAT2 on a 2-D grid, one row per outer index: thread (x, y) writes element x of row y of the
 * `[outer, (na + nb) * inner]` result, so no index is divided (CONCAT2's two divisions per element
 * made it ~7x slower than an add of the same size on wasm: a key/value cache grows by a concat per
 * generated token). wasm only (`flat`). Launch with dims `[(na + nb) * inner, outer]`. Scalars: a row of a (na * inner),
 * a row of b (nb * inner).
 */
export const CONCAT2_ROWS: KernelSource = {
  key: 'concat2-rows',
  arrays: ['a', 'b'],
  scalars: ['ra', 'rb'],
  flat: true,
  body: `const x = this.thread.x;
const y = this.thread.y;
if (x < ra) { return a[y * ra + x]; }
return b[y * rb + x - ra];`,
};

/**
 * `take` along the middle axis of `[outer, D, inner]` with K indices. Scalars: D, K, inner. An
 * index in `[-D, 0)` counts from the end; any other index outside `[0, D)` (NaN included) gives
 * `fill[0]` (NaN for float32, JAX's gather default). The read address is clamped first, so a bad
 * index never reads another row's memory nor traps, whether or not it was checked on the host.
 * (The out-of-range branch is the float 0.5, truncated to 0, in a float local of its own: GLSL
 * refuses a ternary of a float and an int, gpu.js rounds literals inside `| 0`, and a NaN must not
 * reach the truncation, which traps on wasm. Negatives are truncated as `-(-v | 0)`: gpu.js's GLSL
 * emulation of `|` gave 0 for -1.)
 */
export const TAKE: KernelSource = {
  key: 'take',
  arrays: ['x', 'idx', 'fill'],
  scalars: ['D', 'K', 'inner'],
  body: `const i = this.thread.x;
${divmod('o', 'r', 'i', 'K * inner')}
${divmod('k', 'n', 'r', 'inner')}
const v = idx[k];
const inRange = v >= -D && v < D;
const vIn = inRange ? v : 0.5;
const j0 = vIn < 0 ? -((-vIn) | 0) : vIn | 0;
const j = j0 < 0 ? j0 + D : j0;
const ok = inRange && j >= 0 && j < D;
const at = ok ? (o * D + j) * inner + n : 0;
const got = x[at];
if (ok) { return got; }
return fill[0];`,
};

/** One-hot rows of width `depth` for each index; an index outside `[0, depth)` (NaN, negative) gives an all-zero row. Scalars: depth. */
export const ONE_HOT: KernelSource = {
  key: 'oneHot',
  arrays: ['idx'],
  scalars: ['depth'],
  body: `const i = this.thread.x;
${divmod('k', 'c', 'i', 'depth')}
const v = idx[k];
if (v >= 0 && v < depth && (v | 0) === c) { return 1; }
return 0;`,
};

/**
 * The kernels of `take`'s gradient, a segment sum (a scatter-add computed gather-style: kernels
 * cannot scatter). `grad[o, v, n] = Σ g[o, t, n]` over the tokens t whose index is row v, summed in
 * ascending t. Tokens are handled in blocks of at most 4096 (ops/indexing.ts): each block's indices
 * are sorted stably by a rank kernel (O(n²)), the ranks inverted into a permutation (O(n²)), each
 * row's run in the sorted indices found by binary search, and each cell sums its run, continuing
 * the previous blocks' sum. Sizes are in scalars; flat indices are divided through `divmod`.
 */

/**
 * The row each of K indices gathers along an axis of D rows, as TAKE reads it (`[-D, 0)` counts
 * from the end), or -1 for an index outside `[-D, D)` (NaN included): such a slice gets no
 * gradient. Scalars: D.
 */
export const SEGMENT_KEYS: KernelSource = {
  key: 'segment:keys',
  arrays: ['idx'],
  scalars: ['D'],
  body: `const v = idx[this.thread.x];
const inRange = v >= -D && v < D;
const vIn = inRange ? v : 0.5;
const j0 = vIn < 0 ? -((-vIn) | 0) : vIn | 0;
const j = j0 < 0 ? j0 + D : j0;
if (inRange && j >= 0 && j < D) { return j; }
return -1;`,
};

/**
 * Rank of key `base + t` among the n keys from `base` in their stable sort: the count of keys
 * below it, plus the equal keys before it. Scalars: base, n.
 */
export const SEGMENT_RANK: KernelSource = {
  key: 'segment:rank',
  arrays: ['keys'],
  scalars: ['base', 'n'],
  threaded: true,
  body: `const t = this.thread.x;
const a = keys[base + t];
let r = 0;
for (let s = 0; s < n; s++) {
  const c = keys[base + s];
  if (c < a) { r = r + 1; }
  if (c === a && s < t) { r = r + 1; }
}
return r;`,
};

/** Inverts n ranks: output p is the t whose rank is p. Scalars: n. */
export const SEGMENT_INVERT: KernelSource = {
  key: 'segment:invert',
  arrays: ['rank'],
  scalars: ['n'],
  threaded: true,
  body: `const p = this.thread.x;
let out = 0;
for (let t = 0; t < n; t++) {
  if (rank[t] === p) { out = t; }
}
return out;`,
};

/**
 * For each row v in `[0, D]` (D + 1 cells), the count of the block's keys below v: row v's run
 * in the sorted keys is `[starts[v], starts[v + 1])`. A binary search by halving steps from
 * `top` (the largest power of two <= n, a float scalar: the steps stay exact floats, no division),
 * over `steps` = log2(top) + 1 iterations. Scalars: base, n, steps, top.
 */
export const SEGMENT_STARTS: KernelSource = {
  key: 'segment:starts',
  arrays: ['keys', 'perm'],
  scalars: ['base', 'n', 'steps', 'top'],
  floats: ['top'],
  threaded: true,
  body: `const v = this.thread.x;
let lo = 0;
let step = top;
for (let s = 0; s < steps; s++) {
  const at = lo + step;
  if (at <= n) {
    const key = keys[base + perm[at - 1]];
    if (key < v) { lo = at; }
  }
  step = step * 0.5;
}
return lo;`,
};

function segmentSumKernel(add: boolean, grid: boolean): KernelSource {
  // The grid hands each cell its (n, v, o) as (x, y, z): no index is divided. The four SIMD lanes of
  // a wasm quad are consecutive n of one row, so they share one run.
  const cell = grid
    ? `const n = this.thread.x;
const v = this.thread.y;
const o = this.thread.z;
const i = (o * D + v) * inner + n;`
    : `const i = this.thread.x;
${divmod('o', 'r', 'i', 'D * inner')}
${divmod('v', 'n', 'r', 'inner')}`;
  return {
    key: `segment:sum${add ? '-add' : ''}${grid ? '-grid' : ''}`,
    arrays: add ? ['g', 'perm', 'starts', 'prev'] : ['g', 'perm', 'starts'],
    scalars: ['D', 'K', 'inner', 'base'],
    threaded: true,
    ...(grid ? { flat: true } : {}),
    body: `${cell}
const s0 = starts[v] | 0;
const len = (starts[v + 1] | 0) - s0;
let acc = ${add ? 'prev[i]' : '0'};
for (let q = 0; q < len; q++) {
  const t = perm[s0 + q] | 0;
  acc += g[(o * K + base + t) * inner + n];
}
return acc;`,
  };
}

/**
 * The segment sum of one block over `[outer, D, inner]` (g is `[outer, K, inner]`; the block is
 * tokens `[base, base + n)`, perm and starts from the kernels above): each cell adds its row's
 * run in ascending token order. The `_ADD` forms start from `prev` (the earlier blocks' sum); the
 * `_GRID` forms (wasm, a `flat` result) run over dims `[inner, D, outer]`. Scalars: D, K, inner, base.
 */
export const SEGMENT_SUM: KernelSource = segmentSumKernel(false, false);
/** SEGMENT_SUM continuing from `prev[i]`. */
export const SEGMENT_SUM_ADD: KernelSource = segmentSumKernel(true, false);
/** SEGMENT_SUM over the grid `[inner, D, outer]` (wasm). */
export const SEGMENT_SUM_GRID: KernelSource = segmentSumKernel(false, true);
/** SEGMENT_SUM_ADD over the grid `[inner, D, outer]` (wasm). */
export const SEGMENT_SUM_ADD_GRID: KernelSource = segmentSumKernel(true, true);

/**
 * Constant padding, one rank at a time: the output coordinate minus `lo{j}` must fall in `[0, n{j})`.
 * Flat (scalars per axis: os{j}, lo{j}, n{j}, is{j}, with os the output strides), or with `grid`
 * (wasm, rank >= 2; a `flat` result) over `[last axis, second-last axis, the rest]`: the driver
 * hands each cell its x and y, so only the leading axes are split from z (scalars per axis: lo{j},
 * n{j}, is{j}, then zs{j}, the strides of the leading axes within z, for all but the last leading
 * axis). Flat addressing divided by every axis: the gradient of a slice (a pad) of [8, 64, 384] took
 * ~5.5 ms, 10x an add of its size.
 */
export function padKernel(rank: number, grid = false): KernelSource {
  const scalars: string[] = [];
  const inside: string[] = [];
  const src: string[] = [];
  const useGrid = grid && rank >= 2;
  const lines: string[] = [];
  if (useGrid) {
    lines.push(`const c${rank - 1} = this.thread.x;`, `const c${rank - 2} = this.thread.y;`);
    if (rank > 2) {
      lines.push('const rem0 = this.thread.z;');
      for (let j = 0; j < rank - 2; j++) {
        if (j < rank - 3) lines.push(divmod(`c${j}`, `rem${j + 1}`, `rem${j}`, `zs${j}`));
        else lines.push(`const c${j} = rem${j};`);
      }
    }
  } else {
    lines.push('const i = this.thread.x;', 'const rem0 = i;');
  }
  for (let j = 0; j < rank; j++) {
    if (!useGrid) {
      scalars.push(`os${j}`);
      lines.push(divmod(`c${j}`, `rem${j + 1}`, `rem${j}`, `os${j}`));
    }
    scalars.push(`lo${j}`, `n${j}`, `is${j}`);
    lines.push(`const d${j} = c${j} - lo${j};`);
    inside.push(`d${j} >= 0 && d${j} < n${j}`);
    src.push(`d${j} * is${j}`);
  }
  if (useGrid) for (let j = 0; j < rank - 3; j++) scalars.push(`zs${j}`);
  // One expression each, not accumulators: a local initialized from a literal is float32 in gpu.js.
  lines.push(`if (!(${inside.join(' && ')})) { return fill[0]; }`, `return x[${src.join(' + ')}];`);
  return { key: `pad:${useGrid ? 'g' : 'r'}${rank}`, arrays: ['x', 'fill'], scalars, body: lines.join('\n'), ...(useGrid ? { flat: true } : {}) };
}

/** Identity-like fill: 1 where row == col in an `[n, m]` matrix with `m` columns (scalar: m, k = diagonal offset). */
export const EYE: KernelSource = {
  key: 'eye',
  arrays: [],
  scalars: ['m', 'k'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'm')}
return c - r === k ? 1 : 0;`,
};

/** `p[0] + i * p[1]`: fills, aranges and linspaces (p holds start and step). */
export const RAMP: KernelSource = {
  key: 'ramp',
  arrays: ['p'],
  scalars: [],
  body: `return p[0] + this.thread.x * p[1];`,
};

/** A square matrix with `v` on its diagonal. Scalars: n. */
export const DIAG_MATRIX: KernelSource = {
  key: 'diagMatrix',
  arrays: ['v'],
  scalars: ['n'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'n')}
return r === c ? v[r] : 0;`,
};
