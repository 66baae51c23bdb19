/**
 * generate with its key/value cache against a loop of full forward passes (no cache), token for
 * token, greedy and sampled with the same key; prompts of different lengths in one batch against
 * each row alone; nextToken's greedy, top-k and temperature rules; bad
 * arguments.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { createModel, generate, nextToken, type GenerateOptions, type Model, type ParamTree } from '@sorsajs/models';
import { forEachBackend } from '@sorsajs/testing/backends';
import { randomWeights } from '@sorsajs/testing';
import { GPT2, LLAMA, modelFor } from './configs.js';

/** The same generation without a cache: a full forward pass over the whole sequence per token. */
async function uncached(model: Model, params: ParamTree, prompt: number[][], opts: GenerateOptions): Promise<number[][]> {
  const rows = prompt.map((r) => [...r]);
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const logits = model.forward(params, rows);
    const [B, T, V] = logits.shape;
    const last = c.tidy(() => c.reshape(c.slice(logits, [0, T - 1, 0], [B, 1, V]), [B, V]));
    const next = nextToken(last, opts, opts.key && c.random.foldIn(opts.key, step));
    const ids = await next.data();
    rows.forEach((r, b) => r.push(ids[b]));
    c.tree.dispose([logits, last, next]);
  }
  return rows;
}

forEachBackend('models generate', (backend) => {
  for (const [name, json] of [['gpt2', GPT2], ['llama', LLAMA]] as const) {
    it(`${name}: the cached generation equals full forward passes, greedy and sampled with one key`, async () => {
      const model = await modelFor(backend, json, c.random.key(4));
      const params = randomWeights(model.params, 8, 1);
      c.tree.dispose(model.params);
      const prompt = [
        [1, 2, 3],
        [7, 0, 5],
      ];
      const before = c.memory().tensors;
      for (const opts of [
        { maxNewTokens: 6 },
        { maxNewTokens: 6, temperature: 0.9, key: c.random.key(11) },
        { maxNewTokens: 6, temperature: 1.5, topK: 3, key: c.random.key(12) },
      ] as GenerateOptions[]) {
        const got = await generate(model, params, prompt, opts);
        expect(got.map((r) => r.slice(0, 3))).toEqual(prompt);
        expect(got.every((r) => r.length === 9)).toBe(true);
        expect(got, JSON.stringify(opts)).toEqual(await uncached(model, params, prompt, opts));
      }
      // No tensor left behind by generation.
      expect(c.memory().tensors).toBe(before);
      // Sampling differs from greedy and between keys (over 2 x 6 draws from 19+ tokens at T >= 0.9).
      const greedy = await generate(model, params, prompt, { maxNewTokens: 6 });
      const s1 = await generate(model, params, prompt, { maxNewTokens: 6, temperature: 2, key: c.random.key(1) });
      const s2 = await generate(model, params, prompt, { maxNewTokens: 6, temperature: 2, key: c.random.key(2) });
      expect(s1).not.toEqual(s2);
      expect([s1, s2]).not.toEqual([greedy, greedy]);
      // A row stops at eos; the others go on.
      const eos = greedy[0][3];
      const stopped = await generate(model, params, prompt, { maxNewTokens: 6, eosTokenId: eos });
      expect(stopped[0]).toEqual(greedy[0].slice(0, 4));
      if (!greedy[1].slice(3).includes(eos)) expect(stopped[1]).toEqual(greedy[1]);
      // Prompts of different lengths in one batch: each row's greedy continuation is the one full
      // forward passes give it alone, with maxNewTokens new tokens per row, and eos per row.
      const ragged = [[1, 2, 3, 4, 5], [7], [2, 9, 4]];
      const alone = await Promise.all(ragged.map((r) => uncached(model, params, [r], { maxNewTokens: 4 }).then((x) => x[0])));
      const mixed = await generate(model, params, ragged, { maxNewTokens: 4 });
      expect(mixed).toEqual(alone);
      const stop = alone[1][2]; // row 1's second new token
      const cut = await generate(model, params, ragged, { maxNewTokens: 4, eosTokenId: stop });
      cut.forEach((row, b) => {
        const fresh = alone[b].slice(ragged[b].length);
        const at = fresh.indexOf(stop);
        expect(row, `row ${b}`).toEqual(at < 0 ? alone[b] : alone[b].slice(0, ragged[b].length + at + 1));
      });
      expect(c.memory().tensors).toBe(before);
      c.tree.dispose(params);
    });
  }

  it('nextToken: argmax at temperature 0; top-k keeps only the k largest (ties with the k-th included)', async () => {
    const logits = c.tensor([
      [0, 5, 1, 4, 4, -2],
      [3, 3, 3, 0, 1, 2],
    ]);
    expect(Array.from(await nextToken(logits).data())).toEqual([1, 0]);
    // topK 2 leaves {5, 4, 4} in row 0 and {3, 3, 3} in row 1: at a high temperature every kept id
    // appears over 200 draws, and no other does.
    const seen = [new Set<number>(), new Set<number>()];
    for (let i = 0; i < 200; i++) {
      const t = nextToken(logits, { temperature: 50, topK: 2 }, c.random.key(i));
      const d = await t.data();
      seen[0].add(d[0]);
      seen[1].add(d[1]);
      t.dispose();
    }
    expect([...seen[0]].sort()).toEqual([1, 3, 4]);
    expect([...seen[1]].sort()).toEqual([0, 1, 2]);
    // Temperature: sample frequencies follow softmax(logits / T) (3 sigma of a binomial).
    const two = c.tensor([[0, Math.log(3)]]);
    let ones = 0;
    const N = 400;
    for (let i = 0; i < N; i++) {
      const t = nextToken(two, { temperature: 1 }, c.random.key(1000 + i));
      ones += (await t.data())[0];
      t.dispose();
    }
    expect(Math.abs(ones / N - 0.75)).toBeLessThan(3 * Math.sqrt(0.75 * 0.25 / N));
    c.tree.dispose([logits, two]);
  });
});

it('generate refuses bad arguments, naming them', async () => {
  await c.init({ backend: 'cpu' }); // not a backend suite: whichever backend the last suite left would do, but webgl refuses createModel
  const model = createModel(GPT2, c.random.key(0));
  const p = model.params;
  await expect(generate(model, p, [[1, 2]], { maxNewTokens: 11 })).rejects.toThrow(/generate: the prompt \(2 tokens\) plus maxNewTokens \(11\) is 13 tokens, longer than max_position_embeddings = 12/);
  await expect(generate(model, p, [[1, 23]], { maxNewTokens: 1 })).rejects.toThrow(/ids\[0\]\[1\] = 23 is not a token id in \[0, 23\)/);
  await expect(generate(model, p, [[1, -1]], { maxNewTokens: 1 })).rejects.toThrow(/ids\[0\]\[1\] = -1 is not a token id/);
  await expect(generate(model, p, [[1, 2], []], { maxNewTokens: 1 })).rejects.toThrow(/generate: promptIds row 1 is empty/);
  await expect(generate(model, p, [[1], [1, 2, 3]], { maxNewTokens: 10 })).rejects.toThrow(/generate: the prompt \(3 tokens\) plus maxNewTokens \(10\) is 13 tokens/);
  await expect(generate(model, p, [[1]], { maxNewTokens: 1, temperature: 1 })).rejects.toThrow(/generate: sampling \(temperature 1 > 0\) needs a PRNG key/);
  await expect(generate(model, p, [[1]], { maxNewTokens: 1, temperature: -1 })).rejects.toThrow(/temperature must be a finite number >= 0, got -1/);
  await expect(generate(model, p, [[1]], { maxNewTokens: 1.5 })).rejects.toThrow(/maxNewTokens must be an integer >= 0, got 1.5/);
  await expect(generate(model, p, [[1]], { maxNewTokens: 1, topK: 0 })).rejects.toThrow(/topK must be an integer >= 1, got 0/);
  expect(() => model.forward(p, [Array.from({ length: 13 }, () => 1)])).toThrow(/forward: a sequence of 13 tokens is longer than max_position_embeddings = 12/);
  expect(() => model.forward(p, [[0.5]])).toThrow(/forward: ids\[0\]\[0\] = 0.5 is not a token id/);
  expect(() => model.forward(p, c.tensor([[1]]))).toThrow(/forward: ids must be an int32 tensor \[batch, seq\]/);
  c.tree.dispose(p);
});
