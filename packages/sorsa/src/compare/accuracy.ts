/**
 * Exact-match accuracy of greedy generations, batched: prompts of equal token length run as one
 * batch through `generate` (no padding needed, so every row is what it would be alone).
 * @module
 */
import { generate, type Model, type ParamTree } from '@sorsajs/models';
import { finalNumber } from '../cli/answer.js';
import type { Example } from '../cli/data.js';

/** One graded answer. */
export interface Graded {
  /** The prompt. */
  prompt: string;
  /** The generated text after the prompt, without the end-of-text token. */
  generated: string;
  /** The reference's final number and the generation's (null: none). */
  expected: number | null;
  got: number | null;
  /** Whether they are equal (GSM8K's rule). */
  correct: boolean;
}

/**
 * Greedy answers to `examples` and whether each is right: the final number of the generation
 * equals the final number of the completion. Generation stops at an `eos` token or after
 * `maxNewTokens`. `onBatch` reports progress (rows done, rows in all).
 *
 * @example
 * ```ts
 * const graded = await exactMatch(model, params, test, { eos: [0], maxNewTokens: 48, batch: 32 });
 * graded.filter((g) => g.correct).length / graded.length;
 * ```
 */
export async function exactMatch(
  model: Model,
  params: ParamTree,
  examples: readonly Example[],
  opts: { eos: readonly number[]; maxNewTokens: number; batch: number; onBatch?: (done: number, total: number) => void },
): Promise<Graded[]> {
  const tok = model.tokenizer;
  if (!tok) throw new Error('exactMatch: the model has no tokenizer');
  const encoded = examples.map((ex) => tok.encode(ex.prompt));
  const byLength = new Map<number, number[]>();
  encoded.forEach((ids, i) => byLength.set(ids.length, [...(byLength.get(ids.length) ?? []), i]));
  const out = new Array<Graded>(examples.length);
  let done = 0;
  for (const [length, indexes] of [...byLength.entries()].sort((a, b) => a[0] - b[0])) {
    const room = Math.min(opts.maxNewTokens, model.config.maxPositions - length);
    for (let s = 0; s < indexes.length; s += opts.batch) {
      const chunk = indexes.slice(s, s + opts.batch);
      const rows = room > 0 && length > 0 ? await generate(model, params, chunk.map((i) => encoded[i]), { maxNewTokens: room, eosTokenId: [...opts.eos] }) : chunk.map((i) => encoded[i]);
      rows.forEach((row, k) => {
        const i = chunk[k];
        const fresh = row.slice(length);
        if (fresh.length > 0 && opts.eos.includes(fresh[fresh.length - 1])) fresh.pop();
        const generated = tok.decode(fresh);
        const expected = finalNumber(examples[i].completion);
        const got = finalNumber(generated);
        out[i] = { prompt: examples[i].prompt, generated, expected, got, correct: expected !== null && got === expected };
      });
      done += chunk.length;
      opts.onBatch?.(done, examples.length);
    }
  }
  return out;
}
