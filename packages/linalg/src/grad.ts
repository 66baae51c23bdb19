/**
 * VJP rules of the decompositions (neither TensorFlow.js nor jax-js offers them), written with
 * core's differentiable ops and attached with customVjp. The factors are packed into one flat
 * tensor so one custom VJP covers all of them; the public functions unpack with slices.
 * @module
 */
import {
  abs, add, arange, concat, customVjp, div, eye, greater, less, matmul, mul, reshape, slice, stack, stopGradient, sub, tidy, transpose, where, type Tensor,
} from '@sorsajs/core';
import type { SVD } from './types.js';
import type { QR } from './types.js';

/** 1/x where |x| > tiny, else 0: the guarded reciprocals of the backward formulas. */
function safeInv(x: Tensor, tiny: number): Tensor {
  const ok = greater(abs(x), tiny);
  return div(ok, where(ok, x, 1));
}

/**
 * Cotangent of A for a thin SVD (Townsend 2016, "Differentiating the singular value decomposition"):
 *
 *   Ā = U [ (F∘(UᵀŪ − ŪᵀU)) S + diag(S̄) + S (F∘(VᵀV̄ − V̄ᵀV)) ] Vᵀ
 *       + (I − UUᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ),   F_ij = 1 / (s_j² − s_i²), F_ii = 0.
 *
 * Degenerate singular values make F infinite: those entries are dropped (taken as 0), which is exact
 * for losses of S alone or of invariant subspaces and otherwise undefined (as everywhere). Zero
 * singular values drop their S⁻¹ terms likewise.
 */
function svdBackward(f: SVD, gU: Tensor, gS: Tensor, gVt: Tensor): Tensor {
  const { U, S, Vt } = f;
  const k = S.shape[0];
  const s2 = mul(S, S);
  const diff = sub(reshape(s2, [1, k]), reshape(s2, [k, 1])); // s_j² − s_i²
  const F = mul(safeInv(diff, 0), sub(1, eye(k)));
  const V = transpose(Vt);
  const gV = transpose(gVt);
  const UtgU = matmul(U, gU, { transposeA: true });
  const VtgV = matmul(V, gV, { transposeA: true });
  const J = mul(F, sub(UtgU, transpose(UtgU)));
  const K = mul(F, sub(VtgV, transpose(VtgV)));
  const inner = add(add(mul(J, reshape(S, [1, k])), mul(eye(k), reshape(gS, [1, k]))), mul(reshape(S, [k, 1]), K));
  let gA = matmul(matmul(U, inner), Vt);
  const sInv = safeInv(S, 0);
  // (I − UUᵀ) Ū S⁻¹ Vᵀ
  const projU = sub(gU, matmul(U, UtgU));
  gA = add(gA, matmul(mul(projU, reshape(sInv, [1, k])), Vt));
  // U S⁻¹ V̄ᵀ (I − VVᵀ), with V̄ᵀ = gVt
  const projV = sub(gVt, matmul(transpose(VtgV), Vt));
  gA = add(gA, matmul(U, mul(reshape(sInv, [k, 1]), projV)));
  return gA;
}

/** Makes a thin-SVD routine differentiable. `raw` must not record anything (it sees a constant). */
export function differentiableSvd(raw: (a: Tensor) => SVD): (a: Tensor) => SVD {
  const packed = customVjp(
    (a: Tensor) =>
      tidy(() => {
        const f = raw(stopGradient(a));
        return [concat([reshape(f.U, [-1]), f.S, reshape(f.Vt, [-1])]), f] as [Tensor, SVD];
      }),
    (f: SVD, g: Tensor) => {
      const [m, k] = f.U.shape;
      const n = f.Vt.shape[1];
      const gU = reshape(slice(g, [0], [m * k]), [m, k]);
      const gS = slice(g, [m * k], [k]);
      const gVt = reshape(slice(g, [m * k + k], [k * n]), [k, n]);
      return [svdBackward(f, gU, gS, gVt)];
    },
  );
  return (a: Tensor) =>
    tidy(() => {
      const [m, n] = a.shape;
      const k = Math.min(m, n);
      const p = packed(a);
      return {
        U: reshape(slice(p, [0], [m * k]), [m, k]),
        S: slice(p, [m * k], [k]),
        Vt: reshape(slice(p, [m * k + k], [k * n]), [k, n]),
      };
    });
}

/** X with X Rᵀ = B for upper-triangular R [n, n], by substitution from the last column back. */
function solveTransposedUpper(B: Tensor, R: Tensor): Tensor {
  const n = R.shape[0];
  const m = B.shape[0];
  const cols: Tensor[] = new Array(n);
  for (let j = n - 1; j >= 0; j--) {
    // (X Rᵀ)_:j = Σ_{i >= j} X_:i R_ji, so X_:j = (B_:j − Σ_{i > j} X_:i R_ji) / R_jj.
    let rhs = reshape(slice(B, [0, j], [m, 1]), [m]);
    if (j < n - 1) {
      const later = stack(cols.slice(j + 1), 1); // [m, n-1-j]
      const rj = reshape(slice(R, [j, j + 1], [1, n - 1 - j]), [n - 1 - j]);
      rhs = sub(rhs, matmul(later, rj));
    }
    cols[j] = div(rhs, reshape(slice(R, [j, j], [1, 1]), [1]));
  }
  return stack(cols, 1);
}

/**
 * Cotangent of A for a thin QR with m >= n (Liao, Liu, Wang and Xiang 2019, "Differentiable
 * programming tensor networks"): Ā = (Q̄ + Q copyltu(M)) R⁻ᵀ with M = R R̄ᵀ − Q̄ᵀ Q and
 * copyltu(M) the symmetric matrix with M's lower triangle. Needs R invertible (A of full column rank).
 */
function qrBackward(f: QR, gQ: Tensor, gR: Tensor): Tensor {
  const { Q, R } = f;
  const n = R.shape[0];
  const M = sub(matmul(R, gR, { transposeB: true }), matmul(gQ, Q, { transposeA: true }));
  const idx = arange(0, n, 1, 'float32');
  const rows = reshape(idx, [n, 1]);
  const colsIdx = reshape(idx, [1, n]);
  const lower = greater(add(rows, 0.5), colsIdx); // i >= j
  const strict = less(colsIdx, rows); // i > j
  const tril = mul(M, lower);
  const copyltu = add(tril, transpose(mul(M, strict)));
  return solveTransposedUpper(add(gQ, matmul(Q, copyltu)), R);
}

/** Makes a thin-QR routine differentiable (m >= n; the wide case has no gradient yet). */
export function differentiableQr(raw: (a: Tensor) => QR): (a: Tensor) => QR {
  const packed = customVjp(
    (a: Tensor) =>
      tidy(() => {
        const f = raw(stopGradient(a));
        return [concat([reshape(f.Q, [-1]), reshape(f.R, [-1])]), f] as [Tensor, QR];
      }),
    (f: QR, g: Tensor) => {
      const [m, k] = f.Q.shape;
      const n = f.R.shape[1];
      if (m < n) throw new Error(`qr: the gradient of a wide matrix ([${m},${n}]) is not implemented (m >= n only)`);
      const gQ = reshape(slice(g, [0], [m * k]), [m, k]);
      const gR = reshape(slice(g, [m * k], [k * n]), [k, n]);
      return [qrBackward(f, gQ, gR)];
    },
  );
  return (a: Tensor) =>
    tidy(() => {
      const [m, n] = a.shape;
      const k = Math.min(m, n);
      const p = packed(a);
      return { Q: reshape(slice(p, [0], [m * k]), [m, k]), R: reshape(slice(p, [m * k], [k * n]), [k, n]) };
    });
}

