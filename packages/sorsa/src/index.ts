/**
 * `@sorsajs/sorsa`: SORSA adapters, with LoRA and PiSSA baselines, as pure functions over parameter
 * trees.
 *
 * - An adapter is a plain tree: `{ U, S, Vt }` (SORSA) or `{ A, B }` (LoRA, PiSSA), with an optional
 *   number leaf `scale`; its frozen residual is a separate tensor.
 * - Whole models: `await adaptParams(params, { rank, targets })` gives `{ trainable, frozen }`, where
 *   `trainable` maps dotted paths to adapters and `frozen` is `params` with residuals in place of the
 *   adapted weights; `mergeParams(trainable, frozen)` rebuilds plain params inside the loss, and
 *   `factoredParams(trainable, frozen)` gives a `@sorsajs/models` forward the adapted layers
 *   unmerged, which a training step of a real-size model runs faster.
 * - Training: `orthoRegularizer` and `makeTrainStep` (the official order of one step).
 *
 * Guides: [SORSA and the other methods](../../../docs/guides/sorsa.md), [the command line](../../../docs/guides/cli.md).
 *
 * @example
 * ```ts
 * import { adaptParams, mergeParams, makeTrainStep, type Trainable } from '@sorsajs/sorsa';
 * const { trainable, frozen } = await adaptParams(params, { rank: 8, targets: ['w1', 'w2'] });
 * // The trees' types as type parameters: the loss is written before the step sees the trees.
 * const { init, step } = makeTrainStep<Trainable, typeof frozen, [Tensor, Tensor]>({
 *   loss: (t, f, [x, y]) => nn.mse(model(mergeParams(t, f), x), y),
 *   optimizer: optim.adamw({ lr: 3e-5, weightDecay: 0 }),
 *   gamma: 4e-4, peakLr: 3e-5, maxGradNorm: 1,
 * });
 * ```
 * @module
 */
export type { Adapter, SorsaAdapter, LoraAdapter, AdaloraAdapter, Trainable, Init } from './types.js';
export { isSorsaAdapter, isLoraAdapter, isAdaloraAdapter } from './types.js';
export { merge, adaptedLinear, linear, preferMerged, FACTORED_TRAINING_OVERHEAD } from './forward.js';
export type { MergeOptions, LinearOptions } from './forward.js';
export { initAdapter } from './init.js';
export type { SvdMethod, SvdInitOptions } from './svd.js';
export { mergeParams, factoredParams, adaptParams } from './params.js';
export type { AdaptOptions, Adapted } from './params.js';
export { orthoRegularizer } from './regularizer.js';
export { makeTrainStep } from './train.js';
export { toLoRA } from './convert.js';
export { toOfficialStateDict, fromOfficialStateDict } from './interop.js';
export type { OfficialParts } from './interop.js';
export { savePeftAdapter, loadPeftAdapter, PEFT_FILES } from './peft.js';
export type { PeftConfig, PeftSaveOptions, PeftAdapter, AdaloraSaveOptions } from './peft.js';
export { saveCheckpoint, loadCheckpoint } from './checkpoint.js';
export type { Checkpoint } from './checkpoint.js';
export { drift, driftParams } from './drift.js';
export type { Drift } from './drift.js';
export type { TrainStepOptions, TrainStep, StepResult, StepMetrics } from './train.js';
export * as lora from './lora.js';
export * as pissa from './pissa.js';
export * as adalora from './adalora.js';
export * as report from './report/index.js';
export type { LoraInitOptions } from './lora.js';

export { version } from './version.js';
