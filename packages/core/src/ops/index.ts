/**
 * Every tensor op, as named exports.
 * @module
 */
export * from './elementwise.js';
export { broadcastTo, sum, type Axis } from './broadcast.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './indexing.js';
export * from './create.js';
export type { Operand } from './operand.js';
