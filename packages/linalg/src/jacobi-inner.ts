/**
 * Kernels of the inner problem of the block Jacobi SVD (see jacobi.ts): per block pair, the Gram
 * matrix G_K is diagonalized by one sweep of two-sided Jacobi while the rotations accumulate in J_K.
 * The outer kernels (Gram, update, finishing) are in jacobi-kernels.ts.
 *
 * gpu.js rules followed: loops start from a literal and loop variables have distinct names; pipeline
 * steps index the 3-D results of earlier steps in 3-D.
 * @module
 */
import * as internal from '@sorsajs/core/internal';

type Src = internal.KernelSource;
const { divmod } = internal;

/**
 * The inner layout, "pair-minor": an H holds, per block pair K, G_K (part 0) and J_K (part 1), each
 * w x w, element (part, col, row) of pair K at ((part w + col) w + row) Pp + K, Pp = P rounded up to
 * a multiple of 4 (padding pairs hold zeros and never rotate). The pairs are the fastest index
 * because every pair runs the same schedule: on wasm the inner kernels run over 3-D output dims
 * [Pp, w, 2w] (K, row, part w + col) (the rotation, `irot4`, over [Pp, w/4, 2w] with 4 rows a
 * cell), so the 4 lanes of a SIMD quad are 4 pairs at the same (row, col), every rotation index
 * (partner, column, row) is uniform, and every read is `uniform + this.thread.x`: one v128.load with the gpu.js patch, no gather (the previous layout,
 * lanes along a column, needed two gathers a cell for the partner row). Other backends run the same
 * bodies over 1-D outputs; small problems run them as one gpu.js pipeline reading 3-D results.
 *
 * A single pair (P = 1, so Pp = 1 and the layout is plain column-major) has no 4 pairs to share a
 * quad: on wasm its kernels run with the lanes along the row instead (the layout's first scheme),
 * output dims [w, 1, 2w], reads at the cell's own row one v128.load and at the partner row a gather.
 *
 * `Form` picks how a body indexes: `cube` (3-D output, K = this.thread.x), `flat` (1-D output, K
 * decoded), `rows` (one pair, row = this.thread.x), `pipe` (one pair as `rows`, in a pipeline step
 * reading earlier steps' 3-D results).
 */
export type Form = 'cube' | 'flat' | 'rows' | 'pipe';

/** Element (part, col, row) of pair K of an H-layout array, as kernel text. */
function at(form: Form, arr: string, part: string, col: string, row: string): string {
  if (form === 'pipe') return `${arr}[(${part}) * w + (${col})][0][${row}]`;
  if (form === 'rows') {
    // Pp = 1, K = 0: the cell's own row is this.thread.x (a v128.load), any other row a gather.
    const base = `((${part}) * w + (${col})) * w`;
    return row === 'row' ? `${arr}[(${base} | 0) + this.thread.x]` : `${arr}[${base} + (${row})]`;
  }
  const base = `(((${part}) * w + (${col})) * w + (${row})) * Pp`;
  // The cube form's read is (uniform | 0) + this.thread.x: 4 consecutive pairs, one v128.load.
  return form === 'cube' ? `${arr}[(${base} | 0) + this.thread.x]` : `${arr}[${base} + K]`;
}

/** Element (y, pos) of pair K of a rotation-parameter array (RP, [2][w][Pp]), as kernel text. */
function atRP(form: Form, y: string, pos: string): string {
  if (form === 'pipe') return `RP[${y}][0][${pos}]`;
  if (form === 'rows') return pos === 'row' ? `RP[((${y}) * w | 0) + this.thread.x]` : `RP[(${y}) * w + (${pos})]`;
  const base = `((${y}) * w + (${pos})) * Pp`;
  return form === 'cube' ? `RP[(${base} | 0) + this.thread.x]` : `RP[${base} + K]`;
}

/** The lines declaring K and the two other coordinates (`y`, `z`) of a cell, per form. */
function pre(form: Form, ny: string): string {
  if (form === 'flat') {
    return `const i = this.thread.x;
${divmod('c1', 'K', 'i', 'Pp')}
${divmod('z', 'y', 'c1', ny)}`;
  }
  if (form === 'rows' || form === 'pipe') {
    return `const K = 0;
const y = this.thread.x;
const z = this.thread.z;`;
  }
  return `const K = this.thread.x;
const y = this.thread.y;
const z = this.thread.z;`;
}

/**
 * The lines declaring `part` and `col` from z = part w + col (part 0 or 1). The 3-D forms know z <
 * 2 w, so one comparison does it, in integers; the flat form's z comes from float index math
 * (divmod), which the webgl backend needs. On wasm, divmod's two float divisions a cell, and the
 * float index math they fed (every later index converted back to an integer at its load), took about
 * half of IROT's time (measured at 512²: 671 ms of IROT in one SVD before, 345 ms after).
 */
function splitPart(form: Form): string {
  if (form === 'flat') return divmod('part', 'col', 'z', 'w');
  return `const part = (z >= w ? 1 : 0) | 0;
const col = z - part * w;`;
}

/** A kernel in the single-kernel forms: `cube` and `rows` for wasm (3-D output), `flat` elsewhere. */
export interface Forms {
  cube: Src;
  rows: Src;
  flat: Src;
}

function forms(key: string, arrays: string[], scalars: string[], body: (f: Form) => string, floats?: string[]): Forms {
  const f = floats ? { floats } : {};
  return {
    cube: { key: `${key}:cube`, arrays, scalars, body: body('cube'), flat: true, ...f },
    rows: { key: `${key}:rows`, arrays, scalars, body: body('rows'), flat: true, ...f },
    flat: { key: `${key}:flat`, arrays, scalars, body: body('flat'), ...f },
  };
}

/**
 * H0 = [G_K | I] for every pair: G_K from the Gram's partial sums (the 4 residues and S chunks
 * added, read from the G layout's upper triangle, see GRAM_T16), J_K the identity; padding pairs
 * (K >= P) zero. Cells (K, row, part w + col). Scalars w, Pp, S, P. The `cube` and `flat` forms
 * fill only G's upper triangle (col >= row, 0 below), all that IROT's forms of the same name read
 * (see irotBody); each G entry is 4 S gathered reads on wasm, so the lower half was half the cost.
 */
const hinitBody = (form: Form): string => `${pre(form, 'w')}
const row = y;
${splitPart(form)}
let v = 0.0;
if (part == 0) {
  if (K < P${form === 'cube' || form === 'flat' ? ' && col >= row' : ''}) {
    const gr = row < col ? row : col;
    const gc = row < col ? col : row;
    const rq = gr >> 2;
    const cq = gc >> 2;
    const gt = (gr & 3) * 4 + (gc & 3);
    for (let ch = 0; ch < S; ch++) {
      const base = ((((K * S + ch) * (w / 4) + rq) * (w / 4) + cq) * 64) + gt;
      v += (G[base] + G[base + 16]) + (G[base + 32] + G[base + 48]);
    }
  }
} else {
  v = (col == row && K < P) ? 1.0 : 0.0;
}
return v;`;

/** H0 from the Gram (see hinitBody). Output dims [Pp, w, 2 w] (cube), [w, 1, 2 w] (rows) or Pp 2 w^2 cells. */
export const HINIT = forms('jacobi:hinit', ['G'], ['w', 'Pp', 'S', 'P'], hinitBody);

/**
 * Running convergence measure: per block pair, the max of the previous value and of
 * |g_ij| / sqrt(g_ii g_jj) over i < j with both columns above the zero threshold, read from an H's G
 * part. A real column (original index below n) at the zero threshold counts as 1, not converged:
 * this outer step's update refills it with noise (jacobi-kernels.ts) that no pass has measured or
 * orthogonalized yet, so the iteration must not stop on this sweep (with a single block pair, the
 * refill would otherwise come after the only measure, and U would keep raw noise columns). Column i
 * of pair K belongs to the block whose original index is BP[bpo + 2K + (i >= b)] (see the plan's BP:
 * where every block sits before this outer step). Output [P] (K = this.thread.x on every backend).
 * Scalars w, Pp, b, n, bpo, thrZ.
 */
const convBody = (form: Form): string => `const K = this.thread.x;
let mx = prev[K];
for (let i = 0; i < w; i++) {
  const gi = ${at(form, 'H', '0', 'i', 'i')};
  const hb = i >= b ? 1 : 0;
  if (gi <= thrZ && BP[bpo + 2 * K + hb] * b + i - hb * b < n) { mx = 1.0; }
  for (let j = 0; j < w; j++) {
    if (j > i) {
      const gj = ${at(form, 'H', '0', 'j', 'j')};
      if (gi > thrZ && gj > thrZ) {
        const g = Math.abs(${at(form, 'H', '0', 'j', 'i')}) / Math.sqrt(gi) / Math.sqrt(gj);
        mx = g > mx ? g : mx;
      }
    }
  }
}
return mx;`;

/** The running measure (see convBody). */
export const CONV: Src = { key: 'jacobi:conv', arrays: ['H', 'prev', 'BP'], scalars: ['w', 'Pp', 'b', 'n', 'bpo', 'thrZ'], floats: ['thrZ'], body: convBody('cube') };

/** Max of a vector. Output [1]. Scalars n. */
export const VMAX: Src = {
  key: 'jacobi:vmax',
  arrays: ['v'],
  scalars: ['n'],
  body: `let mx = 0.0;
for (let j = 0; j < n; j++) { const u = v[j]; mx = u > mx ? u : mx; }
return mx;`,
};

/**
 * The rotation of inner step `s`, per position: each position `pos` of a pair is paired with
 * PT[s w + pos] (a schedule table, see `innerSchedule`); the new column there is c a_pos + beta
 * a_partner, with (c, beta) = (c, -s) for the pair's first column and (c, s) for its second
 * (a_p' = c a_p - s a_q, a_q' = s a_p + c a_q). Cells (K, pos, yy), yy = 0 holding c and yy = 1
 * beta (RP layout: (yy, pos, K) at (yy w + pos) Pp + K); both positions of a pair compute the same
 * numbers. Pairs orthogonal to `tol` (|g_pq| <= tol sqrt(g_pp g_qq)) or with a column at the zero
 * threshold get c = 1, beta = 0. t = tan of the angle zeroing g_pq, the smaller root of
 * t^2 + 2 theta t - 1 = 0 with theta = (g_qq - g_pp) / (2 g_pq), computed as
 * (|a_q|/|a_p| - |a_p|/|a_q|) / (2 gamma) so nothing squares a ratio; for |theta| > big
 * (1/sqrt(eps)) t = 1 / (2 theta), LAPACK's branch, so theta^2 never overflows. Reads the G part of
 * an H. Scalars w, Pp, s, thrZ, tol, big.
 */
const iparamsBody = (form: Form): string => `${pre(form, 'w')}
const pos = y;
const other = PT[s * w + pos] | 0;
const p = pos < other ? pos : other;
const q = pos < other ? other : pos;
const app = ${at(form, 'H', '0', 'p', 'p')};
const aqq = ${at(form, 'H', '0', 'q', 'q')};
const apq = ${at(form, 'H', '0', 'q', 'p')};
let c = 1.0;
let sn = 0.0;
if (app > thrZ && aqq > thrZ) {
  const np = Math.sqrt(app);
  const nq = Math.sqrt(aqq);
  const g = (apq / np) / nq;
  if (Math.abs(g) > tol) {
    const theta = (nq / np - np / nq) / (2.0 * g);
    let t = 0.0;
    if (Math.abs(theta) > big) {
      t = 0.5 / theta;
    } else {
      t = (theta >= 0 ? 1.0 : -1.0) / (Math.abs(theta) + Math.sqrt(1.0 + theta * theta));
    }
    c = 1.0 / Math.sqrt(1.0 + t * t);
    sn = t * c;
  }
}
return z == 0 ? c : (pos == p ? -sn : sn);`;

/** The rotation parameters (see iparamsBody). Output dims [Pp, w, 2] (cube), [w, 1, 2] (rows) or 2 w Pp cells. */
export const IPARAMS = forms('jacobi:iparams', ['H', 'PT'], ['w', 'Pp', 's', 'thrZ', 'tol', 'big'], iparamsBody, ['thrZ', 'tol', 'big']);

/**
 * IPARAMS's cube form computing both numbers of a position in one cell (wasm, Pp a multiple of 4):
 * output dims [Pp, w, 1] with `Array(2)`, c stored at (0 w + pos) Pp + K and beta at (w + pos) Pp + K
 * (the RP layout, by a store). The cube form's two cells a position each ran the whole chain of
 * square roots and divisions for one of its two numbers. Scalars baked: w, Pp; s, thrZ, tol, big passed.
 */
export function iparams2(w: number, Pp: number): Src {
  const body = iparamsBody('cube').replace('return z == 0 ? c : (pos == p ? -sn : sn);', 'return [c, pos == p ? -sn : sn];');
  const src: Src = { key: 'jacobi:iparams2', arrays: ['H', 'PT'], scalars: ['w', 'Pp', 's', 'thrZ', 'tol', 'big'], floats: ['thrZ', 'tol', 'big'], components: 2, flat: true, body, store: { strides: [1, Pp, w * Pp], offsets: [0, w * Pp] } };
  return internal.bakeScalars(src, { w, Pp });
}

/**
 * One inner step, both halves in one kernel: H' = [Rᵀ G_K R | J_K R]. Column `col` of M R is
 * c_col M[:, col] + beta_col M[:, partner(col)], row `row` of Rᵀ M is c_row M[row, :] +
 * beta_row M[partner(row), :], so an entry of Rᵀ G R reads four entries of G and an entry of J R
 * two of J. Cells (K, row, part w + col). Scalars w, Pp, s.
 *
 * G_K is symmetric, so the `cube` and `flat` forms compute and read only its upper triangle
 * (col >= row; the cells below hold 0, and every reader of G takes col >= row: IPARAMS (q, p) with
 * q > p, CONV, the update's diagonal), which halves the G half's work. The `rows` and `pipe` forms
 * (one pair, lanes along the row) keep the whole G: there the mirrored index would vary across the
 * lanes and turn each SIMD load into a gather.
 */
/**
 * G(a, b) of an H where only G's upper triangle is kept: the entry (max, min). Ternaries, not
 * Math.max/min, and partners read as integers (| 0): gpu.js's wasm code does Math.max/min and
 * anything mixed with a float read in float32, so every index built from them was converted back at
 * its load.
 */
const gUpper = (form: Form, a: string, b: string): string => at(form, 'H', '0', `(${a} < ${b} ? ${b} : ${a})`, `(${a} < ${b} ? ${a} : ${b})`);

const irotBody = (form: Form): string => {
  const tri = form === 'cube' || form === 'flat';
  const g = (a: string, b: string): string => (tri ? gUpper(form, a, b) : at(form, 'H', '0', a, b));
  return `${pre(form, 'w')}
const row = y;
${splitPart(form)}
const pc = PT[s * w + col] | 0;
const cc = ${atRP(form, '0', 'col')};
const bc = ${atRP(form, '1', 'col')};
let v = 0.0;
if (part == 0) {
  if (${tri ? 'col >= row' : 'true'}) {
    const pr = PT[s * w + row] | 0;
    const cr = ${atRP(form, '0', 'row')};
    const br = ${atRP(form, '1', 'row')};
    const mr = cc * ${g('col', 'row')} + bc * ${g('pc', 'row')};
    const mp = cc * ${g('col', 'pr')} + bc * ${g('pc', 'pr')};
    v = cr * mr + br * mp;
  }
} else {
  v = cc * ${at(form, 'H', '1', 'col', 'row')} + bc * ${at(form, 'H', '1', 'pc', 'row')};
}
return v;`;
};

/** One inner step (see irotBody). Output dims [Pp, w, 2 w] (cube), [w, 1, 2 w] (rows) or Pp 2 w^2 cells. */
export const IROT = forms('jacobi:irot', ['H', 'RP', 'PT'], ['w', 'Pp', 's'], irotBody);

/**
 * IROT's cube form computing 4 rows a cell (wasm, Pp a multiple of 4): output dims [Pp, w/4, 2w]
 * with `Array(4)`, value r of cell (K, yq, z) being row 4 yq + r, placed in the H layout by a store
 * (lane K stride 1, so each value is one v128 store). The column's partner and rotation are read
 * once for the 4 rows. Scalars baked: w, Pp (the store's strides need them); s is passed.
 */
export function irot4(w: number, Pp: number): Src {
  const g = (a: string, b: string): string => gUpper('cube', a, b);
  const rows = [0, 1, 2, 3]
    .map(
      (r) => `  const row${r} = yq * 4 + ${r};
  if (col >= row${r}) {
    const pr${r} = PT[s * w + row${r}] | 0;
    const mr${r} = cc * ${g('col', `row${r}`)} + bc * ${g('pc', `row${r}`)};
    const mp${r} = cc * ${g('col', `pr${r}`)} + bc * ${g('pc', `pr${r}`)};
    v${r} = ${atRP('cube', '0', `row${r}`)} * mr${r} + ${atRP('cube', '1', `row${r}`)} * mp${r};
  }`,
    )
    .join('\n');
  const jrows = [0, 1, 2, 3].map((r) => `  v${r} = cc * ${at('cube', 'H', '1', 'col', `(yq * 4 + ${r})`)} + bc * ${at('cube', 'H', '1', 'pc', `(yq * 4 + ${r})`)};`).join('\n');
  const body = `const K = this.thread.x;
const yq = this.thread.y;
const z = this.thread.z;
${splitPart('cube')}
const pc = PT[s * w + col] | 0;
const cc = ${atRP('cube', '0', 'col')};
const bc = ${atRP('cube', '1', 'col')};
let v0 = 0.0;
let v1 = 0.0;
let v2 = 0.0;
let v3 = 0.0;
if (part == 0) {
${rows}
} else {
${jrows}
}
return [v0, v1, v2, v3];`;
  const src: Src = { key: 'jacobi:irot4', arrays: ['H', 'RP', 'PT'], scalars: ['w', 'Pp', 's'], components: 4, body, store: { strides: [1, 4 * Pp, w * Pp], offsets: [0, Pp, 2 * Pp, 3 * Pp] } };
  return internal.bakeScalars(src, { w, Pp });
}

/** A kernel of a pipeline: arrays, then scalars, and a body (core's PipelineSource kernels). */
type PipeKernel = Omit<Src, 'key' | 'threaded' | 'components' | 'floats' | 'flat'>;

/**
 * The inner sweep of one outer step as one gpu.js pipeline, for a single block pair on wasm (n <= 32):
 * gpu.js then runs the whole plan back to back on the calling thread ('fused-sync'), with no
 * per-kernel call, copy or allocation, which is what a small SVD's time is made of (26 x 26: ~3x
 * faster than kernel by kernel). Bigger plans would run 'fused-threaded', which measured slower than
 * the kernels one by one at n = 256 (a barrier per step), so they don't use it. Steps pass 3-D
 * results [w, 1, 2w] (the `rows` scheme) that the next step indexes in 3-D; the results come back
 * flat, in the inner layout. Arguments: the Gram (G layout), the running CONV vector, the schedule
 * table, the plan's BP table, then scalars w, Pp (1), S, P (1), thrZ, tol, big, b, n, bpo (CONV's).
 * Results: the final H and the new CONV vector.
 */
export function innerPipeline(w: number, steps: number, kind: string): internal.PipelineSource {
  const kernels: Record<string, PipeKernel> = {
    hinit: { arrays: HINIT.cube.arrays, scalars: HINIT.cube.scalars, body: hinitBody('pipe') },
    conv: { arrays: CONV.arrays, scalars: CONV.scalars, body: convBody('pipe') },
    iparams: { arrays: IPARAMS.cube.arrays, scalars: IPARAMS.cube.scalars, body: iparamsBody('pipe') },
    irot: { arrays: IROT.cube.arrays, scalars: IROT.cube.scalars, body: irotBody('pipe') },
    flat: {
      arrays: ['H'],
      scalars: ['w'],
      body: `const i = this.thread.x;
${divmod('z', 'y', 'i', 'w')}
return H[z][0][y];`,
    },
  };
  return {
    key: `jacobi:inner:${kind}:${w}:${steps}`,
    arity: 14,
    threads: false,
    kernels,
    plan(call, args) {
      const [Graw, prev, PT, BP, sw, sPp, sS, sP, thrZ, tol, big, sb, sn, bpo] = args;
      let H = call('hinit', [w, 1, 2 * w], [Graw, sw, sPp, sS, sP]);
      const conv = call('conv', [1], [H, prev, BP, sw, sPp, sb, sn, bpo, thrZ]);
      for (let it = 0; it < steps; it++) {
        const RP = call('iparams', [w, 1, 2], [H, PT, sw, sPp, it, thrZ, tol, big]);
        H = call('irot', [w, 1, 2 * w], [H, RP, PT, sw, sPp, it]);
      }
      return [call('flat', [w * 2 * w], [H, sw]), conv];
    },
  };
}

/**
 * The inner schedules, as partner tables ([steps][w]: the position each position is paired with):
 * `full`, a round robin over all w columns of the pair (w - 1 steps, the circle method), which the
 * first outer step of a sweep uses so that pairs inside a block are met once a sweep; `cross`, the b
 * steps pairing column i of the first block with column (i + step) mod b of the second, every pair
 * across the two blocks once. Planning, not compute.
 */
export function innerSchedule(b: number): { full: Float32Array; cross: Float32Array } {
  const w = 2 * b;
  const full = new Float32Array((w - 1) * w);
  // Circle method: slot 0 fixed, the others rotate; at step s slot c pairs with slot w - 1 - c.
  for (let st = 0; st < w - 1; st++) {
    const at = (c: number): number => (c === 0 ? 0 : ((c - 1 + st) % (w - 1)) + 1);
    for (let c = 0; c < w / 2; c++) {
      const p = at(c);
      const q = at(w - 1 - c);
      full[st * w + p] = q;
      full[st * w + q] = p;
    }
  }
  const cross = new Float32Array(b * w);
  for (let st = 0; st < b; st++) {
    for (let i = 0; i < b; i++) {
      const j = b + ((i + st) % b);
      cross[st * w + i] = j;
      cross[st * w + j] = i;
    }
  }
  return { full, cross };
}

/**
 * J_K row-major, [P][w][w], from an H's J part: the update then reads the 4 columns a SIMD quad
 * needs as 4 consecutive elements (one v128.load with the gpu.js patch) instead of a gather. Runs on
 * wasm only (the tiled update's input), over output dims [w, w, P] (jc, c, K), whose flat order is
 * the [P][w][w] one: the cell's coordinates are its thread indices, with no index division (a 1-D
 * form's two float divmods a cell took most of its time). Scalars w, Pp.
 */
export const JROWS: Src = jrows('jacobi:jrows', 'const jc = this.thread.x;');

/**
 * JROWS with each row's columns permuted within groups of 16, for UPDATE_T16: column 16 y + 4 l + g
 * sits at 16 y + 4 g + l, so the columns 4 l + g (g fixed) of the 4 lanes l of a quad are 4
 * consecutive elements, one v128 load. Needs w a multiple of 16. Same dims and scalars as JROWS.
 */
export const JROWS16: Src = jrows(
  'jacobi:jrows16',
  `const xs = this.thread.x;
const lo = xs & 15;
const jc = (xs - lo) + ((lo & 3) << 2) + (lo >> 2);`,
);

/** A JROWS kernel whose cell reads J column `jc`, declared by `jcLine` from this.thread.x. */
function jrows(key: string, jcLine: string): Src {
  return {
    key,
    arrays: ['H'],
    scalars: ['w', 'Pp'],
    flat: true,
    body: `${jcLine}
const c = this.thread.y;
const K = this.thread.z;
return ${at('flat', 'H', '1', 'jc', 'c')};`,
  };
}
