/**
 * Tensors: the value type, its creation from host data, and memory accounting.
 * @module
 */
export { Tensor, memory, setCacheLimit } from './tensor.js';
export type { CacheInfo, DType, MemoryInfo, NestedArray } from './tensor.js';
export { tensor } from './from-data.js';
export type { TensorLike } from './from-data.js';
