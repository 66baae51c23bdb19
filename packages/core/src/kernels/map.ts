import type { KernelSource } from '../backend/engine.js';
import { collapseDims, stridesOf } from '../util/shape-math.js';
import { divmod } from './index-math.js';

/**
 * Elementwise kernels over broadcast operands. `expr` is a kernel expression over `v0, v1, ...`
 * (the operands' values at one output cell), or statements ending in a `return` (locals named
 * `t_...` so as not to meet the kernel's own names), for a value used more than once. The output is
 * addressed flat; each operand is read through strides (0 on broadcast axes). Dimensions are
 * collapsed first, so same-shape operands and scalars read `x[i]` / `x[0]` with no index arithmetic
 * at all.
 *
 * With `grid` (wasm only: it needs `flat` results), an output of rank >= 2 is addressed on a
 * 3-D grid instead, and `dims` is the grid to launch it over.
 *
 * The kernel's key holds `expr` itself, so that two expressions under one op name never share a
 * kernel.
 *
 * Returns the kernel, the scalar arguments (output strides, then each operand's strides) and the
 * launch grid (`dims`, when there is one).
 */
export function mapKernel(
  name: string,
  expr: string,
  outShape: readonly number[],
  inStrides: readonly (readonly number[])[],
  offsets?: readonly number[],
  grid = false,
): { src: KernelSource; scalars: number[]; dims?: number[] } {
  const n = inStrides.length;
  const { dims, strides } = collapseDims(outShape, inStrides);
  const arrays = Array.from({ length: n }, (_, k) => `x${k}`);
  // Operands read from an offset (slices) take it as one more scalar; the kernel key says which do.
  const off = Array.from({ length: n }, (_, k) => offsets?.[k] ?? 0);
  const offNames = off.map((o, k) => (o !== 0 ? `off${k}` : ''));
  const offScalars = offNames.filter(Boolean);
  const offValues = off.filter((o) => o !== 0);
  const plus = (k: number): string => (offNames[k] ? ` + ${offNames[k]}` : '');
  const offKey = offNames.map((o) => (o ? 'o' : '-')).join('');
  const loads: string[] = [];
  if (dims.length <= 1 && strides.every((s) => s.length === 0 || s[0] === 0 || s[0] === 1)) {
    // Flat: every operand is either the whole output's layout or one broadcast value.
    const modes = strides.map((s) => (s.length === 0 || s[0] === 0 ? 's' : 'f'));
    modes.forEach((m, k) => loads.push(`const v${k} = x${k}[${m === 'f' ? 'i' : '0'}${plus(k)}];`));
    return {
      src: {
        key: `map:${name}:${modes.join('')}:${offKey}:${expr}`,
        arrays,
        scalars: offScalars,
        ...threading(expr),
        body: `const i = this.thread.x;\n${loads.join('\n')}\n${returning(expr)}`,
      },
      scalars: offValues,
    };
  }
  const r = dims.length;
  const scalars: string[] = [];
  const values: number[] = [];
  const lines: string[] = [];
  // Splits the flat index `from` over the axes `axes` (the first ones of `dims`) into c0, c1, ...
  const split = (axes: readonly number[], from: string): void => {
    const st = stridesOf(axes);
    lines.push(`let rem0 = ${from};`);
    for (let j = 0; j < axes.length; j++) {
      if (j < axes.length - 1) {
        scalars.push(`os${j}`);
        values.push(st[j]);
        lines.push(divmod(`c${j}`, `rem${j + 1}`, `rem${j}`, `os${j}`));
      } else {
        lines.push(`const c${j} = rem${j};`);
      }
    }
  };
  let launchDims: number[] | undefined;
  if (grid && r >= 2) {
    // A grid of [last axis, second-last axis, the rest]: the wasm driver hands each cell its x, y,
    // z (integer division by constants it knows), so an output of rank <= 3 needs no division in
    // the kernel, and a higher rank divides only z. Flat addressing divided by every axis's stride
    // (two float divisions each, see divmod), which made a transpose ~12x an add of its size.
    launchDims = [dims[r - 1], dims[r - 2], dims.slice(0, r - 2).reduce((a, b) => a * b, 1)];
    lines.push(`const c${r - 1} = this.thread.x;`, `const c${r - 2} = this.thread.y;`);
    if (r > 2) split(dims.slice(0, r - 2), 'this.thread.z');
  } else {
    split(dims, 'this.thread.x');
  }
  for (let k = 0; k < n; k++) {
    const terms: string[] = [];
    for (let j = 0; j < r; j++) {
      scalars.push(`s${k}_${j}`);
      values.push(strides[k][j]);
      terms.push(`c${j} * s${k}_${j}`);
    }
    lines.push(`const v${k} = x${k}[${terms.join(' + ')}${plus(k)}];`);
  }
  lines.push(returning(expr));
  return {
    src: { key: `map:${name}:${launchDims ? 'g' : 'r'}${r}:${offKey}:${expr}`, arrays, scalars: [...scalars, ...offScalars], body: lines.join('\n'), ...(launchDims ? { flat: true } : {}), ...threading(expr) },
    scalars: [...values, ...offValues],
    dims: launchDims,
  };
}

/**
 * Worker threads for an expression with a transcendental (exp, tanh, log: ~2.5-4 ns an element on
 * wasm, against ~0.3 for an add) from 2^17 cells. Measured on wasm, one call with the result read
 * back, min of 40 (sigmoid): 2^16 cells 1.26 ms unthreaded, 1.29 threaded; 2^17 2.44-2.55 and
 * 2.32-2.41; 2^18 4.7-4.9 and 1.16; 2^20 6.6-6.7 and 4.7. Copies and plain arithmetic stay on the
 * calling thread: the worker dispatch (~170 us) costs them more than a second core saves.
 */
function threading(expr: string): { threaded: true; threadFrom: number } | Record<string, never> {
  return /\bMath\.(exp|tanh|log)\(/.test(expr) ? { threaded: true, threadFrom: 1 << 17 } : {};
}

/** The kernel's last lines: `expr` as a return, or as written when it has its own. */
function returning(expr: string): string {
  return /\breturn\b/.test(expr) ? expr : `return ${expr};`;
}
