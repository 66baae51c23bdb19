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
 * A flat record in the official checkpoint layout: for every adapter at path `p`, `p.weight` (the
 * residual from `frozen`), `p.sorsa_A` (Vt `[r, in]`), `p.sorsa_B` (U `[out, r]`) and `p.sorsa_S`
 * (S `[r]`); every other tensor leaf of `frozen` under its own dotted path. The adapters' `scale`
 * is configuration, not part of the layout, and is not stored. Tensors are new handles.
 *
 * @example
 * ```ts
 * await saveSafetensors(toOfficialStateDict(trainable, frozen), 'adapter.safetensors');
 * ```
 */
export function toOfficialStateDict(trainable: Trainable, frozen: unknown): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  const paths = tree.leafPaths(frozen);
  const leaves = tree.leaves(frozen);
  const byPath = new Map(paths.map((p, i) => [p, leaves[i]]));
  for (const [p, adapter] of Object.entries(trainable)) {
    if (!isSorsaAdapter(adapter)) throw new Error(`toOfficialStateDict: the adapter at "${p}" is not a SORSA adapter {U, S, Vt} (LoRA-form adapters have no official SORSA layout)`);
    const residual = byPath.get(p);
    if (!(residual instanceof Tensor)) throw new Error(`toOfficialStateDict: no residual tensor at "${p}" in frozen`);
    out[p + SUFFIXES.weight] = handle(residual);
    out[p + SUFFIXES.A] = handle(adapter.Vt);
    out[p + SUFFIXES.B] = handle(adapter.U);
    out[p + SUFFIXES.S] = handle(adapter.S);
  }
  paths.forEach((p, i) => {
    const leaf = leaves[i];
    if (leaf instanceof Tensor && !(p in trainable)) {
      if (p in out) throw new Error(`toOfficialStateDict: the key "${p}" is produced twice`);
      out[p] = handle(leaf);
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
 * Tensors are new handles; the record can be disposed afterwards.
 *
 * @example
 * ```ts
 * const { trainable, frozen } = fromOfficialStateDict(await loadSafetensors('adapter.safetensors'));
 * ```
 */
export function fromOfficialStateDict(record: Record<string, Tensor>): OfficialParts {
  const trainable: Record<string, SorsaAdapter> = {};
  const used = new Set<string>();
  const flat: Record<string, Tensor> = {};
  for (const key of Object.keys(record)) {
    if (!key.endsWith(SUFFIXES.A)) continue;
    const p = key.slice(0, -SUFFIXES.A.length);
    const get = (suffix: string): Tensor => {
      const t = record[p + suffix];
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
    trainable[p] = { U: handle(U), S: handle(S), Vt: handle(Vt) };
    flat[p] = handle(W);
  }
  for (const [key, t] of Object.entries(record)) {
    if (used.has(key)) continue;
    if (key.endsWith(SUFFIXES.B) || key.endsWith(SUFFIXES.S)) throw new Error(`fromOfficialStateDict: "${key}" has no matching sorsa_A`);
    if (key in flat) throw new Error(`fromOfficialStateDict: the path "${key}" appears twice`);
    flat[key] = handle(t);
  }
  return { trainable, frozen: unflattenPaths(flat) };
}

/** Nested plain objects from dotted keys; a node whose keys are exactly 0..n-1 becomes an array. */
function unflattenPaths(flat: Record<string, Tensor>): unknown {
  const root: Record<string, unknown> = {};
  for (const [key, t] of Object.entries(flat)) {
    const parts = key.split('.');
    let node = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) {
        if (part in node) throw new Error(`fromOfficialStateDict: "${key}" collides with another key`);
        node[part] = t;
        return;
      }
      const next = node[part];
      if (next instanceof Tensor) throw new Error(`fromOfficialStateDict: "${key}" nests under the tensor "${parts.slice(0, i + 1).join('.')}"`);
      node = (next as Record<string, unknown>) ?? (node[part] = {});
    });
  }
  const arrays = (n: unknown): unknown => {
    if (n instanceof Tensor || n === null || typeof n !== 'object') return n;
    const o = n as Record<string, unknown>;
    const keys = Object.keys(o);
    const mapped = Object.fromEntries(keys.map((k) => [k, arrays(o[k])]));
    const isArray = keys.length > 0 && keys.every((k, i) => k === String(i)) && keys.length === new Set(keys).size;
    return isArray ? keys.map((k) => mapped[k]) : mapped;
  };
  return arrays(root);
}
