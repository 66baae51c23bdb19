/**
 * parseConfig: defaults, the family mapping, and refusals naming the field and value.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@sorsajs/models';

describe('parseConfig', () => {
  it('reads a GPT-2 config (the real gpt2 config.json fields) with its defaults', () => {
    const json = {
      activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1, eos_token_id: 50256,
      initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_ctx: 1024, n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024,
      resid_pdrop: 0.1, summary_activation: null, summary_first_dropout: 0.1, summary_proj_to_labels: true, summary_type: 'cls_index', summary_use_proj: true,
      task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } }, vocab_size: 50257,
    };
    const c = parseConfig(json);
    expect(c).toMatchObject({ family: 'gpt2', vocabSize: 50257, hiddenSize: 768, numLayers: 12, numHeads: 12, numKvHeads: 12, headDim: 64, intermediateSize: 3072, maxPositions: 1024, normEps: 1e-5, tieWordEmbeddings: true, qkvBias: true });
    expect(c.json).toEqual(json);
    expect(parseConfig(c)).toBe(c);
  });

  it('maps llama, qwen2 and mistral onto the llama family with their biases and defaults', () => {
    const base = { hidden_size: 16, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 32, vocab_size: 50 };
    const l = parseConfig({ ...base, model_type: 'llama', num_key_value_heads: 2, rope_theta: 500000, attention_bias: true });
    expect(l).toMatchObject({ family: 'llama', numKvHeads: 2, headDim: 4, ropeTheta: 500000, qkvBias: true, outBias: true, mlpBias: false, tieWordEmbeddings: false, maxPositions: 2048, normEps: 1e-6 });
    const q = parseConfig({ ...base, model_type: 'qwen2', num_key_value_heads: 4, use_sliding_window: false, sliding_window: 4096, max_window_layers: 28, tie_word_embeddings: true });
    expect(q).toMatchObject({ family: 'llama', qkvBias: true, outBias: false, slidingWindow: null, tieWordEmbeddings: true });
    const m = parseConfig({ ...base, model_type: 'mistral', num_key_value_heads: 2, sliding_window: 4096 });
    expect(m).toMatchObject({ family: 'llama', qkvBias: false, slidingWindow: 4096 });
    expect(parseConfig({ ...base, model_type: 'mistral', num_key_value_heads: 2, sliding_window: null }).slidingWindow).toBeNull();
    expect(parseConfig({ ...base, model_type: 'llama', head_dim: 8 }).headDim).toBe(8);
  });

  it('refuses a missing or unknown model_type, naming it', () => {
    expect(() => parseConfig({ n_layer: 2 }, 'ckpt/config.json')).toThrow(/ckpt\/config\.json: "model_type" is missing/);
    expect(() => parseConfig({ model_type: 'bert' }, 'ckpt/config.json')).toThrow(/ckpt\/config\.json: "model_type" = "bert" is not supported/);
    expect(() => parseConfig([1], 'x')).toThrow(/x: a config must be a JSON object/);
  });

  it('refuses fields it does not implement, naming field and value', () => {
    expect(() => parseConfig({ model_type: 'llama', rope_scaling: { type: 'linear', factor: 2 } })).toThrow(/"rope_scaling" = \{"type":"linear","factor":2\} is not supported/);
    expect(() => parseConfig({ model_type: 'llama', hidden_act: 'gelu' })).toThrow(/"hidden_act" = "gelu" is not supported/);
    expect(() => parseConfig({ model_type: 'gpt2', activation_function: 'relu' })).toThrow(/"activation_function" = "relu" is not supported/);
    expect(() => parseConfig({ model_type: 'gpt2', scale_attn_by_inverse_layer_idx: true })).toThrow(/"scale_attn_by_inverse_layer_idx" = true/);
    expect(() => parseConfig({ model_type: 'gpt2', flash_everything: 1 })).toThrow(/"flash_everything" = 1 is not a field this package understands/);
    expect(() => parseConfig({ model_type: 'gpt2', n_head: 5, n_embd: 16 })).toThrow(/"n_head" = 5 must divide n_embd = 16/);
    expect(() => parseConfig({ model_type: 'llama', num_attention_heads: 4, num_key_value_heads: 3, hidden_size: 16 })).toThrow(/"num_key_value_heads" = 3/);
    expect(() => parseConfig({ model_type: 'gpt2', n_layer: 1.5 })).toThrow(/"n_layer" must be an integer >= 1, got 1.5/);
    expect(() => parseConfig({ model_type: 'gpt2', layer_norm_epsilon: 'small' })).toThrow(/"layer_norm_epsilon" must be a finite number > 0, got "small"/);
  });

  it('refuses __proto__, constructor and prototype keys at any depth and leaves Object.prototype alone', () => {
    const evil = JSON.parse('{"model_type":"gpt2","__proto__":{"polluted":1}}');
    expect(() => parseConfig(evil)).toThrow(/"__proto__" is not allowed/);
    const nested = JSON.parse('{"model_type":"gpt2","task_specific_params":{"a":{"constructor":{"prototype":{"polluted":1}}}}}');
    expect(() => parseConfig(nested)).toThrow(/"task_specific_params.a.constructor" is not allowed/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A key named like an Object.prototype member is an unknown field, not a lookup of the prototype.
    expect(() => parseConfig({ model_type: 'gpt2', toString: 1 })).toThrow(/"toString" = 1 is not a field/);
    expect(() => parseConfig({ model_type: 'hasOwnProperty' })).toThrow(/"model_type" = "hasOwnProperty" is not supported/);
  });
});
