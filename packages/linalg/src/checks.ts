import { Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

/** Checks that `a` is a live float32 matrix; `op` names the caller in the error. */
export function checkMatrix(op: string, a: unknown): Tensor {
  if (!(a instanceof Tensor)) throw new Error(`${op}: expects a Tensor, got ${a === null ? 'null' : typeof a}`);
  a.use(op);
  if (a.dtype !== 'float32') throw new Error(`${op}: expects a float32 matrix, got ${a.dtype}`);
  if (a.rank !== 2) throw new Error(`${op}: expects a matrix (rank 2), got shape [${a.shape.join(',')}]`);
  return a;
}

/**
 * Rejects NaN and Inf input where the values are on the host (tensors made by `tensor()`), naming
 * the first bad entry. Device-resident values are not read back to check: a decomposition of
 * non-finite input then returns non-finite factors.
 */
export function checkFinite(op: string, a: Tensor): void {
  const bad = internal.firstNonFinite(a);
  if (bad) throw new Error(`${op}: input has a non-finite value ${bad.value} at [${bad.index.join(', ')}]`);
}
