/**
 * Fused kernels of one Householder step, which qr-blocked.ts runs on each panel: a step is four
 * launches instead of the ~20 that composing core ops takes, which is what a tall-skinny QR's time
 * is made of. A is row-major `[m, n]`; step j reflects column j's entries from row j down.
 * @module
 */
import * as internal from '@sorsajs/core/internal';

type KernelSource = internal.KernelSource;

/**
 * Three numbers describing the reflector of column j, scaled by mx = max_{i>=j} |A[i, j]| so that
 * nothing overflows: cell 0 = mx (1 when the column is zero below the diagonal), cell 1 =
 * alpha / mx with alpha = -sign(A[j, j]) ‖x‖, cell 2 = beta = 2 / ‖v̂‖² for v̂ = (x − alpha e_j) / mx
 * (0 when v̂ = 0). ‖v̂‖² = Σ_{i>j} x̂_i² + (|x̂_j| + ‖x̂‖)², with no cancellation. Scalars: m, n, j.
 */
export const REFLECTOR: KernelSource = {
  key: 'qr:reflector',
  arrays: ['A'],
  scalars: ['m', 'n', 'j'],
  body: `let mx = 0;
for (let t = 0; t < m - j; t++) { mx = Math.max(mx, Math.abs(A[(t + j) * n + j])); }
if (mx === 0) { mx = 1; }
const xj = A[j * n + j] / mx;
let below = 0;
for (let t2 = 1; t2 < m - j; t2++) { const x = A[(t2 + j) * n + j] / mx; below += x * x; }
const nx = Math.sqrt(below + xj * xj);
let alpha = -nx;
if (xj < 0) { alpha = nx; }
const vtv = below + (Math.abs(xj) + nx) * (Math.abs(xj) + nx);
let beta = 0;
if (vtv > 0) { beta = 2 / vtv; }
if (this.thread.x === 0) { return mx; }
if (this.thread.x === 1) { return alpha; }
return beta;`,
};

/** v̂ `[m]`: zero above row j, A[i, j] / mx below, minus alpha / mx on the diagonal. Scalars: n, j. */
export const VECTOR: KernelSource = {
  key: 'qr:vector',
  arrays: ['A', 'p'],
  scalars: ['n', 'j'],
  body: `const i = this.thread.x;
if (i < j) { return 0; }
const x = A[i * n + j] / p[0];
if (i === j) { return x - p[1]; }
return x;`,
};

/** w = v̂ᵀ X over rows j.., one cell per column of X `[rows, cols]`. Scalars: rows, cols, j. */
export const PROJECT: KernelSource = {
  key: 'qr:project',
  arrays: ['X', 'v'],
  scalars: ['rows', 'cols', 'j'],
  body: `const col = this.thread.x;
let acc = 0;
for (let t = 0; t < rows - j; t++) { acc += v[t + j] * X[(t + j) * cols + col]; }
return acc;`,
};
