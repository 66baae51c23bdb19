/**
 * The plan of a block Jacobi SVD (see jacobi.ts): sizes, padding, options checked, and the planning
 * tables (block moves, inner schedules), all decided on the host from the shape before any kernel
 * runs. Planning, not compute.
 * @module
 */
import type { JacobiOptions } from './types.js';
import * as K from './jacobi-kernels.js';
import * as I from './jacobi-inner.js';

const EPS32 = 2 ** -23;
/** Default cap on sweeps; float32 Jacobi needs ~10-14 on random matrices, up to ~24 on geometric spectra (measured, docs/guides/linalg.md). */
const MAX_SWEEPS = 40;

/** Sizes and tables of one Jacobi SVD of an m x n work matrix (m >= n). */
export interface Plan {
  /** Rows and columns of the work matrix (A, or Aᵀ when wide). */
  m: number;
  n: number;
  /** Columns per block, and per block pair (w = 2b). */
  b: number;
  w: number;
  /** Block pairs, and pairs as the inner kernels lay them out (a multiple of 4 from 3 pairs on). */
  P: number;
  Pp: number;
  /** Blocks (2P), padded columns (nb b), A rows padded to quads, all rows (mp + Np, or mp without V). */
  nb: number;
  Np: number;
  mp: number;
  Mp: number;
  /** Row quads of the work matrix and of its A part. */
  Q: number;
  QA: number;
  /** Row chunks of the tiled Gram and quads per chunk. */
  chunks: number;
  QC: number;
  tol: number;
  /** Whether X carries V's rows (the rotations accumulated), see `planFor`. */
  accumulate: boolean;
  /** The measure at or under which a pass ends the iteration (see `stallTolFor`). */
  stallTol: number;
  maxSweeps: number;
  /** Size of the noise refilled into zero columns. */
  amp: number;
  /** wasm: register-tiled outer kernels and 3-D inner kernels; else one value a cell, 1-D. */
  tiled: boolean;
  /** wasm with a single block pair: inner lanes along the rows, inner sweeps fused. */
  lanesOnRows: boolean;
  /** The block move: the position each output block position reads from (circle method). */
  TB: Float32Array;
  /** The inner schedules (partner tables). */
  sched: { full: Float32Array; cross: Float32Array };
  /** Which original block sits at each position after each outer step of a sweep (rows of nb). */
  ids: Float32Array;
  /** Where each block sits before each outer step (rows of nb), for the check-only pass. */
  BP: Float32Array;
}

/**
 * A pair of float32 columns just rotated measures its dot product's rounding, up to a few sqrt(m)
 * eps (on ten of eleven 768² Gaussians the check after the quadratic sweep found 1.0-3.8 sqrt(m)
 * eps, 6.3 on the last; one more full sweep, a tenth of the SVD's time, took it to 1.0), so a pass
 * that finds every pair within STALL sqrt(m) eps ends the iteration rather than chasing that noise.
 * A check past the band (6.3 there; 3.8 came close) still runs one more sweep.
 */
const STALL = 4;

/**
 * The measure that ends the iteration for a threshold `tol` over columns of m rows: `tol` itself
 * when it is above the band STALL sqrt(m) eps (a loose tol is met as given), STALL sqrt(m) eps for
 * tol from sqrt(m) eps (the default) up to it, and STALL tol below sqrt(m) eps (a tighter tol
 * tightens the band with it; far below, no pass meets it and the run ends at maxSweeps, unconverged).
 */
export function stallTolFor(tol: number, m: number): number {
  return Math.min(STALL * tol, Math.max(tol, STALL * defaultTol(m)));
}

/**
 * The default convergence threshold for columns of m rows, sqrt(m) eps (LAPACK's).
 *
 * @example
 * ```ts
 * defaultTol(256); // 16 * 2^-23
 * ```
 */
export function defaultTol(m: number): number {
  return Math.sqrt(m) * EPS32;
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
 * The plan for an m x n work matrix (m >= n) on backend `tiled` (wasm) or not. `shape` names the
 * caller's shape in errors. `accumulate` false leaves V's rows out of the work matrix (Mp = mp): the
 * sweeps then rotate A's rows only and V is made afterwards (jacobi-solve.ts). Throws on bad
 * options or a work matrix over 2^24 elements.
 */
export function planFor(m: number, n: number, opts: JacobiOptions, tiled: boolean, shape: string, accumulate = true): Plan {
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
  const Mp = accumulate ? mp + Np : mp;
  const QA = mp / 4;
  if (Mp * Np >= 2 ** 24) throw new Error(`jacobiSvd: a ${shape} matrix needs a ${Mp} x ${Np} work matrix, over 2^24 elements (kernels index in float32)`);
  const maxSweeps = opts.maxSweeps ?? MAX_SWEEPS;
  if (!Number.isInteger(maxSweeps) || maxSweeps < 0) throw new Error(`jacobiSvd: maxSweeps must be a non-negative integer, got ${maxSweeps}`);
  const tol = opts.tol ?? defaultTol(m);
  if (!(tol > 0)) throw new Error(`jacobiSvd: tol must be positive, got ${tol}`);
  // Row chunks of the tiled Gram: enough cells (8192) for gpu.js to split it over two worker threads.
  const chunks = tiled ? Math.max(1, Math.min(QA, Math.ceil(8192 / (w * w * P)))) : 1;
  const TB = K.circleSources(nb);
  const ids = new Float32Array(Math.max(1, nb - 1) * nb);
  const BP = new Float32Array(Math.max(1, nb - 1) * nb);
  let pos = Array.from({ length: nb }, (_, i) => i);
  for (let st = 0; st < nb - 1; st++) {
    pos = pos.map((_, B) => pos[TB[B]]);
    for (let B = 0; B < nb; B++) ids[st * nb + B] = pos[B];
  }
  // The block circle returns home every nb - 1 steps: before step 0 every block is at home.
  for (let B = 0; B < nb; B++) BP[B] = B;
  BP.set(ids.subarray(0, (nb - 2) * nb), nb);
  return {
    m,
    n,
    b,
    w,
    P,
    Pp,
    nb,
    Np,
    mp,
    Mp,
    Q: Mp / 4,
    QA,
    chunks,
    QC: Math.ceil(QA / chunks),
    tol,
    accumulate,
    stallTol: stallTolFor(tol, m),
    maxSweeps,
    amp: 2 ** -40 / Math.sqrt(m),
    tiled,
    lanesOnRows: tiled && P === 1,
    TB,
    sched: I.innerSchedule(b),
    ids,
    BP,
  };
}
