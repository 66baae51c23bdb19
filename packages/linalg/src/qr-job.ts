/**
 * Householder QR inside a core job: the kernels of qr-kernels.ts run through the job's context. The
 * public `qr` runs it as a job of its own; randomized.ts calls it between other kernels of its
 * iteration, which reads values back between steps.
 * @module
 */
import { backend } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { PROJECT, REFLECTOR, UPDATE, UPDATE_2D, VECTOR } from './qr-kernels.js';

type Payload = internal.Payload;
type Ctx = internal.JobContext;

/** The first k columns of the m x m identity, row-major `[m, k]`. Scalars: k. */
const EYE: internal.KernelSource = {
  key: 'qr:eye',
  arrays: [],
  scalars: ['k'],
  body: `const i = this.thread.x;
${internal.divmod('r', 'c', 'i', 'k')}
if (r == c) { return 1; }
return 0;`,
};

/** X − beta v wᵀ over X `[rows, cols]`: the 2-D form on wasm, 1-D elsewhere (as qr.ts). */
async function update(ctx: Ctx, X: Payload, v: Payload, w: Payload, p: Payload, rows: number, cols: number): Promise<Payload> {
  if (backend() === 'wasm') return ctx.run(UPDATE_2D, [cols, rows], [X, v, w, p], [cols]);
  return ctx.run(UPDATE, rows * cols, [X, v, w, p], [cols]);
}

/** The first k rows of A `[m, n]` above and on the diagonal, zero below: R `[k, n]`. Scalars: n. */
const UPPER: internal.KernelSource = {
  key: 'qr:upper',
  arrays: ['A'],
  scalars: ['n'],
  body: `const i = this.thread.x;
${internal.divmod('r', 'c', 'i', 'n')}
if (c >= r) { return A[i]; }
return 0;`,
};

/**
 * Thin Householder QR of the m x n payload `a` through a job's context: Q `[m, k]` with orthonormal
 * columns (to a small multiple of m·eps whatever a's condition; a dependent column still gets an
 * orthonormal direction) and, with `wantR`, upper-triangular R `[k, n]`, k = min(m, n). Step j
 * reflects column j's entries below the diagonal onto it (four fused kernels, qr-kernels.ts); Q
 * accumulates the reflectors backwards from the identity. R's diagonal may be negative (as
 * LAPACK's geqrf). `a` is not freed; the caller frees the results.
 */
export async function householderInJob(ctx: Ctx, a: Payload, m: number, n: number, wantR: boolean): Promise<{ Q: Payload; R?: Payload }> {
  const k = Math.min(m, n);
  const reflectors: { v: Payload; p: Payload; j: number }[] = [];
  let A = a;
  // A reflector per column that has entries below the diagonal (the last square one has none).
  const steps = Math.min(k, m - 1);
  for (let j = 0; j < steps; j++) {
    const p = await ctx.run(REFLECTOR, [3], [A], [m, n, j]);
    const v = await ctx.run(VECTOR, [m], [A, p], [n, j]);
    // Without R, the last reflector's update of A is not needed: only the reflectors make Q.
    if (wantR || j < steps - 1) {
      const w = await ctx.run(PROJECT, [n], [A, v], [m, n, j]);
      const next = await update(ctx, A, v, w, p, m, n);
      ctx.free(w);
      if (A !== a) ctx.free(A);
      A = next;
    }
    reflectors.push({ v, p, j });
  }
  const R = wantR ? await ctx.run(UPPER, [k * n], [A], [n]) : undefined;
  if (A !== a) ctx.free(A);
  // Q = H_0 H_1 ... H_{s-1} applied to the first k columns of the identity, from the last reflector back.
  let Q = await ctx.run(EYE, [m * k], [], [k]);
  for (let r = reflectors.length - 1; r >= 0; r--) {
    const { v, p, j } = reflectors[r];
    const w = await ctx.run(PROJECT, [k], [Q, v], [m, k, j]);
    const next = await update(ctx, Q, v, w, p, m, k);
    for (const t of [w, Q, v, p]) ctx.free(t);
    Q = next;
  }
  return { Q, R };
}

/** Q `[m, n]` (m >= n) with orthonormal columns spanning those of the m x n payload `a` (householderInJob without R). */
export async function orthonormalInJob(ctx: Ctx, a: Payload, m: number, n: number): Promise<Payload> {
  return (await householderInJob(ctx, a, m, n, false)).Q;
}
