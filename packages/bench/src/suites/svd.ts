/**
 * Jacobi SVD (U, S and Vt, read back) beside ml-matrix's SVD (float64 Golub-Kahan, plain JS) in one process.
 * @module
 */
import { Bench } from 'tinybench';
import { gaussian, rng } from '@sorsajs/testing';
import { SVD, Matrix, QrDecomposition } from 'ml-matrix';
import * as sj from '@sorsajs/core';
import { jacobiStats, jacobiSvd } from '@sorsajs/linalg';
import { rowsOf, type Row } from '../report.js';
import { runBench } from '../progress.js';
import type { SuiteOptions } from './matmul.js';

/** An n x cols Gaussian matrix from the testing kit's seeded generator: the same inputs every run, so runs compare. */
function gaussianMatrix(n: number, seed: number, cols = n): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * cols }, () => gaussian(r));
}

/**
 * Full thin SVD of a random Gaussian n x n matrix at each size: sorsajs `jacobiSvd` on the current
 * backend (U, S and Vt read back) and ml-matrix `new SVD(matrix)`. Rates are n^3 / time (Mn^3/s),
 * a size-normalized speed, not a flop count.
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * const rows = await svdSuite({ sizes: [128, 256, 512] });
 * ```
 */
export async function svdSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  // One 512 SVD takes seconds, so samples are few; 6 s a task (10-12 samples at 256) keeps one run's
  // ratio within ~0.1 of longer runs, where 2 s (3-4 samples) let it swing by 0.3 on a shared
  // 2-core machine. tinybench still takes at least its minimum iterations.
  const bench = new Bench({ time: opts.time ?? 6000, warmupTime: 0, warmupIterations: 1, iterations: 3 });
  const ours = `sorsajs (${sj.backend()})`;
  const cleanup: (() => void)[] = [];
  for (const n of opts.sizes ?? [128, 256, 512]) {
    const a = gaussianMatrix(n, n);
    const sa = sj.tensor(a, [n, n]);
    const rows: number[][] = [];
    for (let i = 0; i < n; i++) rows.push(Array.from(a.subarray(i * n, (i + 1) * n)));
    const ma = new Matrix(rows);
    cleanup.push(() => sa.dispose());
    bench.add(`svd ${n} | ${ours}`, async () => {
      const { U, S, Vt } = jacobiSvd(sa);
      await Promise.all([U.data(), S.data(), Vt.data()]);
      U.dispose();
      S.dispose();
      Vt.dispose();
    });
    bench.add(`svd ${n} | ml-matrix`, () => {
      const svd = new SVD(ma);
      if (svd.diagonal.length !== n) throw new Error('ml-matrix SVD returned the wrong size');
    });
  }
  await runBench(bench);
  cleanup.forEach((f) => f());
  return rowsOf(bench, (name) => {
    const n = Number(name.split(' ')[1]);
    return { unit: 'Mn^3/s', work: n ** 3 / 1e6 };
  });
}

/** One row of `svdAccuracy`: LAPACK's acceptance ratios of one Jacobi SVD and how its iteration went. */
export interface AccuracyRow {
  /** The matrix family (spectrum kind) of this row. */
  family: string;
  /** The matrix size (n x n). */
  n: number;
  /** ‖A − U S Vt‖₁ / (‖A‖₁ n eps) (for A = 0: 0 when U S Vt is exactly 0). */
  resid: number;
  /** ‖I − UᵀU‖₁ / (n eps). */
  orthU: number;
  /** ‖I − V Vᵀ‖₁ / (n eps). */
  orthV: number;
  /** max |s − s64| / (n eps s64₁), against ml-matrix's float64 SVD. */
  svals: number;
  /** Full sweeps the Jacobi iteration ran (jacobiStats). */
  sweeps: number;
  /** Whether the stopping rule was met before the sweep cap. */
  converged: boolean;
  /** The convergence measure after each pass. */
  history: number[];
  /** How the factor from the rotations was made (jacobiStats.vectorsBy: the QR path solves for it when cond(A) <= 2^16). */
  vectorsBy: string;
}

/** A with the columns of a random orthogonal matrix scaled by `s` (float64 QR of a Gaussian through ml-matrix), rounded to float32. */
function withSpectrum(n: number, s: (i: number) => number, seed: number): Float32Array {
  const Q = new QrDecomposition(new Matrix(rowsOfFlat(gaussianMatrix(n, seed), n, n))).orthogonalMatrix;
  const Z = new QrDecomposition(new Matrix(rowsOfFlat(gaussianMatrix(n, seed + 1), n, n))).orthogonalMatrix;
  const D = Matrix.diag(Array.from({ length: n }, (_, i) => s(i)));
  return Float32Array.from(Q.mmul(D).mmul(Z.transpose()).to1DArray());
}

function rowsOfFlat(a: ArrayLike<number>, m: number, n: number): number[][] {
  return Array.from({ length: m }, (_, i) => Array.from({ length: n }, (_, j) => a[i * n + j]));
}

/** ‖X‖₁ of row-major X [m, n], in float64. */
function norm1(x: ArrayLike<number>, m: number, n: number): number {
  let best = 0;
  for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let i = 0; i < m; i++) acc += Math.abs(x[i * n + j]);
    best = Math.max(best, acc);
  }
  return best;
}

/**
 * Accuracy and iteration counts of `jacobiSvd` (a measurement, not a timing and not a test: the
 * tests assert the bounds): for n x n matrices of several families at each size, LAPACK's acceptance
 * ratios (the tests' bound is 50) against ml-matrix's float64 SVD, and `jacobiStats` (sweeps, and
 * the convergence measure of every pass). Run with `npm run bench -- svd --accuracy [--sizes 32,64]`.
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * for (const r of await svdAccuracy({ sizes: [64] })) console.log(r.family, r.orthU, r.sweeps);
 * ```
 */
export async function svdAccuracy(opts: SuiteOptions = {}): Promise<AccuracyRow[]> {
  const eps = 2 ** -23;
  const out: AccuracyRow[] = [];
  for (const n of opts.sizes ?? [32, 64, 128]) {
    const graded = gaussianMatrix(n, 22).map((v, i) => v * 10 ** ((-6 * (((i % n) * 7 + 3) % n)) / Math.max(1, n - 1)));
    const rankThird = Math.max(1, Math.floor(n / 3));
    const B = new Matrix(rowsOfFlat(gaussianMatrix(n, 25, rankThird), n, rankThird));
    const C = new Matrix(rowsOfFlat(gaussianMatrix(rankThird, 26, n), rankThird, n));
    const families: [string, Float32Array][] = [
      ['random', gaussianMatrix(n, 21)],
      ['graded columns (1..1e-6)', Float32Array.from(graded)],
      ['clustered', withSpectrum(n, (i) => (i < n / 2 ? 1 + 1e-6 * i : 1e-3 * (1 + 1e-6 * i)), 23)],
      [`rank ${rankThird}`, Float32Array.from(B.mmul(C).to1DArray())],
      ['geometric (1..1e-6)', withSpectrum(n, (i) => 10 ** ((-6 * i) / Math.max(1, n - 1)), 24)],
      ['zero', new Float32Array(n * n)],
      ['gaussian x 1e-30', gaussianMatrix(n, 27).map((v) => v * 1e-30)],
    ];
    for (const [family, a] of families) {
      const t = sj.tensor(a, [n, n]);
      const { U, S, Vt } = jacobiSvd(t);
      const [u, s, vt] = await Promise.all([U.data(), S.data(), Vt.data()]);
      sj.tree.dispose([t, U, S, Vt]);
      const R = new Float64Array(n * n);
      const gu = new Float64Array(n * n);
      const gv = new Float64Array(n * n);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let acc = 0;
          let au = 0;
          let av = 0;
          for (let q = 0; q < n; q++) {
            acc += u[i * n + q] * s[q] * vt[q * n + j];
            au += u[q * n + i] * u[q * n + j];
            av += vt[i * n + q] * vt[j * n + q];
          }
          R[i * n + j] = a[i * n + j] - acc;
          gu[i * n + j] = (i === j ? 1 : 0) - au;
          gv[i * n + j] = (i === j ? 1 : 0) - av;
        }
      const an = norm1(a, n, n);
      const rn = norm1(R, n, n);
      const ref = new SVD(new Matrix(rowsOfFlat(a, n, n)), { computeLeftSingularVectors: false, computeRightSingularVectors: false }).diagonal;
      let gap = 0;
      for (let i = 0; i < n; i++) gap = Math.max(gap, Math.abs(s[i] - ref[i]));
      out.push({
        family,
        n,
        resid: an > 0 ? rn / (an * n * eps) : rn === 0 ? 0 : Infinity,
        orthU: norm1(gu, n, n) / (n * eps),
        orthV: norm1(gv, n, n) / (n * eps),
        svals: ref[0] > 0 ? gap / (n * eps * ref[0]) : gap === 0 ? 0 : Infinity,
        sweeps: jacobiStats.sweeps,
        converged: jacobiStats.converged,
        history: [...jacobiStats.history],
        vectorsBy: jacobiStats.vectorsBy ?? 'rotations',
      });
    }
  }
  return out;
}

/**
 * `svdAccuracy`'s rows as a markdown table.
 *
 * @example
 * ```ts
 * console.log(accuracyMarkdown(await svdAccuracy({ sizes: [64] })));
 * ```
 */
export function accuracyMarkdown(rows: readonly AccuracyRow[]): string {
  const f = (v: number): string => v.toFixed(2);
  const lines = ['| n | family | resid | orthU | orthV | svals | sweeps | converged | vectors | measure per pass |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.n} | ${r.family} | ${f(r.resid)} | ${f(r.orthU)} | ${f(r.orthV)} | ${f(r.svals)} | ${r.sweeps} | ${r.converged} | ${r.vectorsBy} | ${r.history.map((v) => v.toExponential(1)).join(' ')} |`);
  }
  return lines.join('\n');
}
