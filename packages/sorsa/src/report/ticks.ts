/**
 * Axis domains and tick marks at "nice" numbers (1, 2 or 5 times a power of ten).
 * @module
 */
import { formatNumber } from './format.js';

/**
 * An axis: its domain `[min, max]`, tick values inside it with their labels, and whether it is logarithmic.
 * @example `linearScale(0, 1) // { min: 0, max: 1, ticks: [0, 0.2, …, 1], labels: ['0', '0.2', …, '1.0'], log: false }`
 */
export interface Scale {
  /** The lower end of the axis (its first tick). */
  min: number;
  /** The upper end of the axis (its last tick). */
  max: number;
  /** Tick values, ascending, from `min` to `max`. */
  ticks: number[];
  /** One label per tick, as drawn. */
  labels: string[];
  /** Whether positions are proportional to log10 of the value. */
  log: boolean;
}

/**
 * A linear axis covering `[lo, hi]` with about `target` ticks, the domain widened to the first
 * and last tick. The step is 1, 2 or 5 times a power of ten, so labels are short and exact
 * (`0.3`, never `0.30000000000000004`). A zero-width range is padded by 10% (or ±1 around 0).
 *
 * @example
 * ```ts
 * linearScale(0.13, 0.92).ticks  // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * linearScale(0, 1000).labels    // ['0', '200', '400', '600', '800', '1000']
 * ```
 */
export function linearScale(lo: number, hi: number, target = 5): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) throw new Error(`linearScale: need finite lo <= hi, got [${lo}, ${hi}]`);
  if (!(target >= 1)) throw new Error(`linearScale: target tick count must be >= 1, got ${target}`);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  // A bound within a hair of a tick (lo = 0.6 → 0.6/0.2 = 2.9999999999999996) is on that tick.
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) {
    const t = k * step;
    ticks.push(decimals <= 20 ? Number(t.toFixed(decimals)) + 0 : t); // + 0 turns -0 into 0
  }
  const maxAbs = Math.max(Math.abs(ticks[0]), Math.abs(ticks[ticks.length - 1]));
  const plain = step >= 1e-4 && maxAbs < 1e6;
  // Enough significant digits to tell neighbouring ticks apart in exponent form.
  const sig = Math.min(21, Math.max(1, Math.floor(Math.log10(maxAbs || 1)) - Math.floor(Math.log10(step) + 1e-9) + 1));
  const labels = ticks.map((t) => (t === 0 ? '0' : plain ? t.toFixed(decimals) : formatNumber(t, sig)));
  return { min: ticks[0], max: ticks[ticks.length - 1], ticks, labels, log: false };
}

/**
 * A base-10 logarithmic axis covering `[lo, hi]` (both > 0). Over three decades or more the ticks
 * are powers of ten (thinned to at most 8); over fewer they are 1, 2 and 5 times powers of ten, and
 * the domain is the tightest such pair around the data.
 *
 * @example
 * ```ts
 * logScale(1.2, 4.5).ticks    // [1, 2, 5]
 * logScale(3e-4, 20).labels   // ['1e-4', '0.001', '0.01', '0.1', '1', '10', '100']
 * ```
 */
export function logScale(lo: number, hi: number): Scale {
  if (!(lo > 0) || !Number.isFinite(hi) || lo > hi) throw new Error(`logScale: need 0 < lo <= hi < ∞, got [${lo}, ${hi}]`);
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.ceil(Math.log10(hi));
  // Parsing `${f}e${k}` gives the double nearest the decimal, where f * 10 ** k can be off by an ulp.
  const num = (f: number, k: number): number => Number(`${f}e${k}`);
  let ticks: number[];
  if (e1 - e0 >= 3) {
    const every = Math.ceil((e1 - e0) / 7); // at most 8 ticks
    ticks = [];
    for (let k = e0; ; k += every) {
      ticks.push(num(1, k));
      if (k >= e1) break;
    }
  } else {
    const cand: number[] = [];
    for (let k = e0 - 1; k <= e1; k++) for (const f of [1, 2, 5]) cand.push(num(f, k));
    cand.push(num(1, e1 + 1));
    let i0 = cand.length - 1;
    while (cand[i0] > lo) i0--;
    let i1 = cand.findIndex((c) => c >= hi);
    if (i0 === i1) {
      i0 -= 1;
      i1 += 1;
    }
    ticks = cand.slice(i0, i1 + 1);
  }
  const labels = ticks.map((t) => (t >= 1e5 || t < 1e-3 ? t.toExponential().replace('e+', 'e') : String(t)));
  return { min: ticks[0], max: ticks[ticks.length - 1], ticks, labels, log: true };
}

/**
 * Where `v` falls along `scale`, as a fraction: 0 at `scale.min`, 1 at `scale.max`.
 *
 * @example
 * ```ts
 * position(linearScale(0, 10), 5)  // 0.5
 * position(logScale(1, 100), 10)   // 0.5
 * ```
 */
export function position(scale: Scale, v: number): number {
  if (scale.log) return (Math.log10(v) - Math.log10(scale.min)) / (Math.log10(scale.max) - Math.log10(scale.min));
  return (v - scale.min) / (scale.max - scale.min);
}
