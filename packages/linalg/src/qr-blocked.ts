/**
 * Blocked Householder QR inside a core job (compact WY in the UT form), the one QR driver of linalg:
 * the public `qr` (qr.ts), randomized.ts's orthonormal bases and the Jacobi SVD's preconditioner
 * (jacobi-qr.ts) all run it.
 *
 * Each panel of up to {@link PANEL} columns (16 for thin matrices: `panelWidth`) is factored by
 * the Householder step kernels of qr-kernels.ts on the panel alone (a copy of its rows from the
 * panel's first row down). Its reflectors y_j = √β_j v̂_j (H_j = I − y_j y_jᵀ) are the columns of
 * Y (`[m, w]`, zero above the panel's first row), and H_c0 ⋯ H_(c0+w−1) = I − Y S Yᵀ with
 * S⁻¹ = striu(YᵀY) + diag(YᵀY) / 2 (upper triangular, inverted by doubling its diagonal blocks: ⌈log2 w⌉ + 1 small kernels). The
 * matrix is then updated with three products, C ← C − (Y Sᵀ)(Yᵀ C), the panel's own columns too (so
 * R needs no separate copy); Q is the reflectors applied the same way to the first columns of I,
 * last panel first. The unblocked alternative rewrites the whole matrix once per column instead:
 * 1.4-2.2 s at 768² on wasm against 0.33-0.58 s here (docs/guides/performance.md).
 *
 * The products run over the whole matrix, not only the trailing block from the panel's first row
 * and column that they change: about twice the flops at 768², but every panel's products have the
 * same sizes. On wasm each new operand size compiles a module on every worker thread; trailing blocks
 * (copied out and back, as core's matmulInJob takes strides but no offset) took a warm 768² qr from
 * 0.33-0.58 s to 0.26-0.42 s but a first one from 1.5-2.1 s to 3-6 s; blocks starting at multiples
 * of 256 rows and columns (3 sizes) were in between at 768² (0.40 s warm, 1.9-2.2 s first) and
 * gained nothing at 3072 x 768 (1.4-1.8 s either way).
 *
 * Every value is computed by gpu.js kernels and core's matmul; the host only plans. R's diagonal may
 * be negative (as LAPACK's geqrf), and a column that is zero below its diagonal makes no reflector
 * (β = 0: Q's column is then the identity's), as in the step kernels.
 * @module
 */
import { backend } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { PROJECT, REFLECTOR, vHat } from './qr-kernels.js';

type Payload = internal.Payload;
type Ctx = internal.JobContext;
type Src = internal.KernelSource;
const { divmod } = internal;

/** Columns per panel: the inner size of the update's products (core's wasm matmul tiles 4 x 16). */
export const PANEL = 32;
/** Columns per panel of a thin QR (k = min(m, n) <= THIN): see `panelWidth`. */
const THIN_PANEL = 16;
/** The most reflectors (k = min(m, n)) for which a QR takes panels of THIN_PANEL columns. */
const THIN = 128;

/**
 * The panel width for a QR of k = min(m, n) reflectors. A panel's steps rewrite the whole panel
 * (rows x w cells) once per column, so the steps' work grows with w, while the updates' products do
 * the same multiply-adds at any w but in more, smaller launches for a narrow one. Measured on wasm
 * inside a job (docs/guides/performance.md, "Narrower panels for thin QRs"): 16 columns took a
 * 768 x 32 basis from 4.2-5.2 to 3.1-3.2 ms and 3072 x 128 from 80-83 to 68-71 ms, but 768 x 384
 * from 110-113 to 128-141 ms (768 x 256: 58-63 against 47-59 ms, too noisy to move the threshold).
 */
function panelWidth(k: number): number {
  return k <= THIN ? THIN_PANEL : PANEL;
}

/** The block C[r0 + i][c0 + c] for i < rows, c < w of C `[*, cols]`, row-major `[rows, w]` (a panel). Scalars cols, r0, c0, w. */
const BLOCK: Src = {
  key: 'qrb:block',
  arrays: ['C'],
  scalars: ['cols', 'r0', 'c0', 'w'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
return C[(i + r0) * cols + c0 + c];`,
};

/**
 * One Householder step on the panel P `[rows, w]` that keeps the reflectors in it: columns after j
 * get P − β v̂ wᵀ, column j (from row j) becomes y_j = √β v̂ (H_j = I − y_j y_jᵀ), columns before j
 * (earlier reflectors) stay. R is not read from P (the panel's application to the matrix forms it),
 * so P's lower part can hold Y: one kernel a step instead of an update and a copy into Y. Scalars w, j.
 */
const PSTEP: Src = {
  key: 'qrb:pstep',
  arrays: ['P', 'wv', 'p'],
  scalars: ['w', 'j'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
if (c < j) { return P[idx]; }
${vHat('P', 'i', 'w')}
if (c == j) { return i >= j ? Math.sqrt(p[2]) * vh : P[idx]; }
return P[idx] - p[2] * vh * wv[c];`,
};

/** PSTEP over gpu.js output dims [w, rows] for wasm (a `flat` result): no index divided. Scalars w, j. */
const PSTEP_2D: Src = {
  key: 'qrb:pstep2d',
  arrays: ['P', 'wv', 'p'],
  scalars: ['w', 'j'],
  flat: true,
  body: `const i = this.thread.y;
const c = this.thread.x;
const idx = i * w + c;
if (c < j) { return P[idx]; }
${vHat('P', 'i', 'w')}
if (c == j) { return i >= j ? Math.sqrt(p[2]) * vh : P[idx]; }
return P[idx] - p[2] * vh * wv[c];`,
};

/**
 * Y `[off + rows, w]` from the factored panel P `[rows, w]` (off: the panel's first row): y_c is P's
 * column c from row c, zero above (and in the `off` rows put before P's); columns from `steps` on had
 * no reflector and are zero. Scalars w, steps, off.
 */
const YFROM: Src = {
  key: 'qrb:yfrom',
  arrays: ['P'],
  scalars: ['w', 'steps', 'off'],
  body: `const idx = this.thread.x;
${divmod('i', 'c', 'idx', 'w')}
if (c >= steps) { return 0.0; }
if (i < off + c) { return 0.0; }
return P[idx - off * w];`,
};

/**
 * The diagonal of S = T⁻¹, T = striu(G) + diag(G) / 2 (G = YᵀY; a zero reflector's diagonal is taken
 * as 1), zero elsewhere: the start of {@link SINV}. Scalars w.
 */
const SDIAG: Src = {
  key: 'qrb:sdiag',
  arrays: ['G'],
  scalars: ['w'],
  body: `const idx = this.thread.x;
${divmod('r', 'c', 'idx', 'w')}
if (r != c) { return 0.0; }
const d = G[r * w + r];
return 1.0 / (d > 0 ? 0.5 * d : 1.0);`,
};

/**
 * One doubling step of S = T⁻¹: S holds the inverses of T's diagonal blocks of size s (from 0, the
 * last one partial); each pair of them becomes the inverse of its 2s block,
 * [[A, B], [0, C]]⁻¹ = [[A⁻¹, −A⁻¹ B C⁻¹], [0, C⁻¹]], so a w-column panel takes ⌈log2 w⌉ launches
 * instead of one per row. T's block B is G's (strictly upper). Scalars w, s.
 */
const SINV: Src = {
  key: 'qrb:sinv',
  arrays: ['S', 'G'],
  scalars: ['w', 's'],
  body: `const idx = this.thread.x;
${divmod('r', 'c', 'idx', 'w')}
${divmod('bq', 'br', 'r', '2 * s')}
const b0 = bq * 2 * s;
if (r >= b0 + s || c < b0 + s || c >= b0 + 2 * s) { return S[idx]; }
let acc = 0.0;
for (let a = 0; a < s; a++) {
  let t = 0.0;
  for (let q = 0; q < s; q++) { if (b0 + s + q < w) { t += G[(b0 + a) * w + b0 + s + q] * S[(b0 + s + q) * w + c]; } }
  acc += S[r * w + b0 + a] * t;
}
return -acc;`,
};

/** The first k rows of A `[m, n]` above and on the diagonal, zero below: R `[k, n]`. Scalars: n. */
const UPPER: Src = {
  key: 'qrb:upper',
  arrays: ['A'],
  scalars: ['n'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'n')}
if (c >= r) { return A[i]; }
return 0;`,
};

/** The first k columns of the m x m identity, row-major `[m, k]`. Scalars: k. */
const EYE: Src = {
  key: 'qrb:eye',
  arrays: [],
  scalars: ['k'],
  body: `const i = this.thread.x;
${divmod('r', 'c', 'i', 'k')}
if (r == c) { return 1; }
return 0;`,
};

/** One panel's reflectors: H_c0 ⋯ H_(c0+w−1) = I − Y S Yᵀ, Y `[m, w]` (zero above row c0), S `[w, w]`. */
interface Panel {
  Y: Payload;
  S: Payload;
  w: number;
}

/**
 * The Householder reflectors of an m x n matrix's QR, by panels: Q = H_0 H_1 ⋯ H_(k−1), k = min(m, n).
 * Made by {@link blockedQrInJob}, used by {@link applyQInJob} and {@link thinQInJob}, freed by
 * {@link freeReflectors}.
 */
export interface Reflectors {
  m: number;
  n: number;
  panels: Panel[];
}

/** The reflectors of columns c0 .. c0 + w of B `[m, n]` (factored by the step kernels on the panel alone), or none when the panel has no entries below its diagonal. */
async function panelReflectors(ctx: Ctx, B: Payload, m: number, n: number, c0: number, w: number): Promise<Panel | undefined> {
  const rows = m - c0;
  // A reflector per column with entries below the diagonal (a square matrix's last column has none).
  const steps = Math.min(w, rows - 1);
  if (steps <= 0) return undefined;
  // A one-panel matrix (up to 16 columns) is its own panel: no copy.
  let P = c0 === 0 && w === n ? B : await ctx.run(BLOCK, [rows * w], [B], [n, c0, c0, w]);
  for (let j = 0; j < steps; j++) {
    const p = await ctx.run(REFLECTOR, [3], [P], [rows, w, j]);
    const wv = await ctx.run(PROJECT, [w], [P, p], [rows, w, j]);
    const next = backend() === 'wasm' ? await ctx.run(PSTEP_2D, [w, rows], [P, wv, p], [w, j]) : await ctx.run(PSTEP, [rows * w], [P, wv, p], [w, j]);
    for (const t of [wv, p]) ctx.free(t);
    if (P !== B) ctx.free(P);
    P = next;
  }
  const Y = await ctx.run(YFROM, [m * w], [P], [w, steps, c0]);
  if (P !== B) ctx.free(P);
  const G = await internal.matmulInJob(ctx, Y, Y, { M: w, N: w, K: m, sa0: 1, sa1: w, sb0: w, sb1: 1 });
  let S = await ctx.run(SDIAG, [w * w], [G], [w]);
  for (let bs = 1; bs < w; bs *= 2) {
    const S2 = await ctx.run(SINV, [w * w], [S, G], [w, bs]);
    ctx.free(S);
    S = S2;
  }
  ctx.free(G);
  return { Y, S, w };
}

/**
 * C − Y T (Yᵀ C) for C `[m, cols]`, with T = Sᵀ (`transS`: applying the panel's Qᵀ) or S (its Q):
 * three products, the last subtracting from C. C is not freed.
 *
 * Yᵀ C is made as W = Cᵀ Y (`[cols, w]`) and read transposed by the last product: on wasm the
 * product with the long side as B packed all of C (cols x m) on every call, and a 768² panel's Yᵀ C
 * took 2.4-2.5 ms against 0.8 ms for Cᵀ Y, the same sums in the same order (bit for bit equal).
 */
async function applyPanel(ctx: Ctx, C: Payload, m: number, cols: number, { Y, S, w }: Panel, transS: boolean): Promise<Payload> {
  const W = await internal.matmulInJob(ctx, C, Y, { M: cols, N: w, K: m, sa0: 1, sa1: cols, sb0: w, sb1: 1 });
  const YT = await internal.matmulInJob(ctx, Y, S, { M: m, N: w, K: w, sa0: w, sa1: 1, sb0: transS ? 1 : w, sb1: transS ? w : 1 });
  // C − YT Wᵀ in the last product (on wasm its tile kernel subtracts as it stores).
  const C2 = await internal.matmulInJob(ctx, YT, W, { M: m, N: cols, K: w, sa0: w, sa1: 1, sb0: 1, sb1: w }, C);
  for (const t of [W, YT]) ctx.free(t);
  return C2;
}

/**
 * Blocked Householder QR of the m x n payload `a` (any m, n) through a job's context: the reflectors
 * (Q = H_0 ⋯ H_(k−1), k = min(m, n)) and, with `wantR`, R `[k, n]`, upper triangular (R's diagonal
 * may be negative, as LAPACK's geqrf). `a` is not freed; the caller frees R and the reflectors ({@link freeReflectors}).
 *
 * @example
 * ```ts
 * // inside internal.launchJob('op', [a], [[m, k], [k, n]], async (ctx, [ap]) => ...)
 * const { reflectors, R } = await blockedQrInJob(ctx, ap, m, n, true);
 * const Q = await thinQInJob(ctx, reflectors);
 * freeReflectors(ctx, reflectors);
 * ```
 */
export async function blockedQrInJob(ctx: Ctx, a: Payload, m: number, n: number, wantR: boolean): Promise<{ reflectors: Reflectors; R?: Payload }> {
  const k = Math.min(m, n);
  const panels: Panel[] = [];
  let B = a;
  const width = panelWidth(k);
  for (let c0 = 0; c0 < k; c0 += width) {
    const panel = await panelReflectors(ctx, B, m, n, c0, Math.min(width, k - c0));
    if (!panel) continue;
    panels.push(panel);
    // Without R the last panel's update is not needed: only the reflectors make Q.
    if (!wantR && c0 + panel.w >= k) continue;
    const next = await applyPanel(ctx, B, m, n, panel, true);
    if (B !== a) ctx.free(B);
    B = next;
  }
  const R = wantR ? await ctx.run(UPPER, [k * n], [B], [n]) : undefined;
  if (B !== a) ctx.free(B);
  return { reflectors: { m, n, panels }, R };
}

/**
 * Q C for C `[m, cols]`: the reflectors applied to C, last panel first (three products a panel).
 * Frees C; the caller frees the result.
 */
export async function applyQInJob(ctx: Ctx, f: Reflectors, C: Payload, cols: number): Promise<Payload> {

  for (let p = f.panels.length - 1; p >= 0; p--) {
    const next = await applyPanel(ctx, C, f.m, cols, f.panels[p], false);
    ctx.free(C);
    C = next;
  }
  return C;
}

/**
 * The thin Q `[m, k]`, k = min(m, n), with orthonormal columns (to a small multiple of m·eps whatever
 * the matrix's condition; a dependent column still gets an orthonormal direction): the reflectors
 * applied to the first k columns of I. The caller frees the result.
 */
export async function thinQInJob(ctx: Ctx, f: Reflectors): Promise<Payload> {
  const k = Math.min(f.m, f.n);
  const E = await ctx.run(EYE, [f.m * k], [], [k]);
  return applyQInJob(ctx, f, E, k);
}

/** Frees the reflectors' payloads. */
export function freeReflectors(ctx: Ctx, f: Reflectors): void {
  for (const p of f.panels) {
    ctx.free(p.Y);
    ctx.free(p.S);
  }
  f.panels = [];
}

/**
 * Thin QR of the m x n payload `a` through a job's context: Q `[m, k]` and, with `wantR`, R `[k, n]`,
 * k = min(m, n) ({@link blockedQrInJob}, {@link thinQInJob}). `a` is not freed; the caller frees the
 * results.
 */
export async function householderInJob(ctx: Ctx, a: Payload, m: number, n: number, wantR: boolean): Promise<{ Q: Payload; R?: Payload }> {
  const { reflectors, R } = await blockedQrInJob(ctx, a, m, n, wantR);
  const Q = await thinQInJob(ctx, reflectors);
  freeReflectors(ctx, reflectors);
  return { Q, R };
}

/** Q `[m, n]` (m >= n) with orthonormal columns spanning those of the m x n payload `a` (householderInJob without R). */
export async function orthonormalInJob(ctx: Ctx, a: Payload, m: number, n: number): Promise<Payload> {
  return (await householderInJob(ctx, a, m, n, false)).Q;
}
