/**
 * `@sorsajs/sorsa`: SORSA adapters, with LoRA and PiSSA baselines, as pure functions over parameter trees.
 *
 * Not implemented yet (tracked in the sorsa issue). This entry point exists so the workspace
 * builds; it exports only the package's version.
 *
 * @example
 * ```ts
 * import { version } from '@sorsajs/sorsa';
 * ```
 * @module
 */

/** The package version. @example `version // '0.1.0'` */
export const version = '0.1.0';
