/**
 * An orthonormal basis of a tall matrix's columns inside a core job: Householder QR's kernels
 * (qr-kernels.ts) run through the job's context, for iterations that read values back between
 * steps (randomized.ts). Q only: R is not formed.
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

/**
 * Q `[m, n]` (m >= n) with orthonormal columns spanning those of the m x n payload `a`, by
 * Householder reflections (orthonormal to a small multiple of m·eps whatever a's condition; a
 * column dependent on the previous ones still gets an orthonormal direction). `a` is not freed; the
 * caller frees Q.
 */
export async function orthonormalInJob(ctx: Ctx, a: Payload, m: number, n: number): Promise<Payload> {
  const reflectors: { v: Payload; p: Payload; j: number }[] = [];
  let A = a;
  const steps = Math.min(n, m - 1);
  for (let j = 0; j < steps; j++) {
    const p = await ctx.run(REFLECTOR, [3], [A], [m, n, j]);
    const v = await ctx.run(VECTOR, [m], [A, p], [n, j]);
    // The last reflector's update of A is not needed: only the reflectors make Q.
    if (j < steps - 1) {
      const w = await ctx.run(PROJECT, [n], [A, v], [m, n, j]);
      const next = await update(ctx, A, v, w, p, m, n);
      ctx.free(w);
      if (A !== a) ctx.free(A);
      A = next;
    }
    reflectors.push({ v, p, j });
  }
  if (A !== a) ctx.free(A);
  // Q = H_0 H_1 ... H_{s-1} applied to the first n columns of the identity, from the last reflector back.
  let Q = await ctx.run(EYE, [m * n], [], [n]);
  for (let r = reflectors.length - 1; r >= 0; r--) {
    const { v, p, j } = reflectors[r];
    const w = await ctx.run(PROJECT, [n], [Q, v], [m, n, j]);
    const next = await update(ctx, Q, v, w, p, m, n);
    for (const t of [w, Q, v, p]) ctx.free(t);
    Q = next;
  }
  return Q;
}
