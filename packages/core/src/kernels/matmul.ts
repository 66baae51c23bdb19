import type { KernelSource } from '../backend/engine.js';
import { divmod } from './index-math.js';
import { bakeScalars } from './bake.js';

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
 * cells as one f32x4 SIMD quad; a read indexed by `thread.x` becomes a 4-lane gather (index vector,
 * clamp, 4 lane extracts, 4 scalar loads, 3 lane inserts), any other read one scalar load shared by
 * the lanes. So B is gathered once per k and the four A values are plain loads: a 4x4 tile costs 5
 * loads per k, against 2 per single-cell product. A tile can hold no more rows: `Array(4)` is the
 * widest value a cell can return, and quads cannot share loads.
 *
 * The pointers `p0..p3`, `pb` are locals initialized from integer expressions, so they are i32
 * (`patches/gpu.js+2.24.1.patch`; upstream gpu.js made every such local float32, and this kernel
 * then converted each pointer with `| 0` at every read, which is kept: a no-op on an i32, and the
 * same code stays correct on a gpu.js without the patch below 2^24). The rest of each index is
 * integer literals or `this.thread.*` (i32). A's row pointers are clamped to M - 1 since scalar
 * reads are not bounds-checked.
 *
 * Measured at 512 (kernel alone, same process, median of per-round ratios): the B gather is ~40% of
 * the kernel (dropping it: 0.61x time), and every other way to build a lane-varying B vector is
 * slower: output `[4, N/4, M/4]` so the column block is uniform, then 4 scalar B loads combined by
 * one-hot lane masks (1.21x), by a select chain on the lane (1.26x), or an `Array(4)` local indexed
 * by `thread.x` (1.28x). Also no gain: `thread.x` instead of `thread.x * 1` (V8 folds it), summing
 * the 8 products as a tree, indexing from the loop counter instead of pointers (1.10-1.15x).
 *
 * The result buffer is cell-major, 4 values per cell: `d[((z * Mq + q) * Np + j) * 4 + r]` holds
 * C[z, 4q + r, j]; `unpackRowsFor` (or UNPACK_R4) turns it into row-major C. Scalars: M, N, K, sa0,
 * sa1, sb0, sb1, bsa, bsb.
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
    divmod('KU', 'KR', 'K', String(u)),
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
  // Baking runs a regular expression per scalar over the body: cached by the values, as a training
  // step calls the same few shapes again and again (~0.2 ms a call, ~6 ms of a small GPT step).
  const key = values.join(',');
  let src = baked.get(key);
  if (!src) {
    if (baked.size >= BAKED_MAX) baked.clear();
    src = bakeScalars(MATMUL_R4, Object.fromEntries(MATMUL_R4.scalars.map((name, k) => [name, values[k]])));
    baked.set(key, src);
  }
  return src;
}

/** Baked matmul sources by their scalar values (see matmulR4For); cleared when it reaches BAKED_MAX. */
const baked = new Map<string, KernelSource>();
const BAKED_MAX = 1024;

/**
 * Row-major `[batch, M, N]` from MATMUL_R4's cell-major buffer, for N a multiple of 4 (then Np = N).
 * Run over gpu.js output `[N / 4, M, batch]`, each cell returns `Array(4)`: the 4 consecutive columns
 * 4x..4x+3 of row y, so its flat cell-major result already is row-major C, and every index is i32
 * (`thread.y >> 2`, `thread.y & 3`, `thread.x << 4`) with no division. Sizes are literals. Not
 * threaded: it is a copy, and the worker dispatch (~170 us) costs more than it saves. Measured
 * against UNPACK_R4 (threaded, flat index with three divmods), same process: 256: 0.96 -> 0.34 ms,
 * 512: 2.6 -> 1.2 ms, 1024: 7.6 -> 5.0 ms.
 */
export function unpackRowsFor(Mq: number, Np: number): KernelSource {
  const base = `((this.thread.z * ${Mq} + (this.thread.y >> 2)) * ${Np}) * 4 + (this.thread.y & 3)`;
  const reads = [0, 1, 2, 3].map((r) => `d[${base} + ${4 * r} + (this.thread.x << 4)]`);
  return { key: `matmul:unpack4rows:${Mq},${Np}`, arrays: ['d'], scalars: [], components: 4, body: `return [${reads.join(', ')}];` };
}

/**
 * Row-major `[batch, M, N]` from MATMUL_R4's cell-major buffer, for any N (unpackRowsFor needs N a
 * multiple of 4). Launched on the grid `[N, M, batch]` (flat result), so the wasm driver gives each
 * cell its column, row and batch and the kernel divides nothing: with a flat index and three
 * divmods it was ~9.6 ms for attention's [16, 4, 85, 85] scores, a quarter of their matmul.
 * Scalars: Mq, Np.
 */
export const UNPACK_R4: KernelSource = {
  key: 'matmul:unpack4grid',
  arrays: ['d'],
  scalars: ['Mq', 'Np'],
  // A gather of M·N cells: worker threads pay off from 4096 cells (2.1 -> 1.5 ms at 512x512).
  threaded: true,
  flat: true,
  body: `const col = this.thread.x;
const row = this.thread.y;
return d[((this.thread.z * Mq + (row >> 2)) * Np + col) * 4 + (row & 3)];`,
};
