/**
 * Reverse-mode autodiff: grad, valueAndGrad, vjp, stopGradient, customVjp, and tidy.
 * @module
 */
export { grad, valueAndGrad, vjp, stopGradient, customVjp, tidy } from './transforms.js';
export type { Argnums, GradOptions, GradsOf, GradTree, VjpFn } from './transforms.js';
