/**
 * One-sided (Hestenes) Jacobi SVD on gpu.js kernels.
 *
 * Design, in order of what runs:
 * - Wide inputs are read transposed (B = Aᵀ), so the work matrix is m x n with m >= n.
 * - One gpu.js pipeline (`createPipeline`, core's `launchPipeline`) holds the whole iteration: the
 *   scale max|A| (two small kernels), the packed work matrix X = [A / max|A| ; I] (A's columns over
 *   V's, flat column-major, n rounded up to even with a padding column), then `sweeps` sweeps of
 *   n - 1 round-robin steps, each step three kernels: DOTS (the pairs' three dot products), PARAMS
 *   (each pair's rotation, or none when converged) and ROTATE (all n/2 disjoint rotations of A and V
 *   at once, written straight into the next step's positions), and a final flatten. On wasm gpu.js
 *   fuses the plan into one dispatch on worker threads; on webgpu into one command encoder where the
 *   input is host-resident (else it runs it kernel by kernel); elsewhere kernel by kernel.
 * - Converged pairs (|a_p·a_q| <= tol |a_p| |a_q|) are skipped inside the kernels: PARAMS gives
 *   s = 0 and ROTATE copies. The API is synchronous and reads nothing back, so the sweep count is
 *   fixed in advance from the size (see `defaultSweeps`); later sweeps are mostly copies.
 * - Then ordinary kernels: column norms (the singular values, scaled back), a rank kernel and its
 *   inverse (the descending permutation), U's columns gathered and normalized, V's gathered, and one
 *   Newton-Schulz step V (1.5 I - 0.5 VᵀV) through core's matmul, which brings V back to
 *   orthonormal to a few eps after float32 rotation parameters let it drift.
 * - Zero singular values: a column that reaches (near) zero is refilled with deterministic noise of
 *   size 2^-40 |A| in its A part (V untouched) by the rotation kernel; the remaining sweeps
 *   orthogonalize it against the rest, so U comes out a full orthonormal set. Singular values at that
 *   noise floor (below 2^-34 max|A|) are reported as exactly 0.
 * @module
 */
import type { SVD } from './types.js';
import { Tensor, matmul, tensor } from '@sorsajs/core';
import { internal } from '@sorsajs/core';
import * as K from './jacobi-kernels.js';

/** Options of `jacobiSvd`. */
export interface JacobiOptions {
  /**
   * Pairs whose columns satisfy |a_p·a_q| <= tol |a_p| |a_q| are not rotated.
   * Default sqrt(m) * 2^-23 (m the longer side).
   */
  tol?: number;
  /** Number of sweeps run (fixed: the result is not read back to test convergence). Default from the size, see `defaultSweeps`. */
  maxSweeps?: number;
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

/**
 * Sweeps run by default for n columns (the shorter side): ceil(3 log2 n) - 2, at least 2. Measured
 * (wasm, float32, default tol; sweeps until every LAPACK ratio is <= 50), n = 32 / 64: random
 * Gaussian 7 / 8, graded columns 5 / 7, clustered spectrum 9 / 13, rank n/3 12 / 14, geometric
 * spectrum (1..1e-6) 13 / 16. Converged pairs cost only their dot products and a copy.
 */
export function defaultSweeps(n: number): number {
  return Math.max(2, Math.ceil(3 * Math.log2(n)) - 2);
}

const kernelsOf = { colmax: K.COLMAX, max1: K.MAX1, pack: K.PACK, dots: K.DOTS, params: K.PARAMS, rotate: K.ROTATE, flatten: K.FLATTEN };

/** The pipeline for an m x n work matrix (m >= n) and a sweep count. */
function jacobiPipeline(m: number, n: number, sweeps: number): internal.PipelineSource {
  const N = n + (n % 2);
  const M = m + N;
  const nh = N / 2;
  return {
    key: `jacobi:${m}x${n}:${sweeps}`,
    // a and the move table T, then scalars m, n, sa0, sa1, M, N, nh, padded, thrZ, tol, big, amp
    arity: 14,
    kernels: kernelsOf,
    plan(call, args) {
      const [a, T, sm, sn, sa0, sa1, sM, , , padded, thrZ, tol, big, amp] = args;
      const cm = call('colmax', [n], [a, sm, sa0, sa1]);
      const mx = call('max1', [1], [cm, sn]);
      let X = call('pack', [M, N], [a, mx, sm, sn, sa0, sa1]);
      for (let s = 0; s < sweeps; s++) {
        for (let step = 0; step < N - 1; step++) {
          const D = call('dots', [1, 3 * nh], [X, sm]);
          const P = call('params', [nh, 2], [D, thrZ, tol, big]);
          X = call('rotate', [M, N], [X, D, P, T, sm, sM, padded, thrZ, amp]);
        }
      }
      const flat = call('flatten', [M * N], [X, sM]);
      return [flat, mx];
    },
  };
}

function checkInput(a: Tensor): void {
  if (!(a instanceof Tensor)) throw new Error(`jacobiSvd: expects a Tensor, got ${a === null ? 'null' : typeof a}`);
  if (a.isDisposed) throw new Error(`jacobiSvd: tensor of shape [${a.shape.join(',')}] was disposed`);
  if (a.dtype !== 'float32') throw new Error(`jacobiSvd: expects a float32 tensor, got ${a.dtype}`);
  if (a.rank !== 2) throw new Error(`jacobiSvd: expects a matrix (rank 2), got shape [${a.shape.join(',')}]`);
  const [m, n] = a.shape;
  if (m === 0 || n === 0) throw new Error(`jacobiSvd: expects a non-empty matrix, got shape [${m},${n}]`);
  // Values can be checked only where they already are on the host (uploaded data, wasm and cpu
  // results); a device-resident input is not read back, and NaN or Inf there propagates into S.
  const bad = internal.firstNonFinite(a);
  if (bad) throw new Error(`jacobiSvd: input has a non-finite value (${bad.value}) at [${bad.index.join(', ')}] of shape [${m},${n}]`);
}

/**
 * Thin SVD of any m x n float32 matrix by one-sided Jacobi: A = U diag(S) Vt with U [m, k],
 * S [k] descending and non-negative, Vt [k, n], k = min(m, n). High relative accuracy on graded
 * matrices (columns scaled over many orders of magnitude), which QR-based SVDs lose in float32.
 * Every value is computed in gpu.js kernels; nothing is read back. A NaN or Infinity in an input
 * whose values are on the host throws; in a device-resident input it is not detected and
 * propagates (S comes out NaN).
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
  const N = n + (n % 2);
  const M = m + N;
  if (M * N >= 2 ** 24) throw new Error(`jacobiSvd: a [${m0},${n0}] matrix needs a ${M} x ${N} work matrix, over 2^24 elements (kernels index in float32)`);
  const sweeps = opts.maxSweeps ?? defaultSweeps(n);
  if (!Number.isInteger(sweeps) || sweeps < 0) throw new Error(`jacobiSvd: maxSweeps must be a non-negative integer, got ${sweeps}`);
  const tol = opts.tol ?? Math.sqrt(m) * EPS32;
  if (!(tol > 0)) throw new Error(`jacobiSvd: tol must be positive, got ${tol}`);
  const amp = 2 ** -40 / Math.sqrt(m);
  const moves = tensor(K.circleSources(N));
  const [flat, mx] = internal.launchPipeline(
    'jacobiSvd',
    jacobiPipeline(m, n, sweeps),
    [a, moves],
    [[m0 * n0], [N]],
    [m, n, sa0, sa1, M, N, N / 2, n % 2, ZERO_SQ, tol, BIG_THETA, amp],
    [[M * N], [1]],
  );
  const nrm = internal.launch('jacobiSvd', K.NORMS, [N], 'float32', [flat], [m, M, n % 2]);
  const rank = internal.launch('jacobiSvd', K.RANK, [N], 'float32', [nrm], [N]);
  const perm = internal.launch('jacobiSvd', K.PERM, [k], 'float32', [rank], [N]);
  const S = internal.launch('jacobiSvd', K.SVALS, [k], 'float32', [nrm, perm, mx], [NULL_NORM]);
  // U of the work matrix: [m, k]; for a wide input it is A's V, wanted as Vt = its transpose.
  const Uw = internal.launch('jacobiSvd', K.UVECS, wide ? [k, m] : [m, k], 'float32', [flat, nrm, perm], [m, k, M, wide ? 1 : 0]);
  const V = internal.launch('jacobiSvd', K.VVECS, [n, k], 'float32', [flat, perm], [k, M, m]);
  const G = matmul(V, V, { transposeA: true });
  const W = internal.launch('jacobiSvd', K.NSW, [k, k], 'float32', [G], [k]);
  // Newton-Schulz: V (1.5 I - 0.5 VᵀV); W is symmetric, so Vᵀ's polished form is W Vᵀ.
  const Vp = wide ? matmul(V, W) : matmul(W, V, { transposeB: true });
  for (const t of [moves, flat, mx, nrm, rank, perm, V, G, W]) t.dispose();
  return wide ? { U: Vp, S, Vt: Uw } : { U: Uw, S, Vt: Vp };
}
