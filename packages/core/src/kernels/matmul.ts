import type { KernelSource } from '../backend/engine.js';

/**
 * Batched matrix product C[b] = A[b] @ B[b] over flat row-major output `[batch, M, N]`. Operands are
 * read through strides, so transposed and batch-broadcast operands need no copy: A(b, i, k) is at
 * `b * bsa + i * sa0 + k * sa1`, B(b, k, j) at `b * bsb + k * sb0 + j * sb1`.
 *
 * Scalars: M, N, K, sa0, sa1, sb0, sb1, bsa, bsb.
 */
export const MATMUL: KernelSource = {
  key: 'matmul:naive',
  arrays: ['a', 'b'],
  scalars: ['M', 'N', 'K', 'sa0', 'sa1', 'sb0', 'sb1', 'bsa', 'bsb'],
  threaded: true,
  body: `const i = this.thread.x;
const mn = M * N;
const bt = Math.floor(i / mn);
const r0 = i - bt * mn;
const row = Math.floor(r0 / N);
const col = r0 - row * N;
const ao = bt * bsa + row * sa0;
const bo = bt * bsb + col * sb1;
let acc = 0;
for (let k = 0; k < K; k++) { acc += a[ao + k * sa1] * b[bo + k * sb0]; }
return acc;`,
};
