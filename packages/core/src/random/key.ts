/**
 * PRNG keys: making them from seeds and deriving more, on the host with the same Threefry function the
 * kernels run (kernels/threefry.ts). No tensor holds a key.
 * @module
 */
import { threefry2x32 } from '../kernels/threefry.js';

const KEY_WORDS = Symbol('sorsajs.random.key');

/**
 * A PRNG key: two uint32 words of Threefry key material (JAX's key data). Immutable; make one with
 * {@link key}, derive more with {@link split} or {@link foldIn}. Reusing a key reuses its numbers.
 *
 * @example
 * ```ts
 * const [k1, k2] = random.split(random.key(0));
 * random.normal(k1, [2, 3]);
 * ```
 */
export class Key {
  /** @internal */
  readonly [KEY_WORDS]: readonly [number, number];

  private constructor(words: readonly [number, number]) {
    this[KEY_WORDS] = Object.freeze([words[0] >>> 0, words[1] >>> 0]) as readonly [number, number];
    Object.freeze(this);
  }

  /** @internal */
  static of(words: readonly [number, number]): Key {
    return new Key(words);
  }

  /** The two key words, as `Key(hi, lo)`. */
  toString(): string {
    return `Key(${this[KEY_WORDS][0]}, ${this[KEY_WORDS][1]})`;
  }
}

/** @internal The words of key `k`, after checking it is a Key; `op` names the caller. */
export function words(op: string, k: unknown): readonly [number, number] {
  if (!(k instanceof Key)) {
    throw new Error(`${op}: expected a random Key (from random.key, split or foldIn), got ${k === null ? 'null' : typeof k}`);
  }
  return k[KEY_WORDS];
}

function checkUint32(op: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new Error(`${op}: ${what} must be an integer in [0, 2^32), got ${String(v)}`);
  }
  return v;
}

/**
 * A key from an integer seed, as `jax.random.key(seed)`: words `[0, seed]` for a seed in
 * `[-2^31, 2^32)` (negative seeds as their uint32 bits), `[floor(seed / 2^32), seed mod 2^32]` above.
 *
 * @example
 * ```ts
 * keyData(key(42)); // [0, 42]
 * ```
 */
export function key(seed: number): Key {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < -(2 ** 31)) {
    throw new Error(`key: seed must be an integer in [-2^31, 2^53), got ${String(seed)}`);
  }
  if (seed < 2 ** 32) return Key.of([0, seed >>> 0]);
  return Key.of([Math.floor(seed / 2 ** 32), seed % 2 ** 32]);
}

/**
 * The key's two uint32 words (JAX's `random.key_data`).
 *
 * @example
 * ```ts
 * keyData(key(7)); // [0, 7]
 * ```
 */
export function keyData(k: Key): [number, number] {
  const [a, b] = words('keyData', k);
  return [a, b];
}

/**
 * A key from two uint32 words (JAX's `random.wrap_key_data`), e.g. saved with {@link keyData}.
 *
 * @example
 * ```ts
 * wrapKeyData([0, 42]).toString(); // 'Key(0, 42)'
 * ```
 */
export function wrapKeyData(data: readonly [number, number]): Key {
  if (!Array.isArray(data) || data.length !== 2) throw new Error(`wrapKeyData: expected two uint32 words, got ${String(data)}`);
  return Key.of([checkUint32('wrapKeyData', 'word 0', data[0]), checkUint32('wrapKeyData', 'word 1', data[1])]);
}

/**
 * `n` new keys, independent of each other and of `k` (JAX's `random.split`: key i is the Threefry
 * block of `k` at counter `(0, i)`).
 *
 * @example
 * ```ts
 * const [a, b] = split(key(0));
 * keyData(a); // [1797259609, 2579123966]
 * ```
 */
export function split(k: Key, n = 2): Key[] {
  const [k0, k1] = words('split', k);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 32) throw new Error(`split: n must be a non-negative integer, got ${String(n)}`);
  return Array.from({ length: n }, (_, i) => Key.of(threefry2x32(k0, k1, 0, i)));
}

/**
 * A new key from `k` and an integer `data` (JAX's `random.fold_in`), e.g. a step or layer number.
 *
 * @example
 * ```ts
 * const stepKey = foldIn(key(0), 100);
 * ```
 */
export function foldIn(k: Key, data: number): Key {
  const [k0, k1] = words('foldIn', k);
  if (!Number.isInteger(data) || data < -(2 ** 31) || data > 0xffffffff) {
    throw new Error(`foldIn: data must be an integer in [-2^31, 2^32), got ${String(data)}`);
  }
  return Key.of(threefry2x32(k0, k1, 0, data >>> 0));
}

