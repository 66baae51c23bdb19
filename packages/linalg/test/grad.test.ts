/**
 * Gradient checks of the decompositions against float64 central differences of independent float64
 * references (QR here by modified Gram–Schmidt, which gives the same factors as Householder up to
 * the signs of R's diagonal, fixed below), along random directions as JAX's check_grads does.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { jacobiSvd, qr, randomizedSvd, svd, type SVD } from '@sorsajs/linalg';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, randomData, svdReference } from '@sorsajs/testing';

/** Float64 thin QR with R's diagonal positive (Gram–Schmidt twice for accuracy). */
function qrRef(a: Float64Array, m: number, n: number): { Q: Float64Array; R: Float64Array } {
  const Q = new Float64Array(m * n);
  const R = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const v = Float64Array.from({ length: m }, (_, i) => a[i * n + j]);
    for (let pass = 0; pass < 2; pass++) {
      for (let t = 0; t < j; t++) {
        let d = 0;
        for (let i = 0; i < m; i++) d += Q[i * n + t] * v[i];
        R[t * n + j] += d;
        for (let i = 0; i < m; i++) v[i] -= d * Q[i * n + t];
      }
    }
    const nrm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    R[j * n + j] = nrm;
    for (let i = 0; i < m; i++) Q[i * n + j] = v[i] / nrm;
  }
  return { Q, R };
}


/**
 * Checks the whole gradient of L(A) = Σ_{t<k} wS_t s_t + Σ_ij W_ij Σ_{t<k} c_t u_it v_jt (each
 * u_t v_tᵀ is free of the factors' signs) through `factors`, which returns the leading k triplets,
 * against float64 central differences of the float64 reference SVD, component by component and along
 * a random direction. The F terms divide by s_j² − s_i²: the tolerance allows a conditioning factor
 * on top of (m n) eps, relative to the largest component (as the directional check above).
 */
async function checkSvdGrad(factors: (x: c.Tensor) => SVD, m: number, n: number, k: number, seed: number): Promise<void> {
  const a32 = randomData(m * n, seed);
  const wS = randomData(k, seed + 1);
  const W = randomData(m * n, seed + 2);
  const cw = randomData(k, seed + 3);
  const f64 = (x: Float64Array): number => {
    const { U, S, V } = svdReference(x, m, n);
    let s = 0;
    for (let t = 0; t < k; t++) {
      s += wS[t] * S[t];
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) s += W[i * n + j] * cw[t] * U[t][i] * V[t][j];
    }
    return s;
  };
  const h = 1e-5;
  const fdAlong = (dir: ArrayLike<number>): number =>
    (f64(Float64Array.from(a32, (v, i) => v + h * dir[i])) - f64(Float64Array.from(a32, (v, i) => v - h * dir[i]))) / (2 * h);
  const want = Array.from({ length: m * n }, (_, p) => fdAlong(Float64Array.from({ length: m * n }, (_, i) => (i === p ? 1 : 0))));

  const a = c.tensor(a32, [m, n]);
  const tW = c.tensor(W, [m, n]);
  const tS = c.tensor(wS);
  const tc = c.tensor(cw);
  const g = c.grad((x: c.Tensor) => {
    const { U, S, Vt } = factors(x);
    return c.add(c.sum(c.mul(tS, S)), c.sum(c.mul(tW, c.matmul(c.mul(U, tc), Vt))));
  })(a);
  const gd = await g.data();
  c.tree.dispose([a, tW, tS, tc, g]);
  const top = Math.max(...want.map(Math.abs));
  const tol = 256 * m * n * EPS32 * top + 1e-5;
  const bad = want.flatMap((w, p) => (Math.abs(gd[p] - w) <= tol ? [] : [`[${Math.floor(p / n)},${p % n}]: autodiff ${gd[p]}, float64 FD ${w}`]));
  expect(bad, `tolerance ${tol}`).toEqual([]);
  const dir = randomData(m * n, seed + 4);
  let dot = 0;
  for (let i = 0; i < m * n; i++) dot += gd[i] * dir[i];
  expect(Math.abs(dot - fdAlong(dir))).toBeLessThanOrEqual(256 * m * n * EPS32 * want.reduce((acc, w, i) => acc + Math.abs(w * dir[i]), 0) + 1e-5);
}


forEachBackend('decomposition gradients', (backend) => {
  it('svd: cotangents of S and of sign-invariant u_k v_kᵀ terms match float64 central differences', async () => {
    const [m, n] = [7, 4];
    // Distinct, well separated singular values: the VJP is exact there.
    const a32 = randomData(m * n, 21);
    const wS = randomData(n, 22);
    const W = randomData(m * n, 23);
    const cw = randomData(n, 24);
    const dir = randomData(m * n, 25);
    // loss = sum_k wS_k s_k + sum_ij W_ij sum_k cw_k u_ik v_jk (each u_k v_kᵀ is sign-free)
    const f64 = (x: Float64Array): number => {
      const { U, S, V } = svdReference(x, m, n);
      let s = 0;
      for (let k = 0; k < n; k++) {
        s += wS[k] * S[k];
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) s += W[i * n + j] * cw[k] * U[k][i] * V[k][j];
      }
      return s;
    };
    const h = 1e-5;
    const fd = (f64(Float64Array.from(a32, (v, i) => v + h * dir[i])) - f64(Float64Array.from(a32, (v, i) => v - h * dir[i]))) / (2 * h);

    const a = c.tensor(a32, [m, n]);
    const tW = c.tensor(W, [m, n]);
    const tS = c.tensor(wS);
    const tc = c.tensor(cw);
    const g = c.grad((x: c.Tensor) => {
      const { U, S, Vt } = svd(x);
      return c.add(c.sum(c.mul(tS, S)), c.sum(c.mul(tW, c.matmul(c.mul(U, tc), Vt))));
    })(a);
    const gd = await g.data();
    let dot = 0;
    let scale = 0;
    for (let i = 0; i < m * n; i++) {
      dot += gd[i] * dir[i];
      scale += Math.abs(gd[i] * dir[i]);
    }
    c.tree.dispose([a, tW, tS, tc, g]);
    // The F terms divide by s_j² - s_i²: allow a conditioning factor on top of (m n) eps.
    expect(Math.abs(dot - fd)).toBeLessThanOrEqual(256 * m * n * EPS32 * Math.max(scale, Math.abs(fd)) + 1e-5);
  });

  it('qr: Q and R cotangents through the VJP match float64 central differences', async () => {
    const [m, n] = [6, 4];
    const a32 = randomData(m * n, 11);
    const wQ = randomData(m * n, 12);
    const wR = randomData(n * n, 13);
    const dir = randomData(m * n, 14);
    // Loss sum(wQ * Q D) + sum(wR * D R): D = sign(diag R) makes it independent of the sign convention.
    const loss = (Q: ArrayLike<number>, R: ArrayLike<number>, sgn: number[]): number => {
      let s = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) s += wQ[i * n + j] * Q[i * n + j] * sgn[j];
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += wR[i * n + j] * sgn[i] * R[i * n + j];
      return s;
    };
    const f64 = (x: Float64Array): number => {
      const { Q, R } = qrRef(x, m, n);
      return loss(Q, R, Array(n).fill(1));
    };
    const h = 1e-5;
    const plus = Float64Array.from(a32, (v, i) => v + h * dir[i]);
    const minus = Float64Array.from(a32, (v, i) => v - h * dir[i]);
    const fd = (f64(plus) - f64(minus)) / (2 * h);

    const a = c.tensor(a32, [m, n]);
    const probe = qr(a);
    const rd = await probe.R.data();
    const sgn = Array.from({ length: n }, (_, i) => Math.sign(rd[i * n + i]) || 1);
    c.tree.dispose(probe);
    const D = c.tensor(sgn);
    const WQ = c.tensor(wQ, [m, n]);
    const WR = c.tensor(wR, [n, n]);
    const g = c.grad((x: c.Tensor) => {
      const { Q, R } = qr(x);
      return c.add(c.sum(c.mul(c.mul(WQ, Q), D)), c.sum(c.mul(c.mul(WR, c.reshape(D, [n, 1])), R)));
    })(a);
    const gd = await g.data();
    let dot = 0;
    let scale = 0;
    for (let i = 0; i < m * n; i++) {
      dot += gd[i] * dir[i];
      scale += Math.abs(gd[i] * dir[i]);
    }
    c.tree.dispose([a, D, WQ, WR, g]);
    // Float32 factors and a triangular solve: error ~ (m n) eps relative to the sum of |terms|.
    expect(Math.abs(dot - fd)).toBeLessThanOrEqual(64 * m * n * EPS32 * Math.max(scale, Math.abs(fd)) + 1e-6);
  });

  it('jacobiSvd is differentiable (tall and wide): the gradient matches float64 central differences', async () => {
    await checkSvdGrad((x) => jacobiSvd(x), 6, 4, 4, 31);
    await checkSvdGrad((x) => jacobiSvd(x), 3, 5, 3, 36);
    // The same through the QR-preconditioned path (the default from min(m, n) = 128 on).
    await checkSvdGrad((x) => jacobiSvd(x, { precondition: 'qr' }), 6, 4, 4, 31);
    await checkSvdGrad((x) => jacobiSvd(x, { precondition: 'qr' }), 3, 5, 3, 36);
  });

  it("svd({ method: 'jacobi', rank }) gives the exact gradient of the truncated SVD", async () => {
    await checkSvdGrad((x) => svd(x, { method: 'jacobi', rank: 2 }), 6, 4, 2, 41);
  });

  it("under a gradient, svd's 'auto' takes the Jacobi path even for a small rank", async () => {
    // rank 1 < 0.1 * 12 would be randomized outside a gradient.
    await checkSvdGrad((x) => svd(x, { rank: 1 }), 14, 12, 1, 46);
  });

  it("randomizedSvd and svd({ method: 'randomized' }) refuse a gradient, naming the jacobi method", () => {
    const a = c.tensor(randomData(30, 51), [6, 5]);
    const message = /randomizedSvd: no gradient.*svd\(a, \{ method: 'jacobi', rank: 2 \}\)/;
    expect(() => c.grad((x: c.Tensor) => c.sum(randomizedSvd(x, { rank: 2 }).S))(a)).toThrow(message);
    expect(() => c.grad((x: c.Tensor) => c.sum(svd(x, { method: 'randomized', rank: 2 }).U))(a)).toThrow(message);
    if (backend === 'webgl') {
      // Its Gaussian sketch needs random.normal, which webgl refuses (exact integer arithmetic).
      expect(() => randomizedSvd(a, { rank: 2 })).toThrow(/normal: not available on webgl/);
      a.dispose();
      return;
    }
    // Outside a gradient, and on a constant inside one, it runs.
    const S = randomizedSvd(a, { rank: 2 }).S;
    expect(S.shape).toEqual([2]);
    const g = c.grad((x: c.Tensor) => c.mul(c.sum(x), c.sum(randomizedSvd(a, { rank: 2 }).S)))(a);
    expect(g.shape).toEqual([6, 5]);
    c.tree.dispose([a, S, g]);
  });
});
