/**
 * Training checkpoints: named trees of tensors and numbers (trainable adapters, optimizer state,
 * AdaLoRA's allocator state) with JSON metadata (step, PRNG key, data position, the run's config),
 * in one safetensors file written atomically.
 * @module
 */
import { Tensor, loadSafetensorsWithMetadata, saveSafetensors, tree } from '@sorsajs/core';

/** The metadata key holding the checkpoint's description (trees' structures and host leaves). */
const META_KEY = 'sorsajs.checkpoint';

/** What a checkpoint holds. */
export interface Checkpoint {
  /** Trees by name (e.g. `{ trainable, optState }`): tensors, numbers and nulls in arrays and plain objects. */
  trees: Record<string, unknown>;
  /** JSON-serializable facts (step, key, data position, config). */
  info: Record<string, unknown>;
}

interface Described {
  format: 1;
  trees: Record<string, { def: tree.TreeDef; leaves: ({ t: string } | { v: number | null })[] }>;
  info: Record<string, unknown>;
}

/** Names safe as object keys (no prototype keys): checkpoints are files, and files are untrusted. */
function checkName(file: string, what: string, name: string): void {
  if (name === '__proto__' || name === 'constructor' || name === 'prototype') throw new Error(`loadCheckpoint: ${file}: ${what} "${name}" is not allowed (a reserved object key)`);
}

/**
 * Writes `checkpoint` to `file` atomically (a temporary file renamed over it): a crash mid-write
 * leaves the previous file as it was. Tensor leaf `i` of tree `name` is stored as `name/i`; the trees'
 * structures, their number and null leaves, and `info` go into the safetensors metadata as JSON.
 *
 * @example
 * ```ts
 * await saveCheckpoint('runs/a/checkpoints/step-100.safetensors', {
 *   trees: { trainable, optState },
 *   info: { step: 100, key: random.keyData(key) },
 * });
 * ```
 */
export async function saveCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  const record: Record<string, Tensor> = {};
  const desc: Described = { format: 1, trees: {}, info: checkpoint.info };
  for (const [name, t] of Object.entries(checkpoint.trees)) {
    if (name.includes('/')) throw new Error(`saveCheckpoint: tree name "${name}" may not contain "/"`);
    const [leaves, def] = tree.flatten(t);
    desc.trees[name] = {
      def,
      leaves: leaves.map((leaf, i) => {
        if (leaf instanceof Tensor) {
          const key = `${name}/${i}`;
          record[key] = leaf;
          return { t: key };
        }
        if (typeof leaf === 'number' && !Number.isFinite(leaf)) throw new Error(`saveCheckpoint: tree "${name}" leaf ${i} is ${leaf}: only finite numbers are stored`);
        return { v: leaf ?? null };
      }),
    };
  }
  await saveSafetensors(record, file, { [META_KEY]: JSON.stringify(desc) });
}

/**
 * Reads a checkpoint written by {@link saveCheckpoint}. The file's structure is checked: a missing
 * tensor, a reserved key (`__proto__`, ...), or metadata that is not a checkpoint's is an Error
 * naming the file.
 *
 * @example
 * ```ts
 * const { trees, info } = await loadCheckpoint('runs/a/checkpoints/step-100.safetensors');
 * ```
 */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  const { tensors, metadata } = await loadSafetensorsWithMetadata(file);
  const fail = (why: string): Error => {
    tree.dispose(tensors);
    return new Error(`loadCheckpoint: ${file}: ${why}`);
  };
  const text = metadata && Object.hasOwn(metadata, META_KEY) ? metadata[META_KEY] : undefined;
  if (typeof text !== 'string') throw fail('no sorsajs checkpoint metadata (is it a checkpoint written by saveCheckpoint?)');
  let desc: Described;
  try {
    desc = JSON.parse(text) as Described;
  } catch (e) {
    throw fail(`its checkpoint metadata is not JSON (${(e as Error).message})`);
  }
  if (desc?.format !== 1 || typeof desc.trees !== 'object' || desc.trees === null || typeof desc.info !== 'object' || desc.info === null) throw fail('its checkpoint metadata is not format 1');
  const trees: Record<string, unknown> = {};
  const used = new Set<string>();
  try {
    for (const name of Object.keys(desc.trees)) {
      checkName(file, 'tree', name);
      const { def, leaves } = desc.trees[name];
      if (!Array.isArray(leaves)) throw new Error(`tree "${name}" has no leaf list`);
      const values = leaves.map((l, i) => {
        if (l && typeof l === 'object' && typeof (l as { t?: unknown }).t === 'string') {
          const key = (l as { t: string }).t;
          if (!Object.hasOwn(tensors, key)) throw new Error(`tree "${name}" leaf ${i} names tensor "${key}", which the file does not hold`);
          used.add(key);
          return tensors[key];
        }
        const v = (l as { v?: unknown })?.v;
        if (v !== null && typeof v !== 'number') throw new Error(`tree "${name}" leaf ${i} is neither a tensor nor a number`);
        return v;
      });
      trees[name] = tree.unflatten(def, values);
    }
  } catch (e) {
    throw fail((e as Error).message);
  }
  // Tensors that no tree names are not part of the checkpoint.
  for (const [k, t] of Object.entries(tensors)) if (!used.has(k)) t.dispose();
  return { trees, info: desc.info };
}
