/**
 * `@sorsajs/testing`: property testing for `@sorsajs` tensors. fast-check arbitraries that shrink
 * toward small shapes (matrices with known singular values, orthonormal bases, SORSA adapters,
 * parameter trees, PRNG keys), assertions with float32-derived tolerances, float64 references (a
 * matmul, an SVD, AdamW, a GPT-2/Llama forward pass), gradient checks against float64 central
 * differences, and vitest matchers (`@sorsajs/testing/vitest`). Guide:
 * [testing](../../../docs/guides/testing.md).
 *
 * @example
 * ```ts
 * import { assertAllClose } from '@sorsajs/testing';
 * await assertAllClose(add(tensor([1, 2]), 1), [2, 3]);
 * ```
 * @module
 */
export { EPS32, rng, randomData, gaussian, orthonormalColumns, orthonormalize, withSpectrum, matmulReference, count, unravel } from './host.js';
export { assertAllClose, assertOrthonormal, defaultTolerance } from './assert.js';
export type { AllCloseValue, AllCloseOptions, OrthonormalOptions } from './assert.js';
export { arb, shapeArb } from './arb.js';
export type { TensorArbOptions, MatrixArbOptions, MatrixSample, Spectrum, AdapterArbOptions, AdapterSample, AdapterTensors, Size, ParamTree, ParamTreeArbOptions } from './arb.js';
export { svdReference, subspaceSine } from './svd.js';
export { adamwReference } from './optim.js';
export type { AdamwReference, AdamwReferenceOptions, AdamwReferenceState } from './optim.js';
export type { ReferenceSvd } from './svd.js';
export { transformerReference, transformerTolerance, readWeights, randomWeights } from './transformer.js';
export type { TransformerConfig, ReferenceWeights } from './transformer.js';
export { checkGrads } from './grad.js';
export type { CheckGradsOptions, CheckGradsReport, Nd } from './grad.js';
