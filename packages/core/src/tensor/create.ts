import { engine } from '../backend/registry.js';
import { Storage } from '../backend/storage.js';
import { checkShape, fmt, sizeOf } from '../util/shape.js';
import { Tensor, type DType, type NestedArray } from './tensor.js';

/** What `tensor()` accepts. */
export type TensorLike = number | NestedArray | Float32Array | Int32Array | readonly number[];

const INT_LIMIT = 2 ** 24;

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
  if (typeof values === 'number') {
    flat = new Float32Array([values]);
    inferred = [];
  } else if (values instanceof Float32Array || values instanceof Int32Array) {
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
  if (sizeOf(finalShape) !== flat.length) {
    throw new Error(`tensor: ${flat.length} values do not fill shape ${fmt(finalShape)} (${sizeOf(finalShape)} elements)`);
  }
  if (dt === 'int32') {
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (!Number.isInteger(v) || Math.abs(v) > INT_LIMIT) {
        throw new Error(`tensor: int32 value ${v} at index ${i} is not an integer within ±2^24 (kernels compute in float32)`);
      }
    }
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
