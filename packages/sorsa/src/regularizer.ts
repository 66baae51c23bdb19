/**
 * SORSA's orthonormal regularizer.
 * @module
 */
import { Tensor, add, div, tidy, zeros } from '@sorsajs/core';
import { orthoDefect, regularizerOfFactors } from './defect.js';
import { factors } from './checks.js';
import { findIn, isSorsaAdapter, type SorsaAdapter } from './types.js';

/** Every SORSA adapter `{ U, S, Vt }` in a tree, with its dotted path (adapters are not searched inside). */
export function findAdapters(t: unknown): { path: string; adapter: SorsaAdapter }[] {
  return findIn(t, isSorsaAdapter);
}

/**
 * The official SORSA regularizer over every adapter `{ U, S, Vt }` found in `tree` (at any depth):
 * the mean, over the 2L matrices, of the unsquared Frobenius norms `‖UᵀU − I_r‖_F` and
 * `‖Vt Vtᵀ − I_r‖_F`, i.e. their sum divided by 2L. A scalar tensor, differentiable (at exactly
 * orthonormal factors the norm's gradient is taken as 0); 0 when the tree holds no SORSA adapter.
 *
 * @example
 * ```ts
 * const reg = orthoRegularizer(trainable);            // ~0 right after initAdapter
 * const g = grad(orthoRegularizer)(trainable);        // mirrors trainable
 * ```
 */
export function orthoRegularizer(tree: unknown): Tensor {
  const found = findAdapters(tree);
  for (const { path, adapter } of found) factors('orthoRegularizer', adapter, path ? `adapter "${path}"` : 'adapter');
  if (found.length === 0) return zeros([]);
  // A few launches for all adapters (defect.ts); a rank-0 adapter's defect is composed (no cells to launch over).
  if (found.every(({ adapter }) => adapter.U.shape[1] > 0)) return regularizerOfFactors(found.flatMap(({ adapter }) => [adapter.U, adapter.Vt]));
  return tidy(() => {
    let total: Tensor | null = null;
    for (const { adapter: { U, Vt } } of found) {
      const both = add(orthoDefect(U, 'cols'), orthoDefect(Vt, 'rows'));
      total = total ? add(total, both) : both;
    }
    return div(total as Tensor, 2 * found.length);
  });
}
