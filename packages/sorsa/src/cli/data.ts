/**
 * Training data of `sorsa finetune` and `sorsa eval`: plain text for language modelling, or JSONL
 * records `{ "prompt", "completion" }` for instruction tuning with the loss on completion tokens
 * only; tokenized into fixed-length sequences, split, and served in a seeded, resumable order.
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { TextTokenizer } from '@sorsajs/models';
import { UsageError } from './errors.js';

/** The label of a position without loss (PyTorch's and transformers' ignore index). */
export const IGNORE = -100;

/** One instruction-tuning record. */
export interface Example {
  /** The text the model is given (no loss on its tokens). */
  prompt: string;
  /** The text the model learns to produce. */
  completion: string;
}

/** A data file: one plain text, or instruction-tuning records. */
export type Dataset = { kind: 'text'; text: string } | { kind: 'jsonl'; examples: Example[] };

/** One training sequence: `seq` input ids and the `seq` next-token labels (IGNORE: no loss). */
export interface Sequence {
  /** Input token ids. */
  ids: Int32Array;
  /** Target ids of each position (the next token), IGNORE where no loss is taken. */
  labels: Int32Array;
}

/**
 * Reads `file` named by `flag`: `.jsonl` files are instruction records (every non-empty line an
 * object with string `prompt` and `completion`), any other file plain UTF-8 text.
 */
export async function readDataset(file: string, flag: string): Promise<Dataset> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : (e as Error).message}`);
  }
  if (!file.endsWith('.jsonl')) {
    if (text.trim() === '') throw new UsageError(`${flag} ${file}: the file is empty`);
    return { kind: 'text', text };
  }
  return { kind: 'jsonl', examples: parseJsonl(text, `${flag} ${file}`) };
}

/** The records of a JSONL text; `where` names the file in errors, with the line number. */
export function parseJsonl(text: string, where: string): Example[] {
  const out: Example[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${where}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const field = (k: string): unknown => (rec !== null && typeof rec === 'object' && !Array.isArray(rec) && Object.hasOwn(rec, k) ? (rec as Record<string, unknown>)[k] : undefined);
    const prompt = field('prompt');
    const completion = field('completion');
    if (typeof prompt !== 'string' || typeof completion !== 'string') {
      throw new UsageError(`${where}:${i + 1}: each line must be an object with string fields "prompt" and "completion"`);
    }
    if (completion === '') throw new UsageError(`${where}:${i + 1}: "completion" is empty: there is nothing to learn from this record`);
    out.push({ prompt, completion });
  });
  if (out.length === 0) throw new UsageError(`${where}: no records`);
  return out;
}

/** The ids of `prompt + completion` and how many of them belong to the prompt. */
export function encodeExample(tok: TextTokenizer, ex: Example, eos: number | null): { ids: number[]; promptLength: number } {
  // Tokenize the joined text and mask the prompt's length, as the official trainer does: separate
  // encodes would add a second BOS in the middle and change BPE merges at the seam.
  const ids = tok.encode(ex.prompt + ex.completion);
  const promptLength = ex.prompt === '' ? 0 : Math.min(tok.encode(ex.prompt).length, ids.length);
  if (eos !== null) ids.push(eos);
  return { ids, promptLength };
}

/**
 * Fixed-length sequences of a dataset. Text: consecutive windows of `seq + 1` tokens with stride
 * `seq` (each token predicted once). Records: one sequence each, truncated to `seq + 1` tokens and
 * padded (`pad` ids, IGNORE labels), labels IGNORE on the prompt's tokens; a record whose
 * completion starts past the window is dropped and counted.
 */
export function toSequences(tok: TextTokenizer, data: Dataset, seq: number, eos: number | null, flag: string): { sequences: Sequence[]; dropped: number } {
  const pad = eos ?? 0;
  if (data.kind === 'text') {
    const ids = tok.encode(data.text);
    const sequences: Sequence[] = [];
    for (let s = 0; s + seq + 1 <= ids.length; s += seq) {
      sequences.push({ ids: Int32Array.from(ids.slice(s, s + seq)), labels: Int32Array.from(ids.slice(s + 1, s + seq + 1)) });
    }
    if (sequences.length === 0) throw new UsageError(`${flag}: the text has ${ids.length} tokens, fewer than --seq + 1 = ${seq + 1}`);
    return { sequences, dropped: 0 };
  }
  const sequences: Sequence[] = [];
  let dropped = 0;
  for (const ex of data.examples) {
    const { ids: all, promptLength } = encodeExample(tok, ex, eos);
    const ids = all.slice(0, seq + 1);
    // Position j predicts token j + 1: it carries a loss when that token is a completion token.
    if (promptLength >= ids.length) {
      dropped++;
      continue;
    }
    const input = new Int32Array(seq).fill(pad);
    const labels = new Int32Array(seq).fill(IGNORE);
    for (let j = 0; j < ids.length - 1; j++) {
      input[j] = ids[j];
      if (j + 1 >= promptLength) labels[j] = ids[j + 1];
    }
    sequences.push({ ids: input, labels });
  }
  if (sequences.length === 0) throw new UsageError(`${flag}: every record's prompt fills the --seq ${seq} window: no completion token to learn; raise --seq`);
  return { sequences, dropped };
}

/** A 32-bit seeded generator (mulberry32) of numbers in [0, 1): host-side choices of data order only. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, seed: number): Int32Array {
  const next = seededRandom(seed);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Splits off a held-out fraction, chosen by a seeded shuffle: `{ train, held }`. */
export function split<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; held: T[] } {
  const order = permutation(items.length, seed ^ 0x5eed);
  const n = Math.round(items.length * fraction);
  if (fraction > 0 && (n < 1 || n >= items.length)) {
    throw new UsageError(`--eval-split ${fraction}: ${items.length} sequences give ${n} held out; need at least 1 for evaluation and 1 for training`);
  }
  const held = new Set(Array.from(order.subarray(0, n)));
  return { train: items.filter((_, i) => !held.has(i)), held: items.filter((_, i) => held.has(i)) };
}

/** Where a Batcher stands: the epoch and the position in that epoch's order. Saved in checkpoints. */
export interface DataPosition {
  /** The epoch (0-based). */
  epoch: number;
  /** Sequences of this epoch already served. */
  cursor: number;
}

/**
 * Serves batches of `size` sequences in a seeded order, reshuffled each epoch (the order of epoch e
 * depends only on the seed and e), from any saved position: a resumed run sees the batches an
 * uninterrupted one would.
 */
export class Batcher {
  private order: Int32Array;
  constructor(
    private readonly sequences: readonly Sequence[],
    private readonly size: number,
    private readonly seed: number,
    public position: DataPosition = { epoch: 0, cursor: 0 },
  ) {
    this.order = permutation(sequences.length, this.epochSeed(position.epoch));
    if (!(position.cursor >= 0 && position.cursor <= sequences.length)) throw new UsageError(`checkpoint: data position ${position.cursor} is outside the data (${sequences.length} sequences): was the data changed?`);
  }

  private epochSeed(epoch: number): number {
    return (Math.imul(this.seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  }

  /** The next batch: ids and labels, each `[size * seq]` row-major. */
  next(): { ids: Int32Array; labels: Int32Array } {
    const seq = this.sequences[0].ids.length;
    const ids = new Int32Array(this.size * seq);
    const labels = new Int32Array(this.size * seq);
    for (let b = 0; b < this.size; b++) {
      if (this.position.cursor >= this.sequences.length) {
        this.position = { epoch: this.position.epoch + 1, cursor: 0 };
        this.order = permutation(this.sequences.length, this.epochSeed(this.position.epoch));
      }
      const s = this.sequences[this.order[this.position.cursor]];
      this.position = { epoch: this.position.epoch, cursor: this.position.cursor + 1 };
      ids.set(s.ids, b * seq);
      labels.set(s.labels, b * seq);
    }
    return { ids, labels };
  }
}
