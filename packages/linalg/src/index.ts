/**
 * `@sorsajs/linalg`: QR, one-sided Jacobi SVD and randomized SVD on `@sorsajs/core` kernels.
 *
 * @example
 * ```ts
 * import { qr } from '@sorsajs/linalg';
 * const { Q, R } = qr(a);
 * ```
 * @module
 */
export { qr } from './qr.js';
export type { QR } from './qr.js';
