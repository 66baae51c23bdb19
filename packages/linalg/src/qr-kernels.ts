/**
 * Fused kernels of one Householder step, which qr-blocked.ts runs on each panel: a step is three
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

/**
 * v̂_i, the reflector's vector at row `i`, read from column j of the step's input `X` (its `cols`
 * columns row-major) and the REFLECTOR numbers `p`, as kernel text: zero above row j, X[i, j] / mx
 * below, minus alpha / mx on the diagonal. The step kernels compute it where they need it instead
 * of a kernel writing v̂ (one launch a column less: ~12 µs of a 768-row step's ~60 on wasm). The
 * text declares `vh` and reads the kernel's own `j` (the step's column) and `p`, which every step
 * kernel has under those names.
 */
export function vHat(X: string, i: string, cols: string): string {
  return `let vh = 0.0;
if (${i} >= j) { vh = ${X}[(${i}) * ${cols} + j] / p[0]; if (${i} == j) { vh = vh - p[1]; } }`;
}

/** w = v̂ᵀ X over rows j.., one cell per column of X `[rows, cols]`, v̂ from X's column j ({@link vHat}). Scalars: rows, cols, j. */
export const PROJECT: KernelSource = {
  key: 'qr:project',
  arrays: ['X', 'p'],
  scalars: ['rows', 'cols', 'j'],
  body: `const col = this.thread.x;
let acc = 0;
for (let t = 0; t < rows - j; t++) {
  ${vHat('X', 't + j', 'cols')}
  acc += vh * X[(t + j) * cols + col];
}
return acc;`,
};
