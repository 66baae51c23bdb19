/**
 * The Model object and `createModel`: an architecture with fresh weights.
 * @module
 */
import { nn, ones, random, tidy, zeros, type Tensor } from '@sorsajs/core';
import { parseConfig, type ModelConfig } from './config.js';
import { checkIds, run, type KvCache } from './forward.js';
import { buildTree, paramSpecs, type ParamTree } from './spec.js';
import { tokenizerFromJson, type TextTokenizer } from './tokenizer.js';
import type { ForwardParams } from './linear-weight.js';

/**
 * A language model: its config, its parameters as a tree whose leaf paths are the checkpoint's key
 * names, a pure forward pass, and (when loaded with a `tokenizer.json`) its tokenizer.
 *
 * @example
 * ```ts
 * const model = await loadPretrained('checkpoints/gpt2');
 * const logits = model.forward(model.params, [model.tokenizer!.encode('Call me Ishmael.')]);
 * logits.shape; // [1, T, 50257]
 * ```
 */
export interface Model {
  /** The parsed config. */
  readonly config: ModelConfig;
  /** The weights: `transformer.h.0.attn.c_attn.weight` and so on, linear weights `[out, in]`. */
  readonly params: ParamTree;
  /**
   * Logits `[B, T, vocab]` for ids `[B, T]`, pure and differentiable in `params` (any tree of the
   * same paths, e.g. `mergeParams(trainable, frozen)` of `@sorsajs/sorsa`; its linear weights may be
   * `LinearWeight`s, as `factoredParams(trainable, frozen)` gives). Ids given as rows of
   * numbers are checked on the host (integers in `[0, vocab_size)`); an int32 tensor's values live
   * on the device and are not: an id outside the vocabulary there gives NaN logits for its row.
   * A sequence longer than `max_position_embeddings` is an Error either way.
   */
  forward(params: ForwardParams, ids: Tensor | readonly (readonly number[])[]): Tensor;
  /** The tokenizer of the checkpoint's `tokenizer.json`, when it has one. */
  readonly tokenizer?: TextTokenizer;
}

/**
 * The forward pass of `config`'s architecture over `ids`, continuing `cache` (null: from position 0),
 * returning the logits of these positions and the cache extended by them. What `generate` runs; the
 * old cache is left as it was (dispose it yourself).
 *
 * @example
 * ```ts
 * let { logits, cache } = forwardWithCache(model.config, model.params, [[1, 2, 3]], null);
 * ({ logits, cache } = forwardWithCache(model.config, model.params, [[4]], cache)); // one position
 * ```
 */
export function forwardWithCache(config: ModelConfig, params: ForwardParams, ids: Tensor | readonly (readonly number[])[], cache: KvCache | null): CachedForward {
  const op = 'forwardWithCache';
  const c = parseConfig(config);
  const { t, made } = checkIds(op, c, ids, cache?.length ?? 0);
  try {
    if (cache && t.shape[0] !== cache.layers[0]?.k.shape[0]) throw new Error(`${op}: ids have batch ${t.shape[0]}, the cache ${cache.layers[0]?.k.shape[0]}`);
    const r = run(op, c, params, t, cache, true);
    return { logits: r.logits, cache: r.cache as KvCache };
  } finally {
    if (made) t.dispose();
  }
}

/**
 * What {@link forwardWithCache} returns.
 *
 * @example
 * ```ts
 * const { logits, cache }: CachedForward = forwardWithCache(config, params, [[1, 2]], null);
 * ```
 */
export interface CachedForward {
  /** Logits of the new positions, `[B, T, vocab]`. */
  logits: Tensor;
  /** The cache extended by the new positions. */
  cache: KvCache;
}

/**
 * The `tokenizer.json` text of each model that has one (loaded with it, or given to createModel),
 * which savePretrained writes beside the weights. Kept outside the Model object so that a Model stays
 * a plain, readonly value.
 */
export const tokenizerTexts = new WeakMap<Model, string>();

/** The Model object for a parsed config and its params. */
export function makeModel(config: ModelConfig, params: ParamTree, tokenizer?: TextTokenizer): Model {
  const forward = (p: ForwardParams, ids: Tensor | readonly (readonly number[])[]): Tensor => {
    const { t, made } = checkIds('forward', config, ids);
    try {
      return run('forward', config, p, t, null, false).logits;
    } finally {
      if (made) t.dispose();
    }
  };
  return tokenizer ? { config, params, forward, tokenizer } : { config, params, forward };
}

/**
 * A model of `config`'s architecture with fresh weights, initialized as transformers initializes
 * each family: linear and embedding weights normal with std `initializer_range` (GPT-2's `c_proj`
 * weights with std `initializer_range / sqrt(2 n_layer)`), biases 0, norm weights 1. Parameter `i`
 * of the checkpoint order draws from `random.foldIn(key, i)`.
 *
 * With `options.tokenizer` (a parsed `tokenizer.json`, e.g. `trainTokenizer(...).json`), the model
 * has that tokenizer and savePretrained writes its `tokenizer.json`, so that a model created and
 * pretrained here is saved as a complete Hugging Face checkpoint directory. The tokenizer's ids must
 * fit the config's `vocab_size`.
 *
 * @param config - A `config.json` object (parsed with {@link parseConfig}) or a parsed config.
 * @param key - The PRNG key of the initialization.
 * @param options - The model's tokenizer, if any.
 *
 * @example
 * ```ts
 * const model = createModel({ model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
 *   num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 256, max_position_embeddings: 128 }, random.key(0));
 * model.params.model.layers[0].self_attn.k_proj.weight.shape; // [32, 64]
 * ```
 */
export function createModel(config: ModelConfig | Record<string, unknown>, key: random.Key, options: CreateModelOptions = {}): Model {
  const c = parseConfig(config, 'createModel: config');
  if (!(key instanceof random.Key)) throw new Error(`createModel: key must be a random.Key (random.key(seed)), got ${String(key)}`);
  if (options === null || typeof options !== 'object') throw new Error(`createModel: options must be an object { tokenizer? }, got ${String(options)}`);
  let tokenizer: TextTokenizer | undefined;
  let text: string | undefined;
  if (options.tokenizer !== undefined) {
    const where = 'createModel: options.tokenizer';
    tokenizer = tokenizerFromJson(options.tokenizer, where);
    const top = largestId(options.tokenizer);
    if (top >= c.vocabSize) throw new Error(`${where}: the tokenizer has token id ${top}, outside the model's vocab_size ${c.vocabSize}`);
    text = `${JSON.stringify(options.tokenizer, null, 2)}\n`;
  }
  const params = tidy(() =>
    buildTree(
      paramSpecs(c).map((s, i): [string, Tensor] => {
        const t = s.init.kind === 'normal' ? nn.normalInit(random.foldIn(key, i), s.shape, s.init.std) : s.init.kind === 'ones' ? ones(s.shape) : zeros(s.shape);
        return [s.key, t];
      }),
    ),
  );
  const model = makeModel(c, params, tokenizer);
  if (text !== undefined) tokenizerTexts.set(model, text);
  return model;
}

/**
 * Options of {@link createModel}.
 *
 * @example
 * ```ts
 * const opts: CreateModelOptions = { tokenizer: trainTokenizer(text, { vocabSize: 1024 }).json };
 * ```
 */
export interface CreateModelOptions {
  /** A parsed `tokenizer.json` (any that tokenizerFromJson reads), given to the model and saved with it. */
  tokenizer?: object;
}

/** The largest id a tokenizer.json gives a token: its model's vocabulary (an object or, for Unigram, a list) and its added tokens. */
function largestId(json: object): number {
  let top = -1;
  const model = (json as { model?: { vocab?: unknown } }).model;
  const vocab = model && typeof model === 'object' ? model.vocab : undefined;
  if (Array.isArray(vocab)) top = vocab.length - 1;
  else if (vocab && typeof vocab === 'object') for (const v of Object.values(vocab)) if (typeof v === 'number' && v > top) top = v;
  const added = (json as { added_tokens?: unknown }).added_tokens;
  if (Array.isArray(added)) for (const t of added) if (t && typeof (t as { id?: unknown }).id === 'number' && (t as { id: number }).id > top) top = (t as { id: number }).id;
  return top;
}
