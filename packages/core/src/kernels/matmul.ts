import type { KernelSource } from '../backend/engine.js';
import { divmod } from './index-math.js';

/**
 * Batched matrix products C[z] = A[z] @ B[z]. Operands are read through strides, so transposed and
 * batch-broadcast operands need no copy: A(z, i, k) is at `z * bsa + i * sa0 + k * sa1` and
 * B(z, k, j) at `z * bsb + k * sb0 + j * sb1`.
 */

/**
 * One thread per output cell of flat row-major `[batch, M, N]`: the portable kernel (cpu, webgpu,
 * webgl). Scalars: M, N, K, sa0, sa1, sb0, sb1, bsa, bsb.
 */
export const MATMUL: KernelSource = {
  key: 'matmul:cell',
  arrays: ['a', 'b'],
  scalars: ['M', 'N', 'K', 'sa0', 'sa1', 'sb0', 'sb1', 'bsa', 'bsb'],
  body: `const i = this.thread.x;
${divmod('bt', 'r0', 'i', 'M * N')}
${divmod('row', 'col', 'r0', 'N')}
const ao = bt * bsa + row * sa0;
const bo = bt * bsb + col * sb1;
let acc = 0;
for (let k = 0; k < K; k++) { acc += a[ao + k * sa1] * b[bo + k * sb0]; }
return acc;`,
};

/** k-loop unroll of the wasm kernel: 8 measured best at 512 (4 is within noise). */
const UNROLL = 8;

/**
 * The wasm kernel: each thread computes a 4x4 block's column, 4 rows of C at column `thread.x`
 * (returned as `Array(4)`), over gpu.js output `[Np, Mq, batch]` with Np = N rounded up to 4 and
 * Mq = ceil(M / 4). Why this shape (measured, gpu.js webasm): webasm runs 4 consecutive `thread.x`
 * cells as one f32x4 SIMD quad; a read indexed by `thread.x` becomes a 4-lane gather, any other read
 * one scalar load shared by the lanes. So B is gathered once per k and the four A values are plain
 * loads: a 4x4 tile costs 5 loads per k, against 2 per single-cell product. Index math is kept in
 * i32 with `| 0` (gpu.js otherwise does it in f32 and converts on every read); A's row pointers are
 * clamped to M - 1 since scalar reads are not bounds-checked.
 *
 * The result buffer is cell-major, 4 values per cell: `d[((z * Mq + q) * Np + j) * 4 + r]` holds
 * C[z, 4q + r, j]; UNPACK_R4 turns it into row-major C. Scalars: M, N, K, sa0, sa1, sb0, sb1, bsa, bsb.
 */
export const MATMUL_R4: KernelSource = {
  key: `matmul:r4u${UNROLL}`,
  arrays: ['a', 'b'],
  scalars: ['M', 'N', 'K', 'sa0', 'sa1', 'sb0', 'sb1', 'bsa', 'bsb'],
  threaded: true,
  components: 4,
  body: r4Body(UNROLL),
};

function r4Body(u: number): string {
  const lines = [
    'const i0 = this.thread.y * 4;',
    'const aBase = this.thread.z * bsa;',
    'let p0 = aBase + i0 * sa0;',
    'let p1 = aBase + (i0 + 1 < M ? i0 + 1 : M - 1) * sa0;',
    'let p2 = aBase + (i0 + 2 < M ? i0 + 2 : M - 1) * sa0;',
    'let p3 = aBase + (i0 + 3 < M ? i0 + 3 : M - 1) * sa0;',
    'let pb = this.thread.z * bsb;',
    'let s0 = 0.0;',
    'let s1 = 0.0;',
    'let s2 = 0.0;',
    'let s3 = 0.0;',
    `const KU = Math.floor(K / ${u});`,
    'for (let kk = 0; kk < KU; kk++) {',
  ];
  for (let t = 0; t < u; t++) lines.push(`  const v${t} = b[(pb | 0)${t ? ` + sb0 * ${t}` : ''} + this.thread.x * sb1];`);
  for (let r = 0; r < 4; r++) {
    const terms = Array.from({ length: u }, (_, t) => `a[(p${r} | 0)${t ? ` + sa1 * ${t}` : ''}] * v${t}`);
    lines.push(`  s${r} += ${terms.join(' + ')};`);
  }
  for (let r = 0; r < 4; r++) lines.push(`  p${r} += sa1 * ${u};`);
  lines.push(`  pb += sb0 * ${u};`, '}');
  lines.push(
    `for (let k = KU * ${u}; k < K; k++) {`,
    '  const bv = b[(pb | 0) + this.thread.x * sb1];',
    ...[0, 1, 2, 3].map((r) => `  s${r} += a[(p${r} | 0)] * bv;`),
    ...[0, 1, 2, 3].map((r) => `  p${r} += sa1;`),
    '  pb += sb0;',
    '}',
    'return [s0, s1, s2, s3];',
  );
  return lines.join('\n');
}

/**
 * MATMUL_R4 with its sizes and strides written into the source as literals. webasm compiles one
 * module per shape anyway, so this costs no extra compiles, and the constant index arithmetic is
 * folded by V8 (measured ~8-10% faster at 512). Values in MATMUL_R4's scalar order.
 */
export function matmulR4For(values: readonly number[]): KernelSource {
  let body = MATMUL_R4.body;
  MATMUL_R4.scalars.forEach((name, k) => {
    body = body.replace(new RegExp(`\\b${name}\\b`, 'g'), String(values[k]));
  });
  return { ...MATMUL_R4, key: `${MATMUL_R4.key}:${values.join(',')}`, scalars: [], body };
}

/** Row-major `[batch, M, N]` from MATMUL_R4's cell-major buffer. Scalars: M, N, Mq, Np. */
export const UNPACK_R4: KernelSource = {
  key: 'matmul:unpack4',
  arrays: ['d'],
  scalars: ['M', 'N', 'Mq', 'Np'],
  // A gather of M·N cells: worker threads pay off from 4096 cells (2.1 -> 1.5 ms at 512x512).
  threaded: true,
  body: `const i = this.thread.x;
${divmod('z', 'rest', 'i', 'M * N')}
${divmod('row', 'col', 'rest', 'N')}
${divmod('q', 'r', 'row', '4')}
return d[((z * Mq + q) * Np + col) * 4 + r];`,
};
