import type { KernelSource } from '../backend/engine.js';

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
const row = (na + nb) * inner;
const o = Math.floor(i / row);
const r = i - o * row;
const j = Math.floor(r / inner);
const n = r - j * inner;
if (j < na) { return a[(o * na + j) * inner + n]; }
return b[(o * nb + j - na) * inner + n];`,
};

/** `take` along the middle axis of `[outer, D, inner]` with K indices. Scalars: D, K, inner. */
export const TAKE: KernelSource = {
  key: 'take',
  arrays: ['x', 'idx'],
  scalars: ['D', 'K', 'inner'],
  body: `const i = this.thread.x;
const row = K * inner;
const o = Math.floor(i / row);
const r = i - o * row;
const k = Math.floor(r / inner);
const n = r - k * inner;
const j = idx[k];
return x[(o * D + j) * inner + n];`,
};

/** One-hot rows of width `depth` for each index. Scalars: depth. */
export const ONE_HOT: KernelSource = {
  key: 'oneHot',
  arrays: ['idx'],
  scalars: ['depth'],
  body: `const i = this.thread.x;
const k = Math.floor(i / depth);
const c = i - k * depth;
return idx[k] === c ? 1 : 0;`,
};

/** Constant padding, one rank at a time: the output coordinate minus `lo{j}` must fall in `[0, n{j})`. */
export function padKernel(rank: number): KernelSource {
  const scalars: string[] = [];
  const lines = ['const i = this.thread.x;', 'let rem = i;', 'let src = 0;', 'let inside = 1;'];
  for (let j = 0; j < rank; j++) {
    scalars.push(`os${j}`, `lo${j}`, `n${j}`, `is${j}`);
    lines.push(
      `const c${j} = Math.floor(rem / os${j});`,
      `rem = rem - c${j} * os${j};`,
      `const d${j} = c${j} - lo${j};`,
      `if (d${j} < 0 || d${j} >= n${j}) { inside = 0; }`,
      `src = src + d${j} * is${j};`,
    );
  }
  lines.push('if (inside === 0) { return fill[0]; }', 'return x[src];');
  return { key: `pad:r${rank}`, arrays: ['x', 'fill'], scalars, body: lines.join('\n') };
}

/** Identity-like fill: 1 where row == col in an `[n, m]` matrix with `m` columns (scalar: m, k = diagonal offset). */
export const EYE: KernelSource = {
  key: 'eye',
  arrays: [],
  scalars: ['m', 'k'],
  body: `const i = this.thread.x;
const r = Math.floor(i / m);
const c = i - r * m;
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
const r = Math.floor(i / n);
const c = i - r * n;
return r === c ? v[r] : 0;`,
};
