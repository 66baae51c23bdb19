/**
 * Checkpoints: named trees of tensors, numbers and nulls round-trip exactly; files that are not
 * checkpoints, or whose metadata names reserved keys or missing tensors, are refused naming the file.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadCheckpoint, saveCheckpoint } from '@sorsajs/sorsa';

const dir = mkdtempSync(join(tmpdir(), 'sorsa-ck-'));
beforeAll(async () => {
  await c.init({ backend: 'wasm' });
});

/** A safetensors file written byte by byte here: one F32 tensor "x/0" of [1] and the given metadata. */
function handWritten(file: string, metadata: Record<string, string>): void {
  const header = JSON.stringify({ __metadata__: metadata, 'x/0': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
  const pad = (8 - (header.length % 8)) % 8;
  const h = Buffer.from(header + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const data = Buffer.alloc(4);
  data.writeFloatLE(1.5);
  writeFileSync(file, Buffer.concat([len, h, data]));
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round-trips trees (tensors of both dtypes, numbers, nulls, arrays) and info exactly', async () => {
    const w = c.tensor([0.1, -2.5e-8, 3.4e38, -0], [2, 2]);
    const i = c.tensor([1, -7, 2 ** 24], [3], 'int32');
    const trees = { trainable: { 'a.weight': { U: w, S: i, scale: 0.25 } }, opt: { count: 7, mu: [w, null], nu: { x: i } } };
    const file = join(dir, 'a.safetensors');
    await saveCheckpoint(file, { trees, info: { step: 7, key: [1, 2], data: { epoch: 0, cursor: 3 } } });
    const back = await loadCheckpoint(file);
    expect(back.info).toEqual({ step: 7, key: [1, 2], data: { epoch: 0, cursor: 3 } });
    const t = back.trees as typeof trees;
    expect(t.trainable['a.weight'].scale).toBe(0.25);
    expect(t.opt.count).toBe(7);
    expect(t.opt.mu[1]).toBeNull();
    expect(Array.from(await t.trainable['a.weight'].U.data())).toEqual(Array.from(new Float32Array([0.1, -2.5e-8, 3.4e38, -0])));
    expect(Array.from(await t.opt.nu.x.data())).toEqual([1, -7, 2 ** 24]);
    expect(t.opt.nu.x.dtype).toBe('int32');
    c.tree.dispose([back.trees, w, i]);
  });

  it('refuses a file without checkpoint metadata, a reserved tree or key name, and a missing tensor', async () => {
    const plain = join(dir, 'plain.safetensors');
    await c.saveSafetensors({ x: c.tensor([1]) }, plain);
    await expect(loadCheckpoint(plain)).rejects.toThrow(/loadCheckpoint: .*plain\.safetensors: no sorsajs checkpoint metadata/);
    const meta = (trees: unknown): Record<string, string> => ({ 'sorsajs.checkpoint': JSON.stringify({ format: 1, trees, info: {} }) });
    const proto = join(dir, 'proto.safetensors');
    handWritten(proto, meta({ t: { def: { kind: 'object', keys: ['__proto__'], children: [{ kind: 'leaf' }] }, leaves: [{ t: 'x/0' }] } }));
    await expect(loadCheckpoint(proto)).rejects.toThrow(/proto\.safetensors: .*"__proto__".*not allowed/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const protoTree = join(dir, 'proto-tree.safetensors');
    handWritten(protoTree, { 'sorsajs.checkpoint': '{"format":1,"trees":{"constructor":{"def":{"kind":"leaf"},"leaves":[{"v":1}]}},"info":{}}' });
    await expect(loadCheckpoint(protoTree)).rejects.toThrow(/tree "constructor" is not allowed/);
    const missing = join(dir, 'missing.safetensors');
    handWritten(missing, meta({ t: { def: { kind: 'leaf' }, leaves: [{ t: 'y/0' }] } }));
    await expect(loadCheckpoint(missing)).rejects.toThrow(/missing\.safetensors: tree "t" leaf 0 names tensor "y\/0", which the file does not hold/);
    const ok = join(dir, 'ok.safetensors');
    handWritten(ok, meta({ t: { def: { kind: 'array', children: [{ kind: 'leaf' }, { kind: 'leaf' }] }, leaves: [{ t: 'x/0' }, { v: 2 }] } }));
    const back = await loadCheckpoint(ok);
    const [x, two] = back.trees.t as [c.Tensor, number];
    expect(Array.from(await x.data())).toEqual([1.5]);
    expect(two).toBe(2);
    c.tree.dispose(back.trees);
  });
});
