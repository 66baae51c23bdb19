/**
 * Reading and writing tensors as safetensors files (the format of Hugging Face checkpoints), from
 * paths in Node or from bytes anywhere.
 *
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors, tensor } from '@sorsajs/core';
 * await saveSafetensors({ w: tensor([[1, 2], [3, 4]]) }, 'w.safetensors', { step: '10' });
 * const { w } = await loadSafetensors('w.safetensors');
 * await w.data(); // Float32Array [1, 2, 3, 4]
 * ```
 * @module
 */
export { loadSafetensors, loadSafetensorsWithMetadata, saveSafetensors, serializeSafetensors } from './safetensors.js';
export type { SafetensorsContents, SafetensorsSource } from './safetensors.js';
