/**
 * PEFT adapter directories. The files are read back by an independent safetensors reader written
 * here (8-byte header length, JSON header, raw little-endian F32), and the merged weight
 * `W0 + lora_B lora_A · lora_alpha / r` is rebuilt from them in float64 and compared with
 * `mergeParams`. Key names, shapes and config fields are checked against PEFT's conventions,
 * written as literals. Bad directories are written by hand, with the same independent layout.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adalora, adaptParams, loadPeftAdapter, mergeParams, savePeftAdapter, type AdaloraAdapter, type LoraAdapter, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32, closeTo, mm, rand } from './ref.js';

const [OUT, IN, OUT2] = [5, 4, 3];
const W0 = rand(OUT * IN, 21);
const W1 = rand(OUT2 * IN, 22);
const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'sorsa-peft-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** An independent safetensors reader: F32 only. */
async function readST(file: string): Promise<Map<string, { shape: number[]; data: Float64Array }>> {
  const bytes = new Uint8Array(await readFile(file));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    expect(v.dtype).toBe('F32');
    const [a, b] = v.data_offsets;
    const data = new Float64Array((b - a) / 4);
    for (let i = 0; i < data.length; i++) data[i] = dv.getFloat32(8 + n + a + 4 * i, true);
    out.set(k, { shape: v.shape, data });
  }
  return out;
}

/** An independent safetensors writer (F32, or I32 where a tensor says so), for hand-made bad files. */
async function writeST(file: string, tensors: [string, number[], ArrayLike<number>, ('F32' | 'I32')?][]): Promise<void> {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [k, shape, d, dtype = 'F32'] of tensors) {
    Object.defineProperty(header, k, { value: { dtype, shape, data_offsets: [off, off + 4 * d.length] }, enumerable: true });
    off += 4 * d.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const h = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + h.length + off);
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(0, BigInt(h.length), true);
  bytes.set(h, 8);
  let p = 8 + h.length;
  for (const [, , d, dtype] of tensors) {
    for (let i = 0; i < d.length; i++, p += 4) {
      if (dtype === 'I32') dv.setInt32(p, d[i], true);
      else dv.setFloat32(p, d[i], true);
    }
  }
  await writeFile(file, bytes);
}

/** W0 + B A · alpha / r in float64 from the files alone. */
async function rebuild(dir: string, module: string, base: Float32Array, out: number, inp: number): Promise<Float64Array> {
  const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number };
  const st = await readST(join(dir, 'adapter_model.safetensors'));
  const A = st.get(`base_model.model.${module}.lora_A.weight`)!;
  const B = st.get(`base_model.model.${module}.lora_B.weight`)!;
  expect(A.shape).toEqual([cfg.r, inp]);
  expect(B.shape).toEqual([out, cfg.r]);
  const BA = mm(B.data, A.data, out, cfg.r, inp);
  return Float64Array.from(base, (w, i) => w + (BA[i] * cfg.lora_alpha) / cfg.r);
}

const makeParams = (): { h: { attn: { c_attn: { weight: c.Tensor } }; mlp: { c_fc: { weight: c.Tensor; bias: c.Tensor } } }[] } => ({
  h: [{ attn: { c_attn: { weight: c.tensor(W0, [OUT, IN]) } }, mlp: { c_fc: { weight: c.tensor(W1, [OUT2, IN]), bias: c.tensor([1, 2, 3], [OUT2]) } } }],
});
const PATHS = ['h.0.attn.c_attn.weight', 'h.0.mlp.c_fc.weight'];
const MODULES = ['h.0.attn.c_attn', 'h.0.mlp.c_fc'];

/** Moves every tensor of an adapter tree by a seeded amount: a stand-in for training. */
const perturb = (t: Trainable, seed: number): Trainable =>
  c.tree.map((x) => (x instanceof c.Tensor ? c.add(x, c.tensor(rand(x.size, seed++, -0.3, 0.3), x.shape)) : x), t) as Trainable;

forEachBackend('PEFT adapter files', () => {
  for (const method of ['lora', 'sorsa', 'pissa'] as const) {
    it(`${method}: the files alone rebuild mergeParams' weights; keys, shapes and config as PEFT's`, async () => {
      const params = makeParams();
      const rank = 2;
      const { trainable: initial, frozen } = await adaptParams(params, { method, rank, targets: PATHS, alpha: 3, key: c.random.key(1) });
      const trained = perturb(initial, 100);
      const dir = await tempDir();
      await savePeftAdapter(dir, trained, { initial: method === 'lora' ? undefined : initial, fanInFanOut: true, baseModel: 'gpt2' });
      expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
      const r = method === 'lora' ? rank : 2 * rank;
      // The scale alpha / rank = 1.5 is kept: PEFT's lora_alpha / r with r the saved rank.
      expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 1.5 * r, fan_in_fan_out: true, target_modules: MODULES, base_model_name_or_path: 'gpt2' });
      const st = await readST(join(dir, 'adapter_model.safetensors'));
      expect([...st.keys()].sort()).toEqual([
        'base_model.model.h.0.attn.c_attn.lora_A.weight',
        'base_model.model.h.0.attn.c_attn.lora_B.weight',
        'base_model.model.h.0.mlp.c_fc.lora_A.weight',
        'base_model.model.h.0.mlp.c_fc.lora_B.weight',
      ]);
      expect(st.get('base_model.model.h.0.mlp.c_fc.lora_A.weight')!.shape).toEqual([r, IN]);
      expect(st.get('base_model.model.h.0.mlp.c_fc.lora_B.weight')!.shape).toEqual([OUT2, r]);

      const merged = mergeParams(trained, frozen);
      const got0 = await merged.h[0].attn.c_attn.weight.data();
      const got1 = await merged.h[0].mlp.c_fc.weight.data();
      // float32 rounding of the residual, of the rank-r products and of their sum (|entries| < ~4).
      const tol = (): number => 64 * r * EPS32 * 4;
      expect(closeTo(got0, await rebuild(dir, MODULES[0], W0, OUT, IN), tol, `${method} c_attn`)).toEqual([]);
      expect(closeTo(got1, await rebuild(dir, MODULES[1], W1, OUT2, IN), tol, `${method} c_fc`)).toEqual([]);

      // Read back: merged onto the untouched base, the same weights.
      const loaded = await loadPeftAdapter(dir);
      expect(loaded.config.r).toBe(r);
      expect(Object.keys(loaded.adapters).sort()).toEqual([...PATHS].sort());
      const base = makeParams();
      const again = mergeParams(loaded.adapters, base);
      expect(closeTo(await again.h[0].attn.c_attn.weight.data(), got0, tol, `${method} reloaded`)).toEqual([]);
      c.tree.dispose([params, initial, frozen, trained, merged, loaded.adapters, base, again]);
    });
  }

  it('adalora: pruned files as PEFT saves them rebuild mergeParams\' weights; keys, shapes, config and rank_pattern as PEFT\'s', async () => {
    const r = 3;
    const scale = adalora.scaleFor(r, 6);
    const keep = [
      [true, false, true],
      [true, true, true],
    ];
    const dims = [
      [OUT, IN],
      [OUT2, IN],
    ];
    const trained: Record<string, AdaloraAdapter> = {};
    PATHS.forEach((p, k) => {
      const [o, i] = dims[k];
      const E = Array.from(rand(r, 300 + k, 0.5, 2), (v, q) => (keep[k][q] ? v : 0));
      trained[p] = { A: c.tensor(rand(r * i, 310 + k), [r, i]), E: c.tensor(E, [r, 1]), B: c.tensor(rand(o * r, 320 + k), [o, r]), scale };
    });
    const base = makeParams();
    const frozen = makeParams();
    const dir = await tempDir();
    const rankPattern = { 'h.0.attn.c_attn.lora_E': keep[0], 'h.0.mlp.c_fc.lora_E': keep[1] };
    await savePeftAdapter(dir, trained, { fanInFanOut: true, adalora: { rankPattern, targetR: 2, tinit: 5, tfinal: 10, totalSteps: 100 } });
    // PEFT's AdaLoraConfig refuses to load without a positive total_step, or with tinit >= total_step - tfinal.
    await expect(savePeftAdapter(await tempDir(), trained, { adalora: { rankPattern } })).rejects.toThrow(/needs opts\.adalora\.totalSteps, a positive integer.*got undefined/);
    await expect(savePeftAdapter(await tempDir(), trained, { adalora: { rankPattern, tinit: 90, tfinal: 10, totalSteps: 100 } })).rejects.toThrow(/needs tinit < totalSteps - tfinal/);
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'ADALORA',
      task_type: 'CAUSAL_LM',
      r: 8, // unused by AdaLoRA; PEFT warns unless it is its default
      init_r: 3,
      target_r: 2,
      lora_alpha: 6,
      tinit: 5,
      tfinal: 10,
      total_step: 100,
      deltaT: 1,
      beta1: 0.85,
      beta2: 0.85,
      orth_reg_weight: 0.5,
      fan_in_fan_out: true,
      target_modules: MODULES,
      rank_pattern: { 'h.0.attn.c_attn.lora_E': [true, false, true], 'h.0.mlp.c_fc.lora_E': [true, true, true] },
    });
    const st = await readST(join(dir, 'adapter_model.safetensors'));
    // AdaLoRA's factors are bare nn.Parameters in PEFT: their keys carry no `.weight` (LoRA's do).
    const shapes = Object.fromEntries([...st].map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      'base_model.model.h.0.attn.c_attn.lora_A': [2, IN],
      'base_model.model.h.0.attn.c_attn.lora_E': [2, 1],
      'base_model.model.h.0.attn.c_attn.lora_B': [OUT, 2],
      'base_model.model.h.0.mlp.c_fc.lora_A': [3, IN],
      'base_model.model.h.0.mlp.c_fc.lora_E': [3, 1],
      'base_model.model.h.0.mlp.c_fc.lora_B': [OUT2, 3],
    });
    // Independent rebuild: W0 + B (A ⊙ E) · lora_alpha / (init_r + 1e-5), from the files alone.
    const merged = mergeParams(trained, frozen);
    const mergedW = [merged.h[0].attn.c_attn.weight, merged.h[0].mlp.c_fc.weight];
    for (const [k, m] of MODULES.entries()) {
      const [o, i] = dims[k];
      const A = st.get(`base_model.model.${m}.lora_A`)!;
      const E = st.get(`base_model.model.${m}.lora_E`)!;
      const B = st.get(`base_model.model.${m}.lora_B`)!;
      const rk = A.shape[0];
      const BE = Float64Array.from(B.data, (v, q) => v * E.data[q % rk]);
      const W = k === 0 ? W0 : W1;
      const want = mm(BE, A.data, o, rk, i).map((v, q) => W[q] + (v * cfg.lora_alpha) / (cfg.init_r + 1e-5));
      expect(closeTo(await mergedW[k].data(), want, () => 64 * r * EPS32 * 4, `adalora ${m}`)).toEqual([]);
    }
    const loaded = await loadPeftAdapter(dir);
    expect((loaded.adapters[PATHS[0]] as AdaloraAdapter).E.shape).toEqual([2, 1]);
    expect(loaded.adapters[PATHS[0]].scale).toBe(scale);
    const again = mergeParams(loaded.adapters, base);
    expect(closeTo(await again.h[0].attn.c_attn.weight.data(), await mergedW[0].data(), () => 64 * r * EPS32 * 4, 'adalora reloaded')).toEqual([]);
    // Bad rank patterns, named.
    await expect(savePeftAdapter(await tempDir(), trained, { adalora: { totalSteps: 100, rankPattern: { 'h.0.attn.c_attn.lora_E': [true] } } })).rejects.toThrow(/rank_pattern\["h\.0\.attn\.c_attn\.lora_E"\] must be 3 booleans/);
    await expect(savePeftAdapter(await tempDir(), trained, { adalora: { totalSteps: 100, rankPattern: { 'nope.lora_E': [true, true, true] } } })).rejects.toThrow(/rank_pattern key "nope\.lora_E" names no adapter module/);
    await expect(savePeftAdapter(await tempDir(), trained, { adalora: { totalSteps: 100, rankPattern: { 'h.0.attn.c_attn.lora_E': [false, false, false] } } })).rejects.toThrow(/prunes every triplet of "h\.0\.attn\.c_attn"/);
    c.tree.dispose([trained, base, frozen, merged, loaded.adapters, again]);
  });

  it('saving refuses what PEFT cannot hold, naming the path', async () => {
    const params = makeParams();
    const dir = await tempDir();
    const { trainable, frozen } = await adaptParams(params, { rank: 2, targets: PATHS });
    await expect(savePeftAdapter(dir, trainable)).rejects.toThrow(/"h\.0\.attn\.c_attn\.weight" is a SORSA adapter .* pass opts\.initial/);
    await expect(savePeftAdapter(dir, trainable, { initial: { [PATHS[0]]: trainable[PATHS[0]] } })).rejects.toThrow(/opts\.initial has no adapter at "h\.0\.mlp\.c_fc\.weight"/);
    const full = await adaptParams(params, { method: 'full', targets: PATHS });
    await expect(savePeftAdapter(dir, full.trainable)).rejects.toThrow(/"h\.0\.attn\.c_attn\.weight" is a full weight/);
    const lora2 = await adaptParams(params, { method: 'lora', rank: 2, targets: [PATHS[0]], key: c.random.key(0) });
    const lora1 = await adaptParams(params, { method: 'lora', rank: 1, targets: [PATHS[1]], key: c.random.key(0) });
    await expect(savePeftAdapter(dir, { ...lora2.trainable, ...lora1.trainable })).rejects.toThrow(/one rank and scale .* "h\.0\.mlp\.c_fc\.weight" has r 1/);
    await expect(savePeftAdapter(dir, { 'h.0.attn.c_attn': lora2.trainable[PATHS[0]] })).rejects.toThrow(/"h\.0\.attn\.c_attn" does not end in "\.weight"/);
    await expect(savePeftAdapter(dir, { '__proto__.x.weight': lora2.trainable[PATHS[0]] })).rejects.toThrow(/segment "__proto__"/);
    expect(await readdir(dir)).toEqual([]);
    c.tree.dispose([params, trainable, frozen, full, lora1, lora2]);
  });

  it('saving refuses every other bad input, naming the argument, path or module, and writes nothing', async () => {
    const params = makeParams();
    const dir = await tempDir();
    const lora = await adaptParams(params, { method: 'lora', rank: 2, targets: PATHS, key: c.random.key(0) });
    const t = lora.trainable as Record<string, LoraAdapter>;
    const ada = (r: number, scale = 1): AdaloraAdapter => ({ A: c.tensor(rand(r * IN, 7), [r, IN]), E: c.tensor(rand(r, 8), [r, 1]), B: c.tensor(rand(OUT * r, 9), [OUT, r]), scale });
    const ada3 = { [PATHS[0]]: ada(3), 'h.0.x.weight': ada(3) };
    const adaOpts = { totalSteps: 10 };
    await expect(savePeftAdapter('', t)).rejects.toThrow(/savePeftAdapter: dir must be a non-empty string, got string/);
    await expect(savePeftAdapter(dir, [] as unknown as Trainable)).rejects.toThrow(/savePeftAdapter: adapters must be a record of adapters keyed by weight path, got an array/);
    await expect(savePeftAdapter(dir, {})).rejects.toThrow(/savePeftAdapter: adapters is empty/);
    await expect(savePeftAdapter(dir, t, { fanInFanOut: 'yes' as unknown as boolean })).rejects.toThrow(/savePeftAdapter: fanInFanOut must be a boolean, got yes/);
    await expect(savePeftAdapter(dir, { [PATHS[0]]: { x: c.zeros([1]) } as unknown as LoraAdapter })).rejects.toThrow(/savePeftAdapter: the entry at "h\.0\.attn\.c_attn\.weight" must be a LoRA adapter \{ A, B \}, got an object with keys \{x\}/);
    await expect(savePeftAdapter(dir, t, { modulePath: () => '' })).rejects.toThrow(/savePeftAdapter: modulePath\("h\.0\.attn\.c_attn\.weight"\) must be a non-empty string, got string/);
    await expect(savePeftAdapter(dir, t, { modulePath: () => 'same' })).rejects.toThrow(/savePeftAdapter: "h\.0\.mlp\.c_fc\.weight" and "h\.0\.attn\.c_attn\.weight" map to the same module "same"/);
    await expect(savePeftAdapter(dir, t, { targetModules: ['c_attn', ''] })).rejects.toThrow(/savePeftAdapter: targetModules must be non-empty strings, got \["c_attn",""\]/);
    await expect(savePeftAdapter(dir, { [PATHS[0]]: { ...t[PATHS[0]], scale: 0 } })).rejects.toThrow(/savePeftAdapter: the adapter at "h\.0\.attn\.c_attn\.weight" has scale 0; PEFT's lora_alpha \/ r needs a positive finite scale/);
    // AdaLoRA: one kind per file, one init_r and scaling, a positive scale, no opts.initial, a rank pattern object.
    await expect(savePeftAdapter(dir, { [PATHS[0]]: ada(3), [PATHS[1]]: t[PATHS[1]] }, { adalora: adaOpts })).rejects.toThrow(/savePeftAdapter: "h\.0\.mlp\.c_fc\.weight" is a LoRA adapter but "h\.0\.attn\.c_attn\.weight" is an AdaLoRA adapter: one file holds one kind/);
    await expect(savePeftAdapter(dir, { [PATHS[0]]: t[PATHS[0]], [PATHS[1]]: ada(3) }, { adalora: adaOpts })).rejects.toThrow(/savePeftAdapter: "h\.0\.mlp\.c_fc\.weight" is an AdaLoRA adapter but "h\.0\.attn\.c_attn\.weight" is not: one file holds one kind/);
    await expect(savePeftAdapter(dir, { [PATHS[0]]: ada(3), 'h.0.x.weight': ada(2) }, { adalora: adaOpts })).rejects.toThrow(/savePeftAdapter: every AdaLoRA adapter must have one initial rank and scaling .* "h\.0\.x\.weight" has 2/);
    await expect(savePeftAdapter(dir, { [PATHS[0]]: ada(3, -1) }, { adalora: adaOpts })).rejects.toThrow(/savePeftAdapter: the adapter at "h\.0\.attn\.c_attn\.weight" has scale -1; PEFT's lora_alpha needs a positive finite scale/);
    await expect(savePeftAdapter(dir, ada3, { adalora: adaOpts, initial: ada3 })).rejects.toThrow(/savePeftAdapter: the adapter at "h\.0\.attn\.c_attn\.weight" is an AdaLoRA adapter .* save it without opts\.initial/);
    await expect(savePeftAdapter(dir, ada3, { adalora: { ...adaOpts, rankPattern: [] as unknown as Record<string, boolean[]> } })).rejects.toThrow(/savePeftAdapter: rank_pattern must be an object of boolean lists, got an array/);
    await expect(savePeftAdapter(dir, ada3, { adalora: { ...adaOpts, rankPattern: { 'h.0.x.lora_E': [true, 1, true] as unknown as boolean[] } } })).rejects.toThrow(/savePeftAdapter: rank_pattern\["h\.0\.x\.lora_E"\] must be 3 booleans/);
    expect(await readdir(dir)).toEqual([]);
    // A directory that cannot be made: named, and the cause kept.
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    await expect(savePeftAdapter(join(file, 'adapter'), t)).rejects.toThrow(/savePeftAdapter: cannot write ".*a-file\/adapter"/);
    c.tree.dispose([params, lora, ada3]);
  });

  it('loading refuses a bad directory, naming the key; nothing reaches a prototype', async () => {
    const A = rand(2 * IN, 1);
    const B = rand(OUT * 2, 2);
    const good = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['m'], fan_in_fan_out: false, task_type: 'CAUSAL_LM' };
    const make = async (cfg: unknown, tensors: Parameters<typeof writeST>[1]): Promise<string> => {
      const d = await tempDir();
      await writeFile(join(d, 'adapter_config.json'), JSON.stringify(cfg));
      await writeST(join(d, 'adapter_model.safetensors'), tensors);
      return d;
    };
    const ok: [string, number[], ArrayLike<number>][] = [
      ['base_model.model.m.lora_A.weight', [2, IN], A],
      ['base_model.model.m.lora_B.weight', [OUT, 2], B],
    ];
    // The good directory loads, with scale lora_alpha / r = 2.
    const loaded = await loadPeftAdapter(await make(good, ok));
    expect(loaded.adapters['m.weight'].scale).toBe(2);
    c.tree.dispose(loaded.adapters);

    await expect(loadPeftAdapter(await make({ ...good, peft_type: 'IA3' }, ok))).rejects.toThrow(/peft_type "IA3" is not supported/);
    await expect(loadPeftAdapter(await make({ ...good, r: 0 }, ok))).rejects.toThrow(/r must be a positive integer, got 0/);
    await expect(loadPeftAdapter(await make(good, [ok[0]]))).rejects.toThrow(/missing key "base_model\.model\.m\.lora_B\.weight"/);
    await expect(loadPeftAdapter(await make(good, [ok[1]]))).rejects.toThrow(/missing key "base_model\.model\.m\.lora_A\.weight"/);
    await expect(loadPeftAdapter(await make(good, [ok[0], ['base_model.model.m.lora_B.weight', [OUT, 3], rand(OUT * 3, 3)]]))).rejects.toThrow(
      /"base_model\.model\.m\.lora_B\.weight" has shape \[5,3\], expected \[out, 2\]/,
    );
    await expect(loadPeftAdapter(await make(good, [['base_model.model.m.lora_A.weight', [3, IN], rand(3 * IN, 4)], ok[1]]))).rejects.toThrow(
      /"base_model\.model\.m\.lora_A\.weight" has shape \[3,4\], expected \[2, in\]/,
    );
    await expect(loadPeftAdapter(await make(good, [...ok, ['base_model.model.m.weight', [1], [0]]]))).rejects.toThrow(/unexpected key "base_model\.model\.m\.weight"/);
    for (const seg of ['__proto__', 'constructor', 'prototype']) {
      const bad: [string, number[], ArrayLike<number>][] = [
        [`base_model.model.${seg}.lora_A.weight`, [2, IN], A],
        [`base_model.model.${seg}.lora_B.weight`, [OUT, 2], B],
      ];
      await expect(loadPeftAdapter(await make(good, bad))).rejects.toThrow(new RegExp(`segment "${seg}"`));
    }
    expect(Object.prototype).not.toHaveProperty('lora_A');
    expect(({} as Record<string, unknown>).weight).toBeUndefined();
    // AdaLoRA directories.
    const E = rand(2, 5);
    const ada = { peft_type: 'ADALORA', init_r: 2, lora_alpha: 4, target_modules: ['m'], fan_in_fan_out: false, task_type: 'CAUSAL_LM' };
    const adaAB: [string, number[], ArrayLike<number>][] = [
      ['base_model.model.m.lora_A', [2, IN], A],
      ['base_model.model.m.lora_B', [OUT, 2], B],
    ];
    const adaOk: [string, number[], ArrayLike<number>][] = [...adaAB, ['base_model.model.m.lora_E', [2, 1], E]];
    const la = await loadPeftAdapter(await make(ada, adaOk));
    expect(la.adapters['m.weight'].scale).toBe(4 / (2 + 1e-5));
    c.tree.dispose(la.adapters);
    // lora_alpha 0: scaling is the rank; for a module PEFT resized by rank_pattern, the kept rank
    // (it rebuilds the layer with update_layer(rank = kept)), over ranknum = init_r.
    const one: [string, number[], ArrayLike<number>][] = [
      ['base_model.model.m.lora_A', [1, IN], A.slice(0, IN)],
      ['base_model.model.m.lora_B', [OUT, 1], Array.from({ length: OUT }, (_, q) => B[q * 2])],
      ['base_model.model.m.lora_E', [1, 1], [E[0]]],
    ];
    const l0 = await loadPeftAdapter(await make({ ...ada, lora_alpha: 0 }, adaOk));
    expect(l0.adapters['m.weight'].scale).toBe(2 / (2 + 1e-5));
    const lp = await loadPeftAdapter(await make({ ...ada, lora_alpha: 0, rank_pattern: { 'm.lora_E': [true, false] } }, one));
    expect(lp.adapters['m.weight'].scale).toBe(1 / (2 + 1e-5));
    c.tree.dispose([l0.adapters, lp.adapters]);
    await expect(loadPeftAdapter(await make(ada, adaAB))).rejects.toThrow(/missing key "base_model\.model\.m\.lora_E"/);
    await expect(loadPeftAdapter(await make(ada, [...adaAB, ['base_model.model.m.lora_E', [2], E]]))).rejects.toThrow(/"base_model\.model\.m\.lora_E" has shape \[2\], expected \[2, 1\]/);
    // LoRA-style `.weight` keys are not AdaLoRA's: refused, not silently ignored as PEFT would.
    await expect(loadPeftAdapter(await make(ada, [...ok, ['base_model.model.m.lora_E.weight', [2, 1], E]]))).rejects.toThrow(/unexpected key "base_model\.model\.m\.lora_A\.weight".*AdaLoRA: no \.weight/);
    await expect(loadPeftAdapter(await make({ ...ada, rank_pattern: { 'm.lora_E': [true, false] } }, adaOk))).rejects.toThrow(
      /"base_model\.model\.m\.lora_A" has shape \[2,4\], expected \[1, in\] \(1 kept in rank_pattern\["m\.lora_E"\]\)/,
    );
    await expect(loadPeftAdapter(await make({ ...ada, rank_pattern: { 'm.lora_E': [true] } }, adaOk))).rejects.toThrow(/rank_pattern\["m\.lora_E"\] must be 2 booleans/);
    await expect(loadPeftAdapter(await make(JSON.parse('{"peft_type":"ADALORA","init_r":2,"lora_alpha":4,"rank_pattern":{"__proto__":[true,true]}}'), adaOk))).rejects.toThrow(/segment "__proto__"/);
    await expect(loadPeftAdapter(await make({ ...ada, init_r: undefined }, adaOk))).rejects.toThrow(/init_r must be a positive integer/);
    const noCfg = await tempDir();
    await expect(loadPeftAdapter(noCfg)).rejects.toThrow(/cannot read .*adapter_config\.json/);
    // The config, its fields and the weights file, each refused by name.
    await expect(loadPeftAdapter('')).rejects.toThrow(/loadPeftAdapter: dir must be a non-empty string, got string/);
    const notJson = await tempDir();
    await writeFile(join(notJson, 'adapter_config.json'), '{"peft_type": ');
    await expect(loadPeftAdapter(notJson)).rejects.toThrow(/loadPeftAdapter: cannot read ".*adapter_config\.json": .*JSON/);
    await expect(loadPeftAdapter(await make([good], ok))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json must hold a JSON object, got an array/);
    await expect(loadPeftAdapter(await make({ ...good, r: 1.5 }, ok))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: r must be a positive integer, got 1\.5/);
    await expect(loadPeftAdapter(await make({ ...good, lora_alpha: '4' }, ok))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: lora_alpha must be a finite number, got "4"/);
    await expect(loadPeftAdapter(await make({ ...good, rank_pattern: { 'm.lora_A': 1 } }, ok))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: a non-empty rank_pattern is not supported/);
    await expect(loadPeftAdapter(await make({ ...ada, alpha_pattern: { m: 8 } }, adaOk))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: a non-empty alpha_pattern is not supported/);
    await expect(loadPeftAdapter(await make({ ...ada, rank_pattern: [true] }, adaOk))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: rank_pattern must be an object of boolean lists, got an array/);
    await expect(loadPeftAdapter(await make({ ...ada, rank_pattern: { 'n.lora_E': [true, true] } }, adaOk))).rejects.toThrow(/loadPeftAdapter: adapter_config\.json: rank_pattern key "n\.lora_E" names no module of the weights file/);
    await expect(loadPeftAdapter(await make(good, [ok[0], ['base_model.model.m.lora_B.weight', [OUT, 2], Array.from({ length: OUT * 2 }, (_, q) => q), 'I32']]))).rejects.toThrow(
      /loadPeftAdapter: "base_model\.model\.m\.lora_B\.weight" has dtype int32; adapters are float32/,
    );
    await expect(loadPeftAdapter(await make(good, []))).rejects.toThrow(/loadPeftAdapter: adapter_model\.safetensors holds no adapter keys/);
    const noWeights = await tempDir();
    await writeFile(join(noWeights, 'adapter_config.json'), JSON.stringify(good));
    await expect(loadPeftAdapter(noWeights)).rejects.toThrow(/loadPeftAdapter: .*adapter_model\.safetensors/);
    // use_rslora: PEFT's scaling lora_alpha / √r.
    const rs = await loadPeftAdapter(await make({ ...good, use_rslora: true }, ok));
    expect(rs.adapters['m.weight'].scale).toBe(4 / Math.sqrt(2));
    c.tree.dispose(rs.adapters);
  });
});
