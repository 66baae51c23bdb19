/**
 * The orthonormality defect of one factor, `‖UᵀU − I‖_F` of `U [m, r]` (its columns) or
 * `‖Vt Vtᵀ − I‖_F` of `Vt [r, n]` (its rows), in three kernels: the Gram matrix minus I, its norm,
 * and, backward, `2 g M E / ‖E‖`. Composed of matmul, sub and norm, value and gradient took about
 * 14 kernels per factor, most of a fine-tuning step's launches: 16 factors in a 2-block model.
 * When the gradient is itself differentiated, the backward pass runs composed (a kernel has no VJP).
 * @module
 */
import { Tensor, customVjp, eye, matmul, norm, sub, tidy, vjp } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

/**
 * A factor as rows `k` of an `[K, r]` view: element (k, i) is at `k * sk + i * si` (U: K = m,
 * sk = r, si = 1; Vt: K = n, sk = 1, si = n). The Gram matrix minus I, one cell (i, j) of `[r, r]`
 * per thread. Scalars: r, K, sk, si.
 */
const GRAM_MINUS_I: internal.KernelSource = {
  key: 'sorsa:gram-minus-identity',
  arrays: ['M'],
  scalars: ['r', 'K', 'sk', 'si'],
  body: `const c = this.thread.x;
${internal.divmod('i', 'j', 'c', 'r')}
let acc = 0;
for (let k = 0; k < K; k++) { acc += M[k * sk + i * si] * M[k * sk + j * si]; }
return acc - (i === j ? 1 : 0);`,
};

/**
 * The defect's gradient `coef * M E` in M's own layout, coef = 2 g / ‖E‖ (0 where ‖E‖ = 0, as the
 * norm's gradient is taken there): cell c of M is (k, i) of the view, split by M's row length `w`
 * (U: k = c / r; Vt: i = c / n). Scalars: r, w, sk, si, vt (1 for Vt).
 */
const DEFECT_GRAD: internal.KernelSource = {
  key: 'sorsa:defect-grad',
  arrays: ['M', 'E', 'nrm', 'g'],
  scalars: ['r', 'w', 'sk', 'si', 'vt'],
  body: `const c = this.thread.x;
${internal.divmod('q', 'p', 'c', 'w')}
const k = vt === 1 ? p : q;
const i = vt === 1 ? q : p;
const nv = nrm[0];
const coef = nv === 0 ? 0 : (2 * g[0]) / nv;
let acc = 0;
for (let j = 0; j < r; j++) { acc += M[k * sk + j * si] * E[j * r + i]; }
return coef * acc;`,
};

/** The composed defect: the definition, and the backward pass under an outer tape. */
function defectComposed(M: Tensor, side: 'cols' | 'rows'): Tensor {
  return tidy(() => {
    const r = side === 'cols' ? M.shape[1] : M.shape[0];
    const gram = side === 'cols' ? matmul(M, M, { transposeA: true }) : matmul(M, M, { transposeB: true });
    return norm(sub(gram, eye(r)));
  });
}

/** The view strides and row length of a factor (see GRAM_MINUS_I). */
function layout(M: Tensor, side: 'cols' | 'rows'): { r: number; K: number; sk: number; si: number; w: number } {
  const [a, b] = M.shape;
  return side === 'cols' ? { r: b, K: a, sk: b, si: 1, w: b } : { r: a, K: b, sk: 1, si: b, w: b };
}

const defectCols = customVjp(
  (M: Tensor) => forward(M, 'cols'),
  (res: Residuals, g: Tensor) => [backward(res, g, 'cols')],
);
const defectRows = customVjp(
  (M: Tensor) => forward(M, 'rows'),
  (res: Residuals, g: Tensor) => [backward(res, g, 'rows')],
);

interface Residuals {
  M: Tensor;
  E: Tensor;
  n: Tensor;
}

function forward(M: Tensor, side: 'cols' | 'rows'): [Tensor, Residuals] {
  const { r, K, sk, si } = layout(M, side);
  // Kernels over M outside the tape: the output's only way back is `backward` (customVjp).
  return internal.untracked(() => {
    const E = internal.launch('orthoRegularizer', GRAM_MINUS_I, [r, r], 'float32', [M], [r, K, sk, si]);
    const n = norm(E);
    return [n, { M, E, n }];
  });
}

function backward({ M, E, n }: Residuals, g: Tensor, side: 'cols' | 'rows'): Tensor {
  if (internal.recording([g, M])) {
    const [, pullback] = vjp((m: Tensor) => defectComposed(m, side), M);
    return pullback(g)[0];
  }
  const { r, sk, si, w } = layout(M, side);
  return internal.launch('orthoRegularizer', DEFECT_GRAD, M.shape, 'float32', [M, E, n, g], [r, w, sk, si, side === 'rows' ? 1 : 0]);
}

/**
 * `‖UᵀU − I‖_F` of a `[m, r]` factor (`side: 'cols'`) or `‖Vt Vtᵀ − I‖_F` of a `[r, n]` one
 * (`side: 'rows'`): a scalar tensor, differentiable, with gradient 0 at an exactly orthonormal factor.
 *
 * @example
 * ```ts
 * orthoDefect(adapter.U, 'cols'); // ~0 right after initAdapter
 * ```
 */
export function orthoDefect(M: Tensor, side: 'cols' | 'rows'): Tensor {
  return side === 'cols' ? defectCols(M) : defectRows(M);
}
