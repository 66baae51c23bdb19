/**
 * The official PyTorch layout (key names, shapes, round trip through safetensors) and the paper's
 * drift measures against float64 references.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { adaptParams, drift, driftParams, fromOfficialStateDict, toOfficialStateDict } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { EPS32 as EPS, randomData, svdReference } from '@sorsajs/testing';

/**
 * A safetensors file written by hand from the format description (u64 LE header length, JSON header
 * padded with spaces to 8 bytes, F32 data), not with the library's writer: names are taken as given.
 */
function safetensorsBytes(tensors: [name: string, shape: number[], values: number[]][]): Uint8Array {
  let offset = 0;
  const fields = tensors.map(([name, shape, values]) => {
    const f = `${JSON.stringify(name)}:{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + 4 * values.length}]}`;
    offset += 4 * values.length;
    return f;
  });
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const [, , values] of tensors) {
    for (const v of values) {
      view.setFloat32(at, v, true);
      at += 4;
    }
  }
  return out;
}

/** Row-major float64 copy of a float32 tensor's values. */
async function host(t: c.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}


forEachBackend('sorsa interop and drift', () => {
  it('toOfficialStateDict writes the official key names and shapes; fromOfficialStateDict inverts it through safetensors', async () => {
    const [out, inp, r] = [6, 5, 2];
    const U = c.tensor(randomData(out * r, 1), [out, r]);
    const S = c.tensor([2, 1]);
    const Vt = c.tensor(randomData(r * inp, 2), [r, inp]);
    const residual = c.tensor(randomData(out * inp, 3), [out, inp]);
    const emb = c.tensor(randomData(12, 4), [4, 3]);
    const frozen = { blocks: [{ attn: { wq: residual } }], emb };
    const trainable = { 'blocks.0.attn.wq': { U, S, Vt } };
    const record = toOfficialStateDict(trainable, frozen);
    expect(Object.keys(record).sort()).toEqual(
      ['blocks.0.attn.wq.sorsa_A', 'blocks.0.attn.wq.sorsa_B', 'blocks.0.attn.wq.sorsa_S', 'blocks.0.attn.wq.weight', 'emb'].sort(),
    );
    expect(record['blocks.0.attn.wq.sorsa_A'].shape).toEqual([r, inp]);
    expect(record['blocks.0.attn.wq.sorsa_B'].shape).toEqual([out, r]);
    expect(record['blocks.0.attn.wq.sorsa_S'].shape).toEqual([r]);
    expect(record['blocks.0.attn.wq.weight'].shape).toEqual([out, inp]);
    const file = join(mkdtempSync(join(tmpdir(), 'sorsa-')), 'adapter.safetensors');
    await c.saveSafetensors(record, file);
    const loaded = await c.loadSafetensors(file);
    const back = fromOfficialStateDict(loaded);
    const f = back.frozen as { blocks: { attn: { wq: c.Tensor } }[]; emb: c.Tensor };
    expect(Array.isArray(f.blocks)).toBe(true);
    const a = back.trainable['blocks.0.attn.wq'];
    expect(Array.from(await a.U.data())).toEqual(Array.from(await U.data()));
    expect(Array.from(await a.S.data())).toEqual([2, 1]);
    expect(Array.from(await a.Vt.data())).toEqual(Array.from(await Vt.data()));
    expect(Array.from(await f.blocks[0].attn.wq.data())).toEqual(Array.from(await residual.data()));
    expect(Array.from(await f.emb.data())).toEqual(Array.from(await emb.data()));
    c.tree.dispose([record, loaded, back, U, S, Vt, residual, emb]);
  });

  it('the official SORSA layout, checked against its description: per linear layer weight = W_r [out,in], sorsa_A = V_pᵀ [r,in], sorsa_B = U_p [out,r], sorsa_S = S_p [r]', async () => {
    const [out, inp, r] = [7, 5, 2];
    const w = randomData(out * inp, 21);
    const W = c.tensor(w, [out, inp]);
    const bias = c.tensor(randomData(out, 22));
    const emb = c.tensor(randomData(12, 23), [4, 3]);
    const params = { blocks: [{ attn: { wq: W, bias } }], emb };
    const { trainable, frozen } = await adaptParams(params, { rank: r, targets: ['blocks.0.attn.wq'] });
    const record = toOfficialStateDict(trainable, frozen);
    // The official implementation's state dict for this model, written out by hand.
    const official: Record<string, number[]> = {
      'blocks.0.attn.wq.weight': [7, 5], // W_r, the residual (out x in)
      'blocks.0.attn.wq.sorsa_A': [2, 5], // V_pᵀ (r x in)
      'blocks.0.attn.wq.sorsa_B': [7, 2], // U_p (out x r)
      'blocks.0.attn.wq.sorsa_S': [2], // S_p (r)
      'blocks.0.attn.bias': [7],
      emb: [4, 3],
    };
    expect(Object.keys(record).sort()).toEqual(Object.keys(official).sort());
    for (const [key, shape] of Object.entries(official)) {
      expect(record[key].shape, key).toEqual(shape);
      expect(record[key].dtype, key).toBe('float32');
    }
    const A = await host(record['blocks.0.attn.wq.sorsa_A']);
    const B = await host(record['blocks.0.attn.wq.sorsa_B']);
    const S = await host(record['blocks.0.attn.wq.sorsa_S']);
    const Wr = await host(record['blocks.0.attn.wq.weight']);
    const ref = svdReference(w, out, inp);
    const sMax = ref.S[0];
    // S_p: the top-r singular values of W, descending.
    for (let k = 0; k < r; k++) expect(Math.abs(S[k] - ref.S[k]), `S[${k}]`).toBeLessThan(16 * Math.max(out, inp) * EPS * sMax);
    // A's rows are V_p's columns (right singular vectors), B's columns U_p's (left), up to a shared sign.
    const orth = 32 * Math.max(out, inp) * EPS;
    for (let k = 0; k < r; k++) {
      let av = 0;
      let bu = 0;
      for (let j = 0; j < inp; j++) av += A[k * inp + j] * ref.V[k][j];
      for (let i = 0; i < out; i++) bu += B[i * r + k] * ref.U[k][i];
      expect(Math.abs(Math.abs(av) - 1), `A row ${k} vs v_${k}`).toBeLessThan(orth);
      expect(Math.abs(av * bu - 1), `sign of u_${k} v_${k}ᵀ`).toBeLessThan(2 * orth);
    }
    // weight + sorsa_B diag(sorsa_S) sorsa_A is the original W, in float64 from the stored float32 values.
    const tol = 4 * (r + 2) * EPS * sMax;
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < inp; j++) {
        let p = Wr[i * inp + j];
        for (let k = 0; k < r; k++) p += B[i * r + k] * S[k] * A[k * inp + j];
        expect(Math.abs(p - w[i * inp + j]), `W[${i}][${j}]`).toBeLessThan(tol);
      }
    }
    expect(await host(record['blocks.0.attn.bias'])).toEqual(Array.from(Float32Array.from(await host(bias))));
    expect(await host(record.emb)).toEqual(await host(emb));
    c.tree.dispose([record, trainable, frozen, params]);
  });

  it('keys with the segments __proto__, constructor or prototype are refused, and Object.prototype stays clean', async () => {
    const bad = ['__proto__.isAdmin', 'constructor.prototype.polluted', 'layers.0.prototype', 'x.__proto__.sorsa_A'];
    for (const key of bad) {
      const bytes = safetensorsBytes([['ok', [1], [1]], [key, [1], [2]]]);
      const loaded = await c.loadSafetensors(bytes);
      const seg = key.split('.').find((s) => ['__proto__', 'constructor', 'prototype'].includes(s))!;
      expect(() => fromOfficialStateDict(loaded), key).toThrow(new RegExp(`^fromOfficialStateDict: the key "${key.replace(/\./g, '\\.')}" has the segment "${seg}"`));
      c.tree.dispose(Object.values(loaded));
    }
    // A whole adapter under such a path, as a file would hold it.
    const adapter = safetensorsBytes([
      ['__proto__.sorsa_A', [1, 2], [1, 0]],
      ['__proto__.sorsa_B', [2, 1], [1, 0]],
      ['__proto__.sorsa_S', [1], [1]],
      ['__proto__.weight', [2, 2], [0, 0, 0, 0]],
    ]);
    const loaded = await c.loadSafetensors(adapter);
    expect(() => fromOfficialStateDict(loaded)).toThrow(/^fromOfficialStateDict: the key "__proto__\.sorsa_A" has the segment "__proto__"/);
    c.tree.dispose(Object.values(loaded));
    const t = c.zeros([2, 2]);
    const a = { U: c.zeros([2, 1]), S: c.zeros([1]), Vt: c.zeros([1, 2]) };
    expect(() => toOfficialStateDict({ 'a.constructor': a }, { a: { constructor: t } })).toThrow(/^toOfficialStateDict: the key "a\.constructor" has the segment "constructor"/);
    const params = JSON.parse('{"__proto__":{}}') as Record<string, Record<string, c.Tensor>>;
    params.__proto__.w = t;
    await expect(adaptParams(params, { rank: 1, targets: ['__proto__.w'] })).rejects.toThrow(/the key "__proto__" at "__proto__" is not allowed/);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    c.tree.dispose([t, a]);
  });

  it('toString, valueOf and hasOwnProperty are ordinary names, as layer and tensor names', async () => {
    const bytes = safetensorsBytes([
      ['toString', [1], [1]],
      ['hasOwnProperty.valueOf', [1], [2]],
      ['layer.toString.sorsa_A', [1, 2], [0.6, 0.8]],
      ['layer.toString.sorsa_B', [2, 1], [1, 0]],
      ['layer.toString.sorsa_S', [1], [3]],
      ['layer.toString.weight', [2, 2], [4, 5, 6, 7]],
    ]);
    const loaded = await c.loadSafetensors(bytes);
    const back = fromOfficialStateDict(loaded);
    const f = back.frozen as Record<string, unknown>;
    const own = (o: unknown, k: string): c.Tensor => Object.getOwnPropertyDescriptor(o, k)!.value as c.Tensor;
    expect(Object.keys(f)).toEqual(['layer', 'toString', 'hasOwnProperty']);
    expect(await host(own(f, 'toString'))).toEqual([1]);
    expect(await host(own(own(f, 'hasOwnProperty'), 'valueOf'))).toEqual([2]);
    expect(await host(own(own(f, 'layer'), 'toString'))).toEqual([4, 5, 6, 7]);
    expect(Object.keys(back.trainable)).toEqual(['layer.toString']);
    const a = back.trainable['layer.toString'];
    expect(await host(a.S)).toEqual([3]);
    // And back: a frozen leaf named toString is written, not mistaken for an adapter path.
    const again = toOfficialStateDict(back.trainable, back.frozen);
    expect(Object.keys(again).sort()).toEqual(['hasOwnProperty.valueOf', 'layer.toString.sorsa_A', 'layer.toString.sorsa_B', 'layer.toString.sorsa_S', 'layer.toString.weight', 'toString']);
    expect(await host(again.toString as unknown as c.Tensor)).toEqual([1]);
    c.tree.dispose([Object.values(loaded), back, Object.values(again)]);
  });

  it('bad layouts give clear errors', () => {
    const t = (shape: number[]) => c.zeros(shape);
    expect(() => fromOfficialStateDict({ 'l.sorsa_A': t([2, 3]), 'l.sorsa_B': t([4, 2]), 'l.sorsa_S': t([2]) })).toThrow(/fromOfficialStateDict: "l.sorsa_A" has no matching "l.weight"/);
    expect(() => fromOfficialStateDict({ 'l.sorsa_A': t([2, 3]), 'l.sorsa_B': t([4, 3]), 'l.sorsa_S': t([2]), 'l.weight': t([4, 3]) })).toThrow(/shapes at "l" do not fit/);
    expect(() => fromOfficialStateDict({ 'l.sorsa_B': t([4, 2]) })).toThrow(/"l.sorsa_B" has no matching sorsa_A/);
    expect(() => toOfficialStateDict({ x: { A: t([1, 2]), B: t([2, 1]) } }, { x: t([2, 2]) })).toThrow(/not a SORSA adapter/);
    expect(() => toOfficialStateDict({ y: { U: t([2, 1]), S: t([1]), Vt: t([1, 2]) } }, { x: t([2, 2]) })).toThrow(/no residual tensor at "y"/);
  });

  it('drift: ΔΣ and ΔD as the paper defines them, against float64 SVDs', async () => {
    const [m, n] = [8, 5];
    const w0 = randomData(m * n, 11);
    const wt = Float32Array.from(w0, (v, i) => v + 0.05 * Math.sin(i));
    const a = svdReference(w0, m, n);
    const b = svdReference(wt, m, n);
    let dS = 0;
    let dots = 0;
    for (let i = 0; i < n; i++) {
      dS += Math.abs(b.S[i] - a.S[i]);
      dots += Math.abs(b.U[i].reduce((acc, v, k) => acc + v * a.U[i][k], 0)) + Math.abs(b.V[i].reduce((acc, v, k) => acc + v * a.V[i][k], 0));
    }
    const want = { deltaSigma: dS / n, deltaD: 1 - (0.5 * dots) / n };
    const W0 = c.tensor(w0, [m, n]);
    const Wt = c.tensor(wt, [m, n]);
    const got = await drift(W0, Wt);
    expect(Math.abs(got.deltaSigma - want.deltaSigma)).toBeLessThan(1e-5);
    expect(Math.abs(got.deltaD - want.deltaD)).toBeLessThan(1e-4);
    const same = await drift(W0, W0);
    expect(same.deltaSigma).toBe(0);
    expect(Math.abs(same.deltaD)).toBeLessThan(1e-5);
    const per = await driftParams({ layer: { w: W0 }, b: c.zeros([3]) }, { layer: { w: Wt }, b: c.ones([3]) });
    expect(Object.keys(per)).toEqual(['layer.w']);
    expect(Math.abs(per['layer.w'].deltaSigma - want.deltaSigma)).toBeLessThan(1e-5);
    await expect(drift(W0, c.zeros([3, 3]))).rejects.toThrow(/drift: W0 \[8,5\] and Wt \[3,3\] differ in shape/);
    c.tree.dispose([W0, Wt]);
  });
});
