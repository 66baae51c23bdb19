/**
 * Learning-rate schedules: functions of the number of updates done so far (0 for the first update).
 * @module
 */
import type { Schedule } from './types.js';
import { checkFiniteNumber, checkInteger } from '../tensor/checks.js';

/**
 * The same value at every step.
 *
 * @example
 * ```ts
 * constant(3e-4)(100); // 3e-4
 * ```
 */
export function constant(value: number): Schedule {
  checkFiniteNumber('constant', 'value', value);
  return () => value;
}

/**
 * Linear from `init` to `peak` over `warmupSteps`, then `peak`.
 *
 * @example
 * ```ts
 * const s = linearWarmup({ init: 0, peak: 1e-3, warmupSteps: 10 });
 * s(5); // 5e-4
 * ```
 */
export function linearWarmup(o: { init?: number; peak: number; warmupSteps: number }): Schedule {
  const init = o.init ?? 0;
  checkFiniteNumber('linearWarmup', 'peak', o.peak);
  checkInteger('linearWarmup', 'warmupSteps', o.warmupSteps);
  return (step) => (step >= o.warmupSteps ? o.peak : init + ((o.peak - init) * step) / o.warmupSteps);
}

/**
 * Cosine decay from `init` to `end` over `decaySteps`, then `end`.
 *
 * @example
 * ```ts
 * const s = cosineDecay({ init: 1, decaySteps: 100, end: 0 });
 * s(50); // 0.5
 * ```
 */
export function cosineDecay(o: { init: number; decaySteps: number; end?: number }): Schedule {
  const end = o.end ?? 0;
  checkFiniteNumber('cosineDecay', 'init', o.init);
  checkInteger('cosineDecay', 'decaySteps', o.decaySteps, { min: 1 });
  return (step) => {
    const t = Math.min(Math.max(step, 0), o.decaySteps) / o.decaySteps;
    return end + (o.init - end) * 0.5 * (1 + Math.cos(Math.PI * t));
  };
}

/**
 * Linear warmup from `init` to `peak` over `warmupSteps`, then cosine decay to `end` at `decaySteps`
 * (counted from step 0, warmup included, as optax's warmup_cosine_decay_schedule), then `end`.
 * SORSA's trainer uses 3% warmup then cosine to 0.
 *
 * @example
 * ```ts
 * const s = warmupCosineDecay({ init: 0, peak: 3e-5, warmupSteps: 30, decaySteps: 1000, end: 0 });
 * s(30); // 3e-5
 * ```
 */
export function warmupCosineDecay(o: { init?: number; peak: number; warmupSteps: number; decaySteps: number; end?: number }): Schedule {
  if (!(o.decaySteps > o.warmupSteps)) throw new Error(`warmupCosineDecay: decaySteps (${o.decaySteps}) must exceed warmupSteps (${o.warmupSteps})`);
  const warm = linearWarmup({ init: o.init ?? 0, peak: o.peak, warmupSteps: o.warmupSteps });
  const decay = cosineDecay({ init: o.peak, decaySteps: o.decaySteps - o.warmupSteps, end: o.end ?? 0 });
  return (step) => (step < o.warmupSteps ? warm(step) : decay(step - o.warmupSteps));
}
