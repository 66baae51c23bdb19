/**
 * Hugging Face checkpoint directories: `loadPretrained` and `savePretrained` (Node only).
 *
 * GPT-2 stores its linear weights as Conv1D modules, whose weight is `[in, out]` (`y = x W + b`);
 * every other linear weight, here and in PyTorch's nn.Linear, is `[out, in]` (`y = x Wᵀ + b`). The
 * tree holds all of them as `[out, in]`: Conv1D weights are transposed on load and back on save.
 * @module
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { abs, loadSafetensors, max, saveSafetensors, sub, tidy, transpose, Tensor, tree } from '@sorsajs/core';
import { parseConfig, type ModelConfig } from './config.js';
import { exists, readJson, writeTextAtomic } from './files.js';
import { DEFAULT_MAX_SHARD_SIZE, INDEX, indexText, parseShardSize, planShards, previousCheckpoint, protectPrevious, removeStale } from './shards.js';
import { makeModel, tokenizerTexts, type Model } from './model.js';
import { buildTree, embeddingKey, leafAt, paramSpecs, type ParamTree } from './spec.js';
import { tokenizerFromJson } from './tokenizer.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;
const isTensor = (x: unknown): x is Tensor => x instanceof Tensor;

/** GPT-2's causal-mask buffers, stored by the original checkpoints and dropped as transformers drops them. */
const GPT2_BUFFER = /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/;
/** Older Llama checkpoints store the rotary inverse frequencies, a buffer transformers recomputes. */
const LLAMA_BUFFER = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/**
 * The canonical key of a checkpoint key: the original GPT-2 files name their keys without the
 * `transformer.` prefix (`h.0.attn.c_attn.weight`, `wte.weight`), as transformers accepts.
 */
function canonical(c: ModelConfig, key: string): string {
  if (c.family === 'gpt2' && !key.startsWith('transformer.') && key !== 'lm_head.weight') return `transformer.${key}`;
  return key;
}

/** Loads the weight files of `dir` into one Map, key to tensor and the file it came from. */
async function loadWeights(op: string, dir: string, loaded: Map<string, { t: Tensor; file: string }>, all: Tensor[]): Promise<void> {
  const single = join(dir, 'model.safetensors');
  const indexFile = join(dir, 'model.safetensors.index.json');
  const add = (key: string, t: Tensor, file: string): void => {
    const prev = loaded.get(key);
    if (prev) throw new Error(`${op}: the weight "${key}" is in both ${prev.file} and ${file}`);
    loaded.set(key, { t, file });
  };
  if (await exists(single)) {
    const record = await loadSafetensors(single);
    all.push(...Object.values(record));
    for (const [k, t] of Object.entries(record)) add(k, t, single);
    return;
  }
  if (!(await exists(indexFile))) throw new Error(`${op}: ${dir} has neither model.safetensors nor model.safetensors.index.json (${single}: not found)`);
  const index = await readJson(op, indexFile);
  const map = index !== null && typeof index === 'object' && Object.hasOwn(index, 'weight_map') ? (index as { weight_map: unknown }).weight_map : undefined;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${op}: ${indexFile}: "weight_map" must be an object of weight name to shard file`);
  const wanted = new Map<string, string>();
  for (const [key, shard] of Object.entries(map)) {
    // Shard names are file names beside the index: never a path that leaves the directory.
    if (typeof shard !== 'string' || shard !== basename(shard) || shard === '..' || shard === '.' || !shard.endsWith('.safetensors') || shard.includes('\\')) {
      throw new Error(`${op}: ${indexFile}: the shard of "${key}" must be a .safetensors file name in the same directory, got ${JSON.stringify(shard)}`);
    }
    wanted.set(key, shard);
  }
  const shards = [...new Set(wanted.values())];
  // Every shard is there before any is read.
  for (const shard of shards) if (!(await exists(join(dir, shard)))) throw new Error(`${op}: ${join(dir, shard)}: not found (a shard listed in ${indexFile})`);
  for (const shard of shards) {
    const file = join(dir, shard);
    const record = await loadSafetensors(file);
    all.push(...Object.values(record));
    for (const [k, t] of Object.entries(record)) {
      add(k, t, file);
      if (wanted.get(k) !== shard) throw new Error(`${op}: ${file} holds "${k}", which ${indexFile} ${wanted.has(k) ? `places in ${wanted.get(k)}` : 'does not list'}`);
    }
  }
  for (const [k, shard] of wanted) if (!loaded.has(k)) throw new Error(`${op}: ${join(dir, shard)} lacks "${k}", which ${indexFile} places there`);
}

/**
 * Loads a Hugging Face checkpoint directory: `config.json`, `model.safetensors` or the shards that
 * `model.safetensors.index.json` lists, and `tokenizer.json` when present. F16, BF16 and F64
 * weights load as float32; GPT-2's Conv1D weights are transposed to `[out, in]`.
 *
 * Accepted variants, as transformers accepts them: GPT-2 keys without the `transformer.` prefix;
 * GPT-2's causal-mask buffers `h.N.attn.bias` and `h.N.attn.masked_bias` and Llama's
 * `rotary_emb.inv_freq` buffers (dropped); a tied `lm_head.weight` omitted, or present and equal to
 * the token embedding (dropped). Anything else is an Error naming the file and the fault, and nothing
 * stays loaded: a missing file, a missing or unknown `model_type`, a weight that is missing, has the
 * wrong shape (naming the key, the expected and the found shape) or is integer, an unexpected key.
 *
 * @param dir - The checkpoint directory.
 *
 * @example
 * ```ts
 * const model = await loadPretrained('checkpoints/gpt2');
 * model.config.numLayers; // 12
 * const ids = model.tokenizer!.encode('It was the best of times');
 * const logits = model.forward(model.params, [ids]);
 * ```
 */
export async function loadPretrained(dir: string): Promise<Model> {
  const op = 'loadPretrained';
  if (typeof dir !== 'string' || dir === '') throw new Error(`${op}: dir must be a directory path, got ${String(dir)}`);
  const configFile = join(dir, 'config.json');
  const config = parseConfig(await readJson(op, configFile), configFile);
  const tokFile = join(dir, 'tokenizer.json');
  let tokenizer: ReturnType<typeof tokenizerFromJson> | undefined;
  let tokText: string | undefined;
  if (await exists(tokFile)) {
    tokText = await readFile(tokFile, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(tokText);
    } catch (e) {
      throw new Error(`${op}: ${tokFile}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    tokenizer = tokenizerFromJson(json, `${op}: ${tokFile}`);
  }
  const loaded = new Map<string, { t: Tensor; file: string }>();
  // Every tensor made, so that an Error leaves nothing loaded.
  const all: Tensor[] = [];
  try {
    await loadWeights(op, dir, loaded, all);
    // Canonical names; known buffers dropped.
    const byKey = new Map<string, { t: Tensor; file: string; raw: string }>();
    for (const [raw, entry] of loaded) {
      const key = canonical(config, raw);
      if ((config.family === 'gpt2' && GPT2_BUFFER.test(key)) || (config.family === 'llama' && LLAMA_BUFFER.test(key))) continue;
      const prev = byKey.get(key);
      if (prev) throw new Error(`${op}: "${raw}" (${entry.file}) and "${prev.raw}" (${prev.file}) name the same weight "${key}"`);
      byKey.set(key, { ...entry, raw });
    }
    const specs = paramSpecs(config);
    const known = new Set(specs.map((s) => s.key));
    if (config.tieWordEmbeddings && byKey.has('lm_head.weight')) {
      const head = byKey.get('lm_head.weight')!;
      const emb = byKey.get(embeddingKey(config));
      if (emb && head.t.shape.join() === emb.t.shape.join() && head.t.dtype === 'float32' && emb.t.dtype === 'float32') {
        const diff = tidy(() => max(abs(sub(head.t, emb.t))));
        const d = (await diff.data())[0];
        diff.dispose();
        if (d !== 0) throw new Error(`${op}: ${head.file}: "lm_head.weight" differs from "${embeddingKey(config)}" (by up to ${d}), but tie_word_embeddings is true: the head would be the embedding`);
        byKey.delete('lm_head.weight');
      }
    }
    const unexpected = [...byKey.keys()].filter((k) => !known.has(k));
    if (unexpected.length > 0) {
      const first = byKey.get(unexpected[0])!;
      throw new Error(`${op}: ${first.file}: unexpected weight${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).map((k) => `"${byKey.get(k)!.raw}"`).join(', ')}${unexpected.length > 5 ? `, ... (${unexpected.length} in all)` : ''} for model_type "${config.modelType}"`);
    }
    const entries: [string, Tensor][] = [];
    for (const s of specs) {
      const e = byKey.get(s.key);
      if (!e) throw new Error(`${op}: ${dir}: the weight "${s.key}" is missing from the checkpoint`);
      const want = s.conv1d ? [...s.shape].reverse() : s.shape;
      if (e.t.shape.join() !== want.join() || e.t.rank !== want.length) {
        throw new Error(`${op}: ${e.file}: "${e.raw}" has shape ${fmt(e.t.shape)}, expected ${fmt(want)}${s.conv1d ? ' (a Conv1D weight, stored [in, out])' : ''}`);
      }
      if (e.t.dtype !== 'float32') throw new Error(`${op}: ${e.file}: "${e.raw}" holds integers; weights must be floating point`);
      if (s.conv1d) {
        const t = transpose(e.t);
        all.push(t);
        entries.push([s.key, t]);
      } else entries.push([s.key, e.t]);
    }
    const params = buildTree(entries);
    // The transposed originals are no longer needed; nothing else was kept.
    const kept = new Set(entries.map(([, t]) => t));
    for (const t of all) if (!kept.has(t)) t.dispose();
    const model = makeModel(config, params, tokenizer);
    if (tokText !== undefined) tokenizerTexts.set(model, tokText);
    return model;
  } catch (e) {
    for (const t of all) t.dispose();
    throw e;
  }
}

/**
 * Options of {@link savePretrained}.
 *
 * @example
 * ```ts
 * const opts: SavePretrainedOptions = { maxShardSize: '2GB' };
 * ```
 */
export interface SavePretrainedOptions {
  /**
   * The largest shard, in bytes or as transformers writes it (`'5GB'`, the default, `'500MiB'`).
   * Weights that fit are one `model.safetensors`; more are split, in checkpoint order, into
   * `model-00001-of-0000N.safetensors` files listed by `model.safetensors.index.json`. A weight
   * bigger than the limit gets a shard of its own, as in transformers.
   */
  maxShardSize?: number | string;
}

/**
 * Writes `params` as a Hugging Face checkpoint of `model`'s architecture into `dir` (created if
 * needed): `config.json` (the model's config, `torch_dtype` float32), the weights (F32, the
 * checkpoint's key names, GPT-2's Conv1D weights back as `[in, out]`, a tied head omitted) as
 * `model.safetensors` or, over `maxShardSize`, as shards with `model.safetensors.index.json`
 * (transformers' names and index: `metadata.total_size`, `weight_map`), and `tokenizer.json` when
 * the model has one (loaded with it, or given to createModel). PyTorch's transformers loads the
 * directory with `AutoModelForCausalLM.from_pretrained(dir)`.
 *
 * `params` is checked in full (every key present with its shape, no other leaf) before anything is
 * written. Each file is written atomically (a temporary file renamed over it), and a checkpoint the
 * directory already holds is replaced in an order that a crash cannot break: until the new weights
 * are committed (the new `model.safetensors` renamed into place, or the new index written and an old
 * `model.safetensors` removed), the old checkpoint is what loads, whole; the old shards and index
 * are removed only after. `config.json` and `tokenizer.json` are written after the weights.
 *
 * @param model - Gives the architecture and config.
 * @param params - The weights to write, e.g. `mergeParams(trainable, frozen)` after SORSA training.
 * @param dir - The directory.
 * @param options - The shard size.
 *
 * @example
 * ```ts
 * await savePretrained(model, mergeParams(trainable, frozen), 'out/gpt2-sorsa');
 * await savePretrained(model, params, 'out/big', { maxShardSize: '2GB' }); // shards and an index
 * // Python: AutoModelForCausalLM.from_pretrained('out/gpt2-sorsa')
 * ```
 */
export async function savePretrained(model: Model, params: ParamTree, dir: string, options: SavePretrainedOptions = {}): Promise<void> {
  const op = 'savePretrained';
  if (!model || typeof model !== 'object') throw new Error(`${op}: model must be a Model (from loadPretrained or createModel)`);
  const config = parseConfig(model.config, `${op}: model.config`);
  if (typeof dir !== 'string' || dir === '') throw new Error(`${op}: dir must be a directory path, got ${String(dir)}`);
  if (options === null || typeof options !== 'object') throw new Error(`${op}: options must be an object { maxShardSize? }, got ${String(options)}`);
  const maxBytes = parseShardSize(op, options.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  const specs = paramSpecs(config);
  const known = new Set(specs.map((s) => s.key));
  const extra = tree.leafPaths(params).filter((p) => !known.has(p));
  if (extra.length > 0) throw new Error(`${op}: params has leaves that are not weights of this ${config.modelType} model: ${extra.slice(0, 5).join(', ')}`);
  for (const s of specs) {
    const t = leafAt(op, params, s.key, isTensor);
    if (t.shape.join() !== s.shape.join() || t.rank !== s.shape.length) throw new Error(`${op}: params "${s.key}" has shape ${fmt(t.shape)}, expected ${fmt(s.shape)}`);
    if (t.dtype !== 'float32') throw new Error(`${op}: params "${s.key}" is ${t.dtype}, expected float32`);
  }
  const plan = planShards(specs.map((s) => ({ key: s.key, bytes: 4 * s.shape.reduce((a, b) => a * b, 1) })), maxBytes);
  const bySpec = new Map(specs.map((s) => [s.key, s]));
  const names = new Set(plan.files.map((f) => f.name));
  await mkdir(dir, { recursive: true });
  const prev = await previousCheckpoint(op, dir);
  // New shards may take the names of the old ones: keep the old checkpoint whole under other names first.
  if (plan.files.length > 1) await protectPrevious(op, dir, prev, names);
  for (const file of plan.files) {
    // One shard's Conv1D weights transposed at a time, so a big model never holds two copies of them all.
    const temps: Tensor[] = [];
    try {
      const record: Record<string, Tensor> = Object.create(null) as Record<string, Tensor>;
      for (const key of file.keys) {
        const t = leafAt(op, params, key, isTensor);
        if (bySpec.get(key)!.conv1d) {
          const tt = transpose(t);
          temps.push(tt);
          record[key] = tt;
        } else record[key] = t;
      }
      await saveSafetensors(record, join(dir, file.name), { format: 'pt' });
    } finally {
      for (const t of temps) t.dispose();
    }
  }
  const json = { ...config.json, torch_dtype: 'float32' };
  await writeTextAtomic(op, join(dir, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
  const tok = tokenizerTexts.get(model);
  if (tok !== undefined) await writeTextAtomic(op, join(dir, 'tokenizer.json'), tok);
  if (plan.files.length > 1) {
    await writeTextAtomic(op, join(dir, INDEX), indexText(plan));
    names.add(INDEX);
  }
  // Committed: the old model.safetensors (which loaders prefer to an index) goes first, then the rest.
  await removeStale(dir, names);
}
