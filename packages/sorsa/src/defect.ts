/**
 * The orthonormality defect of one factor, `‖UᵀU − I‖_F` of `U [m, r]` (its columns) or
 * `‖Vt Vtᵀ − I‖_F` of `Vt [r, n]` (its rows), in three kernels: the Gram matrix minus I, its norm,
 * and, backward, `2 g M E / ‖E‖`. Composed of matmul, sub and norm, value and gradient took about
 * 14 kernels per factor, most of a fine-tuning step's launches: 16 factors in a 2-block model.
 * When the gradient is itself differentiated, the backward pass runs composed (a kernel has no VJP).
 * @module
 */
import { Tensor, backend, customVjp, div, eye, matmul, norm, sub, tidy, vjp } from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';

/**
 * A factor as rows `k` of an `[K, r]` view: element (k, i) is at `k * sk + i * si` (U: K = m,
 * sk = r, si = 1; Vt: K = n, sk = 1, si = n). The Gram matrix minus I, one cell (i, j) of `[r, r]`
 * per thread. Scalars: r, K, sk, si.
 */
const GRAM_MINUS_I: internal.KernelSource = {
  key: 'sorsa:gram-minus-identity',
  arrays: ['M'],
  scalars: ['r', 'K', 'sk', 'si'],
  body: `const c = this.thread.x;
${internal.divmod('i', 'j', 'c', 'r')}
let acc = 0;
for (let k = 0; k < K; k++) { acc += M[k * sk + i * si] * M[k * sk + j * si]; }
return acc - (i === j ? 1 : 0);`,
};

/**
 * The defect's gradient `coef * M E` in M's own layout, coef = 2 g / ‖E‖ (0 where ‖E‖ = 0, as the
 * norm's gradient is taken there): cell c of M is (k, i) of the view, split by M's row length `w`
 * (U: k = c / r; Vt: i = c / n). Scalars: r, w, sk, si, vt (1 for Vt).
 */
const DEFECT_GRAD: internal.KernelSource = {
  key: 'sorsa:defect-grad',
  arrays: ['M', 'E', 'nrm', 'g'],
  scalars: ['r', 'w', 'sk', 'si', 'vt'],
  body: `const c = this.thread.x;
${internal.divmod('q', 'p', 'c', 'w')}
const k = vt === 1 ? p : q;
const i = vt === 1 ? q : p;
const nv = nrm[0];
const coef = nv === 0 ? 0 : (2 * g[0]) / nv;
let acc = 0;
for (let j = 0; j < r; j++) { acc += M[k * sk + j * si] * E[j * r + i]; }
return coef * acc;`,
};

/** The composed defect: the definition, and the backward pass under an outer tape. */
function defectComposed(M: Tensor, side: 'cols' | 'rows'): Tensor {
  return tidy(() => {
    const r = side === 'cols' ? M.shape[1] : M.shape[0];
    const gram = side === 'cols' ? matmul(M, M, { transposeA: true }) : matmul(M, M, { transposeB: true });
    return norm(sub(gram, eye(r)));
  });
}

/** The view strides and row length of a factor (see GRAM_MINUS_I). */
function layout(M: Tensor, side: 'cols' | 'rows'): { r: number; K: number; sk: number; si: number; w: number } {
  const [a, b] = M.shape;
  return side === 'cols' ? { r: b, K: a, sk: b, si: 1, w: b } : { r: a, K: b, sk: 1, si: b, w: b };
}

const defectCols = customVjp(
  (M: Tensor) => forward(M, 'cols'),
  (res: Residuals, g: Tensor) => [backward(res, g, 'cols')],
);
const defectRows = customVjp(
  (M: Tensor) => forward(M, 'rows'),
  (res: Residuals, g: Tensor) => [backward(res, g, 'rows')],
);

interface Residuals {
  M: Tensor;
  E: Tensor;
  n: Tensor;
}

function forward(M: Tensor, side: 'cols' | 'rows'): [Tensor, Residuals] {
  const { r, K, sk, si } = layout(M, side);
  // Kernels over M outside the tape: the output's only way back is `backward` (customVjp).
  return internal.untracked(() => {
    const E = internal.launch('orthoRegularizer', GRAM_MINUS_I, [r, r], 'float32', [M], [r, K, sk, si]);
    const n = norm(E);
    return [n, { M, E, n }];
  });
}

function backward({ M, E, n }: Residuals, g: Tensor, side: 'cols' | 'rows'): Tensor {
  if (internal.recording([g, M])) {
    const [, pullback] = vjp((m: Tensor) => defectComposed(m, side), M);
    return pullback(g)[0];
  }
  const { r, sk, si, w } = layout(M, side);
  return internal.launch('orthoRegularizer', DEFECT_GRAD, M.shape, 'float32', [M, E, n, g], [r, w, sk, si, side === 'rows' ? 1 : 0]);
}

/**
 * `‖UᵀU − I‖_F` of a `[m, r]` factor (`side: 'cols'`) or `‖Vt Vtᵀ − I‖_F` of a `[r, n]` one
 * (`side: 'rows'`): a scalar tensor, differentiable, with gradient 0 at an exactly orthonormal factor.
 *
 * @example
 * ```ts
 * orthoDefect(adapter.U, 'cols'); // ~0 right after initAdapter
 * ```
 */
export function orthoDefect(M: Tensor, side: 'cols' | 'rows'): Tensor {
  return side === 'cols' ? defectCols(M) : defectRows(M);
}

// ---------------------------------------------------------------------------------------------
// The whole regularizer in a few launches: the Gram matrices minus I of up to 3 adapters (6
// factors) in one kernel, the mean of their norms in one kernel per 7 such results, and backward
// one kernel per factor (which recomputes its ‖E‖ from E's r² values). The same operations in the
// same order as orthoDefect's kernels, reduce's norm and the composed mean.

/** Adapters (U and Vt, each one launch's factor) whose Gram matrices one kernel computes. */
const ADAPTERS_PER_GRAM = 3;
/** Arrays a kernel reads at most (with its output, WebGPU's default 8 storage buffers). */
const MAX_ARRAYS = 7;

/** reduce's norm (kernels/reduce.ts) of `len` values of `arr` from `off`, into `n${id}`. */
function normCode(arr: string, off: string, len: string, id: string): string {
  return `let m${id} = 0;
for (let a${id} = 0; a${id} < ${len}; a${id}++) { const u${id} = Math.abs(${arr}[${off} + a${id}]); if (u${id} > m${id} || !(u${id} === u${id})) { m${id} = u${id}; } }
let n${id} = m${id};
if (!(m${id} === 0 || m${id} === pinf)) {
  let s${id} = 0;
  for (let b${id} = 0; b${id} < ${len}; b${id}++) { const t${id} = ${arr}[${off} + b${id}] / m${id}; s${id} += t${id} * t${id}; }
  n${id} = m${id} * Math.sqrt(s${id});
}`;
}

/**
 * `GRAM_MINUS_I` of k factors of one rank r at once: cell c is (i, j) of factor c / r², factor f read
 * as rows of an `[K_f, r]` view through its strides. Output `[k, r, r]`. Scalars: r, rr (= r²), then
 * K, sk, si of each factor.
 */
function gramsKernel(k: number): internal.KernelSource {
  const fs = Array.from({ length: k }, (_, f) => f);
  const loops = fs.map((f) => `${f === 0 ? '' : 'else '}if (f === ${f}) { for (let k${f} = 0; k${f} < K${f}; k${f}++) { acc += M${f}[k${f} * sk${f} + i * si${f}] * M${f}[k${f} * sk${f} + j * si${f}]; } }`);
  return {
    key: `sorsa:grams:${k}`,
    arrays: fs.map((f) => `M${f}`),
    scalars: ['r', 'rr', ...fs.flatMap((f) => [`K${f}`, `sk${f}`, `si${f}`])],
    body: `const c = this.thread.x;
${internal.divmod('f', 'e', 'c', 'rr')}
${internal.divmod('i', 'j', 'e', 'r')}
let acc = 0;
${loops.join('\n')}
return acc - (i === j ? 1 : 0);`,
  };
}

/**
 * The norms of the factors' Gram results: arrays `E0..` each of `F_q` factors of `rr_q` values; cell
 * c is the norm of factor c counted across the arrays in order (reduce's norm, the same operations).
 * Output `[Σ F_q]`. Scalars: `end_q` (the cumulative factor count after array q) and `rr_q` of each,
 * then `pinf`.
 */
function factorNormsKernel(q: number): internal.KernelSource {
  const es = Array.from({ length: q }, (_, e) => e);
  const branch = (e: number): string => `${e === 0 ? '' : 'else '}if (c < end${e}) {
  const o${e} = (c - ${e === 0 ? '0' : `end${e - 1}`}) * rr${e};
  ${normCode(`E${e}`, `o${e}`, `rr${e}`, `${e}`).replace(/\n/g, '\n  ')}
  nrm = n${e};
}`;
  return {
    key: `sorsa:factor-norms:${q}`,
    arrays: es.map((e) => `E${e}`),
    scalars: [...es.flatMap((e) => [`end${e}`, `rr${e}`]), 'pinf'],
    floats: ['pinf'],
    body: `const c = this.thread.x;
let nrm = 0;
${es.map(branch).join('\n')}
return nrm;`,
  };
}

/**
 * The regularizer from the factors' norms: arrays `N0..` of `2 A_q` norms each (U then Vt of each
 * adapter): per adapter `‖E_U‖ + ‖E_Vt‖`, added in order, after `P[0]` (the sum so far) with
 * `prev`; divided by `cnt` (2L) with `last`. One cell. Scalars: A_q of each, then `cnt`.
 */
function meanKernel(q: number, prev: boolean, last: boolean): internal.KernelSource {
  const es = Array.from({ length: q }, (_, e) => e);
  const sums = es.map((e) => `for (let a${e} = 0; a${e} < A${e}; a${e}++) { const both${e} = N${e}[2 * a${e}] + N${e}[2 * a${e} + 1]; acc += both${e}; }`);
  return {
    key: `sorsa:reg-mean:${q}:${prev ? 'p' : '-'}:${last ? 'last' : '-'}`,
    arrays: [...(prev ? ['P'] : []), ...es.map((e) => `N${e}`)],
    scalars: [...es.map((e) => `A${e}`), 'cnt'],
    floats: ['cnt'],
    body: `let acc = ${prev ? 'P[0]' : '0'};
${sums.join('\n')}
return ${last ? 'acc / cnt' : 'acc'};`,
  };
}

/**
 * `DEFECT_GRAD` for the regularizer, for both factors of one adapter: the factor's cotangent
 * `(2 (g / cnt) / ‖E‖) M E` with E the factor's r² values of a Gram result from offset `eo` and ‖E‖
 * in its norms at `ni`; U's for cells below `nU`, Vt's (cell c at c − nU) from there. On wasm one
 * launch computes both, as two parts of one result (`launchParts`); elsewhere a launch over U's
 * cells (nU = U's size) and one over Vt's (nU = 0). Arrays: MU, EU, NU (U's norms), MV, EV, NV, g;
 * scalars: nU, r, then per factor w, sk, si, eo, ni (U, then Vt), then cnt.
 */
const REG_GRAD: internal.KernelSource = {
  key: 'sorsa:reg-grad',
  arrays: ['MU', 'EU', 'NU', 'MV', 'EV', 'NV', 'g'],
  scalars: ['nU', 'r', 'wU', 'skU', 'siU', 'eoU', 'niU', 'wV', 'skV', 'siV', 'eoV', 'niV', 'cnt'],
  floats: ['cnt'],
  body: `const c0 = this.thread.x;
const vt = c0 >= nU ? 1 : 0;
const c = vt === 1 ? c0 - nU : c0;
const w = vt === 1 ? wV : wU;
${internal.divmod('q', 'p', 'c', 'w')}
const k = vt === 1 ? p : q;
const i = vt === 1 ? q : p;
const nv = vt === 1 ? NV[niV] : NU[niU];
const gj = g[0] / cnt;
const coef = nv === 0 ? 0 : (2 * gj) / nv;
let acc = 0;
if (vt === 1) {
  for (let j = 0; j < r; j++) { acc += MV[k * skV + j * siV] * EV[eoV + j * r + i]; }
} else {
  for (let j2 = 0; j2 < r; j2++) { acc += MU[k * skU + j2 * siU] * EU[eoU + j2 * r + i]; }
}
return coef * acc;`,
};

/** Where each factor's Gram values are: which result, and the offset in it. */
interface RegResiduals {
  fs: Tensor[];
  Es: Tensor[];
  norms: Tensor[];
  /** Factor f's Gram values: result e from offset off; its norm: norms[n] at ni. */
  at: { e: number; off: number; n: number; ni: number }[];
}

/** Runs of consecutive adapters of one rank, at most ADAPTERS_PER_GRAM long. */
function groups(pairs: readonly [Tensor, Tensor][]): number[][] {
  const out: number[][] = [];
  pairs.forEach(([U], a) => {
    const last = out[out.length - 1];
    if (last && last.length < ADAPTERS_PER_GRAM && pairs[last[0]][0].shape[1] === U.shape[1]) last.push(a);
    else out.push([a]);
  });
  return out;
}

function regForward(fs: Tensor[]): [Tensor, RegResiduals] {
  const pairs = Array.from({ length: fs.length / 2 }, (_, a) => [fs[2 * a], fs[2 * a + 1]] as [Tensor, Tensor]);
  return internal.untracked(() => {
    const Es: Tensor[] = [];
    const at: { e: number; off: number; n: number; ni: number }[] = [];
    const meta: { F: number; rr: number }[] = [];
    for (const g of groups(pairs)) {
      const r = pairs[g[0]][0].shape[1];
      const ms = g.flatMap((a) => pairs[a]);
      const scalars = [r, r * r, ...ms.flatMap((M, f) => {
        const { K, sk, si } = layout(M, f % 2 === 0 ? 'cols' : 'rows');
        return [K, sk, si];
      })];
      ms.forEach((_, f) => at.push({ e: Es.length, off: f * r * r, n: 0, ni: 0 }));
      Es.push(internal.launch('orthoRegularizer', gramsKernel(ms.length), [ms.length, r, r], 'float32', ms, scalars));
      meta.push({ F: ms.length, rr: r * r });
    }
    // The factors' norms, up to 7 Gram results a launch.
    const norms: Tensor[] = [];
    const counts: number[] = [];
    let f0 = 0;
    for (let e = 0; e < Es.length; e += MAX_ARRAYS) {
      const group = meta.slice(e, e + MAX_ARRAYS);
      let end = 0;
      const scalars = group.flatMap((m) => [(end += m.F), m.rr]);
      for (let f = 0; f < end; f++) Object.assign(at[f0 + f], { n: norms.length, ni: f });
      f0 += end;
      norms.push(internal.launch('orthoRegularizer', factorNormsKernel(group.length), [end], 'float32', Es.slice(e, e + MAX_ARRAYS), [...scalars, Infinity]));
      counts.push(end / 2);
    }
    const cnt = fs.length;
    let acc: Tensor | null = null;
    for (let n = 0; n < norms.length; ) {
      const q = Math.min(norms.length - n, acc ? MAX_ARRAYS - 1 : MAX_ARRAYS);
      const last = n + q === norms.length;
      const ins = [...(acc ? [acc] : []), ...norms.slice(n, n + q)];
      acc = internal.launch('orthoRegularizer', meanKernel(q, acc !== null, last), [], 'float32', ins, [...counts.slice(n, n + q), cnt]);
      n += q;
    }
    return [acc as Tensor, { fs, Es, norms, at }];
  });
}

function regBackward({ fs, Es, norms, at }: RegResiduals, g: Tensor): Tensor[] {
  const cnt = fs.length;
  if (internal.recording([g, ...fs])) {
    // A differentiated backward pass: each factor's composed pullback, of the mean's g / 2L.
    const gj = div(g, cnt);
    return fs.map((M, f) => vjp((m: Tensor) => defectComposed(m, f % 2 === 0 ? 'cols' : 'rows'), M)[1](gj)[0]);
  }
  return Array.from({ length: fs.length / 2 }, (_, a) => {
    const [U, V] = [fs[2 * a], fs[2 * a + 1]];
    const [lu, lv] = [layout(U, 'cols'), layout(V, 'rows')];
    const [au, av] = [at[2 * a], at[2 * a + 1]];
    const inputs = [U, Es[au.e], norms[au.n], V, Es[av.e], norms[av.n], g];
    const scalars = (nU: number): number[] => [nU, lu.r, lu.w, lu.sk, lu.si, au.off, au.ni, lv.w, lv.sk, lv.si, av.off, av.ni, cnt];
    // wasm: U's and Vt's cotangents as the two parts of one result; elsewhere one launch each.
    if (backend() === 'wasm') return internal.launchParts('orthoRegularizer', REG_GRAD, U.size + V.size, [U.shape, V.shape], inputs, scalars(U.size));
    return [internal.launch('orthoRegularizer', REG_GRAD, U.shape, 'float32', inputs, scalars(U.size)), internal.launch('orthoRegularizer', REG_GRAD, V.shape, 'float32', inputs, scalars(0))];
  }).flat();
}

const regOp = customVjp(
  (...fs: Tensor[]) => regForward(fs),
  (res: RegResiduals, g: Tensor) => regBackward(res, g),
);

/**
 * The SORSA regularizer of the factors `[U1, Vt1, U2, Vt2, ...]` (each U `[m, r]`, its Vt `[r, n]`,
 * r > 0): the mean of `‖UᵀU − I‖_F` and `‖Vt Vtᵀ − I‖_F`, the adapters' sums added in order, as
 * `orthoRegularizer` composes it from `orthoDefect`; differentiable, in ⌈L/3⌉ + ⌈⌈L/3⌉/7⌉ launches
 * forward and 2L backward (L on wasm, one kernel an adapter) where orthoDefect and the composition
 * took 6L and about 3L.
 *
 * @example
 * ```ts
 * regularizerOfFactors([adapter.U, adapter.Vt]);
 * ```
 */
export function regularizerOfFactors(fs: Tensor[]): Tensor {
  return regOp(...fs);
}
