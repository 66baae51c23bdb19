/**
 * Launches the random module's kernels (kernels/random.ts) with a key's words as scalars.
 * @module
 */
import { launch } from '../ops/operand.js';
import { tensor } from '../tensor/from-data.js';
import type { Tensor } from '../tensor/tensor.js';
import { NORMAL_TABLE } from '../kernels/normal-table.js';
import { threefryArgs } from '../kernels/threefry.js';
import { RANDOM_BLOCK, RANDOM_BITS, RANDOM_UNIFORM, RANDOM_SHIFT, RANDOM_MUL, RANDOM_ADD, RANDOM_NORMAL, RANDOM_SORT_KEYS, RANDOM_RANK, RANDOM_INVERT } from '../kernels/random.js';

/** Key words and base counter as kernel scalars. */
type Words = readonly [number, number];

/** @internal Raw Threefry-2x32 blocks for counters `c + i`, i < n: a float32 tensor [n, 4] of 16-bit halves. */
export function threefryBlocks(op: string, k: Words, c: Words, n: number): Tensor {
  return launch(op, RANDOM_BLOCK, [n, 4], 'float32', [], threefryArgs(k, c));
}

/** @internal JAX's random bits (int32 tensor [...shape, 2] of 16-bit halves). */
export function bitsKernel(op: string, k: Words, shape: readonly number[]): Tensor {
  return launch(op, RANDOM_BITS, [...shape, 2], 'int32', [], threefryArgs(k));
}

/** @internal Uniform floats in [0, hi - lo), before the shift by `lo`. */
export function uniformKernel(op: string, k: Words, shape: readonly number[], lo: number, hi: number): Tensor {
  return launch(op, RANDOM_UNIFORM, shape, 'float32', [], [...threefryArgs(k), lo, hi]);
}

/** @internal `x + lo`, kept below `hi`. */
export function shiftKernel(op: string, x: Tensor, lo: number, hi: number, below: number): Tensor {
  return launch(op, RANDOM_SHIFT, x.shape, 'float32', [x], [lo, hi, below]);
}

/** @internal `x * s`. */
export function mulKernel(op: string, x: Tensor, s: number): Tensor {
  return launch(op, RANDOM_MUL, x.shape, 'float32', [x], [s]);
}

/** @internal `x + s`. */
export function addKernel(op: string, x: Tensor, s: number): Tensor {
  return launch(op, RANDOM_ADD, x.shape, 'float32', [x], [s]);
}

/** @internal Standard normals. */
export function normalKernel(op: string, k: Words, shape: readonly number[]): Tensor {
  const tab = tensor(NORMAL_TABLE);
  try {
    return launch(op, RANDOM_NORMAL, shape, 'float32', [tab], threefryArgs(k));
  } finally {
    tab.dispose();
  }
}

/** @internal A uniformly random permutation of 0..n-1 (int32), by ranking random 48-bit keys. */
export function permutationKernel(op: string, k: Words, n: number): Tensor {
  const keys = launch(op, RANDOM_SORT_KEYS, [2 * n], 'float32', [], threefryArgs(k));
  try {
    const rank = launch(op, RANDOM_RANK, [n], 'int32', [keys], [n]);
    try {
      return launch(op, RANDOM_INVERT, [n], 'int32', [rank], [n]);
    } finally {
      rank.dispose();
    }
  } finally {
    keys.dispose();
  }
}
