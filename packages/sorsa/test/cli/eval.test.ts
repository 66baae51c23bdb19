/**
 * `sorsa eval`, driven as a subprocess on the tiny GPT-2: the completion-only loss against a float64
 * cross-entropy of the model's logits with the masking rebuilt from the bytes, the adapter's loss
 * against the one training reported on the same data, exact match on a model trained to answer 5,
 * `--json`/`--out`, and each user error.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadPretrained } from '@sorsajs/models';
import { additionJsonl, runCli, tempDir, tinyModel } from './fixture.js';
import { byteIds, EOS, EPS32, expectUsageError, narrowGpt2 } from './reference.js';

let gpt2: string;
let llama: string;
let narrow: string;
let work: string;
let held: string;
let run: string;
let taught: string;
let mixed: string;

const SEQ = 24;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  [gpt2, llama, narrow] = [await tinyModel('gpt2'), await tinyModel('llama'), await narrowGpt2()];
  work = tempDir();
  const train = additionJsonl(join(work, 'train.jsonl'));
  held = additionJsonl(join(work, 'held.jsonl'), 8, 100);
  // A model taught one answer: every completion is " 5" (full fine-tuning of the blocks' linear
  // layers, --targets narrowing it from every weight, at a high constant lr).
  const five = join(work, 'five.jsonl');
  writeFileSync(five, Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `Q: ${i % 13}+${i % 3}=`, completion: ' 5' })).join('\n'));
  mixed = join(work, 'mixed.jsonl');
  const refs = [' 5', ' The answer is 1,234.', ' It is 5.', ' 6', ' five', ' 5.0'];
  // Prompts of two lengths (7 and 8 bytes): two groups of generation.
  writeFileSync(mixed, refs.map((r, i) => JSON.stringify({ prompt: `Q: ${2 * i}+${i % 3}=`, completion: r })).join('\n'));
  run = join(work, 'run');
  taught = join(work, 'taught');
  const common = ['--steps', '6', '--batch', '4', '--backend', 'wasm', '--plain'];
  const [a, b] = await Promise.all([
    runCli(['finetune', '--model', gpt2, '--data', train, '--eval-data', held, '--seq', String(SEQ), '--lr', '1e-2', '--out', run, ...common]),
    runCli(['finetune', '--model', gpt2, '--data', five, '--method', 'full', '--targets', 'attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj', '--seq', '12', '--lr', '3e-2', '--schedule', 'constant', '--warmup', '0', '--clip', '0', '--out', taught, ...common, '--steps', '16']),
  ]);
  expect(a.code, a.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);
}, 120_000);

/** The completion-only mean cross-entropy in float64 from the model's logits; ids are bytes here. */
async function referenceLoss(file: string, seq: number): Promise<{ loss: number; tokens: number }> {
  const model = await loadPretrained(gpt2);
  let total = 0;
  let tokens = 0;
  for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')) {
    const { prompt, completion } = JSON.parse(line) as { prompt: string; completion: string };
    const ids = [...byteIds(prompt + completion), EOS].slice(0, seq + 1);
    const promptLength = byteIds(prompt).length;
    const input = Array.from({ length: seq }, (_, j) => (j < ids.length - 1 ? ids[j] : EOS));
    const logits = model.forward(model.params, [input]);
    const v = await logits.data();
    logits.dispose();
    const V = 257;
    // Position j predicts ids[j + 1], with a loss when that is a completion token.
    for (let j = 0; j + 1 < ids.length; j++) {
      if (j + 1 < promptLength) continue;
      let mx = -Infinity;
      for (let k = 0; k < V; k++) mx = Math.max(mx, v[j * V + k]);
      let s = 0;
      for (let k = 0; k < V; k++) s += Math.exp(v[j * V + k] - mx);
      total += mx + Math.log(s) - v[j * V + ids[j + 1]];
      tokens++;
    }
  }
  c.tree.dispose(model.params);
  return { loss: total / tokens, tokens };
}

describe('sorsa eval', () => {
  it('the loss is the token-weighted cross-entropy on completion tokens (float64 reference); --json', async () => {
    const r = await runCli(['eval', '--model', gpt2, '--data', held, '--seq', String(SEQ), '--batch', '3', '--backend', 'wasm', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { loss: number; tokens: number; records: number; seq: number; dropped: number; adapter: null };
    const want = await referenceLoss(held, SEQ);
    expect(got.tokens).toBe(want.tokens);
    expect(got.records).toBe(8);
    expect(got.seq).toBe(SEQ);
    expect(got.dropped).toBe(0);
    expect(got.adapter).toBeNull();
    // float32 logits and log-sum-exp over 257 classes, summed over the tokens: a few hundred ulps.
    expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(512 * EPS32 * want.loss);
  });

  it('with --adapter RUN: the loss training reported on the same data; --out writes the JSON and nothing else is written', async () => {
    const cwd = tempDir('sorsa-eval-cwd-');
    const out = join(cwd, 'result.json');
    const r = await runCli(['eval', '--model', gpt2, '--adapter', run, '--data', held, '--seq', String(SEQ), '--backend', 'wasm', '--out', out], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^loss \d+\.\d{4} on 8 records \(\d+ tokens, seq 24\)\n$/);
    expect(readdirSync(cwd)).toEqual(['result.json']);
    const got = JSON.parse(readFileSync(out, 'utf8')) as { loss: number; adapter: string };
    expect(got.adapter).toBe(run);
    // Training evaluated merge(trainable, residual); eval applies the adapter to the base weights
    // (W + U S Vt − U0 S0 V0t): equal up to float32 rounding of the two routes.
    const report = JSON.parse(readFileSync(join(run, 'report.json'), 'utf8')) as { evalLoss: number };
    expect(Math.abs(got.loss - report.evalLoss)).toBeLessThanOrEqual(1e-4 * report.evalLoss);
    // Without --out, nothing is written.
    const cwd2 = tempDir('sorsa-eval-cwd-');
    expect((await runCli(['eval', '--model', gpt2, '--data', held, '--limit', '2', '--backend', 'wasm'], { cwd: cwd2 })).code).toBe(0);
    expect(readdirSync(cwd2)).toEqual([]);
  });

  it('--metric exact-match: greedy answers graded by their final number (a model taught to answer " 5")', async () => {
    const r = await runCli(['eval', '--model', gpt2, '--adapter', taught, '--data', mixed, '--metric', 'exact-match', '--max-new-tokens', '4', '--backend', 'wasm', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { exactMatch: { correct: number; total: number; accuracy: number; predictions: { generated: string; expected: number | null; got: number | null; correct: boolean }[] } };
    const em = got.exactMatch;
    // The taught model answers 5 (the byte before it varies with the training's rounding: ' 5', '$5').
    for (const p of em.predictions) expect(p.generated).toMatch(/^\D{0,3}5$/);
    expect(em.predictions.map((p) => p.got)).toEqual(Array(6).fill(5));
    // References ' 5', '1,234', 'It is 5.', ' 6', ' five', ' 5.0': the answer 5 matches 1, 3 and 6.
    expect(em.predictions.map((p) => p.expected)).toEqual([5, 1234, 5, 6, null, 5]);
    expect(em.predictions.map((p) => p.correct)).toEqual([true, false, true, false, false, true]);
    expect([em.correct, em.total, em.accuracy]).toEqual([3, 6, 0.5]);
    // One prompt at a time (--batch 1) generates what the batch of six did.
    const out = join(work, 'one-by-one.json');
    const human = await runCli(['eval', '--model', gpt2, '--adapter', taught, '--data', mixed, '--metric', 'exact-match', '--max-new-tokens', '4', '--limit', '2', '--batch', '1', '--out', out, '--backend', 'wasm']);
    expect(human.stdout).toMatch(/^loss \d+\.\d{4} on 2 records \(\d+ tokens, seq \d+\); exact match 1\/2 = 50\.0%\n$/);
    const single = JSON.parse(readFileSync(out, 'utf8')) as typeof got;
    expect(single.exactMatch.predictions).toEqual(em.predictions.slice(0, 2));
  });
});

describe('sorsa eval --help', () => {
  it('shows the options with their defaults, and an example', async () => {
    const r = await runCli(['eval', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const text of ['--batch <n>', '(default: 8)', 'Example:', 'sorsa eval --model']) expect(r.stdout).toContain(text);
  });
});

describe.concurrent('sorsa eval: user errors (one line naming the flag or file, status 2)', () => {
  it('unknown flag', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', held, '--bogus']), /unknown option '--bogus'/));
  it('bad --batch', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', held, '--batch', '0']), /--batch.*0/));
  it('bad --metric', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', held, '--metric', 'f1']), /--metric.*f1/));
  it('missing --data file', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', join(work, 'nope.jsonl')]), /--data .*nope\.jsonl: no such file/));
  it('missing --model folder', async () => expectUsageError(await runCli(['eval', '--model', join(work, 'nomodel'), '--data', held]), /--model .*nomodel: no such directory/));
  it('exact-match on plain text', async () => {
    const txt = join(work, 'plain.txt');
    writeFileSync(txt, 'Call me Ishmael. Some years ago, never mind how long precisely.');
    expectUsageError(await runCli(['eval', '--model', gpt2, '--data', txt, '--metric', 'exact-match', '--backend', 'wasm']), /--metric exact-match: --data .*plain\.txt must be a \.jsonl file/);
  });
  it('--seq beyond the context', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', held, '--seq', '100', '--backend', 'wasm']), /--seq 100: the model takes at most 64 positions/));
  it('--out in a missing folder', async () => expectUsageError(await runCli(['eval', '--model', gpt2, '--data', held, '--out', join(work, 'no', 'r.json')]), /--out .*r\.json: the folder .* does not exist/));
  it('an adapter of the GPT-2 on the Llama', async () => expectUsageError(await runCli(['eval', '--model', llama, '--adapter', run, '--data', held, '--backend', 'wasm']), /--adapter: the adapter has weight "transformer\.h\.0\.attn\.c_attn\.weight", which the model does not/));
  it('an adapter of the GPT-2 on a GPT-2 of another width', async () =>
    expectUsageError(await runCli(['eval', '--model', narrow, '--adapter', run, '--data', held, '--backend', 'wasm']), /--adapter: the adapter's "transformer\.h\.0\.attn\.c_attn\.weight" is for a \[96,32\] weight, the model's is \[48,16\]/));
  it('--adapter that is not a run or a PEFT folder', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    expect(existsSync(empty)).toBe(true);
    expectUsageError(await runCli(['eval', '--model', gpt2, '--adapter', empty, '--data', held, '--backend', 'wasm']), /--adapter .*empty: not a run folder of sorsa finetune/);
  });
  it('--adapter a file of a run that is not a checkpoint, or a file elsewhere', async () => {
    expectUsageError(
      await runCli(['eval', '--model', gpt2, '--adapter', join(run, 'metrics.jsonl'), '--data', held, '--backend', 'wasm']),
      /--adapter .*metrics\.jsonl: a file of the run folder .*run, not a checkpoint; give the run folder \(its newest checkpoint\) or one of its checkpoints\/step-NNNNNNN\.safetensors files/,
    );
    expectUsageError(await runCli(['eval', '--model', gpt2, '--adapter', held, '--data', held, '--backend', 'wasm']), /--adapter .*: not a checkpoint of sorsa finetune \(<run>\/checkpoints\/step-NNNNNNN\.safetensors\)/);
  });
});
