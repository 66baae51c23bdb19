/**
 * Kernels of the one-sided Jacobi SVD (see jacobi.ts for the design).
 *
 * The working matrix X stacks the scaled A over V, column by column: X is gpu.js-2-D `[M, N]`
 * (`X[col][row]`, flat index `col * M + row`), M = m + N, N = n rounded up to even. Columns sit in
 * round-robin "storage positions": pair k is held at positions (2k, 2k+1) at every step, and the
 * rotation kernel writes its output already moved to the next step's positions (the circle method:
 * slot 0 stays, the other slots advance by one), so every step is the same three kernel calls on
 * the same buffers. That is what lets gpu.js fuse the whole plan (one module per kernel and buffer,
 * however many steps), and it needs no pair table.
 *
 * gpu.js rules followed here: loops start from a literal and loop variables have distinct names;
 * everything is float32 on wasm and webgpu (indices are exact below 2^24); on wasm, 4 consecutive
 * `thread.x` cells run as one SIMD quad, `thread.y` is uniform across it, so per-column work keyed on
 * `thread.y` (the pair, its rotation, the skip test) is scalar and branches on it are real branches.
 * @module
 */
import { internal } from '@sorsajs/core';

/** Exact quotient and remainder lines, shared with core's kernels. */
const { divmod } = internal;

/** A kernel for the pipeline: array parameters, then scalar parameters, and a body. */
export interface JacobiKernel {
  arrays: readonly string[];
  scalars: readonly string[];
  body: string;
}

/** Per-column max |a| of the input (flat, element (r, j) at `r * sa0 + j * sa1`). Output [n]. */
export const COLMAX: JacobiKernel = {
  arrays: ['a'],
  scalars: ['m', 'sa0', 'sa1'],
  body: `const j = this.thread.x;
let mx = 0.0;
for (let r = 0; r < m; r++) {
  const v = Math.abs(a[r * sa0 + j * sa1]);
  mx = v > mx ? v : mx;
  if (v != v) { mx = v; }
}
return mx;`,
};

/** Max of the per-column maxima. Output [1]. */
export const MAX1: JacobiKernel = {
  arrays: ['cm'],
  scalars: ['n'],
  body: `let mx = 0.0;
for (let j = 0; j < n; j++) {
  const v = cm[j];
  mx = v > mx ? v : mx;
  if (v != v) { mx = v; }
}
return mx;`,
};

/** X = [A / max|A| ; I] over gpu.js output [M, N] (x = row, y = column). */
export const PACK: JacobiKernel = {
  arrays: ['a', 'mx'],
  scalars: ['m', 'n', 'sa0', 'sa1'],
  body: `const r = this.thread.x;
const j = this.thread.y;
let v = 0.0;
if (r < m) {
  if (j < n) {
    const s = mx[0];
    v = a[r * sa0 + j * sa1] / (s > 0 ? s : 1.0);
  }
} else {
  v = (r - m == j) ? 1.0 : 0.0;
}
return v;`,
};

/**
 * The three dot products of each pair over the A rows: gpu.js output [1, 3 N/2] (one column, so
 * every read is a plain scalar load rather than a 4-lane gather on wasm); cell y = 3k + w is
 * a_p·a_p (w = 0), a_q·a_q (w = 1) or a_p·a_q (w = 2) for the pair at positions (2k, 2k+1).
 */
export const DOTS: JacobiKernel = {
  arrays: ['X'],
  scalars: ['m'],
  body: `const y = this.thread.y;
const k = Math.floor(y / 3);
const w = y - 3 * k;
const p = 2 * k + (w == 1 ? 1 : 0);
const q = 2 * k + (w == 0 ? 0 : 1);
const m4 = Math.floor(m / 4);
let s0 = 0.0;
let s1 = 0.0;
let s2 = 0.0;
let s3 = 0.0;
if (w == 2) {
  for (let i = 0; i < m4; i++) {
    const r = i * 4;
    s0 += X[p][r] * X[q][r];
    s1 += X[p][r + 1] * X[q][r + 1];
    s2 += X[p][r + 2] * X[q][r + 2];
    s3 += X[p][r + 3] * X[q][r + 3];
  }
  for (let i2 = 0; i2 < m - m4 * 4; i2++) {
    const r2 = m4 * 4 + i2;
    s0 += X[p][r2] * X[q][r2];
  }
} else {
  for (let i3 = 0; i3 < m4; i3++) {
    const r3 = i3 * 4;
    const v0 = X[p][r3];
    const v1 = X[p][r3 + 1];
    const v2 = X[p][r3 + 2];
    const v3 = X[p][r3 + 3];
    s0 += v0 * v0;
    s1 += v1 * v1;
    s2 += v2 * v2;
    s3 += v3 * v3;
  }
  for (let i4 = 0; i4 < m - m4 * 4; i4++) {
    const v4 = X[p][m4 * 4 + i4];
    s0 += v4 * v4;
  }
}
return (s0 + s1) + (s2 + s3);`,
};

/**
 * Rotation (c, s) of each pair: output [N/2, 2] (w = 0: c, w = 1: s). Pairs whose columns are
 * orthogonal to `tol` (|a_p·a_q| <= tol |a_p| |a_q|) or have a (near-)zero column get c = 1, s = 0:
 * the rotation kernel then copies them. t = tan of the angle that zeroes a_p·a_q, the smaller root
 * of t^2 + 2 theta t - 1 = 0, theta = (|a_q|^2 - |a_p|^2) / (2 a_p·a_q), computed as
 * (|a_q|/|a_p| - |a_p|/|a_q|) / (2 gamma) so nothing squares a ratio; for |theta| > big (1/sqrt(eps))
 * t = 1 / (2 theta), LAPACK's branch, so theta^2 never overflows.
 */
export const PARAMS: JacobiKernel = {
  arrays: ['D'],
  scalars: ['thrZ', 'tol', 'big'],
  body: `const k = this.thread.x;
const app = D[3 * k][0];
const aqq = D[3 * k + 1][0];
const apq = D[3 * k + 2][0];
let c = 1.0;
let s = 0.0;
if (app > thrZ && aqq > thrZ) {
  const np = Math.sqrt(app);
  const nq = Math.sqrt(aqq);
  const g = (apq / np) / nq;
  if (Math.abs(g) > tol) {
    const theta = (nq / np - np / nq) / (2.0 * g);
    let t = 0.0;
    if (Math.abs(theta) > big) {
      t = 0.5 / theta;
    } else {
      t = (theta >= 0 ? 1.0 : -1.0) / (Math.abs(theta) + Math.sqrt(1.0 + theta * theta));
    }
    c = 1.0 / Math.sqrt(1.0 + t * t);
    s = t * c;
  }
}
return this.thread.y == 0 ? c : s;`,
};

/**
 * One round-robin step: output [M, N] (x = row, y = output position). Output position j takes the
 * column that the circle method moves there (from position T[j], see `circleSources`), rotated
 * with its pair partner:
 * a_p' = c a_p - s a_q, a_q' = s a_p + c a_q. A column left as (near) zero gets tiny deterministic
 * noise in its A rows (`amp`, far below float32 resolution of |A|): the following steps orthogonalize
 * it against the others, which completes U for zero singular values (its V column is untouched, so
 * A V = U S holds for A perturbed by under amp * |A|). The padding column (odd n; its V part is the
 * last unit vector, `padded` = 1) is never filled.
 */
export const ROTATE: JacobiKernel = {
  arrays: ['X', 'D', 'P', 'T'],
  scalars: ['m', 'M', 'padded', 'thrZ', 'amp'],
  body: `const r = this.thread.x;
const src = T[this.thread.y];
const k = Math.floor(src / 2);
const second = src - 2 * k;
const s = P[1][k];
const a = X[src][r];
if (s == 0) {
  if (r < m) {
    if (D[3 * k + second][0] <= thrZ) {
      if (padded == 0 || X[src][M - 1] == 0) {
        const z = Math.sin((r + 1) * 1.9898 + (src + 1) * 0.7823 + (r + 1) * (src + 1) * 0.0131) * 9.5453;
        return amp * (z - Math.floor(z) - 0.5);
      }
    }
  }
  return a;
}
const c = P[0][k];
const b = X[src + 1 - 2 * second][r];
return second == 0 ? c * a - s * b : s * b + c * a;`,
};

/** X as a flat column-major buffer (1-D output [M * N]). */
export const FLATTEN: JacobiKernel = {
  arrays: ['X'],
  scalars: ['M'],
  body: `const i = this.thread.x;
${divmod('col', 'row', 'i', 'M')}
return X[col][row];`,
};

/** A core kernel source, as `launch` takes it. */
interface Src {
  key: string;
  arrays: readonly string[];
  scalars: readonly string[];
  body: string;
  floats?: readonly string[];
}

/** Column norms of the A part of flat X ([N]); the padding column gets -1 so it sorts last. Scalars m, M, padded. */
export const NORMS: Src = {
  key: 'jacobi:norms',
  arrays: ['x'],
  scalars: ['m', 'M', 'padded'],
  body: `const j = this.thread.x;
const base = j * M;
let acc = 0.0;
for (let r = 0; r < m; r++) { acc += x[base + r] * x[base + r]; }
let v = Math.sqrt(acc);
if (padded == 1) { if (x[base + M - 1] != 0) { v = -1.0; } }
return v;`,
};

/** Sorted position of each column (descending by norm, ties by index). Output [N]. */
export const RANK: Src = {
  key: 'jacobi:rank',
  arrays: ['s'],
  scalars: ['N'],
  body: `const j = this.thread.x;
const v = s[j];
let rk = 0;
for (let i = 0; i < N; i++) {
  const w = s[i];
  if (w > v) { rk += 1; }
  if (w == v) { if (i < j) { rk += 1; } }
}
return rk;`,
};

/** The inverse permutation: which column goes to sorted position t. Output [k]. */
export const PERM: Src = {
  key: 'jacobi:perm',
  arrays: ['rk'],
  scalars: ['N'],
  body: `const t = this.thread.x;
let src = 0;
for (let i = 0; i < N; i++) { if (rk[i] == t) { src = i; } }
return src;`,
};

/** Singular values: sorted norms times the scale; those at the noise floor (`nullThr`) are 0. Output [k]. */
export const SVALS: Src = {
  key: 'jacobi:svals',
  arrays: ['nrm', 'perm', 'mx'],
  scalars: ['nullThr'],
  floats: ['nullThr'],
  body: `const t = this.thread.x;
const v = nrm[perm[t]];
const s = mx[0];
return v <= nullThr ? 0.0 : v * (s > 0 ? s : 1.0);`,
};

/**
 * Left singular vectors: column t is X's A part of column perm[t] over its norm (a unit vector
 * even for null columns, whose A part is orthogonalized noise; e_t if it is exactly zero). Output
 * [rows, k] row-major, or its transpose [k, rows] when `trans` is 1. Scalars rows, k, M, trans.
 */
export const UVECS: Src = {
  key: 'jacobi:u',
  arrays: ['x', 'nrm', 'perm'],
  scalars: ['rows', 'k', 'M', 'trans'],
  body: `const i = this.thread.x;
${divmod('q0', 'r0', 'i', 'k')}
${divmod('q1', 'r1', 'i', 'rows')}
const r = trans == 1 ? r1 : q0;
const t = trans == 1 ? q1 : r0;
const src = perm[t];
const nv = nrm[src];
let v = 0.0;
if (nv > 0) { v = x[src * M + r] / nv; } else { v = (r == t) ? 1.0 : 0.0; }
return v;`,
};

/** Right singular vectors before polishing: V (n x k, row-major) from X's V part. Scalars k, M, m. */
export const VVECS: Src = {
  key: 'jacobi:v',
  arrays: ['x', 'perm'],
  scalars: ['k', 'M', 'm'],
  body: `const i = this.thread.x;
${divmod('r', 't', 'i', 'k')}
return x[perm[t] * M + m + r];`,
};

/** W = 1.5 I - 0.5 G for the Newton-Schulz step V (1.5 I - 0.5 VᵀV). Scalars k. */
export const NSW: Src = {
  key: 'jacobi:nsw',
  arrays: ['g'],
  scalars: ['k'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'k')}
return (r == c ? 1.5 : 0.0) - 0.5 * g[i];`,
};

/**
 * The round-robin move as a table: the position each output position reads from. Circle method on
 * N players: slots 0..N-1 pair as (c, N-1-c); position 2c holds slot c and 2c+1 slot N-1-c; after
 * a step slot 0 stays and slot c >= 1 moves to c + 1 (N - 1 wraps to 1). Planning, not compute.
 */
export function circleSources(N: number): Float32Array {
  const nh = N / 2;
  const T = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    const jh = Math.floor(j / 2);
    const cs = j % 2 === 0 ? jh : N - 1 - jh;
    const cp = cs === 0 ? 0 : cs === 1 ? N - 1 : cs - 1;
    T[j] = cp < nh ? 2 * cp : 2 * (N - 1 - cp) + 1;
  }
  return T;
}
