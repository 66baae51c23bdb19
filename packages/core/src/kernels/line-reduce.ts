import type { KernelSource } from '../backend/engine.js';

/**
 * Sums (or maxima) of an elementwise expression along one axis of an `[R, L]` matrix, for the fused
 * nn functions (nn/norm.ts, nn/softmax.ts) and column sums (ops/broadcast.ts): the expression's
 * operands are read where it is summed, so no intermediate tensor of the matrix's size is written
 * and read back (each one a pass over memory, most of an elementwise op's cost on wasm).
 *
 * Each operand has a kind:
 * - `full`: an `[R, L]` matrix, row-major;
 * - `row`: one value per row (`[R]`);
 * - `col`: one value per column (`[L]`).
 *
 * `over: 'cols'` sums each row across its L columns (output `[R]`); `over: 'rows'` sums each column
 * down its R rows (output `[L]`). Terms are summed in blocks of 64, each block's partial then added
 * to the total: the rounding error grows with 64 + n / 64 rather than n, for the columns of a
 * matrix of many rows (a weight gradient summed over every token). `finish` turns the sum `acc` into
 * the result; it may use the scalar `n` (the count summed) and the float scalars in `floats`.
 *
 * Scalars: `R`, `L`, `nb` (the number of blocks, ceil(n / 64), from the host: a kernel's float
 * division may be off at exact multiples on a GPU), then `floats`.
 */
export interface LineReduce {
  /** Unique name: the kernel key. */
  readonly name: string;
  /** The term, over `v0, v1, ...` (the operands at one cell). */
  readonly expr: string;
  /** Each operand's kind. */
  readonly kinds: readonly ('full' | 'row' | 'col')[];
  /** Which axis is summed away. */
  readonly over: 'cols' | 'rows';
  /** The result from the sum `acc` (default: the sum). */
  readonly finish?: string;
  /** Float scalars `finish` reads, passed after R, L and nb. */
  readonly floats?: readonly string[];
  /**
   * 'max' folds the terms into their maximum instead of summing them, NaN-propagating as NumPy's
   * max (a NaN fails every comparison, so `!(t === t)` finds it).
   */
  readonly combine?: 'sum' | 'max';
}

/** Block length of the two-level sum. */
export const LINE_BLOCK = 64;
const BLOCK = LINE_BLOCK;

/**
 * The kernel of a {@link LineReduce}; launch it over `R` cells (`over: 'cols'`) or `L` cells (`over: 'rows'`).
 *
 * @example
 * ```ts
 * // Per-row variance about a given mean: Σ (x - m)² / L.
 * const k = lineReduceKernel({ name: 'var', expr: '(v0 - v1) * (v0 - v1)', kinds: ['full', 'row'], over: 'cols', finish: 'acc / n' });
 * ```
 */
export function lineReduceKernel(spec: LineReduce): KernelSource {
  const byRow = spec.over === 'cols';
  // The summed index is `l`, along columns for a row sum and down rows for a column sum.
  const n = byRow ? 'L' : 'R';
  const at = (kind: string): string => {
    if (byRow) return kind === 'full' ? 'this.thread.x * L + l' : kind === 'row' ? 'this.thread.x' : 'l';
    // Cells of a column sum are consecutive columns: `l * L + this.thread.x` is read as one vector
    // by a SIMD quad on wasm (four consecutive columns of row l).
    return kind === 'full' ? 'l * L + this.thread.x' : kind === 'row' ? 'l' : 'this.thread.x';
  };
  const loads = spec.kinds.map((kind, k) => `const v${k} = x${k}[${at(kind)}];`).join('\n      ');
  const common = {
    key: `linereduce:${spec.name}`,
    arrays: spec.kinds.map((_, k) => `x${k}`),
    scalars: ['R', 'L', 'nb', ...(spec.floats ?? [])],
    floats: spec.floats,
  };
  if (spec.combine === 'max') {
    // Blocks do not matter to a maximum; the first term seeds it (n >= 1).
    return {
      ...common,
      body: `const n = ${n};
let acc = 0;
for (let l = 0; l < n; l++) {
  ${loads.replace(/\n {6}/g, '\n  ')}
  const t_ = ${spec.expr};
  if (l === 0 || t_ > acc || !(t_ === t_)) { acc = t_; }
}
return ${spec.finish ?? 'acc'};`,
    };
  }
  return {
    ...common,
    body: `const n = ${n};
let acc = 0;
for (let b = 0; b < nb; b++) {
  let part = 0;
  for (let j = 0; j < ${BLOCK}; j++) {
    const l = b * ${BLOCK} + j;
    if (l < n) {
      ${loads}
      part += ${spec.expr};
    }
  }
  acc += part;
}
return ${spec.finish ?? 'acc'};`,
  };
}
