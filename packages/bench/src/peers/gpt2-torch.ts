/**
 * PyTorch (CPU) as the peer of the models suite: `peers/gpt2_forward.py`, a plain GPT-2 in torch
 * (no transformers) that reads the checkpoint directory sorsajs's savePretrained wrote, run by a
 * Python that imports torch. It writes the logits of its forward pass for the suite to compare, and
 * times the forward pass and a run of greedy decode steps over its key/value cache.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { GptTiming } from './gpt-torch.js';
import { torchEnv } from './torch-python.js';

const run = promisify(execFile);

/** The script, from dist/peers/ or src/peers/ (both two levels below the package root). */
const SCRIPT = fileURLToPath(new URL('../../peers/gpt2_forward.py', import.meta.url));

/**
 * What the PyTorch GPT-2 reported.
 *
 * @example
 * ```ts
 * const r = await torchGpt2(dir, ids, 32, timing, '/usr/bin/python3');
 * console.log(r.forward.medianMs, r.tokens.slice(0, 5));
 * ```
 */
export interface TorchGpt2Result {
  readonly torch: string;
  readonly blas: string;
  readonly threads: number;
  /** The prompt's greedy token, then the `steps` tokens of the decode run. */
  readonly tokens: number[];
  /** The forward pass's logits, float32 `[1, T, vocab]`. */
  readonly logits: Float32Array;
  /** The forward pass over the prompt. */
  readonly forward: { readonly medianMs: number; readonly samples: number };
  /** One run of `steps` one-position passes over the prompt's cache. */
  readonly decode: { readonly medianMs: number; readonly samples: number };
}

/**
 * Runs the PyTorch GPT-2 on the checkpoint in `checkpoint` (2 threads): the forward pass of `ids`
 * (one row) and `steps` greedy decode steps after it, sampled as `timing` says. Rejects when the
 * script fails.
 *
 * @example
 * ```ts
 * const found = await findTorchPython();
 * if ('python' in found) console.log((await torchGpt2(dir, ids, 32, timing, found.python)).blas);
 * ```
 */
export async function torchGpt2(checkpoint: string, ids: readonly number[], steps: number, timing: GptTiming, python: string): Promise<TorchGpt2Result> {
  const dir = await mkdtemp(join(tmpdir(), 'sorsajs-gpt2-torch-'));
  try {
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ checkpoint, ids, steps, timing, threads: 2 }));
    const { stdout } = await run(python, [SCRIPT, dir], { env: torchEnv(), maxBuffer: 1 << 22, timeout: 60 * 60_000 });
    const r = JSON.parse(stdout.trim().split('\n').pop() as string) as Omit<TorchGpt2Result, 'logits'>;
    const bytes = await readFile(join(dir, 'logits.bin'));
    const logits = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return { ...r, logits };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
