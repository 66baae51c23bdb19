/**
 * What `eval`, `generate` and `merge` start with: `--model DIR [--adapter PATH]` opened on the
 * `--backend`, giving the weights to run (the base's, or the tuned ones) and the end-of-text ids.
 * @module
 */
import { existsSync } from 'node:fs';
import { tree } from '@sorsajs/core';
import type { Model, ModelConfig, ParamTree } from '@sorsajs/models';
import { startBackend } from './backend.js';
import { UsageError } from './errors.js';
import { applyAdapter, loadAdapter, loadModel, type LoadedAdapter } from './tuned.js';

/** An opened model: the weights to run, and a `dispose` for what opening made. */
export interface Opened {
  /** The backend in use. */
  backend: string;
  /** The base model (its params are the base weights). */
  model: Model;
  /** The weights to run: the tuned ones with an adapter, else the base's. */
  params: ParamTree;
  /** The adapter, when one was given. */
  adapter: LoadedAdapter | null;
  /** Releases the tensors made by opening (the model's, the adapter's, the tuned weights). */
  dispose(): void;
}

/**
 * Checks that the paths exist (before a backend starts, so a typo fails at once), starts the
 * backend, loads the model and applies the adapter. Every fault is a UsageError naming its flag.
 *
 * @example
 * ```ts
 * const o = await openModel({ model: 'checkpoints/gpt2', adapter: 'runs/gpt2-sorsa', backend: 'auto' });
 * const logits = o.model.forward(o.params, [[1, 2, 3]]);
 * o.dispose();
 * ```
 */
export async function openModel(opts: { model: string; adapter?: string | null; backend: string }): Promise<Opened> {
  if (!existsSync(opts.model)) throw new UsageError(`--model ${opts.model}: no such directory`);
  if (opts.adapter && !existsSync(opts.adapter)) throw new UsageError(`--adapter ${opts.adapter}: no such file or directory`);
  const backend = await startBackend(opts.backend);
  const model = await loadModel(opts.model);
  let adapter: LoadedAdapter | null = null;
  let params = model.params;
  try {
    if (opts.adapter) {
      adapter = await loadAdapter(opts.adapter);
      params = applyAdapter(model.params, adapter);
    }
  } catch (e) {
    tree.dispose([model.params, adapter?.trainable, adapter?.initial]);
    throw e;
  }
  const made = adapter;
  return {
    backend,
    model,
    params,
    adapter,
    dispose: () => tree.dispose(made ? [params, model.params, made.trainable, made.initial] : [model.params]),
  };
}

/**
 * The end-of-text ids of a config's `eos_token_id` (a number, or a list as Llama 3 writes it), each
 * inside the vocabulary; none when absent.
 *
 * @example
 * ```ts
 * eosIds(model.config); // [50256] for GPT-2
 * ```
 */
export function eosIds(config: ModelConfig): number[] {
  const raw = config.json.eos_token_id;
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < config.vocabSize);
}

/**
 * The end-of-text id that training appends to each record (`sorsa finetune`'s rule: a single
 * `eos_token_id`), so that `sorsa eval` scores the sequences training saw; null otherwise.
 *
 * @example
 * ```ts
 * trainingEos(model.config); // 50256 for GPT-2
 * ```
 */
export function trainingEos(config: ModelConfig): number | null {
  const raw = config.json.eos_token_id;
  return typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw < config.vocabSize ? raw : null;
}
