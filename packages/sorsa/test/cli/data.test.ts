/**
 * The command line's data pieces: completion-only labels checked against byte offsets computed here
 * (the fixture's tokenizer maps each byte to its own id), split and batch order laws with fast-check,
 * and module-name target patterns.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { createModel, tokenizerFromJson, type TextTokenizer } from '@sorsajs/models';
import { Batcher, IGNORE, parseJsonl, split, toSequences } from '../../src/cli/data.js';
import { selectTargets } from '../../src/cli/targets.js';
import { byteTokenizer, TINY } from './fixture.js';

let tok: TextTokenizer;
beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  tok = tokenizerFromJson(byteTokenizer());
});

const bytes = (s: string): number[] => Array.from(new TextEncoder().encode(s));

describe('toSequences', () => {
  it('JSONL: labels are the next token on completion positions and IGNORE elsewhere; padding after EOS', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ minLength: 1, maxLength: 12 }), fc.integer({ min: 2, max: 40 }), (prompt, completion, seq) => {
        const all = [...bytes(prompt + completion), 256];
        const p = bytes(prompt).length;
        const { sequences, dropped } = (() => {
          try {
            return toSequences(tok, { kind: 'jsonl', examples: [{ prompt, completion }] }, seq, 256, 'test');
          } catch {
            return { sequences: [], dropped: 1 };
          }
        })();
        const window = all.slice(0, seq + 1);
        if (p >= window.length) {
          expect(sequences).toHaveLength(0);
          expect(dropped).toBe(1);
          return;
        }
        const [s] = sequences;
        for (let j = 0; j < seq; j++) {
          expect(s.ids[j]).toBe(j < window.length - 1 ? window[j] : 256);
          expect(s.labels[j]).toBe(j < window.length - 1 && j + 1 >= p ? window[j + 1] : IGNORE);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('text: windows of seq + 1 tokens with stride seq, every label the next token', () => {
    const text = 'Call me Ishmael. Some years ago, never mind how long precisely.';
    const ids = bytes(text);
    const { sequences } = toSequences(tok, { kind: 'text', text }, 8, 256, 'test');
    expect(sequences).toHaveLength(Math.floor((ids.length - 1) / 8));
    sequences.forEach((s, k) => {
      expect(Array.from(s.ids)).toEqual(ids.slice(8 * k, 8 * k + 8));
      expect(Array.from(s.labels)).toEqual(ids.slice(8 * k + 1, 8 * k + 9));
    });
    expect(() => toSequences(tok, { kind: 'text', text: 'short' }, 8, 256, '--data x.txt')).toThrow(/--data x\.txt: the text has 5 tokens, fewer than --seq \+ 1 = 9/);
  });
});

describe('parseJsonl', () => {
  it('names the line of a bad record, and ignores prototype keys', () => {
    expect(() => parseJsonl('{"prompt":"a","completion":"b"}\n\n[1]\n', 'f.jsonl')).toThrow(/^f\.jsonl:3: each line must be an object/);
    expect(() => parseJsonl('{"prompt":"a","completion":""}', 'f.jsonl')).toThrow(/f\.jsonl:1: "completion" is empty/);
    expect(() => parseJsonl('{"prompt":"a",', 'f.jsonl')).toThrow(/f\.jsonl:1: not valid JSON/);
    // A record whose fields come only from a prototype is refused, and nothing is polluted.
    expect(() => parseJsonl('{"__proto__":{"prompt":"a","completion":"b"}}', 'f.jsonl')).toThrow(/f\.jsonl:1: each line/);
    expect(({} as Record<string, unknown>).prompt).toBeUndefined();
  });
});

describe('split and Batcher', () => {
  it('split: disjoint, complete, deterministic for a seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 200 }), fc.double({ min: 0.05, max: 0.5, noNaN: true }), fc.integer({ min: 0, max: 1000 }), (n, f, seed) => {
        const items = Array.from({ length: n }, (_, i) => i);
        const a = split(items, f, seed);
        expect([...a.train, ...a.held].sort((x, y) => x - y)).toEqual(items);
        expect(a.held).toHaveLength(Math.round(n * f));
        expect(split(items, f, seed)).toEqual(a);
      }),
    );
  });

  it('Batcher: each epoch serves every sequence once; a Batcher restarted at a saved position serves the same batches', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 99 }), (n, size, cut, seed) => {
        const seqs = Array.from({ length: n }, (_, i) => ({ ids: Int32Array.of(i, i), labels: Int32Array.of(i, i) }));
        const again = new Batcher(seqs, size, seed);
        const order: number[] = [];
        const steps = cut + 5;
        let pos = again.position;
        const saved: number[][] = [];
        for (let b = 0; b < steps; b++) {
          if (b === cut) pos = again.position;
          const { ids } = again.next();
          const rows = Array.from({ length: size }, (_, k) => ids[2 * k]);
          order.push(...rows);
          if (b >= cut) saved.push(rows);
        }
        for (let e = 0; (e + 1) * n <= order.length; e++) expect(order.slice(e * n, (e + 1) * n).sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
        const resumed = new Batcher(seqs, size, seed, pos);
        for (const rows of saved) {
          const { ids } = resumed.next();
          expect(Array.from({ length: size }, (_, k) => ids[2 * k])).toEqual(rows);
        }
      }),
    );
  });
});

describe('selectTargets', () => {
  it('suffix patterns on dot boundaries, * within a name, in the tree order', () => {
    const m = createModel(TINY.gpt2, c.random.key(0));
    expect(selectTargets(m.params, ['attn.c_attn'])).toEqual(['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.weight']);
    expect(selectTargets(m.params, ['mlp.*'])).toEqual(['transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight', 'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight']);
    expect(selectTargets(m.params, ['h.1.attn.c_proj'])).toEqual(['transformer.h.1.attn.c_proj.weight']);
    // 'c_proj' matches both attention and MLP projections; 'proj' matches no whole name.
    expect(selectTargets(m.params, ['c_proj'])).toHaveLength(4);
    expect(() => selectTargets(m.params, ['proj'])).toThrow(/--targets: "proj" matches no linear module/);
    // Embeddings are never targets.
    expect(() => selectTargets(m.params, ['wte'])).toThrow(/matches no linear module/);
    expect(() => selectTargets(m.params, ['a..b'])).toThrow(/is not a module name pattern/);
    c.tree.dispose(m.params);
  });
});
