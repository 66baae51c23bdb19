/**
 * The iteration of the block Jacobi SVD (see jacobi.ts for the algorithm): sweeps of outer steps
 * over the work matrix X until the convergence measure says stop, run inside a core job (so kernels
 * run at once, in order, and values may be read back between them). Kernels are in
 * jacobi-kernels.ts (outer) and jacobi-inner.ts (inner); sizes and tables in jacobi-plan.ts.
 * @module
 */
import * as internal from '@sorsajs/core/internal';
import * as K from './jacobi-kernels.js';
import * as I from './jacobi-inner.js';
import type { Plan } from './jacobi-plan.js';
import type { JacobiStats } from './types.js';

type Payload = internal.Payload;
type Src = internal.KernelSource;

/** LAPACK's bound for the t = 1 / (2 theta) branch: 1 / sqrt(unit roundoff). */
const BIG_THETA = 4096;
/** Checks (see `run`) that may fail before the iteration runs sweeps only. */
const MAX_FAILED_CHECKS = 2;
/** Squared norm (in units of max|A|) under which a column counts as zero and gets noise. */
export const ZERO_SQ = 2 ** -100;

/**
 * Whether any rotation in I.IPARAMS's result turns: its betas (the second half) are exactly 0 for
 * pairs left alone. Reading the host array decides what to launch (control flow).
 */
function rotates(RP: Float32Array): boolean {
  for (let i = RP.length / 2; i < RP.length; i++) if (RP[i] !== 0) return true;
  return false;
}

/**
 * Marks in `live` (one flag per padded pair) the block pairs that I.IPARAMS's result rotates: the
 * betas are the second half, pair K's at index (w + y) Pp + K (dims [Pp, w, 2]). Planning from values
 * already on the host, as `rotates`: UPDATE_R4 and UPDATE_T16 copy the pairs left at 0.
 */
function markLive(RP: Float32Array, live: Float32Array, w: number, Pp: number): void {
  for (let y = 0; y < w; y++) for (let k = 0; k < Pp; k++) if (RP[(w + y) * Pp + k] !== 0) live[k] = 1;
}

/**
 * The sweeps of one SVD over the work matrix `x` (X layout, see jacobi-kernels.ts), which the
 * iteration replaces as it goes; `run` leaves the final one in `x`. The kernels are built with the
 * plan's sizes baked in (core's bakeScalars: index math on literals measured ~25% faster for IROT).
 */
export class Sweeps {
  private readonly hinit: Src;
  private readonly iparams: Src;
  /** iparams2's output dims where it runs (both numbers a cell), else undefined: IPARAMS over `inner`'s dims. */
  private readonly iparamsDims: number[] | undefined;
  private readonly irot: Src;
  /** irot4's output dims where it runs (4 rows a cell), else undefined: IROT over `inner`'s dims. */
  private readonly irot4Dims: number[] | undefined;
  private readonly conv: Src;
  private readonly jrows: Src;
  private readonly gram16: Src;
  private readonly update4: Src;
  private readonly update4Lean: Src;
  /** The 4 x 16 tiled update (wasm, b a multiple of 16) and J as it reads it (JROWS16), or null. */
  private readonly update16: { update: Src; jrows: Src } | null;
  private readonly move4: Src;
  private readonly pipeFull: internal.PipelineSource;
  private readonly pipeCross: internal.PipelineSource;
  /** Every pair rotates (the fused single-pair sweep's updates). */
  private readonly allLive: Float32Array;
  /** Updates run so far (the refill noise's salt). */
  private updates = 0;

  constructor(
    private readonly ctx: internal.JobContext,
    private readonly plan: Plan,
    public x: Payload,
  ) {
    const { w, Pp, P, b, Q, QA, nb, n, m, chunks, QC, tiled, lanesOnRows } = plan;
    // The inner kernels: over dims [Pp, w, zd] on wasm (4 pairs a quad; [w, 1, zd] with lanes along
    // the rows for a single pair), 1-D elsewhere.
    const innerSrc = (f: I.Forms, values: Record<string, number> = {}): Src =>
      internal.bakeScalars(lanesOnRows ? f.rows : tiled ? f.cube : f.flat, { w, Pp, ...values });
    this.hinit = innerSrc(I.HINIT, { S: chunks, P });
    // 4 rows a cell (IROT) and both numbers a cell (IPARAMS) where the cube form's quads are whole
    // (Pp a multiple of 4).
    const rows4 = tiled && !lanesOnRows && Pp % 4 === 0;
    this.iparams = rows4 ? I.iparams2(w, Pp) : innerSrc(I.IPARAMS);
    this.iparamsDims = rows4 ? [Pp, w, 1] : undefined;
    this.irot = rows4 ? I.irot4(w, Pp) : innerSrc(I.IROT);
    this.irot4Dims = rows4 ? [Pp, w / 4, 2 * w] : undefined;
    this.conv = internal.bakeScalars(I.CONV, { w, Pp, b, n });
    this.jrows = internal.bakeScalars(I.JROWS, { w, Pp });
    this.gram16 = internal.bakeScalars(K.GRAM_T16, { b, Q, QA, S: chunks, QC });
    const sizes = { b, Q, nb, n, m };
    this.update4 = internal.bakeScalars(K.UPDATE_R4, sizes);
    this.update4Lean = internal.bakeScalars(K.UPDATE_R4_LEAN, sizes);
    this.update16 = b % 16 === 0 ? { update: internal.bakeScalars(K.UPDATE_T16, { b, Q }), jrows: internal.bakeScalars(I.JROWS16, { w, Pp }) } : null;
    this.move4 = internal.bakeScalars(K.MOVE_R4, sizes);
    this.allLive = new Float32Array(Pp).fill(1);
    this.pipeFull = I.innerPipeline(w, w - 1, 'full');
    this.pipeCross = I.innerPipeline(w, b, 'cross');
  }

  /**
   * Sweeps until the stopping rule or `maxSweeps`, recording into `stats`. Near the end convergence
   * is quadratic: once the last measure squared is under tol, the next sweep would most likely
   * rotate nothing, so it first measures without rotating (a check-only pass: Grams and CONV, the
   * blocks paired through BP instead of moved, about a fifth of a sweep). After MAX_FAILED_CHECKS
   * failed checks only sweeps run: a tol below float32's reach would otherwise alternate a check
   * with every sweep until maxSweeps (measured: 31 checks in a 200² run with tol 1e-9).
   */
  async run(stats: JacobiStats): Promise<void> {
    const { tol, stallTol, maxSweeps } = this.plan;
    stats.sweeps = 0;
    stats.converged = false;
    stats.history = [];
    let last = Infinity;
    let failedChecks = 0;
    for (let done = 0; done < maxSweeps; ) {
      const check = failedChecks < MAX_FAILED_CHECKS && last * last <= tol;
      const cv = check ? await this.measure(async (_st, H) => this.ctx.free(H), true) : await this.sweep();
      if (!check) done++;
      stats.sweeps = done;
      stats.history.push(cv);
      // A pass that found every pair within stallTol (tol, or the rounding band above it, see
      // jacobi-plan.ts) ends the iteration: a sweep after rotating the pairs above tol, a check as
      // it found them. Before, a check within the band but above tol ran one more full sweep, which
      // took the max from 1.0-3.8 to 1.0 tol on 768² Gaussians, a tenth of the SVD's time.
      if (cv <= stallTol) {
        stats.converged = true;
        return;
      }
      // A failed check still measured the state: go on with real sweeps from it.
      if (check) failedChecks++;
      last = check ? Infinity : cv;
    }
  }

  /** One sweep: every outer step measures, runs the inner sweep and updates X (moving the blocks). */
  private async sweep(): Promise<number> {
    if (this.plan.lanesOnRows) return this.fusedSweep();
    return this.measure(async (st, H0) => this.update(st, ...(await this.innerSweep(st, H0))));
  }

  /**
   * The inner sweep of outer step st, kernel by kernel, from H0 = [G | I]; returns the last H and
   * whether anything rotated. Where the parameters are on the host already (wasm, cpu), a step that
   * rotates no pair is skipped: the last sweeps are mostly such steps (measured at n = 256: 179 of
   * 255 in the second-to-last sweep, 254 of 255 in the last).
   */
  private async innerSweep(st: number, H0: Payload): Promise<[Payload, boolean, Float32Array]> {
    const { w, b, tol, sched, Pp } = this.plan;
    let H = H0;
    let rotated = false;
    // Which block pairs rotate (all of them where the parameters are not on the host).
    const live = new Float32Array(Pp);
    const PT = st === 0 ? sched.full : sched.cross;
    const steps = st === 0 ? w - 1 : b;
    for (let it = 0; it < steps; it++) {
      const RP = this.iparamsDims
        ? await this.ctx.run(this.iparams, this.iparamsDims, [H, PT], [it, ZERO_SQ, tol, BIG_THETA])
        : await this.inner(this.iparams, 2, [H, PT], [it, ZERO_SQ, tol, BIG_THETA]);
      if (RP instanceof Float32Array && !rotates(RP)) {
        this.ctx.free(RP);
        continue;
      }
      if (RP instanceof Float32Array) markLive(RP, live, w, Pp);
      else live.fill(1);
      const H2 = this.irot4Dims ? await this.ctx.run(this.irot, this.irot4Dims, [H, RP, PT], [it]) : await this.inner(this.irot, 2 * w, [H, RP, PT], [it]);
      this.ctx.free(RP);
      this.ctx.free(H);
      H = H2;
      rotated = true;
    }
    return [H, rotated, live];
  }

  /** A single block pair's sweep (wasm): each inner sweep one fused pipeline (I.innerPipeline). */
  private async fusedSweep(): Promise<number> {
    const { w, P, Pp, nb, b, n, chunks, tol, sched, BP } = this.plan;
    let conv: Payload = new Float32Array(P);
    for (let st = 0; st < nb - 1; st++) {
      const Graw = (await this.ctx.run(this.gram16, [4, w / 4, P * chunks * (w / 4)], [this.x, BP], [0])) as Float32Array;
      const PT = st === 0 ? sched.full : sched.cross;
      const [H, conv2] = await this.ctx.pipeline(
        st === 0 ? this.pipeFull : this.pipeCross,
        [Graw, conv, PT, BP],
        [[Graw.length], [P], [PT.length], [BP.length]],
        [w, Pp, chunks, P, ZERO_SQ, tol, BIG_THETA, b, n, st * nb],
      );
      this.ctx.free(Graw);
      conv = conv2;
      await this.update(st, H, true, this.allLive);
    }
    return this.readMax(conv);
  }

  /**
   * A sweep's measure: the max cosine over every pair of columns, before its rotation. `step` gets
   * each outer step's H = [G | I] and owns it; a check-only pass pairs the blocks through BP instead
   * of moving them.
   */
  private async measure(step: (st: number, H: Payload) => Promise<void>, check = false): Promise<number> {
    const { w, P, b, Q, QA, nb, chunks, tiled, BP } = this.plan;
    let conv: Payload = new Float32Array(P);
    for (let st = 0; st < nb - 1; st++) {
      const bpo = check ? st * nb : 0;
      const G = tiled
        ? await this.ctx.run(this.gram16, [4, w / 4, P * chunks * (w / 4)], [this.x, BP], [bpo])
        : await this.ctx.run(K.GRAM, [16 * P * (w / 4) * w], [this.x, BP], [b, Q, QA, w, bpo]);
      const H = await this.inner(this.hinit, 2 * w, [G], []);
      this.ctx.free(G);
      const conv2 = await this.ctx.run(this.conv, [P], [H, conv, BP], [st * nb, ZERO_SQ]);
      this.ctx.free(conv);
      conv = conv2;
      await step(st, H);
    }
    return this.readMax(conv);
  }

  /**
   * The outer step's update: X <- X J for every pair, moved to the next step's block positions;
   * H is the inner's last (G_K's diagonal holds the new squared norms, for the zero-column refill).
   * With no rotation in the step (J the identity) the blocks only move (K.MOVE).
   */
  private async update(st: number, H: Payload, rotated: boolean, live: Float32Array): Promise<void> {
    const { b, Q, nb, n, m, Mp, Np, P, Pp, w, amp, tiled, TB, ids } = this.plan;
    const { ctx, x } = this;
    let x2: Payload;
    // The refill noise's salt: every update a new one, so a column refilled twice gets new noise.
    const salt = this.updates++;
    // The refill code costs every cell of the update even when no column needs it (a lane-varying
    // branch); G's diagonal is on the host here, so launch it only when needed.
    const refill = rotated && tiled && this.refillNeeded(H as Float32Array, st);
    if (rotated && tiled && !refill && this.update16) {
      const J = await ctx.run(this.update16.jrows, [w, w, P], [H], []);
      x2 = await ctx.run(this.update16.update, [4, b / 16, nb * Q], [x, J, TB, live], []);
      ctx.free(J);
    } else if (rotated && tiled) {
      const J = await ctx.run(this.jrows, [w, w, P], [H], []);
      const src = refill ? this.update4 : this.update4Lean;
      x2 = await ctx.run(src, [b, Q, nb], [x, H, J, TB, ids, live], [st, Pp, ZERO_SQ, amp, salt]);
      ctx.free(J);
    } else if (rotated) {
      x2 = await ctx.run(K.UPDATE, [Mp * Np], [x, H, TB, ids], [b, Q, nb, n, m, st, Pp, ZERO_SQ, amp, salt]);
    } else if (tiled) {
      x2 = await ctx.run(this.move4, [b, Q, nb], [x, H, TB, ids], [st, Pp, ZERO_SQ, amp, salt]);
    } else {
      x2 = await ctx.run(K.MOVE, [Mp * Np], [x, H, TB, ids], [b, Q, nb, n, m, st, Pp, ZERO_SQ, amp, salt]);
    }
    ctx.free(x);
    ctx.free(H);
    this.x = x2;
  }

  /**
   * Whether the update of outer step st must refill a column: a real column (original index below
   * n) whose new squared norm is at the zero threshold; the kernel's test, made on the host to
   * choose which kernel to launch.
   */
  private refillNeeded(GD: Float32Array, st: number): boolean {
    const { nb, b, n, w, Pp, TB, ids } = this.plan;
    for (let B = 0; B < nb; B++) {
      const SB = TB[B];
      const Kp = Math.floor(SB / 2);
      for (let xx = 0; xx < b; xx++) {
        const jc = (SB - 2 * Kp) * b + xx;
        if (ids[st * nb + B] * b + xx < n && GD[(jc * w + jc) * Pp + Kp] <= ZERO_SQ) return true;
      }
    }
    return false;
  }

  /** Runs an inner kernel over its dims for this plan (see the constructor). */
  private inner(src: Src, zd: number, arrays: Payload[], scalars: number[]): Promise<Payload> {
    const { w, Pp, tiled, lanesOnRows } = this.plan;
    return this.ctx.run(src, lanesOnRows ? [w, 1, zd] : tiled ? [Pp, w, zd] : [Pp * w * zd], arrays, scalars);
  }

  /** The largest of the per-pair measures, read back: the one number a sweep costs the host. */
  private async readMax(conv: Payload): Promise<number> {
    const c = await this.ctx.run(I.VMAX, [1], [conv], [this.plan.P]);
    this.ctx.free(conv);
    const cv = (await this.ctx.read(c))[0];
    this.ctx.free(c);
    return cv;
  }
}
