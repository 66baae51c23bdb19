/**
 * Tiny configs shared by the models tests, and createModel for a backend suite. The float64
 * reference forward and the logits' error bound are @sorsajs/testing's transformerReference and
 * transformerTolerance.
 */
import * as c from '@sorsajs/core';
import { createModel, type Model } from '@sorsajs/models';

export const GPT2 = { model_type: 'gpt2', vocab_size: 23, n_positions: 12, n_embd: 8, n_layer: 2, n_head: 2, n_inner: 12 };
export const LLAMA = {
  model_type: 'llama', vocab_size: 19, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  max_position_embeddings: 16, rope_theta: 10, rms_norm_eps: 1e-5, attention_bias: true,
};
export const QWEN2 = { ...LLAMA, model_type: 'qwen2', attention_bias: undefined, tie_word_embeddings: true, use_sliding_window: false };

/**
 * `createModel` for a backend suite. webgl refuses `random.normal`, so there the model is made on cpu;
 * the suites replace its weights with `randomWeights` on the suite's backend anyway (made on the
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
