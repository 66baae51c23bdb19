/**
 * GPT-2's byte-level scheme, as Hugging Face tokenizers' `ByteLevel` pre-tokenizer implements it:
 * the split regex, and the map of the 256 bytes onto printable characters that makes every string
 * of bytes a string of visible symbols (a space is `Ġ`, a newline `Ċ`).
 * @module
 */

/**
 * GPT-2's pre-tokenizer pattern: contractions, letters, digits and other symbols each with an
 * optional leading space, then runs of whitespace (all but the last space of a run before a word,
 * which joins that word). The same pattern as tokenizers' `ByteLevel` with `use_regex: true`.
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's `bytes_to_unicode`: byte b is the character of code point b when b is printable
 * (`!`..`~`, `¡`..`¬`, `®`..`ÿ`), and otherwise the next code point from 256 on, in byte order.
 *
 * @example
 * ```ts
 * byteChars()[32]; // 'Ġ' (a space)
 * byteChars()[65]; // 'A'
 * ```
 */
export function byteChars(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + extra++);
  return out;
}

/**
 * The words of `text` as the ByteLevel pre-tokenizer yields them: split by {@link GPT2_SPLIT}, each
 * piece's UTF-8 bytes written with {@link byteChars}. An unpaired surrogate has no UTF-8 form and
 * becomes U+FFFD, as in every UTF-8 encoder.
 *
 * @example
 * ```ts
 * byteLevelWords("Call me Ishmael.\n"); // ['Call', 'Ġme', 'ĠIshmael', '.', 'Ċ']
 * ```
 */
export function byteLevelWords(text: string): string[] {
  const toSymbols = byteLevelEncoder();
  return (text.match(GPT2_SPLIT) ?? []).map(toSymbols);
}

/**
 * The words of `texts` (as {@link byteLevelWords} yields them) with the number of times each occurs,
 * in order of first occurrence. Counts the raw pieces first and encodes each distinct one once.
 *
 * @example
 * ```ts
 * byteLevelWordCounts(['the whale, the whale']); // Map { 'the' => 1, 'Ġwhale' => 2, ',' => 1, 'Ġthe' => 1 }
 * ```
 */
export function byteLevelWordCounts(texts: Iterable<string>): Map<string, number> {
  const raw = new Map<string, number>();
  for (const text of texts) for (const w of text.match(GPT2_SPLIT) ?? []) raw.set(w, (raw.get(w) ?? 0) + 1);
  const toSymbols = byteLevelEncoder();
  const out = new Map<string, number>();
  // Distinct raw pieces give distinct symbol strings, except unpaired surrogates, which UTF-8 writes as U+FFFD.
  for (const [w, n] of raw) {
    const s = toSymbols(w);
    out.set(s, (out.get(s) ?? 0) + n);
  }
  return out;
}

/** A function from a string to its UTF-8 bytes as byte symbols. */
function byteLevelEncoder(): (w: string) => string {
  const chars = byteChars();
  const enc = new TextEncoder();
  return (w) => {
    let s = '';
    for (const b of enc.encode(w)) s += chars[b];
    return s;
  };
}
