/**
 * Value parsers for commander options: each checks one flag's value and says which flag and value
 * were wrong, so that `sorsa finetune --rank abc` fails with one line naming `--rank`.
 * @module
 */
import { InvalidArgumentError } from 'commander';

/** An integer in [min, max]. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

/** A finite number, at least `min` (or above it when `exclusive`), at most `max`. */
export function num(min = -Infinity, opts: { exclusive?: boolean; max?: number } = {}): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    const max = opts.max ?? Infinity;
    const low = opts.exclusive ? n > min : n >= min;
    if (value.trim() === '' || !Number.isFinite(n) || !low || n > max) {
      const range = [Number.isFinite(min) ? `${opts.exclusive ? '>' : '>='} ${min}` : '', Number.isFinite(max) ? `<= ${max}` : ''].filter(Boolean).join(' and ');
      throw new InvalidArgumentError(`expected a finite number${range ? ` ${range}` : ''}`);
    }
    return n;
  };
}

/** A comma-separated list of non-empty names. */
export function list(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.length === 0 || items.some((s) => s === '')) throw new InvalidArgumentError('expected a comma-separated list of non-empty names');
  return items;
}
