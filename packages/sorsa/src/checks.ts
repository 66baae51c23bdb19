/**
 * The adapter checks of the package (weights, ranks, scales, an adapter's factors), built on core's
 * shared argument checks (`@sorsajs/core/internal`, `tensor/checks.ts`); each error names the
 * function and the offending value.
 * @module
 */
import { Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { describe, fmtShape as fmt } from '@sorsajs/core/internal';
import { isAdaloraAdapter, isLoraAdapter, isSorsaAdapter, type Adapter } from './types.js';

/** Checks that `w` is a live float32 matrix, a weight `[out, in]`; `what` names it (a path, or "W"). */
export function checkWeight(fn: string, w: unknown, what = 'W'): Tensor {
  return internal.checkMatrix(fn, w, { what, form: 'a 2-D weight [out, in]' });
}

/** Checks that `rank` is an integer in [1, min(out, in)] for a weight of `shape`. */
export function checkRank(fn: string, rank: unknown, shape: readonly number[], what = 'W'): number {
  const max = Math.min(shape[0], shape[1]);
  return internal.checkInteger(fn, 'rank', rank, { min: 1, max, note: `(min(out, in) of ${what} ${fmt(shape)})` });
}

/** Checks a finite, positive `alpha` and returns the scale `alpha / rank` (1 without alpha). */
export function scaleOf(fn: string, alpha: unknown, rank: number): number {
  if (alpha === undefined) return 1;
  return internal.checkPositiveNumber(fn, 'alpha', alpha) / rank;
}

/** The resolved scale of an adapter: `opts.scale`, else the adapter's own, else 1. */
export function resolveScale(fn: string, adapter: Adapter, scale: number | undefined): number {
  const s = scale ?? adapter.scale ?? 1;
  return internal.checkFiniteNumber(fn, 'scale', s);
}

/**
 * The adapter's factors as `left [out, r]`, optional `mid`, `right [r, in]`, after checking shapes.
 * `mid` is `[r]` for SORSA (scales left's columns) and `[r, 1]` for AdaLoRA (scales right's rows).
 */
export function factors(fn: string, adapter: unknown, what = 'adapter'): { left: Tensor; mid: Tensor | null; right: Tensor; out: number; inp: number; rank: number } {
  let left: Tensor;
  let mid: Tensor | null = null;
  let right: Tensor;
  let names: [string, string];
  if (isSorsaAdapter(adapter)) {
    [left, mid, right, names] = [adapter.U, adapter.S, adapter.Vt, ['U', 'Vt']];
  } else if (isAdaloraAdapter(adapter)) {
    [left, mid, right, names] = [adapter.B, adapter.E, adapter.A, ['B', 'A']];
  } else if (isLoraAdapter(adapter)) {
    [left, right, names] = [adapter.B, adapter.A, ['B', 'A']];
  } else {
    throw new Error(`${fn}: ${what} must be a SORSA adapter { U, S, Vt }, a LoRA adapter { A, B } or an AdaLoRA adapter { A, E, B }, got ${describe(adapter)}`);
  }
  for (const t of [left, mid, right]) if (t) t.use(fn);
  if (left.rank !== 2 || right.rank !== 2 || left.shape[1] !== right.shape[0]) {
    throw new Error(`${fn}: ${what}.${names[0]} must be [out, r] and ${what}.${names[1]} [r, in], got ${fmt(left.shape)} and ${fmt(right.shape)}`);
  }
  const rank = left.shape[1];
  if (mid && isAdaloraAdapter(adapter)) {
    if (mid.rank !== 2 || mid.shape[0] !== rank || mid.shape[1] !== 1) throw new Error(`${fn}: ${what}.E must be [${rank}, 1] (r of B ${fmt(left.shape)}), got ${fmt(mid.shape)}`);
  } else if (mid && (mid.rank !== 1 || mid.shape[0] !== rank)) throw new Error(`${fn}: ${what}.S must be [${rank}] (r of U ${fmt(left.shape)}), got ${fmt(mid.shape)}`);
  return { left, mid, right, out: left.shape[0], inp: right.shape[1], rank };
}

/** Checks that `residual` is `[out, in]` for the adapter's factors. */
export function checkResidual(fn: string, residual: unknown, out: number, inp: number, what = 'residual'): Tensor {
  if (!(residual instanceof Tensor)) throw new Error(`${fn}: ${what} must be a Tensor, got ${describe(residual)}`);
  residual.use(fn);
  if (residual.rank !== 2 || residual.shape[0] !== out || residual.shape[1] !== inp) {
    throw new Error(`${fn}: ${what} must be [${out},${inp}] to match the adapter, got ${fmt(residual.shape)}`);
  }
  return residual;
}
