/**
 * One-sided (Hestenes) Jacobi SVD on gpu.js kernels, by blocks.
 *
 * Design, in order of what runs. The files: this one (the public function and the finishing kernels'
 * launches), jacobi-plan.ts (sizes and planning tables), jacobi-sweeps.ts (the iteration),
 * jacobi-kernels.ts (outer kernels), jacobi-inner.ts (inner kernels), jacobi-qr.ts (the QR
 * preconditioning, from min(m, n) = 128 on: everything below then runs on the k x k Rᵀ).
 * - Wide inputs are read transposed (B = Aᵀ), so the work matrix is m x n with m >= n.
 * - The scale max|A| (two small kernels), then the work matrix X = [A / max|A| ; I] (A's columns over
 *   V's), its columns in blocks of b, n padded to whole pairs of blocks with zero columns.
 * - Sweeps of the block round robin: nb - 1 outer steps, each pairing every block with one other
 *   (circle method on blocks). An outer step, for all block pairs K at once:
 *   GRAM  G_K = Y_Kᵀ Y_K over the A rows (Y_K the pair's 2b columns, w = 2b);
 *   CONV  the running max of |g_ij| / sqrt(g_ii g_jj), the convergence measure;
 *   one sweep of two-sided Jacobi on every G_K (w - 1 steps of w/2 disjoint rotations: IPARAMS,
 *         then IROT rotating G_K and accumulating J_K), converged pairs skipped (s = 0);
 *   UPDATE Y_K <- Y_K J_K for A's and V's rows, written to the next outer step's block positions.
 *   Each pair of columns is thus rotated by the same angle scalar one-sided Jacobi would compute
 *   from the same three dot products, but the whole work matrix is rewritten once per outer step
 *   (nb - 1 times a sweep) instead of once per pair step (n - 1 times), and the Gram and update are
 *   dense products that wasm runs register-tiled. Measured at n = 256 on wasm: a scalar sweep (three
 *   kernels per pair step) cost ~130 ms, a block sweep (b = 16) ~60-100 ms, on a busy 2-core machine.
 * - The iteration is a core job (`internal.launchJob`): after each sweep the max cosine is read back
 *   (one number) and the sweeps stop once it is within `tol` (or the rounding band above it, see
 *   `JacobiOptions.tol`), so the API stays synchronous (the results arrive when the job is done)
 *   while the work adapts to the matrix. Near the end, a
 *   check-only pass (Grams and CONV, no rotation) replaces a sweep that would rotate nothing.
 * - Then column norms (the singular values, scaled back), a rank kernel and its inverse (the
 *   descending permutation), U's columns gathered and normalized, V's gathered, and one Newton-Schulz
 *   step V (1.5 I - 0.5 VᵀV) through core's matmul, which brings V back to orthonormal to a few eps
 *   after float32 rotation parameters let it drift.
 * - On the QR path, when Rᵀ is well-conditioned (cond <= 2^16), X carries no V rows: V is made
 *   after the sweeps from the rotated columns, by a triangular solve and a product
 *   (jacobi-solve.ts, jacobiTriangularInJob), which halves the sweeps' update.
 * - Zero singular values: a real column that is or reaches (near) zero is refilled with deterministic
 *   noise of size 2^-40 |A| in its A part (V untouched) by the update kernel; the following steps
 *   orthogonalize it against the rest, so U comes out a full orthonormal set. The convergence measure
 *   counts a real zero column as unconverged (jacobi-inner.ts), so the iteration cannot stop before
 *   a refill is orthogonalized (a zero matrix, or any matrix with a single block pair). Singular
 *   values at that noise floor (below 2^-34 max|A|) are reported as exactly 0.
 * @module
 */
import type { JacobiOptions, JacobiStats, SVD } from './types.js';

export type { JacobiOptions, JacobiStats } from './types.js';
import { backend, type Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import * as K from './jacobi-kernels.js';
import { defaultTol, planFor, type Plan } from './jacobi-plan.js';
import { Sweeps } from './jacobi-sweeps.js';
import { differentiableSvd } from './grad.js';
import { jacobiQrInJob } from './jacobi-qr.js';
import { COND_SOLVE, mayBeWellConditioned, solveVInJob } from './jacobi-solve.js';

/** The factors of a thin SVD (the package's `SVD` type). */
type SvdResult = SVD;

/** Norm (in units of max|A|) under which a singular value is reported as 0: above the noise (~2^-41.8). */
const NULL_NORM = 2 ** -34;

/**
 * How the most recent `jacobiSvd` iteration went (updated when its job runs): full sweeps run,
 * whether the stopping rule was met (false when `maxSweeps` ran out first), and the convergence
 * measure of every pass (max |a_p·a_q| / (|a_p| |a_q|) over the pairs, before their rotations;
 * check-only passes included). For tests, benchmarks and curiosity.
 *
 * @example
 * ```ts
 * const { S } = jacobiSvd(a);
 * await S.data();
 * console.log(jacobiStats.sweeps, jacobiStats.converged, jacobiStats.history);
 * ```
 */
export const jacobiStats: JacobiStats = { sweeps: 0, converged: false, history: [], preconditioned: false, vectorsBy: 'rotations' };

function checkInput(a: Tensor): void {
  internal.checkMatrix('jacobiSvd', a);
  const [m, n] = a.shape;
  if (m === 0 || n === 0) throw new Error(`jacobiSvd: expects a non-empty matrix, got shape [${m},${n}]`);
  // Values on the host (uploaded data, wasm and cpu results) are checked here, with the index of the
  // first bad one; a device-resident input is checked by the job (max |a| read back).
  const bad = internal.firstNonFinite(a);
  if (bad) throw new Error(`jacobiSvd: input has a non-finite value (${bad.value}) at [${bad.index.join(', ')}] of shape [${m},${n}]`);
}

/**
 * Thin SVD of any m x n float32 matrix by one-sided Jacobi: A = U diag(S) Vt with U [m, k],
 * S [k] descending and non-negative, Vt [k, n], k = min(m, n). High relative accuracy on graded
 * matrices (columns scaled over many orders of magnitude), which QR-based SVDs lose in float32.
 * Every value is computed in gpu.js kernels; the iteration reads back one number a sweep (the
 * convergence measure) to know when to stop. A NaN or Infinity in an input whose values are on the
 * host throws at once; in a device-resident input it is found by the first kernel, and the results
 * reject with the same kind of Error (seen at `data()` or by a later op). Differentiable (the VJP of
 * `svd`, grad.ts: exact for distinct singular values). From min(m, n) = 128 on (`precondition`) the
 * sweeps run on Rᵀ of a blocked Householder QR of A with its columns sorted by norm (jacobi-qr.ts):
 * fewer sweeps, each over the shorter side only, with the same accuracy.
 *
 * @example
 * ```ts
 * const a = tensor([[3, 0], [4, 5]]);
 * const { U, S, Vt } = jacobiSvd(a);
 * await S.data(); // Float32Array [6.7082, 2.2361]
 * const viaQr = jacobiSvd(a, { precondition: 'qr' }); // the same factors through a QR
 * ```
 */
export function jacobiSvd(a: Tensor, opts: JacobiOptions = {}): SvdResult {
  checkInput(a);
  // Under a gradient the factors go through the SVD's VJP (grad.ts); its copies are skipped otherwise.
  if (internal.recording([a])) return differentiableSvd((x) => jacobiFactors(x, opts))(a);
  return jacobiFactors(a, opts);
}

/** The kernels of jacobiSvd, for an input already checked; no gradient of their own. */
function jacobiFactors(a: Tensor, opts: JacobiOptions): SvdResult {
  const [m0, n0] = a.shape;
  const k = Math.min(m0, n0);
  const qr = preconditioned(m0, n0, opts);
  // The sweeps run on the k x k Rᵀ when preconditioned (jacobi-qr.ts).
  const plan = qr ? jacobiPlan(k, k, opts) : jacobiPlan(m0, n0, opts);
  const vectors = opts.vectors ?? 'auto';
  if (vectors !== 'auto' && vectors !== 'rotations') throw new Error(`jacobiSvd: vectors must be 'auto' or 'rotations', got ${String(vectors)}`);
  // The QR path's plan without V's rows (jacobiTriangularInJob). V_X made from the rotated
  // columns is as good as their orthogonality: not for a tol looser than the default (the product's
  // columns would be off by about tol, and the residual with them, where accumulated rotations keep
  // it at eps).
  const fast = qr && vectors === 'auto' && plan.tol <= defaultTol(k) ? jacobiPlan(k, k, opts, false) : null;
  const rt = async (ctx: internal.JobContext, x: internal.Payload, n: number): Promise<JobSvd> =>
    fast && (await mayBeWellConditioned(ctx, x, n)) ? jacobiTriangularInJob(ctx, x, n, fast, plan, jacobiStats) : jacobiInJob(ctx, x, n, n, plan, jacobiStats);
  const [U, S, Vt] = internal.launchJob('jacobiSvd', [a], [[m0, k], [k], [k, n0]], async (ctx, [ap]) => {
    jacobiStats.preconditioned = qr;
    const f = qr ? await jacobiQrInJob(ctx, ap, m0, n0, rt) : await jacobiInJob(ctx, ap, m0, n0, plan, jacobiStats);
    return [f.U, f.S, f.Vt];
  });
  return { U, S, Vt };
}

/** The shorter side from which 'auto' preconditions by QR (see `preconditioned`). */
const QR_FROM = 128;

/** Whether jacobiSvd preconditions an m0 x n0 input by QR (the option, or 'auto''s rule). */
function preconditioned(m0: number, n0: number, opts: JacobiOptions): boolean {
  const p = opts.precondition ?? 'auto';
  if (p !== 'qr' && p !== 'none' && p !== 'auto') throw new Error(`jacobiSvd: precondition must be 'qr', 'none' or 'auto', got ${String(p)}`);
  if (p !== 'auto') return p === 'qr';
  // Measured on wasm (Gaussian, same process, alternating): 256² 0.90-1.06 s with QR against
  // 1.18-2.0 s without (8 sweeps instead of 10), 128² even (0.17-0.22 s against 0.17-0.46 s), and at
  // 768² and 3072 x 768 10 sweeps of an n x n Rᵀ instead of 13 and 10 of the longer matrix.
  return Math.min(m0, n0) >= QR_FROM;
}

/** Payloads of a thin SVD made inside a job: U `[m, k]`, S `[k]`, Vt `[k, n]`, row-major. */
export interface JobSvd {
  U: internal.Payload;
  S: internal.Payload;
  Vt: internal.Payload;
}

/**
 * The plan of a Jacobi SVD of an m0 x n0 matrix (checks the options; throws at once on bad ones).
 * `accumulate` false plans a work matrix without V's rows (the QR path's jacobiTriangularInJob).
 */
export function jacobiPlan(m0: number, n0: number, opts: JacobiOptions, accumulate = true): Plan {
  return planFor(Math.max(m0, n0), Math.min(m0, n0), opts, backend() === 'wasm', `[${m0},${n0}]`, accumulate);
}

/**
 * The whole Jacobi SVD of the m0 x n0 payload `ap` (planned by `jacobiPlan`) through a job's context (for jacobiSvd's own job,
 * and for iterations that need a small SVD between other kernels, as randomizedSvd's Rayleigh-Ritz
 * step). Records the iteration into `stats`. The caller frees the results.
 */
export async function jacobiInJob(ctx: internal.JobContext, ap: internal.Payload, m0: number, n0: number, plan: Plan, stats: JacobiStats): Promise<JobSvd> {
  stats.vectorsBy = 'rotations';
  const f = await sweptFactors(ctx, ap, m0, n0, plan, stats);
  const V = await ctx.run(K.VVECS, [f.n * f.k], [f.X, f.perm], [f.k, plan.b, plan.Q, plan.mp]);
  ctx.free(f.X);
  ctx.free(f.perm);
  const Vp = await polish(ctx, V, f.n, f.k, f.wide);
  return f.wide ? { U: Vp, S: f.S, Vt: f.Uw } : { U: f.Uw, S: f.S, Vt: Vp };
}

/**
 * The Jacobi SVD of a lower-triangular n x n payload `X` (the QR path's Rᵀ) with V_X made from the
 * rotated columns rather than accumulated (jacobi-solve.ts): `fast` is X's plan without V's rows
 * (`jacobiPlan(n, n, opts, false)`), `plan` the accumulating one. Where the singular values show
 * cond(X) above COND_SOLVE, or the sweeps stopped unconverged (at maxSweeps, their columns not
 * orthogonal to tol), V_X made so would lose accuracy, and the SVD runs again with `plan`
 * (`stats.vectorsBy` says which happened; `stats` then describes the second run). The caller frees
 * the results.
 */
async function jacobiTriangularInJob(ctx: internal.JobContext, X: internal.Payload, n: number, fast: Plan, plan: Plan, stats: JacobiStats): Promise<JobSvd> {
  const f = await sweptFactors(ctx, X, n, n, fast, stats);
  ctx.free(f.X);
  ctx.free(f.perm);
  const S = await ctx.read(f.S);
  if (stats.converged && S[n - 1] > 0 && S[0] <= COND_SOLVE * S[n - 1]) {
    const V = await solveVInJob(ctx, X, f.Uw, f.S, S[0], S[n - 1], n);
    stats.vectorsBy = 'solve';
    return { U: f.Uw, S: f.S, Vt: await polish(ctx, V, n, n, false) };
  }
  ctx.free(f.Uw);
  ctx.free(f.S);
  const g = await jacobiInJob(ctx, X, n, n, plan, stats);
  stats.vectorsBy = 'rotations-rerun';
  return g;
}

/** What the sweeps leave: the final work matrix X, the descending permutation, S and the work matrix's U. */
interface Swept {
  X: internal.Payload;
  perm: internal.Payload;
  S: internal.Payload;
  Uw: internal.Payload;
  n: number;
  k: number;
  wide: boolean;
}

/** The scale, the sweeps and the factors read from their columns (jacobiInJob's first part). */
async function sweptFactors(ctx: internal.JobContext, ap: internal.Payload, m0: number, n0: number, plan: Plan, stats: JacobiStats): Promise<Swept> {
  const wide = m0 < n0;
  const m = wide ? n0 : m0;
  const n = wide ? m0 : n0;
  const k = n;
  const sa0 = wide ? 1 : n0;
  const sa1 = wide ? n0 : 1;
  const { b, Np, mp, Q, QA } = plan;
  const cm = await ctx.run(K.COLMAX, [n], [ap], [m, sa0, sa1]);
  const mx = await ctx.run(K.MAX1, [1], [cm], [n]);
  ctx.free(cm);
  const scale = (await ctx.read(mx))[0];
  if (!(scale >= 0) || !Number.isFinite(scale)) throw new Error(`jacobiSvd: input has a non-finite value (NaN or Infinity) in shape [${m0},${n0}]`);
  const sweeps = new Sweeps(ctx, plan, await ctx.run(K.PACK, [plan.Mp * Np], [ap, mx], [m, n, sa0, sa1, mp, b, Q]));
  await sweeps.run(stats);
  const X = sweeps.x;
  const nrm = await ctx.run(K.NORMS, [Np], [X], [b, Q, QA, n]);
  const rank = await ctx.run(K.RANK, [Np], [nrm], [Np]);
  const perm = await ctx.run(K.PERM, [k], [rank], [Np]);
  const S = await ctx.run(K.SVALS, [k], [nrm, perm, mx], [NULL_NORM]);
  // U of the work matrix: [m, k]; for a wide input it is A's V, wanted as Vt = its transpose.
  const Uw = await ctx.run(K.UVECS, [m * k], [X, nrm, perm], [m, k, b, Q, wide ? 1 : 0]);
  for (const t of [mx, nrm, rank]) ctx.free(t);
  return { X, perm, S, Uw, n, k, wide };
}

/**
 * One Newton-Schulz step V (1.5 I - 0.5 VᵀV) of V `[n, k]` (freed here), through core's matmul: it
 * brings V back to orthonormal to a few eps after float32 rotation parameters (or the solve) let it
 * drift. Returns Vᵀ's polished form `[k, n]`, or V's `[n, k]` when `wide`.
 */
async function polish(ctx: internal.JobContext, V: internal.Payload, n: number, k: number, wide: boolean): Promise<internal.Payload> {
  const G = await internal.matmulInJob(ctx, V, V, { M: k, N: k, K: n, sa0: 1, sa1: k, sb0: k, sb1: 1 });
  const W = await ctx.run(K.NSW, [k * k], [G], [k]);
  // W is symmetric, so Vᵀ's polished form is W Vᵀ.
  const Vp = wide
    ? await internal.matmulInJob(ctx, V, W, { M: n, N: k, K: k, sa0: k, sa1: 1, sb0: k, sb1: 1 })
    : await internal.matmulInJob(ctx, W, V, { M: k, N: n, K: k, sa0: k, sa1: 1, sb0: 1, sb1: k });
  for (const t of [V, G, W]) ctx.free(t);
  return Vp;
}
