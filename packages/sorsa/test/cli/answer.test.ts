/**
 * GSM8K's exact-match rule (cli/answer.ts): the last number in the text, commas removed, on crafted
 * cases: thousands separators, signs, decimals, ranges, prose around the number, and no number.
 */
import { describe, expect, it } from 'vitest';
import { finalNumber, sameAnswer } from '../../src/cli/answer.js';

describe('finalNumber: the last number of a text, as GSM8K reads answers', () => {
  const cases: [string, number | null][] = [
    ['The answer is 1,234.', 1234],
    ['#### 72', 72],
    ['She has 3 apples and buys 4 more, so 3 + 4 = 7. The answer is 7.', 7],
    ['1,000,000 people', 1000000],
    ['It costs $1,236.50 in all.', 1236.5],
    ['The temperature fell to -4.5 degrees.', -4.5],
    ['The answer is -12', -12],
    ['Pages 3-4', 4], // a range: the hyphen after a digit is not a minus sign
    ['x = 5 - 8 = -3', -3],
    ['half is .5', 0.5],
    ['5, then 6,', 6], // trailing commas end clauses
    ['The answer is 7.0', 7],
    ['007', 7],
    ['no number here', null],
    ['', null],
    ['- and , and .', null],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(finalNumber(text)).toBe(want);
    });
  }
});

describe('sameAnswer: final numbers equal', () => {
  it('equal numbers in other words and forms match', () => {
    expect(sameAnswer(' 3 + 4 = 7. The answer is 7.', ' The answer is 7')).toBe(true);
    expect(sameAnswer('The answer is 1234', 'The answer is 1,234.')).toBe(true);
    expect(sameAnswer('2.50', 'The answer is 2.5.')).toBe(true);
  });
  it('the last number decides, and a missing number is wrong on either side', () => {
    expect(sameAnswer('The answer is 7 or 8', 'The answer is 7.')).toBe(false);
    expect(sameAnswer('7', '-7')).toBe(false);
    expect(sameAnswer('I do not know', 'The answer is 7.')).toBe(false);
    expect(sameAnswer('7', 'seven')).toBe(false);
    expect(sameAnswer('', '')).toBe(false);
  });
});
