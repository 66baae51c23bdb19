/**
 * `trainTokenizer`: learns a byte-level BPE tokenizer (GPT-2's scheme) from text and writes it as
 * the `tokenizer.json` that Python's tokenizers writes, so that loadPretrained, savePretrained,
 * transformers and transformers.js all read it.
 *
 * The learning follows tokenizers' `BpeTrainer` (trainer.rs) step for step, so that the same text
 * gives the same merges: words are counted after pre-tokenization; the vocabulary starts with the
 * special tokens, then the 256 byte symbols in code-point order; each step merges the most frequent
 * adjacent pair (summed over words, weighted by their counts), ties going to the pair of smaller ids
 * (first id, then second); pair counts are updated only in the words that held the merged pair
 * (a max-heap whose stale entries are re-queued with their current count when they surface), so a
 * merge costs what the words it touches cost, not a recount of the text.
 * @module
 */
import { byteChars, byteLevelWordCounts } from './byte-level.js';
import { tokenizerFromJson, type TextTokenizer } from './tokenizer.js';

/**
 * Options of {@link trainTokenizer}.
 *
 * @example
 * ```ts
 * const opts: TrainTokenizerOptions = { vocabSize: 2048, specialTokens: ['<|endoftext|>'] };
 * ```
 */
export interface TrainTokenizerOptions {
  /**
   * The size of the vocabulary, exactly: the special tokens, the 256 byte symbols and the learned
   * tokens. At least `256 + specialTokens.length`; a text with too few distinct pairs to reach it
   * is an Error saying how far it goes.
   */
  vocabSize: number;
  /**
   * Special tokens (default none): ids `0 .. k-1` in this order, as tokenizers' trainer numbers
   * them; kept whole by encode (never split into bytes) and never part of a learned merge (the
   * training text is split at them).
   */
  specialTokens?: readonly string[];
}

/**
 * What {@link trainTokenizer} returns.
 *
 * @example
 * ```ts
 * const { json, tokenizer }: TrainedTokenizer = trainTokenizer(text, { vocabSize: 512 });
 * ```
 */
export interface TrainedTokenizer {
  /** The `tokenizer.json` object (write it with `JSON.stringify`). */
  json: TokenizerJson;
  /** A tokenizer reading `json`, the same as `tokenizerFromJson(json)`. */
  tokenizer: TextTokenizer;
}

/**
 * The shape of a byte-level BPE `tokenizer.json`, as Python's tokenizers (0.20 and later) writes it.
 *
 * @example
 * ```ts
 * const json: TokenizerJson = trainTokenizer(text, { vocabSize: 512 }).json;
 * json.model.merges[0]; // e.g. ['Ġ', 't']
 * ```
 */
export interface TokenizerJson {
  /** The file format's version, `'1.0'`. */
  version: '1.0';
  /** No truncation. */
  truncation: null;
  /** No padding. */
  padding: null;
  /** The special tokens, ids `0..k-1`. */
  added_tokens: AddedTokenJson[];
  /** No normalization: text is tokenized as it is. */
  normalizer: null;
  /** GPT-2's split and byte symbols, without a space added in front. */
  pre_tokenizer: ByteLevelJson;
  /** ByteLevel (offsets only; adds no tokens). */
  post_processor: ByteLevelJson;
  /** Byte symbols back to UTF-8 text. */
  decoder: ByteLevelJson;
  /** The BPE model: vocabulary and merges. */
  model: BpeModelJson;
}

/**
 * A special token in `tokenizer.json`'s `added_tokens`.
 *
 * @example
 * ```ts
 * const eos: AddedTokenJson = trainTokenizer(text, { vocabSize: 512, specialTokens: ['<|endoftext|>'] }).json.added_tokens[0];
 * eos.id; // 0
 * ```
 */
export interface AddedTokenJson {
  /** Its id. */
  id: number;
  /** Its text, matched whole in the input. */
  content: string;
  /** Matched inside words too. */
  single_word: false;
  /** Spaces on its left are not absorbed. */
  lstrip: false;
  /** Spaces on its right are not absorbed. */
  rstrip: false;
  /** Matched in the raw text, before normalization. */
  normalized: false;
  /** A special token. */
  special: true;
}

/**
 * A `ByteLevel` component of `tokenizer.json` (pre-tokenizer, post-processor or decoder).
 *
 * @example
 * ```ts
 * trainTokenizer(text, { vocabSize: 512 }).json.pre_tokenizer; // { type: 'ByteLevel', add_prefix_space: false, ... }
 * ```
 */
export interface ByteLevelJson {
  /** `'ByteLevel'`. */
  type: 'ByteLevel';
  /** Whether a space is put before the text (false for the pre-tokenizer, as GPT-2). */
  add_prefix_space: boolean;
  /** Whether offsets leave out the leading space. */
  trim_offsets: boolean;
  /** Whether GPT-2's split regex is applied. */
  use_regex: boolean;
}

/**
 * The BPE model of `tokenizer.json`.
 *
 * @example
 * ```ts
 * const { vocab, merges }: BpeModelJson = trainTokenizer(text, { vocabSize: 512 }).json.model;
 * ```
 */
export interface BpeModelJson {
  /** `'BPE'`. */
  type: 'BPE';
  /** No BPE dropout. */
  dropout: null;
  /** No unknown token: every byte has a symbol. */
  unk_token: null;
  /** No continuing-subword prefix. */
  continuing_subword_prefix: null;
  /** No end-of-word suffix. */
  end_of_word_suffix: null;
  /** Unknown tokens are not fused (there are none). */
  fuse_unk: false;
  /** No byte fallback (bytes are symbols already). */
  byte_fallback: false;
  /** Words found whole in the vocabulary still go through the merges. */
  ignore_merges: false;
  /** Token to id; built without a prototype, so a token named `__proto__` is a plain key. */
  vocab: Record<string, number>;
  /** The merges in the order learned (their rank): each pair of tokens joined into one. */
  merges: [string, string][];
}

/** A heap entry: a pair, its count when queued, and the words that held it then. */
interface Entry {
  a: number;
  b: number;
  count: number;
  where: Set<number>;
}

/** Max-heap order of tokenizers' `Merge`: larger count first, then the smaller pair (a, then b). */
const before = (x: Entry, y: Entry): boolean => (x.count !== y.count ? x.count > y.count : x.a !== y.a ? x.a < y.a : x.b < y.b);

/** A binary max-heap of entries under {@link before}. */
class Heap {
  private readonly items: Entry[] = [];
  get size(): number {
    return this.items.length;
  }
  push(e: Entry): void {
    const h = this.items;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Pairs of ids as one number key; ids stay below 2^26, far under any real vocabulary's need. */
const SHIFT = 2 ** 26;
const pairKey = (a: number, b: number): number => a * SHIFT + b;

/**
 * Merges every non-overlapping occurrence of (a, b) in `w`, left to right, into `id`, and reports
 * the pair counts that change, as tokenizers' `Word::merge`: for each occurrence, the pairs with
 * its neighbours lose one and the pairs with the new symbol gain one.
 */
function mergeWord(w: number[], a: number, b: number, id: number, change: (x: number, y: number, d: number) => void): void {
  let i = 0;
  while (i < w.length) {
    if (w[i] === a && i + 1 < w.length && w[i + 1] === b) {
      if (i > 0) {
        change(w[i - 1], a, -1);
        change(w[i - 1], id, 1);
      }
      w.splice(i, 2, id);
      if (i < w.length - 1) {
        change(b, w[i + 1], -1);
        change(id, w[i + 1], 1);
      }
    }
    i++;
  }
}

/** The text between the special tokens: they are never learned as parts of merges. */
function splitAtSpecials(text: string, specials: readonly string[]): string[] {
  if (specials.length === 0) return [text];
  // Longest first, so that one special that contains another is cut whole.
  const alt = [...specials].sort((x, y) => y.length - x.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return text.split(new RegExp(alt.join('|'), 'u'));
}

/**
 * Learns a byte-level BPE tokenizer from `text`, GPT-2's scheme as Hugging Face tokenizers trains
 * it (`BpeTrainer` with the `ByteLevel` pre-tokenizer and its 256-symbol initial alphabet), and
 * returns its `tokenizer.json` object and a tokenizer reading it.
 *
 * The vocabulary has exactly `vocabSize` tokens: the special tokens (ids `0..k-1`), the 256 byte
 * symbols (GPT-2's ids for them, shifted by k), then the learned tokens in merge order. Every string
 * round-trips through encode and decode (unpaired surrogates become U+FFFD, as in any UTF-8
 * encoder). Deterministic: the same text and options give the same file. Moby-Dick (1.2 MB) with
 * 4096 tokens takes a few seconds on one core.
 *
 * @param text - The training text.
 * @param opts - The vocabulary size and the special tokens.
 *
 * @example
 * ```ts
 * import { trainTokenizer, createModel } from '@sorsajs/models';
 * const { json, tokenizer } = trainTokenizer(book, { vocabSize: 2048, specialTokens: ['<|endoftext|>'] });
 * tokenizer.decode(tokenizer.encode('Call me Ishmael.')); // 'Call me Ishmael.'
 * const model = createModel({ model_type: 'gpt2', vocab_size: 2048, n_embd: 128, n_layer: 4, n_head: 4, n_positions: 256 },
 *   random.key(0), { tokenizer: json });   // savePretrained writes tokenizer.json beside the weights
 * ```
 */
export function trainTokenizer(text: string, opts: TrainTokenizerOptions): TrainedTokenizer {
  const op = 'trainTokenizer';
  if (typeof text !== 'string') throw new Error(`${op}: text must be a string, got ${typeof text}`);
  if (opts === null || typeof opts !== 'object') throw new Error(`${op}: opts must be an object { vocabSize, specialTokens? }, got ${String(opts)}`);
  const specials = opts.specialTokens ?? [];
  if (!Array.isArray(specials)) throw new Error(`${op}: specialTokens must be an array of strings, got ${String(specials)}`);
  const seen = new Set<string>();
  for (const s of specials) {
    if (typeof s !== 'string' || s === '') throw new Error(`${op}: specialTokens must be non-empty strings, got ${JSON.stringify(s)}`);
    if (seen.has(s)) throw new Error(`${op}: specialTokens lists ${JSON.stringify(s)} twice`);
    seen.add(s);
  }
  const { vocabSize } = opts;
  const least = 256 + specials.length;
  if (!Number.isInteger(vocabSize) || vocabSize < least || vocabSize >= SHIFT) {
    throw new Error(`${op}: vocabSize must be an integer from ${least} (the 256 byte symbols and ${specials.length} special tokens) to ${SHIFT - 1}, got ${vocabSize}`);
  }

  // The vocabulary: special tokens, then the byte symbols by code point (tokenizers sorts its alphabet so).
  const idOf = new Map<string, number>();
  const tokens: string[] = [];
  const addToken = (t: string): number => {
    const id = tokens.length;
    idOf.set(t, id);
    tokens.push(t);
    return id;
  };
  for (const s of specials) addToken(s);
  for (const ch of [...byteChars()].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0))) if (!idOf.has(ch)) addToken(ch);

  // Words and their counts (a Map keeps first-seen order, so ids of words are deterministic).
  const wordCount = byteLevelWordCounts(splitAtSpecials(text, specials));
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, n] of wordCount) {
    words.push(Array.from(w, (ch) => idOf.get(ch)!));
    counts.push(n);
  }

  // Pair counts and, for each pair, the words it appeared in since it was last queued.
  const pairCount = new Map<number, number>();
  let whereNew = new Map<number, Set<number>>();
  const change = (iw: number) => (x: number, y: number, d: number): void => {
    const k = pairKey(x, y);
    pairCount.set(k, (pairCount.get(k) ?? 0) + d * counts[iw]);
    if (d > 0) {
      let s = whereNew.get(k);
      if (!s) whereNew.set(k, (s = new Set()));
      s.add(iw);
    }
  };
  words.forEach((w, iw) => {
    const add = change(iw);
    for (let i = 0; i + 1 < w.length; i++) add(w[i], w[i + 1], 1);
  });
  const heap = new Heap();
  const flush = (): void => {
    for (const [k, where] of whereNew) {
      const count = pairCount.get(k)!;
      if (count > 0) heap.push({ a: Math.floor(k / SHIFT), b: k % SHIFT, count, where });
    }
    whereNew = new Map();
  };
  flush();

  const merges: [string, string][] = [];
  while (tokens.length < vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const now = pairCount.get(pairKey(top.a, top.b)) ?? 0;
    if (top.count !== now) {
      // A stale entry: other merges took some of its occurrences. Queue it again as it is now.
      top.count = now;
      heap.push(top);
      continue;
    }
    if (top.count < 1) break;
    const merged = tokens[top.a] + tokens[top.b];
    // Two merges may spell the same token ('a'+'bc', 'ab'+'c'): it keeps its first id.
    const id = idOf.get(merged) ?? addToken(merged);
    merges.push([tokens[top.a], tokens[top.b]]);
    // Words in id order, so that the new entries' word sets (and the result) never depend on Set order.
    for (const iw of [...top.where].sort((x, y) => x - y)) mergeWord(words[iw], top.a, top.b, id, change(iw));
    flush();
  }
  if (tokens.length < vocabSize) {
    throw new Error(
      `${op}: the text supports a vocabulary of at most ${tokens.length} tokens (${merges.length} merges, after which no adjacent pair is left), ` +
        `not vocabSize ${vocabSize}: give more text or a smaller vocabSize`,
    );
  }

  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((t, i) => (vocab[t] = i));
  const pre: ByteLevelJson = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const post: ByteLevelJson = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: pre,
    post_processor: { ...post },
    decoder: { ...post },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return { json, tokenizer: tokenizerFromJson(json, op) };
}
