import { expect, it } from 'vitest';
import { init } from '@sorsajs/core';
import { launch } from '../src/ops/operand.js';

const R = [13, 15, 26, 6, 17, 29, 16, 24];
function tfRef(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0, x1 = (c1 + ks[1]) >>> 0;
  for (let i = 0; i < 20; i++) {
    x0 = (x0 + x1) >>> 0;
    x1 = ((x1 << R[i % 8]) | (x1 >>> (32 - R[i % 8]))) >>> 0;
    x1 = (x1 ^ x0) >>> 0;
    if (i % 4 === 3) { const s = (i + 1) / 4; x0 = (x0 + ks[s % 3]) >>> 0; x1 = (x1 + ks[(s + 1) % 3] + s) >>> 0; }
  }
  return [x0, x1];
}
function body(): string {
  const L: string[] = [];
  const int = (n: string, e: string) => L.push(`let ${n} = 0;`, `${n}++;`, `${n} = ${e};`);
  int('i', 'this.thread.x');
  int('c1', '(i >> 1) | 0');
  int('ks2', 'k0 ^ k1 ^ 466688986');
  int('x0', 'k0 | 0');
  int('x1', '(c1 + k1) | 0');
  const ks = ['k0', 'k1', 'ks2'];
  for (let r = 0; r < 20; r++) {
    const rot = R[r % 8];
    L.push('x0 = (x0 + x1) | 0;');
    L.push(`x1 = (x1 << ${rot}) | (x1 >>> ${32 - rot});`);
    L.push('x1 = x1 ^ x0;');
    if (r % 4 === 3) { const s = (r + 1) / 4; L.push(`x0 = (x0 + ${ks[s % 3]}) | 0;`); L.push(`x1 = (x1 + ${ks[(s + 1) % 3]} + ${s}) | 0;`); }
  }
  int('w', 'x0 ^ x1');
  L.push('if ((i & 1) === 0) { return (w >>> 16) & 65535; }');
  L.push('return w & 65535;');
  return L.join('\n');
}
const SRC = { key: 'probe:tf', arrays: [], scalars: ['k0', 'k1'], body: body() };

for (const b of ['cpu', 'wasm', 'webgpu'] as const) {
  it(`threefry ${b}`, async () => {
    await init({ backend: b });
    const n = 5000;
    const k0 = 0x12345678 | 0, k1 = 0xdeadbeef | 0;
    const t = launch('probe', SRC, [2 * n], 'float32', [], [k0, k1]);
    const d = await t.data();
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const [a, c] = tfRef(k0, k1, 0, i);
      const w = (a ^ c) >>> 0;
      if (d[2 * i] !== (w >>> 16) || d[2 * i + 1] !== (w & 65535)) { if (bad < 3) console.log(b, i, d[2*i], d[2*i+1], w >>> 16, w & 65535); bad++; }
    }
    expect(bad).toBe(0);
  });
}
