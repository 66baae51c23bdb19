import type { KernelSource } from '../backend/engine.js';

/**
 * Kernels of the optimizers' fused paths (optim/): the global norm of a tree in a few launches, and
 * Adam's moments and parameter update one kernel each per leaf, reading the gradient as a weighted
 * sum of terms (the clip scale and a regularizer's gradient folded in). Every kernel here reads at
 * most `MAX_ARRAYS` arrays.
 * @module
 */

/**
 * The most arrays one of these kernels reads: with its output, 8 storage buffers, WebGPU's default
 * per-stage limit (and well under WebGL2's 16 texture units).
 */
export const MAX_ARRAYS = 7;

/** Folds `v` into the running maximum `m`, NaN-propagating (as kernels/reduce.ts's norm). */
const fold = (v: string, m: string): string => `if (${v} > ${m} || !(${v} === ${v})) { ${m} = ${v}; }`;

/**
 * The Euclidean norms of `k` tensors (arrays `x0..x{k-1}`, of `n0..n{k-1}` elements) in one
 * launch: cell j is the norm of `xj`, computed as reduce's `norm` over all axes (scaled by the
 * largest magnitude, so it neither overflows nor underflows; NaN propagates), the same operations in
 * the same order. With `joint`, one cell: the norm of all k arrays together (of their
 * concatenation), for combining per-tensor norms into a global one. Scalars: `n0..n{k-1}`, `pinf`.
 *
 * @example
 * ```ts
 * const src = normsKernel(3, false); // launch over 3 cells
 * ```
 */
export function normsKernel(k: number, joint: boolean): KernelSource {
  if (!(Number.isInteger(k) && k >= 1 && k <= MAX_ARRAYS)) throw new Error(`internal: normsKernel of ${k} arrays`);
  const idx = Array.from({ length: k }, (_, j) => j);
  // gpu.js declares every variable in one function scope: each loop names its own.
  const maxLoop = (j: number): string => `for (let a${j} = 0; a${j} < n${j}; a${j}++) { const u${j} = Math.abs(x${j}[a${j}]); ${fold(`u${j}`, 'm')} }`;
  const sumLoop = (j: number): string => `for (let b${j} = 0; b${j} < n${j}; b${j}++) { const t${j} = x${j}[b${j}] / m; s += t${j} * t${j}; }`;
  const each = (loop: (j: number) => string): string =>
    joint ? idx.map(loop).join('\n') : idx.map((j) => `${j === 0 ? '' : 'else '}if (c === ${j}) { ${loop(j)} }`).join('\n');
  return {
    key: `optim:norms:${k}:${joint ? 'joint' : 'each'}`,
    arrays: idx.map((j) => `x${j}`),
    scalars: [...idx.map((j) => `n${j}`), 'pinf'],
    floats: ['pinf'],
    body: `const c = this.thread.x;
let m = 0;
${each(maxLoop)}
if (m === 0 || m === pinf) { return m; }
let s = 0;
${each(sumLoop)}
return m * Math.sqrt(s);`,
  };
}

/**
 * How a fused kernel reads one leaf's gradient: the sum, in order, of terms `g_k` (arrays `g0..`),
 * each times its weight: `'tensor'` a scalar tensor (array `w_k`, read at 0), `'number'` a float
 * scalar `w_k`, `'one'` no multiplication.
 */
export type GradWeight = 'tensor' | 'number' | 'one';

/** The gradient expression of `terms`, and the arrays and float scalars it reads. */
function gradient(terms: readonly GradWeight[]): { expr: string; arrays: string[]; floats: string[] } {
  const arrays: string[] = [];
  const floats: string[] = [];
  const parts = terms.map((w, k) => {
    arrays.push(`g${k}`);
    if (w === 'tensor') {
      arrays.push(`w${k}`);
      return `g${k}[i] * w${k}[0]`;
    }
    if (w === 'number') {
      floats.push(`w${k}`);
      return `g${k}[i] * w${k}`;
    }
    return `g${k}[i]`;
  });
  // Left to right, each product rounded before the sum: what `add(mul(g, s), mul(r, w))` computes.
  return { expr: parts.map((p) => `(${p})`).join(' + '), arrays, floats };
}

/**
 * One of Adam's moment estimates for one leaf: `prev * beta + G * rest` (`'mu'`) or
 * `prev * beta + G * G * rest` (`'nu'`), G the gradient of `terms` (see `GradWeight`), as
 * optim/fused.ts `moment` computes them. With `gate`, array `f` (a scalar): where it is 0 the
 * result is `prev` (the step is skipped). Arrays: the gradient's, `prev`, then `f`; scalars: the
 * number weights, `beta`, `rest`.
 *
 * @example
 * ```ts
 * const src = adamMomentKernel('nu', ['tensor', 'number'], false);
 * ```
 */
export function adamMomentKernel(which: 'mu' | 'nu', terms: readonly GradWeight[], gate: boolean): KernelSource {
  const g = gradient(terms);
  const arrays = [...g.arrays, 'prev', ...(gate ? ['f'] : [])];
  if (arrays.length > MAX_ARRAYS) throw new Error(`internal: adamMomentKernel reads ${arrays.length} arrays`);
  return {
    key: `optim:adam:${which}:${terms.join(',')}:${gate ? 'gate' : '-'}`,
    arrays,
    scalars: [...g.floats, 'beta', 'rest'],
    floats: [...g.floats, 'beta', 'rest'],
    body: `const i = this.thread.x;
${gate ? 'if (f[0] === 0) { return prev[i]; }\n' : ''}const gr = ${g.expr};
return prev[i] * beta + ${which === 'mu' ? 'gr' : 'gr * gr'} * rest;`,
  };
}

/**
 * Adam's (and AdamW's) new parameter for one leaf from its updated moments:
 * `p + (-(step * m) / (sqrt(v) / bc2 + eps))`, with decay `p + (... - wd * p)`: `p` plus the
 * update optim/transforms.ts's `adam_u` and `adamw_u` kernels compute, the same operations in the
 * same order. With `gate`, array `f` (a scalar): where it is 0 the result is `p`. Arrays: `p`, `m`,
 * `v`, then `f`; scalars: `step`, `bc2`, `eps`, then `wd`.
 *
 * @example
 * ```ts
 * const src = adamParamKernel(true, false);
 * ```
 */
export function adamParamKernel(decay: boolean, gate: boolean): KernelSource {
  const floats = ['step', 'bc2', 'eps', ...(decay ? ['wd'] : [])];
  return {
    key: `optim:adam:param:${decay ? 'wd' : '-'}:${gate ? 'gate' : '-'}`,
    arrays: ['p', 'm', 'v', ...(gate ? ['f'] : [])],
    scalars: floats,
    floats,
    body: `const i = this.thread.x;
const p0 = p[i];
${gate ? 'if (f[0] === 0) { return p0; }\n' : ''}return p0 + (-(step * m[i]) / (Math.sqrt(v[i]) / bc2 + eps)${decay ? ' - wd * p0' : ''});`,
  };
}

/**
 * wasm only: one leaf's Adam step in one kernel, the three results stored one after another (the
 * gpu.js patch's `outputStore`): the new first moment at `[0, n)`, the second at `[n, 2n)` and the
 * parameter at `[2n, 3n)`, each computed by the same operations in the same order as
 * `adamMomentKernel` and `adamParamKernel` (float32 throughout, so bit for bit what those three
 * kernels give). Arrays: the gradient's (see `GradWeight`), `mu`, `nu`, `p`, then `f` with `gate`;
 * scalars: the number weights, `b1`, `r1`, `b2`, `r2`, `step`, `bc2`, `eps`, then `wd` with `decay`.
 *
 * @example
 * ```ts
 * const src = adamLeafKernel(['tensor', 'number'], false, true, 4096); // launchParts over 4096 cells, 3 parts
 * ```
 */
export function adamLeafKernel(terms: readonly GradWeight[], gate: boolean, decay: boolean, n: number): KernelSource {
  const g = gradient(terms);
  const arrays = [...g.arrays, 'mu', 'nu', 'p', ...(gate ? ['f'] : [])];
  if (arrays.length > MAX_ARRAYS) throw new Error(`internal: adamLeafKernel reads ${arrays.length} arrays`);
  const floats = [...g.floats, 'b1', 'r1', 'b2', 'r2', 'step', 'bc2', 'eps', ...(decay ? ['wd'] : [])];
  return {
    key: `optim:adam:leaf:${terms.join(',')}:${gate ? 'gate' : '-'}:${decay ? 'wd' : '-'}:${n}`,
    arrays,
    scalars: floats,
    floats,
    components: 3,
    store: { strides: [1, 0, 0], offsets: [0, n, 2 * n] },
    body: `const i = this.thread.x;
const m0 = mu[i];
const v0 = nu[i];
const p0 = p[i];
${gate ? 'if (f[0] === 0) { return [m0, v0, p0]; }\n' : ''}const gr = ${g.expr};
const m1 = m0 * b1 + gr * r1;
const v1 = v0 * b2 + gr * gr * r2;
return [m1, v1, p0 + (-(step * m1) / (Math.sqrt(v1) / bc2 + eps)${decay ? ' - wd * p0' : ''})];`,
  };
}

