/**
 * `--model DIR [--adapter PATH]`: the base model and, with an adapter, the tuned weights. PATH is a
 * run folder of `sorsa finetune` (its newest checkpoint), one of its checkpoint files, or a PEFT
 * adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Tensor, reshape, tidy, tree } from '@sorsajs/core';
import { loadPretrained, type Model, type ParamTree } from '@sorsajs/models';
import { loadCheckpoint } from '../checkpoint.js';
import { toLoRA } from '../convert.js';
import { merge } from '../forward.js';
import { loadPeftAdapter, PEFT_FILES } from '../peft.js';
import { isAdaloraAdapter, type Adapter, type Trainable } from '../types.js';
import { UsageError } from './errors.js';
import { listCheckpoints, readJson, runFiles } from './run-dir.js';

/** Loads the model of `--model DIR`, turning its errors (missing files, bad config) into one line. */
export async function loadModel(dir: string, flag = '--model'): Promise<Model> {
  if (!existsSync(dir)) throw new UsageError(`${flag} ${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: not a directory (a Hugging Face checkpoint folder with config.json and model.safetensors)`);
  try {
    return await loadPretrained(dir);
  } catch (e) {
    throw new UsageError(`${flag} ${dir}: ${(e as Error).message}`);
  }
}

/** What an adapter path holds. */
export interface LoadedAdapter {
  /** The trained entries: adapters, or weights (full fine-tuning), by weight path. */
  trainable: Trainable;
  /** For SORSA, PiSSA and LoRA from a run: the adapters at initialization (`toLoRA` needs them). */
  initial: Trainable | null;
  /** The method (`sorsa`, `pissa`, `lora`, `adalora`, `full`, or `peft` for a PEFT folder). */
  method: string;
  /** The run folder, when PATH is a run or one of its checkpoints. */
  runDir: string | null;
  /** The checkpoint's step, when from a run. */
  step: number | null;
}

/** Reads a run folder's newest checkpoint (or the given checkpoint file) and its initial adapters. */
export async function loadRunAdapter(path: string, flag: string): Promise<LoadedAdapter> {
  const isFile = existsSync(path) && statSync(path).isFile();
  // A file must be a checkpoint: <run>/checkpoints/step-NNNNNNN.safetensors.
  if (isFile && !(basename(dirname(path)) === 'checkpoints' && /^step-\d{7,}\.safetensors$/.test(basename(path)))) {
    const dir = dirname(path);
    if (existsSync(runFiles(dir).run)) {
      throw new UsageError(`${flag} ${path}: a file of the run folder ${dir}, not a checkpoint; give the run folder (its newest checkpoint) or one of its checkpoints/step-NNNNNNN.safetensors files`);
    }
    throw new UsageError(`${flag} ${path}: not a checkpoint of sorsa finetune (<run>/checkpoints/step-NNNNNNN.safetensors); give a run folder, one of its checkpoint files, or a PEFT adapter folder`);
  }
  const runDir = isFile ? dirname(dirname(path)) : path;
  const files = runFiles(runDir);
  if (!existsSync(files.run)) throw new UsageError(`${flag} ${path}: not a run folder of sorsa finetune (no run.json)${isFile ? ' above this checkpoint' : ''}`);
  const run = await readJson(files.run, flag);
  const args = (run.args ?? {}) as Record<string, unknown>;
  const method = String(args.method);
  let file = path;
  let step: number | null = null;
  if (!isFile) {
    const list = await listCheckpoints(runDir);
    if (list.length === 0) throw new UsageError(`${flag} ${path}: the run has no checkpoint yet (checkpoints/ is empty)`);
    ({ file, step } = list[list.length - 1]);
  }
  const ck = await loadCheckpoint(file).catch((e: Error) => {
    throw new UsageError(`${flag}: ${e.message}`);
  });
  if (step === null) step = Number(ck.info.step);
  const keep = ck.trees.trainable as Trainable;
  for (const [name, t] of Object.entries(ck.trees)) if (name !== 'trainable') tree.dispose(t);
  let initial: Trainable | null = null;
  if (method !== 'full' && method !== 'adalora') {
    const init = await loadCheckpoint(files.initial).catch((e: Error) => {
      throw new UsageError(`${flag}: ${e.message}`);
    });
    initial = init.trees.trainable as Trainable;
  }
  return { trainable: keep, initial, method, runDir, step };
}

/** Reads PATH as a run (folder or checkpoint file) or as a PEFT adapter folder. */
export async function loadAdapter(path: string, flag = '--adapter'): Promise<LoadedAdapter> {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file or directory`);
  if (statSync(path).isDirectory() && existsSync(join(path, PEFT_FILES.config))) {
    const peft = await loadPeftAdapter(path).catch((e: Error) => {
      throw new UsageError(`${flag} ${path}: ${e.message}`);
    });
    return { trainable: peft.adapters, initial: null, method: 'peft', runDir: null, step: null };
  }
  return loadRunAdapter(path, flag);
}

/**
 * The tuned weights: `params` with each entry of the adapter applied (new tensors where changed,
 * handles elsewhere). A path the model lacks, or of another shape, is a UsageError naming it.
 */
export function applyAdapter(params: ParamTree, a: LoadedAdapter, flag = '--adapter'): ParamTree {
  const paths = new Set(tree.leafPaths(params));
  const byPath = new Map(tree.leafPaths(params).map((p, i) => [p, tree.leaves(params)[i]]));
  for (const p of Object.keys(a.trainable)) {
    const W = byPath.get(p);
    if (!paths.has(p) || !(W instanceof Tensor)) throw new UsageError(`${flag}: the adapter has weight "${p}", which the model does not (is it the model the adapter was trained on?)`);
  }
  return tidy(() =>
    tree.mapWithPath((path, W) => {
      if (!(W instanceof Tensor) || !Object.hasOwn(a.trainable, path)) return W instanceof Tensor ? reshape(W, W.shape) : W;
      const t = a.trainable[path];
      const shapeError = (got: readonly number[]): UsageError =>
        new UsageError(`${flag}: the adapter's "${path}" is for a [${got}] weight, the model's is [${W.shape}] (is it the model the adapter was trained on?)`);
      if (t instanceof Tensor) {
        if (t.shape.join() !== W.shape.join()) throw shapeError(t.shape);
        return reshape(t, t.shape);
      }
      const ad = t as Adapter;
      const out = 'U' in ad ? ad.U.shape[0] : ad.B.shape[0];
      const inp = 'Vt' in ad ? ad.Vt.shape[1] : ad.A.shape[1];
      if (out !== W.shape[0] || inp !== W.shape[1]) throw shapeError([out, inp]);
      if (isAdaloraAdapter(ad) || a.initial === null) return merge(ad, W);
      return merge(toLoRA(ad, a.initial[path] as Adapter), W);
    }, params),
  ) as ParamTree;
}
