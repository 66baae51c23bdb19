/**
 * `sorsa export`, driven as a subprocess on runs of the tiny GPT-2 (SORSA, LoRA, AdaLoRA, full):
 * PEFT folders equal to the ones training wrote and loading (loadPeftAdapter) to the tuned weights
 * of float64 references; the official SORSA file's key names and shapes, its residuals
 * W − U0 S0 V0t, and fromOfficialStateDict + merge giving the tuned weights back; each user error.
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { fromOfficialStateDict, loadCheckpoint, loadPeftAdapter, merge, mergeParams, type Trainable } from '@sorsajs/sorsa';
import { loadPretrained } from '@sorsajs/models';
import { additionJsonl, runCli, tempDir, tinyModel, type CliResult } from './fixture.js';
import { expectClose, expectUsageError, leavesByPath, lowRankSum, narrowGpt2, sorsaTuned, sorsaValues, type Ref } from './reference.js';

let gpt2: string;
let llama: string;
let narrow: string;
let work: string;
const runs: Record<'sorsa' | 'lora' | 'adalora' | 'full' | 'llama', string> = { sorsa: '', lora: '', adalora: '', full: '', llama: '' };
/** A copy of each run's adapter/ as training wrote it (the default-out test overwrites one). */
const written: Record<string, string> = {};

const RANK = 4;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  [gpt2, llama, narrow] = [await tinyModel('gpt2'), await tinyModel('llama'), await narrowGpt2()];
  work = tempDir();
  const data = additionJsonl(join(work, 'train.jsonl'));
  const results = await Promise.all(
    (Object.keys(runs) as (keyof typeof runs)[]).map((method) => {
      runs[method] = join(work, method);
      // 'llama': a SORSA run of the Llama, whose linear layers have no bias, as the official code's.
      const [model, m] = method === 'llama' ? [llama, 'sorsa'] : [gpt2, method];
      return runCli(['finetune', '--model', model, '--data', data, '--method', m, '--rank', String(RANK), '--steps', '6', '--seq', '24', '--lr', '1e-2', '--backend', 'wasm', '--out', runs[method], '--plain']);
    }),
  );
  for (const r of results) expect(r.code, r.stderr).toBe(0);
  for (const m of ['sorsa', 'lora', 'adalora']) cpSync(join(runs[m as 'sorsa'], 'adapter'), (written[m] = join(work, `written-${m}`)), { recursive: true });
}, 180_000);

/** Two PEFT folders hold the same config and bit-identical tensors. */
async function expectSamePeft(a: string, b: string): Promise<void> {
  expect(JSON.parse(readFileSync(join(a, 'adapter_config.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(join(b, 'adapter_config.json'), 'utf8')));
  const [x, y] = [await c.loadSafetensors(join(a, 'adapter_model.safetensors')), await c.loadSafetensors(join(b, 'adapter_model.safetensors'))];
  expect(Object.keys(x).sort()).toEqual(Object.keys(y).sort());
  for (const k of Object.keys(x)) expect(await x[k].data(), k).toEqual(await y[k].data());
  c.tree.dispose([x, y]);
}

/** The tuned weights of a run's newest checkpoint as float64 references, by weight path. */
async function tunedRefs(method: 'sorsa' | 'lora' | 'adalora'): Promise<Map<string, Ref>> {
  const base = await loadPretrained(gpt2);
  const ck = await loadCheckpoint(join(runs[method], 'checkpoints', 'step-0000006.safetensors'));
  const t = ck.trees.trainable as Record<string, Record<string, c.Tensor | number>>;
  const init = method === 'sorsa' ? ((await loadCheckpoint(join(runs[method], 'initial.safetensors'))).trees.trainable as Record<string, unknown>) : null;
  const refs = new Map<string, Ref>();
  for (const [p, W] of leavesByPath(base.params)) {
    if (!Object.hasOwn(t, p)) continue;
    const w = await W.data();
    const [m, n] = W.shape;
    const a = t[p];
    const data = async (k: string): Promise<Float32Array> => (await (a[k] as c.Tensor).data()) as Float32Array;
    const scale = typeof a.scale === 'number' ? a.scale : 1;
    if (method === 'sorsa') refs.set(p, await sorsaTuned(w, m, n, a, init![p]));
    else if (method === 'lora') refs.set(p, lowRankSum(w, m, n, [{ left: await data('B'), mid: null, right: await data('A'), r: RANK, scale }]));
    // AdaLoRA: B diag(E) A, E [r, 1] with the pruned triplets' entries zero.
    else refs.set(p, lowRankSum(w, m, n, [{ left: await data('B'), mid: await data('E'), right: await data('A'), r: (a.E as c.Tensor).shape[0], scale }]));
  }
  c.tree.dispose([base.params, ck.trees, init]);
  return refs;
}

/** loadPeftAdapter(dir) applied to the base gives the references' weights. */
async function expectPeftTunes(dir: string, refs: Map<string, Ref>, k: number): Promise<void> {
  const base = await loadPretrained(gpt2);
  const { adapters } = await loadPeftAdapter(dir);
  expect(Object.keys(adapters).sort()).toEqual([...refs.keys()].sort());
  const tuned = mergeParams(adapters as Trainable, base.params);
  const byPath = leavesByPath(tuned);
  for (const [p, ref] of refs) expectClose(await byPath.get(p)!.data(), ref, k, p);
  c.tree.dispose([adapters, base.params, [...refs.keys()].map((p) => byPath.get(p))]);
}

describe('sorsa export --format peft', () => {
  for (const method of ['sorsa', 'lora', 'adalora'] as const) {
    it(`${method}: the files training wrote, and loadPeftAdapter gives the tuned weights (float64)`, async () => {
      const out = join(work, `peft-${method}`);
      const r = await runCli(['export', '--run', runs[method], '--format', 'peft', '--out', out, '--backend', 'wasm']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`PEFT adapter of ${runs[method]} (${method}, step 6): ${out}\n`);
      await expectSamePeft(out, written[method]);
      if (method === 'adalora') {
        const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { peft_type: string; rank_pattern: Record<string, boolean[]>; target_r: number; init_r: number; tinit: number; tfinal: number; deltaT: number; total_step: number };
        // finetune's defaults for 6 steps at rank 4: init_r 6, tinit 0, tfinal 1, deltaT 1.
        expect([cfg.peft_type, cfg.target_r, cfg.init_r, cfg.tinit, cfg.tfinal, cfg.deltaT, cfg.total_step]).toEqual(['ADALORA', RANK, 6, 0, 1, 1, 6]);
        expect(Object.keys(cfg.rank_pattern)).toHaveLength(8);
      }
      await expectPeftTunes(out, await tunedRefs(method), 32);
    });
  }

  it('without --out: <run>/adapter', async () => {
    rmSync(join(runs.lora, 'adapter'), { recursive: true });
    const r = await runCli(['export', '--run', runs.lora, '--format', 'peft', '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`PEFT adapter of ${runs.lora} (lora, step 6): ${join(runs.lora, 'adapter')}\n`);
    await expectSamePeft(join(runs.lora, 'adapter'), written.lora);
  });
});

/**
 * Exports `run` (SORSA, on `modelDir`) in the official layout and checks the file: every base
 * weight under its own name, each adapted module's factors beside it, the factors equal to the
 * checkpoint's, the residual W − U0 S0 V0t (float64), and merge(factors, residual) the tuned weight
 * W + U S Vt − U0 S0 V0t (float64). Returns the record and the checkpoint's tensors to reuse.
 */
async function checkOfficial(run: string, modelDir: string): Promise<{ record: Record<string, c.Tensor>; refs: Map<string, Ref>; dispose: () => void }> {
  const r = await runCli(['export', '--run', run, '--format', 'official', '--model', modelDir, '--backend', 'wasm']);
  expect(r.code, r.stderr).toBe(0);
  const file = join(run, 'official.safetensors');
  expect(r.stdout).toMatch(new RegExp(`^official SORSA layout of ${run} \\(step 6, (8|14) adapted layers\\): ${file}\n$`));
  const record = await c.loadSafetensors(file);
  const base = await loadPretrained(modelDir);
  const ck = await loadCheckpoint(join(run, 'checkpoints', 'step-0000006.safetensors'));
  const init = await loadCheckpoint(join(run, 'initial.safetensors'));
  const t = ck.trees.trainable as Record<string, unknown>;
  const i0 = init.trees.trainable as Record<string, unknown>;
  const b = leavesByPath(base.params);
  const modules = Object.keys(t).map((p) => p.replace(/\.weight$/, ''));
  const want = [...b.keys(), ...modules.flatMap((m) => [`${m}.sorsa_A`, `${m}.sorsa_B`, `${m}.sorsa_S`])].sort();
  expect(Object.keys(record).sort()).toEqual(want);
  const refs = new Map<string, Ref>();
  for (const m of modules) {
    const p = `${m}.weight`;
    const W = b.get(p)!;
    const [rows, cols] = W.shape;
    expect([record[`${m}.sorsa_A`].shape, record[`${m}.sorsa_B`].shape, record[`${m}.sorsa_S`].shape, record[p].shape]).toEqual([[RANK, cols], [rows, RANK], [RANK], [rows, cols]]);
    const a = await sorsaValues(t[p]);
    expect(await record[`${m}.sorsa_A`].data()).toEqual(a.Vt);
    expect(await record[`${m}.sorsa_B`].data()).toEqual(a.U);
    expect(await record[`${m}.sorsa_S`].data()).toEqual(a.S);
    const a0 = await sorsaValues(i0[p]);
    expectClose(await record[p].data(), lowRankSum(await W.data(), rows, cols, [{ left: a0.U, mid: a0.S, right: a0.Vt, r: RANK, scale: -1 }]), 16, `${p} residual`);
    const ref = await sorsaTuned(await W.data(), rows, cols, t[p], i0[p]);
    refs.set(m, ref);
    const merged = merge({ U: record[`${m}.sorsa_B`], S: record[`${m}.sorsa_S`], Vt: record[`${m}.sorsa_A`] }, record[p]);
    expectClose(await merged.data(), ref, 32, `${p} merged`);
    merged.dispose();
  }
  for (const [p, x] of b) if (!Object.hasOwn(t, p)) expect(await record[p].data(), p).toEqual(await x.data());
  c.tree.dispose([base.params, ck.trees, init.trees]);
  return { record, refs, dispose: () => c.tree.dispose(record) };
}

describe('sorsa export --format official', () => {
  it("GPT-2: SORSA's layout, <module>.weight the residual and sorsa_A/B/S the adapter; merging them gives the tuned weights", async () => {
    const { dispose } = await checkOfficial(runs.sorsa, gpt2);
    dispose();
  });

  it('Llama: fromOfficialStateDict reads the file back, and merge gives the tuned weights', async () => {
    const { record, refs, dispose } = await checkOfficial(runs.llama, llama);
    const parts = fromOfficialStateDict(record);
    const frozen = leavesByPath(parts.frozen);
    expect(Object.keys(parts.trainable).sort()).toEqual([...refs.keys()].sort());
    for (const [m, ref] of refs) {
      const merged = merge(parts.trainable[m], frozen.get(m)!);
      expectClose(await merged.data(), ref, 32, `${m} merged`);
      merged.dispose();
    }
    c.tree.dispose([parts.trainable, parts.frozen]);
    dispose();
  });
});

describe('sorsa export --help', () => {
  it('shows the options with their defaults, and an example', async () => {
    const r = await runCli(['export', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const text of ['--format <name>', 'choices: "peft", "official"', 'Example:', 'sorsa export --run']) expect(r.stdout).toContain(text);
  });
});

describe.concurrent('sorsa export: user errors (one line naming the flag or file, status 2)', () => {
  const e = (args: string[]): Promise<CliResult> => runCli(['export', ...args, '--backend', 'wasm']);
  it('unknown flag', async () => expectUsageError(await e(['--run', runs.sorsa, '--format', 'peft', '--bogus']), /unknown option '--bogus'/));
  it('missing --format', async () => expectUsageError(await e(['--run', runs.sorsa]), /required option '--format <name>' not specified/));
  it('bad --format', async () => expectUsageError(await e(['--run', runs.sorsa, '--format', 'onnx']), /--format.*onnx/));
  it('--format official of a LoRA run', async () => expectUsageError(await e(['--run', runs.lora, '--format', 'official']), /--format official: the official layout is SORSA's .*method is lora/));
  it('a full fine-tuning run, in either format, points to merge', async () => {
    for (const format of ['peft', 'official']) {
      expectUsageError(await e(['--run', runs.full, '--format', format]), /--run .*full: a full fine-tuning run has no adapter to export \(in either format\); sorsa merge --model .* --adapter .*full --out/);
    }
  });
  it('missing --run folder', async () => expectUsageError(await e(['--run', join(work, 'nope'), '--format', 'peft']), /--run .*nope: no such directory/));
  it('--run that is not a run', async () => expectUsageError(await e(['--run', gpt2, '--format', 'peft']), /--run .*: not a run folder of sorsa finetune \(no run\.json\)/));
  it('--out of peft is a file', async () => {
    const f = join(work, 'afile');
    writeFileSync(f, 'x');
    expectUsageError(await e(['--run', runs.sorsa, '--format', 'peft', '--out', f]), /--out .*afile: is a file; PEFT adapters are folders/);
  });
  it('--model of another family (Llama)', async () => expectUsageError(await e(['--run', runs.sorsa, '--format', 'peft', '--model', llama, '--out', join(work, 'x1')]), /--run: the checkpoint has an adapter for "transformer\.h\.0\.attn\.c_attn\.weight", which the model does not have/));
  it('--model of another width', async () => expectUsageError(await e(['--run', runs.sorsa, '--format', 'peft', '--model', narrow, '--out', join(work, 'x2')]), /--run: the checkpoint's "transformer\.h\.0\.attn\.c_attn\.weight" is for a \[96,32\] weight, the model's is \[48,16\]/));
  it("a relative args.model not found from here: run.json's absolute paths.model is used", async () => {
    const elsewhere = join(work, 'elsewhere');
    cpSync(runs.lora, elsewhere, { recursive: true });
    const runJson = join(elsewhere, 'run.json');
    const rec = JSON.parse(readFileSync(runJson, 'utf8')) as { args: Record<string, unknown>; paths: Record<string, unknown> };
    expect(rec.paths.model).toBe(gpt2);
    rec.args.model = 'checkpoints/relative-to-another-folder';
    writeFileSync(runJson, JSON.stringify(rec));
    const r = await e(['--run', elsewhere, '--format', 'peft', '--out', join(work, 'x4')]);
    expect(r.code, r.stderr).toBe(0);
  });
  it('the base model moved away', async () => {
    const moved = join(work, 'moved');
    cpSync(runs.lora, moved, { recursive: true });
    const runJson = join(moved, 'run.json');
    const rec = JSON.parse(readFileSync(runJson, 'utf8')) as { args: Record<string, unknown>; paths: Record<string, unknown> };
    rec.args.model = join(work, 'gone-model');
    rec.paths.model = join(work, 'gone-model');
    writeFileSync(runJson, JSON.stringify(rec));
    expectUsageError(await e(['--run', moved, '--format', 'peft', '--out', join(work, 'x3')]), /--run .*moved: its base model ".*gone-model" \(run\.json args\.model\) is not found from here; pass --model DIR/);
  });
});
