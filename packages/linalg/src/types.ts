import type { Tensor } from '@sorsajs/core';

/** A thin SVD `A = U diag(S) Vt`: U `[m, k]`, S `[k]` descending and non-negative, Vt `[k, n]`. */
export interface SVD {
  /** Left singular vectors as columns, `[m, k]`. */
  U: Tensor;
  /** Singular values, descending, non-negative, `[k]`. */
  S: Tensor;
  /** Right singular vectors as rows, `[k, n]`. */
  Vt: Tensor;
}
