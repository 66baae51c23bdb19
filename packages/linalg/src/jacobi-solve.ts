/**
 * The QR path's V_X without accumulated rotations (after Drmač and Veselić, who solve for it when
 * the triangular factor is well-conditioned). The sweeps on X = Rᵀ (lower triangular, n x n) end
 * with X V_X = U_X diag(S) (U_X the rotated columns normalized), which gives V_X two ways:
 * - the solve V_X = X⁻¹ U_X diag(S): column j is off by about eps S[j] / S[n-1] (one-sided Jacobi's
 *   rounding is relative to each column, X⁻¹ amplifies it by up to 1 / S[n-1]), so it is accurate
 *   for the small singular values and poor for the large ones;
 * - the product V_X = Xᵀ U_X diag(S)⁻¹: column j is off by about tol S[0] / S[j] (the rotated
 *   columns are orthogonal only to tol, and the product weighs column i's share by S[i] / S[j]), so
 *   it is accurate for the large singular values and poor for the small ones.
 * Each column takes the better one: the product where S[j] >= SPLIT sqrt(S[0] S[n-1]) n^(1/4) (where
 * the two estimates cross, with tol ~ sqrt(n) eps), the solve below. Solving lets the sweeps carry
 * A's rows only, which halves their update (the work matrix loses its n rows of V); the caller
 * polishes V_X by one Newton-Schulz step, as accumulated rotations are.
 *
 * The solve is blocked by s = 32 rows, as GPU TRSMs are: the diagonal blocks of X inverted (INVROW,
 * a row of every block a launch), then a step a block row I: Y_I = X_II⁻¹ T_I and
 * T_{>I} -= X_{>I,I} Y_I, both products through core's matmul (TRSTEP puts the pieces together).
 * @module
 */
import * as internal from '@sorsajs/core/internal';

type Payload = internal.Payload;
type Ctx = internal.JobContext;
type Src = internal.KernelSource;
const { divmod } = internal;

/**
 * The largest cond(X) = S[0] / S[n-1] for which the QR path solves for V_X. Measured on wasm
 * (jacobiSvd with and without the solve, 256² and 768²): LAPACK's residual ratio
 * ||A - U S Vᵀ||_1 / (||A||_1 n eps) 0.6-1.0 with the solve against 0.4-0.6 with rotations on
 * geometric spectra of cond 1e4 and 1e5, 1.1 against 1.1 on a 768² Gaussian (cond 6e3); at cond
 * 1e6 the solve's 2.2-3.0 and ||I - UᵀU||_1 / (n eps) up to 4.7 show where it starts to lose.
 * (The solve alone, without the product's columns, reached 15-27 at cond 1e4, 256².)
 */
export const COND_SOLVE = 2 ** 16;

/** The product serves the columns with S[j] >= SPLIT sqrt(S[0] S[n-1]) n^(1/4) (measured best of 1-4 at 256² and 768²). */
const SPLIT = 2;

/** Rows a block of the solve. */
const S_BLK = 32;

/** min |x_ii| / max |x_ii| of X `[n, n]` (0 for a zero diagonal): 1 / cond(X) is at most this. Output [1]. Scalars n. */
export const DIAGRATIO: Src = {
  key: 'jsolve:diagratio',
  arrays: ['X'],
  scalars: ['n'],
  body: `let lo = Math.abs(X[0]);
let hi = lo;
for (let i = 1; i < n; i++) {
  const v = Math.abs(X[i * n + i]);
  lo = Math.min(lo, v);
  hi = Math.max(hi, v);
}
return hi > 0 ? lo / hi : 0.0;`,
};

/**
 * Row r of the inverse of every diagonal block of the lower-triangular X `[n, n]`, by forward
 * substitution from the rows before it (in `prev`); the other rows copied. Output D `[nblk, s, s]`
 * (D[(I s + i) s + c] = (X_II⁻¹)[i][c]); rows past n are the identity's. Scalars n, s, r.
 */
export const INVROW: Src = {
  key: 'jsolve:invrow',
  arrays: ['X', 'prev'],
  scalars: ['n', 's', 'r'],
  body: `const idx = this.thread.x;
${divmod('Ii', 'c', 'idx', 's')}
${divmod('I', 'i', 'Ii', 's')}
let v = 0.0;
if (i != r) {
  v = prev[idx];
} else {
  const g = I * s + r;
  if (g >= n) {
    v = c == r ? 1.0 : 0.0;
  } else if (c <= r) {
    let acc = c == r ? 1.0 : 0.0;
    for (let l = c; l < r; l++) { acc -= X[g * n + I * s + l] * prev[(I * s + l) * s + c]; }
    v = acc / X[g * n + g];
  }
}
return v;`,
};

/** `len` values of `src` from offset `off` (a block of rows of a row-major matrix). Scalars off. */
export const RANGE: Src = {
  key: 'jsolve:range',
  arrays: ['src'],
  scalars: ['off'],
  body: 'return src[off + this.thread.x];',
};

/** X's rows r0.. and columns b0 .. b0 + w of X `[n, n]`, rows past n zero: `[rows, w]`. Scalars n, w, b0, r0. */
export const XPANEL: Src = {
  key: 'jsolve:xpanel',
  arrays: ['X'],
  scalars: ['n', 'w', 'b0', 'r0'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
return r0 + i < n ? X[(r0 + i) * n + b0 + c] : 0.0;`,
};

/**
 * Block row I of the solve over T `[n, k]` (row-major, one cell a value), the block's w rows from
 * b0: they become Y_I `[w, k]`, rows below get T_r - Z_r (Z = X_{>I,I} Y_I, its row 0 being row
 * b0 + w), rows above (solved already) are copied. Scalars k, w, b0.
 */
export const TRSTEP: Src = {
  key: 'jsolve:trstep',
  arrays: ['T', 'Y', 'Z'],
  scalars: ['k', 'w', 'b0'],
  body: `const idx = this.thread.x;
const e = b0 * k;
const z = e + w * k;
let v = T[idx];
if (idx >= z) { v -= Z[idx - z]; } else if (idx >= e) { v = Y[idx - e]; }
return v;`,
};

/** T = U diag(S): U `[n, k]` row-major, columns scaled. Output [n, k]. Scalars k. */
export const SCALECOLS: Src = {
  key: 'jsolve:scalecols',
  arrays: ['U', 'S'],
  scalars: ['k'],
  body: `const idx = this.thread.x;
${divmod('r', 'j', 'idx', 'k')}
return U[idx] * S[j];`,
};

/**
 * V_X's column j: the product P = Xᵀ U_X's column over S[j] where S[j] >= split, else the solve's Y.
 * Output [n, k]. Scalars k, split.
 */
export const MIX: Src = {
  key: 'jsolve:mix',
  arrays: ['P', 'Y', 'S'],
  scalars: ['k', 'split'],
  floats: ['split'],
  body: `const idx = this.thread.x;
${divmod('r', 'j', 'idx', 'k')}
const s = S[j];
return s >= split ? P[idx] / s : Y[idx];`,
};

/**
 * Whether X `[n, n]` may be well-conditioned enough for the solve: min |x_ii| / max |x_ii| is an
 * upper bound on 1 / cond(X) (a triangular matrix's singular values bracket its diagonal), so a
 * ratio under 1 / COND_SOLVE rules the solve out before any sweep. A pass is no promise: the sweeps'
 * singular values decide (see jacobi.ts).
 *
 * @example
 * ```ts
 * // inside a job, X lower triangular [n, n]
 * const maybe = await mayBeWellConditioned(ctx, X, n);
 * ```
 */
export async function mayBeWellConditioned(ctx: Ctx, X: Payload, n: number): Promise<boolean> {
  const r = await ctx.run(DIAGRATIO, [1], [X], [n]);
  const ratio = (await ctx.read(r))[0];
  ctx.free(r);
  return ratio * COND_SOLVE >= 1;
}

/**
 * V_X for the lower-triangular X `[n, n]` from the sweeps' U_X `[n, n]` and S `[n]` (payloads; s0 and
 * sLast the largest and smallest singular values, on the host), each column by the solve or the
 * product (see the module comment). Not yet polished. The caller frees it.
 *
 * @example
 * ```ts
 * // inside a job, after the sweeps on X (jacobi.ts)
 * const s = await ctx.read(S);
 * const V = await solveVInJob(ctx, X, U, S, s[0], s[n - 1], n);
 * ```
 */
export async function solveVInJob(ctx: Ctx, X: Payload, U: Payload, S: Payload, s0: number, sLast: number, n: number): Promise<Payload> {
  const Y = await lowerSolveInJob(ctx, X, U, S, n, n);
  const P = await internal.matmulInJob(ctx, X, U, { M: n, N: n, K: n, sa0: 1, sa1: n, sb0: n, sb1: 1 });
  const V = await ctx.run(MIX, [n * n], [P, Y, S], [n, SPLIT * Math.sqrt(s0 * sLast) * n ** 0.25]);
  ctx.free(P);
  ctx.free(Y);
  return V;
}

/**
 * Y = X⁻¹ U diag(S) for lower-triangular X `[n, n]`, U `[n, k]` and S `[k]` (payloads), blocked as
 * the module comment says. Output `[n, k]` row-major; the caller frees it.
 *
 * @example
 * ```ts
 * // inside a job: V_X from the sweeps' U and S (jacobi.ts)
 * const V = await lowerSolveInJob(ctx, X, U, S, n, k);
 * ```
 */
export async function lowerSolveInJob(ctx: Ctx, X: Payload, U: Payload, S: Payload, n: number, k: number): Promise<Payload> {
  const s = S_BLK;
  const nblk = Math.ceil(n / s);
  let D: Payload = new Float32Array(nblk * s * s);
  for (let r = 0; r < s; r++) {
    const D2 = await ctx.run(INVROW, [nblk * s * s], [X, D], [n, s, r]);
    ctx.free(D);
    D = D2;
  }
  let T = await ctx.run(SCALECOLS, [n * k], [U, S], [k]);
  const quarter = 4 * Math.ceil(n / 16);
  for (let b0 = 0; b0 < n; b0 += s) {
    const w = Math.min(s, n - b0);
    const r0 = b0 + w;
    // Y_I = X_II⁻¹ T_I, then T_{>I} -= X_{>I,I} Y_I. Both products go through core's matmul: as
    // one gpu.js kernel a value, reading its operands by gather, the solve took 413 ms at 768².
    const TI = await ctx.run(RANGE, [w * k], [T], [b0 * k]);
    const DI = await ctx.run(RANGE, [w * s], [D], [b0 * s]);
    const Y = await internal.matmulInJob(ctx, DI, TI, { M: w, N: k, K: w, sa0: s, sa1: 1, sb0: k, sb1: 1 });
    let Z = Y;
    if (r0 < n) {
      // The product's rows rounded up to a quarter of n (zero rows past n): core's wasm matmul
      // compiles a kernel per shape, and a shape per block row cost ~1.4 s of compiling at 768.
      const rows = Math.min(n, Math.ceil((n - r0) / quarter) * quarter);
      const XP = await ctx.run(XPANEL, [rows * w], [X], [n, w, b0, r0]);
      Z = await internal.matmulInJob(ctx, XP, Y, { M: rows, N: k, K: w, sa0: w, sa1: 1, sb0: k, sb1: 1 });
      ctx.free(XP);
    }
    const T2 = await ctx.run(TRSTEP, [n * k], [T, Y, Z], [k, w, b0]);
    if (Z !== Y) ctx.free(Z);
    for (const t of [T, TI, DI, Y]) ctx.free(t);
    T = T2;
  }
  ctx.free(D);
  return T;
}
