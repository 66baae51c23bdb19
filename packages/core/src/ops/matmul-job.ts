/**
 * matmul inside a core job (`internal.launchJob`), for iterations that read values back between
 * products (linalg's randomized SVD): the same kernels as the `matmul` op, run through the job's
 * context on payloads instead of queued on tensors.
 * @module
 */
import type { JobContext } from '../backend/engine.js';
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

/**
 * C = A @ B through `ctx` on the current backend, the kernels the `matmul` op would run (wasm: B's
 * packing when large or transposed, the 4 x 16-tiled SIMD kernel and its row-major unpack; elsewhere
 * one thread a cell). The caller frees the result with `ctx.free` when done.
 *
 * @example
 * ```ts
 * // inside internal.launchJob('op', [a, b], [[m * n]], async (ctx, [pa, pb]) => ...)
 * const c = await matmulInJob(ctx, pa, pb, { M: m, N: n, K: k, sa0: k, sa1: 1, sb0: n, sb1: 1 });
 * ```
 */
export async function matmulInJob(ctx: JobContext, a: Payload, b: Payload, d: JobMatmulDims): Promise<Payload> {
  const { M, N, K } = d;
  const scalars = [M, N, K, d.sa0, d.sa1, d.sb0, d.sb1, 0, 0];
  if (engine().name !== 'wasm') return ctx.run(MATMUL, M * N, [a, b], scalars);
  const plan = wasmMatmulPlan({ ...d, bsa: 0, bsb: 0, nb: 1 });
  const bp = plan.pack ? await ctx.run(plan.pack.src, plan.pack.dims, [b], []) : b;
  const tiles = await ctx.run(plan.main.src, plan.main.dims, [a, bp], []);
  if (bp !== b) ctx.free(bp);
  if (!plan.unpack) return tiles;
  const out = await ctx.run(plan.unpack.src, plan.unpack.dims, [tiles], []);
  ctx.free(tiles);
  return out;
}
