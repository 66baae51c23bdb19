/**
 * Tiny configs shared by the tests, the reference's view of a parsed config, and the logits' float32
 * error bound.
 */
import * as c from '@sorsajs/core';
import { createModel, type Model, type ModelConfig } from '@sorsajs/models';
import { EPS32, type RefConfig } from './ref.js';

export const GPT2 = { model_type: 'gpt2', vocab_size: 23, n_positions: 12, n_embd: 8, n_layer: 2, n_head: 2, n_inner: 12 };
export const LLAMA = {
  model_type: 'llama', vocab_size: 19, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  max_position_embeddings: 16, rope_theta: 10, rms_norm_eps: 1e-5, attention_bias: true,
};
export const QWEN2 = { ...LLAMA, model_type: 'qwen2', attention_bias: undefined, tie_word_embeddings: true, use_sliding_window: false };

export function refConfig(m: ModelConfig): RefConfig {
  return {
    family: m.family, vocab: m.vocabSize, D: m.hiddenSize, L: m.numLayers, H: m.numHeads, KV: m.numKvHeads, hd: m.headDim, I: m.intermediateSize,
    eps: m.normEps, theta: m.ropeTheta, qkvBias: m.qkvBias, outBias: m.outBias, tied: m.tieWordEmbeddings,
  };
}

/**
 * Float32 error bound of the logits: every value is a chain of ~6 ops per layer (norm, projection,
 * attention, projection, MLP twice), each a sum of at most max(D, I, T) terms rounding by ~n eps
 * relative to the sum of |terms|; those magnitudes are O(1) here (weights in [-0.5, 0.5], normed
 * activations), so the bound is eps * n * 6 * (L + 1) times the largest |logit| + 1, with a factor 4 of
 * room for the exp/rsqrt/tanh kernels' own ulps.
 */
export function tolerance(m: ModelConfig, ref: Float64Array): number {
  const n = Math.max(m.hiddenSize, m.intermediateSize, m.maxPositions);
  const top = ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  return 4 * EPS32 * n * 6 * (m.numLayers + 1) * (top + 1);
}


/**
 * `createModel` for a backend suite. webgl refuses `random.normal`, so there the model is made on cpu;
 * the suites replace its weights with `randomize` on the suite's backend anyway (made on the
 * backend that is current when it runs), and dispose these.
 */
export async function modelFor(backend: string, json: Record<string, unknown>, key: c.random.Key): Promise<Model> {
  if (backend !== 'webgl') return createModel(json, key);
  await c.init({ backend: 'cpu' });
  try {
    return createModel(json, key);
  } finally {
    await c.init({ backend: 'webgl' });
  }
}
