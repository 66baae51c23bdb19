#!/usr/bin/env node
/**
 * `node packages/bench/dist/real-size.js [gpt2|llama ...] [--backend wasm]`
 *
 * A trial of `@sorsajs/models` at the size of real checkpoints (issue #11): GPT-2 small (124M
 * parameters: vocab 50257, width 768, 12 layers, 12 heads, 1024 positions) and a Llama-family
 * model of a similar size (width 768, 12 layers, 12 heads, 4 key/value heads, MLP 2048, vocab
 * 32000, untied head). For each: `createModel`, `savePretrained` to a temporary directory,
 * `loadPretrained` back, a forward pass at [1, 128] and [4, 256] (finite, and equal to the
 * pre-save model's logits), greedy `generate` of 32 tokens with the key/value cache, and one SORSA
 * training step at 1 x 128 (rank 8 on every attention and MLP weight, adaptParams' default SVD,
 * makeTrainStep with AdamW and clipping). Each phase prints its time and the process's resident
 * memory; a phase that throws prints its error and the trial goes on where it can.
 *
 * Not a test (it takes minutes and gigabytes); docs/guides/models.md has its results.
 * @module
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as sj from '@sorsajs/core';
import type { BackendRequest } from '@sorsajs/core';
import { createModel, generate, loadPretrained, savePretrained, type Model, type ParamTree } from '@sorsajs/models';
import { adaptParams, factoredParams, makeTrainStep, type Trainable } from '@sorsajs/sorsa';

/** The two configs of the trial. */
export const REAL_SIZE_CONFIGS: Record<string, Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
  llama: {
    model_type: 'llama', vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12,
    num_key_value_heads: 4, max_position_embeddings: 1024, tie_word_embeddings: false,
  },
};

/** The adapted weights: every attention and MLP linear weight of either family. */
const TARGETS = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj|self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
const rss = (): string => `rss ${mib(process.memoryUsage().rss)}`;

/** Runs one phase: prints its time and the RSS after it, or its error; returns its value or undefined. */
async function phase<T>(name: string, f: () => Promise<T> | T): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const v = await f();
    console.log(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(2)} s, ${rss()}`);
    return v;
  } catch (e) {
    console.log(`  ${name}: FAILED after ${((performance.now() - t0) / 1000).toFixed(2)} s: ${(e as Error).stack?.split('\n').slice(0, 4).join(' | ')}`);
    return undefined;
  }
}

/** Deterministic token ids `[B, T]` in `[0, vocab)`. */
function ids(B: number, T: number, vocab: number, seed: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 7919 + b * 104729 + t * 15485863) % vocab));
}

/** The largest |a - b| and whether every value of both is finite. */
function compare(a: Float32Array, b: Float32Array): { maxDiff: number; finite: boolean } {
  let maxDiff = 0;
  let finite = true;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) finite = false;
    const d = Math.abs(a[i] - b[i]);
    if (d > maxDiff) maxDiff = d;
  }
  return { maxDiff, finite };
}

async function trial(name: string): Promise<void> {
  const config = REAL_SIZE_CONFIGS[name];
  console.log(`\n## ${name}: ${JSON.stringify(config)} on ${sj.backend()}, ${rss()}`);
  const made = await phase('createModel', async () => {
    const m = createModel(config, sj.random.key(0));
    await sj.sync();
    return m;
  });
  if (!made) return;
  const nParams = sj.tree.leaves(made.params).reduce<number>((n, t) => n + (t as sj.Tensor).size, 0);
  console.log(`  parameters: ${(nParams / 1e6).toFixed(1)} M (${mib(4 * nParams)} of float32)`);
  const dir = await mkdtemp(join(tmpdir(), `sorsajs-real-${name}-`));
  let loaded: Model | undefined;
  try {
    await phase('savePretrained', () => savePretrained(made, made.params, dir));
    const files = await readdir(dir);
    console.log(`  files: ${(await Promise.all(files.map(async (f) => `${f} ${mib((await stat(join(dir, f))).size)}`))).join(', ')}`);
    loaded = await phase('loadPretrained', async () => {
      const m = await loadPretrained(dir);
      await sj.sync();
      return m;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (!loaded) {
    sj.tree.dispose(made.params);
    return;
  }
  const model = loaded;
  for (const [B, T] of [[1, 128], [4, 256]]) {
    await phase(`forward [${B}, ${T}] (pre-save and loaded, compared)`, async () => {
      const x = ids(B, T, model.config.vocabSize, B + T);
      const t0 = performance.now();
      const a = model.forward(model.params, x);
      const la = await a.data();
      const ms = performance.now() - t0;
      a.dispose();
      const b = made.forward(made.params, x);
      const lb = await b.data();
      b.dispose();
      const r = compare(la as Float32Array, lb as Float32Array);
      console.log(`    loaded model's forward ${ms.toFixed(0)} ms (first call); logits finite: ${r.finite}, max |loaded - pre-save| = ${r.maxDiff}`);
      if (!r.finite || r.maxDiff !== 0) throw new Error(`the loaded model's logits are not the pre-save model's (finite ${r.finite}, max diff ${r.maxDiff})`);
    });
  }
  sj.tree.dispose(made.params);
  await phase('generate 32 tokens, greedy, KV cache (prompt 8 tokens)', async () => {
    const prompt = ids(1, 8, model.config.vocabSize, 3);
    await generate(model, model.params, prompt, { maxNewTokens: 2 }); // warm-up
    const t0 = performance.now();
    const [row] = await generate(model, model.params, prompt, { maxNewTokens: 32 });
    const ms = performance.now() - t0;
    console.log(`    ${row.length - 8} tokens in ${ms.toFixed(0)} ms: ${((1000 * (row.length - 8)) / ms).toFixed(1)} tokens/s; tail ${row.slice(-6).join(' ')}`);
  });
  const adapted = await phase('adaptParams rank 8 (default SVD) on attention and MLP weights', async () => {
    const targets = sj.tree.leafPaths(model.params).filter((p) => TARGETS.test(p));
    const r = await adaptParams(model.params, { rank: 8, targets });
    console.log(`    ${targets.length} adapted weights`);
    return r;
  });
  if (adapted) {
    const { trainable, frozen } = adapted;
    const T = 128;
    const seq = ids(1, T + 1, model.config.vocabSize, 11)[0];
    const x = sj.tensor(Int32Array.from(seq.slice(0, T)), [1, T], 'int32');
    const y = sj.tensor(Int32Array.from(seq.slice(1)), [1, T], 'int32');
    const step = makeTrainStep<Trainable, ParamTree, { x: sj.Tensor; y: sj.Tensor }>({
      loss: (t, f, b) => sj.nn.crossEntropy(model.forward(factoredParams(t, f), b.x), b.y),
      optimizer: sj.optim.adamw({ lr: 1e-4, weightDecay: 0 }),
      gamma: 4e-4,
      peakLr: 1e-4,
      maxGradNorm: 1,
    });
    let t: Trainable = trainable;
    let state = step.init(t);
    for (let i = 0; i < 3; i++) {
      const ok = await phase(`SORSA train step ${i} at 1 x ${T}`, async () => {
        const out = step.step(t, state, frozen, { x, y });
        if (t !== trainable) sj.tree.dispose([t]);
        sj.tree.dispose([state]);
        t = out.trainable;
        state = out.optState;
        const loss = (await out.metrics.loss.data())[0];
        const gn = (await out.metrics.gradNorm.data())[0];
        sj.tree.dispose(out.metrics);
        console.log(`    loss ${loss.toFixed(5)} (ln vocab ${Math.log(model.config.vocabSize).toFixed(5)}), grad norm ${gn.toExponential(3)}`);
        if (!Number.isFinite(loss) || !Number.isFinite(gn)) throw new Error('non-finite loss or gradient norm');
        return true;
      });
      if (!ok) break;
    }
    sj.tree.dispose([t, state, trainable, frozen, x, y]);
  }
  sj.tree.dispose(model.params);
  console.log(`  done, ${rss()}`);
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { backend: { type: 'string', default: 'wasm' } } });
for (const n of positionals) if (!REAL_SIZE_CONFIGS[n]) throw new Error(`real-size: unknown model "${n}" (have: ${Object.keys(REAL_SIZE_CONFIGS).join(', ')})`);
await sj.init({ backend: values.backend as BackendRequest });
for (const name of positionals.length ? positionals : Object.keys(REAL_SIZE_CONFIGS)) await trial(name);
process.exit(0);
