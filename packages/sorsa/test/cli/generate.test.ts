/**
 * `sorsa generate`, driven as a subprocess on the tiny GPT-2: greedy text against a greedy loop
 * written here (full forward passes, argmax on the host), with an adapter against the same loop on
 * float64-reference tuned weights, seeded sampling, and each user error.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadCheckpoint } from '@sorsajs/sorsa';
import { loadPretrained, type Model, type ParamTree } from '@sorsajs/models';
import { additionJsonl, runCli, tempDir, tinyModel } from './fixture.js';
import { byteIds, EOS, expectUsageError, f32, leavesByPath, sorsaTuned } from './reference.js';

let gpt2: string;
let llama: string;
let work: string;
let run: string;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  [gpt2, llama] = [await tinyModel('gpt2'), await tinyModel('llama')];
  work = tempDir();
  const data = additionJsonl(join(work, 'train.jsonl'));
  run = join(work, 'run');
  const r = await runCli(['finetune', '--model', gpt2, '--data', data, '--steps', '6', '--seq', '24', '--lr', '1e-2', '--backend', 'wasm', '--out', run, '--plain']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

/** Greedy decoding by full forward passes and a host argmax: the ids after the prompt, EOS dropped. */
async function greedy(model: Model, params: ParamTree, prompt: string, maxNew: number): Promise<number[]> {
  const ids = byteIds(prompt);
  const out: number[] = [];
  for (let s = 0; s < maxNew; s++) {
    const logits = model.forward(params, [ids]);
    const v = await logits.data();
    logits.dispose();
    const V = 257;
    const row = v.subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let k = 1; k < V; k++) if (row[k] > row[best]) best = k;
    if (best === EOS) break;
    ids.push(best);
    out.push(best);
  }
  return out;
}

/** The text of byte ids, as a byte-level tokenizer decodes them. */
const text = (ids: number[]): string => new TextDecoder().decode(Uint8Array.from(ids));

describe('sorsa generate', () => {
  const prompt = 'Q: 3+4=';

  it('greedy by default: the argmax continuation, without the prompt, on one line of stdout', async () => {
    const r = await runCli(['generate', '--model', gpt2, '--prompt', prompt, '--max-new-tokens', '12', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const model = await loadPretrained(gpt2);
    const want = text(await greedy(model, model.params, prompt, 12));
    c.tree.dispose(model.params);
    expect(r.stdout).toBe(`${want}\n`);
  });

  it('with --adapter RUN: greedy on the tuned weights W + U S Vt − U0 S0 V0t (float64, rounded to float32)', async () => {
    const r = await runCli(['generate', '--model', gpt2, '--adapter', run, '--prompt', prompt, '--max-new-tokens', '12', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const model = await loadPretrained(gpt2);
    const ck = await loadCheckpoint(join(run, 'checkpoints', 'step-0000006.safetensors'));
    const init = await loadCheckpoint(join(run, 'initial.safetensors'));
    const trainable = ck.trees.trainable as Record<string, unknown>;
    const initial = init.trees.trainable as Record<string, unknown>;
    const base = leavesByPath(model.params);
    const tuned = new Map<string, c.Tensor>();
    for (const p of Object.keys(trainable)) {
      const W = base.get(p)!;
      tuned.set(p, c.tensor(f32(await sorsaTuned(await W.data(), W.shape[0], W.shape[1], trainable[p], initial[p])), W.shape));
    }
    const params = c.tree.mapWithPath((p, W) => tuned.get(p) ?? W, model.params) as ParamTree;
    const want = text(await greedy(model, params, prompt, 12));
    expect(r.stdout).toBe(`${want}\n`);
    c.tree.dispose([model.params, [...tuned.values()], ck.trees, init.trees]);
  });

  it('sampling: a seed gives the same text every time; --top-k 1 is greedy', async () => {
    const args = ['generate', '--model', gpt2, '--prompt', prompt, '--max-new-tokens', '10', '--temperature', '1', '--backend', 'wasm'];
    const [a, b, top1, greedyText, byDefault] = await Promise.all([
      runCli([...args, '--seed', '3']),
      runCli([...args, '--seed', '3']),
      runCli([...args, '--top-k', '1', '--seed', '5']),
      runCli(['generate', '--model', gpt2, '--prompt', prompt, '--max-new-tokens', '10', '--backend', 'wasm']),
      // The default --max-new-tokens 64 does not fit the tiny model's 64 positions: it stops at the end.
      runCli(['generate', '--model', gpt2, '--prompt', prompt, '--backend', 'wasm']),
    ]);
    for (const r of [a, b, top1, greedyText, byDefault]) expect(r.code, r.stderr).toBe(0);
    expect(byDefault.stdout.startsWith(greedyText.stdout.slice(0, -1))).toBe(true);
    expect(a.stdout).toBe(b.stdout);
    expect(top1.stdout).toBe(greedyText.stdout);
  });
});

describe('sorsa generate --help', () => {
  it('shows the options with their defaults, and an example', async () => {
    const r = await runCli(['generate', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const text of ['--max-new-tokens <n>', '(default: 64)', 'Example:', 'sorsa generate --model']) expect(r.stdout).toContain(text);
    // --max-new-tokens: the default, and when it shrinks, said without contradicting each other.
    expect(r.stdout.replace(/\s+/g, ' ')).toContain("tokens to add at most; when not given, fewer if the model's context ends first (a value given that does not fit is an error) (default: 64)");
  });
});

describe.concurrent('sorsa generate: user errors (one line naming the flag or file, status 2)', () => {
  const g = (extra: string[]): string[] => ['generate', '--model', gpt2, '--prompt', 'Q: 1+1=', ...extra];
  it('unknown flag', async () => expectUsageError(await runCli(g(['--bogus', '1'])), /unknown option '--bogus'/));
  it('missing --prompt', async () => expectUsageError(await runCli(['generate', '--model', gpt2]), /required option '--prompt <text>' not specified/));
  it('empty --prompt', async () => expectUsageError(await runCli(['generate', '--model', gpt2, '--prompt', '']), /--prompt: empty/));
  it('bad --temperature', async () => expectUsageError(await runCli(g(['--temperature', '-1'])), /--temperature.*-1/));
  it('bad --top-k', async () => expectUsageError(await runCli(g(['--top-k', '0'])), /--top-k.*0/));
  it('--top-k without a temperature', async () => expectUsageError(await runCli(g(['--top-k', '4', '--backend', 'wasm'])), /--top-k: only with --temperature above 0/));
  it('--max-new-tokens beyond the context', async () =>
    expectUsageError(await runCli(g(['--max-new-tokens', '60', '--backend', 'wasm'])), /--max-new-tokens 60: the prompt's 7 tokens plus 60 new ones exceed the model's 64 positions; use at most 57/));
  it('a prompt that fills the context', async () => expectUsageError(await runCli(['generate', '--model', gpt2, '--prompt', 'x'.repeat(64), '--backend', 'wasm']), /--prompt: its 64 tokens fill the model's 64 positions/));
  it('missing --model folder', async () => expectUsageError(await runCli(['generate', '--model', join(work, 'none'), '--prompt', 'x']), /--model .*none: no such directory/));
  it('missing --adapter path', async () => expectUsageError(await runCli(g(['--adapter', join(work, 'gone')])), /--adapter .*gone: no such file or directory/));
  it('an adapter of the GPT-2 on the Llama', async () =>
    expectUsageError(await runCli(['generate', '--model', llama, '--adapter', run, '--prompt', 'x', '--backend', 'wasm']), /--adapter: the adapter has weight "transformer\.h\.0\.attn\.c_attn\.weight", which the model does not/));
  it('a bad --backend', async () => expectUsageError(await runCli(g(['--backend', 'tpu'])), /--backend.*tpu/));
});
