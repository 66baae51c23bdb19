/**
 * Autoregressive generation with a key/value cache: the prompt is one forward pass, and each new
 * token one single-position pass over the cache.
 * @module
 */
import { Tensor, add, argmax, div, less, log, max, neg, random, reshape, slice, sub, sum, tensor, tidy, tree, where } from '@sorsajs/core';
import { parseConfig } from './config.js';
import type { KvCache } from './forward.js';
import { forwardWithCache, type Model } from './model.js';
import type { ForwardParams } from './linear-weight.js';

/**
 * Options of {@link generate} and {@link nextToken}.
 *
 * @example
 * ```ts
 * const opts: GenerateOptions = { maxNewTokens: 50, temperature: 0.8, topK: 40, key: random.key(0), eosTokenId: 50256 };
 * ```
 */
export interface GenerateOptions {
  /** How many tokens to add at most (per row). */
  maxNewTokens: number;
  /** Softmax temperature; 0 (the default) picks the most likely token (greedy). */
  temperature?: number;
  /** Sample only among the `topK` most likely tokens (ties with the k-th included, as transformers). */
  topK?: number;
  /** The PRNG key of sampling; required when temperature > 0. Step i draws from `random.foldIn(key, i)`. */
  key?: random.Key;
  /** A row stops after emitting this token (or any of these). */
  eosTokenId?: number | readonly number[];
}

/** The most negative float32, what masked-out logits become (as in core's attention). */
const MASKED = -3.4028234663852886e38;

function checkOpts(op: string, opts: Omit<GenerateOptions, 'maxNewTokens'>): number {
  const temperature = opts.temperature ?? 0;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new Error(`${op}: temperature must be a finite number >= 0, got ${String(opts.temperature)}`);
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK < 1)) throw new Error(`${op}: topK must be an integer >= 1, got ${String(opts.topK)}`);
  if (temperature > 0 && !(opts.key instanceof random.Key)) throw new Error(`${op}: sampling (temperature ${temperature} > 0) needs a PRNG key: pass key: random.key(seed)`);
  return temperature;
}

/**
 * The next token of each row from logits `[B, vocab]`: argmax when temperature is 0, else a sample
 * of `softmax(logits / temperature)` (restricted to the `topK` largest when given) drawn with `key`
 * by the Gumbel-max trick, `argmax(logits / T + g)`, g standard Gumbel, all on the device.
 * Returns int32 `[B]`. topK costs about 4 small kernels per unit of k.
 *
 * @example
 * ```ts
 * const next = nextToken(lastLogits, { temperature: 0.7, topK: 20 }, random.key(3));
 * await next.data(); // Int32Array of B token ids
 * ```
 */
export function nextToken(logits: Tensor, opts: Omit<GenerateOptions, 'maxNewTokens' | 'eosTokenId'> = {}, key?: random.Key): Tensor {
  const op = 'nextToken';
  if (!(logits instanceof Tensor) || logits.rank !== 2 || logits.dtype !== 'float32') throw new Error(`${op}: logits must be a float32 tensor [batch, vocab], got ${String(logits)}`);
  const temperature = checkOpts(op, { ...opts, key: key ?? opts.key });
  const k = key ?? opts.key;
  return tidy(() => {
    if (temperature === 0) return argmax(logits, -1);
    let x = div(logits, temperature);
    const V = x.shape[1];
    if (opts.topK !== undefined && opts.topK < V) {
      // The k-th largest value (ties counted), found without sorting: walk down the distinct values
      // v_1 > v_2 > ... (k of them at most) with the count of entries >= each, and keep the
      // largest v_j whose count reaches k.
      const atLeast = (v: Tensor): Tensor => sum(sub(1, less(x, v)), -1, true);
      let cur = max(x, -1, true);
      let thr = where(less(atLeast(cur), opts.topK), MASKED, cur);
      for (let j = 1; j < opts.topK; j++) {
        cur = max(where(less(x, cur), x, MASKED), -1, true);
        thr = where(less(atLeast(cur), opts.topK), thr, where(less(thr, cur), cur, thr));
      }
      x = where(less(x, thr), MASKED, x);
    }
    const u = random.uniform(k as random.Key, x.shape);
    const gumbel = neg(log(neg(log(u))));
    return argmax(add(x, gumbel), -1);
  });
}

/**
 * Continues each prompt row by up to `maxNewTokens` tokens and returns the rows, prompt included.
 * Greedy by default; with `temperature > 0`, samples with the explicit PRNG `key` (step i uses
 * `random.foldIn(key, i)`, so a key gives the same text every time). A key/value cache makes each new
 * token one single-position forward pass. A row that emits `eosTokenId` stops there (the id
 * included); generation ends when every row has.
 *
 * Prompts are rows of ids in `[0, vocab_size)`, of one length or not: rows of different lengths
 * need no padding, as the pass over the shared prefix length is one forward pass and each longer
 * row is then fed its own prompt tokens, one position per step, while the shorter ones already
 * generate. Every row sees exactly its own tokens at their own positions, so a row's greedy
 * continuation is the one it gets alone. The longest prompt plus `maxNewTokens` must fit in
 * `max_position_embeddings`: otherwise an Error names the argument and the value. Sampling step i
 * (position shortest-prompt + i of every row) uses `random.foldIn(key, i)`.
 *
 * @param model - Gives the architecture (config).
 * @param params - The weights (e.g. model.params, or merged SORSA weights).
 * @param promptIds - `[batch][length]` token ids.
 *
 * @example
 * ```ts
 * const [row] = await generate(model, model.params, [tok.encode('Call me')], { maxNewTokens: 20 });
 * tok.decode(row); // 'Call me ...'
 * const sampled = await generate(model, model.params, [ids], { maxNewTokens: 20, temperature: 0.8, topK: 40, key: random.key(0) });
 * ```
 */
export async function generate(model: Model, params: ForwardParams, promptIds: readonly (readonly number[])[], opts: GenerateOptions): Promise<number[][]> {
  const op = 'generate';
  const c = parseConfig(model?.config, `${op}: model.config`);
  if (!opts || !Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new Error(`${op}: maxNewTokens must be an integer >= 0, got ${String(opts?.maxNewTokens)}`);
  checkOpts(op, opts);
  if (!Array.isArray(promptIds) || promptIds.length === 0 || !promptIds.every((r) => Array.isArray(r))) throw new Error(`${op}: promptIds must be a non-empty array of rows of token ids`);
  const lengths = promptIds.map((r) => r.length);
  const P0 = Math.min(...lengths);
  const P = Math.max(...lengths);
  if (P0 === 0) throw new Error(`${op}: promptIds row ${lengths.indexOf(0)} is empty: every prompt needs at least one token`);
  if (P + opts.maxNewTokens > c.maxPositions) {
    throw new Error(`${op}: the prompt (${P} tokens) plus maxNewTokens (${opts.maxNewTokens}) is ${P + opts.maxNewTokens} tokens, longer than max_position_embeddings = ${c.maxPositions}`);
  }
  const eos = new Set(opts.eosTokenId === undefined ? [] : typeof opts.eosTokenId === 'number' ? [opts.eosTokenId] : opts.eosTokenId);
  const rows = promptIds.map((r) => [...r]);
  if (opts.maxNewTokens === 0) return rows;
  const B = rows.length;
  const done = new Array<boolean>(B).fill(false);
  const added = new Array<number>(B).fill(0);
  // The shared prefix (checked: ids in range) in one pass.
  let { logits, cache }: { logits: Tensor; cache: KvCache } = forwardWithCache(c, params, promptIds.map((r) => r.slice(0, P0)), null);
  try {
    for (let step = 0; ; step++) {
      const pos = P0 + step; // the position whose token is chosen now
      const T = logits.shape[1];
      const next = tidy(() => nextToken(reshape(slice(logits, [0, T - 1, 0], [B, 1, c.vocabSize]), [B, c.vocabSize]), opts, opts.key && random.foldIn(opts.key, step)));
      const ids = await next.data();
      next.dispose();
      for (let b = 0; b < B; b++) {
        // A row still inside its prompt is fed its own token; the model's choice there is unused.
        if (done[b] || rows[b].length > pos) continue;
        rows[b].push(ids[b]);
        added[b]++;
        if (eos.has(ids[b]) || added[b] === opts.maxNewTokens) done[b] = true;
      }
      if (done.every(Boolean)) break;
      // A finished row's input is never read back: any valid id keeps the batch in step.
      const input = tensor(Int32Array.from(rows, (r) => r[Math.min(pos, r.length - 1)]), [B, 1], 'int32');
      const r = forwardWithCache(c, params, input, cache);
      tree.dispose([input, logits, cache]);
      ({ logits, cache } = r);
    }
  } finally {
    tree.dispose([logits, cache]);
  }
  return rows;
}
