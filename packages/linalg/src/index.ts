/**
 * `@sorsajs/linalg`: QR, one-sided Jacobi SVD and randomized SVD on `@sorsajs/core` kernels.
 *
 * Not implemented yet (tracked in the linalg issue). This entry point exists so the workspace
 * builds; it exports only the package's version.
 *
 * @example
 * ```ts
 * import { version } from '@sorsajs/linalg';
 * ```
 * @module
 */

/** The package version. @example `version // '0.1.0'` */
export const version = '0.1.0';
