/**
 * Argument checks shared by the package; each error names the function and the offending value.
 * @module
 */
import { Tensor } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { isAdaloraAdapter, isLoraAdapter, isSorsaAdapter, type Adapter } from './types.js';

/** `[a,b]` for error messages. */
export const fmt = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/** Checks that `w` is a live float32 matrix; `what` names it (a path, or "W"). */
export function checkWeight(fn: string, w: unknown, what = 'W'): Tensor {
  if (!(w instanceof Tensor)) throw new Error(`${fn}: ${what} must be a Tensor, got ${w === null ? 'null' : typeof w}`);
  w.use(fn);
  if (w.dtype !== 'float32') throw new Error(`${fn}: ${what} must be float32, got ${w.dtype}`);
  if (w.rank !== 2) throw new Error(`${fn}: ${what} must be a 2-D weight [out, in], got shape ${fmt(w.shape)}`);
  return w;
}

/** Checks that `rank` is an integer in [1, min(out, in)] for a weight of `shape`. */
export function checkRank(fn: string, rank: unknown, shape: readonly number[], what = 'W'): number {
  const p = Math.min(shape[0], shape[1]);
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1 || rank > p) {
    throw new Error(`${fn}: rank must be an integer in [1, ${p}] (min(out, in) of ${what} ${fmt(shape)}), got ${String(rank)}`);
  }
  return rank;
}

/** Checks a finite, positive `alpha` and returns the scale `alpha / rank` (1 without alpha). */
export function scaleOf(fn: string, alpha: unknown, rank: number): number {
  if (alpha === undefined) return 1;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw new Error(`${fn}: alpha must be a positive finite number, got ${String(alpha)}`);
  return alpha / rank;
}

/**
 * Rejects NaN and Infinity where a weight's values are already on the host (tensors made by
 * `tensor()` or loaded from a file), naming the first bad entry. Values still on the device are not
 * read back (the API is synchronous); non-finite input then gives non-finite factors.
 */
export function checkFiniteHost(fn: string, w: Tensor, what = 'W'): void {
  const bad = internal.firstNonFinite(w);
  if (bad) throw new Error(`${fn}: ${what} has a non-finite value ${bad.value} at [${bad.index.join(', ')}]`);
}

/** The resolved scale of an adapter: `opts.scale`, else the adapter's own, else 1. */
export function resolveScale(fn: string, adapter: Adapter, scale: number | undefined): number {
  const s = scale ?? adapter.scale ?? 1;
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new Error(`${fn}: scale must be a finite number, got ${String(s)}`);
  return s;
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

/** A short description of any value for an error message. */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x instanceof Tensor) return `a Tensor of shape ${fmt(x.shape)}`;
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return `an object with keys {${Object.keys(x).join(', ')}}`;
  return typeof x;
}
