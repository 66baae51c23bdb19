/**
 * One SORSA fine-tuning step of a small GPT-2, and its forward pass, at the shapes issue #17
 * measured: vocab 96, width 128, 4 heads, 2 blocks (MLP 512), GELU, pre-LayerNorm, causal
 * attention, 8 sequences of 64 tokens, rank-8 SORSA adapters on every linear layer of the blocks,
 * AdamW, clipping at 1 and the regularizer (gamma 4e-4). The step is `makeTrainStep`'s, from
 * adapters to updated adapters, and it is timed until the loss is read back (the one value a
 * training loop reads).
 *
 * Its peers compute the same step beside it, in the same run: tfjs-wasm and jax-js (jit; on
 * webgpu when sorsajs is, else wasm) in this process, PyTorch (CPU, and CUDA too when sorsajs runs
 * on webgpu and torch sees a GPU) in a Python child when one imports torch. Each starts from sorsajs's
 * initial adapters, residuals and batch, exported to it, and its first step's loss must match
 * sorsajs's to 1e-5 (relative) before its times are reported: an unequal step is not a comparison.
 * @module
 */
import { Bench } from 'tinybench';
import * as sj from '@sorsajs/core';
import { rowsOf, type Row } from '../report.js';
import { runBench } from '../progress.js';
import type { GptPeer, GptStepData, GptStepShapes } from '../peers/gpt-data.js';
import { tfjsGpt } from '../peers/gpt-tfjs.js';
import { jaxGpt } from '../peers/gpt-jax.js';
import { findTorchPython, torchGpt, type GptTiming } from '../peers/gpt-torch.js';
import { judge, prepareGptStep, PROBE_COLUMNS, PROBE_HEADER } from './gpt-step.js';
import type { SuiteOptions } from './matmul.js';

export type { GptStepShapes } from '../peers/gpt-data.js';

/**
 * Issue #17's shapes.
 *
 * @example
 * ```ts
 * GPT_STEP.batch * GPT_STEP.seq; // 512 tokens a step
 * ```
 */
export const GPT_STEP: GptStepShapes = { vocab: 96, width: 128, heads: 4, layers: 2, seq: 64, batch: 8, rank: 8 };

const STEP_CASE = `SORSA step gpt2 d${GPT_STEP.width} L${GPT_STEP.layers} b${GPT_STEP.batch}x${GPT_STEP.seq} r${GPT_STEP.rank}`;
const FORWARD_CASE = `forward gpt2 d${GPT_STEP.width} L${GPT_STEP.layers} b${GPT_STEP.batch}x${GPT_STEP.seq}`;

/**
 * Times the SORSA step and the forward pass of the small GPT-2 in sorsajs and its peers, one row
 * per implementation and case (`Row.detail` holds each one's step-0 loss, task-gradient norm, loss
 * after one step and check). Prints the step-0 check as a table, and one line for each peer that
 * is skipped (PyTorch when no Python imports torch) or fails the check (its rows are left out).
 *
 * @example
 * ```ts
 * const rows = await gptSuite({ time: 3000 });
 * console.log(markdown(rows, `sorsajs (${sj.backend()})`));
 * ```
 */
export async function gptSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const run = await prepareGptStep(GPT_STEP);
  const { data, probe: ref, launchesPerStep, transfersPerStep: moved } = run;
  const ours = `sorsajs (${sj.backend()})`;

  const timing: GptTiming = { time: opts.time ?? 5000, iterations: 64, warmupTime: 1000, warmupIterations: 16 };
  const checks = [judge(ours, ref, ref).line];
  const details = new Map<string, Record<string, number | string>>([[ours, { ...judge(ours, ref, ref).detail, launchesPerStep }]]);
  const loud: string[] = [];
  const extra: Row[] = [];

  // PyTorch first, in its own process, while this one is idle (its 2 threads get both cores). Beside
  // sorsajs on webgpu it runs on CUDA too, where torch sees a GPU: the GPU peer of a GPU run.
  const onGpu = sj.backend() === 'webgpu';
  const py = await findTorchPython();
  if ('skipped' in py) {
    loud.push(`!!! gpt: PyTorch SKIPPED: ${py.skipped}`);
  } else {
    for (const device of onGpu ? (['cpu', 'cuda'] as const) : (['cpu'] as const)) {
      try {
        const r = await torchGpt(data, timing, py.python, device);
        const impl = device === 'cuda' ? `PyTorch ${r.torch} (CUDA, ${r.device})` : `PyTorch ${r.torch} (CPU, ${r.blas}, ${r.threads} threads)`;
        const j = judge(impl, r.probe, ref);
        checks.push(j.line);
        details.set(impl, j.detail);
        if (!j.ok) loud.push(`!!! gpt: ${impl} FAILED the step-0 check against ${ours}: its rows are left out`);
        else {
          extra.push({ case: STEP_CASE, impl, medianMs: r.step.medianMs, samples: r.step.samples, detail: j.detail });
          extra.push({ case: FORWARD_CASE, impl, medianMs: r.forward.medianMs, samples: r.forward.samples, detail: j.detail });
        }
      } catch (e) {
        // The script's own last words (stderr) say why; the message only repeats the command.
        const why = (e as { stderr?: string }).stderr?.trim().split('\n').pop() || (e as Error).message.split('\n')[0];
        loud.push(`!!! gpt: PyTorch on ${device} FAILED (${py.python}: ${why}): its rows are left out`);
      }
    }
  }

  const bench = new Bench(timing);
  bench.add(`${STEP_CASE} | ${ours}`, run.step);
  bench.add(`${FORWARD_CASE} | ${ours}`, run.forward);
  const peers: GptPeer[] = [];
  // jax-js on the device sorsajs runs on (webgpu beside webgpu, else wasm); tfjs on wasm always.
  const jaxDevice = onGpu ? 'webgpu' : 'wasm';
  const makers: [string, (d: GptStepData) => Promise<GptPeer>][] = [
    ['tfjs-wasm', tfjsGpt],
    ['jax-js', (d) => jaxGpt(d, jaxDevice)],
  ];
  for (const [name, make] of makers) {
    let peer: GptPeer;
    try {
      peer = await make(data);
    } catch (e) {
      // jax-js is a devDependency: a published @sorsajs/bench runs without it.
      const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
      const why = (e as Error).message.split('\n')[0];
      loud.push(missing ? `!!! gpt: ${name} SKIPPED: ${why}` : `!!! gpt: ${name} FAILED to build or run its first steps (${why}): its rows are left out`);
      continue;
    }
    peers.push(peer);
    const j = judge(peer.impl, peer.probe, ref);
    checks.push(j.line);
    details.set(peer.impl, j.detail);
    if (!j.ok) {
      loud.push(`!!! gpt: ${peer.impl} FAILED the step-0 check against ${ours}: its rows are left out`);
      continue;
    }
    bench.add(`${STEP_CASE} | ${peer.impl}`, peer.step);
    bench.add(`${FORWARD_CASE} | ${peer.impl}`, peer.forward);
  }
  await runBench(bench);
  peers.forEach((p) => p.dispose());
  run.dispose();

  console.log(`\n## gpt ${PROBE_HEADER}\n`);
  console.log(PROBE_COLUMNS);
  console.log(checks.join('\n'));
  console.log(`\n${ours}: ${launchesPerStep} kernel launches per step`);
  // On webgpu: what one step moved between host and device (the loss readback is the step's own).
  if (moved) console.log(`${ours}: per step ${moved.reads} host reads (${moved.readBytes} bytes), ${moved.uploads} uploads (${moved.uploadBytes} bytes)`);
  for (const line of loud) console.log(`\n${line}`);
  const rows = [...rowsOf(bench), ...extra].map((r) => ({ ...r, detail: details.get(r.impl) }));
  // Each case's rows together, sorsajs first, as the other suites print them.
  return rows.sort((a, b) => (a.case === b.case ? 0 : a.case === STEP_CASE ? -1 : 1));
}
