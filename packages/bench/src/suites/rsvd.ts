/**
 * Randomized SVD (rank 16, U, S and Vt read back) of a 1024 x 1024 Gaussian matrix, the case the
 * linalg issue sets an absolute target for (under 0.3 s on wasm). No peer runs beside it: ml-matrix's
 * full SVD of that matrix takes ~19 s here, too long to sample, and it computes more.
 * @module
 */
import { Bench } from 'tinybench';
import * as sj from '@sorsajs/core';
import { randomizedSvd } from '@sorsajs/linalg';
import { rowsOf, type Row } from '../report.js';
import { runBench } from '../progress.js';
import type { SuiteOptions } from './matmul.js';

/**
 * Times `randomizedSvd(a, { rank: 16 })` (its default: iterated until the top 16 singular values are
 * accurate to 1e-3) on n x n Gaussian matrices, default n = 1024, after one warm-up call
 * (which compiles the kernels). Rates are n^2 k / time (Mn^2k/s), a size-normalized speed.
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * const rows = await rsvdSuite({ sizes: [1024] });
 * ```
 */
export async function rsvdSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const bench = new Bench({ time: opts.time ?? 3000, warmupTime: 0, warmupIterations: 1, iterations: 8 });
  const ours = `sorsajs (${sj.backend()})`;
  const cleanup: (() => void)[] = [];
  const key = sj.random.key(7);
  for (const n of opts.sizes ?? [1024]) {
    const a = sj.random.normal(sj.random.foldIn(key, n), [n, n]);
    cleanup.push(() => a.dispose());
    bench.add(`rsvd ${n} rank 16 | ${ours}`, async () => {
      const { U, S, Vt } = randomizedSvd(a, { rank: 16 });
      await Promise.all([U.data(), S.data(), Vt.data()]);
      U.dispose();
      S.dispose();
      Vt.dispose();
    });
  }
  await runBench(bench);
  cleanup.forEach((f) => f());
  return rowsOf(bench, (name) => {
    const n = Number(name.split(' ')[1]);
    return { unit: 'Mn^2k/s', work: (n * n * 16) / 1e6 };
  });
}
