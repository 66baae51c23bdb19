/**
 * Every tensor op, as named exports.
 * @module
 */
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './create.js';
export type { Operand } from './operand.js';
