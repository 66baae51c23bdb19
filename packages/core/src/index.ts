/**
 * `@sorsajs/core`: immutable tensors whose every kernel runs through gpu.js.
 *
 * Guides: [tensors and ops](../../../docs/guides/tensors.md), [backends](../../../docs/guides/backends.md),
 * [training](../../../docs/guides/training.md); how it works inside: [architecture](../../../docs/architecture.md).
 *
 * @example
 * ```ts
 * import { init, tensor, matmul } from '@sorsajs/core';
 * await init(); // 'webgpu' on a GPU, else 'wasm'
 * const y = matmul(tensor([[1, 2]]), tensor([[3], [4]]));
 * await y.data(); // Float32Array [11]
 * ```
 * @module
 */
export * from './backend/index.js';
export * from './tensor/index.js';
export * from './ops/index.js';
export * from './autodiff/index.js';
export * as tree from './tree/index.js';
export * as optim from './optim/index.js';
export * as nn from './nn/index.js';
export * as random from './random/index.js';
export * from './io/index.js';
