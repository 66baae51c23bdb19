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

/** The factors of a thin QR: Q `[m, k]` with orthonormal columns and upper-triangular R `[k, n]`, k = min(m, n). */
export interface QR {
  /** Orthonormal columns, `[m, k]`. */
  Q: Tensor;
  /** Upper triangular, `[k, n]`. */
  R: Tensor;
}

/** Options of `jacobiSvd`. */
export interface JacobiOptions {
  /**
   * Convergence threshold: pairs of columns with |a_p·a_q| <= tol |a_p| |a_q| are not rotated.
   * Default sqrt(m) * 2^-23 (m the longer side; min(m, n), the rows of Rᵀ, on the QR path of
   * `precondition`). A pair just rotated measures its float32 rounding, up to a few sqrt(m) * 2^-23,
   * so the iteration ends after the first pass (a sweep, or a check that rotates nothing) that
   * measures every pair within min(4 tol, max(tol, 4 sqrt(m) * 2^-23)): 4 tol for the default, tol
   * itself from 4 sqrt(m) * 2^-23 up. A tol far below sqrt(m) * 2^-23 is never met: the run ends at
   * `maxSweeps`, `jacobiStats.converged` false. A looser tol leaves the factors orthonormal only to
   * about tol: V on the QR path (U elsewhere), the factor formed from the rotated columns.
   * `jacobiStats.history` holds each pass's measure.
   */
  tol?: number;
  /** Most sweeps run when the threshold is not reached first. Default 40. */
  maxSweeps?: number;
  /** Columns per block (a multiple of 4). Default: 16; 8 for 33-64 columns; about half the columns up to 32. */
  blockSize?: number;
  /**
   * `'qr'`: sort the columns by norm, reduce by a blocked Householder QR and run the sweeps on Rᵀ
   * (fewer sweeps, each over min(m, n) columns and rows whatever the longer side); `'none'`: sweeps
   * on A itself; `'auto'` (default): `'qr'` where it was measured faster (see jacobiSvd).
   */
  precondition?: 'qr' | 'none' | 'auto';
  /**
   * How the QR path gets V_X, the factor that the reflectors turn into U (V on a wide input):
   * `'auto'` (default) makes it after the sweeps from Rᵀ V_X = U_X diag(S) (a triangular solve for
   * the small singular values' columns, the product Rᵀᵀ U_X diag(S)⁻¹ for the large ones) when
   * cond(A) <= 2^16 and `tol` is the default or tighter, so the sweeps carry Rᵀ's rows without
   * V_X's (a 768² SVD ~20% faster on wasm), and accumulates the rotations otherwise (the error of
   * V_X made so grows with cond(A) and with tol; a rerun when only the sweeps show cond(A) too large,
   * or when they stop at `maxSweeps`); `'rotations'` always accumulates them (for more time;
   * LAPACK's residual ratio measured 0.5-1.1 either way on Gaussian and geometric spectra up to
   * cond 1e4).
   * `jacobiStats.vectorsBy` says which ran.
   */
  vectors?: 'auto' | 'rotations';
}

/** The shape of `jacobiStats`. */
export interface JacobiStats {
  /** Full sweeps run (check-only passes not counted). */
  sweeps: number;
  /** Whether the stopping rule was met before `maxSweeps` ran out. */
  converged: boolean;
  /** The convergence measure of every pass, in order (check-only passes included). */
  history: number[];
  /** Whether the sweeps ran on the Rᵀ of a QR of the input (`precondition`), not on the input itself. */
  preconditioned?: boolean;
  /**
   * How the factor built from the rotations was made (see `JacobiOptions.vectors`): `'rotations'`
   * accumulated, `'solve'` made from the rotated columns on the QR path, `'rotations-rerun'`
   * accumulated in a second run after the first run's singular values showed cond(A) too large (or
   * its sweeps ran out unconverged); the other fields then describe the second run.
   */
  vectorsBy?: 'rotations' | 'solve' | 'rotations-rerun';
}
