/**
 * Sharded checkpoints as transformers writes them (Node only): shard sizes, the split of the weights
 * into `model-00001-of-0000N.safetensors` files, `model.safetensors.index.json`, and replacing the
 * checkpoint a directory already holds in an order that a crash cannot leave unloadable.
 *
 * Both loaders (loadPretrained and transformers' from_pretrained) read `model.safetensors` when it
 * exists and the index otherwise, so a save commits with one atomic step:
 * - one file: renaming the new `model.safetensors` into place is the commit; the old index and
 *   shards are removed after it;
 * - shards over a single file: new shards, then the index, then removing `model.safetensors`
 *   (the commit: until then the old file is what loads);
 * - shards over shards: writing the index is the commit. When the new shards would overwrite files
 *   that the old index lists (the same names: the same shard count), the old files are first
 *   hard-linked (or copied) to `*.previous.safetensors` and the old index is rewritten, atomically,
 *   to name those; the old checkpoint then no longer depends on the names being overwritten.
 * Whatever the moment of a crash, the directory loads either the old checkpoint or the new one,
 * never a mixture; a later save removes what an interrupted one left.
 * @module
 */
import { copyFile, link, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { exists, readJson, writeTextAtomic } from './files.js';

/** transformers' default `max_shard_size`. */
export const DEFAULT_MAX_SHARD_SIZE = '5GB';
/** The single-file checkpoint's name. */
export const SINGLE = 'model.safetensors';
/** The index of a sharded checkpoint. */
export const INDEX = 'model.safetensors.index.json';
/** Names of shards this module writes, and of the copies it keeps of a previous save's shards. */
const SHARD_NAME = /^model-\d{5}-of-\d{5}(\.previous)?\.safetensors$/;

const UNITS: Record<string, number> = { KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/**
 * A shard size in bytes: a positive integer, or transformers' strings (`'5GB'` = 5·10⁹ bytes,
 * `'2GiB'` = 2·2³⁰; units KB, MB, GB, TB, KiB, MiB, GiB, TiB).
 */
export function parseShardSize(op: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^(\d+)\s*([KMGT]i?B)$/.exec(v.trim()) : null;
  if (m && Object.hasOwn(UNITS, m[2]) && Number(m[1]) > 0) return Number(m[1]) * UNITS[m[2]];
  throw new Error(`${op}: maxShardSize must be a positive integer of bytes or a size such as '5GB' or '500MiB' (units KB, MB, GB, TB, KiB, MiB, GiB, TiB), got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
}

/** The files of a save: each with the keys it holds, in checkpoint order. */
export interface ShardPlan {
  files: { name: string; keys: string[] }[];
  /** The weights' bytes, headers excluded (the index's `metadata.total_size`). */
  totalSize: number;
}

/**
 * Splits weights, in checkpoint order, into shards of at most `maxBytes` as huggingface_hub's
 * `split_state_dict_into_shards` does: a weight that would tip the current shard over starts the
 * next one; a weight bigger than `maxBytes` alone gets a shard of its own. One shard is
 * `model.safetensors`; more are `model-0000i-of-0000N.safetensors`.
 */
export function planShards(weights: readonly { key: string; bytes: number }[], maxBytes: number): ShardPlan {
  const groups: string[][] = [];
  let current: string[] = [];
  let size = 0;
  let totalSize = 0;
  for (const { key, bytes } of weights) {
    totalSize += bytes;
    if (bytes > maxBytes) {
      groups.push([key]);
      continue;
    }
    if (size + bytes > maxBytes && current.length > 0) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(key);
    size += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const n = groups.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  if (n > 99999) throw new Error(`savePretrained: ${n} shards are more than the 99999 the file names can number; raise maxShardSize`);
  return { files: groups.map((keys, i) => ({ name: n === 1 ? SINGLE : `model-${pad(i + 1)}-of-${pad(n)}.safetensors`, keys })), totalSize };
}

/** The index file's text as transformers writes it: sorted keys, two-space indent, a final newline. */
export function indexText(plan: ShardPlan): string {
  const entries: [string, string][] = plan.files.flatMap((f) => f.keys.map((k): [string, string] => [k, f.name]));
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const weightMap: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, f] of entries) weightMap[k] = f;
  return `${JSON.stringify({ metadata: { total_size: plan.totalSize }, weight_map: weightMap }, null, 2)}\n`;
}

/** What a directory holds before a save: a single file, and the shard files its index lists (when it parses). */
export interface Previous {
  single: boolean;
  index: { text: Record<string, unknown>; map: Map<string, string> } | null;
}

/** The checkpoint files `dir` holds now. An index that does not parse is no checkpoint, and ignored. */
export async function previousCheckpoint(op: string, dir: string): Promise<Previous> {
  const single = await exists(join(dir, SINGLE));
  let index: Previous['index'] = null;
  if (await exists(join(dir, INDEX))) {
    try {
      const json = await readJson(op, join(dir, INDEX));
      const wm = json !== null && typeof json === 'object' && Object.hasOwn(json, 'weight_map') ? (json as { weight_map: unknown }).weight_map : null;
      if (wm !== null && typeof wm === 'object' && !Array.isArray(wm)) {
        const map = new Map<string, string>();
        // Only plain file names beside the index are ever touched here.
        for (const [k, f] of Object.entries(wm)) if (typeof f === 'string' && f === basename(f) && f.endsWith('.safetensors') && !f.includes('\\')) map.set(k, f);
        index = { text: json as Record<string, unknown>, map };
      }
    } catch {
      /* unreadable: not a checkpoint anyone can load, so nothing to keep loadable */
    }
  }
  return { single, index };
}

/**
 * Before new shards overwrite files that the current checkpoint (the old index, when there is no
 * `model.safetensors`) reads: links each such file to `*.previous.safetensors` and rewrites the old
 * index to name the links, so that the old checkpoint stays whole while the new shards are written.
 */
export async function protectPrevious(op: string, dir: string, prev: Previous, newNames: ReadonlySet<string>): Promise<void> {
  if (prev.single || !prev.index) return;
  const files = new Set(prev.index.map.values());
  if (![...files].some((f) => newNames.has(f))) return;
  const aside = (f: string): string => f.replace(/(\.previous)?\.safetensors$/, '.previous.safetensors');
  for (const f of files) {
    // A listed shard that is missing leaves nothing loadable to protect.
    if (!newNames.has(f) || !(await exists(join(dir, f)))) continue;
    const to = join(dir, aside(f));
    try {
      await rm(to, { force: true });
      try {
        await link(join(dir, f), to);
      } catch {
        // A filesystem without hard links: a copy keeps the old bytes as well.
        await copyFile(join(dir, f), to);
      }
    } catch (e) {
      throw new Error(`${op}: cannot keep the previous shard ${join(dir, f)} as ${to} while the new shards are written: ${(e as Error).message}; nothing was overwritten`, { cause: e });
    }
  }
  const map: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, f] of prev.index.map) map[k] = newNames.has(f) ? aside(f) : f;
  await writeTextAtomic(op, join(dir, INDEX), `${JSON.stringify({ ...prev.index.text, weight_map: map }, null, 2)}\n`);
}

/**
 * After the new checkpoint is committed: removes the checkpoint files that the new one does not use:
 * `model.safetensors`, the index, and shard files named as transformers names them (with their
 * `.previous` copies). Other files, even `.safetensors` ones an odd index may list, are left alone.
 */
export async function removeStale(dir: string, kept: ReadonlySet<string>): Promise<void> {
  // model.safetensors first: when the new checkpoint is sharded, removing it is the commit.
  const stale = [SINGLE, INDEX, ...(await readdir(dir)).filter((f) => SHARD_NAME.test(f)).sort()];
  for (const f of stale) if (!kept.has(f)) await rm(join(dir, f), { force: true });
}
