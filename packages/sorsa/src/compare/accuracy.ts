/**
 * Exact-match accuracy of greedy generations, as GSM8K scores them, batched: prompts of mixed
 * lengths run together through `generate`, which needs no padding, so every row's answer is what
 * it would be alone.
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
 * `maxNewTokens`, or where the model's context ends (a prompt that fills the context, or an empty
 * one, gets no tokens and is wrong). Prompts go `batch` at a time, shortest first, in batches of
 * mixed lengths (`generate` feeds each row its own prompt, so every row's answer is the one it
 * gets alone); prompts too long for `maxNewTokens` more tokens go in batches of one length, each
 * row with the room its context leaves. `onBatch` reports progress (rows done, rows in all, right
 * so far).
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
  opts: { eos: readonly number[]; maxNewTokens: number; batch: number; onBatch?: (done: number, total: number, right: number) => void },
): Promise<Graded[]> {
  const tok = model.tokenizer;
  if (!tok) throw new Error('exactMatch: the model has no tokenizer');
  const context = model.config.maxPositions;
  const encoded = examples.map((ex) => tok.encode(ex.prompt));
  const out = new Array<Graded>(examples.length);
  let done = 0;
  let right = 0;
  const grade = (indexes: readonly number[], rows: readonly (readonly number[])[] | null): void => {
    indexes.forEach((i, k) => {
      const fresh = rows ? rows[k].slice(encoded[i].length) : [];
      if (fresh.length > 0 && opts.eos.includes(fresh[fresh.length - 1])) fresh.pop();
      const generated = tok.decode(fresh);
      const expected = finalNumber(examples[i].completion);
      const got = finalNumber(generated);
      const correct = expected !== null && got === expected;
      out[i] = { prompt: examples[i].prompt, generated, expected, got, correct };
      if (correct) right++;
    });
    done += indexes.length;
    opts.onBatch?.(done, examples.length, right);
  };
  const byLength = [...encoded.keys()].sort((a, b) => encoded[a].length - encoded[b].length);
  const none = byLength.filter((i) => encoded[i].length === 0 || encoded[i].length >= context);
  const roomy = byLength.filter((i) => encoded[i].length > 0 && encoded[i].length + opts.maxNewTokens <= context);
  const tight = byLength.filter((i) => encoded[i].length < context && encoded[i].length + opts.maxNewTokens > context);
  if (none.length > 0) grade(none, null);
  if (opts.maxNewTokens === 0) {
    grade([...roomy, ...tight], null);
    return out;
  }
  for (let s = 0; s < roomy.length; s += opts.batch) {
    const chunk = roomy.slice(s, s + opts.batch);
    grade(chunk, await generate(model, params, chunk.map((i) => encoded[i]), { maxNewTokens: opts.maxNewTokens, eosTokenId: [...opts.eos] }));
  }
  for (let s = 0; s < tight.length; ) {
    // One length per batch: each row gets all the room its context leaves.
    const length = encoded[tight[s]].length;
    let e = s;
    while (e < tight.length && e - s < opts.batch && encoded[tight[e]].length === length) e++;
    const chunk = tight.slice(s, e);
    grade(chunk, await generate(model, params, chunk.map((i) => encoded[i]), { maxNewTokens: context - length, eosTokenId: [...opts.eos] }));
    s = e;
  }
  return out;
}
