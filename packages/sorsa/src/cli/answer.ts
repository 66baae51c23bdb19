/**
 * Exact-match scoring as GSM8K is scored: an answer is the last number in the text, with its
 * thousands commas removed, and a generation is right when its number equals the reference's.
 * @module
 */

/**
 * A number as GSM8K's answers write it: digits with optional thousands commas (`1,234`), an
 * optional decimal part (`2.5`, or `.5`), and a minus sign unless it follows a digit (so `3-4` is 3
 * and 4, a range, not 3 and −4).
 */
const NUMBER = /(?:(?<![\d.])-)?(?:\d[\d,]*(?:\.\d+)?|\.\d+)/g;

/**
 * The last number in `text`, commas removed, as a JS number; null when there is none.
 *
 * @example
 * ```ts
 * finalNumber('She pays 3 x $412 = $1,236. The answer is 1,236.'); // 1236
 * finalNumber('The temperature fell to -4.5 degrees.');           // -4.5
 * finalNumber('I do not know.');                                   // null
 * ```
 */
export function finalNumber(text: string): number | null {
  let last: string | null = null;
  for (const m of text.matchAll(NUMBER)) last = m[0];
  if (last === null) return null;
  // Commas are thousands separators (GSM8K writes 1,234); a trailing one ends a clause ("5, then").
  const n = Number(last.replace(/,/g, ''));
  return Number.isFinite(n) ? n : null;
}

/**
 * Whether `generated` answers like `reference`: both have a final number and the numbers are
 * equal (`2.50` equals `2.5`). A reference without a number never matches.
 *
 * @example
 * ```ts
 * sameAnswer(' 3 + 4 = 7. The answer is 7.', ' The answer is 7'); // true
 * sameAnswer('The answer is 7 or 8', 'The answer is 7.');          // false: the last number is 8
 * ```
 */
export function sameAnswer(generated: string, reference: string): boolean {
  const want = finalNumber(reference);
  const got = finalNumber(generated);
  return want !== null && got !== null && got === want;
}
