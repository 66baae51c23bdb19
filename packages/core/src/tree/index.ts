/**
 * Parameter trees: plain objects and arrays of tensors, as JAX pytrees.
 * @module
 */
export { map, mapWithPath, flatten, unflatten, leaves, structure, dispose, leafPaths } from './tree.js';
export type { Leaf, Tree, TreeDef, MapTree } from './tree.js';
