/**
 * Optimizers as optax-style gradient transformations, combinators and schedules.
 * @module
 */
export { sgd, adam, adamw, chain, clipByGlobalNorm, clipCoefficient, globalNorm, partition, masked, setToZero, applyUpdates } from './transforms.js';
export type { SgdState, AdamState, AdamOptions, Labels } from './transforms.js';
export { applyStep } from './step.js';
export { scaleByAdam, addDecayedWeights, scaleByLearningRate } from './blocks.js';
export type { ScaleByAdamOptions, AddDecayedWeightsOptions, ScaleByLearningRateState } from './blocks.js';
export { constant, linearWarmup, cosineDecay, warmupCosineDecay } from './schedules.js';
export type { GradientTransformation, StepOptions, Schedule, ScalarOrSchedule } from './types.js';
