/**
 * PyTorch (CPU) as the peer of the svd-init suite: `peers/svd_init.py` run by a Python that imports
 * torch, on the matrices the suite exports to a temporary directory. It times LAPACK's full SVD and
 * `torch.svd_lowrank`, and returns the float64 reference SVD of each matrix.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { GptTiming } from './gpt-torch.js';
import { torchEnv } from './torch-python.js';

const run = promisify(execFile);

/** The script, from dist/peers/ or src/peers/ (both two levels below the package root). */
const SCRIPT = fileURLToPath(new URL('../../peers/svd_init.py', import.meta.url));

/** One timed PyTorch SVD and its accuracy against the float64 reference. */
export interface TorchSvdTiming {
  readonly medianMs: number;
  readonly samples: number;
  /** Largest relative error of the top-rank singular values. */
  readonly sigmaErr: number;
  /** Sine of the largest principal angle between the top-rank left singular subspaces. */
  readonly angle: number;
}

/**
 * What the PyTorch peer reported for one matrix: the float64 reference (top-rank S, and U as
 * row-major [m, rank]) and its two timed SVDs.
 *
 * @example
 * ```ts
 * const r = await torchSvdInit(cases, 16, timing, '/usr/bin/python3');
 * console.log(r.cases[0].svd.medianMs, r.cases[0].reference.S[0]);
 * ```
 */
export interface TorchSvdCase {
  readonly name: string;
  readonly reference: { readonly S: number[]; readonly U: number[] };
  /** torch.linalg.svd(A, full_matrices=False): LAPACK's full thin SVD. */
  readonly svd: TorchSvdTiming;
  /** torch.svd_lowrank(A, q=rank, niter=2). */
  readonly lowrank: TorchSvdTiming;
}

/** The PyTorch peer's report: version, BLAS, threads and one entry per matrix. */
export interface TorchSvdResult {
  readonly torch: string;
  readonly blas: string;
  readonly threads: number;
  readonly cases: TorchSvdCase[];
}

/** One matrix for the peer: its case name and row-major float32 values. */
export interface SvdCaseData {
  readonly name: string;
  readonly m: number;
  readonly n: number;
  readonly data: Float32Array;
}

/**
 * Runs the PyTorch peer on `cases` with `python` (2 threads), sampling as `timing` says. The
 * matrices go to a temporary directory (`manifest.json`, `matrices.bin`), removed afterwards.
 * Rejects when the script fails.
 *
 * @example
 * ```ts
 * const found = await findTorchPython();
 * if ('python' in found) console.log((await torchSvdInit(cases, 16, timing, found.python)).blas);
 * ```
 */
export async function torchSvdInit(cases: readonly SvdCaseData[], rank: number, timing: GptTiming, python: string): Promise<TorchSvdResult> {
  let offset = 0;
  const entries = cases.map((c) => {
    const e = { name: c.name, m: c.m, n: c.n, offset, bytes: c.data.byteLength };
    offset += c.data.byteLength;
    return e;
  });
  const dir = await mkdtemp(join(tmpdir(), 'sorsajs-svd-'));
  try {
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ cases: entries, rank, timing, threads: 2 }));
    await writeFile(join(dir, 'matrices.bin'), Buffer.concat(cases.map((c) => new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength))));
    const { stdout } = await run(python, [SCRIPT, dir], { env: torchEnv(), maxBuffer: 1 << 26, timeout: 60 * 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop() as string) as TorchSvdResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
