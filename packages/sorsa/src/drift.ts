/**
 * The paper's analysis of parameter variation between a pretrained and a tuned weight.
 * @module
 */
import { Tensor, abs, diag, matmul, mean, sub, tidy, tree } from '@sorsajs/core';
import { svd } from '@sorsajs/linalg';

/** The paper's two measures of how far a tuned weight moved from its pretrained value. */
export interface Drift {
  /** ΔΣ = mean_i |σ_i(W_t) − σ_i(W_0)|. */
  deltaSigma: number;
  /** ΔD = 1 − ½ mean_i ( |⟨u_i(W_t), u_i(W_0)⟩| + |⟨v_i(W_t), v_i(W_0)⟩| ). */
  deltaD: number;
}

/**
 * ΔΣ and ΔD between `W0` and `Wt` (both `[out, in]`), from full thin SVDs of each (Jacobi) as the
 * SORSA paper defines them. Async: the two numbers are read back.
 *
 * @example
 * ```ts
 * const { deltaSigma, deltaD } = await drift(W0, mergedAfterTraining);
 * ```
 */
export async function drift(W0: Tensor, Wt: Tensor): Promise<Drift> {
  for (const [name, w] of [['W0', W0], ['Wt', Wt]] as const) {
    if (!(w instanceof Tensor) || w.rank !== 2) throw new Error(`drift: ${name} must be a matrix, got ${w instanceof Tensor ? `shape [${w.shape}]` : typeof w}`);
  }
  if (W0.shape[0] !== Wt.shape[0] || W0.shape[1] !== Wt.shape[1]) throw new Error(`drift: W0 [${W0.shape}] and Wt [${Wt.shape}] differ in shape`);
  const [dS, uDot, vDot] = tidy(() => {
    const a = svd(W0, { method: 'jacobi' });
    const b = svd(Wt, { method: 'jacobi' });
    // ⟨u_i(W_t), u_i(W_0)⟩ = diag(U_tᵀ U_0); ⟨v_i, v_i⟩ = diag(Vt_t Vt_0ᵀ).
    return [
      mean(abs(sub(b.S, a.S))),
      mean(abs(diag(matmul(b.U, a.U, { transposeA: true })))),
      mean(abs(diag(matmul(b.Vt, a.Vt, { transposeB: true })))),
    ];
  });
  const [s, u, v] = await Promise.all([dS.data(), uDot.data(), vDot.data()]);
  tree.dispose([dS, uDot, vDot]);
  return { deltaSigma: s[0], deltaD: 1 - 0.5 * (u[0] + v[0]) };
}

/**
 * `drift` for every 2-D tensor leaf that both trees hold at the same path with the same shape,
 * keyed by dotted path.
 *
 * @example
 * ```ts
 * const perLayer = await driftParams(pretrained, mergeParams(trainable, frozen));
 * ```
 */
export async function driftParams(params0: unknown, paramsT: unknown): Promise<Record<string, Drift>> {
  const leaves0 = tree.leaves(params0);
  const p0 = new Map(tree.leafPaths(params0).map((p, i) => [p, leaves0[i]]));
  const pT = tree.leafPaths(paramsT);
  const leavesT = tree.leaves(paramsT);
  const out: Record<string, Drift> = {};
  for (const [i, p] of pT.entries()) {
    const a = p0.get(p);
    const b = leavesT[i];
    if (a instanceof Tensor && b instanceof Tensor && a.rank === 2 && b.rank === 2 && a.shape[0] === b.shape[0] && a.shape[1] === b.shape[1]) {
      out[p] = await drift(a, b);
    }
  }
  return out;
}
