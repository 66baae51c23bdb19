/**
 * The forward passes of both families, as pure functions of a parameter tree built from core ops
 * (so differentiable in the params), with an optional key/value cache for generation.
 * @module
 */
import {
  Tensor, add, arange, broadcastTo, concat, cos, mul, neg, nn, outer, reshape, sin, slice, tensor, tidy, transpose,
} from '@sorsajs/core';
import type { ModelConfig } from './config.js';
import { embeddingKey, leafAt } from './spec.js';
import { applyLinear, isLinearWeight, tensorOf, type LinearWeight } from './linear-weight.js';

/**
 * Keys and values of every layer for the positions seen so far, `[batch, kvHeads, length, headDim]`
 * per layer (before grouped-query heads are repeated). Made by {@link forwardWithCache}; dispose it
 * with `tree.dispose(cache)` when done.
 *
 * @example
 * ```ts
 * const { logits, cache } = forwardWithCache(config, params, ids, null);
 * cache.length; // ids.shape[1]
 * ```
 */
export interface KvCache {
  /** Positions held. */
  readonly length: number;
  /** One entry per layer. */
  readonly layers: readonly KvLayer[];
}

/**
 * One layer's cached keys and values.
 *
 * @example
 * ```ts
 * cache.layers[0].k.shape; // [batch, kvHeads, length, headDim]
 * ```
 */
export interface KvLayer {
  /** Keys (rotary already applied for the Llama family), `[batch, kvHeads, length, headDim]`. */
  readonly k: Tensor;
  /** Values, `[batch, kvHeads, length, headDim]`. */
  readonly v: Tensor;
}

const isTensor = (x: unknown): x is Tensor => x instanceof Tensor;

/**
 * Checks ids and turns host ids into an int32 tensor: rows of equal length, integers in
 * `[0, vocab)`, and `past + T` within the model's positions (and its sliding window).
 */
export function checkIds(op: string, c: ModelConfig, ids: Tensor | readonly (readonly number[])[], past = 0): { t: Tensor; made: boolean } {
  let B: number;
  let T: number;
  let t: Tensor;
  let made = false;
  if (ids instanceof Tensor) {
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`${op}: ids must be an int32 tensor [batch, seq], got ${ids.toString()}`);
    [B, T] = ids.shape;
    t = ids;
  } else {
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((r) => Array.isArray(r))) throw new Error(`${op}: ids must be an int32 tensor [batch, seq] or a non-empty array of rows of token ids`);
    B = ids.length;
    T = ids[0].length;
    const flat = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      if (ids[b].length !== T) throw new Error(`${op}: ids row ${b} has ${ids[b].length} tokens, row 0 has ${T}: rows must have one length`);
      for (let j = 0; j < T; j++) {
        const v = ids[b][j];
        if (!Number.isInteger(v) || v < 0 || v >= c.vocabSize) throw new Error(`${op}: ids[${b}][${j}] = ${String(v)} is not a token id in [0, ${c.vocabSize}) (vocab_size ${c.vocabSize})`);
        flat[b * T + j] = v;
      }
    }
    t = tensor(flat, [B, T], 'int32');
    made = true;
  }
  const fail = (msg: string): never => {
    if (made) t.dispose();
    throw new Error(msg);
  };
  if (B < 1 || T < 1) fail(`${op}: ids must hold at least one token per row, got shape [${B}, ${T}]`);
  if (past + T > c.maxPositions) fail(`${op}: a sequence of ${past + T} tokens is longer than max_position_embeddings = ${c.maxPositions}`);
  if (c.slidingWindow !== null && past + T > c.slidingWindow) {
    fail(`${op}: a sequence of ${past + T} tokens is longer than sliding_window = ${c.slidingWindow}; sliding-window attention is not implemented, and within the window it equals full attention`);
  }
  return { t, made };
}

/** `[B, T, heads * hd]` to `[B, heads, T, hd]`. */
const heads = (x: Tensor, B: number, T: number, h: number, hd: number): Tensor => transpose(reshape(x, [B, T, h, hd]), [0, 2, 1, 3]);

/** HF's rotate_half: `[x1, x2] -> [-x2, x1]` over the halves of the last axis. */
function rotateHalf(x: Tensor): Tensor {
  const h = x.shape[x.rank - 1] / 2;
  const lead = x.shape.slice(0, -1).map(() => 0);
  const x1 = slice(x, [...lead, 0], [...x.shape.slice(0, -1), h]);
  const x2 = slice(x, [...lead, h], [...x.shape.slice(0, -1), h]);
  return concat([neg(x2), x1], x.rank - 1);
}

/** cos and sin of the rotary angles for positions `[p0, p0 + T)`: `[T, hd]` each, halves repeated (HF's layout). */
function rotary(c: ModelConfig, p0: number, T: number): { cosT: Tensor; sinT: Tensor } {
  const hd = c.headDim;
  // inv_freq as transformers computes it; a constant of the config, like a weight.
  const inv = new Float32Array(hd / 2);
  for (let j = 0; j < hd / 2; j++) inv[j] = 1 / c.ropeTheta ** ((2 * j) / hd);
  const freqs = outer(arange(p0, p0 + T, 1, 'float32'), tensor(inv));
  const emb = concat([freqs, freqs], 1);
  return { cosT: cos(emb), sinT: sin(emb) };
}

const isWeight = (x: unknown): x is Tensor => isTensor(x) || isLinearWeight(x);
/** The leaf at `path`: a Tensor, or a LinearWeight where the params put one. */
const weightAt = (op: string, params: unknown, path: string): Tensor | LinearWeight => leafAt(op, params, path, isWeight, 'a tensor or a LinearWeight');

/** The layer `name` (its `.weight` a Tensor or a LinearWeight, and its `.bias` when `bias`) over x. */
function linear(op: string, params: unknown, name: string, x: Tensor, bias: boolean): Tensor {
  const path = `${name}.weight`;
  return applyLinear(op, path, weightAt(op, params, path), x, bias ? leafAt(op, params, `${name}.bias`, isTensor) : null);
}

/**
 * One pass over `ids` following `cache` (null: from position 0): logits `[B, T, vocab]` and, when
 * `keepCache`, the cache extended by these positions. Intermediates are disposed.
 */
export function run(op: string, c: ModelConfig, params: unknown, ids: Tensor, cache: KvCache | null, keepCache: boolean): { logits: Tensor; cache: KvCache | null } {
  const [B, T] = ids.shape;
  const p0 = cache?.length ?? 0;
  if (cache && cache.layers.length !== c.numLayers) throw new Error(`${op}: the cache has ${cache.layers.length} layers, the model ${c.numLayers}`);
  // A LinearWeight read as a tensor (an embedding table, the tied head) gives its weight().
  const leaf = (path: string): Tensor => tensorOf(op, path, weightAt(op, params, path));
  return tidy(() => {
    const layers: { k: Tensor; v: Tensor }[] = [];
    const hd = c.headDim;
    const attend = (i: number, q: Tensor, k: Tensor, v: Tensor): Tensor => {
      // q [B, H, T, hd]; k, v [B, KV, T, hd], appended to the cache's positions.
      if (cache) {
        k = concat([cache.layers[i].k, k], 2);
        v = concat([cache.layers[i].v, v], 2);
      }
      if (keepCache) layers.push({ k, v });
      const S = p0 + T;
      const rep = c.numHeads / c.numKvHeads;
      if (rep > 1) {
        // HF's repeat_kv: query head h reads key/value head floor(h / rep).
        const r = (x: Tensor): Tensor => reshape(broadcastTo(reshape(x, [B, c.numKvHeads, 1, S, hd]), [B, c.numKvHeads, rep, S, hd]), [B, c.numHeads, S, hd]);
        k = r(k);
        v = r(v);
      }
      const a = nn.attention(q, k, v, { causal: true });
      return reshape(transpose(a, [0, 2, 1, 3]), [B, T, c.numHeads * hd]);
    };
    let x: Tensor;
    if (c.family === 'gpt2') {
      // Positions p0 .. p0 + T - 1 are consecutive rows of wpe: a slice (one copy), not a lookup by an index range.
      const wpe = leaf('transformer.wpe.weight');
      x = add(nn.embedding(leaf('transformer.wte.weight'), ids), slice(wpe, [p0, 0], [T, wpe.shape[1]]));
      const D = c.hiddenSize;
      for (let i = 0; i < c.numLayers; i++) {
        const p = `transformer.h.${i}`;
        let h = nn.layerNorm(x, leaf(`${p}.ln_1.weight`), leaf(`${p}.ln_1.bias`), c.normEps);
        const qkv = linear(op, params, `${p}.attn.c_attn`, h, true);
        const part = (j: number): Tensor => heads(slice(qkv, [0, 0, j * D], [B, T, D]), B, T, c.numHeads, hd);
        const a = attend(i, part(0), part(1), part(2));
        x = add(x, linear(op, params, `${p}.attn.c_proj`, a, true));
        h = nn.layerNorm(x, leaf(`${p}.ln_2.weight`), leaf(`${p}.ln_2.bias`), c.normEps);
        x = add(x, linear(op, params, `${p}.mlp.c_proj`, nn.gelu(linear(op, params, `${p}.mlp.c_fc`, h, true)), true));
      }
      x = nn.layerNorm(x, leaf('transformer.ln_f.weight'), leaf('transformer.ln_f.bias'), c.normEps);
    } else {
      x = nn.embedding(leaf('model.embed_tokens.weight'), ids);
      const { cosT, sinT } = rotary(c, p0, T);
      const rope = (t: Tensor): Tensor => add(mul(t, cosT), mul(rotateHalf(t), sinT));
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}`;
        let h = nn.rmsNorm(x, leaf(`${p}.input_layernorm.weight`), c.normEps);
        const q = rope(heads(linear(op, params, `${p}.self_attn.q_proj`, h, c.qkvBias), B, T, c.numHeads, hd));
        const k = rope(heads(linear(op, params, `${p}.self_attn.k_proj`, h, c.qkvBias), B, T, c.numKvHeads, hd));
        const v = heads(linear(op, params, `${p}.self_attn.v_proj`, h, c.qkvBias), B, T, c.numKvHeads, hd);
        x = add(x, linear(op, params, `${p}.self_attn.o_proj`, attend(i, q, k, v), c.outBias));
        h = nn.rmsNorm(x, leaf(`${p}.post_attention_layernorm.weight`), c.normEps);
        const gate = nn.silu(linear(op, params, `${p}.mlp.gate_proj`, h, c.mlpBias));
        x = add(x, linear(op, params, `${p}.mlp.down_proj`, mul(gate, linear(op, params, `${p}.mlp.up_proj`, h, c.mlpBias)), c.mlpBias));
      }
      x = nn.rmsNorm(x, leaf('model.norm.weight'), c.normEps);
    }
    // An untied head is a linear layer (a LinearWeight may stand there); a tied one is the embedding.
    const logits = c.tieWordEmbeddings ? nn.linear(x, leaf(embeddingKey(c))) : linear(op, params, 'lm_head', x, false);
    return { logits, cache: keepCache ? { length: p0 + T, layers } : null };
  });
}
