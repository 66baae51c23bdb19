/**
 * The shared argument checks (`tensor/checks.ts`, reached by linalg and sorsa through
 * `@sorsajs/core/internal`): what each accepts and the sentence each error is, since the packages'
 * messages are built from them. Host-side, so on wasm only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
});

describe('tensor checks', () => {
  it('checkTensor names the op and the argument, and refuses a disposed tensor', () => {
    const x = c.zeros([2]);
    expect(internal.checkTensor('add', x)).toBe(x);
    expect(() => internal.checkTensor('matmul', 3, 'a')).toThrow(/^matmul: argument a must be a Tensor, got number$/);
    expect(() => internal.checkTensor('matmul', { w: 1 }, 'b')).toThrow(/^matmul: argument b must be a Tensor, got an object with keys \{w\}$/);
    x.dispose();
    expect(() => internal.checkTensor('add', x)).toThrow(/add: .*disposed/);
  });

  it('checkMatrix: "expects" without a name, "what must be" with one, the form of a rank-2 tensor given', () => {
    expect(() => internal.checkMatrix('qr', null)).toThrow(/^qr: expects a Tensor, got null$/);
    expect(() => internal.checkMatrix('qr', c.zeros([2, 2, 2]))).toThrow(/^qr: expects a matrix \(rank 2\), got shape \[2,2,2\]$/);
    expect(() => internal.checkMatrix('qr', c.tensor([[1]], undefined, 'int32'))).toThrow(/^qr: expects a float32 matrix, got int32$/);
    expect(() => internal.checkMatrix('init', c.zeros([3]), { what: 'W', form: 'a 2-D weight [out, in]' })).toThrow(/^init: W must be a 2-D weight \[out, in\], got shape \[3\]$/);
    const m = c.zeros([2, 3]);
    expect(internal.checkMatrix('qr', m)).toBe(m);
  });

  it('checkFiniteValues names the first non-finite entry of host values', () => {
    expect(() => internal.checkFiniteValues('qr', c.tensor([[1, 2], [Infinity, NaN]]))).toThrow(/^qr: input has a non-finite value Infinity at \[1, 0\]$/);
    expect(() => internal.checkFiniteValues('init', c.tensor([NaN]), 'W')).toThrow(/^init: W has a non-finite value NaN at \[0\]$/);
    expect(() => internal.checkFiniteValues('qr', c.tensor([[1, 2]]))).not.toThrow();
  });

  it('firstNonFinite finds the first NaN or ±Infinity wherever it is: every position modulo 4, the tail, several (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity)), { maxLength: 3 }),
        fc.double({ min: -1e30, max: 1e30, noNaN: true }),
        (len, bad, scale) => {
          const v = Float32Array.from({ length: len }, (_, i) => Math.fround(scale * Math.sin(i + 1)));
          for (const [at, x] of bad) v[at % len] = x;
          // The expected answer by a plain scan (the function under test skips its scan when its
          // sums say all finite: a wrong sum would show here as a missed value).
          const first = v.findIndex((x) => !Number.isFinite(x));
          const got = internal.firstNonFinite(c.tensor(v, [len]));
          if (first < 0) return got === null;
          return got !== null && got.index[0] === first && Object.is(got.value, v[first]);
        },
      ),
      { numRuns: 300 },
    );
    // A large one, the bad value last, in a 2-D shape: its multi-index.
    const big = new Float32Array(3072 * 769).fill(-2.5);
    big[big.length - 1] = -Infinity;
    expect(internal.firstNonFinite(c.tensor(big, [3072, 769]))).toEqual({ value: -Infinity, index: [3071, 768] });
    big[big.length - 1] = 3.4e38;
    expect(internal.firstNonFinite(c.tensor(big, [3072, 769]))).toBeNull();
  });

  it('describe and fmtShape', () => {
    expect(internal.describe(null)).toBe('null');
    expect(internal.describe([1])).toBe('an array');
    expect(internal.describe(c.zeros([2, 3]))).toBe('a Tensor of shape [2,3]');
    expect(internal.describe(undefined)).toBe('undefined');
    expect(internal.fmtShape([4, 5])).toBe('[4,5]');
  });
});

describe('number checks', () => {
  it('checkFiniteNumber and checkPositiveNumber', () => {
    expect(internal.checkFiniteNumber('f', 'x', -2)).toBe(-2);
    expect(() => internal.checkFiniteNumber('f', 'x', NaN)).toThrow(/^f: x must be a finite number, got NaN$/);
    // A string is quoted, so that "1" does not read as the number 1; an object is described.
    expect(() => internal.checkFiniteNumber('f', 'x', '1')).toThrow(/^f: x must be a finite number, got "1"$/);
    expect(() => internal.checkFiniteNumber('f', 'x', { v: 1 })).toThrow(/^f: x must be a finite number, got an object with keys \{v\}$/);
    expect(() => internal.checkPositiveNumber('f', 'lr', '0.1')).toThrow(/^f: lr must be a positive finite number, got "0.1"$/);
    expect(() => internal.checkInteger('f', 'rank', '4', { min: 1, max: 48 })).toThrow(/^f: rank must be an integer in \[1, 48\], got "4"$/);
    expect(internal.checkPositiveNumber('f', 'alpha', 0.5)).toBe(0.5);
    expect(() => internal.checkPositiveNumber('f', 'alpha', 0)).toThrow(/^f: alpha must be a positive finite number, got 0$/);
    expect(() => internal.checkPositiveNumber('f', 'lr', undefined, 'when gamma > 0')).toThrow(/^f: lr must be a positive finite number when gamma > 0, got undefined$/);
  });

  it('checkInteger states its range the way the messages always did', () => {
    expect(internal.checkInteger('f', 'n', 0)).toBe(0);
    expect(() => internal.checkInteger('f', 'n', 1.5)).toThrow(/^f: n must be a non-negative integer, got 1.5$/);
    expect(() => internal.checkInteger('f', 'n', 0, { min: 1 })).toThrow(/^f: n must be a positive integer, got 0$/);
    expect(() => internal.checkInteger('f', 'n', 2, { min: 3 })).toThrow(/^f: n must be an integer >= 3, got 2$/);
    expect(() => internal.checkInteger('svd', 'rank', 10, { min: 1, max: 9, note: 'for shape [12,9]' })).toThrow(/^svd: rank must be an integer in \[1, 9\] for shape \[12,9\], got 10$/);
    expect(internal.checkInteger('f', 'n', 9, { min: 1, max: 9 })).toBe(9);
    expect(() => internal.mustBe('f', undefined, 'x', 'y')).not.toThrow();
    expect(internal.mustBe('f', undefined, 'a key', 'number').message).toBe('f: expects a key, got number');
  });
});
