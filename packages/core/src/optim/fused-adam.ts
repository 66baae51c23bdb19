/**
 * @internal Adam's and AdamW's fused step (`GradientTransformation.fusedStep`, through `applyStep`):
 * per leaf one kernel on wasm (the moments and the parameter stored one after another, returned as
 * three tensors sharing one result), elsewhere one kernel for each moment and one for the new
 * parameter; each reads the gradient as `g * gradScale + r * weight` and is gated by `applyIf`, where composing them took a kernel for the
 * scaling, two for the added gradient, three for the update, one to apply it and three for a gate.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { mapAny } from '../tree/tree.js';
import { launch, launchParts } from '../ops/operand.js';
import { backend } from '../backend/registry.js';
import { reshape } from '../ops/shape.js';
import { recording } from '../autodiff/tape.js';
import { adamLeafKernel, adamMomentKernel, adamParamKernel, type GradWeight } from '../kernels/optim.js';
import type { StepOptions } from './types.js';

/** Adam's constants for one step, as `adam`'s update computes them. */
export interface AdamStepConstants {
  b1: number;
  b2: number;
  eps: number;
  /** lr / (1 - b1^t). */
  stepSize: number;
  /** sqrt(1 - b2^t). */
  bc2: number;
  /** lr * weightDecay for the leaves that decay (mask true), or null without decay. */
  wd: number | null;
  /** The decay mask tree (true: decays), or null for every leaf. */
  mask: unknown;
}

/**
 * The largest leaf whose step runs as one kernel on wasm. That kernel holds its five inputs and its
 * threefold result in one WebAssembly memory (~8n floats; each of the three kernels ~4n); past 2^24
 * elements (512 MB there) a leaf takes the three kernels, so a huge weight stays within wasm's 4 GB.
 */
const LEAF_KERNEL_MAX = 2 ** 24;

interface Leaf {
  g: Tensor;
  r: Tensor | null;
  m: Tensor;
  v: Tensor;
  p: Tensor;
  decays: boolean;
}

const sameShape = (a: Tensor, b: Tensor): boolean => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

/**
 * The new params and moments, or null when the fused kernels do not apply: a gradient being taken
 * through one of the tensors, a leaf whose moments or param are missing, or whose tensors are not
 * float32 of the param's shape. The caller then composes the update.
 */
export function adamFusedStep(grads: unknown, mu: unknown, nu: unknown, params: unknown, o: StepOptions, c: AdamStepConstants): { params: unknown; mu: unknown; nu: unknown } | null {
  const leaves: Leaf[] = [];
  let ok = true;
  const extra = o.add?.grads ?? grads;
  mapAny(
    (g, r, m, v, p, k) => {
      if (!(g instanceof Tensor)) return null;
      if (!(m instanceof Tensor && v instanceof Tensor && p instanceof Tensor)) {
        ok = false;
        return null;
      }
      const rt = o.add && r instanceof Tensor ? r : null;
      for (const x of [g, rt, m, v, p]) if (x && (x.dtype !== 'float32' || !sameShape(x, p))) ok = false;
      leaves.push({ g, r: rt, m, v, p, decays: c.wd !== null && (c.mask === null || !!k) });
      return null;
    },
    grads,
    extra,
    mu,
    nu,
    params,
    c.mask === null ? grads : c.mask,
  );
  const scale = o.gradScale;
  const gate = o.applyIf ?? null;
  const scalarTensors = [scale instanceof Tensor ? scale : null, gate];
  if (!ok || scalarTensors.some((t) => t && t.dtype !== 'float32')) return null;
  if (recording([...leaves.flatMap((l) => [l.g, l.r, l.m, l.v, l.p]), ...scalarTensors])) return null;

  const out: { p: Tensor; m: Tensor; v: Tensor }[] = [];
  for (const l of leaves) {
    const terms: GradWeight[] = [scale === undefined ? 'one' : scale instanceof Tensor ? 'tensor' : 'number'];
    const arrays: Tensor[] = [l.g];
    const weights: number[] = [];
    if (scale instanceof Tensor) arrays.push(scale);
    else if (scale !== undefined) weights.push(scale);
    if (l.r) {
      terms.push('number');
      arrays.push(l.r);
      weights.push(o.add!.weight);
    }
    const decay = l.decays && c.wd !== null && c.wd !== 0;
    // Float scalars rounded to float32 first, as the composed ops' constants are (rank-0 float32
    // tensors): the cpu backend would otherwise compute with their float64 values.
    if (backend() === 'wasm' && l.p.size <= LEAF_KERNEL_MAX) {
      // One launch for the leaf: its three results stored one after another, as three tensors.
      const n = l.p.size;
      const scalars = [...weights, c.b1, 1 - c.b1, c.b2, 1 - c.b2, c.stepSize, c.bc2, c.eps, ...(decay ? [c.wd as number] : [])].map(Math.fround);
      const [m, v, p] = launchParts('adam', adamLeafKernel(terms, !!gate, decay, n), n, [l.p.shape, l.p.shape, l.p.shape], [...arrays, l.m, l.v, l.p, ...(gate ? [gate] : [])], scalars);
      out.push({ p, m, v });
      continue;
    }
    const moment = (which: 'mu' | 'nu', prev: Tensor, beta: number): Tensor =>
      launch('adam', adamMomentKernel(which, terms, !!gate), l.p.shape, 'float32', [...arrays, prev, ...(gate ? [gate] : [])], [...weights, beta, 1 - beta].map(Math.fround));
    const m = moment('mu', l.m, c.b1);
    const v = moment('nu', l.v, c.b2);
    const p = launch('adam', adamParamKernel(decay, !!gate), l.p.shape, 'float32', [l.p, m, v, ...(gate ? [gate] : [])], [c.stepSize, c.bc2, c.eps, ...(decay ? [c.wd as number] : [])].map(Math.fround));
    out.push({ p, m, v });
  }
  // The results in the order the leaves were met (every walk below visits the leaves in that order).
  const pick = (which: 'p' | 'm' | 'v'): ((g: unknown) => Tensor | null) => {
    let k = 0;
    return (g) => (g instanceof Tensor ? out[k++][which] : null);
  };
  const newParam = pick('p');
  return {
    // A param without a gradient passes through as a new handle (as applyUpdates).
    params: mapAny((p, g) => (g instanceof Tensor ? newParam(g) : p instanceof Tensor ? reshape(p, p.shape) : p), params, grads),
    mu: mapAny(pick('m'), grads),
    nu: mapAny(pick('v'), grads),
  };
}
