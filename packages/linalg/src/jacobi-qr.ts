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
 * The QR is qr-blocked.ts's (panels of 32 columns, or 16 up to 128, factored by the step kernels,
 * the trailing block updated by three products in the compact WY form), the same as the public `qr`'s.
 * @module
 */
import * as internal from '@sorsajs/core/internal';
import { applyQInJob, blockedQrInJob, freeReflectors } from './qr-blocked.js';
import * as K from './jacobi-kernels.js';

type Payload = internal.Payload;
type Ctx = internal.JobContext;
type Src = internal.KernelSource;
const { divmod } = internal;

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

/** X = Rᵀ from R `[n, n]` (only its upper triangle is read): [n, n]. Scalars n. */
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

/** Payloads of a thin SVD made inside a job (as jacobi.ts's JobSvd). */
interface Factors {
  U: Payload;
  S: Payload;
  Vt: Payload;
}

/**
 * The whole QR-preconditioned Jacobi SVD of the m0 x n0 payload `ap` through a job's context:
 * `jacobi` runs the SVD of the n x n lower-triangular Rᵀ (n = min(m0, n0)), passed in so that the
 * modules keep one import direction (jacobi.ts chooses between accumulated rotations and the solve
 * of jacobi-solve.ts). The caller frees the results.
 *
 * @example
 * ```ts
 * // inside internal.launchJob('jacobiSvd', [a], [[m, k], [k], [k, n]], async (ctx, [ap]) => ...)
 * const plan = jacobiPlan(k, k, {}); // made before the job, for the k x k Rᵀ
 * const rt = (c: internal.JobContext, x: internal.Payload, n: number) => jacobiInJob(c, x, n, n, plan, jacobiStats);
 * const { U, S, Vt } = await jacobiQrInJob(ctx, ap, m, n, rt);
 * ```
 */
export async function jacobiQrInJob(ctx: Ctx, ap: Payload, m0: number, n0: number, jacobi: (ctx: Ctx, x: Payload, n: number) => Promise<Factors>): Promise<Factors> {
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
  const B = await ctx.run(GATHER, [m * n], [ap, perm, mx], [n, sa0, sa1]);
  ctx.free(perm);
  const { reflectors, R } = await blockedQrInJob(ctx, B, m, n, true);
  ctx.free(B);
  const X = await ctx.run(RT, [n * n], [R!], [n]);
  ctx.free(R!);
  const f = await jacobi(ctx, X, n);
  ctx.free(X);
  // B = (Q V_X) S (P U_X)ᵀ: Q V_X from the reflectors applied to [V_X; 0].
  const E = await ctx.run(EMBED, [m * n], [f.Vt], [n]);
  ctx.free(f.Vt);
  const C = await applyQInJob(ctx, reflectors, E, n);
  freeReflectors(ctx, reflectors);
  const S = await ctx.run(UNSCALE, [n], [f.S, mx], []);
  const PU = await ctx.run(UNPERM, [n * n], [f.U, rank], [n, wide ? 0 : 1]);
  for (const t of [f.S, f.U, rank, mx]) ctx.free(t);
  if (!wide) return { U: C, S, Vt: PU };
  const Ct = await ctx.run(TRANSPOSE, [n * m], [C], [m, n]);
  ctx.free(C);
  return { U: PU, S, Vt: Ct };
}
