/**
 * QR-preconditioned Jacobi SVD (Drmač and Veselić): the work matrix B (A, or Aᵀ when wide, m x n,
 * m >= n) with its columns sorted by norm, descending (B P), is reduced by a blocked Householder QR,
 * B P = Q R, and the block Jacobi of jacobi.ts runs on X = Rᵀ (n x n) instead of B. From
 * X = U_X S V_Xᵀ: R = V_X S U_Xᵀ, so B = (Q V_X) S (P U_X)ᵀ; Q V_X is formed by applying the
 * reflectors to V_X, never Q itself.
 *
 * Why: the sweeps over X cost the sweeps over an n x n matrix whatever m is (a tall B's Gram and
 * update run over m + n rows, X's over 2n), and Rᵀ's columns converge in fewer sweeps (measured on
 * Gaussian matrices, this implementation: 8 sweeps instead of 11 at 256², 10 instead of 13 at 768²).
 * Accuracy: Householder QR is backward stable column by column, and with the columns sorted R is
 * graded by rows, so the one-sided Jacobi on Rᵀ keeps the relative accuracy of small singular values
 * that it has on B (Drmač and Veselić, SIAM J. Matrix Anal. Appl. 29, 2008).
 *
 * The QR is blocked (compact WY in the UT form): each panel of `pw` columns is factored by the
 * four Householder kernels of qr-kernels.ts on the panel alone, its reflectors y_j = √β_j v̂_j
 * (H_j = I − y_j y_jᵀ) are the columns of Y (m x pw, zero above the panel's first row), and
 * H_0 ... H_(pw−1) = I − Y S Yᵀ with S⁻¹ = striu(YᵀY) + diag(YᵀY) / 2 (upper triangular, inverted
 * row by row, one small kernel a row). The rest of B is updated with three products,
 * B ← B − (Y Sᵀ)(Yᵀ B), the panel's columns too (so R needs no separate copy); the unblocked QR
 * (qr-job.ts) rewrites all of B once per column instead, which is what made it slow (7 s at 768²
 * on wasm). Every value is computed by gpu.js kernels and core's matmul; the host only plans.
 * @module
 */
import * as internal from '@sorsajs/core/internal';
import { backend } from '@sorsajs/core';
import { PROJECT, REFLECTOR, VECTOR } from './qr-kernels.js';
import * as K from './jacobi-kernels.js';
import type { Plan } from './jacobi-plan.js';
import type { JacobiStats } from './types.js';

type Payload = internal.Payload;
type Ctx = internal.JobContext;
type Src = internal.KernelSource;
const { divmod } = internal;

/** Columns per panel of the blocked QR: the inner size of its products (core's wasm matmul tiles 4 x 16). */
const PANEL = 32;

/** Column norms of B = (A read with strides sa0, sa1) / s, s = max|A| (1 for a zero A). Output [n]. Scalars m, sa0, sa1. */
const CNORM: Src = {
  key: 'jqr:cnorm',
  arrays: ['a', 'mx'],
  scalars: ['m', 'sa0', 'sa1'],
  body: `const j = this.thread.x;
const s = mx[0] > 0 ? mx[0] : 1.0;
let acc = 0.0;
for (let r = 0; r < m; r++) { const v = a[r * sa0 + j * sa1] / s; acc += v * v; }
return Math.sqrt(acc);`,
};

/** B P: B[i][t] = A's (i, perm[t]) / s, row-major [m, n]. Scalars n, sa0, sa1. */
const GATHER: Src = {
  key: 'jqr:gather',
  arrays: ['a', 'perm', 'mx'],
  scalars: ['n', 'sa0', 'sa1'],
  body: `const idx = this.thread.x;
${divmod('i', 't', 'idx', 'n')}
const s = mx[0] > 0 ? mx[0] : 1.0;
return a[i * sa0 + perm[t] * sa1] / s;`,
};

/** The panel: B[c0 + i][c0 + c] for i < rows, c < w, row-major [rows, w]. Scalars n, c0, w. */
const PANEL_OF: Src = {
  key: 'jqr:panel',
  arrays: ['B'],
  scalars: ['n', 'c0', 'w'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
return B[(i + c0) * n + c0 + c];`,
};

/** A matrix of zeros (Y's and S's start). */
const ZEROS: Src = { key: 'jqr:zeros', arrays: [], scalars: [], body: 'return 0.0;' };

/**
 * One Householder step on the panel P `[rows, w]` that keeps the reflectors in it: columns after j
 * get P − β v̂ wᵀ, column j (from row j) becomes y_j = √β v̂ (H_j = I − y_j y_jᵀ), columns before j
 * (earlier reflectors) stay. R is not read from P (applyPanel forms it on all of B), so P's lower
 * part can hold Y: one kernel a step instead of an update and a copy into Y. Scalars w, j.
 */
const PSTEP: Src = {
  key: 'jqr:pstep',
  arrays: ['P', 'v', 'wv', 'p'],
  scalars: ['w', 'j'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
if (c < j) { return P[idx]; }
if (c == j) { return i >= j ? Math.sqrt(p[2]) * v[i] : P[idx]; }
return P[idx] - p[2] * v[i] * wv[c];`,
};

/** PSTEP over gpu.js output dims [w, rows] for wasm (a `flat` result): no index divided. Scalars w, j. */
const PSTEP_2D: Src = {
  key: 'jqr:pstep2d',
  arrays: ['P', 'v', 'wv', 'p'],
  scalars: ['w', 'j'],
  flat: true,
  body: `const i = this.thread.y;
const c = this.thread.x;
const idx = i * w + c;
if (c < j) { return P[idx]; }
if (c == j) { return i >= j ? Math.sqrt(p[2]) * v[i] : P[idx]; }
return P[idx] - p[2] * v[i] * wv[c];`,
};

/**
 * Y `[m, w]` from the factored panel P `[m − c0, w]`: y_c is P's column c from row c (rows c0 + c on
 * of B), zero above; columns from `steps` on had no reflector and are zero. Scalars w, c0, steps.
 */
const YFROM: Src = {
  key: 'jqr:yfrom',
  arrays: ['P'],
  scalars: ['w', 'c0', 'steps'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
if (c >= steps) { return 0.0; }
if (i < c0 + c) { return 0.0; }
return P[(i - c0) * w + c];`,
};

/**
 * Row i of S = T⁻¹, T = striu(G) + diag(G) / 2 (G = YᵀY; a zero reflector's diagonal is taken as 1),
 * from S's rows below i (back substitution, one row per launch, from the last). Scalars w, i.
 */
const TROW: Src = {
  key: 'jqr:trow',
  arrays: ['S', 'G'],
  scalars: ['w', 'i'],
  body: `const idx = this.thread.x;
${divmod('r', 'c', 'idx', 'w')}
if (r != i) { return S[idx]; }
if (c < i) { return 0.0; }
let acc = c == i ? 1.0 : 0.0;
for (let l = 0; l < w; l++) { if (l > i && l <= c) { acc -= G[i * w + l] * S[l * w + c]; } }
const d = G[i * w + i];
return acc / (d > 0 ? 0.5 * d : 1.0);`,
};

/** X − D, elementwise. */
const MINUS: Src = { key: 'jqr:minus', arrays: ['X', 'D'], scalars: [], body: 'return X[this.thread.x] - D[this.thread.x];' };

/** X = Rᵀ with R = the upper triangle of B's first n rows: [n, n]. Scalars n. */
const RT: Src = {
  key: 'jqr:rt',
  arrays: ['B'],
  scalars: ['n'],
  body: `const idx = this.thread.x;
${divmod('i', 'j', 'idx', 'n')}
return j <= i ? B[j * n + i] : 0.0;`,
};

/** [V_X ; 0] `[m, n]` from V_Xᵀ `[n, n]` (row-major): the matrix the reflectors turn into Q V_X. Scalars n. */
const EMBED: Src = {
  key: 'jqr:embed',
  arrays: ['Vt'],
  scalars: ['n'],
  body: `const idx = this.thread.x;
${divmod('i', 'j', 'idx', 'n')}
return i < n ? Vt[j * n + i] : 0.0;`,
};

/**
 * P U_X: row c is U_X's row rank[c] (rank[c]: where B P put column c). `[n, n]` row-major, or its
 * transpose when trans is 1. Scalars n, trans.
 */
const UNPERM: Src = {
  key: 'jqr:unperm',
  arrays: ['U', 'rank'],
  scalars: ['n', 'trans'],
  body: `const idx = this.thread.x;
${divmod('a', 'b', 'idx', 'n')}
const c = trans == 1 ? b : a;
const t = trans == 1 ? a : b;
return U[rank[c] * n + t];`,
};

/** Cᵀ: `[n, m]` from C `[m, n]`. Scalars m, n. */
const TRANSPOSE: Src = {
  key: 'jqr:transpose',
  arrays: ['C'],
  scalars: ['m', 'n'],
  body: `const idx = this.thread.x;
${divmod('t', 'i', 'idx', 'm')}
return C[i * n + t];`,
};

/** S times the input's scale s (1 for a zero input). Output [k]. */
const UNSCALE: Src = {
  key: 'jqr:unscale',
  arrays: ['S', 'mx'],
  scalars: [],
  body: 'return S[this.thread.x] * (mx[0] > 0 ? mx[0] : 1.0);',
};

/** One panel's reflectors: Y `[m, w]` and S `[w, w]`, the block H_c0 ... = I − Y S Yᵀ. */
interface Panel {
  Y: Payload;
  S: Payload;
  w: number;
}

/** The reflectors of panel columns c0 .. c0 + w of B `[m, n]` (factored by the unblocked kernels on the panel alone). */
async function panelReflectors(ctx: Ctx, B: Payload, m: number, n: number, c0: number, w: number): Promise<Panel> {
  const rows = m - c0;
  let P = await ctx.run(PANEL_OF, [rows * w], [B], [n, c0, w]);
  // A reflector per column with entries below the diagonal (the square case's last column has none).
  const steps = Math.min(w, rows - 1);
  for (let j = 0; j < steps; j++) {
    const p = await ctx.run(REFLECTOR, [3], [P], [rows, w, j]);
    const v = await ctx.run(VECTOR, [rows], [P, p], [w, j]);
    const wv = await ctx.run(PROJECT, [w], [P, v], [rows, w, j]);
    const next = backend() === 'wasm' ? await ctx.run(PSTEP_2D, [w, rows], [P, v, wv, p], [w, j]) : await ctx.run(PSTEP, [rows * w], [P, v, wv, p], [w, j]);
    for (const t of [wv, P, v, p]) ctx.free(t);
    P = next;
  }
  const Y = await ctx.run(YFROM, [m * w], [P], [w, c0, steps]);
  ctx.free(P);
  const G = await internal.matmulInJob(ctx, Y, Y, { M: w, N: w, K: m, sa0: 1, sa1: w, sb0: w, sb1: 1 });
  let S = await ctx.run(ZEROS, [w * w], [], []);
  for (let i = w - 1; i >= 0; i--) {
    const S2 = await ctx.run(TROW, [w * w], [S, G], [w, i]);
    ctx.free(S);
    S = S2;
  }
  ctx.free(G);
  return { Y, S, w };
}

/**
 * C − Y T (Yᵀ C) for C `[m, cols]`, with T = Sᵀ (`transS`: applying the panel's Qᵀ) or S (its Q).
 * Three products and a difference; frees C.
 */
async function applyPanel(ctx: Ctx, C: Payload, m: number, cols: number, { Y, S, w }: Panel, transS: boolean): Promise<Payload> {
  const Wt = await internal.matmulInJob(ctx, Y, C, { M: w, N: cols, K: m, sa0: 1, sa1: w, sb0: cols, sb1: 1 });
  const YT = await internal.matmulInJob(ctx, Y, S, { M: m, N: w, K: w, sa0: w, sa1: 1, sb0: transS ? 1 : w, sb1: transS ? w : 1 });
  const D = await internal.matmulInJob(ctx, YT, Wt, { M: m, N: cols, K: w, sa0: w, sa1: 1, sb0: cols, sb1: 1 });
  const C2 = await ctx.run(MINUS, [m * cols], [C, D], []);
  for (const t of [Wt, YT, D, C]) ctx.free(t);
  return C2;
}

/** Payloads of a thin SVD made inside a job (as jacobi.ts's JobSvd). */
interface Factors {
  U: Payload;
  S: Payload;
  Vt: Payload;
}

/**
 * The whole QR-preconditioned Jacobi SVD of the m0 x n0 payload `ap` through a job's context: `inner`
 * is the plan of the n x n Jacobi (n = min(m0, n0)), `jacobi` runs it (jacobi.ts's jacobiInJob, passed
 * in so that the modules keep one import direction). Records the Jacobi's iteration into `stats`. The
 * caller frees the results.
 *
 * @example
 * ```ts
 * // inside internal.launchJob('jacobiSvd', [a], [[m, k], [k], [k, n]], async (ctx, [ap]) => ...)
 * const plan = jacobiPlan(k, k, {}); // made before the job, for the k x k Rᵀ
 * const { U, S, Vt } = await jacobiQrInJob(ctx, ap, m, n, plan, jacobiStats, jacobiInJob);
 * ```
 */
export async function jacobiQrInJob(
  ctx: Ctx,
  ap: Payload,
  m0: number,
  n0: number,
  inner: Plan,
  stats: JacobiStats,
  jacobi: (ctx: Ctx, x: Payload, m: number, n: number, plan: Plan, stats: JacobiStats) => Promise<Factors>,
): Promise<Factors> {
  const wide = m0 < n0;
  const m = wide ? n0 : m0;
  const n = wide ? m0 : n0;
  const sa0 = wide ? 1 : n0;
  const sa1 = wide ? n0 : 1;
  const cm = await ctx.run(K.COLMAX, [n], [ap], [m, sa0, sa1]);
  const mx = await ctx.run(K.MAX1, [1], [cm], [n]);
  ctx.free(cm);
  const scale = (await ctx.read(mx))[0];
  if (!(scale >= 0) || !Number.isFinite(scale)) throw new Error(`jacobiSvd: input has a non-finite value (NaN or Infinity) in shape [${m0},${n0}]`);
  // Columns sorted by norm, descending, so that R is graded by rows (see the module comment).
  const cn = await ctx.run(CNORM, [n], [ap, mx], [m, sa0, sa1]);
  const rank = await ctx.run(K.RANK, [n], [cn], [n]);
  const perm = await ctx.run(K.PERM, [n], [rank], [n]);
  ctx.free(cn);
  let B = await ctx.run(GATHER, [m * n], [ap, perm, mx], [n, sa0, sa1]);
  ctx.free(perm);
  const panels: Panel[] = [];
  for (let c0 = 0; c0 < n; c0 += PANEL) {
    const panel = await panelReflectors(ctx, B, m, n, c0, Math.min(PANEL, n - c0));
    B = await applyPanel(ctx, B, m, n, panel, true);
    panels.push(panel);
  }
  const X = await ctx.run(RT, [n * n], [B], [n]);
  ctx.free(B);
  const f = await jacobi(ctx, X, n, n, inner, stats);
  ctx.free(X);
  // B = (Q V_X) S (P U_X)ᵀ: Q V_X from the reflectors applied to [V_X; 0], last panel first.
  let C = await ctx.run(EMBED, [m * n], [f.Vt], [n]);
  ctx.free(f.Vt);
  for (let p = panels.length - 1; p >= 0; p--) {
    C = await applyPanel(ctx, C, m, n, panels[p], false);
    ctx.free(panels[p].Y);
    ctx.free(panels[p].S);
  }
  const S = await ctx.run(UNSCALE, [n], [f.S, mx], []);
  const PU = await ctx.run(UNPERM, [n * n], [f.U, rank], [n, wide ? 0 : 1]);
  for (const t of [f.S, f.U, rank, mx]) ctx.free(t);
  if (!wide) return { U: C, S, Vt: PU };
  const Ct = await ctx.run(TRANSPOSE, [n * m], [C], [m, n]);
  ctx.free(C);
  return { U: PU, S, Vt: Ct };
}
