/**
 * The main job's task generator: splits disjoint and deterministic for a seed, every worked
 * solution's arithmetic right (recomputed here from the text), answers where GSM8K's rule finds them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateTask, names, TEMPLATE_NAMES } from '../../src/compare/task.js';

describe('generateTask', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateTask({ seed: 7, train: 200, validation: 20, test: 50 });
    expect(generateTask({ seed: 7, train: 200, validation: 20, test: 50 })).toEqual(a);
    expect(generateTask({ seed: 8, train: 200, validation: 20, test: 50 }).test).not.toEqual(a.test);
  });

  it('splits share no problem (by template and numbers, names aside) and no prompt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const { train, validation, test } = generateTask({ seed, train: 300, validation: 30, test: 60 });
        expect([train.length, validation.length, test.length]).toEqual([300, 30, 60]);
        const keys = [...train, ...validation, ...test].map((p) => p.key);
        expect(new Set(keys).size).toBe(keys.length);
        const trainPrompts = new Set(train.map((p) => p.prompt));
        for (const p of [...validation, ...test]) expect(trainPrompts.has(p.prompt)).toBe(false);
      }),
      { numRuns: 10 },
    );
  });

  it('every step of every solution is right, and the completion ends in "The answer is N."', () => {
    const { train, test } = generateTask({ seed: 1, train: 1000, validation: 0, test: 200 });
    const ops: Record<string, (a: number, b: number) => number> = { '+': (a, b) => a + b, '-': (a, b) => a - b, '*': (a, b) => a * b, '/': (a, b) => a / b };
    const seen = new Set<string>();
    for (const p of [...train, ...test]) {
      seen.add(p.template);
      expect(p.prompt).toMatch(/^Question: .+\?\nAnswer:$/);
      const m = /^ (.*) The answer is (\d+)\.$/.exec(p.completion);
      expect(m, p.completion).not.toBeNull();
      expect(Number(m![2])).toBe(p.answer);
      const steps = m![1].split('. ').map((s) => s.replace(/\.$/, ''));
      expect(steps).toHaveLength(p.steps);
      let last = NaN;
      for (const s of steps) {
        const e = /^(\d+) ([-+*/]) (\d+) = (\d+)$/.exec(s);
        expect(e, s).not.toBeNull();
        const v = ops[e![2]](Number(e![1]), Number(e![3]));
        expect(v).toBe(Number(e![4]));
        expect(Number.isInteger(v) && v >= 0).toBe(true);
        last = v;
      }
      expect(last).toBe(p.answer);
      // The numbers of the question are those the solution starts from.
      const asked = (p.prompt.match(/\d+/g) ?? []).map(Number);
      expect(asked.length).toBeGreaterThanOrEqual(2);
    }
    expect([...seen].sort()).toEqual([...TEMPLATE_NAMES].sort());
  });

  it('draws people from the English first-name lists', () => {
    const { female, male } = names();
    expect(female.length).toBeGreaterThan(1000);
    expect(male.length).toBeGreaterThan(1000);
    const all = new Set([...female, ...male]);
    const { train } = generateTask({ seed: 3, train: 100, validation: 0, test: 0 });
    for (const p of train) {
      const who = /^Question: ([A-Z][a-z]+) /.exec(p.prompt)![1];
      expect(all.has(who), who).toBe(true);
    }
  });

  it('refuses sizes that are not counts, and more problems than the templates can make', () => {
    expect(() => generateTask({ seed: 0, train: -1, validation: 0, test: 0 })).toThrow(/generateTask: train must be an integer >= 0, got -1/);
    expect(() => generateTask({ seed: 0, train: 1e7, validation: 0, test: 0 })).toThrow(/cannot draw 10000000 distinct problems/);
  });
});
