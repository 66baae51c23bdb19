/**
 * Float64 references for the sorsa tests: plain loops, written without anything from src/.
 * Matrices are row-major Float64Arrays with explicit sizes. The seeded generator, EPS32, the
 * matmul and the SVD are the testing kit's (written once there); the helpers below compose them.
 */
import { matmulReference, svdReference } from '@sorsajs/testing';

export { EPS32, randomData as rand, matmulReference as mm } from '@sorsajs/testing';

/** |X| [m,k] |Y| [k,n]: the scale of each product entry's rounding error. */
export function mmAbs(x: ArrayLike<number>, y: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  return matmulReference(Array.from(x, Math.abs), Array.from(y, Math.abs), m, k, n);
}

/** Xᵀ for X [m,n]. */
export function tr(x: ArrayLike<number>, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = x[i * n + j];
  return out;
}

/** U diag(S): scales column k of U [m,r] by S[k]. */
export function scaleCols(u: ArrayLike<number>, s: ArrayLike<number>, m: number, r: number): Float64Array {
  const out = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) out[i * r + k] = u[i * r + k] * s[k];
  return out;
}

export const addv = (a: ArrayLike<number>, b: ArrayLike<number>, c = 1): Float64Array => Float64Array.from(a, (v, i) => v + c * b[i]);

export const frob = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

/** Gram matrix minus I: XᵀX − I for X [m,r] (cols = true), or X Xᵀ − I for X [r,n]. */
export function gramMinusI(x: ArrayLike<number>, rows: number, cols: number, ofColumns: boolean): Float64Array {
  const r = ofColumns ? cols : rows;
  const out = ofColumns ? matmulReference(tr(x, rows, cols), x, cols, rows, cols) : matmulReference(x, tr(x, rows, cols), rows, cols, rows);
  for (let k = 0; k < r; k++) out[k * r + k] -= 1;
  return out;
}

/** The official regularizer in float64 over adapters given as { U [m,r], Vt [r,n] } data. */
export function regRef(adapters: { U: ArrayLike<number>; Vt: ArrayLike<number>; m: number; r: number; n: number }[]): number {
  let s = 0;
  for (const a of adapters) s += frob(gramMinusI(a.U, a.m, a.r, true)) + frob(gramMinusI(a.Vt, a.r, a.n, false));
  return s / (2 * adapters.length);
}

/** Singular values of A [m,n] in float64 (one-sided Jacobi to convergence), descending. */
export function singularValues(a: ArrayLike<number>, m: number, n: number): number[] {
  return svdReference(a, m, n).S;
}

/** Asserts |got − want| <= tol elementwise; returns a message for the first few failures. */
export function closeTo(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number, what: string): string[] {
  const bad: string[] = [];
  if (got.length !== want.length) return [`${what}: length ${got.length} vs ${want.length}`];
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    const t = tol(i);
    if (!(Math.abs(got[i] - want[i]) <= t)) bad.push(`${what}[${i}]: got ${got[i]}, want ${want[i]}, |diff| ${Math.abs(got[i] - want[i]).toExponential(3)} > ${t.toExponential(3)}`);
  }
  return bad;
}
