import type { Tensor } from '../tensor/tensor.js';
import { reshape } from '../ops/shape.js';
import { sum } from '../ops/reduce.js';

/**
 * @internal The cotangent of a broadcast operand: `g` (of the broadcast shape) summed over the axes
 * broadcasting added or stretched, so it has `shape` again.
 */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let j = 0; j < g.rank; j++) {
    if (j < lead || (shape[j - lead] === 1 && g.shape[j] !== 1)) axes.push(j);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}
