/**
 * Numbers as a reader wants them in tables and tooltips: a few significant digits, no float noise.
 * @module
 */

/**
 * `x` with at most `digits` significant digits (default 4), trailing zeros dropped: `0.1 + 0.2`
 * prints `0.3`. Integers print whole (up to 1e15), large non-integers round to an integer, tiny
 * ones switch to exponent form; NaN and infinities print as `NaN`, `∞` and `−∞`.
 *
 * @example
 * ```ts
 * formatNumber(0.1 + 0.2)      // '0.3'
 * formatNumber(2 / 3)          // '0.6667'
 * formatNumber(12345.678)      // '12346'
 * formatNumber(0.000012)      // '1.2e-5'
 * formatNumber(1234567)        // '1234567'
 * ```
 */
export function formatNumber(x: number, digits = 4): string {
  if (!Number.isInteger(digits) || digits < 1 || digits > 21) throw new Error(`formatNumber: digits must be an integer in [1, 21], got ${digits}`);
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '∞';
  if (x === -Infinity) return '−∞';
  if (x === 0) return '0'; // also -0
  const ax = Math.abs(x);
  if (Number.isInteger(x) && ax < 1e15) return String(x);
  if (ax >= 1e15 || ax < 1e-4) return trimExponent(x.toExponential(digits - 1));
  const p = x.toPrecision(digits);
  // 9999.7 to 4 digits is '1.000e+4': a number that rounds up past `digits` integer digits prints whole.
  return p.includes('e') ? String(Math.round(x)) : trimZeros(p);
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function trimExponent(s: string): string {
  const [m, e] = s.split('e');
  return `${trimZeros(m)}e${e.replace('+', '')}`;
}
