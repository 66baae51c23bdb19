/**
 * Float64 reference implementations for tests: plain loops over multi-indices, written without
 * reusing anything from src/ so they check the library independently. The seeded generator, EPS32
 * and the index helpers come from the testing kit, where they are written once.
 */
import { count, matmulReference, unravel } from '@sorsajs/testing';

export { EPS32, count, randomData, rng, unravel } from '@sorsajs/testing';

export interface Nd {
  shape: number[];
  data: Float64Array;
}

export function nd(shape: number[], data: ArrayLike<number>): Nd {
  return { shape, data: Float64Array.from(data) };
}

/** Flat position of multi-index `idx` in row-major `shape`. */
export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let p = 0;
  for (let j = 0; j < shape.length; j++) p = p * shape[j] + idx[j];
  return p;
}

/** NumPy broadcasting of shapes, or null when they do not broadcast. */
export function broadcastShape(...shapes: number[][]): number[] | null {
  const r = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let j = 0; j < r; j++) {
    let d = 1;
    for (const s of shapes) {
      const k = j - (r - s.length);
      if (k < 0) continue;
      const v = s[k];
      if (v === 1) continue;
      if (d !== 1 && d !== v) return null;
      d = v;
    }
    out.push(d);
  }
  return out;
}

/** Elementwise f over broadcast inputs, in float64. */
export function mapRef(inputs: Nd[], f: (...v: number[]) => number): Nd {
  const shape = broadcastShape(...inputs.map((x) => x.shape));
  if (!shape) throw new Error('reference: shapes do not broadcast');
  const n = count(shape);
  const out = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const idx = unravel(p, shape);
    const vals = inputs.map((x) => {
      const off = shape.length - x.shape.length;
      const own = x.shape.map((d, k) => (d === 1 ? 0 : idx[k + off]));
      return x.data[ravel(own, x.shape)];
    });
    out[p] = f(...vals);
  }
  return { shape, data: out };
}

/** Reduction over `axes` with fold `f` starting from the first element; returns kept-axes shape. */
export function reduceRef(x: Nd, axes: number[], f: (vals: number[]) => number, keepdims = false): Nd {
  const kept = x.shape.map((d, j) => (axes.includes(j) ? 1 : d));
  const n = count(kept);
  const groups: number[][] = Array.from({ length: n }, () => []);
  for (let p = 0; p < x.data.length; p++) {
    const idx = unravel(p, x.shape);
    const k = ravel(idx.map((v, j) => (axes.includes(j) ? 0 : v)), kept);
    groups[k].push(x.data[p]);
  }
  const shape = keepdims ? kept : x.shape.filter((_, j) => !axes.includes(j));
  return { shape, data: Float64Array.from(groups.map(f)) };
}

export function transposeRef(x: Nd, perm: number[]): Nd {
  const shape = perm.map((a) => x.shape[a]);
  const out = new Float64Array(x.data.length);
  for (let p = 0; p < out.length; p++) {
    const idx = unravel(p, shape);
    const src = new Array<number>(x.shape.length);
    perm.forEach((a, j) => (src[a] = idx[j]));
    out[p] = x.data[ravel(src, x.shape)];
  }
  return { shape, data: out };
}

/** Plain triple loop over a single pair of matrices. */
export function matmulRef(a: Nd, b: Nd): Nd {
  const [m, k] = a.shape;
  const n = b.shape[1];
  return { shape: [m, n], data: matmulReference(a.data, b.data, m, k, n) };
}

/** Row-major (m x k) times (k x n) of |a| and |b|: the scale of matmul's rounding error. */
export function absMatmulRef(a: Nd, b: Nd): Nd {
  return matmulRef(nd(a.shape, a.data.map(Math.abs)), nd(b.shape, b.data.map(Math.abs)));
}

/**
 * Compares a float32 result to a float64 reference: |got - ref| <= tol(i) for each element, with the
 * same shape. Returns a message naming the first failing element, or null.
 */
export function compare(gotShape: readonly number[], got: ArrayLike<number>, ref: Nd, tol: (i: number) => number): string | null {
  if (gotShape.length !== ref.shape.length || gotShape.some((d, j) => d !== ref.shape[j])) {
    return `shape [${gotShape.join(',')}] != reference [${ref.shape.join(',')}]`;
  }
  if (got.length !== ref.data.length) return `length ${got.length} != ${ref.data.length}`;
  for (let i = 0; i < got.length; i++) {
    const r = ref.data[i];
    const g = got[i];
    if (Number.isNaN(r) && Number.isNaN(g)) continue;
    if (r === g) continue;
    const t = tol(i);
    if (!(Math.abs(g - r) <= t)) return `element ${i} (index [${unravel(i, ref.shape).join(',')}]): got ${g}, reference ${r}, |diff| ${Math.abs(g - r)} > tol ${t}`;
  }
  return null;
}
