/**
 * A float64 reference forward pass of the two transformer families `@sorsajs/models` runs (GPT-2;
 * Llama, which also covers Qwen2 and Mistral), written with plain loops from the architectures'
 * definitions (transformers' `modeling_gpt2.py` and `modeling_llama.py`) and reading weights by
 * checkpoint key, so that a model's logits (after fine-tuning, merging, saving and loading) can be
 * compared with what the architecture says they are. Also: reading a parameter tree back in float64,
 * seeded random weights, and the float32 error bound of the logits.
 * @module
 */
import * as c from '@sorsajs/core';
import { EPS32, randomData } from './host.js';

/**
 * What the reference needs to know of a model: the fields of the same names in `@sorsajs/models`'
 * `ModelConfig`, so a model's `config` can be passed as it is.
 *
 * @example
 * ```ts
 * const model = createModel({ model_type: 'gpt2', vocab_size: 23, n_positions: 12, n_embd: 8, n_layer: 2, n_head: 2 }, random.key(0));
 * const cfg: TransformerConfig = model.config;
 * ```
 */
export interface TransformerConfig {
  /** `gpt2` (learned positions, LayerNorm, GELU MLP) or `llama` (rotary positions, RMSNorm, SwiGLU MLP, grouped KV heads). */
  readonly family: 'gpt2' | 'llama';
  /** Vocabulary size: the logits' last dimension. */
  readonly vocabSize: number;
  /** Model width. */
  readonly hiddenSize: number;
  /** Number of blocks. */
  readonly numLayers: number;
  /** Query heads. */
  readonly numHeads: number;
  /** Key/value heads (query head h reads KV head ⌊h / (numHeads / numKvHeads)⌋). */
  readonly numKvHeads: number;
  /** Features per head. */
  readonly headDim: number;
  /** MLP width. */
  readonly intermediateSize: number;
  /** Longest sequence (only `transformerTolerance` reads it). */
  readonly maxPositions: number;
  /** Norm epsilon. */
  readonly normEps: number;
  /** Rotary base (Llama). */
  readonly ropeTheta: number;
  /** Whether q, k and v projections have biases (Llama family; GPT-2's always do). */
  readonly qkvBias: boolean;
  /** Whether the attention output projection has a bias (Llama family; GPT-2's always does). */
  readonly outBias: boolean;
  /** Whether the output head is the token embedding. */
  readonly tieWordEmbeddings: boolean;
  /** Llama-family MLP biases: not modelled, so `true` is refused. */
  readonly mlpBias?: boolean;
  /** A sliding attention window: not modelled, so sequences longer than it are refused. */
  readonly slidingWindow?: number | null;
}

/**
 * Weights by checkpoint key (`transformer.h.0.attn.c_attn.weight`, `model.layers.0.self_attn.q_proj.weight`,
 * ...), row-major, linear weights `[out, in]` as `@sorsajs/models` holds them.
 *
 * @example
 * ```ts
 * const w: ReferenceWeights = await readWeights(model.params);
 * w.get('transformer.wte.weight'); // [vocab, hidden] in float64
 * ```
 */
export type ReferenceWeights = ReadonlyMap<string, ArrayLike<number>>;

/** y [N, out] = x [N, in] Wᵀ + b. */
function linear(x: Float64Array, N: number, W: ArrayLike<number>, out: number, inp: number, b?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(N * out);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inp; i++) s += x[n * inp + i] * W[o * inp + i];
      y[n * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, N: number, D: number, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let i = 0; i < D; i++) m += x[n * D + i];
    m /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[n * D + i] - m) ** 2;
    v /= D;
    for (let i = 0; i < D; i++) y[n * D + i] = ((x[n * D + i] - m) / Math.sqrt(v + eps)) * w[i] + b[i];
  }
  return y;
}

function rmsNorm(x: Float64Array, N: number, D: number, w: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += x[n * D + i] ** 2;
    const r = 1 / Math.sqrt(s / D + eps);
    for (let i = 0; i < D; i++) y[n * D + i] = x[n * D + i] * r * w[i];
  }
  return y;
}

/** GPT-2's `gelu_new` (the tanh approximation). */
const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const silu = (v: number): number => v / (1 + Math.exp(-v));

/**
 * Causal attention for one sequence: q [T, H*hd], k and v [T, KV*hd]; query head h reads kv head
 * floor(h / (H / KV)). Returns [T, H*hd].
 */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, KV: number, hd: number): Float64Array {
  const out = new Float64Array(T * H * hd);
  const rep = H / KV;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / rep);
    for (let i = 0; i < T; i++) {
      const s = new Float64Array(i + 1);
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < hd; e++) d += q[i * H * hd + h * hd + e] * k[j * KV * hd + g * hd + e];
        s[j] = d / Math.sqrt(hd);
        mx = Math.max(mx, s[j]);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += s[j] = Math.exp(s[j] - mx);
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += (s[j] / z) * v[j * KV * hd + g * hd + e];
        out[i * H * hd + h * hd + e] = acc;
      }
    }
  }
  return out;
}

/** Rotary embedding in transformers' rotate_half convention, in place on x [T, heads*hd]. */
function rope(x: Float64Array, T: number, heads: number, hd: number, theta: number): void {
  const half = hd / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const o = t * heads * hd + h * hd;
      for (let j = 0; j < half; j++) {
        const ang = t / theta ** ((2 * j) / hd);
        const [x1, x2] = [x[o + j], x[o + j + half]];
        x[o + j] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
        x[o + j + half] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
      }
    }
  }
}

/**
 * The logits `[B, T, vocabSize]` (flattened, row-major, float64) of the causal LM `config`
 * describes, with weights `weights`, for token ids `ids` (B rows of T ids, positions 0..T-1, no
 * padding), computed in float64 by plain loops from the architecture's definition: GPT-2 (pre-norm
 * LayerNorm blocks, fused c_attn, `gelu_new` MLP, learned positions, head tied to `wte`) or Llama
 * (RMSNorm, rotary positions in the rotate_half convention, grouped KV heads, SwiGLU MLP, optional
 * q/k/v and o biases, `lm_head` unless tied). Throws naming a key the weights lack.
 *
 * Compare a float32 model against it within `transformerTolerance(config, ref)`.
 *
 * @example
 * ```ts
 * import { readWeights, transformerReference, transformerTolerance } from '@sorsajs/testing';
 * const ids = [[1, 5, 0, 7]];
 * const ref = transformerReference(model.config, await readWeights(params), ids);
 * const got = await model.forward(params, ids).data();
 * const tol = transformerTolerance(model.config, ref);
 * got.forEach((v, i) => expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(tol));
 * ```
 */
export function transformerReference(config: TransformerConfig, weights: ReferenceWeights, ids: readonly (readonly number[])[]): Float64Array {
  const get = (k: string): ArrayLike<number> => {
    const w = weights.get(k);
    if (!w) throw new Error(`transformerReference: no weight ${k}`);
    return w;
  };
  const cfg = config;
  if (cfg.family === 'llama' && cfg.mlpBias) throw new Error('transformerReference: MLP biases (mlp_bias) are not modelled');
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: hd, vocabSize: vocab, normEps: eps } = cfg;
  const T = ids.length ? ids[0].length : 0;
  if (ids.some((row) => row.length !== T)) throw new Error('transformerReference: every row of ids must have the same length');
  if (cfg.slidingWindow != null && T > cfg.slidingWindow) throw new Error(`transformerReference: ${T} positions exceed the sliding window ${cfg.slidingWindow}, which is not modelled`);
  const out = new Float64Array(ids.length * T * vocab);
  ids.forEach((row, b) => {
    let x: Float64Array = new Float64Array(T * D);
    const emb = get(cfg.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');
    const pos = cfg.family === 'gpt2' ? get('transformer.wpe.weight') : null;
    for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) x[t * D + i] = emb[row[t] * D + i] + (pos ? pos[t * D + i] : 0);
    const addInto = (y: Float64Array): void => {
      for (let i = 0; i < x.length; i++) x[i] += y[i];
    };
    for (let l = 0; l < cfg.numLayers; l++) {
      if (cfg.family === 'gpt2') {
        const p = `transformer.h.${l}`;
        const h = layerNorm(x, T, D, get(`${p}.ln_1.weight`), get(`${p}.ln_1.bias`), eps);
        const qkv = linear(h, T, get(`${p}.attn.c_attn.weight`), 3 * D, D, get(`${p}.attn.c_attn.bias`));
        const part = (j: number): Float64Array => {
          const r = new Float64Array(T * D);
          for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) r[t * D + i] = qkv[t * 3 * D + j * D + i];
          return r;
        };
        const a = attention(part(0), part(1), part(2), T, H, H, hd);
        addInto(linear(a, T, get(`${p}.attn.c_proj.weight`), D, D, get(`${p}.attn.c_proj.bias`)));
        const h2 = layerNorm(x, T, D, get(`${p}.ln_2.weight`), get(`${p}.ln_2.bias`), eps);
        const f = linear(h2, T, get(`${p}.mlp.c_fc.weight`), I, D, get(`${p}.mlp.c_fc.bias`)).map(gelu);
        addInto(linear(f, T, get(`${p}.mlp.c_proj.weight`), D, I, get(`${p}.mlp.c_proj.bias`)));
      } else {
        const p = `model.layers.${l}`;
        const h = rmsNorm(x, T, D, get(`${p}.input_layernorm.weight`), eps);
        const bias = (name: string, on: boolean): ArrayLike<number> | undefined => (on ? get(`${p}.self_attn.${name}.bias`) : undefined);
        const q = linear(h, T, get(`${p}.self_attn.q_proj.weight`), H * hd, D, bias('q_proj', cfg.qkvBias));
        const k = linear(h, T, get(`${p}.self_attn.k_proj.weight`), KV * hd, D, bias('k_proj', cfg.qkvBias));
        const v = linear(h, T, get(`${p}.self_attn.v_proj.weight`), KV * hd, D, bias('v_proj', cfg.qkvBias));
        rope(q, T, H, hd, cfg.ropeTheta);
        rope(k, T, KV, hd, cfg.ropeTheta);
        const a = attention(q, k, v, T, H, KV, hd);
        addInto(linear(a, T, get(`${p}.self_attn.o_proj.weight`), D, H * hd, bias('o_proj', cfg.outBias)));
        const h2 = rmsNorm(x, T, D, get(`${p}.post_attention_layernorm.weight`), eps);
        const g = linear(h2, T, get(`${p}.mlp.gate_proj.weight`), I, D).map(silu);
        const u = linear(h2, T, get(`${p}.mlp.up_proj.weight`), I, D);
        addInto(linear(g.map((gv, i) => gv * u[i]), T, get(`${p}.mlp.down_proj.weight`), D, I));
      }
    }
    x = cfg.family === 'gpt2' ? layerNorm(x, T, D, get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), eps) : rmsNorm(x, T, D, get('model.norm.weight'), eps);
    const head = cfg.tieWordEmbeddings ? get(cfg.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight') : get('lm_head.weight');
    out.set(linear(x, T, head, vocab, D), b * T * vocab);
  });
  return out;
}

/**
 * The float32 error bound of a model's logits against `transformerReference`'s `ref`, for weights of
 * order 1 (as `randomWeights` draws them). Every logit is a chain of ~6 ops per layer (norm,
 * projection, attention, projection, MLP twice), each a sum of at most n = max(hiddenSize,
 * intermediateSize, maxPositions) terms rounding by ~n · EPS32 relative to the sum of |terms|;
 * those magnitudes are O(1), so the bound is `4 · EPS32 · n · 6 · (numLayers + 1) · (max |ref| + 1)`,
 * the 4 leaving room for the exp, rsqrt and tanh kernels' own ulps.
 *
 * @example
 * ```ts
 * const tol = transformerTolerance(model.config, ref); // compare |logit - ref| <= tol
 * ```
 */
export function transformerTolerance(config: TransformerConfig, ref: ArrayLike<number>): number {
  const n = Math.max(config.hiddenSize, config.intermediateSize, config.maxPositions);
  let top = 0;
  for (let i = 0; i < ref.length; i++) top = Math.max(top, Math.abs(ref[i]));
  return 4 * EPS32 * n * 6 * (config.numLayers + 1) * (top + 1);
}

/**
 * Every tensor leaf of a parameter tree, by dotted path (`c.tree.leafPaths`), read back as float64:
 * the weights `transformerReference` takes.
 *
 * @example
 * ```ts
 * const w = await readWeights(model.params);
 * w.get('transformer.h.0.attn.c_attn.weight'); // a Float64Array
 * ```
 */
export async function readWeights(params: unknown): Promise<Map<string, Float64Array>> {
  const paths = c.tree.leafPaths(params);
  const leaves = c.tree.leaves(params);
  const m = new Map<string, Float64Array>();
  for (let i = 0; i < paths.length; i++) {
    const leaf = leaves[i];
    if (leaf instanceof c.Tensor) m.set(paths[i], Float64Array.from(await leaf.data()));
  }
  return m;
}

/**
 * A copy of a parameter tree with every tensor leaf replaced by seeded uniform values in [-a, a]
 * (leaf i of the tree from seed `1000 · seed + i`), and norm weights (`ln_1`, `ln_f`, `...layernorm`,
 * `...norm` `.weight`) around 1 instead: weights far larger than a model's initialization, so
 * activations and logits are large and a transposed or misplaced weight shows. The new tensors are
 * made on the current backend; the given tree is not disposed.
 *
 * @example
 * ```ts
 * const params = randomWeights(model.params, 3); // in [-0.5, 0.5], norms in [0.5, 1.5]
 * tree.dispose(model.params);
 * ```
 */
export function randomWeights<P>(params: P, seed: number, a = 0.5): P {
  let i = 0;
  return c.tree.mapWithPath((path, leaf) => {
    const t = leaf as c.Tensor;
    const d = randomData(t.size, seed * 1000 + i++, -a, a);
    if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(path)) for (let j = 0; j < d.length; j++) d[j] += 1;
    return c.tensor(d, t.shape);
  }, params) as P;
}
