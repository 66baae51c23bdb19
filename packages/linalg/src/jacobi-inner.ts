/**
 * Kernels of the inner problem of the block Jacobi SVD (see jacobi.ts): per block pair, the Gram
 * matrix G_K is diagonalized by one sweep of two-sided Jacobi while the rotations accumulate in J_K.
 * The outer kernels (Gram, update, finishing) are in jacobi-kernels.ts.
 *
 * gpu.js rules followed: loops start from a literal and loop variables have distinct names; pipeline
 * steps index the 3-D results of earlier steps in 3-D.
 * @module
 */
import type { internal } from '@sorsajs/core';
import { internal as coreInternal } from '@sorsajs/core';

type Src = internal.KernelSource;
const { divmod } = coreInternal;

/**
 * Inner kernels work on H: per block pair K, its Gram part G_K then its accumulated rotation J_K,
 * each w x w and column-major: (row, col) of part `part` at ((2K + part) w + col) w + row. On wasm
 * they run over 3-D output dims [w, w, 2P] (row, col, 2K + part), so the column, the part and the
 * column's rotation are uniform across a SIMD quad (scalar loads, real branches) and only reads
 * along the row are 4-lane gathers; elsewhere over 1-D outputs. `inner` builds both forms. A G alone
 * (IROT2's result) has the same layout with one part per pair: stride `gs` = w^2 instead of 2 w^2.
 */
function inner(key: string, arrays: string[], scalars: string[], body: string, floats?: string[]): { flat: Src; cube: Src } {
  const flatPre = `const i = this.thread.x;
${divmod('c1', 'row', 'i', 'w')}
${divmod('KP', 'col', 'c1', 'w')}`;
  const cubePre = `const row = this.thread.x;
const col = this.thread.y;
const KP = this.thread.z;`;
  const f = floats ? { floats } : {};
  // ROWX: the row as an index term. In the cube form it is this.thread.x itself, so a read at
  // (uniform | 0) + this.thread.x is 4 consecutive elements, one v128.load with the gpu.js patch.
  return {
    flat: { key: `${key}:flat`, arrays, scalars, body: `${flatPre}\n${body.replace(/ROWX/g, 'row')}`, ...f },
    cube: { key: `${key}:cube`, arrays, scalars, body: `${cubePre}\n${body.replace(/ROWX/g, 'this.thread.x')}`, flat: true, ...f },
  };
}

const HINIT_BODY = `const K = Math.floor(KP / 2);
const part = KP - 2 * K;
let v = 0.0;
if (part == 0) {
  const gr = Math.min(row, col);
  const gc = Math.max(row, col);
  const rq = Math.floor(gr / 4);
  const gt = gr - rq * 4;
  for (let ch = 0; ch < S; ch++) {
    const base = (((K * S + ch) * (w / 4) + rq) * w + gc) * 16 + gt;
    v += (G[base] + G[base + 4]) + (G[base + 8] + G[base + 12]);
  }
} else {
  v = (col == row) ? 1.0 : 0.0;
}
return v;`;

/** H = [G_K (the 4 residues and S chunks summed, from the G layout's upper triangle) | I] for every pair. Scalars w, S. */
export const HINIT = inner('jacobi:hinit', ['G'], ['w', 'S'], HINIT_BODY);

/**
 * Running convergence measure: per block pair, the max of the previous value and of
 * |g_ij| / sqrt(g_ii g_jj) over i < j with both columns above the zero threshold, read from H's G
 * part. Output [P]. Scalars w, thrZ.
 */
export const CONV: Src = {
  key: 'jacobi:conv',
  arrays: ['H', 'prev'],
  scalars: ['w', 'thrZ'],
  floats: ['thrZ'],
  body: `const K = this.thread.x;
const base = K * 2 * w * w;
let mx = prev[K];
for (let i = 0; i < w; i++) {
  const gi = H[base + i * w + i];
  for (let j = 0; j < w; j++) {
    if (j > i) {
      const gj = H[base + j * w + j];
      if (gi > thrZ && gj > thrZ) {
        const g = Math.abs(H[base + j * w + i]) / Math.sqrt(gi) / Math.sqrt(gj);
        mx = g > mx ? g : mx;
      }
    }
  }
}
return mx;`,
};

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
 * (a_p' = c a_p - s a_q, a_q' = s a_p + c a_q). 1-D output of P 2 w cells, ((K 2 + y) w + pos)
 * holding c (y = 0) and beta (y = 1); both positions of a pair compute the same numbers.
 * Pairs orthogonal to `tol` (|g_pq| <= tol sqrt(g_pp g_qq)) or with a column at the zero threshold
 * get c = 1, beta = 0. t = tan of the angle zeroing g_pq, the smaller root of t^2 + 2 theta t - 1 = 0
 * with theta = (g_qq - g_pp) / (2 g_pq), computed as (|a_q|/|a_p| - |a_p|/|a_q|) / (2 gamma) so
 * nothing squares a ratio; for |theta| > big (1/sqrt(eps)) t = 1 / (2 theta), LAPACK's branch, so
 * theta^2 never overflows. G_K is read at stride gs (2 w^2 in an H, w^2 in a G). Scalars w, s, gs,
 * thrZ, tol, big.
 */
export const IPARAMS: Src = {
  key: 'jacobi:iparams',
  arrays: ['H', 'PT'],
  scalars: ['w', 's', 'gs', 'thrZ', 'tol', 'big'],
  floats: ['thrZ', 'tol', 'big'],
  body: `const i = this.thread.x;
${divmod('c1', 'pos', 'i', 'w')}
${divmod('K', 'y', 'c1', '2')}
const base = K * gs;
const other = PT[s * w + pos];
const p = Math.min(pos, other);
const q = Math.max(pos, other);
const app = H[base + p * w + p];
const aqq = H[base + q * w + q];
const apq = H[base + q * w + p];
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
return y == 0 ? c : (pos == p ? -sn : sn);`,
};

/**
 * First half of an inner step: H1 = [G_K R | J_K R] (columns rotated: column `col` becomes
 * c col + beta partner), G_K read from G at stride gs, J_K from H's J part. Scalars w, s, gs.
 */
export const IROT1 = inner('jacobi:irot1', ['G', 'H', 'RP', 'PT'], ['w', 's', 'gs'], `const K = Math.floor(KP / 2);
const part = KP - 2 * K;
const rb = K * 2 * w;
const pc = PT[s * w + col];
const c = RP[rb + col];
const beta = RP[rb + w + col];
let v = 0.0;
if (part == 0) {
  v = c * G[((K * gs + col * w) | 0) + ROWX] + beta * G[((K * gs + pc * w) | 0) + ROWX];
} else {
  const jb = (2 * K + 1) * w * w;
  v = c * H[((jb + col * w) | 0) + ROWX] + beta * H[((jb + pc * w) | 0) + ROWX];
}
return v;`);

/**
 * Second half: G_K <- Rᵀ (G_K R) from H1, through the symmetry of the result: entry (row, col) is
 * c (G R)[col][row] + beta (G R)[partner][row] with the column's rotation, so every rotation
 * parameter stays uniform. The result is a G alone (one part per pair, dims [w, w, P]). Scalars w, s.
 */
export const IROT2 = inner('jacobi:irot2', ['H1', 'RP', 'PT'], ['w', 's'], `const rb = KP * 2 * w;
const pc = PT[s * w + col];
const base = KP * 2 * w * w + row * w;
return RP[rb + col] * H1[base + col] + RP[rb + w + col] * H1[base + pc];`);

/** `body` with each [from, to] replaced once; throws if a `from` is missing (the source changed). */
function rewrite(body: string, pairs: readonly (readonly [string, string])[]): string {
  let out = body;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`internal: jacobi pipeline kernel no longer contains ${JSON.stringify(from)}`);
    out = out.replace(from, to);
  }
  return out;
}

/** A kernel of a pipeline: arrays, then scalars, and a body (core's PipelineSource kernels). */
type PipeKernel = Omit<Src, 'key' | 'threaded' | 'components' | 'floats' | 'flat'>;

/**
 * The inner sweep of one outer step as one gpu.js pipeline, for small problems on wasm (every step
 * under 4096 cells): gpu.js then runs the whole plan back to back on the calling thread ('fused-sync'),
 * with no per-kernel call, copy or allocation, which is what a small SVD's time is made of (26 x 26:
 * ~3x faster than kernel by kernel). Bigger plans would run 'fused-threaded', which measured slower
 * than the kernels one by one at n = 256 (a barrier per step), so they don't use it. Steps pass 3-D
 * results [w, w, parts P] (row, col, 2K + part) that the next step indexes in 3-D; the results come
 * back flat in the layouts above. Arguments: the Gram (G layout), the running CONV vector, the
 * schedule table, then scalars w, S, thrZ, tol, big. Results: G (w^2 per pair), H1 (2 w^2 per pair),
 * the new CONV vector.
 */
export function innerPipeline(w: number, P: number, steps: number, kind: string): internal.PipelineSource {
  const kernels: Record<string, PipeKernel> = {
    hinit: { arrays: HINIT.flat.arrays, scalars: HINIT.flat.scalars, body: `const row = this.thread.x;\nconst col = this.thread.y;\nconst KP = this.thread.z;\n${HINIT_BODY}` },
    conv: {
      arrays: CONV.arrays,
      scalars: CONV.scalars,
      body: rewrite(CONV.body, [
        ['const base = K * 2 * w * w;\n', ''],
        ['H[base + i * w + i]', 'H[2 * K][i][i]'],
        ['H[base + j * w + j]', 'H[2 * K][j][j]'],
        ['H[base + j * w + i]', 'H[2 * K][j][i]'],
      ]),
    },
    iparams: {
      arrays: ['G', 'PT'],
      scalars: ['w', 's', 'gz', 'thrZ', 'tol', 'big'],
      body: rewrite(IPARAMS.body, [
        ['const base = K * gs;\n', ''],
        ['H[base + p * w + p]', 'G[K * gz][p][p]'],
        ['H[base + q * w + q]', 'G[K * gz][q][q]'],
        ['H[base + q * w + p]', 'G[K * gz][q][p]'],
      ]),
    },
    irot1: {
      arrays: ['G', 'H', 'RP', 'PT'],
      scalars: ['w', 's', 'gz'],
      body: `const row = this.thread.x;
const col = this.thread.y;
const K = Math.floor(this.thread.z / 2);
const part = this.thread.z - 2 * K;
const rb = K * 2 * w;
const pc = PT[s * w + col];
const c = RP[rb + col];
const beta = RP[rb + w + col];
let v = 0.0;
if (part == 0) {
  v = c * G[K * gz][col][row] + beta * G[K * gz][pc][row];
} else {
  v = c * H[2 * K + 1][col][row] + beta * H[2 * K + 1][pc][row];
}
return v;`,
    },
    irot2: {
      arrays: ['H1', 'RP', 'PT'],
      scalars: ['w', 's'],
      body: `const row = this.thread.x;
const col = this.thread.y;
const K = this.thread.z;
const rb = K * 2 * w;
const pc = PT[s * w + col];
return RP[rb + col] * H1[2 * K][row][col] + RP[rb + w + col] * H1[2 * K][row][pc];`,
    },
    flat: {
      arrays: ['H'],
      scalars: ['w'],
      body: `const i = this.thread.x;
${divmod('z', 'r1', 'i', 'w * w')}
${divmod('y', 'x', 'r1', 'w')}
return H[z][y][x];`,
    },
  };
  return {
    key: `jacobi:inner:${kind}:${w}:${P}:${steps}`,
    arity: 8,
    threads: false,
    kernels,
    plan(call, args) {
      const [Graw, prev, PT, sw, sS, thrZ, tol, big] = args;
      const H0 = call('hinit', [w, w, 2 * P], [Graw, sw, sS]);
      const conv = call('conv', [P], [H0, prev, sw, thrZ]);
      let G = H0;
      let H = H0;
      let gz = 2;
      for (let it = 0; it < steps; it++) {
        const RP = call('iparams', [P * 2 * w], [G, PT, sw, it, gz, thrZ, tol, big]);
        H = call('irot1', [w, w, 2 * P], [G, H, RP, PT, sw, it, gz]);
        G = call('irot2', [w, w, P], [H, RP, PT, sw, it]);
        gz = 1;
      }
      return [call('flat', [P * w * w], [G, sw]), call('flat', [2 * P * w * w], [H, sw]), conv];
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
 * J_K row-major, [P][w][w] (1-D output), from H1's column-major J part: the update then reads the
 * 4 columns a SIMD quad needs as 4 consecutive elements (one v128.load with the gpu.js patch)
 * instead of a gather. Scalars w.
 */
export const JROWS: Src = {
  key: 'jacobi:jrows',
  arrays: ['H'],
  scalars: ['w'],
  body: `const i = this.thread.x;
${divmod('c1', 'jc', 'i', 'w')}
${divmod('K', 'c', 'c1', 'w')}
return H[(2 * K + 1) * w * w + jc * w + c];`,
};
