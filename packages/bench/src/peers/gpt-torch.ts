/**
 * PyTorch (CPU, or CUDA beside sorsajs on webgpu) as a peer of the gpt suite: `peers/gpt_step.py` (checked in beside this package's
 * sources) run by a Python 3 that can `import torch`, on the initial weights and batch the suite
 * exports to a temporary directory. It times itself, as tinybench does, and reports JSON; the
 * suite turns that into rows beside the in-process peers.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { GptProbe, GptStepData } from './gpt-data.js';
import { torchEnv } from './torch-python.js';

export { findTorchPython } from './torch-python.js';

const run = promisify(execFile);

/** The script, from dist/peers/ or src/peers/ (both two levels below the package root). */
const SCRIPT = fileURLToPath(new URL('../../peers/gpt_step.py', import.meta.url));

/**
 * How long and how often to sample, as tinybench's options: each loop runs until both its time and
 * its count are reached.
 *
 * @example
 * ```ts
 * const t: GptTiming = { time: 3000, iterations: 64, warmupTime: 1000, warmupIterations: 16 };
 * ```
 */
export interface GptTiming {
  /** Milliseconds of timed calls, at least. */
  readonly time: number;
  /** Timed calls, at least. */
  readonly iterations: number;
  /** Milliseconds of warm-up, at least. */
  readonly warmupTime: number;
  /** Warm-up calls, at least. */
  readonly warmupIterations: number;
}

/**
 * What the PyTorch peer reported: its version, BLAS and threads, the probe, and the median time
 * and sample count of the step and of the forward pass.
 *
 * @example
 * ```ts
 * const r: TorchResult = await torchGpt(data, timing) as TorchResult;
 * console.log(r.step.medianMs);
 * ```
 */
export interface TorchResult {
  /** `torch.__version__`. */
  readonly torch: string;
  /** The BLAS the process loaded (`OpenBLAS`, `reference BLAS`, ...). */
  readonly blas: string;
  /** `torch.get_num_threads()` while timing. */
  readonly threads: number;
  /** `CPU`, or the GPU's name (`torch.cuda.get_device_name`) when it ran on CUDA. */
  readonly device: string;
  /** The first two steps' values. */
  readonly probe: GptProbe;
  /** The training step's median and samples. */
  readonly step: { readonly medianMs: number; readonly samples: number };
  /** The forward pass's median and samples. */
  readonly forward: { readonly medianMs: number; readonly samples: number };
}

/**
 * Runs the PyTorch peer on `data` with `python` on `device` (`cuda` rejects where torch sees no
 * GPU), sampling as `timing` says. The weights, batch and
 * settings go to a temporary directory as `manifest.json` (names, shapes, byte offsets) and
 * `tensors.bin` (the raw little-endian float32 and int32 arrays), removed afterwards. Rejects
 * when the script fails.
 *
 * @example
 * ```ts
 * const found = await findTorchPython();
 * if ('python' in found) console.log((await torchGpt(data, timing, found.python)).probe.loss0);
 * ```
 */
export async function torchGpt(data: GptStepData, timing: GptTiming, python: string, device: 'cpu' | 'cuda' = 'cpu'): Promise<TorchResult> {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const put = (a: Float32Array | Int32Array, shape: readonly number[]) => {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(bytes);
    const entry = { offset, bytes: bytes.byteLength, shape, dtype: a instanceof Int32Array ? 'int32' : 'float32' };
    offset += bytes.byteLength;
    return entry;
  };
  const manifest = {
    shapes: data.shapes,
    hyper: data.hyper,
    timing,
    threads: 2,
    device,
    frozen: Object.fromEntries(Object.entries(data.frozen).map(([k, a]) => [k, put(a.data, a.shape)])),
    adapters: Object.fromEntries(Object.entries(data.adapters).map(([k, a]) => [k, { U: put(a.U.data, a.U.shape), S: put(a.S.data, a.S.shape), Vt: put(a.Vt.data, a.Vt.shape) }])),
    ids: put(data.ids, [data.ids.length]),
    labels: put(data.labels, [data.labels.length]),
  };
  const dir = await mkdtemp(join(tmpdir(), 'sorsajs-gpt-'));
  try {
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await writeFile(join(dir, 'tensors.bin'), Buffer.concat(chunks));
    const { stdout } = await run(python, [SCRIPT, dir], { env: torchEnv(), maxBuffer: 1 << 20, timeout: 30 * 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop() as string) as TorchResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
