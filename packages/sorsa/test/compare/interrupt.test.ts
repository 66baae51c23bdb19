/**
 * Ctrl-C during `sorsa compare`: the base model's pretraining stops at the next step, caches
 * nothing, and the command exits 130 with a message for compare (not a sub-run's --resume hint).
 * And a --model too small for the comparison's rank: a usage error naming --model.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { ensureBaseModel } from '../../src/compare/base.js';
import { QUICK_PLAN } from '../../src/compare/compare.js';
import type { Progress } from '../../src/cli/progress.js';
import { createModel, savePretrained } from '@sorsajs/models';
import { byteTokenizer, runCli, tempDir } from '../cli/fixture.js';
import { expectUsageError } from '../cli/reference.js';

let root: string;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  root = tempDir('sorsa-compare-int-');
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('Ctrl-C while the base model pretrains', () => {
  it('ensureBaseModel stops after the step the signal came in, frees its tensors and caches nothing', async () => {
    const dir = join(root, 'base-lib');
    const signal = { interrupted: false };
    const phases: string[] = [];
    const progress: Progress = {
      phase: (name, done) => {
        phases.push(`${name} ${done}`);
        if (name === 'base' && done === 2) signal.interrupted = true;
      },
      step: () => undefined,
      log: () => undefined,
      stop: () => undefined,
    };
    const before = c.memory().tensors;
    const r = await ensureBaseModel(dir, QUICK_PLAN.base, [], progress, 'wasm', signal);
    expect(r).toEqual({ interruptedAt: 2, steps: QUICK_PLAN.base.steps });
    expect(phases).toEqual(['base 1', 'base 2']);
    expect(c.memory().tensors).toBe(before);
    expect(existsSync(join(dir, 'recipe.json'))).toBe(false);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });

  it('sorsa compare exits 130 with its own message, no --resume hint, nothing cached and no report', async () => {
    mkdirSync(join(root, 'runs'));
    const out = join(root, 'runs', 'q');
    let sent = false;
    const r = await runCli(['compare', '--quick', '--backend', 'wasm', '--plain', '--out', out, '--base-dir', join(root, 'base')], {
      cwd: root,
      onStderr: (text, child) => {
        if (!sent && /^base 1\//m.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(sent, r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(new RegExp(`sorsa compare: interrupted while pretraining the base model \\(step [1-${QUICK_PLAN.base.steps - 1}] of ${QUICK_PLAN.base.steps}; nothing was cached in .*base-quick`));
    expect(r.stderr).toMatch(/run the same command again to start it over/);
    expect(r.stderr).not.toMatch(/--resume/);
    expect(existsSync(join(root, 'base-quick', 'recipe.json'))).toBe(false);
    expect(readdirSync(out)).toEqual(['data']);
    expect(existsSync(join(root, 'runs', 'latest'))).toBe(false);
  });

  it('while a method fine-tunes: the same, naming the method, with no sub-run --resume hint', async () => {
    const out = join(root, 'runs', 'q2');
    let sent = false;
    const r = await runCli(['compare', '--quick', '--backend', 'wasm', '--plain', '--methods', 'lora', '--out', out, '--base-dir', join(root, 'base')], {
      cwd: root,
      onStderr: (text, child) => {
        if (!sent && /^step 1\//m.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/sorsa compare: interrupted while fine-tuning lora \(lr [\d.e-]+, seed 0\) at step \d+; the comparison is incomplete and wrote no report/);
    expect(r.stderr).not.toMatch(/--resume/);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    // The base model finished pretraining before the signal: it is cached.
    expect(existsSync(join(root, 'base-quick', 'recipe.json'))).toBe(true);
  });
});

describe('sorsa compare --model too small for the rank', () => {
  it('is a usage error naming --model, the rank and the smallest weight', async () => {
    // A GPT-2 of width 4: LoRA at the quick plan's rank 4 fits, AdaLoRA's start at 1.5 x 4 = 6 does not.
    const dir = tempDir('sorsa-model-narrow-');
    const m = createModel({ model_type: 'gpt2', n_layer: 1, n_head: 2, n_embd: 4, vocab_size: 257, n_positions: 64, eos_token_id: 256, bos_token_id: 256 }, c.random.key(0));
    await savePretrained(m, m.params, dir);
    c.tree.dispose(m.params);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizer()));
    expectUsageError(
      await runCli(['compare', '--quick', '--backend', 'wasm', '--plain', '--methods', 'lora,adalora', '--model', dir, '--out', join(root, 'narrow')], { cwd: root }),
      /--model .*: too small for the comparison's adapter rank 4 \(adalora\): AdaLoRA starts at 1\.5 x the rank = 6, which must be at most 4, the smaller side of the smallest target, transformer\.h\.0\.attn\.c_attn\.weight \[12, 4\]$/,
    );
    rmSync(dir, { recursive: true, force: true });
  });
});
