/**
 * GPT-2 small (124M: vocab 50257, width 768, 12 layers, 12 heads, 1024 positions) in
 * `@sorsajs/models` beside a plain PyTorch GPT-2 (issue #11): the forward pass over one prompt of
 * 128 tokens (logits read back), the greedy decode rate with the key/value cache (32
 * one-position passes after that prompt, each one's next token read back, as `generate` does), and
 * one SORSA fine-tuning step on one sequence of 128 tokens (rank-8 adapters on every linear layer
 * of the blocks, AdamW, clipping and the regularizer: the gpt suite's step at GPT-2 small's shapes,
 * its PyTorch peer `peers/gpt_step.py` checked the same way, step-0 loss and gradient norm first;
 * both sides compute each adapted layer factored, as PEFT does and as sorsajs's `factoredParams`
 * does wherever that is cheaper, which at these shapes it is).
 *
 * The weights are createModel's (seed 0), saved with savePretrained to a temporary checkpoint
 * directory; the PyTorch peer (`peers/gpt2_forward.py`, no transformers) reads that directory
 * itself, Conv1D layout and all. Before any timing the suite compares the two forward passes' logits
 * (the largest absolute difference, and the first and last tokens' top-5) and reports the greedy
 * tokens both decode; a peer whose logits differ by more than 1e-3 or whose top-5 differ is
 * FAILED and left out. Without torch the suite prints a loud SKIPPED line and times sorsajs alone.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import * as sj from '@sorsajs/core';
import { createModel, forwardWithCache, nextToken, savePretrained, type KvCache } from '@sorsajs/models';
import type { Row } from '../report.js';
import { runBench } from '../progress.js';
import type { SuiteOptions } from './matmul.js';
import { findTorchPython } from '../peers/torch-python.js';
import { torchGpt, type GptTiming } from '../peers/gpt-torch.js';
import type { GptStepShapes } from '../peers/gpt-data.js';
import { judge, prepareGptStep, PROBE_COLUMNS, PROBE_HEADER } from './gpt-step.js';
import { torchGpt2, type TorchGpt2Result } from '../peers/gpt2-torch.js';

/**
 * GPT-2 small's config.json fields (transformers' `gpt2`), as `createModel` takes them.
 *
 * @example
 * ```ts
 * const model = createModel(GPT2_SMALL, random.key(0)); // 124M parameters
 * ```
 */
export const GPT2_SMALL: Readonly<Record<string, string | number>> = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };

/** The prompt's length and the decode steps timed after it. */
const PROMPT = 128;
const STEPS = 32;
/** How far the peer's logits may be from ours (absolute; they are O(1)): float32 sums in another order. */
const LOGIT_TOL = 1e-3;

/** The training step's shapes: GPT-2 small, one sequence of `PROMPT` tokens, rank 8. */
const STEP_SHAPES: GptStepShapes = { vocab: 50257, width: 768, heads: 12, layers: 12, positions: 1024, seq: PROMPT, batch: 1, rank: 8, factored: true };

const FORWARD_CASE = `gpt2-124M forward 1x${PROMPT}`;
const DECODE_CASE = `gpt2-124M greedy decode ${STEPS} tokens after ${PROMPT}`;
const STEP_CASE = `gpt2-124M SORSA step 1x${PROMPT} r${STEP_SHAPES.rank}`;

/** The indices of the k largest values of `row`, largest first. */
function topK(row: Float32Array, k: number): number[] {
  return [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, k);
}

/**
 * Times GPT-2 small's forward pass at 1 x 128 and 32 greedy decode steps with the key/value cache,
 * in sorsajs and (when a Python imports torch) in a plain PyTorch GPT-2 on the same saved weights.
 * The decode rows carry `rate` in tokens/s; `detail` holds the logits check.
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * console.log(markdown(await modelsSuite({ time: 5000 }), 'PyTorch'));
 * ```
 */
export async function modelsSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const model = createModel(GPT2_SMALL, sj.random.key(0));
  const V = model.config.vocabSize;
  const ids = Array.from({ length: PROMPT }, (_, t) => (t * 15485863 + 7919) % V);
  const x = sj.tensor(Int32Array.from(ids), [1, PROMPT], 'int32');
  const ours = `sorsajs (${sj.backend()})`;
  const timing: GptTiming = { time: opts.time ?? 5000, iterations: 5, warmupTime: 0, warmupIterations: 1 };
  const rows: Row[] = [];
  const loud: string[] = [];
  const checks: string[] = [];

  // Our logits and greedy tokens, the reference of the check.
  const prefill = forwardWithCache(model.config, model.params, x, null);
  const cache0: KvCache = prefill.cache;
  const lastRow = (logits: sj.Tensor): sj.Tensor => {
    const T = logits.shape[1];
    return sj.reshape(sj.slice(logits, [0, T - 1, 0], [1, 1, V]), [1, V]);
  };
  const first = sj.tidy(() => nextToken(lastRow(prefill.logits)));
  const ourLogits = (await prefill.logits.data()) as Float32Array;
  const firstId = (await first.data())[0];
  first.dispose();
  /** `STEPS` one-position passes after the prompt's cache, greedy, each next id read back; returns the ids. */
  const decode = async (): Promise<number[]> => {
    let tok = firstId;
    let cache = cache0;
    const out: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const input = sj.tensor(Int32Array.of(tok), [1, 1], 'int32');
      const r = forwardWithCache(model.config, model.params, input, cache);
      const next = sj.tidy(() => nextToken(lastRow(r.logits)));
      tok = (await next.data())[0];
      out.push(tok);
      sj.tree.dispose([input, next, r.logits, cache === cache0 ? null : cache]);
      cache = r.cache;
    }
    sj.tree.dispose(cache === cache0 ? null : cache);
    return out;
  };
  const ourTokens = [firstId, ...(await decode())];

  // PyTorch first, in its own process, while this one is idle; it reads the checkpoint we save.
  const py = await findTorchPython();
  if ('skipped' in py) loud.push(`!!! models: PyTorch SKIPPED: ${py.skipped}`);
  else {
    const dir = await mkdtemp(join(tmpdir(), 'sorsajs-models-'));
    try {
      await savePretrained(model, model.params, dir);
      let r: TorchGpt2Result | undefined;
      try {
        r = await torchGpt2(dir, ids, STEPS, timing, py.python);
      } catch (e) {
        loud.push(`!!! models: PyTorch FAILED (${py.python} ${(e as Error).message.split('\n')[0]}): its rows are left out`);
      }
      if (r) {
        const impl = `PyTorch ${r.torch} (CPU, ${r.blas}, ${r.threads} threads)`;
        let maxDiff = 0;
        for (let i = 0; i < ourLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ourLogits[i] - r.logits[i]));
        if (r.logits.length !== ourLogits.length) maxDiff = Infinity;
        const tops = [0, PROMPT - 1].map((t) => [ourLogits, r.logits].map((l) => topK(l.subarray(t * V, (t + 1) * V), 5)));
        const topOk = tops.every(([a, b]) => a.join() === b.join());
        const same = ourTokens.findIndex((t, i) => t !== r.tokens[i]);
        const agree = same === -1 ? ourTokens.length : same;
        const ok = maxDiff <= LOGIT_TOL && topOk;
        checks.push(
          `| ${impl} | ${maxDiff.toExponential(2)} | ${tops[0][1].join(' ')} | ${tops[1][1].join(' ')} | ${agree} of ${ourTokens.length} | ${ok ? 'ok' : 'FAIL'} |`,
        );
        const detail = { maxAbsLogitDiff: maxDiff, top5: topOk ? 'same' : 'different', greedyAgree: agree, check: ok ? 'ok' : 'FAIL' };
        if (!ok) loud.push(`!!! models: ${impl} FAILED the logits check against ${ours} (max |diff| ${maxDiff}, top-5 ${topOk ? 'same' : 'different'}): its rows are left out`);
        else {
          rows.push({ case: FORWARD_CASE, impl, medianMs: r.forward.medianMs, samples: r.forward.samples, detail });
          rows.push({ case: DECODE_CASE, impl, medianMs: r.decode.medianMs, samples: r.decode.samples, rate: STEPS / (r.decode.medianMs / 1000), unit: 'tokens/s', detail });
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  checks.unshift(`| ${ours} | - | ${topK(ourLogits.subarray(0, V), 5).join(' ')} | ${topK(ourLogits.subarray((PROMPT - 1) * V), 5).join(' ')} | ${ourTokens.slice(0, 8).join(' ')} ... | - |`);

  const bench = new Bench(timing);
  bench.add(`${FORWARD_CASE} | ${ours}`, async () => {
    const logits = model.forward(model.params, x);
    await logits.data();
    logits.dispose();
  });
  bench.add(`${DECODE_CASE} | ${ours}`, async () => {
    await decode();
  });
  await runBench(bench);
  for (const task of bench.tasks) {
    const r = task.result;
    if (!r || r.state !== 'completed') throw new Error(`bench: task "${task.name}" did not complete (${r?.state})`);
    const [caseName] = task.name.split(' | ');
    const row: Row = { case: caseName, impl: ours, medianMs: r.latency.p50, samples: r.latency.samplesCount };
    if (caseName === DECODE_CASE) {
      row.rate = STEPS / (row.medianMs / 1000);
      row.unit = 'tokens/s';
    }
    rows.push(row);
  }
  sj.tree.dispose([prefill.logits, cache0, x, model.params]);
  rows.push(...(await stepRows(opts, py, ours, loud)));

  console.log(`\n## models logits check (1 x ${PROMPT} tokens; max |logit difference| over all ${PROMPT} x ${V}, to ${LOGIT_TOL}; top-5 ids of the first and last token must be equal)\n`);
  console.log('| impl | max abs diff | top-5, token 0 | top-5, last token | greedy tokens agreeing | check |\n| --- | --- | --- | --- | --- | --- |');
  console.log(checks.join('\n'));
  for (const line of loud) console.log(`\n${line}`);
  // Each case's rows together, sorsajs first.
  const order = (r: Row) => (r.case === FORWARD_CASE ? 0 : r.case === DECODE_CASE ? 2 : 4) + (r.impl === ours ? 0 : 1);
  return rows.sort((a, b) => order(a) - order(b));
}

/**
 * The training step's rows: sorsajs's SORSA step at STEP_SHAPES, and PyTorch's (`peers/gpt_step.py`
 * on the same exported weights and batch) when `py` found one and its step-0 loss and gradient norm
 * match ours. Prints the step-0 check table; adds a loud line to `loud` when the peer is left out.
 */
async function stepRows(opts: SuiteOptions, py: Awaited<ReturnType<typeof findTorchPython>>, ours: string, loud: string[]): Promise<Row[]> {
  const run = await prepareGptStep(STEP_SHAPES);
  const rows: Row[] = [];
  try {
    // A step takes seconds here: a few samples, after the three steps prepareGptStep ran.
    const timing: GptTiming = { time: opts.time ?? 5000, iterations: 3, warmupTime: 0, warmupIterations: 0 };
    const checks = [judge(ours, run.probe, run.probe).line];
    if (!('skipped' in py)) {
      try {
        const r = await torchGpt(run.data, timing, py.python);
        const impl = `PyTorch ${r.torch} (CPU, ${r.blas}, ${r.threads} threads)`;
        const j = judge(impl, r.probe, run.probe);
        checks.push(j.line);
        if (j.ok) rows.push({ case: STEP_CASE, impl, medianMs: r.step.medianMs, samples: r.step.samples, detail: j.detail });
        else loud.push(`!!! models: ${impl} FAILED the step-0 check against ${ours}: its step row is left out`);
      } catch (e) {
        loud.push(`!!! models: PyTorch's step FAILED (${py.python} ${(e as Error).message.split('\n')[0]}): its step row is left out`);
      }
    }
    const bench = new Bench(timing);
    bench.add(STEP_CASE, run.step);
    await runBench(bench);
    const r = bench.tasks[0].result;
    if (!r || r.state !== 'completed') throw new Error(`bench: task "${STEP_CASE}" did not complete (${r?.state})`);
    rows.push({ case: STEP_CASE, impl: ours, medianMs: r.latency.p50, samples: r.latency.samplesCount, detail: { ...judge(ours, run.probe, run.probe).detail, launchesPerStep: run.launchesPerStep } });
    console.log(`\n## models ${PROBE_HEADER}\n`);
    console.log(PROBE_COLUMNS);
    console.log(checks.join('\n'));
    console.log(`\n${ours}: ${run.launchesPerStep} kernel launches per step`);
  } finally {
    run.dispose();
  }
  return rows;
}
