/**
 * `tensor()`: tensors made from host data (a number, nested arrays, a typed array), checked and
 * uploaded. The ops that make tensors from nothing but a shape (zeros, eye, arange) are ops/create.ts.
 * @module
 */
import { engine } from '../backend/registry.js';
import { checkElements } from '../backend/limits.js';
import { Storage } from '../backend/storage.js';
import { checkShape, fmt, sizeOf } from '../util/shape-math.js';
import { Tensor, type DType, type NestedArray } from './tensor.js';

/** What `tensor()` accepts. */
export type TensorLike = number | NestedArray | Float32Array | Int32Array | readonly number[];

const INT_LIMIT = 2 ** 24;

/**
 * Refuses an int32 value the float32 storage cannot hold exactly. Called on the caller's own value,
 * before it is rounded into a Float32Array, so 16777217 is refused (not stored as 16777216) and an
 * error reports the value as given.
 */
function checkInt(v: number, i: number): void {
  if (!Number.isInteger(v) || Math.abs(v) > INT_LIMIT) {
    throw new Error(`tensor: int32 value ${v} at index ${i} is not an integer within ±2^24 = ±${INT_LIMIT}: int32 tensors hold integers within ±2^24 exactly (their values are stored as float32)`);
  }
}

/**
 * Makes a tensor from numbers, nested arrays, a Float32Array or an Int32Array. The shape is inferred
 * from nesting unless given; the dtype is int32 for an Int32Array and float32 otherwise unless given.
 *
 * @example
 * ```ts
 * tensor([[1, 2, 3], [4, 5, 6]]).shape;           // [2, 3]
 * tensor(new Float32Array(6), [3, 2]).shape;       // [3, 2]
 * tensor([0, 2, 1], undefined, 'int32').dtype;     // 'int32'
 * ```
 */
export function tensor(values: TensorLike, shape?: readonly number[], dtype?: DType): Tensor {
  const dt: DType = dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
  if (dt !== 'float32' && dt !== 'int32') throw new Error(`tensor: unknown dtype "${String(dt)}" (expected float32 or int32)`);
  let flat: Float32Array;
  let inferred: number[];
  const int = dt === 'int32';
  if (typeof values === 'number') {
    if (int) checkInt(values, 0);
    flat = new Float32Array([values]);
    inferred = [];
  } else if (values instanceof Float32Array || values instanceof Int32Array) {
    if (int) values.forEach(checkInt);
    flat = values instanceof Float32Array ? values.slice() : Float32Array.from(values);
    inferred = [values.length];
  } else if (Array.isArray(values)) {
    inferred = inferShape(values as NestedArray[]);
    flat = new Float32Array(sizeOf(inferred));
    let k = 0;
    const fill = (v: NestedArray, path: number[]): void => {
      const at = `[${path.join('][')}]`;
      if (path.length === inferred.length) {
        if (typeof v !== 'number') {
          throw new Error(`tensor: ragged nested array: expected a number at ${at} (shape ${fmt(inferred)} from the first entries), got ${Array.isArray(v) ? `an array of ${v.length}` : typeof v}`);
        }
        if (int) checkInt(v, k);
        flat[k++] = v;
        return;
      }
      if (!Array.isArray(v) || v.length !== inferred[path.length]) {
        throw new Error(`tensor: ragged nested array: expected ${inferred[path.length]} entries at ${path.length ? at : 'the top level'} (shape ${fmt(inferred)} from the first entries), got ${Array.isArray(v) ? v.length : typeof v}`);
      }
      v.forEach((x, i) => fill(x, [...path, i]));
    };
    fill(values as NestedArray, []);
  } else {
    throw new Error(`tensor: cannot make a tensor from ${values === null ? 'null' : typeof values}`);
  }
  const finalShape = shape ? [...shape] : inferred;
  checkShape(finalShape, 'tensor');
  checkElements('tensor', flat.length, `a tensor of shape ${fmt(finalShape)}`);
  if (sizeOf(finalShape) !== flat.length) {
    throw new Error(`tensor: ${flat.length} values do not fill shape ${fmt(finalShape)} (${sizeOf(finalShape)} elements)`);
  }
  return new Tensor(Storage.ready(engine(), flat.length, flat), finalShape, dt);
}

function inferShape(values: NestedArray[]): number[] {
  const shape: number[] = [];
  let v: NestedArray = values;
  while (Array.isArray(v)) {
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return shape;
}
