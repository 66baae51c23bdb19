/**
 * Neural-network functions (pure, no hidden state).
 * @module
 */
export * from './functions.js';
export * from './norm.js';
export * from './cross-entropy.js';
export * from './softmax.js';
export * from './init.js';
