/**
 * Gradient checks against float64 finite differences, as JAX's `check_grads` does, but with the
 * differences taken on an independent float64 reference (plain loops in the test) rather than on the
 * float32 function under test, so their error is negligible next to float32 rounding.
 *
 * For `f(x_1..x_n)` (any output shape) and its reference `fRef`, `checkGrads`:
 *  - draws float32-representable inputs and a fixed random weight `w` of f's output shape, and
 *    differentiates the scalar `L = sum(f(x) * w)`, so the whole Jacobian is exercised (JᵀW);
 *  - per input element k, takes the float64 central difference of `fRef` along the unit vector e_k,
 *    which gives the Jacobian column J_k: the reference gradient Σ_i w_i J_ik and the scale
 *    S_k = Σ_i |w_i| |J_ik| (the sum of |terms| the gradient adds up);
 *  - checks every component, |g_k - Σ w_i J_ik| <= k * EPS32 * S_k + fdErr_k, and the directional
 *    derivative along a random v (JAX's check): |<g, v> - D_v L| <= k * EPS32 * Σ |v_k| S_k + fdErr.
 *
 * fdErr is the float64 difference's own error, estimated as |D(h) - D(2h)| (3x the O(h²) truncation
 * error of D(h), so conservative); with h = 1e-4 it is ~1e-9 relative and plays no part unless a
 * reference is badly conditioned. `k` (eps per unit of scale) is set by each test from the depth of
 * the computation and the length of the sums in its backward pass; the tests document each choice.
 * With `normwise`, S_k is replaced by the largest S over the same input (see CheckOptions).
 * A wrong VJP gives errors of order S_k itself, ~1e5 times these tolerances. GRADCHECK_VERBOSE=1
 * prints each check's worst error as a fraction of its tolerance.
 */
import { expect } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { checkGrads as kitCheckGrads } from '@sorsajs/testing';
import { count, randomData, rng, type Nd } from './reference.js';

/** One input of a checked function: its shape and the range its values are drawn from, or given data. */
export interface Arg {
  shape: number[];
  lo?: number;
  hi?: number;
  /** Values to use instead of random ones (rounded to float32). */
  data?: ArrayLike<number>;
}

export interface CheckOptions {
  /** Seeds inputs, weights and direction. */
  seed: number;
  /** Tolerance in float32 eps per unit of the scale S (see the module comment). */
  k: number;
  /** Finite-difference step in float64 (default 1e-4). */
  h?: number;
  /**
   * Scale each input's components by the largest S over that input (norm-wise, as in Higham's
   * norm-wise error bounds). For a composite with a scalar output the Jacobian shows no terms at all
   * (S_k is |dL/dx_k|, which cancellation in the backward pass can make arbitrarily small), while a
   * component's rounding error is set by the size of the terms it shares with the rest of its tensor.
   */
  normwise?: boolean;
}

/** What a check measured: the worst error as a fraction of its tolerance (for calibrating k). */
export interface CheckReport {
  worst: number;
  value: number;
}

/** The float32 input data of a check (exposed so a test can build data-dependent references). */
export function argData(args: readonly Arg[], seed: number): Float32Array[] {
  return args.map((a, j) => (a.data ? Float32Array.from(a.data) : randomData(count(a.shape), seed * 31 + j + 1, a.lo ?? -1, a.hi ?? 1)));
}

/**
 * Checks the gradient of `sum(f(...xs) * w)` with respect to every input against float64 central
 * differences of `fRef`, by the testing kit's `checkGrads` with a reference (the algorithm above).
 * `f` may itself take gradients (second order checks).
 */
export async function checkGrads(
  f: (...xs: Tensor[]) => Tensor,
  fRef: (...xs: Nd[]) => Nd,
  args: readonly Arg[],
  opts: CheckOptions,
): Promise<CheckReport> {
  const xs = argData(args, opts.seed).map((d, j) => c.tensor(d, args[j].shape));
  try {
    const report = await kitCheckGrads(f, xs, { reference: fRef, seed: opts.seed, k: opts.k, eps: opts.h ?? 1e-4, normwise: opts.normwise });
    if (process.env.GRADCHECK_VERBOSE) console.log(`gradcheck worst ${report.worst.toFixed(4)} of tol (k=${opts.k}) ${expect.getState().currentTestName}`);
    return report;
  } finally {
    for (const x of xs) x.dispose();
  }
}

/** Moves values within `gap` of any of `points` out to distance `gap` (away from kinks and ties). */
export function awayFrom(data: Float32Array, points: readonly number[], gap: number): Float32Array {
  const out = Float32Array.from(data);
  for (let i = 0; i < out.length; i++) {
    for (const p of points) {
      const d = out[i] - p;
      if (Math.abs(d) < gap) out[i] = p + (d < 0 ? -gap : gap) + d;
    }
  }
  return out;
}

/** n distinct values in [lo, hi) at least (hi - lo) / (2n) apart, in seeded random order (no ties for max/min). */
export function distinct(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const step = (hi - lo) / n;
  return Float32Array.from(order, (o) => lo + step * (o + 0.25 + 0.5 * r()));
}
