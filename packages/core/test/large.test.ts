/**
 * Tensors past 2^24 elements, where float32 no longer holds every index: a 32000 x 768 embedding
 * table (24.6M elements, a Llama-style vocabulary) read through embedding rows (the last ones
 * included), a slice of its last row and a tied-head matmul x @ tableᵀ, and a safetensors file of a
 * tensor over 2^24 elements read back. References are float64 host loops over the same values.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32 } from './reference.js';

const V = 32000;
const D = 768;

/** Entry (r, k) of the table: distinct per row and column, exact in float32. */
const entry = (r: number, k: number): number => ((r * 7 + k * 3) % 1021) / 1024 - 0.5;

function tableValues(): Float32Array {
  const v = new Float32Array(V * D);
  for (let r = 0; r < V; r++) for (let k = 0; k < D; k++) v[r * D + k] = entry(r, k);
  return v;
}

/** A little-endian safetensors file holding one F32 tensor `w` of `shape` with values `values`. */
function safetensorsBytes(shape: number[], values: Float32Array): Uint8Array {
  let header = JSON.stringify({ w: { dtype: 'F32', shape, data_offsets: [0, values.length * 4] } });
  while ((8 + header.length) % 8 !== 0) header += ' ';
  const out = new Uint8Array(8 + header.length + values.length * 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(header.length), true);
  out.set(new TextEncoder().encode(header), 8);
  new Uint8Array(out.buffer, 8 + header.length).set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
  return out;
}

const host = tableValues();

forEachBackend('large tensors', (name) => {
  if (name === 'webgl') {
    // gpu.js's GL kernels index in float32: webgl refuses such tensors where they are made, and
    // never reads them wrong later.
    it('refuses a tensor over 2^24 - 1 elements at creation and at load, naming the limit', async () => {
      expect(() => c.tensor(host, [V, D])).toThrow(/tensor: a tensor of shape \[32000,768\] has 24576000 elements, more than the 16777215 a tensor may hold on the webgl backend/);
      const n = 4097 * 4097;
      const bytes = safetensorsBytes([4097, 4097], new Float32Array(n));
      await expect(c.loadSafetensors(bytes)).rejects.toThrow(/loadSafetensors: .*tensor "w" \(shape \[4097,4097\]\) has 16785409 elements, more than the 16777215 a tensor may hold on the webgl backend \(gpu.js's webgl kernels index in float32\)/);
      expect(() => c.zeros([4097, 4097])).toThrow(/16777215/);
      const ok = c.tensor(new Float32Array(2 ** 24 - 1));
      expect(ok.size).toBe(2 ** 24 - 1);
      ok.dispose();
    });
    return;
  }
  if (name === 'webgpu') {
    it("refuses, where it is made, a tensor larger than the device's storage-buffer binding", () => {
      const max = c.maxElements('webgpu');
      expect(max).toBeGreaterThanOrEqual(2 ** 25 - 1); // WebGPU's default binding is 128 MiB
      if (max >= 2 ** 31 - 1) return; // a device that binds 8 GiB: nothing to refuse below int32
      const rows = Math.floor(max / 1024) + 1;
      expect(() => c.zeros([rows, 1024])).toThrow(/maxStorageBufferBindingSize/);
      expect(() => c.tensor(new Float32Array(rows * 1024), [rows, 1024])).toThrow(new RegExp(`tensor: a tensor of shape \\[${rows},1024\\] has ${rows * 1024} elements, more than the ${max}`));
    });
  }
  describe(`a ${V} x ${D} table (${V * D} elements, over 2^24)`, () => {
    it('embedding rows, the last ones included, read back exactly', async () => {
      const table = c.tensor(host, [V, D]);
      const rows = [0, 1, 21845, 21846, V - 2, V - 1, -1];
      const ids = c.tensor(rows, undefined, 'int32');
      const got = await c.nn.embedding(table, ids).data();
      let wrong = 0;
      rows.forEach((r0, j) => {
        const r = r0 < 0 ? r0 + V : r0;
        for (let k = 0; k < D; k++) if (got[j * D + k] !== entry(r, k)) wrong++;
      });
      expect(wrong).toBe(0);
      c.tree.dispose([table, ids]);
    });

    it('a slice of the last row reads back exactly', async () => {
      const table = c.tensor(host, [V, D]);
      const s = c.slice(table, [V - 1, 700], [1, 68]);
      const got = Array.from(await s.data());
      expect(got).toEqual(Array.from({ length: 68 }, (_, k) => entry(V - 1, 700 + k)));
      c.tree.dispose([table, s]);
    });

    it('a tied head x @ tableᵀ matches float64 for every vocabulary entry', async () => {
      const table = c.tensor(host, [V, D]);
      const n = 3;
      const xv = Float32Array.from({ length: n * D }, (_, i) => Math.fround(Math.sin(i * 0.37)));
      const x = c.tensor(xv, [n, D]);
      const logits = c.matmul(x, table, { transposeB: true });
      expect(logits.shape).toEqual([n, V]);
      const got = await logits.data();
      // A float32 dot of D terms is within D eps of the sum of the terms' magnitudes.
      let worst = 0;
      for (let i = 0; i < n; i++) {
        for (let r = 0; r < V; r++) {
          let want = 0;
          let mag = 0;
          for (let k = 0; k < D; k++) {
            const t = xv[i * D + k] * host[r * D + k];
            want += t;
            mag += Math.abs(t);
          }
          worst = Math.max(worst, Math.abs(got[i * V + r] - want) / (D * EPS32 * mag));
        }
      }
      expect(worst).toBeLessThan(1);
      c.tree.dispose([table, x, logits]);
    });
  });

  it('loadSafetensors of a tensor over 2^24 elements reads back right', async () => {
    const shape = [4097, 4097];
    const n = 4097 * 4097;
    const values = Float32Array.from({ length: n }, (_, i) => (i % 4099) - 2049);
    const { w } = await c.loadSafetensors(safetensorsBytes(shape, values));
    expect(w.shape).toEqual(shape);
    const tail = c.slice(w, [4096, 0], [1, 4097]);
    const got = await tail.data();
    let wrong = 0;
    for (let k = 0; k < 4097; k++) if (got[k] !== values[4096 * 4097 + k]) wrong++;
    expect(wrong).toBe(0);
    const col = c.take(w, c.tensor([4096], undefined, 'int32'), 1);
    const gotCol = await col.data();
    let wrongCol = 0;
    for (let r = 0; r < 4097; r++) if (gotCol[r] !== values[r * 4097 + 4096]) wrongCol++;
    expect(wrongCol).toBe(0);
    c.tree.dispose([w, tail, col] as Tensor[]);
  });
});
