/**
 * The float64 SVD that tests across packages compare against: cyclic one-sided Jacobi (Hestenes)
 * in plain loops, with V accumulated, written independently of the library's kernels.
 */

/** A float64 thin SVD: singular vectors as rows of U and V (u_k = U[k], v_k = V[k]), S descending. */
export interface ReferenceSvd {
  U: number[][];
  S: number[];
  V: number[][];
}

/**
 * Thin SVD of the row-major m x n matrix `a` (any shape: a wide matrix is handled through its
 * transpose), to float64 accuracy.
 */
export function svdReference(a: ArrayLike<number>, m: number, n: number): ReferenceSvd {
  if (m < n) {
    const t = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
    const r = svdReference(t, n, m);
    return { U: r.V, S: r.S, V: r.U };
  }
  const cols = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => a[i * n + j]));
  const V = Array.from({ length: n }, (_, j) => Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 80; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        let app = 0;
        let aqq = 0;
        let apq = 0;
        for (let r = 0; r < m; r++) {
          app += cols[p][r] ** 2;
          aqq += cols[q][r] ** 2;
          apq += cols[p][r] * cols[q][r];
        }
        if (app === 0 || aqq === 0 || Math.abs(apq) <= 1e-15 * Math.sqrt(app * aqq)) continue;
        rotated = true;
        const zeta = (aqq - app) / (2 * apq);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (const [X, Y, len] of [[cols[p], cols[q], m], [V[p], V[q], n]] as const) {
          for (let r = 0; r < len; r++) {
            const u = X[r];
            X[r] = cs * u - sn * Y[r];
            Y[r] = sn * u + cs * Y[r];
          }
        }
      }
    if (!rotated) break;
  }
  const S = cols.map((col) => Math.sqrt(col.reduce((acc, v) => acc + v * v, 0)));
  const order = S.map((_, i) => i).sort((i, j) => S[j] - S[i]);
  return {
    S: order.map((i) => S[i]),
    U: order.map((i) => Array.from(cols[i], (v) => (S[i] === 0 ? 0 : v / S[i]))),
    V: order.map((i) => Array.from(V[i])),
  };
}
