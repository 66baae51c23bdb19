/**
 * Creation ops. Values are written by kernels on the current backend, not filled on the host.
 * @module
 */
import { EYE, RAMP } from '../kernels/layout.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { checkShape } from '../util/shape-math.js';
import { launch } from './operand.js';
import { checkFiniteNumber, checkInteger, checkTensor } from '../tensor/checks.js';
import { tensor } from '../tensor/from-data.js';

function ramp(op: string, shape: readonly number[], start: number, step: number, dtype: DType): Tensor {
  checkShape(shape, op);
  const p = tensor([start, step]);
  try {
    return launch(op, RAMP, shape, dtype, [p], []);
  } finally {
    p.dispose();
  }
}

function checkDtype(op: string, dtype: DType): void {
  if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`${op}: unknown dtype "${String(dtype)}" (expected float32 or int32)`);
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * full([2, 2], 7); // [[7, 7], [7, 7]]
 * ```
 */
export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  return fill('full', shape, value, dtype);
}

function fill(op: string, shape: readonly number[], value: number, dtype: DType): Tensor {
  checkDtype(op, dtype);
  if (typeof value !== 'number') throw new Error(`${op}: value must be a number, got ${typeof value}`);
  if (dtype === 'int32' && !Number.isInteger(value)) throw new Error(`${op}: value ${value} is not an integer for dtype int32`);
  return ramp(op, shape, value, 0, dtype);
}

/** Zeros of `shape`. @example `zeros([2, 3]).shape` is `[2, 3]`. */
export const zeros = (shape: readonly number[], dtype: DType = 'float32'): Tensor => fill('zeros', shape, 0, dtype);
/** Ones of `shape`. @example `ones([3])` gives `[1, 1, 1]`. */
export const ones = (shape: readonly number[], dtype: DType = 'float32'): Tensor => fill('ones', shape, 1, dtype);
/** Zeros with x's shape and dtype. @example `zerosLike(tensor([1, 2]))` gives `[0, 0]`. */
export const zerosLike = (x: Tensor): Tensor => (checkTensor('zerosLike', x), fill('zerosLike', x.shape, 0, x.dtype));
/** Ones with x's shape and dtype. @example `onesLike(tensor([1, 2]))` gives `[1, 1]`. */
export const onesLike = (x: Tensor): Tensor => (checkTensor('onesLike', x), fill('onesLike', x.shape, 1, x.dtype));

/**
 * Evenly spaced values in `[start, stop)`: `arange(n)` is `0..n-1`. int32 when every argument is an
 * integer, unless `dtype` says otherwise.
 *
 * @example
 * ```ts
 * arange(4);          // [0, 1, 2, 3] (int32)
 * arange(1, 2, 0.25); // [1, 1.25, 1.5, 1.75] (float32)
 * ```
 */
export function arange(start: number, stop?: number, step = 1, dtype?: DType): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  for (const [k, v] of Object.entries({ start, stop, step })) {
    checkFiniteNumber('arange', k, v);
  }
  if (step === 0) throw new Error('arange: step must not be 0');
  const dt = dtype ?? ([start, stop, step].every(Number.isInteger) ? 'int32' : 'float32');
  checkDtype('arange', dt);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return ramp('arange', [n], start, step, dt);
}

/**
 * `num` evenly spaced values from `start` to `stop`, both included (float32).
 *
 * @example
 * ```ts
 * linspace(0, 1, 5); // [0, 0.25, 0.5, 0.75, 1]
 * ```
 */
export function linspace(start: number, stop: number, num: number): Tensor {
  checkInteger('linspace', 'num', num);
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  return ramp('linspace', [num], start, step, 'float32');
}

/**
 * An `n x m` matrix with ones on the diagonal `k` (0: main, positive: above).
 *
 * @example
 * ```ts
 * eye(2);       // [[1, 0], [0, 1]]
 * eye(2, 3, 1); // [[0, 1, 0], [0, 0, 1]]
 * ```
 */
export function eye(n: number, m = n, k = 0, dtype: DType = 'float32'): Tensor {
  checkShape([n, m], 'eye');
  if (!Number.isInteger(k)) throw new Error(`eye: diagonal offset k must be an integer, got ${k}`);
  checkDtype('eye', dtype);
  return launch('eye', EYE, [n, m], dtype, [], [m, k]);
}
