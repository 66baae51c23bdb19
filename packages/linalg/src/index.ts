/**
 * `@sorsajs/linalg`: QR, one-sided Jacobi SVD and randomized SVD on `@sorsajs/core` kernels, with
 * VJP rules for the decompositions. Guide: [linear algebra](../../../docs/guides/linalg.md).
 *
 * @example
 * ```ts
 * import { qr, svd } from '@sorsajs/linalg';
 * const { Q, R } = qr(a);
 * const { U, S, Vt } = svd(a);
 * const top = svd(W, { method: 'randomized', rank: 16 });
 * ```
 * @module
 */
export { qr } from './qr.js';
export type { QR } from './types.js';
export { svd, svdvals, lowRank, orthonormalityError, reconstructionError } from './svd.js';
export type { SvdOptions } from './svd.js';
export { jacobiSvd, jacobiStats } from './jacobi.js';
export type { JacobiOptions, JacobiStats } from './types.js';
export { randomizedSvd, randomizedStats } from './randomized.js';
export type { RandomizedOptions, RandomizedStats, RandomizedCheck } from './randomized.js';
export type { SVD } from './types.js';
