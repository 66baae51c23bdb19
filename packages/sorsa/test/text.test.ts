/**
 * The main job's data: the bundled text loads, the vocabulary maps rare characters to a space,
 * and batches are deterministic windows of the text with the next character as the target.
 */
import { expect, it } from 'vitest';
import { batches, mobyDick, vocabulary } from '../src/main/text.js';

it('Moby-Dick loads from its npm package, lowercased with whitespace collapsed', () => {
  const text = mobyDick();
  expect(text.length).toBeGreaterThan(1_000_000);
  expect(text.startsWith('chapter 1. loomings. call me ishmael.')).toBe(true);
  expect(/\s\s|\n/.test(text)).toBe(false);
});

it('vocabulary keeps frequent characters; unknown and rare ones become a space', () => {
  const v = vocabulary('aaab  c', 2);
  expect(v.chars).toEqual([' ', 'a']);
  expect(v.id('a')).toBe(1);
  expect(v.id('b')).toBe(0);
  expect(v.id('z')).toBe(0);
});

it('batches are seeded windows with the following character as the target', () => {
  const ids = Int32Array.from({ length: 100 }, (_, i) => i);
  const a = batches(ids, 4, 3, 9)();
  const b = batches(ids, 4, 3, 9)();
  expect(a).toEqual(b);
  for (let k = 0; k < 3; k++) {
    const w = Array.from(a.x.subarray(k * 4, k * 4 + 4));
    expect(w).toEqual([w[0], w[0] + 1, w[0] + 2, w[0] + 3]);
    expect(a.y[k]).toBe(w[0] + 4);
  }
});
