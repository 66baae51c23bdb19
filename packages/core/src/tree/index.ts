/**
 * Parameter trees: plain objects and arrays of tensors, as JAX pytrees.
 * @module
 */
export { map, mapWithPath, flatten, unflatten, leaves, structure, dispose, leafPaths, isNode } from './tree.js';
export type { Leaf, Tree, TreeDef, TreeLeafDef, TreeArrayDef, TreeObjectDef, MapTree } from './tree.js';
