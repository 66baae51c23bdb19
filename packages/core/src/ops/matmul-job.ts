/**
 * matmul inside a core job (`internal.launchJob`), for iterations that read values back between
 * products (linalg's randomized SVD): the same kernels as the `matmul` op, run through the job's
 * context on payloads instead of queued on tensors.
 * @module
 */
import type { JobContext, KernelSource } from '../backend/engine.js';
import type { Payload } from '../backend/types.js';
import { engine } from '../backend/registry.js';
import { MATMUL, wasmMatmulPlan, type WasmMatmulDims } from '../kernels/matmul.js';

/**
 * The sizes and strides of one product C = A @ B in a job: C is row-major `[M, N]`, A(i, k) is read
 * at `i * sa0 + k * sa1` and B(k, j) at `k * sb0 + j * sb1` (so a transposed operand is a choice of
 * strides, with no copy). The wasm kernel's dims without a batch.
 */
export type JobMatmulDims = Omit<WasmMatmulDims, 'bsa' | 'bsb' | 'nb'>;

/**
 * Strides of a row-major `[rows, cols]` operand read as is (`t` false) or transposed (`t` true), as
 * `[s0, s1]` for JobMatmulDims.
 *
 * @example
 * ```ts
 * const [sa0, sa1] = rowMajor(4, false); // [4, 1]
 * ```
 */
export function rowMajor(cols: number, t: boolean): [number, number] {
  return t ? [1, cols] : [cols, 1];
}

/** c0 − d, elementwise: the subtraction of matmulInJob's `c0` where the tile kernel cannot do it. */
const MINUS: KernelSource = { key: 'matmul:minus', arrays: ['c', 'd'], scalars: [], body: 'return c[this.thread.x] - d[this.thread.x];' };

/**
 * C = A @ B through `ctx` on the current backend, the kernels the `matmul` op would run (wasm: B's
 * packing when large or transposed, the 4 x 16-tiled SIMD kernel and its row-major unpack; elsewhere
 * one thread a cell). With `c0` (row-major `[M, N]`, not freed) it returns c0 − A @ B instead: on wasm
 * with whole tiles (M a multiple of 4, N of 16) the tile kernel subtracts as it stores, elsewhere a
 * second kernel does. The caller frees the result with `ctx.free` when done.
 *
 * @example
 * ```ts
 * // inside internal.launchJob('op', [a, b], [[m * n]], async (ctx, [pa, pb]) => ...)
 * const c = await matmulInJob(ctx, pa, pb, { M: m, N: n, K: k, sa0: k, sa1: 1, sb0: n, sb1: 1 });
 * ```
 */
export async function matmulInJob(ctx: JobContext, a: Payload, b: Payload, d: JobMatmulDims, c0?: Payload): Promise<Payload> {
  const { M, N, K } = d;
  const scalars = [M, N, K, d.sa0, d.sa1, d.sb0, d.sb1, 0, 0];
  const minus = c0 !== undefined && engine().name === 'wasm' && M % 4 === 0 && N % 16 === 0;
  let out: Payload;
  if (engine().name !== 'wasm') {
    out = await ctx.run(MATMUL, M * N, [a, b], scalars);
  } else {
    const plan = wasmMatmulPlan({ ...d, bsa: 0, bsb: 0, nb: 1, minus });
    const bp = plan.pack ? await ctx.run(plan.pack.src, plan.pack.dims, [b], []) : b;
    out = await ctx.run(plan.main.src, plan.main.dims, minus && c0 ? [a, bp, c0] : [a, bp], []);
    if (bp !== b) ctx.free(bp);
    if (plan.unpack) {
      const tiles = out;
      out = await ctx.run(plan.unpack.src, plan.unpack.dims, [tiles], []);
      ctx.free(tiles);
    }
  }
  if (c0 === undefined || minus) return out;
  const diff = await ctx.run(MINUS, M * N, [c0, out], []);
  ctx.free(out);
  return diff;
}
