/**
 * Linear algebra ops: matmul, outer, diag, trace.
 * @module
 */
import { MATMUL } from '../kernels/matmul.js';
import { packWanted, wasmMatmul } from './matmul-wasm.js';
import { engine } from '../backend/registry.js';
import { DIAG_MATRIX } from '../kernels/layout.js';
import { Tensor } from '../tensor/tensor.js';
import { broadcastShapes, fmt, sizeOf } from '../util/shape-math.js';
import { mul } from './elementwise.js';
import { launch, requireFloat } from './operand.js';
import { checkTensor } from '../tensor/checks.js';
import { disposeIntermediate, op } from '../autodiff/tape.js';
import { broadcastTo, sum, sumTo } from './broadcast.js';
import { expandDims, pad, reshape, transpose } from './shape.js';
import { mapKernel } from '../kernels/map.js';

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use the transpose of a's last two axes. */
  transposeA?: boolean;
  /** Use the transpose of b's last two axes. */
  transposeB?: boolean;
}

/**
 * Matrix product over the last two axes, broadcasting leading (batch) axes as NumPy's matmul does.
 * A 1-D `a` is a row vector and a 1-D `b` a column vector; their unit axis is dropped from the result.
 * Transposed operands are read in place (no copy).
 *
 * @example
 * ```ts
 * matmul(ones([2, 3]), ones([3, 4])).shape;          // [2, 4]
 * matmul(ones([5, 2, 3]), ones([3, 4])).shape;       // [5, 2, 4]
 * matmul(ones([3, 2]), ones([3, 4]), { transposeA: true }).shape; // [2, 4]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  checkTensor('matmul', a, 'a');
  checkTensor('matmul', b, 'b');
  requireFloat('matmul', a);
  requireFloat('matmul', b);
  if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: operands must have rank >= 1, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  if (a.rank > 2 && b.rank === 2 && !opts.transposeA && a.shape[a.rank - 1] === b.shape[opts.transposeB ? 1 : 0]) {
    // [..., M, K] @ [K, N] is one [(...M), K] @ [K, N] product (reshapes are views): one launch with
    // every row in the kernel's row tiles, instead of a batch of M-row products that each read b
    // (M = 1 in generation: 4-row tiles three quarters empty). Its b-gradient is then one product
    // over all the rows, not a batch of them summed.
    const N = b.shape[opts.transposeB ? 0 : 1];
    const flat = reshape(a, [-1, a.shape[a.rank - 1]]);
    const out = matmul(flat, b, opts);
    const shaped = reshape(out, [...a.shape.slice(0, -1), N]);
    disposeIntermediate(flat);
    disposeIntermediate(out);
    return shaped;
  }
  return op([a, b], () => matmulForward(a, b, opts), (g, _out, needs) => matmulVjp(g, a, b, opts, needs));
}

/**
 * Cotangents of matmul. With Ae, Be the effective operands (transposed when asked), dAe = g Beᵀ and
 * dBe = Aeᵀ g; each is transposed back when its operand was read transposed, and summed over the
 * batch axes broadcasting added. Vectors are handled as 1-row / 1-column matrices.
 */
function matmulVjp(g: Tensor, a: Tensor, b: Tensor, opts: MatmulOptions, needs: readonly boolean[]): [Tensor | null, Tensor | null] {
  const av = a.rank === 1;
  const bv = b.rank === 1;
  const a2 = av ? reshape(a, [1, a.size]) : a;
  const b2 = bv ? reshape(b, [b.size, 1]) : b;
  const ta = !!opts.transposeA && !av;
  const tb = !!opts.transposeB && !bv;
  let g2 = g;
  if (av) g2 = expandDims(g2, bv ? g2.rank : -2);
  if (bv) g2 = expandDims(g2, -1);
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (needs[0]) {
    const d = ta ? matmul(b2, g2, { transposeA: tb, transposeB: true }) : matmul(g2, b2, { transposeB: !tb });
    ga = reshape(sumTo(d, a2.shape), a.shape);
  }
  if (needs[1]) {
    const d = tb ? matmul(g2, a2, { transposeA: true, transposeB: ta }) : matmul(a2, g2, { transposeA: !ta });
    gb = reshape(sumTo(d, b2.shape), b.shape);
  }
  return [ga, gb];
}

/**
 * x @ Wᵀ (2-D, wasm) runs as (W @ xᵀ)ᵀ when copying W (N·K values) would cost more than SWAP_FROM
 * times copying x and the result (M·(K + N)) (see matmulForward).
 */
const SWAP_FROM = 2;

/**
 * Up to this many rows (one row block of the wasm kernel), x @ Wᵀ is not swapped once W's packed
 * panels are cached or will be kept at this use (a weight at its second token of generation): the
 * product then streams the packed W once with 4-row tiles, where the swapped one fills 1 to 4 of
 * each tile's 16 columns. Measured, GPT-2 small's greedy decode on wasm: see performance.md.
 */
const SMALL_M = 4;

function matmulForward(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  const av = a.rank === 1;
  const bv = b.rank === 1;
  const as = av ? [1, a.shape[0]] : [...a.shape];
  const bs = bv ? [b.shape[0], 1] : [...b.shape];
  const ta = !!opts.transposeA && !av;
  const tb = !!opts.transposeB && !bv;
  const ra = as.length;
  const rb = bs.length;
  const M = ta ? as[ra - 1] : as[ra - 2];
  const Ka = ta ? as[ra - 2] : as[ra - 1];
  const Kb = tb ? bs[rb - 1] : bs[rb - 2];
  const N = tb ? bs[rb - 2] : bs[rb - 1];
  if (Ka !== Kb) {
    throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)}${ta ? 'ᵀ' : ''} @ ${fmt(b.shape)}${tb ? 'ᵀ' : ''} (${Ka} vs ${Kb})`);
  }
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', as.slice(0, -2), bs.slice(0, -2));
  } catch {
    throw new Error(`matmul: batch axes of ${fmt(a.shape)} and ${fmt(b.shape)} cannot be broadcast together (${fmt(as.slice(0, -2))} vs ${fmt(bs.slice(0, -2))})`);
  }
  // An operand whose batch axes are all broadcast is read with batch stride 0; one with the full
  // batch shape with its own stride; a partial broadcast is materialized first.
  const prep = (t: Tensor, shape: number[]): { t: Tensor; stride: number; made: boolean } => {
    const own = shape.slice(0, -2);
    const mat = shape[shape.length - 2] * shape[shape.length - 1];
    if (sizeOf(own) === 1) return { t, stride: 0, made: false };
    if (own.length === batch.length && own.every((d, i) => d === batch[i])) return { t, stride: mat, made: false };
    const view = reshape(t, shape);
    const full = broadcastTo(view, [...batch, ...shape.slice(-2)]);
    view.dispose();
    return { t: full, stride: mat, made: true };
  };
  const pa = prep(a, as);
  const pb = prep(b, bs);
  const [cA, cB] = [as[ra - 1], bs[rb - 1]];
  const sa0 = ta ? 1 : cA;
  const sa1 = ta ? cA : 1;
  const sb0 = tb ? 1 : cB;
  const sb1 = tb ? cB : 1;
  const outShape = [...batch, ...(av ? [] : [M]), ...(bv ? [] : [N])];
  const scalars = [M, N, Ka, sa0, sa1, sb0, sb1, pa.stride, pb.stride];
  let out: Tensor;
  const dims = { M, N, K: Ka, sa0, sa1, sb0, sb1, bsa: pa.stride, bsb: pb.stride, nb: sizeOf(batch) };
  if (engine().name === 'wasm' && tb && !ta && !av && ra === 2 && rb === 2 && N * Ka > SWAP_FROM * M * (Ka + N) && !(M <= SMALL_M && packWanted(b, dims, true))) {
    // x @ Wᵀ with W far bigger than x and the result (a language model's head: [T, 768] @
    // [50257, 768]ᵀ): copying W transposed (below) would move 154 MB a call; computing (W @ xᵀ)ᵀ
    // copies only x and the result, and reads W row-major, once. Measured [128, 768] @ [50257,
    // 768]ᵀ on wasm: 3.1-4.1 s -> see performance.md.
    const xt = transpose(a);
    const ct = matmulForward(b, xt, {});
    out = transpose(ct);
    xt.dispose();
    ct.dispose();
  } else if (engine().name === 'wasm') {
    // 4 x 16-tiled SIMD kernel, B packed into column panels first when large or transposed (a
    // transposed B is packed straight from its strides, no copy; a weight's panels are kept in the
    // cache of derived forms), whole tiles stored straight into row-major C, partial ones laid out
    // by a cheap second kernel (kernels/matmul.ts).
    out = wasmMatmul(pa.t, pb.t, dims, outShape);
  } else {
    out = launch('matmul', MATMUL, outShape, 'float32', [pa.t, pb.t], scalars);
  }
  if (pa.made) pa.t.dispose();
  if (pb.made) pb.t.dispose();
  return out;
}

/**
 * Outer product of two vectors: `[m] x [n] -> [m, n]`.
 *
 * @example
 * ```ts
 * outer(tensor([1, 2]), tensor([3, 4, 5])).shape; // [2, 3]
 * ```
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  checkTensor('outer', a, 'a');
  checkTensor('outer', b, 'b');
  if (a.rank !== 1 || b.rank !== 1) throw new Error(`outer: expects two vectors, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const col = reshape(a, [a.size, 1]);
  const out = mul(col, b);
  disposeIntermediate(col);
  return out;
}

/**
 * A vector's diagonal matrix, or a matrix's main diagonal.
 *
 * @example
 * ```ts
 * diag(tensor([1, 2])).shape;            // [2, 2]
 * diag(tensor([[1, 2], [3, 4]]));        // [1, 4]
 * ```
 */
export function diag(x: Tensor): Tensor {
  checkTensor('diag', x);
  if (x.rank === 1) {
    return op([x], () => launch('diag', DIAG_MATRIX, [x.size, x.size], x.dtype, [x], [x.size]), (g) => [diag(g)]);
  }
  if (x.rank === 2) {
    const [m, n] = x.shape;
    const k = Math.min(m, n);
    // The diagonal is a strided view: element i at i * (n + 1).
    const { src, scalars } = mapKernel('copy', 'v0', [k], [[n + 1]]);
    return op(
      [x],
      () => launch('diag', src, [k], x.dtype, [x], scalars),
      (g) => [pad(diag(g), [[0, m - k], [0, n - k]])],
    );
  }
  throw new Error(`diag: expects a vector or a matrix, got shape ${fmt(x.shape)}`);
}

/**
 * Sum of a matrix's main diagonal (a scalar).
 *
 * @example
 * ```ts
 * trace(tensor([[1, 2], [3, 4]])); // 5
 * ```
 */
export function trace(x: Tensor): Tensor {
  checkTensor('trace', x);
  if (x.rank !== 2) throw new Error(`trace: expects a matrix, got shape ${fmt(x.shape)}`);
  const d = diag(x);
  const t = sum(d);
  disposeIntermediate(d);
  return t;
}

