/**
 * Tokenizers from `tokenizer.json`, through `@huggingface/tokenizers` (the JavaScript port of
 * Python's tokenizers, reading the same files), so that BPE and its pre- and post-processing are not
 * written again here.
 * @module
 */
import { Tokenizer } from '@huggingface/tokenizers';

/**
 * Text to token ids and back.
 *
 * @example
 * ```ts
 * const tok = tokenizerFromJson(JSON.parse(await readFile('tokenizer.json', 'utf8')));
 * tok.decode(tok.encode('Call me Ishmael.')); // 'Call me Ishmael.'
 * ```
 */
export interface TextTokenizer {
  /** The token ids of `text` (with the special tokens the tokenizer's post-processor adds). */
  encode(text: string): number[];
  /**
   * The text of `ids`, as Python's tokenizers decodes: special tokens included, no clean-up of
   * spaces, so that `decode(encode(s)) === s` for a byte-level BPE; `[]` gives `''`.
   */
  decode(ids: readonly number[]): string;
}

/**
 * A tokenizer from the parsed contents of a Hugging Face `tokenizer.json`.
 *
 * @param json - The parsed file.
 * @param source - Names the file in Errors.
 *
 * @example
 * ```ts
 * const tok = tokenizerFromJson(JSON.parse(await readFile('tokenizer.json', 'utf8')), 'tokenizer.json');
 * tok.encode('hello'); // [31373] with GPT-2's tokenizer
 * ```
 */
export function tokenizerFromJson(json: unknown, source = 'tokenizer.json'): TextTokenizer {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source}: a tokenizer must be a JSON object`);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, {});
  } catch (e) {
    throw new Error(`${source}: not a tokenizer the tokenizers library reads: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return {
    encode: (text: string): number[] => {
      if (typeof text !== 'string') throw new Error(`encode: text must be a string, got ${typeof text}`);
      return tok.encode(text).ids;
    },
    decode: (ids: readonly number[]): string => {
      if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i) && i >= 0)) throw new Error('decode: ids must be an array of non-negative integers');
      // The library refuses an empty list; no ids are the empty text. Its default "clean up" of
      // spaces (' .' to '.', " 's" to "'s") would make decode lossy; Python's tokenizers does not apply it.
      return ids.length === 0 ? '' : tok.decode([...ids], { clean_up_tokenization_spaces: false });
    },
  };
}
