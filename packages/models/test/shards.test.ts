/**
 * savePretrained's sharded checkpoints: transformers' file names and index, checked against the
 * shard files' own headers (parsed here from the safetensors definition) and their raw F32 bytes;
 * round trips; replacing a previous save of each kind; and a save that dies midway (a shard write
 * made to fail) leaving the previous checkpoint loadable and whole.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, type Model } from '@sorsajs/models';
import { randomWeights, readWeights } from '@sorsajs/testing';
import { GPT2, LLAMA } from './configs.js';

/** Shard files whose write should fail, to stand for a process killed at that point. */
const failing = new Set<string>();
vi.mock('@sorsajs/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@sorsajs/core')>();
  return {
    ...core,
    saveSafetensors: async (...args: Parameters<typeof core.saveSafetensors>): Promise<void> => {
      if (failing.has(basename(args[1]))) throw new Error(`injected failure writing ${basename(args[1])}`);
      return core.saveSafetensors(...args);
    },
  };
});

const root = mkdtempSync(join(tmpdir(), 'sorsajs-shards-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A safetensors file by the format's definition: u64 LE header length, JSON header, data. */
function readFile(file: string): { header: Record<string, HeaderEntry>; data: Buffer } {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, HeaderEntry>;
  delete header.__metadata__;
  return { header, data: buf.subarray(8 + len) };
}

/** The F32 values of `key` in a file read by {@link readFile}. */
function valuesOf(f: { header: Record<string, HeaderEntry>; data: Buffer }, key: string): number[] {
  const e = f.header[key];
  expect(e.dtype).toBe('F32');
  const out: number[] = [];
  for (let o = e.data_offsets[0]; o < e.data_offsets[1]; o += 4) out.push(f.data.readFloatLE(o));
  return out;
}

async function expectSameTree(a: Model['params'], b: Model['params']): Promise<void> {
  const [x, y] = [await readWeights(a), await readWeights(b)];
  expect([...y.keys()]).toEqual([...x.keys()]);
  for (const [k, v] of x) expect(Array.from(y.get(k)!), k).toEqual(Array.from(v));
}

const shardNames = (dir: string): string[] => readdirSync(dir).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).sort();

describe('savePretrained with maxShardSize', () => {
  const llama = createModel({ ...LLAMA, tie_word_embeddings: false }, c.random.key(1));
  const gpt2 = createModel(GPT2, c.random.key(2));
  afterAll(() => c.tree.dispose([llama.params, gpt2.params]));

  it("writes transformers' shards and index: names, weight_map and total_size agree with the files' own headers; values byte for byte", async () => {
    const dir = fresh();
    const max = 600;
    await savePretrained(llama, llama.params, dir, { maxShardSize: max });
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index)).toEqual(['metadata', 'weight_map']);
    const shards = shardNames(dir);
    const N = shards.length;
    expect(N).toBeGreaterThan(2);
    expect(shards).toEqual(Array.from({ length: N }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(N).padStart(5, '0')}.safetensors`));
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors.index.json', ...shards].sort());
    const weights = await readWeights(llama.params);
    const seen = new Map<string, string>();
    let total = 0;
    for (const s of shards) {
      const f = readFile(join(dir, s));
      let bytes = 0;
      for (const [k, e] of Object.entries(f.header)) {
        expect(seen.has(k), k).toBe(false);
        seen.set(k, s);
        bytes += e.data_offsets[1] - e.data_offsets[0];
        // The file holds the tree's values exactly (Llama has no Conv1D weights: same layout).
        expect(valuesOf(f, k), k).toEqual(Array.from(weights.get(k)!, (v) => Math.fround(v)));
      }
      // A shard fits the limit unless it is one weight bigger than the limit.
      expect(bytes <= max || Object.keys(f.header).length === 1, s).toBe(true);
      total += bytes;
    }
    expect(index.metadata).toEqual({ total_size: total });
    expect(Object.keys(index.weight_map)).toEqual([...seen.keys()].sort());
    expect(index.weight_map).toEqual(Object.fromEntries(seen));
    expect([...seen.keys()].sort()).toEqual([...weights.keys()].sort());
    // The embedding (19 x 8 floats = 608 bytes) is over the limit: alone in its shard.
    expect(Object.keys(readFile(join(dir, seen.get('model.embed_tokens.weight')!)).header)).toEqual(['model.embed_tokens.weight']);

    const back = await loadPretrained(dir);
    await expectSameTree(llama.params, back.params);
    c.tree.dispose(back.params);
  });

  it('round-trips GPT-2 (Conv1D weights transposed in every shard) and accepts sizes as strings', async () => {
    const dir = fresh();
    await savePretrained(gpt2, gpt2.params, dir, { maxShardSize: '1KB' });
    const shards = shardNames(dir);
    expect(shards.length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const file = readFile(join(dir, index.weight_map['transformer.h.0.attn.c_attn.weight']));
    expect(file.header['transformer.h.0.attn.c_attn.weight'].shape).toEqual([8, 24]);
    expect(index.weight_map['lm_head.weight']).toBeUndefined();
    const back = await loadPretrained(dir);
    await expectSameTree(gpt2.params, back.params);
    c.tree.dispose(back.params);
    // The default, 5GB, keeps a small model in one file.
    const one = fresh();
    await savePretrained(gpt2, gpt2.params, one);
    expect(readdirSync(one).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('replaces a previous save of any kind, leaving only the new files', async () => {
    const dir = fresh();
    const other = randomWeights(llama.params, 7);
    const check = async (want: Model['params'], files: (names: string[]) => string[]): Promise<void> => {
      expect(readdirSync(dir).sort()).toEqual(files(shardNames(dir)).sort());
      const back = await loadPretrained(dir);
      await expectSameTree(want, back.params);
      c.tree.dispose(back.params);
    };
    const sharded = (names: string[]): string[] => ['config.json', 'model.safetensors.index.json', ...names];
    await savePretrained(llama, llama.params, dir);
    await check(llama.params, () => ['config.json', 'model.safetensors']);
    await savePretrained(llama, other, dir, { maxShardSize: 700 }); // single -> shards
    await check(other, sharded);
    const N = shardNames(dir).length;
    await savePretrained(llama, llama.params, dir, { maxShardSize: 700 }); // shards -> the same names
    await check(llama.params, sharded);
    expect(shardNames(dir)).toHaveLength(N);
    await savePretrained(llama, other, dir, { maxShardSize: 2000 }); // shards -> fewer shards
    await check(other, sharded);
    expect(shardNames(dir).length).toBeLessThan(N);
    await savePretrained(llama, llama.params, dir); // shards -> one file
    await check(llama.params, () => ['config.json', 'model.safetensors']);
    c.tree.dispose(other);
  });

  it('a save that dies midway leaves the previous checkpoint loadable and whole, and the next save cleans up', async () => {
    const other = randomWeights(llama.params, 8);
    try {
      // Shards over shards of the same names: the new first shard is written, the second fails.
      const dir = fresh();
      await savePretrained(llama, llama.params, dir, { maxShardSize: 700 });
      const names = shardNames(dir);
      failing.add(names[1]);
      await expect(savePretrained(llama, other, dir, { maxShardSize: 700 })).rejects.toThrow(/injected failure/);
      failing.clear();
      // The old index now reads the old bytes under other names, while shard 1 holds new values.
      let back = await loadPretrained(dir);
      await expectSameTree(llama.params, back.params);
      c.tree.dispose(back.params);
      await savePretrained(llama, other, dir, { maxShardSize: 700 });
      expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors.index.json', ...names].sort());
      back = await loadPretrained(dir);
      await expectSameTree(other, back.params);
      c.tree.dispose(back.params);

      // Shards over one file: the last shard fails, before the index and the removal of model.safetensors.
      const dir2 = fresh();
      await savePretrained(llama, llama.params, dir2);
      failing.add(names.at(-1)!);
      await expect(savePretrained(llama, other, dir2, { maxShardSize: 700 })).rejects.toThrow(/injected failure/);
      failing.clear();
      expect(existsSync(join(dir2, 'model.safetensors'))).toBe(true);
      back = await loadPretrained(dir2);
      await expectSameTree(llama.params, back.params);
      c.tree.dispose(back.params);

      // One file over shards: the new file is not written; the shards still load.
      const dir3 = fresh();
      await savePretrained(llama, llama.params, dir3, { maxShardSize: 700 });
      failing.add('model.safetensors');
      await expect(savePretrained(llama, other, dir3)).rejects.toThrow(/injected failure/);
      failing.clear();
      back = await loadPretrained(dir3);
      await expectSameTree(llama.params, back.params);
      c.tree.dispose(back.params);
    } finally {
      failing.clear();
      c.tree.dispose(other);
    }
  });

  it('refuses a bad maxShardSize, naming it and the value, before writing anything', async () => {
    const dir = fresh();
    for (const bad of [0, -5, 1.5, '5 bananas', '0GB', '5gb', Number.NaN]) {
      await expect(savePretrained(llama, llama.params, dir, { maxShardSize: bad as never })).rejects.toThrow(/savePretrained: maxShardSize must be a positive integer of bytes or a size such as '5GB'/);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
