/**
 * SORSA's initialization SVD beside PyTorch's (issue #17): `initAdapter(W, { rank: 16 })` with its
 * default method, on an n x n and a 4n x n weight (default n = 768, GPT-2's width), each with a
 * slowly decaying spectrum (σ_k ∝ k^-0.6, the shape of trained weights) and as a Gaussian matrix
 * (a flat top), against `torch.linalg.svd` (LAPACK's full SVD, the yardstick) and
 * `torch.svd_lowrank` (niter 2) timed in a Python child on the same float32 values. Accuracy is
 * measured against float64: the construction's exact singular values and vectors for the decaying
 * family, PyTorch's float64 SVD for the Gaussian one (none without PyTorch, said loudly).
 * @module
 */
import { Bench } from 'tinybench';
import * as sj from '@sorsajs/core';
import { randomizedStats } from '@sorsajs/linalg';
import { initAdapter } from '@sorsajs/sorsa';
import { gaussian, orthonormalColumns, rng, subspaceSine, withSpectrum } from '@sorsajs/testing';
import type { Row } from '../report.js';
import { progress, runBench } from '../progress.js';
import type { SuiteOptions } from './matmul.js';
import { findTorchPython } from '../peers/torch-python.js';
import { torchSvdInit, type SvdCaseData, type TorchSvdResult } from '../peers/svd-torch.js';
import type { GptTiming } from '../peers/gpt-torch.js';

const RANK = 16;
/** The yardstick's impl name, the ratio column's reference. */
export const TORCH_SVD = 'PyTorch linalg.svd (full)';

/** A matrix of the suite: its float32 values and, for the decaying family, its exact top-rank SVD. */
interface Case extends SvdCaseData {
  exact?: { S: number[]; U: Float64Array[] };
}

function decaying(m: number, n: number, seed: number): Case {
  const s = Array.from({ length: Math.min(m, n) }, (_, i) => (i + 1) ** -0.6);
  // withSpectrum's U is orthonormalColumns(m, s.length, seed), whose first columns do not depend on how many follow.
  return { name: `init ${m}x${n} k^-0.6 r${RANK}`, m, n, data: Float32Array.from(withSpectrum(m, n, s, seed)), exact: { S: s.slice(0, RANK), U: orthonormalColumns(m, RANK, seed) } };
}

function gaussianMatrix(m: number, n: number, seed: number): Case {
  const r = rng(seed);
  return { name: `init ${m}x${n} gaussian r${RANK}`, m, n, data: Float32Array.from({ length: m * n }, () => gaussian(r)) };
}

/**
 * Times `initAdapter(W, { rank: 16 })` (its default SVD, adapter and residual read back) on each
 * matrix after one warm-up call, beside PyTorch's full and low-rank SVDs of the same values when a
 * Python imports torch (a loud SKIPPED line otherwise). Rows carry, in `detail`, each result's
 * largest relative error of the top-16 singular values (`sigmaErr`), the sine of its top-16
 * subspace's largest angle to the float64 one (`angle`), the slowest sample (`worstMs`) and, for
 * sorsajs, the randomized SVD's iterations and whether its stopping rule was met (`Jacobi` where the
 * default chose the exact SVD).
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * console.log(markdown(await svdInitSuite({ sizes: [256] }), TORCH_SVD));
 * ```
 */
export async function svdInitSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const cases: Case[] = [];
  for (const n of opts.sizes ?? [768]) {
    for (const m of [n, 4 * n]) cases.push(decaying(m, n, 1000 + m), gaussianMatrix(m, n, 2000 + m));
  }
  const timing: GptTiming = { time: opts.time ?? 3000, iterations: 5, warmupTime: 0, warmupIterations: 1 };
  const ours = `sorsajs initAdapter (${sj.backend()})`;
  const rows: Row[] = [];

  // PyTorch first, in its own process, while this one is idle.
  let torch: TorchSvdResult | undefined;
  const py = await findTorchPython();
  if ('skipped' in py) console.log(`\n!!! svd-init: PyTorch SKIPPED (no yardstick, no float64 reference for the Gaussian matrices): ${py.skipped}`);
  else {
    progress(`  PyTorch peer (a Python child): ${cases.length} matrices ...`);
    torch = await torchSvdInit(cases, RANK, timing, py.python);
    for (const tc of torch.cases) {
      for (const [key, impl] of [['svd', TORCH_SVD], ['lowrank', 'PyTorch svd_lowrank (niter 2)']] as const) {
        const t = tc[key];
        rows.push({ case: tc.name, impl, medianMs: t.medianMs, samples: t.samples, detail: { sigmaErr: t.sigmaErr, angle: t.angle, torch: torch.torch, blas: torch.blas, threads: torch.threads } });
      }
    }
  }

  const bench = new Bench(timing);
  const tensors = new Map<string, sj.Tensor>();
  for (const c of cases) {
    const W = sj.tensor(c.data, [c.m, c.n]);
    tensors.set(c.name, W);
    bench.add(`${c.name} | ${ours}`, async () => {
      const { adapter, residual } = initAdapter(W, { rank: RANK });
      await Promise.all([adapter.U.data(), adapter.S.data(), adapter.Vt.data(), residual.data()]);
      sj.tree.dispose([adapter, residual]);
    });
  }
  await runBench(bench);

  for (const c of cases) {
    const task = bench.tasks.find((t) => t.name === `${c.name} | ${ours}`)!;
    const r = task.result;
    if (!r || r.state !== 'completed') throw new Error(`bench: task "${task.name}" did not complete (${r?.state})`);
    // One more call for the accuracy, against float64.
    // randomizedStats gets a fresh checks array from each randomized run: the same one afterwards
    // means the default chose the exact Jacobi SVD (small matrices), whose row has no iterations.
    const seen = randomizedStats.checks;
    const { adapter, residual } = initAdapter(tensors.get(c.name)!, { rank: RANK });
    const S = await adapter.S.data();
    const U = (await adapter.U.data()) as Float32Array;
    const stats: Record<string, number | string> =
      randomizedStats.checks === seen ? { iterations: 'Jacobi' } : { iterations: randomizedStats.iterations, converged: String(randomizedStats.converged) };
    sj.tree.dispose([adapter, residual]);
    const ref = c.exact ?? (torch ? refOf(torch, c) : undefined);
    const detail: Record<string, number | string> = { worstMs: r.latency.max, ...stats };
    if (ref) {
      detail.sigmaErr = Math.max(...ref.S.map((s, i) => Math.abs(S[i] - s) / s));
      detail.angle = subspaceSine(ref.U, U, c.m, RANK);
    }
    rows.push({ case: c.name, impl: ours, medianMs: r.latency.p50, samples: r.latency.samplesCount, detail });
  }
  tensors.forEach((t) => t.dispose());

  console.log(`\n## svd-init accuracy (top-${RANK} against float64: largest relative σ error, sine of the largest subspace angle)\n`);
  console.log('| case | impl | σ error | angle | worst ms | iterations |\n| --- | --- | --- | --- | --- | --- |');
  for (const row of rows) {
    const d = row.detail ?? {};
    const f = (x: unknown) => (typeof x === 'number' ? x.toExponential(1) : '-');
    console.log(`| ${row.case} | ${row.impl} | ${f(d.sigmaErr)} | ${f(d.angle)} | ${typeof d.worstMs === 'number' ? d.worstMs.toFixed(0) : '-'} | ${d.iterations ?? '-'}${d.converged === 'false' ? ' (not converged)' : ''} |`);
  }
  // Each case's rows together, sorsajs first.
  const order = (r: Row) => cases.findIndex((c) => c.name === r.case) * 3 + (r.impl === ours ? 0 : r.impl === TORCH_SVD ? 1 : 2);
  return rows.sort((a, b) => order(a) - order(b));
}

/** The float64 reference PyTorch computed for a case, as columns. */
function refOf(torch: TorchSvdResult, c: Case): { S: number[]; U: Float64Array[] } | undefined {
  const tc = torch.cases.find((t) => t.name === c.name);
  if (!tc) return undefined;
  const U = Array.from({ length: RANK }, (_, t) => Float64Array.from({ length: c.m }, (_, i) => tc.reference.U[i * RANK + t]));
  return { S: tc.reference.S, U };
}
