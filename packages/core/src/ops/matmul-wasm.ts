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
  const bp = plan.pack ? launchDims('matmul', plan.pack.src, plan.pack.dims, [b], []) : b;
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
