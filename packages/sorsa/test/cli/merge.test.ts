/**
 * `sorsa merge`, driven as a subprocess on the tiny GPT-2: the merged checkpoint's weights against
 * float64 references (W + U S Vt − U0 S0 V0t from a run; W + (α/r) B A from a PEFT folder), its
 * logits against the forward of those reference weights, its files (the base's tokenizer.json and
 * config), and each user error.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadCheckpoint } from '@sorsajs/sorsa';
import { loadPretrained, type Model, type ParamTree } from '@sorsajs/models';
import { additionJsonl, runCli, tempDir, tinyModel } from './fixture.js';
import { EPS32, expectClose, expectUsageError, f32, leavesByPath, lowRankSum, sorsaTuned, type Ref } from './reference.js';

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
  const r = await runCli(['finetune', '--model', gpt2, '--data', data, '--steps', '6', '--seq', '24', '--lr', '1e-2', '--rank', '4', '--backend', 'wasm', '--out', run, '--plain']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

/**
 * Checks a merged checkpoint folder against reference weights: adapted weights within `k` roundings
 * of the float64 reference, every other weight bit-equal to the base's, and the logits of the
 * merged model against the base architecture's forward of the reference weights.
 */
async function checkMerged(dir: string, refs: Map<string, Ref>, k: number): Promise<void> {
  expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
  expect(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(gpt2, 'tokenizer.json'), 'utf8'));
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const baseCfg = JSON.parse(readFileSync(join(gpt2, 'config.json'), 'utf8')) as Record<string, unknown>;
  expect({ ...cfg, torch_dtype: null }).toEqual({ ...baseCfg, torch_dtype: null });
  const base: Model = await loadPretrained(gpt2);
  const merged: Model = await loadPretrained(dir);
  const b = leavesByPath(base.params);
  const m = leavesByPath(merged.params);
  expect([...m.keys()]).toEqual([...b.keys()]);
  for (const [p, t] of m) {
    const got = await t.data();
    const ref = refs.get(p);
    if (ref) expectClose(got, ref, k, p);
    else expect(got, p).toEqual(await b.get(p)!.data());
  }
  // Logits: the merged model against the base architecture running the reference weights.
  const refParams = c.tree.mapWithPath((p, W) => (refs.has(p) ? c.tensor(f32(refs.get(p)!), (W as c.Tensor).shape) : W), base.params) as ParamTree;
  const ids = [[81, 58, 32, 51, 43, 52, 61, 32, 84, 104, 101]];
  const [got, want] = [merged.forward(merged.params, ids), base.forward(refParams, ids)];
  const [g, w] = [await got.data(), await want.data()];
  const scale = Math.max(...Array.from(w, Math.abs));
  // Weights equal to a few ulps; two blocks of sums of 32-128 terms each amplify that by at most
  // the depth of the sums: 1024 ulps of the largest logit.
  let worst = 0;
  for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
  expect(worst).toBeLessThanOrEqual(1024 * EPS32 * scale);
  c.tree.dispose([got, want, merged.params, base.params, [...refs.keys()].map((p) => leavesByPath(refParams).get(p))]);
}

describe('sorsa merge', () => {
  it('a run: the tuned weights W + U S Vt − U0 S0 V0t (float64) in the base layout, loadable, the same logits', async () => {
    const out = join(work, 'merged-run');
    const r = await runCli(['merge', '--model', gpt2, '--adapter', run, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`merged ${run} (sorsa step 6) into ${gpt2}: ${out}\n`);
    const base = await loadPretrained(gpt2);
    const ck = await loadCheckpoint(join(run, 'checkpoints', 'step-0000006.safetensors'));
    const init = await loadCheckpoint(join(run, 'initial.safetensors'));
    const t = ck.trees.trainable as Record<string, unknown>;
    const i0 = init.trees.trainable as Record<string, unknown>;
    const refs = new Map<string, Ref>();
    for (const [p, W] of leavesByPath(base.params)) if (Object.hasOwn(t, p)) refs.set(p, await sorsaTuned(await W.data(), W.shape[0], W.shape[1], t[p], i0[p]));
    expect(refs.size).toBe(8);
    c.tree.dispose([base.params, ck.trees, init.trees]);
    // Rank 4 against 4: W plus two rank-4 products, each summed over 4 terms.
    await checkMerged(out, refs, 32);
  });

  it("a PEFT adapter folder (the run's adapter/): W + (lora_alpha / r) B A in float64", async () => {
    const out = join(work, 'merged-peft');
    const peft = join(run, 'adapter');
    const r = await runCli(['merge', '--model', gpt2, '--adapter', peft, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(peft, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number };
    const file = await c.loadSafetensors(join(peft, 'adapter_model.safetensors'));
    const base = await loadPretrained(gpt2);
    const refs = new Map<string, Ref>();
    for (const [p, W] of leavesByPath(base.params)) {
      const mod = `base_model.model.${p.replace(/\.weight$/, '')}`;
      if (!Object.hasOwn(file, `${mod}.lora_A.weight`)) continue;
      const [A, B] = [file[`${mod}.lora_A.weight`], file[`${mod}.lora_B.weight`]];
      refs.set(p, lowRankSum(await W.data(), W.shape[0], W.shape[1], [{ left: await B.data(), mid: null, right: await A.data(), r: cfg.r, scale: cfg.lora_alpha / cfg.r }]));
    }
    expect(refs.size).toBe(8);
    c.tree.dispose([base.params, file]);
    await checkMerged(out, refs, 32);
  });
});

describe('sorsa merge --help', () => {
  it('shows the options with their defaults, and an example', async () => {
    const r = await runCli(['merge', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const text of ['--backend <name>', 'default: "auto"', 'Example:', 'sorsa merge --model']) expect(r.stdout).toContain(text);
  });
});

describe.concurrent('sorsa merge: user errors (one line naming the flag or file, status 2)', () => {
  it('unknown flag', async () => expectUsageError(await runCli(['merge', '--model', gpt2, '--adapter', run, '--out', join(work, 'x1'), '--bogus']), /unknown option '--bogus'/));
  it('missing --adapter', async () => expectUsageError(await runCli(['merge', '--model', gpt2, '--out', join(work, 'x2')]), /required option '--adapter <path>' not specified/));
  it('--out not empty', async () => {
    const out = join(work, 'full');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'keep.txt'), 'mine');
    expectUsageError(await runCli(['merge', '--model', gpt2, '--adapter', run, '--out', out]), /--out .*full: the folder is not empty/);
    expect(readFileSync(join(out, 'keep.txt'), 'utf8')).toBe('mine');
  });
  it('--out is the model folder', async () => expectUsageError(await runCli(['merge', '--model', gpt2, '--adapter', run, '--out', gpt2]), /--out .*: is the --model folder/));
  it('missing --model folder', async () => expectUsageError(await runCli(['merge', '--model', join(work, 'none'), '--adapter', run, '--out', join(work, 'x3')]), /--model .*none: no such directory/));
  it('--adapter that is a model folder, not a run', async () =>
    expectUsageError(await runCli(['merge', '--model', gpt2, '--adapter', llama, '--out', join(work, 'x4'), '--backend', 'wasm']), /--adapter .*: not a run folder of sorsa finetune \(no run\.json\)/));
  it('an adapter of the GPT-2 on the Llama, and nothing written', async () => {
    const out = join(work, 'x5');
    expectUsageError(await runCli(['merge', '--model', llama, '--adapter', run, '--out', out, '--backend', 'wasm']), /--adapter: the adapter has weight "transformer\.h\.0\.attn\.c_attn\.weight", which the model does not/);
    expect(() => readdirSync(out)).toThrow(/ENOENT/);
  });
});
