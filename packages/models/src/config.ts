/**
 * Parsing Hugging Face `config.json` files for the GPT-2 and Llama families. Every field a config
 * may carry is either understood (and checked), known not to change the forward pass (and kept only
 * to be written back), or refused with an Error naming it: nothing is silently ignored.
 * @module
 */

/** The `model_type` values this package runs. */
export type ModelType = 'gpt2' | 'llama' | 'qwen2' | 'mistral';

/**
 * A parsed model configuration: the architecture's numbers under one set of names for both
 * families, and the `config.json` object it came from (written back by `savePretrained`).
 *
 * @example
 * ```ts
 * const config = parseConfig({ model_type: 'gpt2', n_layer: 2, n_head: 2, n_embd: 8, vocab_size: 50, n_positions: 16 });
 * config.family; // 'gpt2'
 * config.headDim; // 4
 * ```
 */
export interface ModelConfig {
  /** The checkpoint's `model_type`. */
  readonly modelType: ModelType;
  /** Which forward pass runs it: `gpt2`, or `llama` (also for `qwen2` and `mistral`). */
  readonly family: 'gpt2' | 'llama';
  /** Vocabulary size (`vocab_size`). */
  readonly vocabSize: number;
  /** Model width (`n_embd` / `hidden_size`). */
  readonly hiddenSize: number;
  /** Number of blocks (`n_layer` / `num_hidden_layers`). */
  readonly numLayers: number;
  /** Query heads (`n_head` / `num_attention_heads`). */
  readonly numHeads: number;
  /** Key/value heads (`num_key_value_heads`; equal to `numHeads` for GPT-2). */
  readonly numKvHeads: number;
  /** Features per head (`head_dim`, else hiddenSize / numHeads). */
  readonly headDim: number;
  /** MLP width (`n_inner` or 4 n_embd / `intermediate_size`). */
  readonly intermediateSize: number;
  /** Longest sequence (`n_positions` / `max_position_embeddings`). */
  readonly maxPositions: number;
  /** Norm epsilon (`layer_norm_epsilon` / `rms_norm_eps`). */
  readonly normEps: number;
  /** Standard deviation of `createModel`'s normal initialization (`initializer_range`). */
  readonly initializerRange: number;
  /** Rotary base (`rope_theta`); 0 for GPT-2, which has learned positions. */
  readonly ropeTheta: number;
  /** Whether q, k and v projections have biases (GPT-2, Qwen2, Llama with `attention_bias`). */
  readonly qkvBias: boolean;
  /** Whether the attention output projection has a bias (GPT-2, Llama with `attention_bias`). */
  readonly outBias: boolean;
  /** Whether MLP projections have biases (GPT-2, Llama with `mlp_bias`). */
  readonly mlpBias: boolean;
  /** Whether the output head reuses the token embedding (`tie_word_embeddings`). */
  readonly tieWordEmbeddings: boolean;
  /** Sliding attention window (Mistral, Qwen2 with `use_sliding_window`), or null: sequences longer than it are refused. */
  readonly slidingWindow: number | null;
  /** The `config.json` object as given (a copy). */
  readonly json: Readonly<Record<string, unknown>>;
}

/** Configs made by parseConfig: createModel and friends accept these as they are. */
const parsed = new WeakSet<object>();

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Fields of Hugging Face's PretrainedConfig and of the families' configs that do not change the
 * forward pass: bookkeeping (names, versions, dtypes), special token ids, generation defaults,
 * dropout rates (forward here is the evaluation-mode pass, without dropout), and fields of task
 * heads this package does not build. They are kept in `json` and written back.
 */
const INERT = new Set([
  'architectures', 'transformers_version', 'torch_dtype', 'dtype', '_name_or_path', 'name_or_path', 'use_cache',
  'bos_token_id', 'eos_token_id', 'pad_token_id', 'sep_token_id', 'decoder_start_token_id',
  'id2label', 'label2id', 'num_labels', 'problem_type', 'finetuning_task', 'task_specific_params', 'tokenizer_class', 'prefix',
  'return_dict', 'output_hidden_states', 'output_attentions', 'torchscript', 'use_return_dict',
  'max_length', 'min_length', 'do_sample', 'early_stopping', 'num_beams', 'temperature', 'top_k', 'top_p', 'repetition_penalty',
  'length_penalty', 'no_repeat_ngram_size', 'bad_words_ids', 'num_return_sequences', 'chunk_size_feed_forward',
  'is_encoder_decoder', 'is_decoder', 'add_cross_attention', 'tie_encoder_decoder', 'pruned_heads', 'cross_attention_hidden_size',
  'quantization_config_unused', 'initializer_factor', 'model_type',
  // GPT-2: dropout rates, the legacy alias of n_positions, and the sequence-summary head's fields.
  'attn_pdrop', 'embd_pdrop', 'resid_pdrop', 'summary_type', 'summary_use_proj', 'summary_activation', 'summary_proj_to_labels', 'summary_first_dropout',
  'n_ctx',
  // GPT-2: upcasting attention scores to float32 changes nothing here (everything is float32).
  'reorder_and_upcast_attn',
  // Llama family: dropout, and tensor-parallel pretraining slices (the same products, summed in pieces).
  'attention_dropout', 'pretraining_tp',
]);

type Json = Record<string, unknown>;

/** Refuses the keys __proto__, constructor and prototype at any depth of an untrusted JSON value. */
function refuseReserved(v: unknown, source: string, path: string, depth = 0): void {
  if (v === null || typeof v !== 'object') return;
  if (depth > 64) throw new Error(`${source}: the config nests deeper than 64 levels at "${path}"`);
  for (const k of Object.keys(v)) {
    const p = path ? `${path}.${k}` : k;
    if (RESERVED.has(k)) throw new Error(`${source}: the key "${p}" is not allowed in a config (__proto__, constructor and prototype are refused)`);
    refuseReserved((v as Json)[k], source, p, depth + 1);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(v);
  }
}

/** Reads fields of one config, naming the source and the field in every Error. */
class Fields {
  readonly used = new Set<string>();
  constructor(
    private readonly json: Json,
    private readonly where: string,
  ) {}

  fail(field: string, fault: string): Error {
    return new Error(`${this.where}: "${field}" ${fault}`);
  }

  has(field: string): boolean {
    return Object.hasOwn(this.json, field) && this.json[field] !== null && this.json[field] !== undefined;
  }

  raw(field: string): unknown {
    this.used.add(field);
    return Object.hasOwn(this.json, field) ? this.json[field] : undefined;
  }

  int(field: string, dflt: number | null, min = 1): number {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      if (dflt === null) throw this.fail(field, 'is required');
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw this.fail(field, `must be an integer >= ${min}, got ${describe(v)}`);
    return v;
  }

  positive(field: string, dflt: number): number {
    const v = this.raw(field);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.fail(field, `must be a finite number > 0, got ${describe(v)}`);
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.raw(field);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw this.fail(field, `must be true or false, got ${describe(v)}`);
    return v;
  }

  /** A field this package supports only at the given values (absent or null counts as the first). */
  only(field: string, allowed: readonly unknown[], why: string): unknown {
    const v = this.raw(field);
    if (v === undefined || v === null) return allowed[0];
    if (!allowed.includes(v)) throw this.fail(field, `= ${describe(v)} is not supported (${why})`);
    return v;
  }

  /** Refuses every field neither read nor known to be inert. */
  finish(): void {
    for (const k of Object.keys(this.json)) {
      if (!this.used.has(k) && !INERT.has(k)) throw this.fail(k, `= ${describe(this.json[k])} is not a field this package understands for model_type "${String(this.json.model_type)}"; refusing rather than ignoring it`);
    }
  }
}

/**
 * Parses a Hugging Face `config.json` object of model_type `gpt2`, `llama`, `qwen2` or `mistral`.
 * Missing fields take the defaults of transformers' config classes. Any field that would change the
 * computation in a way this package does not implement (`rope_scaling`, an activation other than
 * the family's, `scale_attn_by_inverse_layer_idx`, ...) and any field it does not know is an Error
 * naming the field and its value; the keys `__proto__`, `constructor` and `prototype` are refused.
 *
 * @param json - The parsed `config.json`.
 * @param source - Names the config in Errors (the file path, by `loadPretrained`).
 *
 * @example
 * ```ts
 * const config = parseConfig(JSON.parse(await readFile('config.json', 'utf8')), 'config.json');
 * parseConfig({ model_type: 'llama', rope_scaling: { type: 'linear', factor: 2 } }); // Error: "rope_scaling" ... is not supported
 * ```
 */
export function parseConfig(json: unknown, source = 'config'): ModelConfig {
  if (json !== null && typeof json === 'object' && parsed.has(json)) return json as ModelConfig;
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source}: a config must be a JSON object, got ${describe(json)}`);
  refuseReserved(json, source, '');
  if (Object.getPrototypeOf(json) !== Object.prototype && Object.getPrototypeOf(json) !== null) throw new Error(`${source}: a config must be a plain object`);
  // A null-prototype copy: later reads of the copy can never reach Object.prototype.
  const copy: Json = Object.assign(Object.create(null) as Json, structuredClone(json as Json));
  const f = new Fields(copy, source);
  if (!Object.hasOwn(copy, 'model_type')) throw new Error(`${source}: "model_type" is missing (expected one of gpt2, llama, qwen2, mistral)`);
  const type = copy.model_type;
  let config: Omit<ModelConfig, 'json'>;
  if (type === 'gpt2') config = gpt2(f);
  else if (type === 'llama' || type === 'qwen2' || type === 'mistral') config = llama(f, type);
  else throw new Error(`${source}: "model_type" = ${describe(type)} is not supported (expected one of gpt2, llama, qwen2, mistral)`);
  f.finish();
  const out: ModelConfig = Object.freeze({ ...config, json: Object.freeze(copy) });
  parsed.add(out);
  return out;
}

function gpt2(f: Fields): Omit<ModelConfig, 'json'> {
  const hiddenSize = f.int('n_embd', 768);
  const numHeads = f.int('n_head', 12);
  if (hiddenSize % numHeads !== 0) throw f.fail('n_head', `= ${numHeads} must divide n_embd = ${hiddenSize}`);
  f.only('activation_function', ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'], "GPT-2's tanh-approximated GELU is the one implemented");
  f.only('scale_attn_weights', [true], 'attention scores are scaled by 1/sqrt(head_dim)');
  f.only('scale_attn_by_inverse_layer_idx', [false], 'no per-layer score scaling is implemented');
  const maxPositions = f.int('n_positions', 1024);
  return {
    modelType: 'gpt2',
    family: 'gpt2',
    vocabSize: f.int('vocab_size', 50257),
    hiddenSize,
    numLayers: f.int('n_layer', 12),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: f.int('n_inner', 4 * hiddenSize),
    maxPositions,
    normEps: f.positive('layer_norm_epsilon', 1e-5),
    initializerRange: f.positive('initializer_range', 0.02),
    ropeTheta: 0,
    qkvBias: true,
    outBias: true,
    mlpBias: true,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    slidingWindow: null,
  };
}

/** transformers' defaults per model_type for the fields where they differ. */
const LLAMA_DEFAULTS: Record<'llama' | 'qwen2' | 'mistral', { vocab: number; inter: number; kv: number | null; maxPos: number }> = {
  llama: { vocab: 32000, inter: 11008, kv: null, maxPos: 2048 },
  qwen2: { vocab: 151936, inter: 22016, kv: 32, maxPos: 32768 },
  mistral: { vocab: 32000, inter: 14336, kv: 8, maxPos: 4096 * 32 },
};

function llama(f: Fields, type: 'llama' | 'qwen2' | 'mistral'): Omit<ModelConfig, 'json'> {
  const d = LLAMA_DEFAULTS[type];
  const hiddenSize = f.int('hidden_size', 4096);
  const numHeads = f.int('num_attention_heads', 32);
  const numKvHeads = f.int('num_key_value_heads', d.kv ?? numHeads);
  if (numHeads % numKvHeads !== 0) throw f.fail('num_key_value_heads', `= ${numKvHeads} must divide num_attention_heads = ${numHeads}`);
  if (!f.has('head_dim') && hiddenSize % numHeads !== 0) throw f.fail('num_attention_heads', `= ${numHeads} must divide hidden_size = ${hiddenSize}`);
  const headDim = f.int('head_dim', Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) throw f.fail('head_dim', `= ${headDim} must be even for rotary embeddings`);
  f.only('hidden_act', ['silu'], 'the SwiGLU MLP uses silu');
  f.only('rope_scaling', [null], 'rotary embeddings are implemented without scaling');
  // Llama's attention_bias puts biases on q, k, v and o; Qwen2 always has them on q, k, v only.
  const attentionBias = type === 'llama' ? f.bool('attention_bias', false) : false;
  const mlpBias = type === 'llama' ? f.bool('mlp_bias', false) : false;
  let slidingWindow: number | null = null;
  if (type === 'mistral') {
    const w = f.raw('sliding_window');
    slidingWindow = w === null || w === undefined ? null : f.int('sliding_window', null);
  } else if (type === 'qwen2') {
    const use = f.bool('use_sliding_window', false);
    const w = f.int('sliding_window', 4096);
    f.int('max_window_layers', 28, 0);
    // Which layers slide depends on max_window_layers; refusing sequences longer than the window
    // in every layer keeps all of them exact.
    slidingWindow = use ? w : null;
  }
  return {
    modelType: type,
    family: 'llama',
    vocabSize: f.int('vocab_size', d.vocab),
    hiddenSize,
    numLayers: f.int('num_hidden_layers', 32),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size', d.inter),
    maxPositions: f.int('max_position_embeddings', d.maxPos),
    normEps: f.positive('rms_norm_eps', 1e-6),
    initializerRange: f.positive('initializer_range', 0.02),
    ropeTheta: f.positive('rope_theta', 10000),
    qkvBias: type === 'qwen2' || attentionBias,
    outBias: attentionBias,
    mlpBias,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    slidingWindow,
  };
}
