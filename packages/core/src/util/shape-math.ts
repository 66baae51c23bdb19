/**
 * Shape arithmetic done on the host: broadcasting, axes, strides. None of it touches tensor values.
 * @module
 */

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C order) strides of a shape, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Formats a shape as `[2,3]` for error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Checks that a shape is a list of non-negative integers; `what` names the caller in the error. */
export function checkShape(shape: readonly number[], what: string): void {
  if (!Array.isArray(shape)) throw new Error(`${what}: shape must be an array of integers, got ${String(shape)}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(`${what}: shape ${fmt(shape)} has an invalid dimension ${d} (dimensions are non-negative integers)`);
    }
  }
}

/** NumPy broadcasting of several shapes; throws naming `op` and every shape when they do not broadcast. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i];
      if (d === out[j] || d === 1) continue;
      if (out[j] === 1) out[j] = d;
      else throw new Error(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (axis ${j - rank}: ${out[j]} vs ${d})`);
    }
  }
  return out;
}

/** Strides with which an input of `shape` is read when broadcast to `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_, j) => {
    const i = j - off;
    return i < 0 || shape[i] === 1 ? 0 : own[i];
  });
}

/** Resolves a possibly negative axis against `rank`; throws naming `op` when it is out of range. */
export function normalizeAxis(op: string, axis: number, rank: number, subject = `a tensor of rank ${rank}`): number {
  if (!Number.isInteger(axis)) throw new Error(`${op}: axis must be an integer, got ${axis}`);
  if (axis < -rank || axis >= rank) {
    throw new Error(`${op}: axis ${axis} is out of range for ${subject} (valid: ${-rank}..${rank - 1})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Resolves `axis` (one, several or undefined = all) to a sorted list of distinct non-negative axes. */
export function normalizeAxes(op: string, axis: number | readonly number[] | undefined, rank: number): number[] {
  if (axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const out = list.map((a) => normalizeAxis(op, a, rank));
  if (new Set(out).size !== out.length) throw new Error(`${op}: repeated axis in ${JSON.stringify(list)}`);
  return out.sort((a, b) => a - b);
}

/**
 * Merges adjacent output dimensions wherever every operand can be addressed as if they were one,
 * so a kernel does less index arithmetic: `[64,32] + [64,32]` becomes one flat dimension of 2048.
 * Returns the collapsed dims and, per operand, the collapsed strides. Dimensions of size 1 are dropped.
 */
export function collapseDims(dims: readonly number[], strides: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const outDims: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let j = 0; j < dims.length; j++) {
    if (dims[j] === 1) continue;
    const last = outDims.length - 1;
    const mergeable =
      last >= 0 && strides.every((s, k) => outStrides[k][last] === s[j] * dims[j]);
    if (mergeable) {
      outDims[last] *= dims[j];
      strides.forEach((s, k) => (outStrides[k][last] = s[j]));
    } else {
      outDims.push(dims[j]);
      strides.forEach((s, k) => outStrides[k].push(s[j]));
    }
  }
  return { dims: outDims, strides: outStrides };
}
