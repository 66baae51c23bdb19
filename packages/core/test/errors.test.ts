/**
 * Errors are part of the API: each bad input raises an Error naming the op and the
 * offending shapes or values. One test per case; each regex requires both. Host-side checks do not
 * depend on the backend, so these run on wasm only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';

const i32 = (v: number[], shape?: number[]): Tensor => c.tensor(v, shape, 'int32');

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
});

describe('shapes that do not fit together', () => {
  it('add of [2,3] and [4] names add and both shapes', () => {
    expect(() => c.add(c.zeros([2, 3]), c.zeros([4]))).toThrow(/^add: .*\[2,3\].*\[4\]/);
  });

  it('matmul with differing inner dimensions names matmul, both shapes and both sizes', () => {
    expect(() => c.matmul(c.zeros([2, 3]), c.zeros([4, 5]))).toThrow(/^matmul: .*\[2,3\].*\[4,5\].*3 vs 4/);
  });

  it('matmul with transposeB names the transposed operand and its inner size', () => {
    expect(() => c.matmul(c.zeros([2, 3]), c.zeros([3, 5]), { transposeB: true })).toThrow(/^matmul: .*\[2,3\].*\[3,5\].*3 vs 5/);
  });

  // Guards a fixed weakness: the message once showed only the batch shapes ("matmul: shapes [2] and
  // [3] cannot be broadcast together"), not the operands [2,2,3] and [3,3,4] the caller passed.
  it('matmul with batch axes that do not broadcast names both operand shapes', () => {
    expect(() => c.matmul(c.zeros([2, 2, 3]), c.zeros([3, 3, 4]))).toThrow(/^matmul: .*\[2,2,3\].*\[3,3,4\]/);
  });

  it('concat of shapes differing outside the axis names concat and every shape', () => {
    expect(() => c.concat([c.zeros([2, 3]), c.zeros([2, 4])], 0)).toThrow(/^concat: .*\[2,3\].*\[2,4\].*axis 0/);
  });

  it('concat of different ranks names concat and both shapes', () => {
    expect(() => c.concat([c.zeros([2, 3]), c.zeros([2])], 0)).toThrow(/^concat: .*\[2,3\].*\[2\]/);
  });

  it('stack of different shapes names stack and both shapes', () => {
    expect(() => c.stack([c.zeros([2, 3]), c.zeros([3, 2])])).toThrow(/^stack: .*\[2,3\].*\[3,2\]/);
  });

  it('where with a condition that does not broadcast names where and the shapes', () => {
    expect(() => c.where(c.zeros([2]), c.zeros([3]), c.zeros([3]))).toThrow(/^where: .*\[2\].*\[3\]/);
  });

  it('broadcastTo a shape that cannot hold x names broadcastTo and both shapes', () => {
    expect(() => c.broadcastTo(c.zeros([2, 3]), [3])).toThrow(/^broadcastTo: .*\[2,3\].*\[3\]/);
  });
});

describe('axes', () => {
  it('sum over axis 5 of a rank-2 tensor names sum, the axis and the rank', () => {
    expect(() => c.sum(c.zeros([2, 3]), 5)).toThrow(/^sum: .*axis 5.*rank 2/);
  });

  it('sum over axis -3 of a rank-2 tensor names sum, the axis and the rank', () => {
    expect(() => c.sum(c.zeros([2, 3]), -3)).toThrow(/^sum: .*axis -3.*rank 2/);
  });

  it('concat along axis -3 of rank-2 tensors names concat, the axis and the rank', () => {
    expect(() => c.concat([c.zeros([2, 3]), c.zeros([2, 3])], -3)).toThrow(/^concat: .*axis -3.*rank 2/);
  });

  it('sum over a repeated axis (0 and -2) names sum and the axes', () => {
    expect(() => c.sum(c.zeros([2, 3]), [0, -2])).toThrow(/^sum: .*repeated axis.*\[0,-2\]/);
  });

  // Guards a fixed weakness: expandDims (and stack) normalize against rank + 1 and once said "a tensor
  // of rank 3" about a rank-2 tensor: "expandDims: axis -4 is out of range for a tensor of rank 3".
  it('expandDims at axis -4 of a rank-2 tensor names the tensor rank (2) or shape', () => {
    expect(() => c.expandDims(c.zeros([2, 3]), -4)).toThrow(/^expandDims: .*-4.*(rank 2|\[2,3\])/);
  });

  it('squeeze of an axis whose size is not 1 names squeeze, the axis, the shape and the size', () => {
    expect(() => c.squeeze(c.zeros([2, 3]), 1)).toThrow(/^squeeze: axis 1 .*\[2,3\].*size 3/);
  });

  // Guards a fixed weakness: the message once reported the normalized axis (squeeze(x, -1) on [2,3]
  // said "squeeze: axis 1 of shape [2,3] has size 3, not 1"), not the -1 the caller wrote.
  it('squeeze of axis -1 of size 3 names the axis as written (-1)', () => {
    expect(() => c.squeeze(c.zeros([2, 3]), -1)).toThrow(/^squeeze: axis -1 .*\[2,3\].*size 3/);
  });

  it('argmax with a list of axes names argmax and the list', () => {
    expect(() => c.argmax(c.zeros([2, 3]), [0] as unknown as number)).toThrow(/^argmax: .*\[0\]/);
  });
});

describe('permutations', () => {
  it('transpose by [0,0] names transpose, the permutation and the shape', () => {
    expect(() => c.transpose(c.zeros([2, 3]), [0, 0])).toThrow(/^transpose: \[0,0\].*\[2,3\]/);
  });

  it('transpose by a permutation that is too short names it and the shape', () => {
    expect(() => c.transpose(c.zeros([2, 3]), [0])).toThrow(/^transpose: \[0\].*\[2,3\]/);
  });

  it('transpose by a permutation that is too long names it and the shape', () => {
    expect(() => c.transpose(c.zeros([2, 3]), [1, 0, 2])).toThrow(/^transpose: \[1,0,2\].*\[2,3\]/);
  });
});

describe('dtypes', () => {
  it('exp of an int32 tensor names exp and int32', () => {
    expect(() => c.exp(i32([1, 2]))).toThrow(/^exp: .*int32/);
  });

  it('take with float32 indices names take and float32', () => {
    expect(() => c.take(c.zeros([4, 5]), c.tensor([0, 1]))).toThrow(/^take: .*indices.*float32/);
  });

  it('add of int32 and float32 names add and both dtypes', () => {
    expect(() => c.add(i32([1, 2]), c.zeros([2]))).toThrow(/^add: .*int32.*float32/);
  });

  it('matmul of int32 names matmul and int32', () => {
    expect(() => c.matmul(i32([1, 2, 3, 4], [2, 2]), c.zeros([2, 2]))).toThrow(/^matmul: .*int32/);
  });

  it('div of an int32 tensor by a number names div and int32', () => {
    expect(() => c.div(i32([2, 4]), 2)).toThrow(/^div: .*int32/);
  });

  it('a fractional number with an int32 tensor names the op and the number', () => {
    expect(() => c.add(i32([1]), 0.5)).toThrow(/^add: .*0\.5.*int32/);
  });

  it('concat of float32 and int32 names concat and both dtypes', () => {
    expect(() => c.concat([c.zeros([2]), i32([1, 2])])).toThrow(/^concat: .*float32.*int32/);
  });
});

describe('disposed tensors', () => {
  it('an op on a disposed tensor names the op, the shape and "disposed"', () => {
    const x = c.ones([2, 2]);
    x.dispose();
    expect(() => c.add(x, 1)).toThrow(/^add: .*\[2,2\].*disposed/);
  });

  it('matmul with a disposed second operand names matmul and its shape', () => {
    const a = c.ones([2, 3]);
    const b = c.ones([3, 4]);
    b.dispose();
    expect(() => c.matmul(a, b)).toThrow(/^matmul: .*\[3,4\].*disposed/);
  });

  it('data() of a disposed tensor rejects, naming data and the shape', async () => {
    const x = c.ones([2, 2]);
    x.dispose();
    await expect(x.data()).rejects.toThrow(/^data: .*\[2,2\].*disposed/);
  });

  it('toArray() of a disposed tensor rejects, naming the shape', async () => {
    const x = c.ones([2, 2]);
    x.dispose();
    await expect(x.toArray()).rejects.toThrow(/\[2,2\].*disposed/);
  });
});

describe('indices', () => {
  // Out-of-range take indices are not errors: they give NaN inside the kernel (indices.test.ts).

  it('slice past the end names slice, begin, size, the axis and the shape', () => {
    expect(() => c.slice(c.zeros([2, 3]), [0, 1], [1, 3])).toThrow(/^slice: begin 1 with size 3 .*axis 1.*\[2,3\]/);
  });

  it('slice with a begin before the start names slice, the begin and the shape', () => {
    expect(() => c.slice(c.zeros([2, 3]), [-5], [1])).toThrow(/^slice: begin -5 .*axis 0.*\[2,3\]/);
  });

  it('slice with more begins than axes names slice, the begins and the rank', () => {
    expect(() => c.slice(c.zeros([2, 3]), [0, 0, 0])).toThrow(/^slice: begin \[0,0,0\].*rank 2/);
  });
});

describe('values and shapes given to creation', () => {
  it('tensor([1,2,3], [2,2]) names tensor, the count and the shape', () => {
    expect(() => c.tensor([1, 2, 3], [2, 2])).toThrow(/^tensor: 3 values .*\[2,2\]/);
  });

  it('a ragged nested array (short row) names tensor, the expected and actual lengths', () => {
    expect(() => c.tensor([[1, 2], [3]])).toThrow(/^tensor: ragged .*expected 2 .*\[2,2\].*got 1/);
  });

  it('a ragged nested array (long row) names tensor, the expected and actual lengths', () => {
    expect(() => c.tensor([[1, 2], [3, 4, 5]])).toThrow(/^tensor: ragged .*expected 2 .*\[2,2\].*got 3/);
  });

  // Guards a fixed weakness: when a later entry was deeper than the first, the message had neither the
  // word "ragged", nor the inferred shape, nor where: "tensor: expected a number at depth 1, got an array".
  it('a ragged nested array (number, then array) names tensor, ragged and the inferred shape', () => {
    expect(() => c.tensor([1, [2, 3]] as unknown as number[])).toThrow(/^tensor: ragged .*\[2\]/);
  });

  it('an int32 tensor of a fraction names tensor and the value', () => {
    expect(() => c.tensor([1, 1.5], undefined, 'int32')).toThrow(/^tensor: int32 value 1\.5/);
  });

  it('an int32 value past ±2^24 (not exact in the float32 storage) is refused with the value as given and its index', () => {
    expect(() => c.tensor([16777217], undefined, 'int32')).toThrow(/^tensor: int32 value 16777217 at index 0 .*±2\^24/);
    expect(() => c.tensor([[1, 2], [3, -16777217]], undefined, 'int32')).toThrow(/^tensor: int32 value -16777217 at index 3 /);
    expect(() => c.tensor(16777217, [], 'int32')).toThrow(/^tensor: int32 value 16777217 at index 0 /);
    expect(() => c.tensor([0, 2147483647], undefined, 'int32')).toThrow(/^tensor: int32 value 2147483647 at index 1 .*int32 tensors hold integers within ±2\^24 exactly/);
    expect(() => c.tensor(new Int32Array([5, 0, 2147483647]))).toThrow(/^tensor: int32 value 2147483647 at index 2 /);
    expect(() => c.tensor(new Int32Array([-16777217]))).toThrow(/^tensor: int32 value -16777217 at index 0 /);
    expect(() => c.tensor(new Float32Array([16777218]), undefined, 'int32')).toThrow(/^tensor: int32 value 16777218 at index 0 /);
    expect(() => c.tensor([Infinity], undefined, 'int32')).toThrow(/^tensor: int32 value Infinity at index 0 /);
  });

  it('int32 values within ±2^24 are stored exactly', async () => {
    const want = [16777216, -16777216, 16777215, -16777215, 0, 1];
    for (const t of [c.tensor(want, undefined, 'int32'), c.tensor(Int32Array.from(want))]) {
      expect(t.dtype).toBe('int32');
      expect(Array.from(await t.data())).toEqual(want);
      t.dispose();
    }
  });

  it('reshape to a different size names reshape and both shapes', () => {
    expect(() => c.reshape(c.zeros([2, 3]), [4, 2])).toThrow(/^reshape: .*\[2,3\].*\[4,2\]/);
  });

  it('reshape with -1 that cannot divide names reshape and both shapes', () => {
    expect(() => c.reshape(c.zeros([2, 3]), [4, -1])).toThrow(/^reshape: .*\[2,3\].*\[4,-1\]/);
  });

  it('reshape with two -1 names reshape and the shape', () => {
    expect(() => c.reshape(c.zeros([2, 3]), [-1, -1])).toThrow(/^reshape: .*\[-1,-1\]/);
  });

  it('arange with step 0 names arange and the step', () => {
    expect(() => c.arange(0, 5, 0)).toThrow(/^arange: step .*0/);
  });

  it('arange with a non-finite stop names arange and the value', () => {
    expect(() => c.arange(0, Infinity)).toThrow(/^arange: stop .*Infinity/);
  });

  it('pad with too few paddings names pad, the rank, the shape and the paddings', () => {
    expect(() => c.pad(c.zeros([2, 3]), [[0, 0]])).toThrow(/^pad: .*2 axes .*\[2,3\].*\[\[0,0\]\]/);
  });

  it('pad with a negative padding names pad and the pair', () => {
    expect(() => c.pad(c.zeros([2, 3]), [[0, 0], [-1, 0]])).toThrow(/^pad: .*\[-1,0\]/);
  });

  it('pad with a pair of the wrong length names pad and the pair', () => {
    expect(() => c.pad(c.zeros([2, 3]), [[0, 0], [1] as unknown as [number, number]])).toThrow(/^pad: .*\[1\]/);
  });

  // Guards a fixed weakness: zeros/ones wrap full and once reported as it:
  // zeros(3) threw "full: shape must be an array of integers, got 3".
  it('zeros with a shape that is not an array names zeros and the value', () => {
    expect(() => c.zeros(3 as unknown as number[])).toThrow(/^zeros: .*3/);
  });
});

describe('backends', () => {
  it('init with an unknown backend rejects, naming init and the backend, and keeps the current one', async () => {
    await expect(c.init({ backend: 'tpu' as unknown as c.BackendName })).rejects.toThrow(/^init: unknown backend "tpu"/);
    expect(c.backend()).toBe('wasm');
  });
});
