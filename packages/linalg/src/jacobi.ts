/**
 * One-sided (Hestenes) Jacobi SVD on gpu.js kernels, by blocks.
 *
 * Design, in order of what runs (kernels in jacobi-kernels.ts):
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
 *   (one number) and the sweeps stop once it is at most `tol`, so the API stays synchronous (the
 *   results arrive when the job is done) while the work adapts to the matrix. Near the end, a
 *   check-only pass (Grams and CONV, no rotation) replaces a sweep that would rotate nothing.
 * - Then column norms (the singular values, scaled back), a rank kernel and its inverse (the
 *   descending permutation), U's columns gathered and normalized, V's gathered, and one Newton-Schulz
 *   step V (1.5 I - 0.5 VᵀV) through core's matmul, which brings V back to orthonormal to a few eps
 *   after float32 rotation parameters let it drift.
 * - Zero singular values: a real column that reaches (near) zero is refilled with deterministic noise
 *   of size 2^-40 |A| in its A part (V untouched) by the update kernel; the following steps
 *   orthogonalize it against the rest, so U comes out a full orthonormal set. Singular values at that
 *   noise floor (below 2^-34 max|A|) are reported as exactly 0.
 * @module
 */
import type { SVD } from './types.js';
import { Tensor, backend, matmul } from '@sorsajs/core';
import { internal } from '@sorsajs/core';
import * as K from './jacobi-kernels.js';
import * as I from './jacobi-inner.js';

/** Options of `jacobiSvd`. */
export interface JacobiOptions {
  /**
   * Convergence threshold: sweeps stop once no pair of columns has |a_p·a_q| > tol |a_p| |a_q|, and
   * pairs within it are not rotated. Default sqrt(m) * 2^-23 (m the longer side).
   */
  tol?: number;
  /** Most sweeps run when the threshold is not reached first. Default 40. */
  maxSweeps?: number;
  /** Columns per block (a multiple of 4). Default: 16, or less for narrow matrices. */
  blockSize?: number;
}

/** The factors of a thin SVD (the package's `SVD` type). */
type SvdResult = SVD;

const EPS32 = 2 ** -23;
/** LAPACK's bound for the t = 1 / (2 theta) branch: 1 / sqrt(unit roundoff). */
const BIG_THETA = 4096;
/** Squared norm (in units of max|A|) under which a column counts as zero and gets noise. */
const ZERO_SQ = 2 ** -100;
/** Norm (in units of max|A|) under which a singular value is reported as 0: above the noise (~2^-41.8). */
const NULL_NORM = 2 ** -34;
/** See the stopping rule in jacobiSvd: a full sweep whose pairs were all within STALL tol ends the iteration. */
const STALL = 4;
/** Default cap on sweeps; float32 Jacobi needs ~10-14 on random matrices, up to ~24 on geometric spectra (NOTES.md). */
const MAX_SWEEPS = 40;

/**
 * Whether any rotation in I.IPARAMS's result turns: its betas (the second half) are exactly 0 for
 * pairs left alone. Reading the host array decides what to launch (control flow).
 */
function rotates(RP: Float32Array): boolean {
  for (let i = RP.length / 2; i < RP.length; i++) if (RP[i] !== 0) return true;
  return false;
}

/**
 * The block size for n columns: the smallest multiple of 4 holding half of them up to n = 32 (one
 * block pair), 8 up to 64 (3 or 4 pairs: at 16 there would be 2, and the inner kernels' SIMD quads
 * of 4 pairs would run half empty; measured at n = 64: 24-25 ms against 43-45), 16 above.
 */
function blockFor(n: number): number {
  if (n <= 32) return 4 * Math.ceil(n / 8);
  return n <= 64 ? 8 : 16;
}

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
export const jacobiStats: JacobiStats = { sweeps: 0, converged: false, history: [] };

/** The shape of `jacobiStats`. */
export interface JacobiStats {
  /** Full sweeps run (check-only passes not counted). */
  sweeps: number;
  /** Whether the stopping rule was met before `maxSweeps` ran out. */
  converged: boolean;
  /** The convergence measure of every pass, in order (check-only passes included). */
  history: number[];
}

function checkInput(a: Tensor): void {
  if (!(a instanceof Tensor)) throw new Error(`jacobiSvd: expects a Tensor, got ${a === null ? 'null' : typeof a}`);
  if (a.isDisposed) throw new Error(`jacobiSvd: tensor of shape [${a.shape.join(',')}] was disposed`);
  if (a.dtype !== 'float32') throw new Error(`jacobiSvd: expects a float32 tensor, got ${a.dtype}`);
  if (a.rank !== 2) throw new Error(`jacobiSvd: expects a matrix (rank 2), got shape [${a.shape.join(',')}]`);
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
 * reject with the same kind of Error (seen at `data()` or by a later op).
 *
 * @example
 * ```ts
 * const a = tensor([[3, 0], [4, 5]]);
 * const { U, S, Vt } = jacobiSvd(a);
 * await S.data(); // Float32Array [6.7082, 2.2361]
 * ```
 */
export function jacobiSvd(a: Tensor, opts: JacobiOptions = {}): SvdResult {
  checkInput(a);
  const [m0, n0] = a.shape;
  const wide = m0 < n0;
  const m = wide ? n0 : m0;
  const n = wide ? m0 : n0;
  const k = n;
  const sa0 = wide ? 1 : n0;
  const sa1 = wide ? n0 : 1;
  const b = opts.blockSize ?? blockFor(n);
  if (!Number.isInteger(b) || b < 4 || b % 4 !== 0) throw new Error(`jacobiSvd: blockSize must be a positive multiple of 4, got ${b}`);
  const w = 2 * b;
  const P = Math.ceil(n / w);
  // The inner kernels run 4 pairs per SIMD quad (jacobi-inner.ts): pairs padded to a multiple of 4,
  // except 1 or 2 pairs, which run unpadded (gpu.js then runs the cells one by one, no lanes idle).
  const Pp = P <= 2 ? P : 4 * Math.ceil(P / 4);
  const nb = 2 * P;
  const Np = nb * b;
  const mp = 4 * Math.ceil(m / 4);
  const Mp = mp + Np;
  const Q = Mp / 4;
  const QA = mp / 4;
  if (Mp * Np >= 2 ** 24) throw new Error(`jacobiSvd: a [${m0},${n0}] matrix needs a ${Mp} x ${Np} work matrix, over 2^24 elements (kernels index in float32)`);
  const maxSweeps = opts.maxSweeps ?? MAX_SWEEPS;
  if (!Number.isInteger(maxSweeps) || maxSweeps < 0) throw new Error(`jacobiSvd: maxSweeps must be a non-negative integer, got ${maxSweeps}`);
  const tol = opts.tol ?? Math.sqrt(m) * EPS32;
  if (!(tol > 0)) throw new Error(`jacobiSvd: tol must be positive, got ${tol}`);
  const amp = 2 ** -40 / Math.sqrt(m);
  const tiled = backend() === 'wasm';
  // Row chunks of the tiled Gram: enough cells (8192) for gpu.js to split it over two worker threads.
  const chunks = tiled ? Math.max(1, Math.min(QA, Math.ceil(8192 / (w * w * P)))) : 1;
  const QC = Math.ceil(QA / chunks);
  // Planning tables (not compute): the block move, the inner move, and which original block sits at
  // each position after each outer step of a sweep (the block circle returns home every nb - 1 steps).
  const TB = K.circleSources(nb);
  const sched = I.innerSchedule(b);
  const ids = new Float32Array(Math.max(1, nb - 1) * nb);
  // BP: where each block sits before outer step st of a sweep (rows of nb), for the check-only pass.
  const BP = new Float32Array(Math.max(1, nb - 1) * nb);
  let pos = Array.from({ length: nb }, (_, i) => i);
  for (let st = 0; st < nb - 1; st++) {
    pos = pos.map((_, B) => pos[TB[B]]);
    for (let B = 0; B < nb; B++) ids[st * nb + B] = pos[B];
  }
  for (let B = 0; B < nb; B++) BP[B] = B;
  BP.set(ids.subarray(0, (nb - 2) * nb), nb);
  const [X, mx] = internal.launchJob('jacobiSvd', [a], [[Mp * Np], [1]], async (ctx, [ap]) => {
    const cm = await ctx.run(K.COLMAX, [n], [ap], [m, sa0, sa1]);
    const mxp = await ctx.run(K.MAX1, [1], [cm], [n]);
    ctx.free(cm);
    const scale = (await ctx.read(mxp))[0];
    if (!(scale >= 0) || !Number.isFinite(scale)) throw new Error(`jacobiSvd: input has a non-finite value (NaN or Infinity) in shape [${m0},${n0}]`);
    // The inner kernels: over dims [Pp, w, zd] on wasm (4 pairs a quad; [w, 1, zd] with lanes along
    // the rows for a single pair), 1-D elsewhere, with the shape's sizes baked in (index math on
    // literals measured ~25% faster for IROT).
    const lanesOnRows = tiled && P === 1;
    const innerSrc = (f: I.Forms, values: Record<string, number> = {}): internal.KernelSource =>
      internal.bakeScalars(lanesOnRows ? f.rows : tiled ? f.cube : f.flat, { w, Pp, ...values });
    const hinit = innerSrc(I.HINIT, { S: chunks, P });
    const iparams = innerSrc(I.IPARAMS);
    const irot = innerSrc(I.IROT);
    const convSrc = internal.bakeScalars(I.CONV, { w, Pp });
    const jrows = internal.bakeScalars(I.JROWS, { w, Pp });
    const inner = (src: internal.KernelSource, zd: number, arrays: internal.Payload[], scalars: number[]): Promise<internal.Payload> =>
      ctx.run(src, lanesOnRows ? [w, 1, zd] : tiled ? [Pp, w, zd] : [Pp * w * zd], arrays, scalars);
    // The tiled kernels with this shape's sizes baked in (core's bakeScalars).
    const gram4 = internal.bakeScalars(K.GRAM_R4, { b, Q, QA, S: chunks, QC });
    const sizes = { b, Q, nb, n, m };
    const update4 = internal.bakeScalars(K.UPDATE_R4, sizes);
    const move4 = internal.bakeScalars(K.MOVE_R4, sizes);
    const update4Lean = internal.bakeScalars(K.UPDATE_R4_LEAN, sizes);
    // Whether the update of outer step st must refill a column: a real column (original index below
    // n) whose new squared norm is at the zero threshold; the same test as the kernel's, made on the
    // host to choose which kernel to launch.
    const refillNeeded = (GD: Float32Array, st: number): boolean => {
      for (let B = 0; B < nb; B++) {
        const SB = TB[B];
        const Kp = Math.floor(SB / 2);
        for (let xx = 0; xx < b; xx++) {
          const jc = (SB - 2 * Kp) * b + xx;
          if (ids[st * nb + B] * b + xx < n && GD[(jc * w + jc) * Pp + Kp] <= ZERO_SQ) return true;
        }
      }
      return false;
    };
    let x = await ctx.run(K.PACK, [Mp * Np], [ap, mxp], [m, n, sa0, sa1, mp, b, Q]);
    jacobiStats.sweeps = 0;
    jacobiStats.converged = false;
    jacobiStats.history = [];
    // The largest of the per-pair measures, read back: the one number a sweep costs the host.
    const readMax = async (conv: internal.Payload): Promise<number> => {
      const c = await ctx.run(I.VMAX, [1], [conv], [P]);
      ctx.free(conv);
      const cv = (await ctx.read(c))[0];
      ctx.free(c);
      return cv;
    };
    // A sweep's measure: the max cosine over every pair of columns, before its rotation. `run` gets
    // each outer step's H = [G | I] and owns it; a check-only pass pairs the blocks through BP instead.
    const measure = async (run: (st: number, H: internal.Payload) => Promise<void>, check = false): Promise<number> => {
      let conv: internal.Payload = new Float32Array(P);
      for (let st = 0; st < nb - 1; st++) {
        const G = tiled ? await ctx.run(gram4, [4, w, P * chunks * (w / 4)], [x, BP], [check ? st * nb : 0]) : await ctx.run(K.GRAM, [16 * P * (w / 4) * w], [x, BP], [b, Q, QA, w, check ? st * nb : 0]);
        const H = await inner(hinit, 2 * w, [G], []);
        ctx.free(G);
        const conv2 = await ctx.run(convSrc, [P], [H, conv], [ZERO_SQ]);
        ctx.free(conv);
        conv = conv2;
        await run(st, H);
      }
      return readMax(conv);
    };
    // The outer step's update: X <- X J for every pair, moved to the next step's block positions;
    // H is the inner's last (G_K's diagonal holds the new squared norms, for the zero-column refill).
    // With no rotation in the step (J the identity) the blocks only move (K.MOVE).
    const update = async (st: number, H: internal.Payload, rotated: boolean): Promise<void> => {
      let x2: internal.Payload;
      if (rotated) {
        if (tiled) {
          const J = await ctx.run(jrows, [P * w * w], [H], []);
          // The refill code costs every cell of the update even when no column needs it (a
          // lane-varying branch); G's diagonal is on the host here, so launch it only when needed.
          const src = refillNeeded(H as Float32Array, st) ? update4 : update4Lean;
          x2 = await ctx.run(src, [b, Q, nb], [x, H, J, TB, ids], [st, Pp, ZERO_SQ, amp]);
          ctx.free(J);
        } else {
          x2 = await ctx.run(K.UPDATE, [Mp * Np], [x, H, TB, ids], [b, Q, nb, n, m, st, Pp, ZERO_SQ, amp]);
        }
      } else {
        x2 = tiled
          ? await ctx.run(move4, [b, Q, nb], [x, H, TB, ids], [st, Pp, ZERO_SQ, amp])
          : await ctx.run(K.MOVE, [Mp * Np], [x, H, TB, ids], [b, Q, nb, n, m, st, Pp, ZERO_SQ, amp]);
      }
      ctx.free(x);
      ctx.free(H);
      x = x2;
    };
    // A single block pair on wasm runs each inner sweep as one fused pipeline (I.innerPipeline).
    const fused = lanesOnRows;
    const pipeFull = I.innerPipeline(w, w - 1, 'full');
    const pipeCross = I.innerPipeline(w, b, 'cross');
    // One sweep: every outer step measures, runs the inner sweep and updates X (moving the blocks).
    const sweep = async (): Promise<number> => {
      if (fused) {
        let conv: internal.Payload = new Float32Array(P);
        for (let st = 0; st < nb - 1; st++) {
          const Graw = (await ctx.run(gram4, [4, w, P * chunks * (w / 4)], [x, BP], [0])) as Float32Array;
          const PT = st === 0 ? sched.full : sched.cross;
          const [H, conv2] = await ctx.pipeline(st === 0 ? pipeFull : pipeCross, [Graw, conv, PT], [[Graw.length], [P], [PT.length]], [w, Pp, chunks, P, ZERO_SQ, tol, BIG_THETA]);
          ctx.free(Graw);
          conv = conv2;
          await update(st, H, true);
        }
        return readMax(conv);
      }
      return measure(async (st, H0) => {
        let H = H0;
        let rotated = false;
        const PT = st === 0 ? sched.full : sched.cross;
        const steps = st === 0 ? w - 1 : b;
        for (let it = 0; it < steps; it++) {
          const RP = await inner(iparams, 2, [H, PT], [it, ZERO_SQ, tol, BIG_THETA]);
          // Where the parameters are on the host already (wasm, cpu), a step that rotates no pair is
          // skipped: the last sweeps are mostly such steps (measured at n = 256: 179 of 255 in the
          // second-to-last sweep, 254 of 255 in the last).
          if (RP instanceof Float32Array && !rotates(RP)) {
            ctx.free(RP);
            continue;
          }
          const H2 = await inner(irot, 2 * w, [H, RP, PT], [it]);
          ctx.free(RP);
          ctx.free(H);
          H = H2;
          rotated = true;
        }
        await update(st, H, rotated);
      });
    };
    let last = Infinity;
    for (let done = 0; done < maxSweeps; ) {
      // Near the end convergence is quadratic: once the last measure squared is under tol, the next
      // sweep would most likely rotate nothing, so measure first without rotating (Gram and CONV
      // only, the blocks paired through BP instead of moved: about a fifth of a sweep).
      const check = last * last <= tol;
      const cv = check ? await measure(async (_st, H) => ctx.free(H), true) : await sweep();
      if (!check) done++;
      jacobiStats.sweeps = done;
      jacobiStats.history.push(cv);
      // A sweep that found every pair within tol rotated nothing: stop after it. Measured cosines
      // bottom out near tol itself (float32 dot products of orthogonal columns carry ~sqrt(m) eps of
      // rounding), so a full sweep that found every pair within STALL tol, and rotated those above
      // tol, also ends the iteration instead of chasing rounding noise.
      if (cv <= tol || (!check && cv <= STALL * tol)) {
        jacobiStats.converged = true;
        break;
      }
      // A failed check still measured the state: go on with real sweeps from it.
      last = check ? Infinity : cv;
    }
    return [x, mxp];
  });
  const nrm = internal.launch('jacobiSvd', K.NORMS, [Np], 'float32', [X], [b, Q, QA, n]);
  const rank = internal.launch('jacobiSvd', K.RANK, [Np], 'float32', [nrm], [Np]);
  const perm = internal.launch('jacobiSvd', K.PERM, [k], 'float32', [rank], [Np]);
  const S = internal.launch('jacobiSvd', K.SVALS, [k], 'float32', [nrm, perm, mx], [NULL_NORM]);
  // U of the work matrix: [m, k]; for a wide input it is A's V, wanted as Vt = its transpose.
  const Uw = internal.launch('jacobiSvd', K.UVECS, wide ? [k, m] : [m, k], 'float32', [X, nrm, perm], [m, k, b, Q, wide ? 1 : 0]);
  const V = internal.launch('jacobiSvd', K.VVECS, [n, k], 'float32', [X, perm], [k, b, Q, mp]);
  const G = matmul(V, V, { transposeA: true });
  const W = internal.launch('jacobiSvd', K.NSW, [k, k], 'float32', [G], [k]);
  // Newton-Schulz: V (1.5 I - 0.5 VᵀV); W is symmetric, so Vᵀ's polished form is W Vᵀ.
  const Vp = wide ? matmul(V, W) : matmul(W, V, { transposeB: true });
  for (const t of [X, mx, nrm, rank, perm, V, G, W]) t.dispose();
  return wide ? { U: Vp, S, Vt: Uw } : { U: Uw, S, Vt: Vp };
}
