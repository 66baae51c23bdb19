/**
 * nn: each function against a float64 reference written here as plain loops (nothing from src/),
 * on every backend available here, plus errors, the random layers' statistics, and float64
 * finite-difference gradient checks of crossEntropy with ignoreIndex and of rmsNorm (the other
 * composites' gradients are checked in grad.test.ts).
 *
 * Tolerances are k * EPS32 * S per element, S the sum of |terms| the result is built from, with k
 * covering the float32 roundings on the way (documented per test):
 *  - a sum of n terms rounds within (n - 1) eps of the sum of their magnitudes;
 *  - softmax and logSoftmax are exp(x - logsumexp(x)) and x - logsumexp(x): logsumexp is within
 *    ~(n + 4) eps absolute (the log of a sum of n exponentials) plus the rounding of its own value,
 *    eps |lse|, so the absolute error of x - lse is within ~(n + 4 + |lse| + |x - lse|) eps, which is
 *    also the relative error of the softmax;
 *  - layerNorm, rmsNorm: means of d terms (d eps), a reciprocal square root (a few eps; 2.5 ulp
 *    on WebGPU), then products: within ~(d + 8) eps of |xhat| |gamma| + |beta|.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, compare, count, matmulRef, nd, randomData, ravel, transposeRef, unravel, type Nd } from './reference.js';
import { checkGrads } from './gradcheck.js';

const { nn, random } = c;

// ---------------------------------------------------------------------------------------------
// Float64 references.

const sum64 = (v: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s;
};
const lse64 = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(sum64(v.map((x) => Math.exp(x - m))));
};

/** The lines of `shape` along `axis`: for each, the flat positions of its elements. */
function lines(shape: readonly number[], axis: number): number[][] {
  const out: number[][] = [];
  const outer = shape.map((d, j) => (j === axis ? 1 : d));
  for (let q = 0; q < count(outer); q++) {
    const idx = unravel(q, outer);
    out.push(Array.from({ length: shape[axis] }, (_, t) => ravel(idx.map((v, j) => (j === axis ? t : v)), shape)));
  }
  return out;
}

/** logSoftmax along `axis` in float64, and each element's |lse| + |x - lse| (the error scale). */
function logSoftmaxRef(x: Nd, axis: number): { y: Nd; scale: Float64Array } {
  const y = new Float64Array(x.data.length);
  const scale = new Float64Array(x.data.length);
  for (const ps of lines(x.shape, axis)) {
    const l = lse64(ps.map((p) => x.data[p]));
    for (const p of ps) {
      y[p] = x.data[p] - l;
      scale[p] = Math.abs(l) + Math.abs(y[p]);
    }
  }
  return { y: nd(x.shape, y), scale };
}

/** Per-row layerNorm (biased variance) and rmsNorm of a [..., d] array in float64, and |xhat| |gamma| + |beta|. */
function normRef(x: Nd, gamma: ArrayLike<number>, beta: ArrayLike<number> | null, eps: number, rms: boolean): { y: Nd; scale: Float64Array } {
  const d = x.shape[x.shape.length - 1];
  const y = new Float64Array(x.data.length);
  const scale = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    const row = Array.from(x.data.slice(r * d, (r + 1) * d));
    const mu = rms ? 0 : sum64(row) / d;
    const ms = sum64(row.map((u) => (u - mu) ** 2)) / d;
    row.forEach((u, j) => {
      const xhat = (u - mu) / Math.sqrt(ms + eps);
      const b = beta ? beta[j] : 0;
      y[r * d + j] = xhat * gamma[j] + b;
      scale[r * d + j] = (rms ? Math.abs(xhat) : Math.abs(u) / Math.sqrt(ms + eps) + 1) * Math.abs(gamma[j]) + Math.abs(b);
    });
  }
  return { y: nd(x.shape, y), scale };
}

/** Per-example cross-entropy losses (0 where ignored) of [..., C] logits, and each loss's error scale. */
function crossEntropyRef(logits: Nd, labels: number[], ignore?: number): { losses: number[]; kept: boolean[]; scale: number[] } {
  const C = logits.shape[logits.shape.length - 1];
  const losses: number[] = [];
  const kept: boolean[] = [];
  const scale: number[] = [];
  labels.forEach((l, i) => {
    const row = Array.from(logits.data.slice(i * C, (i + 1) * C));
    const keep = l !== ignore;
    const lse = lse64(row);
    losses.push(keep ? lse - row[l] : 0);
    kept.push(keep);
    scale.push(keep ? C + Math.abs(lse) + Math.abs(row[l]) : 0);
  });
  return { losses, kept, scale };
}

/**
 * Scaled dot-product attention over [..., S, D] in float64, as loops: keep[i][j] = causal ?
 * j <= i + (Sk - Sq) : true, and the mask's element at [..., i, j] (broadcast) nonzero. Also each
 * output element's error scale (see the attention test).
 */
function attentionRef(q: Nd, k: Nd, v: Nd, causal: boolean, mask: Nd | null): { y: Nd; scale: Float64Array } {
  const r = q.shape.length;
  const [Sq, D] = q.shape.slice(-2);
  const Sk = k.shape[r - 2];
  const Dv = v.shape[r - 1];
  const lead = q.shape.slice(0, -2);
  const nb = count(lead);
  const out = new Float64Array(nb * Sq * Dv);
  const scale = new Float64Array(nb * Sq * Dv);
  for (let b = 0; b < nb; b++) {
    const bi = unravel(b, lead);
    for (let i = 0; i < Sq; i++) {
      const s: number[] = [];
      const keep: boolean[] = [];
      let termScale = 0;
      for (let j = 0; j < Sk; j++) {
        let dot = 0;
        let abs = 0;
        for (let d = 0; d < D; d++) {
          const t = q.data[(b * Sq + i) * D + d] * k.data[(b * Sk + j) * D + d];
          dot += t;
          abs += Math.abs(t);
        }
        let ok = !causal || j <= i + (Sk - Sq);
        if (mask) {
          const full = [...bi, i, j];
          const own = mask.shape.map((dim, a) => (dim === 1 ? 0 : full[a + full.length - mask.shape.length]));
          ok = ok && mask.data[ravel(own, mask.shape)] !== 0;
        }
        s.push(dot / Math.sqrt(D));
        keep.push(ok);
        if (ok) termScale = Math.max(termScale, abs / Math.sqrt(D));
      }
      const l = lse64(s.filter((_, j) => keep[j]));
      const p = s.map((x, j) => (keep[j] ? Math.exp(x - l) : 0));
      for (let e = 0; e < Dv; e++) {
        let acc = 0;
        let accAbs = 0;
        for (let j = 0; j < Sk; j++) {
          acc += p[j] * v.data[(b * Sk + j) * Dv + e];
          accAbs += p[j] * Math.abs(v.data[(b * Sk + j) * Dv + e]);
        }
        out[(b * Sq + i) * Dv + e] = acc;
        // Score errors of ~(D + 2) eps * termScale (the dot products) plus the softmax's
        // (Sk + 4 + |lse| + |s - lse|) eps, each moving the output by that times Σ p |v|, and the
        // final sum of Sk terms.
        scale[(b * Sq + i) * Dv + e] = (D + 2 + 2 * termScale + Sk + 4 + 2 * Math.abs(l) + 2 * Math.max(...s.map((x) => Math.abs(x)))) * accAbs;
      }
    }
  }
  return { y: nd([...lead, Sq, Dv], out), scale };
}

// ---------------------------------------------------------------------------------------------

const rand = (shape: number[], seed: number, lo = -1, hi = 1): [Tensor, Nd] => {
  const d = randomData(count(shape), seed, lo, hi);
  return [c.tensor(d, shape), nd(shape, d)];
};
const ints = (v: number[], shape?: number[]): Tensor => c.tensor(v, shape, 'int32');

async function expectClose(t: Tensor, ref: Nd, tol: (i: number) => number): Promise<void> {
  const got = await t.data();
  const msg = compare(t.shape, got, ref, tol);
  if (process.env.NN_VERBOSE) {
    let worst = 0;
    got.forEach((g, i) => tol(i) > 0 && (worst = Math.max(worst, Math.abs(g - ref.data[i]) / tol(i))));
    console.log(`worst ${worst.toFixed(4)} of tol: ${expect.getState().currentTestName}`);
  }
  expect(msg, msg ?? '').toBeNull();
}

/** Standard error of the sample variance of n draws with fourth central moment m4 and variance s2. */
const varSe = (n: number, m4: number, s2: number): number => Math.sqrt((m4 - s2 * s2) / n);

forEachBackend('nn', (name) => {
  it('causal attention (its scale and mask one fused kernel) equals attention with the same mask given, bit for bit, forward and gradients', async () => {
    // The mask path composes div(scores, sqrt(d)) and where(mask, ., MASKED), the operations the
    // fused kernel does in the same order: the results must be identical, not just close.
    for (const [sq, sk] of [[5, 5], [3, 7]]) {
      const [B, H, d] = [2, 3, 8];
      const q = c.tensor(randomData(B * H * sq * d, 1, -2, 2), [B, H, sq, d]);
      const k = c.tensor(randomData(B * H * sk * d, 2, -2, 2), [B, H, sk, d]);
      const v = c.tensor(randomData(B * H * sk * d, 3, -2, 2), [B, H, sk, d]);
      const G = c.tensor(randomData(B * H * sq * d, 4, -1, 1), [B, H, sq, d]);
      const keep = c.tensor(Float32Array.from({ length: sq * sk }, (_, p) => (p % sk <= Math.floor(p / sk) + sk - sq ? 1 : 0)), [sq, sk]);
      const loss = (opts: { causal?: boolean; mask?: Tensor }) => (qq: Tensor, kk: Tensor, vv: Tensor) => c.sum(c.mul(nn.attention(qq, kk, vv, opts), G));
      const [y1, y2] = [nn.attention(q, k, v, { causal: true }), nn.attention(q, k, v, { mask: keep })];
      expect(Array.from(await y1.data()), `forward ${sq}x${sk}`).toEqual(Array.from(await y2.data()));
      const g1 = c.grad(loss({ causal: true }), { argnums: [0, 1, 2] })(q, k, v);
      const g2 = c.grad(loss({ mask: keep }), { argnums: [0, 1, 2] })(q, k, v);
      for (let i = 0; i < 3; i++) expect(Array.from(await g1[i].data()), `gradient ${i} ${sq}x${sk}`).toEqual(Array.from(await g2[i].data()));
      c.tree.dispose([q, k, v, G, keep, y1, y2, g1, g2]);
    }
  });

  describe('softmax, logSoftmax, crossEntropy, mse', () => {
    it('softmax and logSoftmax along every axis (and negative ones) of a rank-3 tensor', async () => {
      const shape = [3, 4, 5];
      const [x, xr] = rand(shape, 1, -4, 4);
      for (const axis of [0, 1, 2, -1, -3]) {
        const a = axis < 0 ? axis + 3 : axis;
        const n = shape[a];
        const { y, scale } = logSoftmaxRef(xr, a);
        const ls = nn.logSoftmax(x, axis);
        const sm = nn.softmax(x, axis);
        await expectClose(ls, y, (i) => 4 * EPS32 * (n + 4 + scale[i]));
        await expectClose(sm, nd(shape, y.data.map(Math.exp)), (i) => 4 * EPS32 * (n + 4 + scale[i]) * Math.exp(y.data[i]));
        // Each line sums to 1 within n eps.
        const got = await sm.data();
        for (const ps of lines(shape, a)) expect(Math.abs(sum64(ps.map((p) => got[p])) - 1)).toBeLessThanOrEqual((n + 2) * EPS32);
        c.tree.dispose([ls, sm]);
      }
      // The default axis is the last.
      const d = nn.softmax(x);
      const l = nn.softmax(x, 2);
      expect(await d.data()).toEqual(await l.data());
      expect(() => nn.softmax(x, 3)).toThrow(/softmax: axis 3 is out of range for a tensor of rank 3/);
      c.tree.dispose([x, d, l]);
    });

    it('large logits (±1e3) do not overflow: finite, within the float32 error of |logsumexp|', async () => {
      const n = 16;
      const data = Float32Array.from({ length: 3 * n }, (_, i) => [1000, -1000, 0][Math.floor(i / n)] + randomData(3 * n, 2, -5, 5)[i]);
      const x = c.tensor(data, [3, n]);
      const xr = nd([3, n], data);
      const { y, scale } = logSoftmaxRef(xr, 1);
      const ls = nn.logSoftmax(x);
      const sm = nn.softmax(x);
      await expectClose(ls, y, (i) => 4 * EPS32 * (n + 4 + scale[i]));
      await expectClose(sm, nd([3, n], y.data.map(Math.exp)), (i) => 4 * EPS32 * (n + 4 + scale[i]) * Math.exp(y.data[i]));
      c.tree.dispose([x, ls, sm]);
    });

    it('large logits: softmax rows sum to 1 within n eps, as exp(x - max) / sum gives', async () => {
      const n = 16;
      const data = Float32Array.from({ length: 2 * n }, (_, i) => (i < n ? 1000 : -1000) + 0.37 * (i % n));
      const x = c.tensor(data, [2, n]);
      const sm = nn.softmax(x);
      const got = await sm.data();
      c.tree.dispose([x, sm]);
      for (let r = 0; r < 2; r++) expect(Math.abs(sum64(got.slice(r * n, (r + 1) * n)) - 1)).toBeLessThanOrEqual(n * EPS32);
    });

    it('softmax of rows holding NaN, +Inf and -Inf gives what exp(x - max) / sum gives in float64', async () => {
      const rows = [
        [1, NaN, 2],
        [Infinity, 0, 1],
        [-Infinity, 0, 1],
        [-Infinity, -Infinity, -Infinity],
        [3.4e38, -3.4e38, 0],
      ];
      // The definition as a plain loop: the row maximum (NaN if any), then exp(x - max) / their sum.
      const expected = rows.flatMap((row) => {
        const m = row.some(Number.isNaN) ? NaN : Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        return e.map((v) => v / s);
      });
      const x = c.tensor(rows.flat(), [rows.length, 3]);
      const sm = nn.softmax(x);
      const got = Array.from(await sm.data());
      got.forEach((v, i) => {
        if (Number.isNaN(expected[i])) expect(v, `element ${i}`).toBeNaN();
        else expect(Math.abs(v - expected[i]), `element ${i}`).toBeLessThanOrEqual(4 * EPS32 * Math.abs(expected[i]));
      });
      c.tree.dispose([x, sm]);
    });

    it('crossEntropy: reduction mean, sum and none, on [B, C] and [B, T, C] logits', async () => {
      for (const [shape, seed] of [[[6, 5], 3], [[2, 3, 4], 4]] as const) {
        const C = shape[shape.length - 1];
        const [logits, lr] = rand([...shape], seed, -3, 3);
        const nEx = count(shape) / C;
        const labelData = Array.from({ length: nEx }, (_, i) => (i * 7 + seed) % C);
        const labels = ints(labelData, shape.slice(0, -1));
        const { losses, scale } = crossEntropyRef(lr, labelData);
        const none = nn.crossEntropy(logits, labels, { reduction: 'none' });
        await expectClose(none, nd(shape.slice(0, -1), losses), (i) => 4 * EPS32 * scale[i]);
        const total = sum64(losses);
        const sumScale = sum64(scale) + nEx * sum64(losses.map(Math.abs));
        const s = nn.crossEntropy(logits, labels, { reduction: 'sum' });
        await expectClose(s, nd([], [total]), () => 4 * EPS32 * sumScale);
        const m = nn.crossEntropy(logits, labels);
        const m2 = nn.crossEntropy(logits, labels, { reduction: 'mean' });
        await expectClose(m, nd([], [total / nEx]), () => (4 * EPS32 * sumScale) / nEx);
        expect(await m2.data()).toEqual(await m.data());
        c.tree.dispose([logits, labels, none, s, m, m2]);
      }
      // The docs' example.
      const ex = nn.crossEntropy(c.tensor([[2, 0], [0, 2]]), ints([0, 1]));
      expect(Math.abs((await ex.data())[0] - Math.log(1 + Math.exp(-2)))).toBeLessThanOrEqual(8 * EPS32);
      ex.dispose();
    });

    it('crossEntropy ignoreIndex: the mean is over the kept examples (PyTorch); none gives 0 there; also a class index', async () => {
      const [B, C] = [8, 5];
      const [logits, lr] = rand([B, C], 5, -3, 3);
      for (const [ignore, labelData] of [
        [-100, [1, -100, 4, 0, -100, 2, 3, -100]],
        [0, [1, 0, 4, 0, 0, 2, 3, 1]],
      ] as const) {
        const labels = ints([...labelData]);
        const { losses, kept, scale } = crossEntropyRef(lr, [...labelData], ignore);
        const nKept = kept.filter(Boolean).length;
        const none = nn.crossEntropy(logits, labels, { reduction: 'none', ignoreIndex: ignore });
        await expectClose(none, nd([B], losses), (i) => 4 * EPS32 * scale[i]);
        const got = await none.data();
        kept.forEach((k, i) => !k && expect(got[i]).toBe(0));
        const total = sum64(losses);
        const sumScale = sum64(scale) + B * sum64(losses.map(Math.abs));
        const s = nn.crossEntropy(logits, labels, { reduction: 'sum', ignoreIndex: ignore });
        await expectClose(s, nd([], [total]), () => 4 * EPS32 * sumScale);
        const m = nn.crossEntropy(logits, labels, { ignoreIndex: ignore });
        await expectClose(m, nd([], [total / nKept]), () => (4 * EPS32 * sumScale) / nKept);
        c.tree.dispose([labels, none, s, m]);
      }
      logits.dispose();
    });

    it('crossEntropy errors: labels not int32, a shape mismatch, an unknown reduction; a label out of range gives NaN (indices.test.ts)', () => {
      const logits = c.tensor(randomData(12, 6), [4, 3]);
      const f = c.tensor([0, 1, 2, 1]);
      const col = ints([0, 1, 2, 1], [4, 1]);
      const ok = ints([0, 1, 2, 1]);
      expect(() => nn.crossEntropy(logits, f)).toThrow(/crossEntropy: labels must be int32, got float32/);
      expect(() => nn.crossEntropy(logits, col)).toThrow(/crossEntropy: logits \[4,3\] need labels of shape \[4\], got \[4,1\]/);
      expect(() => nn.crossEntropy(logits, ok, { reduction: 'avg' as 'mean' })).toThrow(/crossEntropy: unknown reduction "avg"/);
      c.tree.dispose([logits, f, col, ok]);
    });

    it('mse with reduction mean, sum and none', async () => {
      const [p, pr] = rand([3, 4], 7);
      const [t, tr] = rand([3, 4], 8);
      const sq = pr.data.map((v, i) => (v - tr.data[i]) ** 2);
      const none = nn.mse(p, t, { reduction: 'none' });
      await expectClose(none, nd([3, 4], sq), (i) => 3 * EPS32 * sq[i]);
      const s = nn.mse(p, t, { reduction: 'sum' });
      await expectClose(s, nd([], [sum64(sq)]), () => 15 * EPS32 * sum64(sq));
      const m = nn.mse(p, t);
      await expectClose(m, nd([], [sum64(sq) / 12]), () => (15 * EPS32 * sum64(sq)) / 12);
      c.tree.dispose([p, t, none, s, m]);
    });
  });

  describe('normalization, linear, embedding', () => {
    it('layerNorm: biased variance, eps 1e-5 by default, gamma and beta; another eps', async () => {
      const d = 8;
      const [x, xr] = rand([2, 3, d], 10, -3, 3);
      const gd = randomData(d, 11, 0.5, 1.5);
      const bd = randomData(d, 12);
      const gamma = c.tensor(gd);
      const beta = c.tensor(bd);
      for (const eps of [undefined, 0.5]) {
        const { y, scale } = normRef(xr, gd, bd, eps ?? 1e-5, false);
        const got = nn.layerNorm(x, gamma, beta, eps);
        await expectClose(got, y, (i) => 2 * (d + 8) * EPS32 * scale[i]);
        got.dispose();
      }
      // A near-constant row (variance 2.4e-7): the default eps 1e-5 (not 1e-6 or 0) sets the scale
      // of the output (a factor 3 between those); x - mean cancels, so within 2^-12 relative.
      const flat = c.tensor(Float32Array.from({ length: d }, (_, i) => 1 + (i % 2) * 2 ** -10), [1, d]);
      const { y } = normRef(nd([1, d], await flat.data()), gd, bd, 1e-5, false);
      const yf = nn.layerNorm(flat, gamma, beta);
      await expectClose(yf, y, (i) => 1e-3 * Math.abs(y.data[i]) + 1e-6);
      const g2 = c.tensor([1, 2]);
      expect(() => nn.layerNorm(x, g2, beta)).toThrow(/layerNorm: gamma must have shape \[8\] for x \[2,3,8\], got \[2\]/);
      expect(() => nn.layerNorm(x, gamma, g2)).toThrow(/layerNorm: beta must have shape \[8\]/);
      c.tree.dispose([x, gamma, beta, flat, yf, g2]);
    });

    it('rmsNorm: x / sqrt(mean(x²) + eps) * gamma, eps 1e-6 by default', async () => {
      const d = 8;
      const [x, xr] = rand([4, d], 13, -2, 2);
      const gd = randomData(d, 14, -1.5, 1.5);
      const gamma = c.tensor(gd);
      for (const eps of [undefined, 0.25]) {
        const { y, scale } = normRef(xr, gd, null, eps ?? 1e-6, true);
        const got = nn.rmsNorm(x, gamma, eps);
        await expectClose(got, y, (i) => 2 * (d + 8) * EPS32 * scale[i]);
        got.dispose();
      }
      // Tiny rows show the eps: mean(x²) = 1e-6 here, so the default eps halves it.
      const tiny = c.tensor(new Float32Array(d).fill(1e-3), [1, d]);
      const one = c.onesLike(gamma);
      const yt = nn.rmsNorm(tiny, one);
      const want = 1e-3 / Math.sqrt(1e-6 + 1e-6);
      expect(Array.from(await yt.data()).every((v) => Math.abs(v - want) <= 1e-5 * want)).toBe(true);
      const g2 = c.tensor([1, 2]);
      expect(() => nn.rmsNorm(x, g2)).toThrow(/rmsNorm: gamma must have shape \[8\] for x \[4,8\], got \[2\]/);
      c.tree.dispose([x, gamma, tiny, one, yt, g2]);
    });

    it('linear: x @ Wᵀ + b with W [out, in], with and without a bias, for rank-2 and rank-3 x', async () => {
      const [W, Wr] = rand([6, 4], 15);
      const [b, br] = rand([6], 16);
      for (const shape of [[5, 4], [2, 3, 4]]) {
        const [x, xr] = rand(shape, 17);
        const rows = count(shape) / 4;
        const x2 = nd([rows, 4], xr.data);
        const Wt = transposeRef(Wr, [1, 0]);
        const y = matmulRef(x2, Wt);
        const yAbs = matmulRef(nd(x2.shape, x2.data.map(Math.abs)), nd(Wt.shape, Wt.data.map(Math.abs)));
        const outShape = [...shape.slice(0, -1), 6];
        const noBias = nn.linear(x, W);
        await expectClose(noBias, nd(outShape, y.data), (i) => 5 * EPS32 * yAbs.data[i]);
        const nullBias = nn.linear(x, W, null);
        expect(await nullBias.data()).toEqual(await noBias.data());
        const withBias = nn.linear(x, W, b);
        await expectClose(withBias, nd(outShape, y.data.map((v, i) => v + br.data[i % 6])), (i) => 6 * EPS32 * (yAbs.data[i] + Math.abs(br.data[i % 6])));
        c.tree.dispose([x, noBias, nullBias, withBias]);
      }
      const x = c.tensor(randomData(8, 18), [2, 4]);
      const Wbad = c.tensor(randomData(24, 19), [4, 6]);
      const W3 = c.tensor(randomData(24, 20), [1, 6, 4]);
      const bbad = c.tensor([1, 2, 3]);
      expect(() => nn.linear(x, Wbad)).toThrow(/linear: W must be \[out, in\] with in = 4 \(the last axis of x \[2,4\]\), got \[4,6\]/);
      expect(() => nn.linear(x, W3)).toThrow(/linear: W must be \[out, in\].*got \[1,6,4\]/);
      expect(() => nn.linear(x, W, bbad)).toThrow(/linear: b must have shape \[6\], got \[3\]/);
      c.tree.dispose([W, b, x, Wbad, W3, bbad]);
    });

    it('embedding: rows of the table at the ids, shape [...ids, dim]; a table that is not [vocab, dim] errors', async () => {
      const [V, D] = [7, 5];
      const td = randomData(V * D, 21);
      const table = c.tensor(td, [V, D]);
      const ids = [3, 0, 6, 3, 1, 5];
      const idsT = ints(ids, [2, 3]);
      const e = nn.embedding(table, idsT);
      expect(e.shape).toEqual([2, 3, D]);
      const want = Float32Array.from(ids.flatMap((id) => Array.from(td.slice(id * D, (id + 1) * D))));
      expect(await e.data()).toEqual(want);
      const flat = c.tensor(td);
      expect(() => nn.embedding(flat, idsT)).toThrow(/embedding: table must be \[vocab, dim\], got \[35\]/);
      c.tree.dispose([table, idsT, e, flat]);
    });
  });

  describe('attention', () => {
    const [B, H, D] = [2, 2, 8];
    const cases: { name: string; sq: number; sk: number; causal: boolean; mask?: { shape: number[]; data: (p: number) => number } }[] = [
      { name: 'full', sq: 4, sk: 4, causal: false },
      { name: 'causal', sq: 5, sk: 5, causal: true },
      { name: 'causal with more keys than queries (aligned to the end: a KV cache)', sq: 3, sk: 6, causal: true },
      { name: 'explicit [Sq, Sk] mask (broadcast over batch and heads)', sq: 4, sk: 6, causal: false, mask: { shape: [4, 6], data: (p) => ((p * 7) % 3 === 1 ? 0 : 1) } },
      { name: 'padding mask [B, 1, 1, Sk] with causal', sq: 5, sk: 5, causal: true, mask: { shape: [B, 1, 1, 5], data: (p) => (p === 3 || p === 9 ? 0 : 1) } },
    ];
    for (const { name, sq, sk, causal, mask } of cases) {
      it(`${name}, against a float64 loop`, async () => {
        const [q, qr] = rand([B, H, sq, D], 30 + sq, -1.5, 1.5);
        const [k, kr] = rand([B, H, sk, D], 31 + sk, -1.5, 1.5);
        const [v, vr] = rand([B, H, sk, D], 32 + sk);
        const md = mask ? Array.from({ length: count(mask.shape) }, (_, p) => mask.data(p)) : null;
        const mt = mask && md ? c.tensor(md, mask.shape) : undefined;
        const { y, scale } = attentionRef(qr, kr, vr, causal, mask && md ? nd(mask.shape, md) : null);
        const got = nn.attention(q, k, v, { causal, mask: mt });
        expect(got.shape).toEqual([B, H, sq, D]);
        // scale (attentionRef) counts each rounding source once; 2 covers sqrt and division within
        // 2.5 ulp on WebGPU.
        await expectClose(got, y, (i) => 2 * EPS32 * scale[i]);
        c.tree.dispose([q, k, v, mt, got]);
      });
    }

    it('causal attention: query i does not see keys after i (changing them leaves row i alone)', async () => {
      const [q] = rand([1, 1, 4, D], 40);
      const kd = randomData(4 * D, 41);
      const vd = randomData(4 * D, 42);
      const k1 = c.tensor(kd, [1, 1, 4, D]);
      const v1 = c.tensor(vd, [1, 1, 4, D]);
      const k2 = c.tensor(kd.map((x, p) => (p >= 3 * D ? x + 5 : x)), [1, 1, 4, D]);
      const v2 = c.tensor(vd.map((x, p) => (p >= 3 * D ? x - 7 : x)), [1, 1, 4, D]);
      const ys = c.tidy(() => [nn.attention(q, k1, v1, { causal: true }), nn.attention(q, k2, v2, { causal: true })]);
      const [a, b] = await Promise.all(ys.map((y) => y.data()));
      expect(b.slice(0, 3 * D)).toEqual(a.slice(0, 3 * D));
      expect(b.slice(3 * D)).not.toEqual(a.slice(3 * D));
      c.tree.dispose([q, k1, v1, k2, v2, ys]);
    });

    it('attention errors name the op and the shapes', () => {
      const q = c.tensor(randomData(8, 43), [2, 4]);
      const k = c.tensor(randomData(6, 44), [2, 3]);
      const k3 = c.tensor(randomData(8, 45), [1, 2, 4]);
      const v = c.tensor(randomData(12, 46), [3, 4]);
      expect(() => nn.attention(q, k, q)).toThrow(/attention: q and k need one feature size, got \[2,4\] and \[2,3\]/);
      expect(() => nn.attention(q, q, v)).toThrow(/attention: k and v need one sequence length, got \[2,4\] and \[3,4\]/);
      expect(() => nn.attention(q, k3, k3)).toThrow(/attention: q \[2,4\], k \[1,2,4\], v \[1,2,4\] must have one rank >= 2/);
      c.tree.dispose([q, k, k3, v]);
    });
  });

  describe('activations and random layers', () => {
    it('gelu (tanh approximation), silu, relu, sigmoid, tanh are the core ops re-exported', async () => {
      expect(nn.gelu).toBe(c.gelu);
      expect(nn.silu).toBe(c.silu);
      expect(nn.relu).toBe(c.relu);
      expect(nn.sigmoid).toBe(c.sigmoid);
      expect(nn.tanh).toBe(c.tanh);
      const [x, xr] = rand([20], 50, -4, 4);
      const gelu64 = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      const silu64 = (v: number): number => v / (1 + Math.exp(-v));
      const g = nn.gelu(x);
      const s = nn.silu(x);
      // Within 8 eps of |x| (tanh and exp are a few ulp; the outer products round once each).
      await expectClose(g, nd([20], xr.data.map(gelu64)), (i) => 8 * EPS32 * Math.abs(xr.data[i]));
      await expectClose(s, nd([20], xr.data.map(silu64)), (i) => 8 * EPS32 * Math.abs(xr.data[i]));
      c.tree.dispose([x, g, s]);
    });

    it('dropout: the same key gives the same mask; the mask is bernoulli(key, 1 - rate); other keys differ', async () => {
      const [k1, k2] = random.split(random.key(7));
      const x = c.tensor(randomData(1000, 51, 0.5, 1.5), [10, 100]);
      const ys = c.tidy(() => [nn.dropout(k1, x, 0.3), nn.dropout(k1, x, 0.3), nn.dropout(k2, x, 0.3), random.bernoulli(k1, 0.7, [10, 100])]);
      const [a, b, other, keep] = await Promise.all(ys.map((y) => y.data()));
      expect(b).toEqual(a);
      expect(other).not.toEqual(a);
      expect(Array.from(a, (v) => (v !== 0 ? 1 : 0))).toEqual(Array.from(keep));
      c.tree.dispose([x, ys]);
    });

    it('dropout over 1e5 elements: kept fraction 1 - rate, kept values x / (1 - rate), expectation unchanged; rate 0 is the identity', async () => {
      const n = 100_000;
      const xd = randomData(n, 52, 0.5, 1.5);
      const x = c.tensor(xd, [100, 1000]);
      for (const rate of [0.1, 0.5, 0.9]) {
        const y = nn.dropout(random.key(Math.round(rate * 10)), x, rate);
        expect(y.shape).toEqual([100, 1000]);
        const got = await y.data();
        y.dispose();
        let kept = 0;
        let sumY = 0;
        let sumX = 0;
        const bad: string[] = [];
        for (let i = 0; i < n; i++) {
          sumX += xd[i];
          sumY += got[i];
          if (got[i] === 0) continue;
          kept++;
          const want = xd[i] / (1 - rate);
          if (Math.abs(got[i] - want) > 2 * EPS32 * want && bad.length < 3) bad.push(`element ${i}: ${got[i]} != ${xd[i]} / ${1 - rate}`);
        }
        expect(bad).toEqual([]);
        // Binomial count: within 5 standard errors.
        const p = 1 - rate;
        expect(Math.abs(kept / n - p)).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / n));
        // The mean of y estimates the mean of x: the per-element variance is x² rate / (1 - rate).
        const se = Math.sqrt((rate / (1 - rate)) * (sum64(xd.map((v) => v * v)) / n) / n);
        expect(Math.abs(sumY / n - sumX / n)).toBeLessThanOrEqual(5 * se);
      }
      const same = nn.dropout(random.key(0), x, 0);
      expect(same).not.toBe(x);
      expect(await same.data()).toEqual(xd);
      for (const rate of [1, -0.1, 1.5, NaN]) expect(() => nn.dropout(random.key(0), x, rate)).toThrow(new RegExp(`dropout: rate must be in \\[0, 1\\), got ${rate}`));
      c.tree.dispose([x, same]);
    });

    it('glorotUniform: U(-l, l), l = sqrt(6 / (fanIn + fanOut)) with the [out, in, ...field] layout', async () => {
      for (const [shape, fanIn, fanOut] of [
        [[300, 100], 100, 300],
        [[32, 16, 3, 3], 16 * 9, 32 * 9],
      ] as const) {
        const w = nn.glorotUniform(random.key(fanIn), [...shape]);
        expect(w.shape).toEqual(shape);
        const got = await w.data();
        w.dispose();
        const n = got.length;
        const l = Math.sqrt(6 / (fanIn + fanOut));
        let max = 0;
        let s = 0;
        let s2 = 0;
        for (const v of got) {
          max = Math.max(max, Math.abs(v));
          s += v;
          s2 += v * v;
        }
        expect(max).toBeLessThanOrEqual(l);
        expect(max).toBeGreaterThan(0.99 * l);
        // Mean 0 (variance l²/3) and variance l²/3 (fourth moment l⁴/5), within 5 standard errors.
        expect(Math.abs(s / n)).toBeLessThanOrEqual(5 * Math.sqrt(l * l / 3 / n));
        const v = s2 / n - (s / n) ** 2;
        expect(Math.abs(v - (l * l) / 3)).toBeLessThanOrEqual(5 * varSe(n, l ** 4 / 5, l ** 2 / 3));
        // Glorot's variance 2 / (fanIn + fanOut).
        expect(Math.abs(v - 2 / (fanIn + fanOut))).toBeLessThanOrEqual(5 * varSe(n, l ** 4 / 5, l ** 2 / 3));
      }
      expect(() => nn.glorotUniform(random.key(0), [10])).toThrow(/glorotUniform: needs a shape of rank >= 2 \(\[out, in, \.\.\.\]\), got \[10\]/);
    });

    it('normalInit: mean 0 and the given std (0.02 by default); nn.normal is its deprecated alias', async () => {
      if (name === 'webgl') {
        expect(() => nn.normalInit(random.key(0), [2, 2])).toThrow(/normal: not available on webgl/);
        return;
      }
      const n = 40_000;
      for (const std of [undefined, 1.5]) {
        const w = nn.normalInit(random.key(3), [200, 200], std);
        const got = await w.data();
        w.dispose();
        const sd = std ?? 0.02;
        const mean = sum64(got) / n;
        const v = sum64(got.map((x) => x * x)) / n - mean * mean;
        expect(Math.abs(mean)).toBeLessThanOrEqual(5 * sd / Math.sqrt(n));
        // The sample variance of a normal has standard error sd² sqrt(2 / n).
        expect(Math.abs(v - sd * sd)).toBeLessThanOrEqual(5 * sd * sd * Math.sqrt(2 / n));
      }
      expect(() => nn.normalInit(random.key(0), [2, 2], -1)).toThrow(/normalInit: std must be non-negative, got -1/);
      expect(nn.normal).toBe(nn.normalInit);
    });
  });

  describe('gradients (float64 finite differences)', () => {
    it('crossEntropy with ignoreIndex (mean over the kept examples): no gradient into ignored rows', async () => {
      const [B, C] = [6, 4];
      const labelData = [2, -100, 0, 3, -100, 1];
      const labels = ints(labelData);
      const f = (logits: Tensor): Tensor => nn.crossEntropy(logits, labels, { ignoreIndex: -100 });
      const fRef = (logits: Nd): Nd => {
        const { losses, kept } = crossEntropyRef(logits, labelData, -100);
        return nd([], [sum64(losses) / kept.filter(Boolean).length]);
      };
      // softmax - onehot per row (K_EW = 32 elementwise, plus sums of C terms), then the mean's scaling.
      await checkGrads(f, fRef, [{ shape: [B, C], data: randomData(B * C, 60, -2, 2) }], { seed: 60, k: 2 * (32 + C), normwise: true });
      const g = c.grad(f)(c.tensor(randomData(B * C, 61), [B, C]));
      const gd = await g.data();
      expect(Array.from(gd.slice(C, 2 * C))).toEqual([0, 0, 0, 0]);
      expect(Array.from(gd.slice(4 * C, 5 * C))).toEqual([0, 0, 0, 0]);
      c.tree.dispose([labels, g]);
    });

    it('crossEntropy (fused per-example loss) in the logits, and its second derivative', async () => {
      const [B, T, C] = [2, 3, 5];
      const labelData = [0, 4, 2, 1, 3, 4];
      const labels = ints(labelData, [B, T]);
      const f = (logits: Tensor): Tensor => nn.crossEntropy(logits, labels);
      const fRef = (logits: Nd): Nd => {
        const { losses } = crossEntropyRef(logits, labelData);
        return nd([], [sum64(losses) / labelData.length]);
      };
      const args = [{ shape: [B, T, C], data: randomData(B * T * C, 76, -3, 3) }];
      await checkGrads(f, fRef, args, { seed: 76, k: 2 * (32 + C), normwise: true });
      // The gradient (softmax - onehot) / N, differentiated again: the Hessian of the mean loss.
      const gradRef = (logits: Nd): Nd => {
        const out = new Float64Array(logits.data.length);
        labelData.forEach((l, r) => {
          const row = Array.from(logits.data.slice(r * C, (r + 1) * C));
          const lse = lse64(row);
          row.forEach((v, j) => (out[r * C + j] = (Math.exp(v - lse) - (j === l ? 1 : 0)) / labelData.length));
        });
        return nd([B, T, C], out);
      };
      await checkGrads((x: Tensor) => c.grad(f)(x), gradRef, args, { seed: 77, k: 4 * (32 + C), normwise: true });
      labels.dispose();
    });

    it('layerNorm in x, gamma and beta, rows of a large mean, and many rows (gamma and beta sum over them)', async () => {
      const f = (x: Tensor, gamma: Tensor, beta: Tensor): Tensor => nn.layerNorm(x, gamma, beta);
      const fRef = (x: Nd, gamma: Nd, beta: Nd): Nd => normRef(x, gamma.data, beta.data, 1e-5, false).y;
      const params = (d: number, seed: number): { shape: number[]; data: ArrayLike<number> }[] => [
        { shape: [d], data: randomData(d, seed, 0.5, 1.5) },
        { shape: [d], data: randomData(d, seed + 1, -1, 1) },
      ];
      // Rows centred near 3 with spread ~0.6: the backward pass must work with x - mean, not x.
      await checkGrads(f, fRef, [{ shape: [3, 6], data: randomData(18, 64, 2, 4) }, ...params(6, 65)], { seed: 64, k: 4 * (32 + 6), normwise: true });
      await checkGrads(f, fRef, [{ shape: [2, 75, 8], data: randomData(1200, 66, -2, 2) }, ...params(8, 67)], { seed: 66, k: 4 * (32 + 150), normwise: true });
    });

    it('second derivatives of layerNorm and rmsNorm (a differentiated backward pass runs composed)', async () => {
      const d = 5;
      const wData = randomData(3 * d, 68, -1, 1);
      const w = c.tensor(wData, [3, d]);
      const beta = c.tensor(randomData(d, 69, -1, 1), [d]);
      // The float64 gradient of sum(w * norm(x)) in x: rstd (wγ - mean(wγ) - xhat mean(wγ xhat)) per
      // row (rmsNorm: no mean(wγ) term, xhat = x rstd).
      const vjpRef = (x: Nd, gamma: Nd, rms: boolean): Nd => {
        const out = new Float64Array(x.data.length);
        for (let r = 0; r < x.data.length / d; r++) {
          const row = Array.from(x.data.slice(r * d, (r + 1) * d));
          const mu = rms ? 0 : sum64(row) / d;
          const rstd = 1 / Math.sqrt(sum64(row.map((u) => (u - mu) ** 2)) / d + (rms ? 1e-6 : 1e-5));
          const xhat = row.map((u) => (u - mu) * rstd);
          const wg = row.map((_, j) => wData[r * d + j] * gamma.data[j]);
          const m1 = rms ? 0 : sum64(wg) / d;
          const m2 = sum64(wg.map((v, j) => v * xhat[j])) / d;
          row.forEach((_, j) => (out[r * d + j] = rstd * (wg[j] - m1 - xhat[j] * m2)));
        }
        return nd(x.shape, out);
      };
      const inner = (norm: (y: Tensor, gamma: Tensor) => Tensor) => (x: Tensor, gamma: Tensor): Tensor =>
        c.grad((y: Tensor) => c.sum(c.mul(w, norm(y, gamma))))(x);
      const args = [{ shape: [3, d], data: randomData(3 * d, 70, -2, 2) }, { shape: [d], data: randomData(d, 71, 0.5, 1.5) }];
      await checkGrads(inner((y, g) => nn.layerNorm(y, g, beta)), (x: Nd, g: Nd) => vjpRef(x, g, false), args, { seed: 70, k: 8 * (32 + d), normwise: true });
      await checkGrads(inner((y, g) => nn.rmsNorm(y, g)), (x: Nd, g: Nd) => vjpRef(x, g, true), args, { seed: 72, k: 8 * (32 + d), normwise: true });
      c.tree.dispose([w, beta]);
    });

    it('softmax along the last axis (fused) and another (composed); its second derivative', async () => {
      // Per row, d/dx of sum(w * softmax(x)) is y (w - Σ w y).
      const vjpRows = (x: Nd, wData: ArrayLike<number>): Nd => {
        const [r, n] = x.shape;
        const out = new Float64Array(r * n);
        for (let i = 0; i < r; i++) {
          const row = Array.from(x.data.slice(i * n, (i + 1) * n));
          const m = Math.max(...row);
          const e = row.map((v) => Math.exp(v - m));
          const s = sum64(e);
          const y = e.map((v) => v / s);
          const dot = sum64(y.map((v, j) => v * wData[i * n + j]));
          y.forEach((v, j) => (out[i * n + j] = v * (wData[i * n + j] - dot)));
        }
        return nd([r, n], out);
      };
      const softmaxRef = (x: Nd): Nd => {
        const [r, n] = x.shape;
        return nd([r, n], Array.from({ length: r }, (_, i) => Array.from(x.data.slice(i * n, (i + 1) * n))).flatMap((row) => {
          const m = Math.max(...row);
          const e = row.map((v) => Math.exp(v - m));
          const s = sum64(e);
          return e.map((v) => v / s);
        }));
      };
      const args = [{ shape: [4, 6], data: randomData(24, 73, -3, 3) }];
      await checkGrads((x: Tensor) => nn.softmax(x), softmaxRef, args, { seed: 73, k: 4 * (32 + 6), normwise: true });
      // Axis 0: composed; the reference transposes.
      const tr = (x: Nd): Nd => transposeRef(x, [1, 0]);
      await checkGrads((x: Tensor) => nn.softmax(x, 0), (x: Nd) => tr(softmaxRef(tr(x))), args, { seed: 74, k: 4 * (32 + 6), normwise: true });
      const wData = randomData(24, 75, -1, 1);
      const w = c.tensor(wData, [4, 6]);
      await checkGrads((x: Tensor) => c.grad((u: Tensor) => c.sum(c.mul(w, nn.softmax(u))))(x), (x: Nd) => vjpRows(x, wData), args, { seed: 75, k: 8 * (32 + 6), normwise: true });
      w.dispose();
    });

    it('rmsNorm in x and gamma', async () => {
      const d = 6;
      const f = (x: Tensor, gamma: Tensor): Tensor => nn.rmsNorm(x, gamma);
      const fRef = (x: Nd, gamma: Nd): Nd => normRef(x, gamma.data, null, 1e-6, true).y;
      // Two backward stages with sums of d terms, and the reciprocal square root.
      await checkGrads(f, fRef, [{ shape: [3, d], data: randomData(3 * d, 62, -2, 2) }, { shape: [d], data: randomData(d, 63, 0.5, 1.5) }], { seed: 62, k: 4 * (32 + d), normwise: true });
    });
  });

  describe('memory', () => {
    const setup = (): { x: Tensor; gamma: Tensor; labels: Tensor; W: Tensor; inputs: Tensor[] } => {
      const x = c.tensor(randomData(24, 70), [2, 3, 4]);
      const gamma = c.ones([4]);
      const labels = ints([0, 1, 2, 3, 0, 1], [2, 3]);
      const W = c.tensor(randomData(20, 71), [5, 4]);
      return { x, gamma, labels, W, inputs: [x, gamma, labels, W] };
    };
    const calls = (t: ReturnType<typeof setup>): [string, () => Tensor][] => [
      ['softmax', () => nn.softmax(t.x)],
      ['logSoftmax', () => nn.logSoftmax(t.x, 0)],
      ['crossEntropy', () => nn.crossEntropy(t.x, t.labels, { ignoreIndex: 1 })],
      ['mse', () => nn.mse(t.x, t.x)],
      ['layerNorm', () => nn.layerNorm(t.x, t.gamma, t.gamma)],
      ['rmsNorm', () => nn.rmsNorm(t.x, t.gamma)],
      ['linear', () => nn.linear(t.x, t.W)],
      ['embedding', () => nn.embedding(t.W, t.labels)],
      ['attention', () => nn.attention(t.x, t.x, t.x, { causal: true })],
      ['dropout', () => nn.dropout(random.key(1), t.x, 0.5)],
      ['glorotUniform', () => nn.glorotUniform(random.key(2), [3, 4])],
      // webgl refuses normalInit (its test above checks the refusal).
      ...(name === 'webgl' ? [] : [['normalInit', () => nn.normalInit(random.key(3), [3, 4])] as [string, () => Tensor]]),
    ];

    it('inside tidy each function leaves only its result, and memory returns to the baseline', async () => {
      await c.sync();
      const before = c.memory();
      const t = setup();
      for (const [name, f] of calls(t)) {
        await c.sync();
        const at = c.memory();
        const y = c.tidy(f);
        await c.sync();
        expect(c.memory().tensors - at.tensors, name).toBe(1);
        y.dispose();
      }
      c.tree.dispose(t.inputs);
      await c.sync();
      expect(c.memory()).toEqual(before);
    });

    it('outside tidy each function leaves only its result', async () => {
      const t = setup();
      const leaks: string[] = [];
      for (const [name, f] of calls(t)) {
        await c.sync();
        const at = c.memory();
        f().dispose();
        await c.sync();
        const d = c.memory().tensors - at.tensors;
        if (d !== 0) leaks.push(`${name}: ${d}`);
      }
      c.tree.dispose(t.inputs);
      expect(leaks).toEqual([]);
    });
  });
});
