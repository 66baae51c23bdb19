/**
 * Jacobi SVD (U, S and Vt, read back) beside ml-matrix's SVD (float64 Golub-Kahan, plain JS) in one process.
 * @module
 */
import { Bench } from 'tinybench';
import { SVD, Matrix } from 'ml-matrix';
import * as sj from '@sorsajs/core';
import { jacobiSvd } from '@sorsajs/linalg';
import { rowsOf, type Row } from '../report.js';
import type { SuiteOptions } from './matmul.js';

function gaussianMatrix(n: number, seed: number): Float32Array {
  // LCG + Box-Muller: the same inputs every run, so runs compare.
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(n * n);
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
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
  await bench.run();
  cleanup.forEach((f) => f());
  return rowsOf(bench, (name) => {
    const n = Number(name.split(' ')[1]);
    return { unit: 'Mn^3/s', work: n ** 3 / 1e6 };
  });
}
