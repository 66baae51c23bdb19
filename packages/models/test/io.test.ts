/**
 * loadPretrained / savePretrained: round trips, the Conv1D layout against its definition, the real
 * checkpoints' variants (unprefixed GPT-2 keys and mask buffers, omitted tied heads, F16/BF16,
 * shards), and bad input with nothing left loaded. Files are written by the tests, byte by byte
 * where the library cannot write them (F16, BF16, odd keys).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, type Model } from '@sorsajs/models';
import { readWeights } from '@sorsajs/testing';
import { GPT2, LLAMA } from './configs.js';

const root = mkdtempSync(join(tmpdir(), 'sorsajs-models-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

type Dt = 'F32' | 'F16' | 'BF16';
interface Entry {
  name: string;
  dtype: Dt;
  shape: number[];
  values: ArrayLike<number>;
}

/** float32 bits of v. */
const f32bits = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0];
/** IEEE half of v, for values exactly representable as normal halves (or 0); others throw. */
function f16(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const b = f32bits(v);
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  const m = b & 0x7fffff;
  if (e <= 0 || e >= 31 || (m & 0x1fff) !== 0) throw new Error(`f16: ${v} is not an exact normal half`);
  return sign | (e << 10) | (m >>> 13);
}
/** bfloat16 of v: the upper half of its float32 bits (exact for the values used). */
function bf16(v: number): number {
  const b = f32bits(v);
  if ((b & 0xffff) !== 0) throw new Error(`bf16: ${v} is not exact`);
  return b >>> 16;
}

/** A safetensors file as the format defines it: u64 header length, JSON header, data. */
function writeSafetensors(file: string, entries: readonly Entry[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let off = 0;
  for (const e of entries) {
    const size = e.dtype === 'F32' ? 4 : 2;
    const bytes = new Uint8Array(e.values.length * size);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < e.values.length; i++) {
      if (e.dtype === 'F32') dv.setFloat32(i * 4, e.values[i], true);
      else dv.setUint16(i * 2, e.dtype === 'F16' ? f16(e.values[i]) : bf16(e.values[i]), true);
    }
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + bytes.length] };
    chunks.push(bytes);
    off += bytes.length;
  }
  let h = JSON.stringify(header);
  while (h.length % 8 !== 0) h += ' ';
  const hb = new TextEncoder().encode(h);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hb.length), true);
  writeFileSync(file, Buffer.concat([len, hb, ...chunks]));
}

/** Values k/64 for small k: exact in F32, F16 and BF16. */
const exact = (count: number, seed: number): number[] => Array.from({ length: count }, (_, i) => (((i * 37 + seed * 11) % 97) - 48) / 64);

/**
 * The checkpoint entries of a model in the file layout (Conv1D weights [in, out]) with exact values:
 * entry j's element at file position (r, col) is exact(...)[r * cols + col].
 */
function entriesOf(model: Model, dtype: Dt, rename = (k: string): string => k): { entries: Entry[]; want: Map<string, number[]> } {
  const paths = c.tree.leafPaths(model.params);
  const leaves = c.tree.leaves(model.params) as c.Tensor[];
  const entries: Entry[] = [];
  const want = new Map<string, number[]>();
  paths.forEach((p, j) => {
    const shape = [...leaves[j].shape];
    const conv = model.config.family === 'gpt2' && /\.(c_attn|c_proj|c_fc)\.weight$/.test(p);
    const fileShape = conv ? [shape[1], shape[0]] : shape;
    const values = exact(leaves[j].size, j);
    entries.push({ name: rename(p), dtype, shape: fileShape, values });
    // The tree element [o, i] of a Conv1D weight is the file's [i, o].
    want.set(p, conv ? Array.from({ length: values.length }, (_, k) => values[(k % shape[1]) * shape[0] + Math.floor(k / shape[1])]) : values);
  });
  return { entries, want };
}

function writeConfig(dir: string, json: object): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
}

async function expectTree(model: Model, want: Map<string, number[]>): Promise<void> {
  const got = await readWeights(model.params);
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [k, v] of want) expect(Array.from(got.get(k)!), k).toEqual(v);
}

describe('loadPretrained and savePretrained', () => {
  const gpt2 = createModel(GPT2, c.random.key(0));
  const llama = createModel({ ...LLAMA, tie_word_embeddings: false }, c.random.key(1));
  afterAll(() => c.tree.dispose([gpt2.params, llama.params]));

  it('round trips: savePretrained then loadPretrained gives the same tree and config', async () => {
    for (const m of [gpt2, llama]) {
      const dir = join(fresh(), 'nested', 'out');
      await savePretrained(m, m.params, dir);
      expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
      const back = await loadPretrained(dir);
      expect(back.config.json).toEqual({ ...m.config.json, torch_dtype: 'float32' });
      const [a, b] = [await readWeights(m.params), await readWeights(back.params)];
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [k, v] of a) expect(Array.from(b.get(k)!), k).toEqual(Array.from(v));
      // The file holds the HF names, Conv1D weights [in, out], no tied head.
      const raw = await c.loadSafetensors(join(dir, 'model.safetensors'));
      if (m === gpt2) {
        expect(raw['transformer.h.0.attn.c_attn.weight'].shape).toEqual([8, 24]);
        expect(raw['transformer.h.0.mlp.c_fc.weight'].shape).toEqual([8, 12]);
        expect(Object.keys(raw)).not.toContain('lm_head.weight');
      } else expect(raw['lm_head.weight'].shape).toEqual([19, 8]);
      c.tree.dispose([raw, back.params]);
    }
  });

  it("Conv1D: the file's [in, out] weight W gives y = x W + b, so tree element [o, i] is file element [i, o]", async () => {
    const dir = fresh();
    writeConfig(dir, GPT2);
    const { entries, want } = entriesOf(gpt2, 'F32');
    writeSafetensors(join(dir, 'model.safetensors'), entries);
    const m = await loadPretrained(dir);
    await expectTree(m, want);
    // By the definition: c_attn's output o for input x is b[o] + sum_i x[i] W_file[i, o].
    const e = entries.find((x) => x.name === 'transformer.h.0.attn.c_attn.weight')!;
    const [IN, OUT] = e.shape;
    const x = exact(IN, 99);
    const W = (m.params as never as { transformer: { h: { attn: { c_attn: { weight: c.Tensor } } }[] } }).transformer.h[0].attn.c_attn.weight;
    const y = await c.nn.linear(c.tensor([x]), W).data();
    for (let o = 0; o < OUT; o++) {
      let s = 0;
      for (let i = 0; i < IN; i++) s += x[i] * e.values[i * OUT + o];
      expect(y[o]).toBeCloseTo(s, 5);
    }
    c.tree.dispose(m.params);
  });

  it('reads the original GPT-2 layout (no transformer. prefix, attn.bias / attn.masked_bias buffers) in F16, and Llama in BF16', async () => {
    const dir = fresh();
    writeConfig(dir, GPT2);
    const { entries, want } = entriesOf(gpt2, 'F16', (k) => k.replace(/^transformer\./, ''));
    for (let l = 0; l < 2; l++) {
      entries.push({ name: `h.${l}.attn.bias`, dtype: 'F16', shape: [1, 1, 12, 12], values: Array.from({ length: 144 }, (_, k) => (k % 12 <= Math.floor(k / 12) ? 1 : 0)) });
      entries.push({ name: `h.${l}.attn.masked_bias`, dtype: 'F32', shape: [], values: [-1e4] });
    }
    writeSafetensors(join(dir, 'model.safetensors'), entries);
    const m = await loadPretrained(dir);
    await expectTree(m, want);
    c.tree.dispose(m.params);

    const dir2 = fresh();
    writeConfig(dir2, { ...LLAMA, tie_word_embeddings: false });
    const l = entriesOf(llama, 'BF16');
    writeSafetensors(join(dir2, 'model.safetensors'), l.entries);
    const ml = await loadPretrained(dir2);
    await expectTree(ml, l.want);
    c.tree.dispose(ml.params);
  });

  it('tied heads: omitted, or present and equal to the embedding (dropped); a different one is refused', async () => {
    const dir = fresh();
    writeConfig(dir, GPT2);
    const { entries, want } = entriesOf(gpt2, 'F32');
    const wte = entries.find((e) => e.name === 'transformer.wte.weight')!;
    writeSafetensors(join(dir, 'model.safetensors'), [...entries, { ...wte, name: 'lm_head.weight' }]);
    const m = await loadPretrained(dir);
    await expectTree(m, want);
    c.tree.dispose(m.params);
    const before = c.memory().tensors;
    writeSafetensors(join(dir, 'model.safetensors'), [...entries, { ...wte, name: 'lm_head.weight', values: exact(wte.values.length, 5) }]);
    await expect(loadPretrained(dir)).rejects.toThrow(/model\.safetensors: "lm_head.weight" differs from "transformer.wte.weight"/);
    expect(c.memory().tensors).toBe(before);
  });

  it('loads sharded checkpoints through model.safetensors.index.json', async () => {
    const dir = fresh();
    writeConfig(dir, { ...LLAMA, tie_word_embeddings: false });
    const { entries, want } = entriesOf(llama, 'F32');
    const half = Math.floor(entries.length / 2);
    const shards = [entries.slice(0, half), entries.slice(half)];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    shards.forEach((s, i) => writeSafetensors(join(dir, names[i]), s));
    const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((e) => [e.name, names[i]])));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const m = await loadPretrained(dir);
    await expectTree(m, want);
    c.tree.dispose(m.params);

    // A shard name that leaves the directory, a key the index misplaces, a missing shard.
    const before = c.memory().tensors;
    const bad = (map: Record<string, string>): void => writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
    bad({ ...weightMap, 'model.norm.weight': '../model-00002-of-00002.safetensors' });
    await expect(loadPretrained(dir)).rejects.toThrow(/the shard of "model.norm.weight" must be a .safetensors file name in the same directory, got "..\/model-00002-of-00002.safetensors"/);
    bad({ ...weightMap, 'model.norm.weight': names[0] });
    await expect(loadPretrained(dir)).rejects.toThrow(/model-00002-of-00002.safetensors holds "model.norm.weight", which .*index.json places in model-00001-of-00002.safetensors/);
    bad({ ...weightMap, 'model.norm.weight': 'model-00003-of-00003.safetensors' });
    await expect(loadPretrained(dir)).rejects.toThrow(/model-00003-of-00003.safetensors: not found \(a shard listed in/);
    expect(c.memory().tensors).toBe(before);
  });

  it('bad input: clear Errors naming the file and fault, with nothing left loaded', async () => {
    const before = c.memory().tensors;
    const dir = fresh();
    await expect(loadPretrained(dir)).rejects.toThrow(new RegExp(`loadPretrained: ${join(dir, 'config.json')}: not found`));
    writeFileSync(join(dir, 'config.json'), '{"model_type": ');
    await expect(loadPretrained(dir)).rejects.toThrow(/config\.json: not valid JSON/);
    writeConfig(dir, { n_layer: 2 });
    await expect(loadPretrained(dir)).rejects.toThrow(/config\.json: "model_type" is missing/);
    writeConfig(dir, { model_type: 't5' });
    await expect(loadPretrained(dir)).rejects.toThrow(/config\.json: "model_type" = "t5" is not supported/);
    writeConfig(dir, GPT2);
    await expect(loadPretrained(dir)).rejects.toThrow(/has neither model.safetensors nor model.safetensors.index.json/);

    const { entries } = entriesOf(gpt2, 'F32');
    const file = join(dir, 'model.safetensors');
    writeSafetensors(file, entries.filter((e) => e.name !== 'transformer.h.1.ln_2.bias'));
    await expect(loadPretrained(dir)).rejects.toThrow(/the weight "transformer.h.1.ln_2.bias" is missing from the checkpoint/);
    writeSafetensors(file, entries.map((e) => (e.name === 'transformer.h.0.attn.c_attn.weight' ? { ...e, shape: [24, 8] } : e)));
    await expect(loadPretrained(dir)).rejects.toThrow(/model\.safetensors: "transformer.h.0.attn.c_attn.weight" has shape \[24, 8\], expected \[8, 24\] \(a Conv1D weight, stored \[in, out\]\)/);
    writeSafetensors(file, entries.map((e) => (e.name === 'transformer.wpe.weight' ? { ...e, shape: [6, 16] } : e)));
    await expect(loadPretrained(dir)).rejects.toThrow(/"transformer.wpe.weight" has shape \[6, 16\], expected \[12, 8\]/);
    writeSafetensors(file, [...entries, { name: 'transformer.h.0.attn.extra', dtype: 'F32', shape: [1], values: [1] }]);
    await expect(loadPretrained(dir)).rejects.toThrow(/unexpected weight "transformer.h.0.attn.extra" for model_type "gpt2"/);
    writeSafetensors(file, [...entries, { name: '__proto__.polluted', dtype: 'F32', shape: [1], values: [1] }]);
    await expect(loadPretrained(dir)).rejects.toThrow(/unexpected weight "__proto__.polluted"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The same weight under both names.
    writeSafetensors(file, [...entries, { ...entries[0], name: 'wte.weight' }]);
    await expect(loadPretrained(dir)).rejects.toThrow(/"wte.weight" .* and "transformer.wte.weight" .* name the same weight/);
    expect(c.memory().tensors).toBe(before);
  });

  it('savePretrained refuses a tree that is not the model, before writing anything; leaves no temporary files', async () => {
    const dir = fresh();
    const bad = c.tree.mapWithPath((p, w) => (p === 'transformer.h.1.attn.c_proj.weight' ? c.zeros([8, 4]) : w), gpt2.params);
    await expect(savePretrained(gpt2, bad, dir)).rejects.toThrow(/savePretrained: params "transformer.h.1.attn.c_proj.weight" has shape \[8, 4\], expected \[8, 8\]/);
    await expect(savePretrained(gpt2, { ...gpt2.params, extra: c.zeros([1]) } as never, dir)).rejects.toThrow(/params has leaves that are not weights of this gpt2 model: extra/);
    expect(readdirSync(dir)).toEqual([]);
    await savePretrained(gpt2, gpt2.params, dir);
    await savePretrained(gpt2, gpt2.params, dir);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).model_type).toBe('gpt2');
  });
});
