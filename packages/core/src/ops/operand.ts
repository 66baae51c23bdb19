import type { KernelSource } from '../backend/engine.js';
import { engine } from '../backend/registry.js';
import { checkElements } from '../backend/limits.js';
import { Storage } from '../backend/storage.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { checkTensor } from '../tensor/checks.js';
import { checkLaunch, op as recordOp, untracked } from '../autodiff/tape.js';
import { mapKernel } from '../kernels/map.js';

/** A tensor, or a JS number that takes the dtype of the tensor it meets. */
export type Operand = Tensor | number;

/** A host constant as a rank-0 tensor. */
export function constant(value: number, dtype: DType): Tensor {
  return new Tensor(Storage.ready(engine(), 1, new Float32Array([value])), [], dtype);
}

/**
 * Turns numbers into rank-0 tensors of the dtype of the first tensor operand, and checks that all
 * tensor operands share one dtype. Returns the tensors and which of them were made here (to dispose).
 */
export function operands(op: string, xs: readonly Operand[]): { tensors: Tensor[]; made: Tensor[]; dtype: DType } {
  const first = xs.find((x) => x instanceof Tensor) as Tensor | undefined;
  const dtype: DType = first ? first.dtype : 'float32';
  // Check every operand before making any constant, so a throw leaves nothing behind.
  xs.forEach((x, k) => {
    if (typeof x === 'number') {
      if (dtype === 'int32' && !Number.isInteger(x)) throw new Error(`${op}: number ${x} cannot combine with an int32 tensor (not an integer)`);
    } else {
      const t = checkTensor(op, x, `#${k}`);
      if (t.dtype !== dtype) throw new Error(`${op}: dtype mismatch: ${dtype} and ${t.dtype} (cast one with cast())`);
    }
  });
  const made: Tensor[] = [];
  const tensors = xs.map((x) => {
    if (!(typeof x === 'number')) return x;
    const c = constant(x, dtype);
    made.push(c);
    return c;
  });
  return { tensors, made, dtype };
}

/**
 * The storages of kernel inputs, checked live and on the current backend (`op` names the caller).
 * Shared by every way of launching kernels over tensors.
 */
export function storagesOf(op: string, inputs: readonly Tensor[]): Storage[] {
  const eng = engine();
  return inputs.map((t) => {
    const s = t.use(op);
    if (s.engine !== eng) throw new Error(`${op}: a tensor of shape [${t.shape.join(',')}] lives on backend ${s.engine.name}, but ops now run on ${eng.name} (make it again after init)`);
    return s;
  });
}

/**
 * Runs a kernel over tensor inputs and wraps its output as a tensor (over a grid of `dims` when given,
 * which must hold exactly the output's cells, row-major). Under a gradient, a float32
 * launch over a tensor being differentiated must run inside a recorded op or `untracked`
 * (autodiff/tape.ts `checkLaunch`): otherwise it throws rather than cut the gradient.
 */
export function launch(op: string, src: KernelSource, shape: readonly number[], dtype: DType, inputs: readonly Tensor[], scalars: readonly number[], dims?: readonly number[]): Tensor {
  const eng = engine();
  const storages = storagesOf(op, inputs);
  checkLaunch(op, inputs, dtype);
  const size = shape.reduce((a, b) => a * b, 1);
  checkElements(op, size, `output of shape [${shape.join(',')}]`);
  if (dims && dims.reduce((a, b) => a * b, 1) !== size) throw new Error(`internal: ${op}: grid [${dims.join(',')}] does not cover the output [${shape.join(',')}]`);
  return new Tensor(eng.run(src, dims ?? size, storages, scalars), shape, dtype);
}

/**
 * wasm only: runs a kernel over `cells` cells whose result is several float32 arrays one after
 * another, of `shapes` (their sizes add up to the result's), returning them as tensors that share
 * the kernel's one result (`Engine.runParts`): with `components` and a `store` (Adam's moments and
 * parameter, value c of cell i at `c · n + i`), or one value a cell (each cell computes an element
 * of one of the arrays).
 *
 * @example
 * ```ts
 * const [m, v, p] = launchParts('adam', adamLeafKernel(terms, false, true, n), n, [shape, shape, shape], inputs, scalars);
 * ```
 */
export function launchParts(op: string, src: KernelSource, cells: number, shapes: readonly (readonly number[])[], inputs: readonly Tensor[], scalars: readonly number[]): Tensor[] {
  const eng = engine();
  const storages = storagesOf(op, inputs);
  checkLaunch(op, inputs, 'float32');
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  checkElements(op, cells * (src.components ?? 1), `output of ${shapes.length} parts`);
  return eng.runParts(src, cells, storages, scalars, sizes).map((s, i) => new Tensor(s, shapes[i], 'float32'));
}

/** Checks a dtype; `op` names the caller. */
export function requireFloat(op: string, x: Tensor): void {
  if (x.dtype !== 'float32') throw new Error(`${op}: expects a float32 tensor, got ${x.dtype} (cast with cast(x, 'float32'))`);
}

/**
 * Runs a kernel with gpu.js output dims `[x, y, z]` (and possibly several values per cell), returning
 * its raw buffer as a flat float32 tensor for a follow-up kernel to lay out. With `derived`, the
 * result is a form of its one input alone and is kept for reuse from its second computation on
 * (`Storage.derive`, keyed by the kernel: the wasm matmul's packed panels of a weight).
 */
export function launchDims(op: string, src: KernelSource, dims: readonly number[], inputs: readonly Tensor[], scalars: readonly number[], derived = false): Tensor {
  const eng = engine();
  const storages = storagesOf(op, inputs);
  checkLaunch(op, inputs);
  const size = dims.reduce((a, b) => a * b, 1) * (src.components ?? 1);
  checkElements(op, size, 'an intermediate result');
  const run = (): Storage => eng.run(src, dims, storages, scalars);
  // A form derived from its one input alone (keyed by the kernel): kept for reuse (Storage.derive).
  return new Tensor(derived ? storages[0].derive(src.key, run) : run(), [size], 'float32');
}

/**
 * Copies `x` into `outShape`, reading element (c_0..c_r) at `offset + sum c_j * strides[j]`: the
 * forward of transpose, slice, broadcastTo and the one-tensor concat.
 */
export function stridedCopy(op: string, x: Tensor, outShape: readonly number[], strides: readonly number[], offset = 0): Tensor {
  const { src, scalars, dims } = mapKernel('copy', 'v0', outShape, [strides], [offset], engine().name === 'wasm');
  return launch(op, src, outShape, x.dtype, [x], scalars, dims);
}

/** Records a one-input shape op (float32 only: int32 tensors carry no gradient). */
export function shapeOp(x: Tensor, forward: () => Tensor, vjp: (g: Tensor) => Tensor): Tensor {
  if (x.dtype !== 'float32') return untracked(forward);
  return recordOp([x], forward, (g) => [vjp(g)]);
}
