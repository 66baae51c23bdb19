/**
 * Kernels of the block one-sided Jacobi SVD (see jacobi.ts for the algorithm).
 *
 * The work matrix X stacks the scaled A (rows padded to `mp`, a multiple of 4) over V (`Np` rows),
 * `Mp = mp + Np` rows and `Np` columns (n padded to whole block pairs), in blocks of `b` columns
 * (without V's rows, `Mp = mp`, where the QR path makes V after the sweeps: jacobi-solve.ts).
 * Its flat layout is block-major with rows in quads:
 *
 *     X[r][j] at ((B * Q + (r >> 2)) * b + x) * 4 + (r & 3),   B = j div b, x = j mod b, Q = Mp / 4
 *
 * which is exactly the cell-major buffer of a gpu.js `Array(4)` kernel over output dims `[b, Q, nb]`
 * that returns 4 consecutive rows per cell (and of UPDATE_T16's `Array(16)` cells). That is why it
 * was chosen: on wasm the Gram and update kernels are register-tiled like core's matmul (a SIMD quad
 * of 4 `thread.x` lanes computes a 4 x 4 tile of G or a 4 x 16 tile of the update, each operand
 * read as vector or scalar loads, against one gather per product for a one-value-per-cell kernel:
 * measured 2.2 ns per multiply-add that way at n = 256), and the update writes the next step's X
 * directly in this layout, with no unpack.
 * Other backends run one-value-per-cell kernels over the same layouts. The inner problem (each block
 * pair's Gram diagonalized) has its kernels in jacobi-inner.ts.
 *
 * gpu.js rules followed: loops start from a literal and loop variables have distinct names; index
 * math is kept in i32 with `| 0` on wasm's hot loops; indices stay below 2^24 (checked by the caller).
 * @module
 */
import * as internal from '@sorsajs/core/internal';

type Src = internal.KernelSource;
const { divmod } = internal;

/**
 * Per-column max |a| of the input (flat, element (r, j) at `r * sa0 + j * sa1`), or -1 when the
 * column holds a NaN or an infinity. Output [n]. The test is a range comparison on the raw value
 * (false for NaN, false for +-Inf): headless-gl's GLSL dropped both `!(v === v)` after Math.abs and
 * NaN propagation through the max (measured), so the flag is a plain number, not a NaN.
 */
export const COLMAX: Src = {
  key: 'jacobi:colmax',
  arrays: ['a'],
  scalars: ['m', 'sa0', 'sa1'],
  body: `const j = this.thread.x;
let mx = 0.0;
let bad = 0.0;
for (let r = 0; r < m; r++) {
  const raw = a[r * sa0 + j * sa1];
  if (!(raw <= 3.4028234e38 && raw >= -3.4028234e38)) { bad = 1.0; }
  const v = Math.abs(raw);
  mx = v > mx ? v : mx;
}
return bad > 0.0 ? -1.0 : mx;`,
};

/** Max of the per-column maxima, or -1 when a column was flagged non-finite. Output [1]. */
export const MAX1: Src = {
  key: 'jacobi:max1',
  arrays: ['cm'],
  scalars: ['n'],
  body: `let mx = 0.0;
let bad = 0.0;
for (let j = 0; j < n; j++) {
  const v = cm[j];
  if (v < 0.0) { bad = 1.0; }
  mx = v > mx ? v : mx;
}
return bad > 0.0 ? -1.0 : mx;`,
};

/** Cell lines decoding flat index `i` of the X layout into block B, row r and column-in-block x. */
const decodeX = `${divmod('c4', 'rr', 'i', '4')}
${divmod('c5', 'x', 'c4', 'b')}
${divmod('B', 'q', 'c5', 'Q')}
const r = q * 4 + rr;`;

/**
 * X = [A / max|A| ; I] in the X layout (1-D output of Np * Mp cells; just A / max|A| when Mp = mp).
 * Padding rows and columns are 0.
 * Scalars m, n, sa0, sa1, mp, b, Q.
 */
export const PACK: Src = {
  key: 'jacobi:pack',
  arrays: ['a', 'mx'],
  scalars: ['m', 'n', 'sa0', 'sa1', 'mp', 'b', 'Q'],
  body: `const i = this.thread.x;
${decodeX}
const j = B * b + x;
let v = 0.0;
if (j < n) {
  if (r < mp) {
    if (r < m) {
      const s = mx[0];
      v = a[r * sa0 + j * sa1] / (s > 0 ? s : 1.0);
    }
  } else {
    v = (r - mp == j) ? 1.0 : 0.0;
  }
}
return v;`,
};

/**
 * Partial Gram matrices of the block pairs over the A rows, G_K = Y_Kᵀ Y_K with Y_K = [block 2K,
 * block 2K+1] (w = 2b columns). Each partial sums the rows r = 4q + rr of one residue rr (0..3) in
 * row chunk ch (QC quads of the QA); HINIT adds the 4 residues and S chunks. wasm's tiled form, a
 * 4 x 4 register tile: output dims [4, w/4, P S (w/4)] of `Array(16)`, cell (rr, jq, (K S + ch)
 * (w/4) + iq) holds G_K[4 iq + t][4 jq + u] in component 4 t + u. The lanes of a SIMD quad are the
 * 4 residues, so each of a quad step's 8 X reads (the 4 rows of 4 + 4 columns, 4 consecutive
 * elements each in the X layout) is one v128.load, for 16 vector multiply-adds; the former cell of
 * 4 i by one j did 5 loads for 4. Only tiles on or above the diagonal (jq >= iq) run their loop.
 * Block pair K is made of the blocks stored at BP[bpo + 2K] and BP[bpo + 2K + 1] (identity in a
 * sweep; a check-only pass pairs blocks without moving them). The flat buffer (the "G layout")
 * holds the partial of G_K[4 iq + t][4 jq + u] for (rr, ch) at
 * ((((K S + ch) (w/4) + iq) (w/4) + jq) 4 + rr) 16 + 4 t + u. Scalars b, Q, QA, S, QC, bpo.
 */
export const GRAM_T16: Src = {
  key: 'jacobi:gram16',
  arrays: ['X', 'BP'],
  scalars: ['b', 'Q', 'QA', 'S', 'QC', 'bpo'],
  components: 16,
  threaded: true,
  body: `const jq = this.thread.y;
${divmod('zq', 'iq', 'this.thread.z', 'b >> 1')}
${divmod('K', 'ch', 'zq', 'S')}
const i0 = iq * 4;
const j0 = jq * 4;
const hj = j0 >= b ? 1 : 0;
const hi = i0 >= b ? 1 : 0;
const q0 = ch * QC;
// Integers (| 0): the block index BP[...] is read as a float, and a float pointer or bound
// would cost a conversion at every load and test of the loop below.
const qn = (jq >= iq ? Math.min(QC, QA - q0) : 0) | 0;
let pj = ((((BP[bpo + 2 * K + hj] | 0) * Q + q0) * b + j0 - hj * b) * 4) | 0;
let pi = ((((BP[bpo + 2 * K + hi] | 0) * Q + q0) * b + i0 - hi * b) * 4) | 0;
${Array.from({ length: 16 }, (_, i) => `let s${i >> 2}${i & 3} = 0.0;`).join('\n')}
for (let qi = 0; qi < qn; qi++) {
${[0, 1, 2, 3].map((u) => `  const v${u} = X[(pj + ${4 * u}) + this.thread.x];`).join('\n')}
${[0, 1, 2, 3].map((t) => `  const a${t} = X[(pi + ${4 * t}) + this.thread.x];`).join('\n')}
${[0, 1, 2, 3].flatMap((t) => [0, 1, 2, 3].map((u) => `  s${t}${u} += a${t} * v${u};`)).join('\n')}
  pj += b * 4;
  pi += b * 4;
}
return [${Array.from({ length: 16 }, (_, i) => `s${i >> 2}${i & 3}`).join(', ')}];`,
};

/**
 * GRAM_T16 one value per cell (other backends), one chunk (S = 1), every cell: 1-D output of
 * 16 P (w/4) w cells in the G layout (cell (((K (w/4) + iq) (w/4) + jq) 4 + rr) 16 + 4 t + u is
 * the residue-rr partial of G_K[4 iq + t][4 jq + u]). Scalars b, Q, QA, w, bpo.
 */
export const GRAM: Src = {
  key: 'jacobi:gram',
  arrays: ['X', 'BP'],
  scalars: ['b', 'Q', 'QA', 'w', 'bpo'],
  body: `const i = this.thread.x;
${divmod('c4', 'u', 'i', '4')}
${divmod('c5', 't', 'c4', '4')}
${divmod('c6', 'rr', 'c5', '4')}
${divmod('c7', 'jq', 'c6', 'w / 4')}
${divmod('K', 'iq', 'c7', 'w / 4')}
const ii = iq * 4 + t;
const j = jq * 4 + u;
const hj = j >= b ? 1 : 0;
const hi = ii >= b ? 1 : 0;
const sj = (BP[bpo + 2 * K + hj] * Q * b + j - hj * b) * 4 + rr;
const si = (BP[bpo + 2 * K + hi] * Q * b + ii - hi * b) * 4 + rr;
let acc = 0.0;
for (let q = 0; q < QA; q++) {
  acc += X[si + q * b * 4] * X[sj + q * b * 4];
}
return acc;`,
};

/**
 * Lines shared by the update kernels: the source pair and the refill test, which reads the new
 * squared norm from the diagonal of G_K in `gd` (an H of the inner layout, see jacobi-inner.ts).
 */
const updateHead = (gd: string): string => `const SB = TB[B];
const K = SB >> 1;
const h = SB & 1;
const jc = h * b + x;
const refill = (ids[step * nb + B] * b + x < n) && (${gd}[(jc * 2 * b + jc) * Pp + K] <= thrZ) ? 1 : 0;
const s0b = (2 * K * Q * b) * 4;
const s1b = ((2 * K + 1) * Q * b) * 4;`;

/**
 * Deterministic noise for refilled (zero) columns: the lines setting `out` to a value in
 * [-amp/2, amp/2) for row `row` of output column (B, x) and the update's `salt`. A float-only hash
 * (Dave Hoskins' "hash without sine": fractional parts mixed by products), so no transcendental (on
 * wasm the refill branch is evaluated for every lane, and Math.sin there is a call into JS per lane).
 * Its products are what matter: the fractional part of a linear or quadratic form in (row, column), as
 * this once was, is a sawtooth whose matrices are numerically low-rank (measured: 16x16, 33x33 and
 * 40x40 noise matrices singular to 1e-15), so refilled columns could not span the null space; these
 * values behave like a random matrix (smallest singular value ~1/m of a column's norm at m x m).
 * `salt` (a count of updates) makes a column refilled again get a new vector, not the one it had.
 * `tag` keeps the four rows' variable names apart.
 */
const noise = (out: string, row: string, tag: string): string => `let hx${tag} = (${row} + 1) * 0.1031;
hx${tag} = hx${tag} - Math.floor(hx${tag});
let hy${tag} = (B * b + x + 1) * 0.1031;
hy${tag} = hy${tag} - Math.floor(hy${tag});
let hz${tag} = (salt + 1) * 0.1031;
hz${tag} = hz${tag} - Math.floor(hz${tag});
const hd${tag} = hx${tag} * (hz${tag} + 31.32) + hy${tag} * (hy${tag} + 31.32) + hz${tag} * (hx${tag} + 31.32);
const hv${tag} = (hx${tag} + hd${tag} + hy${tag} + hd${tag}) * (hz${tag} + hd${tag});
${out} = amp * (hv${tag} - Math.floor(hv${tag}) - 0.5);`;

/**
 * The outer step: Y_K <- Y_K J_K for every block pair, A and V rows alike, written moved to the next
 * step's block positions (block circle method: output block B takes source block TB[B], half h of
 * pair K); J_K is read from the inner's last H (row-major, I.JROWS, for UPDATE_R4), the new squared
 * norms from the diagonal of its G part (GD: that H; Pp its padded pair count); UPDATE_R4 copies the
 * pairs whose `live` flag (per pair, from the host's look at the rotation parameters) is 0. A real column (its original index, from `ids`, below n) whose new squared norm D is at the
 * zero threshold gets deterministic noise of size `amp` in its A rows (far below float32 resolution
 * of |A|): later steps orthogonalize it against the rest, which completes U for zero singular values
 * (its V part is untouched, so A V = U S holds for A perturbed by under amp |A|).
 * wasm's tiled form: output dims [b, Q, nb] of `Array(4)` (4 rows per cell; that buffer is the X
 * layout). Scalars b, Q, nb, n, m, step, Pp, thrZ, amp, salt (see `noise`).
 */
/** The refill of UPDATE_R4: after the loops, so only it pays the masked stores. */
const REFILL4 = `// After the loops, not around them: refill varies across a SIMD quad, and a lane-varying branch
// makes every store inside it a masked one.
if (refill == 1) {
  if (r0 < m) {
    ${noise('s0', 'r0', '0')}
    ${noise('s1', '(r0 + 1)', '1')}
    ${noise('s2', '(r0 + 2)', '2')}
    ${noise('s3', '(r0 + 3)', '3')}
    if (r0 + 1 >= m) { s1 = 0.0; }
    if (r0 + 2 >= m) { s2 = 0.0; }
    if (r0 + 3 >= m) { s3 = 0.0; }
  }
}
`;

/**
 * One source block's share of an UPDATE_R4 cell: its b columns (from X at `base`, the block's
 * offset) times the matching b rows of J_K, 4 rows of J and 16 X values a step. `loop`, `ptr` and
 * `jn` name the loop variable, the X pointer and the J values (gpu.js wants distinct names across
 * the two calls); `pj` walks J's rows across both.
 */
function updateHalf(loop: string, ptr: string, base: string, jn: string): string {
  const row = (r: number): string =>
    `  s${r} += ${[0, 1, 2, 3].map((c) => `X[(${ptr} | 0)${4 * c + r ? ` + ${4 * c + r}` : ''}] * ${jn}${c}`).join(' + ')};`;
  return `let ${ptr} = ${base} + q * b * 4;
for (let ${loop} = 0; ${loop} < nq; ${loop}++) {
  const ${jn}0 = J[(pj | 0) + this.thread.x];
  const ${jn}1 = J[((pj | 0) + 2 * b) + this.thread.x];
  const ${jn}2 = J[((pj | 0) + 4 * b) + this.thread.x];
  const ${jn}3 = J[((pj | 0) + 6 * b) + this.thread.x];
${[0, 1, 2, 3].map(row).join('\n')}
  ${ptr} += 16;
  pj += 8 * b;
}`;
}

/** UPDATE_R4's body, with or without the zero-column refill (see UPDATE_R4_LEAN). */
function updateR4Body(refill: boolean): string {
  return `const x = this.thread.x;
const q = this.thread.y;
const B = this.thread.z;
${updateHead('GD')}
let s0 = 0.0;
let s1 = 0.0;
let s2 = 0.0;
let s3 = 0.0;
const r0 = q * 4;
// A pair that did not rotate in this step (live[K] = 0, J_K = I) is copied: its loops run 0 times
// (K is uniform across a SIMD quad, so the bound is too) and the copy is selected below. The last
// sweeps rotate a few pairs of most steps (measured at 768²: under 2% of the pairs in the last two).
const nq = (live[K] > 0 ? b / 4 : 0) | 0;
// J_K[c][h b + x], row-major (I.JROWS): a uniform base plus this.thread.x, 4 consecutive elements.
let pj = K * 4 * b * b + h * b;
${updateHalf('c', 'pa', 's0b', 'j')}
${updateHalf('c2', 'pa2', 's1b', 'k')}
if (nq == 0) {
  const cpy = (h == 0 ? s0b : s1b) + q * b * 4;
  s0 = X[(cpy | 0) + this.thread.x * 4];
  s1 = X[(cpy | 0) + 1 + this.thread.x * 4];
  s2 = X[(cpy | 0) + 2 + this.thread.x * 4];
  s3 = X[(cpy | 0) + 3 + this.thread.x * 4];
}
${refill ? REFILL4 : ''}return [s0, s1, s2, s3];`;
}

export const UPDATE_R4: Src = {
  key: 'jacobi:update4',
  arrays: ['X', 'GD', 'J', 'TB', 'ids', 'live'],
  scalars: ['b', 'Q', 'nb', 'n', 'm', 'step', 'Pp', 'thrZ', 'amp', 'salt'],
  floats: ['thrZ', 'amp'],
  components: 4,
  threaded: true,
  body: updateR4Body(true),
};

/**
 * The outer step when no pair rotated (every J_K is the identity): the blocks only move to the next
 * step's positions, with UPDATE's refill of zero columns. A copy, about a tenth of an update; the
 * last sweeps are mostly such steps. wasm's tiled form (output dims [b, Q, nb] of `Array(4)`); same
 * scalars as UPDATE_R4 (J is not read).
 */
export const MOVE_R4: Src = {
  key: 'jacobi:move4',
  arrays: ['X', 'GD', 'TB', 'ids'],
  scalars: ['b', 'Q', 'nb', 'n', 'm', 'step', 'Pp', 'thrZ', 'amp', 'salt'],
  floats: ['thrZ', 'amp'],
  components: 4,
  threaded: true,
  body: `const x = this.thread.x;
const q = this.thread.y;
const B = this.thread.z;
${updateHead('GD')}
const r0 = q * 4;
const src = (h == 0 ? s0b : s1b) + q * b * 4;
let s0 = X[(src | 0) + this.thread.x * 4];
let s1 = X[(src | 0) + 1 + this.thread.x * 4];
let s2 = X[(src | 0) + 2 + this.thread.x * 4];
let s3 = X[(src | 0) + 3 + this.thread.x * 4];
${REFILL4}return [s0, s1, s2, s3];`,
};

/** MOVE_R4 one value per cell (other backends): 1-D output over the X layout. Same scalars. */
export const MOVE: Src = {
  key: 'jacobi:move',
  arrays: ['X', 'GD', 'TB', 'ids'],
  scalars: ['b', 'Q', 'nb', 'n', 'm', 'step', 'Pp', 'thrZ', 'amp', 'salt'],
  floats: ['thrZ', 'amp'],
  body: `const i = this.thread.x;
${decodeX}
${updateHead('GD')}
let v = X[(h == 0 ? s0b : s1b) + (q * b + x) * 4 + rr];
if (refill == 1 && r < m) {
  ${noise('v', 'r', '')}
}
return v;`,
};

/** UPDATE_R4 one value per cell (other backends): 1-D output over the X layout. Same scalars. */
export const UPDATE: Src = {
  key: 'jacobi:update',
  arrays: ['X', 'H', 'TB', 'ids'],
  scalars: ['b', 'Q', 'nb', 'n', 'm', 'step', 'Pp', 'thrZ', 'amp', 'salt'],
  floats: ['thrZ', 'amp'],
  body: `const i = this.thread.x;
${decodeX}
${updateHead('H')}
let v = 0.0;
if (refill == 1 && r < m) {
  ${noise('v', 'r', '')}
} else if (refill == 0 || r >= Q * 4 - nb * b) {
  for (let c = 0; c < b; c++) {
    v += X[s0b + (q * b + c) * 4 + rr] * H[((2 * b + jc) * 2 * b + c) * Pp + K];
  }
  for (let c2 = 0; c2 < b; c2++) {
    v += X[s1b + (q * b + c2) * 4 + rr] * H[((2 * b + jc) * 2 * b + b + c2) * Pp + K];
  }
}
return v;`,
};

/**
 * Column norms of the A part ([Np]); padding columns (index n and up) get -1 so they sort last.
 * Scalars b, Q, QA, n.
 */
export const NORMS: Src = {
  key: 'jacobi:norms',
  arrays: ['X'],
  scalars: ['b', 'Q', 'QA', 'n'],
  body: `const j = this.thread.x;
${divmod('B', 'x', 'j', 'b')}
const base = (B * Q * b + x) * 4;
let acc = 0.0;
for (let q = 0; q < QA; q++) {
  const p = base + q * b * 4;
  acc += X[p] * X[p] + X[p + 1] * X[p + 1] + X[p + 2] * X[p + 2] + X[p + 3] * X[p + 3];
}
return j < n ? Math.sqrt(acc) : -1.0;`,
};

/** Sorted position of each column (descending by norm, ties by index). Output [N]. Scalars N. */
export const RANK: Src = {
  key: 'jacobi:rank',
  arrays: ['s'],
  scalars: ['N'],
  body: `const j = this.thread.x;
const v = s[j];
let rk = 0;
for (let i = 0; i < N; i++) {
  const w = s[i];
  if (w > v) { rk += 1; }
  if (w == v) { if (i < j) { rk += 1; } }
}
return rk;`,
};

/** The inverse permutation: which column goes to sorted position t. Output [k]. Scalars N. */
export const PERM: Src = {
  key: 'jacobi:perm',
  arrays: ['rk'],
  scalars: ['N'],
  body: `const t = this.thread.x;
let src = 0;
for (let i = 0; i < N; i++) { if (rk[i] == t) { src = i; } }
return src;`,
};

/** Singular values: sorted norms times the scale; those at the noise floor (`nullThr`) are 0. Output [k]. */
export const SVALS: Src = {
  key: 'jacobi:svals',
  arrays: ['nrm', 'perm', 'mx'],
  scalars: ['nullThr'],
  floats: ['nullThr'],
  body: `const t = this.thread.x;
const v = nrm[perm[t]];
const s = mx[0];
return v <= nullThr ? 0.0 : v * (s > 0 ? s : 1.0);`,
};

/** Lines declaring `xB`, `xc` = divmod(j, b) for {@link readX} (b in scope). */
const readXHead = (j: string): string => divmod('xB', 'xc', j, 'b');

/** X[r][j] of the X layout, as kernel text (b, Q in scope, {@link readXHead} of j before it). */
const readX = (r: string): string => `X[((xB * Q + (${r} >> 2)) * b + xc) * 4 + (${r} & 3)]`;

/**
 * Left singular vectors: column t is the A part of column perm[t] over its norm (a unit vector even
 * for null columns, whose A part is orthogonalized noise; e_t if it is exactly zero). Output
 * [rows, k] row-major, or its transpose [k, rows] when `trans` is 1. Scalars rows, k, b, Q, trans.
 */
export const UVECS: Src = {
  key: 'jacobi:u',
  arrays: ['X', 'nrm', 'perm'],
  scalars: ['rows', 'k', 'b', 'Q', 'trans'],
  body: `const i = this.thread.x;
${divmod('q0', 'r0', 'i', 'k')}
${divmod('q1', 'r1', 'i', 'rows')}
const r = trans == 1 ? r1 : q0;
const t = trans == 1 ? q1 : r0;
const src = perm[t];
const nv = nrm[src];
let v = 0.0;
${readXHead('src')}
if (nv > 0) { v = ${readX('r')} / nv; } else { v = (r == t) ? 1.0 : 0.0; }
return v;`,
};

/** Right singular vectors before polishing: V (n x k, row-major) from X's V part. Scalars k, b, Q, mp. */
export const VVECS: Src = {
  key: 'jacobi:v',
  arrays: ['X', 'perm'],
  scalars: ['k', 'b', 'Q', 'mp'],
  body: `const i = this.thread.x;
${divmod('rv', 't', 'i', 'k')}
const src = perm[t];
const r = mp + rv;
${readXHead('src')}
return ${readX('r')};`,
};

/** W = 1.5 I - 0.5 G for the Newton-Schulz step V (1.5 I - 0.5 VᵀV). Scalars k. */
export const NSW: Src = {
  key: 'jacobi:nsw',
  arrays: ['g'],
  scalars: ['k'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'k')}
return (r == c ? 1.5 : 0.0) - 0.5 * g[i];`,
};

/**
 * The round-robin move as a table: the position each output position reads from. Circle method on
 * N players: slots 0..N-1 pair as (c, N-1-c); position 2c holds slot c and 2c+1 slot N-1-c; after
 * a step slot 0 stays and slot c >= 1 moves to c + 1 (N - 1 wraps to 1). After N - 1 steps every
 * player is back where it started. Planning, not compute.
 */
export function circleSources(N: number): Float32Array {
  const nh = N / 2;
  const T = new Float32Array(N);
  for (let j = 0; j < N; j++) {
    const jh = Math.floor(j / 2);
    const cs = j % 2 === 0 ? jh : N - 1 - jh;
    const cp = cs === 0 ? 0 : cs === 1 ? N - 1 : cs - 1;
    T[j] = cp < nh ? 2 * cp : 2 * (N - 1 - cp) + 1;
  }
  return T;
}

/**
 * UPDATE_R4 without its refill of zero columns, for the steps where no column needs one (the
 * driver checks on the host): the refill sits in a lane-varying branch whose code every cell pays.
 */
export const UPDATE_R4_LEAN: Src = { ...UPDATE_R4, key: 'jacobi:update4:lean', body: updateR4Body(false) };

/**
 * UPDATE_T16's loop over the b source columns of block 2K + `half`, two a turn (`u` 0 and 1): per
 * column 4 vector loads from its row of J (at `pj`, 4 apart; the next column's row is 2b further),
 * 4 scalar loads of its 4 rows of X (consecutive at `px`; the next column is 4 further) and 16
 * multiply-adds into s{g}{r}. Names carry `half` and `u`: gpu.js wants them distinct.
 */
function update16Loop(half: number): string {
  const column = (u: number): string[] => [
    ...[0, 1, 2, 3].map((g) => `  const j${half}${u}${g} = J[(pj + ${4 * g}${u ? ' + 2 * b' : ''}) + this.thread.x];`),
    ...[0, 1, 2, 3].map((r) => `  const a${half}${u}${r} = X[(px${half} | 0) + ${4 * u + r}];`),
    ...[0, 1, 2, 3].flatMap((g) => [0, 1, 2, 3].map((r) => `  s${g}${r} += a${half}${u}${r} * j${half}${u}${g};`)),
  ];
  return [
    `let px${half} = ((2 * K + ${half}) * Q * b + q * b) * 4;`,
    `for (let c${half} = 0; c${half} < nq; c${half}++) {`,
    ...column(0),
    ...column(1),
    `  px${half} += 8;`,
    '  pj += 4 * b;',
    '}',
  ].join('\n');
}

/**
 * UPDATE_R4_LEAN as a 4 x 16 register tile (wasm, b a multiple of 16): each SIMD quad computes 4
 * rows by 16 output columns, 16 accumulators a lane, so a step over one source column is 4 vector
 * loads of J (a row of J_K, permuted by jacobi-inner.ts's JROWS16 so that lane l's columns 4l..4l+3 sit 4
 * apart), 4 scalar loads of X (the column's 4 rows, consecutive in the X layout) and 16 vector
 * multiply-adds, the ratio of core's matmul tile. UPDATE_R4's cell (4 rows, one column) did a
 * scalar X load and splat per multiply-add. Output dims [4, b / 16, nb Q] with `Array(16)`: cell
 * (l, y, B Q + q) holds column 16 y + 4 l + g, row 4 q + r in component 4 g + r, so its cell-major
 * buffer is the X layout. The loop takes two source columns a turn (measured at 768²: CPU time of
 * an SVD 4.15-4.60 s -> 4.21-4.41 s, the update's kernel total 1.27-1.53 s -> 1.25-1.40 s: a few
 * per cent, within the noise of this VM). No refill: steps that need one run UPDATE_R4. Scalars b,
 * Q (baked).
 */
export const UPDATE_T16: Src = {
  key: 'jacobi:update16',
  arrays: ['X', 'J', 'TB', 'live'],
  scalars: ['b', 'Q'],
  components: 16,
  threaded: true,
  body: `${divmod('B', 'q', 'this.thread.z', 'Q')}
const SB = TB[B] | 0;
const K = SB >> 1;
const h = SB & 1;
const y16 = this.thread.y * 16;
${Array.from({ length: 16 }, (_, i) => `let s${i >> 2}${i & 3} = 0.0;`).join('\n')}
// A pair that did not rotate (live[K] = 0, J_K = I) is copied: its loops run 0 times (K is uniform
// across a SIMD quad, so the bound is too) and the copy is selected below.
const nq = (live[K] > 0 ? b / 2 : 0) | 0;
// Row c of the permuted J_K (JROWS16) from column h b + 16 y: lane l's column 4 l + g at 4 g + l.
let pj = (K * 4 * b * b + h * b + y16) | 0;
${update16Loop(0)}
${update16Loop(1)}
if (nq == 0) {
  const cpy = (((SB * Q + q) * b + y16) * 4 + this.thread.x * 16) | 0;
${Array.from({ length: 16 }, (_, i) => `  s${i >> 2}${i & 3} = X[cpy + ${i}];`).join('\n')}
}
return [${Array.from({ length: 16 }, (_, i) => `s${i >> 2}${i & 3}`).join(', ')}];`,
};
