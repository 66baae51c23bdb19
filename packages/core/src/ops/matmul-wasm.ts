/**
 * The wasm matmul as tensor launches: B packed into column panels when the plan asks, the 4 x 16
 * tiled SIMD product, and the unpack of its tiles into row-major C where the tiles are not whole
 * (kernels/matmul.ts).
 * @module
 */
import { wasmMatmulPlan, type WasmMatmulDims } from '../kernels/matmul.js';
import { engine } from '../backend/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { launch, launchDims } from './operand.js';

/**
 * Whether `b`'s packing for the product `d` is cached or will be kept at its next use (see
 * Storage.wouldKeep; `note` records this use when it is not). matmul's forward asks before it
 * swaps a small-M product: a cached pack makes the unswapped product read B once.
 *
 * @example
 * ```ts
 * // x [1, 768] @ W [3072, 768]ᵀ, a token through a linear layer
 * const d = { M: 1, N: 3072, K: 768, sa0: 768, sa1: 1, sb0: 1, sb1: 768, bsa: 0, bsb: 0, nb: 1 };
 * packWanted(W, d, true); // false at the first token (noted), true from the second
 * ```
 */
export function packWanted(b: Tensor, d: WasmMatmulDims, note: boolean): boolean {
  const step = wasmMatmulPlan(d).pack;
  if (!step) return false;
  return b.use('matmul').wouldKeep(step.src.key, note);
}

/**
 * C = A @ B on wasm, of shape `outShape` (row-major `[nb, M, N]` in its elements), with A and B read
 * through the strides of `d` (see WasmMatmulDims). Called by matmul's forward on the wasm backend.
 *
 * @example
 * ```ts
 * // a: [8, 5], b: [5, 6], both row-major
 * const c = wasmMatmul(a, b, { M: 8, N: 6, K: 5, sa0: 5, sa1: 1, sb0: 6, sb1: 1, bsa: 0, bsb: 0, nb: 1 }, [8, 6]);
 * ```
 */
export function wasmMatmul(a: Tensor, b: Tensor, d: WasmMatmulDims, outShape: readonly number[]): Tensor {
  const plan = wasmMatmulPlan(d);
  // B's panels, kept from the second packing on (a weight's: packed once, then read from the cache).
  const bp = plan.pack ? launchDims('matmul', plan.pack.src, plan.pack.dims, [b], [], true) : b;
  if (!plan.unpack) {
    // Whole tiles: the tiled product stores row-major C itself.
    const c = new Tensor(engine().run(plan.main.src, plan.main.dims, [a.use('matmul'), bp.use('matmul')], []), outShape, 'float32');
    if (bp !== b) bp.dispose();
    return c;
  }
  const tiles = launchDims('matmul', plan.main.src, plan.main.dims, [a, bp], []);
  if (bp !== b) bp.dispose();
  let out: Tensor;
  if (plan.unpack.flat) {
    out = launch('matmul', plan.unpack.src, outShape, 'float32', [tiles], [], plan.unpack.dims);
  } else {
    // Array(4) cells of 4 consecutive columns: the unpack's own cell-major buffer is row-major C.
    out = new Tensor(engine().run(plan.unpack.src, plan.unpack.dims, [tiles.use('matmul')], []), outShape, 'float32');
  }
  tiles.dispose();
  return out;
}
