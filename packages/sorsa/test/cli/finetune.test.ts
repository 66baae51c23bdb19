/**
 * `sorsa finetune`, driven as a subprocess on a tiny GPT-2 and a tiny Llama written by the test:
 * every method's run folder, resumption equal to an uninterrupted run, Ctrl-C, a diverging run, the
 * non-terminal log format, and each user error (one line naming the flag or file, status 2).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadCheckpoint, type Trainable } from '@sorsajs/sorsa';
import { BIN, additionJsonl, runCli, tempDir, tinyModel, type CliResult } from './fixture.js';

let gpt2: string;
let llama: string;
let data: string;
let work: string;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  gpt2 = await tinyModel('gpt2');
  llama = await tinyModel('llama');
  work = tempDir();
  data = additionJsonl(join(work, 'train.jsonl'));
});

/** Common flags: small and fast, and the same in the runs that are compared. */
const base = (model: string, out: string, extra: string[] = []): string[] => [
  'finetune', '--model', model, '--data', data, '--out', out, '--seq', '24', '--batch', '4', '--lr', '1e-2', '--backend', 'wasm', ...extra,
];

const records = (dir: string): Record<string, number>[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, number>);

/** A user error: status 2, one line on stderr that names `what`, no stack trace. */
function expectUsageError(r: CliResult, what: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('sorsa finetune: each method writes a complete run folder', () => {
  for (const method of ['sorsa', 'pissa', 'lora', 'adalora', 'full'] as const) {
    it(method, async () => {
      const out = join(work, `run-${method}`);
      const r = await runCli(base(gpt2, out, ['--method', method, '--rank', '4', '--steps', '12', '--save-every', '5']));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${method}: 12 steps, final loss \\d+\\.\\d+, held-out loss \\d+\\.\\d+; run folder `));
      const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { command: string; args: Record<string, unknown>; versions: Record<string, string> };
      expect(run.command).toBe('finetune');
      expect(run.args.method).toBe(method);
      expect(run.args.rank).toBe(4);
      expect(run.versions.node).toBe(process.version);
      const m = records(out);
      const losses = m.filter((x) => 'loss' in x);
      expect(losses.map((x) => x.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      for (const x of losses) expect(Number.isFinite(x.loss) && x.skipped === 0 && Number.isFinite(x.lr)).toBe(true);
      // `regularizer`: AdaLoRA's orthogonal penalty (which its loss includes at 0.5 x), non-zero
      // from its random A and B; SORSA's orthonormal regularizer, near 0 from its SVD start.
      for (const x of losses) {
        expect(Number.isFinite(x.regularizer)).toBe(true);
        if (method === 'adalora') expect(x.regularizer).toBeGreaterThan(0);
      }
      // The mean loss of the last 4 steps is below that of the first 4 (lr 1e-2 on a trivial task).
      const avg = (xs: Record<string, number>[]): number => xs.reduce((s, x) => s + x.loss, 0) / xs.length;
      expect(avg(losses.slice(-4))).toBeLessThan(avg(losses.slice(0, 4)));
      expect(m.filter((x) => 'evalLoss' in x)).toHaveLength(1);
      // Checkpoints: the newest two (steps 10 and 12), loadable, holding the step and the data position.
      const cks = readdirSync(join(out, 'checkpoints')).sort();
      expect(cks).toEqual(['step-0000010.safetensors', 'step-0000012.safetensors']);
      const ck = await loadCheckpoint(join(out, 'checkpoints', cks[1]));
      expect(ck.info.step).toBe(12);
      expect(ck.info.data).toEqual({ epoch: expect.any(Number), cursor: expect.any(Number) });
      expect(Object.keys(ck.trees).sort()).toEqual(method === 'adalora' ? ['allocator', 'optState', 'trainable'] : ['optState', 'trainable']);
      const paths = Object.keys(ck.trees.trainable as Trainable);
      // The adapters go on every linear layer of the blocks; full fine-tuning trains every weight
      // (embeddings, norms and biases too), as a full fine-tune in PyTorch does.
      const linear = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].flatMap((mod) => [0, 1].map((l) => `transformer.h.${l}.${mod}.weight`));
      const everything = [
        'transformer.wte.weight', 'transformer.wpe.weight', 'transformer.ln_f.weight', 'transformer.ln_f.bias',
        ...[0, 1].flatMap((l) => ['ln_1.weight', 'ln_1.bias', 'ln_2.weight', 'ln_2.bias', 'attn.c_attn.bias', 'attn.c_proj.bias', 'mlp.c_fc.bias', 'mlp.c_proj.bias'].map((n) => `transformer.h.${l}.${n}`)),
        ...linear,
      ];
      expect([...paths].sort()).toEqual((method === 'full' ? everything : linear).sort());
      c.tree.dispose(ck.trees);
      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { method: string; trainLoss: [number, number][]; evalLoss: number; trainableParams: number };
      expect(report.method).toBe(method);
      expect(report.trainLoss).toHaveLength(12);
      expect(Number.isFinite(report.evalLoss)).toBe(true);
      // Trainable counts from the shapes: c_attn [96, 32], c_proj [32, 32], c_fc [128, 32], mlp.c_proj [32, 128], two layers.
      const shapes: [number, number][] = [[96, 32], [32, 32], [128, 32], [32, 128]];
      const r4 = method === 'adalora' ? 6 : 4;
      const per = ([o, i]: [number, number]): number =>
        method === 'full' ? o * i : method === 'sorsa' ? r4 * (o + i + 1) : method === 'adalora' ? r4 * (o + i + 1) : r4 * (o + i);
      // Full: also wte [257, 32], wpe [64, 32], ln_f (2 x 32) and per block 2 norms (4 x 32) and the biases (96 + 32 + 128 + 32).
      const extra = method === 'full' ? 257 * 32 + 64 * 32 + 2 * 32 + 2 * (4 * 32 + 96 + 32 + 128 + 32) : 0;
      expect(report.trainableParams).toBe(2 * shapes.reduce((s, sh) => s + per(sh), 0) + extra);
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toMatch(/^<!DOCTYPE html>/i);
      expect(html).toContain(`sorsa finetune: ${method}`);
      // The loss chart: one line of the 12 training losses and the held-out point, as SVG.
      expect(html).toMatch(/<svg[^>]*>[\s\S]*training loss[\s\S]*held-out loss[\s\S]*<\/svg>/);
      expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
      if (method === 'full') expect(existsSync(join(out, 'adapter'))).toBe(false);
      else {
        const cfg = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
        expect(cfg.peft_type).toBe(method === 'adalora' ? 'ADALORA' : 'LORA');
        expect(cfg.fan_in_fan_out).toBe(true);
      }
    });
  }

  it('sorsa on a Llama-family checkpoint, with --targets globs', async () => {
    const out = join(work, 'run-llama');
    const r = await runCli(base(llama, out, ['--steps', '4', '--targets', 'self_attn.*_proj']));
    expect(r.code, r.stderr).toBe(0);
    const ck = await loadCheckpoint(join(out, 'checkpoints', 'step-0000004.safetensors'));
    expect(Object.keys(ck.trees.trainable as Trainable).sort()).toEqual(
      [0, 1].flatMap((l) => ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((p) => `model.layers.${l}.self_attn.${p}.weight`)).sort(),
    );
    c.tree.dispose(ck.trees);
  });
});

describe('sorsa finetune: interruption and resumption', () => {
  it('Ctrl-C writes a loadable checkpoint and exits 130; --resume then gives the loss curve of an uninterrupted run', async () => {
    const whole = join(work, 'whole');
    const parts = join(work, 'parts');
    const flags = ['--steps', '16', '--save-every', '100', '--eval-every', '5'];
    const r1 = await runCli(base(gpt2, whole, flags));
    expect(r1.code, r1.stderr).toBe(0);
    let sent = false;
    const r2 = await runCli(base(gpt2, parts, flags), {
      onStderr: (text, child) => {
        if (!sent && /step 6\/16/.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(r2.code, r2.stderr).toBe(130);
    const hint = /interrupted at step \d+; checkpoint written; continue with (sorsa finetune --resume --out (\S+))$/m.exec(r2.stderr);
    expect(hint, r2.stderr).not.toBeNull();
    expect(hint![2]).toBe(parts);
    const cks = readdirSync(join(parts, 'checkpoints'));
    expect(cks).toHaveLength(1);
    const stepAt = Number(/step-(\d+)/.exec(cks[0])![1]);
    expect(stepAt).toBeGreaterThanOrEqual(6);
    expect(stepAt).toBeLessThan(16);
    const ck = await loadCheckpoint(join(parts, 'checkpoints', cks[0]));
    expect(ck.info.step).toBe(stepAt);
    c.tree.dispose(ck.trees);
    // The hint works as printed, from any folder: the other options are the run's (run.json).
    const r3 = await runCli(['finetune', '--resume', '--out', parts], { cwd: '/' });
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stderr).toMatch(new RegExp(`resuming .* at step ${stepAt}`));
    const pick = (rs: Record<string, number>[]): unknown[] => rs.map((x) => [x.step, x.loss, x.gradNorm, x.evalLoss]);
    expect(pick(records(parts))).toEqual(pick(records(whole)));
    // The same adapter bytes.
    expect(readFileSync(join(parts, 'adapter', 'adapter_model.safetensors')).equals(readFileSync(join(whole, 'adapter', 'adapter_model.safetensors')))).toBe(true);
    // The elapsed seconds go on from the checkpoint's instead of restarting from 0, and the final
    // (smoothed) loss is the uninterrupted run's.
    const seconds = records(parts).filter((x) => 'loss' in x).map((x) => x.seconds);
    for (let i = 1; i < seconds.length; i++) expect(seconds[i], `seconds at record ${i}`).toBeGreaterThanOrEqual(seconds[i - 1]);
    expect(r3.stdout).toBe(r1.stdout.replace(whole, parts));
    const report = JSON.parse(readFileSync(join(parts, 'report.json'), 'utf8')) as { seconds: number };
    expect(report.seconds).toBeGreaterThanOrEqual(seconds[seconds.length - 1]);

    // --resume of the completed run changes nothing and says so.
    const before = ['metrics.jsonl', 'report.json', 'report.html'].map((f) => readFileSync(join(parts, f)));
    const ckBefore = readdirSync(join(parts, 'checkpoints'));
    const r4 = await runCli(base(gpt2, parts, [...flags, '--resume']));
    expect(r4.code, r4.stderr).toBe(0);
    expect(r4.stdout).toMatch(/the run is already complete \(16 of 16 steps\); nothing to do/);
    expect(r4.stdout).not.toMatch(/NaN/);
    ['metrics.jsonl', 'report.json', 'report.html'].forEach((f, i) => expect(readFileSync(join(parts, f)).equals(before[i]), f).toBe(true));
    expect(readdirSync(join(parts, 'checkpoints'))).toEqual(ckBefore);
    // Stopped after its last checkpoint but before its report: --resume finishes it, with one final
    // evaluation record, not two.
    rmSync(join(parts, 'report.json'));
    const r5 = await runCli(base(gpt2, parts, [...flags, '--resume']));
    expect(r5.code, r5.stderr).toBe(0);
    expect(r5.stdout).toBe(r1.stdout.replace(whole, parts));
    expect(pick(records(parts))).toEqual(pick(records(whole)));
  });

  it('a diverging run stops after --max-bad-steps non-finite steps, exit 3, keeping the last good checkpoint', async () => {
    const out = join(work, 'nan');
    // A learning rate of 1e37 throws the weights far out at step 1; the losses after it overflow.
    const r = await runCli(base(gpt2, out, ['--lr', '1e37', '--clip', '0', '--steps', '30', '--save-every', '1', '--max-bad-steps', '3', '--warmup', '0']));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/stopped at step (\d+): 3 steps in a row had a non-finite loss or gradient/);
    const stopped = Number(/stopped at step (\d+)/.exec(r.stderr)![1]);
    const skipped = records(out).filter((x) => x.skipped === 1);
    expect(skipped.map((x) => x.step)).toEqual([stopped - 2, stopped - 1, stopped]);
    // Every checkpoint on disk is from before the bad steps, and holds finite values.
    const cks = readdirSync(join(out, 'checkpoints'));
    expect(cks.length).toBeGreaterThan(0);
    for (const f of cks) {
      expect(Number(/step-(\d+)/.exec(f)![1])).toBeLessThanOrEqual(stopped - 3);
      const ck = await loadCheckpoint(join(out, 'checkpoints', f));
      for (const leaf of c.tree.leaves(ck.trees.trainable)) {
        if (leaf instanceof c.Tensor) for (const v of await leaf.data()) expect(Number.isFinite(v)).toBe(true);
      }
      c.tree.dispose(ck.trees);
    }
    expect(r.stderr).toMatch(/the last good checkpoint is .*step-\d+\.safetensors/);
  });
});

describe('sorsa finetune: output', () => {
  it('prints plain log lines when stderr is not a terminal', async () => {
    const out = join(work, 'log');
    const r = await runCli(base(gpt2, out, ['--steps', '6', '--log-every', '2', '--method', 'lora']));
    expect(r.code, r.stderr).toBe(0);
    const steps = r.stderr.split('\n').filter((l) => l.startsWith('step '));
    expect(steps).toHaveLength(3);
    for (const [i, l] of steps.entries()) expect(l).toMatch(new RegExp(`^step ${2 * (i + 1)}/6 loss \\d+\\.\\d{4} lr \\d\\.\\d{2}e[-+]\\d+ tok/s \\d+ eta \\d+:\\d\\d$`));
    expect(r.stderr).toMatch(/^init 8\/8 transformer\.h\.1\.mlp\.c_proj\.weight \(\d+\.\d s\)$/m);
    expect(records(out).filter((x) => 'loss' in x).map((x) => x.step)).toEqual([2, 4, 6]);
  });

  // `script` (util-linux) gives the binary a pseudo-terminal, as a user's shell would.
  const hasScript = spawnSync('script', ['--version']).status === 0;
  if (!hasScript) console.warn('SKIPPED: the progress-bar test needs util-linux `script` for a pseudo-terminal');
  it.skipIf(!hasScript)('draws progress bars on a terminal: SVD initialization per layer, then training with loss, lr, tokens/s and ETA (skipped without util-linux script)', () => {
    const out = join(work, 'tty');
    const log = join(work, 'tty.log');
    const cmd = [process.execPath, BIN, ...base(gpt2, out, ['--steps', '5', '--eval-every', '2'])].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, log], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex
    const screen = readFileSync(log, 'utf8').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    expect(screen).toMatch(/init +\S+ 8\/8 transformer\.h\.1\.mlp\.c_proj\.weight \(\d+\.\d s\)/);
    expect(screen).toMatch(/train \S+ 5\/5 loss \d+\.\d{4} lr \d\.\de-\d \d+ tok\/s ETA 0:00/);
    expect(screen).toMatch(/step 2: held-out loss \d+\.\d{4}/);
    // No unfilled placeholder was ever drawn.
    expect(screen).not.toMatch(/\{(loss|lr|tps|etaText|detail)\}/);
  });

  it('--help shows every option with its default, and an example', async () => {
    const r = await runCli(['finetune', '--help']);
    expect(r.code).toBe(0);
    // Commander wraps the help to the terminal's width: compare with whitespace collapsed.
    const text = r.stdout.replace(/\s+/g, ' ');
    for (const s of ['--method <name>', 'default: "sorsa"', '--rank <n>', '(default: 8)', '--gamma <x>', '(default: 0.0004)', '--resume', '--eval-split', 'Example:']) {
      expect(text).toContain(s);
    }
    const top = await runCli(['--help']);
    expect(top.stdout).toMatch(/finetune \[options\]/);
  });
});

describe('sorsa finetune: user errors are one line naming the flag or file', () => {
  it('unknown flag, bad values, missing files', async () => {
    const out = join(work, 'never');
    expectUsageError(await runCli([...base(gpt2, out), '--bogus']), /unknown option '--bogus'/);
    expectUsageError(await runCli(base(gpt2, out, ['--rank', '0'])), /--rank <n>.*'0' is invalid.*integer >= 1/);
    expectUsageError(await runCli(base(gpt2, out, ['--lr', 'fast'])), /--lr <x>.*'fast' is invalid/);
    expectUsageError(await runCli(base(gpt2, out, ['--method', 'dora'])), /--method.*'dora' is invalid.*sorsa, pissa, lora, adalora, full/);
    expectUsageError(await runCli(['finetune', '--model', gpt2, '--data', join(work, 'nope.jsonl'), '--out', out]), /--data .*nope\.jsonl: no such file/);
    expectUsageError(await runCli(['finetune', '--model', join(work, 'nomodel'), '--data', data, '--out', out]), /--model .*nomodel: no such directory/);
    expectUsageError(await runCli(['finetune', '--data', data]), /required option '--model <dir>'/);
    expect(existsSync(out)).toBe(false);
  });

  it('a bad JSONL line, a model without tokenizer, unmatched targets, conflicting flags', async () => {
    const out = join(work, 'never2');
    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "a", "completion": "b"}\n{"prompt": 3}\n');
    expectUsageError(await runCli(['finetune', '--model', gpt2, '--data', bad, '--out', out, '--backend', 'wasm']), /--data .*bad\.jsonl:2: each line must be an object with string fields "prompt" and "completion"/);
    const noTok = await tinyModel('gpt2', 1);
    rmSync(join(noTok, 'tokenizer.json'));
    expectUsageError(await runCli(base(noTok, out)), /--model .*: the checkpoint has no tokenizer\.json/);
    expectUsageError(await runCli(base(gpt2, out, ['--targets', 'q_proj'])), /--targets: "q_proj" matches no linear module of the model \(its modules: .*attn\.c_attn/);
    expectUsageError(await runCli(base(gpt2, out, ['--eval-split', '0.2', '--eval-data', data])), /--eval-split and --eval-data/);
    expectUsageError(await runCli(base(gpt2, out, ['--tinit', '3'])), /--tinit: only for --method adalora/);
    expectUsageError(await runCli(base(gpt2, out, ['--seq', '100'])), /--seq 100: the model takes at most 64 positions/);
    // Without --seq, the window is the longest record's: no error.
    const ok = await runCli(['finetune', '--model', gpt2, '--data', data, '--out', join(work, 'auto-seq'), '--backend', 'wasm', '--steps', '1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/sequences of 25 tokens/);
  });

  it('a rank above the smallest target\'s smaller side, and a warmup as long as the run, name their flags', async () => {
    const out = join(work, 'never3');
    // The tiny GPT-2's targets' smaller side is 32 (the first: attn.c_attn [96, 32]).
    for (const method of ['sorsa', 'pissa', 'lora']) {
      expectUsageError(
        await runCli(base(gpt2, out, ['--method', method, '--rank', '40'])),
        /^sorsa: error: --rank 40: the adapter rank must be in \[1, 32\], the smaller side of the smallest target, transformer\.h\.0\.attn\.c_attn\.weight \[96, 32\]$/,
      );
    }
    expectUsageError(await runCli(base(gpt2, out, ['--rank', '100'])), /--rank 100: the adapter rank must be in \[1, 32\]/);
    // AdaLoRA starts at 1.5 x --rank: --rank 24 starts at 36.
    expectUsageError(await runCli(base(gpt2, out, ['--method', 'adalora', '--rank', '24'])), /--rank 24: AdaLoRA starts at 1\.5 x --rank = 36, which must be at most 32, .*use --rank in \[1, 21\] or set --init-rank/);
    expectUsageError(await runCli(base(gpt2, out, ['--method', 'adalora', '--rank', '8', '--init-rank', '33'])), /--init-rank 33: AdaLoRA's initial rank must be in \[1, 32\]/);
    expectUsageError(await runCli(base(gpt2, out, ['--warmup', '4', '--steps', '4'])), /--warmup 4 and --steps 4: the warmup \(4 steps\) must be shorter than the run/);
    expectUsageError(await runCli(base(gpt2, out, ['--warmup', '0.99', '--steps', '4'])), /--warmup 0\.99 and --steps 4: the warmup \(0\.99 x 4 steps rounds to 4\) must be shorter than the run/);
    expect(existsSync(out)).toBe(false);
    // A constant schedule has no decay: a warmup over every step is fine there.
    const ok = await runCli(base(gpt2, join(work, 'warm-constant'), ['--warmup', '4', '--steps', '4', '--schedule', 'constant', '--method', 'lora']));
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('--resume compares files by the paths they resolve to, from any working folder', async () => {
    const { basename, dirname, relative } = await import('node:path');
    const parent = dirname(work);
    const out = join(work, 'paths');
    const flags = ['--steps', '2', '--method', 'lora', '--seq', '24', '--backend', 'wasm'];
    const r1 = await runCli(['finetune', '--model', `${relative(work, gpt2)}/`, '--data', 'train.jsonl', '--out', 'paths', ...flags], { cwd: work });
    expect(r1.code, r1.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { args: { model: string }; paths: Record<string, string | null> };
    expect(run.args.model).toBe(`${relative(work, gpt2)}/`);
    expect(run.paths).toEqual({ model: gpt2, data, evalData: null });
    // The same files spelled otherwise, from another folder: accepted (the run is complete).
    const r2 = await runCli(['finetune', '--model', `./${relative(parent, gpt2)}`, '--data', join(basename(work), '.', 'train.jsonl'), '--out', join(basename(work), 'paths'), ...flags, '--resume'], { cwd: parent });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toMatch(/already complete/);
    // Another model is refused, naming --model and the run's absolute path.
    expectUsageError(await runCli(['finetune', '--model', llama, '--out', out, '--resume']), new RegExp(`--resume: --model "${llama}" differs from the run's "${gpt2}"`));
    // A run.json value of the wrong type is named, not taken.
    const runJson = join(out, 'run.json');
    const rec = JSON.parse(readFileSync(runJson, 'utf8')) as { args: Record<string, unknown> };
    rec.args.lr = 'fast';
    writeFileSync(runJson, JSON.stringify(rec));
    expectUsageError(await runCli(['finetune', '--resume', '--out', out]), /--resume: .*run\.json: args\.lr is "fast", not a number; give --lr/);
    // Without --model and --data and no run to take them from.
    expectUsageError(await runCli(['finetune', '--resume', '--out', join(work, 'none')]), /--resume: .*none holds no run \(no run\.json\) to take --model from/);
  });

  it('an existing run needs --resume, and --resume keeps the run\'s settings', async () => {
    const out = join(work, 'run-lora');
    expectUsageError(await runCli(base(gpt2, out, ['--method', 'lora', '--rank', '4', '--steps', '12'])), /--out .*run-lora: the folder already holds a run \(run\.json\); pass --resume/);
    expectUsageError(await runCli(base(gpt2, out, ['--method', 'lora', '--rank', '4', '--steps', '12', '--lr', '3e-3', '--resume'])), /--resume: --lr 0\.003 differs from the run's 0\.01/);
    expectUsageError(await runCli(base(gpt2, join(work, 'fresh'), ['--resume'])), /--resume: .*fresh holds no run/);
  });
});
