/**
 * Interop with the official PyTorch implementation's layout: per adapted linear layer `weight`
 * (the residual), `sorsa_A` (Vt), `sorsa_B` (U) and `sorsa_S` (S); every other tensor keeps its path.
 * @module
 */
import { Tensor, reshape, tree } from '@sorsajs/core';
import { isSorsaAdapter, type SorsaAdapter, type Trainable } from './types.js';

const SUFFIXES = { weight: '.weight', A: '.sorsa_A', B: '.sorsa_B', S: '.sorsa_S' } as const;

/** A new handle on the same storage, so the record and the trees can be disposed separately. */
const handle = (t: Tensor): Tensor => reshape(t, t.shape);

/**
 * Path segments that cannot name a parameter. Keys come from files; nesting them into objects under
 * these names would write onto object prototypes (`__proto__.isAdmin` onto every object in the
 * process), so a key with one of them is refused before anything is built.
 */
const RESERVED_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Refuses a key with a segment `__proto__`, `constructor` or `prototype` (shared with `peft.ts`). */
export function checkKey(fn: string, key: string): void {
  const bad = key.split('.').find((seg) => RESERVED_SEGMENTS.has(seg));
  if (bad !== undefined) {
    throw new Error(`${fn}: the key ${JSON.stringify(key)} has the segment "${bad}", which cannot name a parameter (__proto__, constructor and prototype would write onto object prototypes); rename it in the checkpoint`);
  }
}

/** Sets `obj[key]` as an own property: safe for any key, never a prototype write. */
export function put<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A flat record in the official checkpoint layout: for every adapter at path `p`, `p.weight` (the
 * residual from `frozen`), `p.sorsa_A` (Vt `[r, in]`), `p.sorsa_B` (U `[out, r]`) and `p.sorsa_S`
 * (S `[r]`); every other tensor leaf of `frozen` under its own dotted path. The adapters' `scale`
 * is configuration, not part of the layout, and is not stored. An adapter path with a segment
 * `__proto__`, `constructor` or `prototype` is an Error (such a file could not be read back safely).
 * Tensors are new handles.
 *
 * @example
 * ```ts
 * await saveSafetensors(toOfficialStateDict(trainable, frozen), 'adapter.safetensors');
 * ```
 */
export function toOfficialStateDict(trainable: Trainable, frozen: unknown): Record<string, Tensor> {
  const fn = 'toOfficialStateDict';
  for (const p of Object.keys(trainable)) checkKey(fn, p);
  const out: Record<string, Tensor> = {};
  const paths = tree.leafPaths(frozen);
  const leaves = tree.leaves(frozen);
  const byPath = new Map(paths.map((p, i) => [p, leaves[i]]));
  for (const [p, adapter] of Object.entries(trainable)) {
    if (!isSorsaAdapter(adapter)) throw new Error(`toOfficialStateDict: the adapter at "${p}" is not a SORSA adapter {U, S, Vt} (LoRA-form adapters have no official SORSA layout)`);
    const residual = byPath.get(p);
    if (!(residual instanceof Tensor)) throw new Error(`toOfficialStateDict: no residual tensor at "${p}" in frozen`);
    put(out, p + SUFFIXES.weight, handle(residual));
    put(out, p + SUFFIXES.A, handle(adapter.Vt));
    put(out, p + SUFFIXES.B, handle(adapter.U));
    put(out, p + SUFFIXES.S, handle(adapter.S));
  }
  paths.forEach((p, i) => {
    const leaf = leaves[i];
    if (leaf instanceof Tensor && !Object.hasOwn(trainable, p)) {
      if (Object.hasOwn(out, p)) throw new Error(`toOfficialStateDict: the key "${p}" is produced twice`);
      put(out, p, handle(leaf));
    }
  });
  return out;
}

/** What `fromOfficialStateDict` returns. */
export interface OfficialParts {
  /** SORSA adapters keyed by the dotted path of the layer they adapt. */
  trainable: Record<string, SorsaAdapter>;
  /** Every other tensor, nested by its dotted key, with the residual at each adapted path. */
  frozen: unknown;
}

/**
 * The inverse of `toOfficialStateDict`: adapters keyed by path and a frozen tree rebuilt from the
 * dotted keys (objects, or arrays where the keys are 0..n-1), the residual at each adapted path.
 * Shapes are checked: `sorsa_A [r, in]`, `sorsa_B [out, r]`, `sorsa_S [r]`, `weight [out, in]`.
 * Keys are untrusted input: one with a segment `__proto__`, `constructor` or `prototype` is an Error
 * (other names, `toString` included, are ordinary). Tensors are new handles; the record can be
 * disposed afterwards.
 *
 * @example
 * ```ts
 * const { trainable, frozen } = fromOfficialStateDict(await loadSafetensors('adapter.safetensors'));
 * ```
 */
export function fromOfficialStateDict(record: Record<string, Tensor>): OfficialParts {
  const fn = 'fromOfficialStateDict';
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new Error(`${fn}: expected a record of tensors by key, got ${record === null ? 'null' : Array.isArray(record) ? 'an array' : typeof record}`);
  const keys = Object.keys(record);
  for (const key of keys) checkKey(fn, key);
  const trainable: Record<string, SorsaAdapter> = {};
  const used = new Set<string>();
  const flat = new Map<string, Tensor>();
  for (const key of keys) {
    if (!key.endsWith(SUFFIXES.A)) continue;
    const p = key.slice(0, -SUFFIXES.A.length);
    const get = (suffix: string): Tensor => {
      const t = Object.hasOwn(record, p + suffix) ? record[p + suffix] : undefined;
      if (!(t instanceof Tensor)) throw new Error(`fromOfficialStateDict: "${key}" has no matching "${p + suffix}"`);
      used.add(p + suffix);
      return t;
    };
    const [Vt, U, S, W] = [get(SUFFIXES.A), get(SUFFIXES.B), get(SUFFIXES.S), get(SUFFIXES.weight)];
    const r = Vt.shape[0];
    const ok = Vt.rank === 2 && U.rank === 2 && S.rank === 1 && W.rank === 2 && U.shape[1] === r && S.shape[0] === r && W.shape[0] === U.shape[0] && W.shape[1] === Vt.shape[1];
    if (!ok) {
      throw new Error(
        `fromOfficialStateDict: shapes at "${p}" do not fit: sorsa_A [${Vt.shape}], sorsa_B [${U.shape}], sorsa_S [${S.shape}], weight [${W.shape}] (expected [r,in], [out,r], [r], [out,in])`,
      );
    }
    put(trainable, p, { U: handle(U), S: handle(S), Vt: handle(Vt) });
    flat.set(p, handle(W));
  }
  for (const key of keys) {
    if (used.has(key)) continue;
    if (key.endsWith(SUFFIXES.B) || key.endsWith(SUFFIXES.S)) throw new Error(`fromOfficialStateDict: "${key}" has no matching sorsa_A`);
    if (flat.has(key)) throw new Error(`fromOfficialStateDict: the path "${key}" appears twice`);
    flat.set(key, handle(record[key]));
  }
  return { trainable, frozen: unflattenPaths(flat) };
}

/**
 * Nested plain objects from dotted keys; a node whose keys are exactly 0..n-1 becomes an array.
 * Built from Maps, then copied into objects with own properties, so no key is looked up on, or
 * written through, a prototype (the keys were checked by `checkKey` too).
 */
function unflattenPaths(flat: Map<string, Tensor>): unknown {
  type Node = Map<string, Node | Tensor>;
  const root: Node = new Map();
  for (const [key, t] of flat) {
    const parts = key.split('.');
    let node = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) {
        if (node.has(part)) throw new Error(`fromOfficialStateDict: "${key}" collides with another key`);
        node.set(part, t);
        return;
      }
      const next = node.get(part);
      if (next instanceof Tensor) throw new Error(`fromOfficialStateDict: "${key}" nests under the tensor "${parts.slice(0, i + 1).join('.')}"`);
      if (next) node = next;
      else {
        const made: Node = new Map();
        node.set(part, made);
        node = made;
      }
    });
  }
  const build = (n: Node | Tensor): unknown => {
    if (n instanceof Tensor) return n;
    const keys = [...n.keys()];
    if (keys.length > 0 && keys.every((k, i) => k === String(i))) return keys.map((k) => build(n.get(k)!));
    const out: Record<string, unknown> = {};
    for (const k of keys) put(out, k, build(n.get(k)!));
    return out;
  };
  return build(root);
}
