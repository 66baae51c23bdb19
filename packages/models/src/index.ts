/**
 * `@sorsajs/models`: GPT-2 and Llama-family language models from Hugging Face checkpoints, as pure
 * functions over parameter trees whose paths are the checkpoint's key names. Guide:
 * [models](../../../docs/guides/models.md).
 *
 * @example
 * ```ts
 * import { createModel } from '@sorsajs/models';
 * import { random } from '@sorsajs/core';
 * const model = createModel({ model_type: 'gpt2', n_layer: 2, n_head: 2, n_embd: 16, vocab_size: 100, n_positions: 32 }, random.key(0));
 * model.forward(model.params, [[1, 2, 3]]).shape; // [1, 3, 100]
 * ```
 * @module
 */
export { parseConfig } from './config.js';
export type { ModelConfig, ModelType } from './config.js';
export { createModel, forwardWithCache } from './model.js';
export type { CachedForward, CreateModelOptions, Model } from './model.js';
export type { KvCache, KvLayer } from './forward.js';
export type { ParamTree } from './spec.js';
export { isLinearWeight } from './linear-weight.js';
export type { ForwardParams, LinearWeight } from './linear-weight.js';
export { loadPretrained, savePretrained } from './io.js';
export type { SavePretrainedOptions } from './io.js';
export { generate, nextToken } from './generate.js';
export type { GenerateOptions } from './generate.js';
export { tokenizerFromJson } from './tokenizer.js';
export type { TextTokenizer } from './tokenizer.js';
export { trainTokenizer } from './train-tokenizer.js';
export type { AddedTokenJson, BpeModelJson, ByteLevelJson, TokenizerJson, TrainedTokenizer, TrainTokenizerOptions } from './train-tokenizer.js';
