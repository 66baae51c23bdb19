/**
 * Randomized SVD (Halko, Martinsson and Tropp 2011) on core's kernels: subspace iteration with
 * Rayleigh-Ritz, run until a residual-based stopping rule says the leading triplets are accurate.
 * @module
 */
import { backend, random, tensor, tidy, transpose, type Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { jacobiInJob, jacobiPlan } from './jacobi.js';
import { MAX1 } from './jacobi-kernels.js';
import { orthonormalInJob } from './qr-blocked.js';
import type { JacobiStats, SVD } from './types.js';

type Payload = internal.Payload;
type Ctx = internal.JobContext;

/** Options of `randomizedSvd`. */
export interface RandomizedOptions {
  /** Number of singular triplets to return. */
  rank: number;
  /**
   * Extra basis columns beyond `rank`: the iteration converges at the rate σ_(rank+oversample+1) /
   * σ_rank, so more columns mean fewer, dearer iterations. Default max(10, rank) (10 with `powerIters`).
   */
  oversample?: number;
  /**
   * A fixed number of power iterations and no stopping rule (torch.svd_lowrank's `niter`): fast, but
   * only as accurate as the spectrum's decay allows (9-11% off on a Gaussian matrix with 2-4). When
   * absent, the iteration runs until `tol` is met.
   */
  powerIters?: number;
  /**
   * The accuracy asked for (default 1e-3): the estimated relative error of each of the top `rank`
   * singular values, and, when σ_rank stands at least 1% above σ_(rank+1) (so the subspace is
   * well defined), the estimated angle between the returned and the exact top-`rank` subspaces. See
   * `randomizedStats` for what the estimates are.
   */
  tol?: number;
  /** Most iterations before giving up on `tol` (default 64); `randomizedStats.converged` says which. */
  maxIters?: number;
  /** Key of the Gaussian test matrix (default `random.key(0)`, so results are reproducible). */
  key?: random.Key;
}

/** One convergence check of `randomizedSvd` (see `randomizedStats`). */
export interface RandomizedCheck {
  /** Iterations (multiplies by Aᵀ then A) done at the check. */
  iteration: number;
  /** Estimated largest relative error of the top-`rank` singular values. */
  sigma: number;
  /** Estimated angle of the top-`rank` subspaces; Infinity-free: 0 when not asked (not separated). */
  angle: number;
  /** Whether σ_rank was separated from σ_(rank+1) by at least 1% (then `angle` counts). */
  separated: boolean;
}

/** The shape of `randomizedStats`. */
export interface RandomizedStats {
  /** Iterations run. */
  iterations: number;
  /** Whether the stopping rule was met (false: `maxIters` ran out, or the estimates stopped improving). */
  converged: boolean;
  /** Whether the iteration ended because the estimates stopped improving (float32's floor) before `tol`. */
  stalled: boolean;
  /** Every check, in order. */
  checks: RandomizedCheck[];
}

/**
 * How the most recent converging `randomizedSvd` went (updated when its job runs). The estimates at
 * a check, from the Ritz triplets (σ̃_i, u_i, v_i) of the current basis, where Aᵀu_i = σ̃_i v_i
 * holds by construction and r_i = ‖A v_i − σ̃_i u_i‖ is computed:
 * - sigma = max_(i<=rank) r_i² / (σ̃_i (σ̃_i − σ̃_l)), the quadratic (Kato-Temple) bound on the relative
 *   error of σ̃_i, with the gap taken to the basis's last Ritz value σ̃_l;
 * - angle = ‖R‖ / (σ̃_rank − σ̃_l) · sqrt(1 + ‖R‖² / (σ̃_rank − σ̃_(rank+1))²) with ‖R‖² = Σ_(i<=rank) r_i²:
 *   the basis's distance from the exact subspace, whose residuals lie below the basis's last Ritz
 *   value, times Saad's factor for the Ritz vectors' split inside the basis. Measured in float64
 *   (768², rank 16, l 32; k^-0.6, k^-1, clustered spectra) it stayed at least 1.5x the true angle
 *   from the third check on, where Wedin's ‖R‖ / (σ̃_rank − σ̃_(rank+1)) was 10-36x above it.
 * The iteration stops when sigma <= tol and (not separated or angle <= tol); or, not converged, when
 * a check improves by less than 10% on the latest check at least 3 multiplies earlier (float32
 * rounding reached), or at `maxIters`.
 *
 * @example
 * ```ts
 * const { S } = randomizedSvd(W, { rank: 16 });
 * await S.data();
 * console.log(randomizedStats.iterations, randomizedStats.converged);
 * ```
 */
export const randomizedStats: RandomizedStats = { iterations: 0, converged: false, stalled: false, checks: [] };

/** A subspace with σ_rank at least this much (relative) above σ_(rank+1) must also meet tol in angle. */
const SEPARATED = 0.01;
/**
 * A check whose worse estimate is not below STALL times that of the latest check at least
 * STALL_SPAN multiplies earlier ends the iteration (stalled: float32's floor). Over a span, not from
 * the previous check: one plain multiply gains only (σ_(l+1) / σ_rank)² on a flat spectrum, which
 * with the estimates' own noise can look like no gain (measured: a Gaussian 3072 x 768 'stalled'
 * between two checks one multiply apart, 2.5x above tol).
 */
const STALL = 0.9;
const STALL_SPAN = 3;

/** The stall rule (see STALL) for a check at iteration t with worse estimate `worst`. */
function stalled(seen: readonly { iteration: number; worst: number }[], t: number, worst: number): boolean {
  for (let i = seen.length - 1; i >= 0; i--) if (t - seen[i].iteration >= STALL_SPAN) return worst > STALL * seen[i].worst;
  return false;
}

/** Most iterations between two checks: a check costs a small SVD, a wrong guess as many iterations. */
const MAX_STRIDE = 8;
/**
 * The next check is placed where the measured rate brings the worse estimate to AIM tol, not to tol:
 * the rate drifts between checks, and a check that falls just short costs a QR of the longer side
 * and a Rayleigh-Ritz step (its small Jacobi SVD included), several multiplies' worth. Measured on a
 * Gaussian 3072 x 768 (rank 16): aimed at tol, checks at 2, 10, 17 (1.0x tol: failed) and 18; aimed
 * at half, at 2, 10 and 18.
 */
const AIM = 0.5;
/**
 * Most spread the filter may put between the basis's columns before an orthonormalization: the
 * weakest block direction (σ̃_l) ends up 1/RANGE of the strongest, kept by float32 to about
 * RANGE·eps = 6e-3 relative, which only the oversampled directions come near (see Filter). Measured
 * at 768 x 768 (k^-0.6, rank 16): 1e4 gives the filter degree 1, 1e5 and 1e6 degree 2, with the same
 * iterations and accuracy and half the orthonormalizations.
 */
const RANGE = 1e5;
/** Most multiplies by A Aᵀ in one filter, between two orthonormalizations. */
const MAX_DEGREE = 12;

/** ‖A v_i − σ̃_i u_i‖ per column i from YV = A V and QU = U (both [m, l]) and S [l]. Scalars: m, l. */
const RESIDUALS: internal.KernelSource = {
  key: 'rsvd:residuals',
  arrays: ['YV', 'QU', 'S'],
  scalars: ['m', 'l'],
  body: `const i = this.thread.x;
let s0 = S[0];
if (s0 == 0) { s0 = 1; }
let acc = 0;
for (let r = 0; r < m; r++) { const d = (YV[r * l + i] - QU[r * l + i] * S[i]) / s0; acc += d * d; }
return Math.sqrt(acc) * s0;`,
};

/** One step of the filter's recurrence: alpha·HY − ac·Y − beta·P. Scalars: alpha, ac, beta (floats). */
const CHEB: internal.KernelSource = {
  key: 'rsvd:cheb',
  arrays: ['HY', 'Y', 'P'],
  scalars: ['alpha', 'ac', 'beta'],
  floats: ['alpha', 'ac', 'beta'],
  body: 'const i = this.thread.x;\nreturn alpha * HY[i] - ac * Y[i] - beta * P[i];',
};

/**
 * The Chebyshev filter between two checks (Zhou and Saad's Chebyshev-filtered subspace iteration,
 * mirrored to keep the largest values): p_d(H) X with H = A Aᵀ and p_d(x) = T_d(L(x)) / T_d(L(x0)),
 * where L maps [0, cut] onto [-1, 1]. With cut = σ̃_l² (the block's smallest Ritz value) and x0 =
 * σ̃_1², directions below the block are kept within 1 / T_d(L(x0)) while σ_i outside grows as
 * T_d(L(σ_i²)): per multiply, σ_rank gains on σ_(l+1) by about L + sqrt(L² - 1) at L = L(σ_rank²),
 * where plain powers of H gain (σ_rank / σ_(l+1))². On a flat top (a Gaussian matrix, whose
 * σ_rank and σ_(l+1) differ by a few %) that is several times fewer multiplies. The degree is the
 * largest with T_d(L(x0)) <= RANGE (the block's weakest direction 1/RANGE of its strongest).
 * `coefficients(i)` gives the recurrence Y_(i+1) = alpha (H Y_i − c Y_i) − beta Y_(i−1), normalized so
 * that p_d(x0) = 1 (the basis stays near 1: no overflow).
 */
class Filter {
  readonly degree: number;
  private readonly c: number;
  private readonly e: number;
  private readonly rho: number[];

  private readonly sk2: number;

  constructor(S: Float32Array, l: number, k: number) {
    this.sk2 = S[k - 1] * S[k - 1];
    const cut = S[l - 1] * S[l - 1];
    const x0 = S[0] * S[0];
    this.c = cut / 2;
    this.e = cut / 2;
    const L0 = cut > 0 && x0 > cut * (1 + 1e-6) ? (x0 - this.c) / this.e : Infinity;
    // T_i(L0) by its recurrence; with no usable interval (cut 0, or a flat block) plain powers.
    this.rho = [1, L0];
    while (this.rho.length <= MAX_DEGREE && Number.isFinite(L0)) {
      const n = this.rho.length;
      const next = 2 * L0 * this.rho[n - 1] - this.rho[n - 2];
      if (next > RANGE) break;
      this.rho.push(next);
    }
    this.degree = Number.isFinite(L0) ? Math.max(1, this.rho.length - 1) : 0;
  }

  /**
   * The factor by which the angle of the top-rank Ritz subspace should shrink per multiply: 1 / (L +
   * sqrt(L² − 1)) at L = L(σ̃_k²), Chebyshev's growth there against at most 1 below the cut; 1 when
   * there is no filter.
   */
  predictedRate(): number {
    if (!this.degree) return 1;
    const L = (this.sk2 - this.c) / this.e;
    return L > 1 ? 1 / (L + Math.sqrt(L * L - 1)) : 1;
  }

  /** The recurrence's scalars for Y_(i+1) from Y_i and Y_(i−1) (i from 0; Y_(−1) unused at i = 0). */
  coefficients(i: number): { alpha: number; ac: number; beta: number } {
    const { c, e, rho } = this;
    const alpha = i === 0 ? 1 / (e * rho[1]) : (2 * rho[i]) / (rho[i + 1] * e);
    const beta = i === 0 ? 0 : rho[i - 1] / rho[i + 1];
    return { alpha, ac: alpha * c, beta };
  }
}

/** The first n values of a payload, times the scale s[0]. */
const HEAD: internal.KernelSource = { key: 'rsvd:head', arrays: ['x', 's'], scalars: [], body: 'return x[this.thread.x] * s[0];' };

/**
 * Partial maxima of |a| over a flat array of F C + R values: cell c takes a[c], a[c + C], a[c + 2C],
 * ... (C the cell count, F full rounds and a last one over R cells), so the 4 cells of a wasm SIMD
 * quad read 4 consecutive values at a time; -1 where a value is NaN or infinite (a test on the raw
 * value, kept out of the max, whose NaN handling WGSL leaves to the implementation).
 * jacobi-kernels.ts's MAX1 reduces the partials. Scalars: F, C, R.
 */
const ABSMAX: internal.KernelSource = {
  key: 'rsvd:absmax',
  arrays: ['a'],
  scalars: ['F', 'C', 'R'],
  threaded: true,
  body: `let mx = 0.0;
let bad = 0.0;
for (let t = 0; t < F; t++) {
  const raw = a[t * C + this.thread.x];
  bad = raw <= 3.4028234663852886e38 && raw >= -3.4028234663852886e38 ? bad : 1.0;
  const v = Math.abs(raw);
  mx = v > mx ? v : mx;
}
if (this.thread.x < R) {
  const raw = a[F * C + this.thread.x];
  bad = raw <= 3.4028234663852886e38 && raw >= -3.4028234663852886e38 ? bad : 1.0;
  const v = Math.abs(raw);
  mx = v > mx ? v : mx;
}
return bad > 0.0 ? -1.0 : mx;`,
};

/** Partial maxima ABSMAX computes: enough cells for wasm's two worker threads (from 4096). */
const ABSMAX_CELLS = 4096;

/** a times the float scalar f (a power of two: exact). Scalars: f. */
const SCALE: internal.KernelSource = { key: 'rsvd:scale', arrays: ['a'], scalars: ['f'], floats: ['f'], body: 'return a[this.thread.x] * f;' };

/**
 * Binary exponents of max|A| within which A is iterated as it is: products by A Aᵀ then stay within
 * float32's range (σ₁² <= m n max|A|² <= 2^48 2^(2 SAFE_EXP) for the sizes accepted) and far from its
 * subnormals. Outside, A is scaled by a power of two (exact), and S scaled back.
 */
const SAFE_EXP = 16;

/**
 * The scale randomizedSvd iterates A at, from max|A| read back in its job: 1 for a max|A| within
 * 2^±SAFE_EXP (and for a zero matrix), else the power of two nearest it (between 2^-126 and 2^126,
 * so that its inverse is a normal float32, which no backend flushes to zero). Throws on a non-finite input (ABSMAX's flag).
 */
function iterationScale(mx: number, shape: string): number {
  if (!(mx >= 0) || !Number.isFinite(mx)) throw new Error(`randomizedSvd: input of shape ${shape} has a non-finite value (NaN or Infinity)`);
  const e = mx > 0 ? Math.round(Math.log2(mx)) : 0;
  return Math.abs(e) <= SAFE_EXP ? 1 : 2 ** Math.min(126, Math.max(-126, e));
}

/**
 * Rank-`rank` truncated SVD by randomized subspace iteration: a Gaussian test matrix from `key`
 * spans a basis of rank + oversample columns, which multiplies by A Aᵀ refine. Every few multiplies
 * a check: Z = orth(Aᵀ Q), then a Rayleigh-Ritz step (a small Jacobi SVD of Qᵀ A Z) gives the Ritz
 * triplets and their residuals, read back to decide whether to stop (see `randomizedStats` for the
 * rule and its estimates; the next check is placed where the measured rate predicts tol / 2). Between
 * checks the multiplies run as a Chebyshev filter built from the last check's Ritz values (see
 * Filter: on a flat spectrum half the multiplies of plain powers, measured), and the basis is
 * orthonormalized by Householder QR once the filter's degree is spent (in float32 rounding would
 * otherwise swamp the weaker directions). An A of huge or tiny values (max|A| past 2^±16) is
 * iterated scaled by a power of two, S scaled back; a NaN or Infinity in A is refused, also when A is
 * still being computed on a device (the job checks max|A| first). With `powerIters`, a fixed
 * number of plain iterations and no checks. Everything runs in core's kernels inside one job, so
 * the call returns at once. Not available on webgl (its Gaussian sketch needs `random.normal`). Not
 * differentiable: under a gradient it throws, pointing to `svd(a, { method: 'jacobi', rank })`.
 *
 * @example
 * ```ts
 * const { U, S, Vt } = randomizedSvd(W, { rank: 16, key: random.key(1) });
 * U.shape; // [m, 16]
 * ```
 */
export function randomizedSvd(a: Tensor, opts: RandomizedOptions): SVD {
  internal.checkMatrix('randomizedSvd', a);
  // Its factors depend on the random sketch: the exact gradient of the top-k SVD needs the other
  // singular values too (the truncated formula is only right for matrices of rank <= k), so the
  // full SVD's VJP is the honest way, and svd({ method: 'jacobi', rank }) gives it.
  if (internal.recording([a])) {
    throw new Error(
      `randomizedSvd: no gradient: the input of shape [${a.shape.join(',')}] is being differentiated, but the randomized SVD records no VJP; use svd(a, { method: 'jacobi', rank: ${opts?.rank} }) (exact, differentiable)`,
    );
  }
  internal.checkFiniteValues('randomizedSvd', a);
  const [m, n] = a.shape;
  const p = Math.min(m, n);
  const k = opts.rank;
  internal.checkInteger('randomizedSvd', 'rank', k, { min: 1, max: p, note: `for shape [${m},${n}]` });
  const q = opts.powerIters;
  if (q !== undefined) internal.checkInteger('randomizedSvd', 'powerIters', q);
  const oversample = opts.oversample ?? (q === undefined ? Math.max(10, k) : 10);
  internal.checkInteger('randomizedSvd', 'oversample', oversample);
  const tol = opts.tol ?? 1e-3;
  if (!(tol > 0 && tol < 1)) throw new Error(`randomizedSvd: tol must be in (0, 1), got ${opts.tol}`);
  const maxIters = opts.maxIters ?? 64;
  internal.checkInteger('randomizedSvd', 'maxIters', maxIters, { min: 1 });
  const l = Math.min(k + oversample, p);
  const plan = jacobiPlan(l, l, {});
  return tidy(() => {
    // The basis lives on the shorter side (a tall A is iterated as Aᵀ, the factors swapped back):
    // the orthonormalizations between checks, Householder QRs of its columns, are then of the
    // smaller matrix (measured at 3072 x 768: 6 ms a QR of 768 x 32 against 25 ms of 3072 x 32).
    const swap = m > n;
    const sketchShape = [swap ? m : n, l];
    // Remembered only where sketches are host arrays; elsewhere (webgl refuses random.normal) drawn.
    const remember = opts.key === undefined && (backend() === 'wasm' || backend() === 'cpu');
    const sketchKey = sketchShape.join('x');
    const cached = remember ? sketches.get(sketchKey) : undefined;
    const omega = cached ? tensor(cached, sketchShape) : random.normal(opts.key ?? random.key(0), sketchShape);
    // Aᵀ as its own row-major copy: the products read B row-major (one vector load on wasm), and a
    // transposed A operand is read with a stride of its row length. A tensor, so that wasm's kernels
    // keep it in their memory from one product to the next (core's sealed arrays), as they keep A.
    const at = transpose(a);
    const [U, S, Vt] = internal.launchJob('randomizedSvd', [a, at, omega], [[m, k], [k], [k, n]], async (ctx, [A0, At0, Om]) => {
      if (remember && !cached && Om instanceof Float32Array && Om.length === sketchShape[0] * l) rememberSketch(sketchKey, Om);
      // Products by A Aᵀ square A's scale, which would overflow (or underflow) float32 on matrices
      // of huge (or tiny) values: those are iterated scaled by a power of two (exact), S scaled back
      // at the end. Most matrices need no scaling, and no copy (measured at 3072 x 768 on wasm: the
      // division and the separate abs and max had cost ~7 ms of a ~140 ms call).
      const len = m * n;
      const cells = Math.min(ABSMAX_CELLS, len);
      // The loop's bounds baked in as literals (core's bakeScalars): wasm then runs the index math
      // in integers and reads the quad's 4 values with one vector load.
      const part = await ctx.run(internal.bakeScalars(ABSMAX, { F: Math.floor(len / cells), C: cells, R: len % cells }), [cells], [A0], []);
      const mxp = await ctx.run(MAX1, [1], [part], [cells]);
      ctx.free(part);
      const mx = (await ctx.read(mxp))[0];
      ctx.free(mxp);
      const scale = iterationScale(mx, `[${m},${n}]`);
      const A = scale === 1 ? A0 : await ctx.run(SCALE, [len], [A0], [1 / scale]);
      const At = scale === 1 ? At0 : await ctx.run(SCALE, [len], [At0], [1 / scale]);
      const it = swap ? new Iteration(ctx, At, A, n, m, l, k, true) : new Iteration(ctx, A, At, m, n, l, k, false);
      try {
        return await it.run(Om, new Float32Array([scale]), { q, tol, maxIters, plan });
      } finally {
        if (scale !== 1) for (const x of [A, At]) ctx.free(x);
      }
    });
    return { U, S, Vt };
  });
}

/**
 * The default sketches (key 0) by shape, as host arrays: every matrix of one shape gets the same Ω,
 * so adapting a model's layers of one shape draws it once. Drawing it (Threefry normals by a
 * fixed-point inverse CDF) took ~7 ms for a [3072, 32] sketch on wasm, about 4% of that
 * randomized SVD. Kept only where the sketch is a host array (wasm, cpu); at most SKETCHES_MAX.
 */
const sketches = new Map<string, Float32Array>();
const SKETCHES_MAX = 8;

function rememberSketch(shape: string, om: Float32Array): void {
  if (sketches.size >= SKETCHES_MAX) sketches.delete(sketches.keys().next().value!);
  // A copy: the job's payload goes back to core's pool of recycled arrays.
  sketches.set(shape, om.slice());
}

/** The state of one randomized SVD inside its job (payloads; every intermediate freed as it goes). */
class Iteration {
  constructor(
    private readonly ctx: Ctx,
    private readonly A: Payload,
    private readonly At: Payload,
    private readonly m: number,
    private readonly n: number,
    private readonly l: number,
    private readonly k: number,
    /** Whether A here is the caller's Aᵀ (so the factors come out swapped and transposed). */
    private readonly swapped: boolean,
  ) {}

  /** A @ X for X [n, l]. */
  private timesA(X: Payload): Promise<Payload> {
    const { m, n, l } = this;
    return internal.matmulInJob(this.ctx, this.A, X, { M: m, N: l, K: n, sa0: n, sa1: 1, sb0: l, sb1: 1 });
  }

  /** Aᵀ @ X for X [m, l]. */
  private timesAt(X: Payload): Promise<Payload> {
    const { m, n, l } = this;
    return internal.matmulInJob(this.ctx, this.At, X, { M: n, N: l, K: m, sa0: m, sa1: 1, sb0: l, sb1: 1 });
  }

  async run(Om: Payload, Mx: Payload, o: { q: number | undefined; tol: number; maxIters: number; plan: ReturnType<typeof jacobiPlan> }): Promise<Payload[]> {
    const { ctx, m, n, l } = this;
    const stats: RandomizedStats = { iterations: 0, converged: false, stalled: false, checks: [] };
    const fixed = o.q !== undefined;
    const last = fixed ? o.q! + 1 : o.maxIters;
    const Y0 = await this.timesA(Om);
    let Q = await orthonormalInJob(ctx, Y0, m, l);
    ctx.free(Y0);
    let nextCheck = fixed ? last : Math.min(2, last);
    // Every check's worse estimate (over tol), for the next check's place and the stall rule.
    const seen: { iteration: number; worst: number }[] = [];
    // Set from each check's Ritz values (none before the first: a plain multiply).
    let filter: Filter | undefined;
    for (let t = 1; ; t++) {
      const checking = t === nextCheck || t === last;
      if (!checking) {
        // Up to the filter's degree of multiplies by A Aᵀ, stopping short of the next check.
        const d = Math.max(1, Math.min(filter?.degree || 1, nextCheck - t, last - t));
        let Y = Q;
        let P = Q;
        for (let i = 0; i < d; i++) {
          const W = await this.timesAt(Y);
          const HY = await this.timesA(W);
          ctx.free(W);
          let next = HY;
          if (filter?.degree) {
            const { alpha, ac, beta } = filter.coefficients(i);
            next = await ctx.run(CHEB, [m * l], [HY, Y, P], [alpha, ac, beta]);
            ctx.free(HY);
          }
          // Y_(i−1) is no longer needed (the loop's input Q is freed after it).
          if (P !== Q) ctx.free(P);
          P = Y;
          Y = next;
        }
        if (P !== Q) ctx.free(P);
        ctx.free(Q);
        // The basis is orthonormal again (and exactly so before a check: the Ritz step assumes it).
        Q = await orthonormalInJob(ctx, Y, m, l);
        ctx.free(Y);
        stats.iterations = t = t + d - 1;
        continue;
      }
      const W = await this.timesAt(Q);
      stats.iterations = t;
      const Z = await orthonormalInJob(ctx, W, n, l);
      ctx.free(W);
      const Y = await this.timesA(Z);
      const rr = await this.rayleighRitz(Q, Y, o.plan);
      let stop = t === last;
      if (!fixed) {
        const c = estimate(rr.sv, rr.res, this.k, l, t);
        stats.checks.push(c);
        const worst = Math.max(c.sigma, c.separated ? c.angle : 0) / o.tol;
        if (worst <= 1) {
          stats.converged = true;
          stop = true;
        } else if (stalled(seen, t, worst)) {
          stats.stalled = true;
          stop = true;
        } else {
          // Place the next check where the rate measured since the previous one reaches AIM tol;
          // after the first, where half the filter's predicted gain per multiply would (a check costs
          // a few multiplies: a guess that falls short costs one more, MAX_STRIDE bounds one too long).
          filter = new Filter(rr.sv, l, this.k);
          const prev = seen.at(-1);
          let rate = prev ? Math.pow(worst / prev.worst, 1 / (t - prev.iteration)) : Math.sqrt(filter.predictedRate());
          if (!(rate < 1)) rate = 0.5;
          const stride = Math.ceil(Math.log(AIM / worst) / Math.log(rate));
          nextCheck = t + Math.max(1, Math.min(MAX_STRIDE, stride));
          seen.push({ iteration: t, worst });
        }
      }
      if (stop) {
        const out = await this.factors(Q, Z, rr, Mx);
        for (const x of [Q, Z, Y, rr.Us, rr.S, rr.Vt, rr.QU, rr.YV]) ctx.free(x);
        if (!fixed) Object.assign(randomizedStats, stats);
        return out;
      }
      for (const x of [rr.Us, rr.S, rr.Vt, rr.QU, Z, Q, Y]) ctx.free(x);
      // Y Vs spans what Y spans, with its columns along the Ritz vectors (A v_i = σ̃_i u_i + r_i) in
      // order of σ̃: the QR keeps that order, so the next check's small matrix C starts nearly
      // diagonal and its Jacobi SVD takes fewer sweeps (measured at 768², k^-0.6: 5,4,4 -> 5,3,2).
      Q = await orthonormalInJob(ctx, rr.YV, m, l);
      ctx.free(rr.YV);
    }
  }

  /**
   * The Ritz triplets of the basis pair (Q, Z), Y = A Z: B = Qᵀ A = C Zᵀ with C = Qᵀ A Z = Qᵀ Y (Z
   * spans Aᵀ Q's columns), so C's SVD Us S Vsᵀ gives u = Q Us, v = Z Vs; and the residuals
   * r_i = ‖A v_i − σ̃_i u_i‖ = ‖(Y Vs − Q Us S)_i‖, read back with S.
   */
  private async rayleighRitz(Q: Payload, Y: Payload, plan: ReturnType<typeof jacobiPlan>) {
    const { ctx, m, l } = this;
    const C = await internal.matmulInJob(ctx, Q, Y, { M: l, N: l, K: m, sa0: 1, sa1: l, sb0: l, sb1: 1 });
    const small = await jacobiInJob(ctx, C, l, l, plan, scratchStats);
    ctx.free(C);
    const YV = await internal.matmulInJob(ctx, Y, small.Vt, { M: m, N: l, K: l, sa0: l, sa1: 1, sb0: 1, sb1: l });
    const QU = await internal.matmulInJob(ctx, Q, small.U, { M: m, N: l, K: l, sa0: l, sa1: 1, sb0: l, sb1: 1 });
    const r = await ctx.run(RESIDUALS, [l], [YV, QU, small.S], [m, l]);
    const S = await ctx.read(small.S);
    const res = await ctx.read(r);
    ctx.free(r);
    return { Us: small.U, S: small.S, Vt: small.Vt, sv: S, res, YV, QU };
  }

  /** The caller's [U, S, Vt]: U = Q Us[:, :k], S[:k] scaled back by max|A|, Vt = Vsᵀ[:k] Zᵀ from a Rayleigh-Ritz step (swapped back for a transposed A). */
  private async factors(Q: Payload, Z: Payload, rr: { Us: Payload; S: Payload; Vt: Payload }, Mx: Payload): Promise<Payload[]> {
    const { ctx, m, n, l, k } = this;
    const S = await ctx.run(HEAD, [k], [rr.S, Mx], []);
    if (this.swapped) {
      // This A is the caller's Aᵀ = (Q Us) S (Z Vs)ᵀ: the caller's U is Z Vs[:, :k], its Vt (Q Us[:, :k])ᵀ.
      const U = await internal.matmulInJob(ctx, Z, rr.Vt, { M: n, N: k, K: l, sa0: l, sa1: 1, sb0: 1, sb1: l });
      const Vt = await internal.matmulInJob(ctx, rr.Us, Q, { M: k, N: m, K: l, sa0: 1, sa1: l, sb0: 1, sb1: l });
      return [U, S, Vt];
    }
    const U = await internal.matmulInJob(ctx, Q, rr.Us, { M: m, N: k, K: l, sa0: l, sa1: 1, sb0: l, sb1: 1 });
    const Vt = await internal.matmulInJob(ctx, rr.Vt, Z, { M: k, N: n, K: l, sa0: l, sa1: 1, sb0: 1, sb1: l });
    return [U, S, Vt];
  }
}

/** The stopping rule's estimates at one check (see `randomizedStats`). */
function estimate(S: Float32Array, res: Float32Array, k: number, l: number, iteration: number): RandomizedCheck {
  const top = S[0];
  if (!(top > 0)) return { iteration, sigma: 0, angle: 0, separated: false };
  let sigma = 0;
  let sq = 0;
  const edge = l > k ? S[l - 1] : 0;
  for (let i = 0; i < k; i++) {
    const gap = Math.max(S[i] - edge, 2 ** -23 * top);
    const si = Math.max(S[i], 2 ** -23 * top);
    sigma = Math.max(sigma, (res[i] * res[i]) / (si * gap));
    sq += res[i] * res[i];
  }
  const next = l > k ? S[k] : 0;
  const separated = S[k - 1] - next >= SEPARATED * S[k - 1];
  // The residuals lie outside the basis, where A's values are below σ̃_l once the basis holds the
  // top l directions: the gap that the subspace's distance from the exact one answers to is
  // σ̃_rank − σ̃_l (as for sigma), and the Ritz step's split inside the basis adds the factor
  // sqrt(1 + (‖R‖ / (σ̃_rank − σ̃_(rank+1)))²) (Saad's bound for Rayleigh-Ritz vectors). Wedin's
  // ‖R‖ / (σ̃_rank − σ̃_(rank+1)) alone was 10-36x the true angle on slowly decaying spectra.
  const rk = Math.sqrt(sq);
  const split = rk / Math.max(S[k - 1] - next, 2 ** -23 * top);
  const angle = separated ? (rk / Math.max(S[k - 1] - edge, 2 ** -23 * top)) * Math.sqrt(1 + split * split) : 0;
  return { iteration, sigma, angle, separated };
}

/** The small SVDs' iteration record (not the public jacobiStats, which tells of jacobiSvd calls). */
const scratchStats: JacobiStats = { sweeps: 0, converged: false, history: [] };
