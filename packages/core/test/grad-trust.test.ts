/**
 * Every gradient is right or refused (issue #10, items 1 and 2), on every backend available here:
 *  - ops whose VJPs read tensors that are not their differentiated inputs (where's condition, clip's
 *    bounds, the causal mask attention builds inside its own scope) keep them alive for the backward
 *    pass: causal attention (sk = sq and sk > sq) and masked attention are checked against float64
 *    central differences (gradcheck.ts);
 *  - functions that used to return a silent zero gradient now give a real one (pad of a rank-0
 *    tensor, optimizer updates, clip's tensor bounds), checked likewise;
 *  - a kernel launched over a tensor being differentiated without recording a VJP throws an Error
 *    naming the op, unless it is declared non-differentiable with `internal.untracked`.
 * Tolerances follow grad.test.ts: `k * EPS32 * S` with k = 32 per elementwise stage plus the length
 * of every sum the backward pass adds up; composites with a scalar loss are checked norm-wise.
 */
import { describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { count, nd, randomData, type Nd } from './reference.js';
import { awayFrom, checkGrads, type Arg } from './gradcheck.js';

const K_EW = 32;
const dataOf = (shape: number[], seed: number, lo = -1, hi = 1): Arg => ({ shape, data: randomData(count(shape), seed, lo, hi) });

/**
 * Float64 scaled dot-product attention over [H, sq, d] x [H, sk, d] x [H, sk, dv]: query i may
 * attend to key j when `j <= i + sk - sq` (causal) and `mask[i * sk + j]` is nonzero (when given).
 */
function attentionRef(q: Nd, k: Nd, v: Nd, causal: boolean, mask: number[] | null): Nd {
  const [H, sq, d] = q.shape;
  const sk = k.shape[1];
  const dv = v.shape[2];
  const out = new Float64Array(H * sq * dv);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < sq; i++) {
      const s: number[] = [];
      for (let j = 0; j < sk; j++) {
        const allowed = (!causal || j <= i + sk - sq) && (!mask || mask[i * sk + j] !== 0);
        let dot = 0;
        for (let t = 0; t < d; t++) dot += q.data[(h * sq + i) * d + t] * k.data[(h * sk + j) * d + t];
        s.push(allowed ? dot / Math.sqrt(d) : -Infinity);
      }
      const m = Math.max(...s);
      const e = s.map((u) => (u === -Infinity ? 0 : Math.exp(u - m)));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < dv; t++) {
        let acc = 0;
        for (let j = 0; j < sk; j++) acc += (e[j] / z) * v.data[(h * sk + j) * dv + t];
        out[(h * sq + i) * dv + t] = acc;
      }
    }
  }
  return nd([H, sq, dv], out);
}

/** Stacks float64 arrays of one shape along a new first axis. */
function stackRef(xs: Nd[]): Nd {
  const out = new Float64Array(xs.length * xs[0].data.length);
  xs.forEach((x, i) => out.set(x.data, i * x.data.length));
  return nd([xs.length, ...xs[0].shape], out);
}

const ew = (xs: Nd[], f: (...v: number[]) => number): Nd => nd(xs[0].shape, xs[0].data.map((_, i) => f(...xs.map((x) => x.data[i]))));

const DOUBLE: internal.KernelSource = { key: 'test:double', arrays: ['x'], scalars: [], body: 'return x[this.thread.x] * 2;' };

forEachBackend('gradients: right or refused', () => {
  describe('VJPs keep the tensors they read', () => {
    // Attention's backward: softmax and two matmuls, sums of up to max(d, sk) = 6 terms each.
    const k = 6 * (K_EW + 6);
    const H = 2;
    const d = 4;

    it('causal attention, sk = sq, against float64 central differences', async () => {
      const T = 5;
      await checkGrads(
        (q, kk, v) => c.nn.attention(q, kk, v, { causal: true }),
        (q, kk, v) => attentionRef(q, kk, v, true, null),
        [dataOf([H, T, d], 1, -1.5, 1.5), dataOf([H, T, d], 2, -1.5, 1.5), dataOf([H, T, 3], 3)],
        { seed: 1, k, normwise: true },
      );
    });

    it('causal attention with more keys than queries (aligned to the end)', async () => {
      await checkGrads(
        (q, kk, v) => c.nn.attention(q, kk, v, { causal: true }),
        (q, kk, v) => attentionRef(q, kk, v, true, null),
        [dataOf([H, 3, d], 4, -1.5, 1.5), dataOf([H, 6, d], 5, -1.5, 1.5), dataOf([H, 6, 2], 6)],
        { seed: 2, k, normwise: true },
      );
    });

    it('attention with an explicit mask, given and made inside the differentiated function', async () => {
      const [sq, sk] = [4, 5];
      const maskData = Array.from({ length: sq * sk }, (_, p) => ((p * 7) % 3 === 1 ? 0 : 1));
      for (let i = 0; i < sq; i++) maskData[i * sk + i] = 1; // every query attends to something
      const mask = c.tensor(maskData, [sq, sk]);
      const args = [dataOf([H, sq, d], 7, -1.5, 1.5), dataOf([H, sk, d], 8, -1.5, 1.5), dataOf([H, sk, 3], 9)];
      await checkGrads((q, kk, v) => c.nn.attention(q, kk, v, { mask }), (q, kk, v) => attentionRef(q, kk, v, false, maskData), args, { seed: 3, k, normwise: true });
      // The mask made in f, and combined with causal masking.
      await checkGrads(
        (q, kk, v) => c.nn.attention(q, kk, v, { causal: true, mask: c.greater(c.reshape(c.tensor(maskData), [sq, sk]), 0.5) }),
        (q, kk, v) => attentionRef(q, kk, v, true, maskData),
        args,
        { seed: 4, k, normwise: true },
      );
      mask.dispose();
    });

    it("where's condition made in a scope that ends before the backward pass", async () => {
      const f = (x: Tensor): Tensor => c.tidy(() => c.where(c.greater(c.arange(0, 6, 1, 'float32'), 2.5), x, c.mul(x, 3)));
      await checkGrads(f, (x) => nd(x.shape, x.data.map((u, i) => (i > 2.5 ? u : 3 * u))), [dataOf([6], 10)], { seed: 5, k: K_EW });
    });
  });

  describe('no silent zero gradient', () => {
    it('pad of a rank-0 tensor is the identity', async () => {
      await checkGrads((x) => c.mul(c.pad(x, []), 3), (x) => ew([x], (u) => 3 * u), [dataOf([], 11)], { seed: 6, k: K_EW });
    });

    it('clip with tensor bounds: the cotangent goes to the bound that is active', async () => {
      // x away from the bounds (lo in [-0.6, -0.4], hi = 0.5) by 0.05, far more than the FD steps.
      const x = awayFrom(awayFrom(randomData(12, 12, -1, 1), [0.5, -0.6, -0.4], 0.05), [-0.5], 0.15);
      const ref = (xx: Nd, lo: Nd, hi: Nd): Nd => nd(xx.shape, xx.data.map((u, i) => Math.min(Math.max(u, lo.data[i % 4]), hi.data[0])));
      await checkGrads((xx, lo, hi) => c.clip(xx, lo, hi), ref, [{ shape: [3, 4], data: x }, { shape: [4], data: [-0.5, -0.45, -0.55, -0.5] }, { shape: [], data: [0.5] }], {
        seed: 7,
        // lo's cotangent sums 3 rows, hi's all 12 entries.
        k: K_EW + 12,
      });
    });

    it('sgd updates (plain, momentum, nesterov) are differentiable', async () => {
      const opt = c.optim.sgd({ lr: 0.1 });
      await checkGrads((g) => opt.update(g, opt.init(g))[0] as Tensor, (g) => ew([g], (u) => -0.1 * u), [dataOf([3, 4], 13)], { seed: 8, k: K_EW });
      for (const nesterov of [false, true]) {
        const o = c.optim.sgd({ lr: 0.1, momentum: 0.9, nesterov });
        const f = (g: Tensor, b: Tensor): Tensor => {
          const [u, s] = o.update(g, { count: 3, momentum: b });
          return c.stack([u as Tensor, s.momentum as Tensor]);
        };
        const ref = (g: Nd, b: Nd): Nd => {
          const buf = ew([g, b], (gi, bi) => 0.9 * bi + gi);
          const u = nesterov ? ew([g, buf], (gi, bi) => -0.1 * (gi + 0.9 * bi)) : ew([buf], (bi) => -0.1 * bi);
          return stackRef([u, buf]);
        };
        await checkGrads(f, ref, [dataOf([3, 4], 14), dataOf([3, 4], 15)], { seed: 9, k: 2 * K_EW });
      }
    });

    it('adam and adamw updates (and their moment states) are differentiable', async () => {
      const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.1];
      for (const decay of [false, true]) {
        const o = decay ? c.optim.adamw({ lr, weightDecay: wd }) : c.optim.adam({ lr });
        const f = (g: Tensor, m: Tensor, v: Tensor, p: Tensor): Tensor => {
          const [u, s] = o.update(g, { count: 2, mu: m, nu: v }, p);
          return c.stack([u as Tensor, s.mu as Tensor, s.nu as Tensor]);
        };
        const ref = (g: Nd, m: Nd, v: Nd, p: Nd): Nd => {
          const t = 3;
          const mu = ew([g, m], (gi, mi) => b1 * mi + (1 - b1) * gi);
          const nu = ew([g, v], (gi, vi) => b2 * vi + (1 - b2) * gi * gi);
          const u = ew([mu, nu, p], (mi, vi, pi) => -((lr / (1 - b1 ** t)) * mi) / (Math.sqrt(vi) / Math.sqrt(1 - b2 ** t) + eps) - (decay ? lr * wd * pi : 0));
          return stackRef([u, mu, nu]);
        };
        // The update is a chain of ~8 roundings through sqrt and a quotient.
        await checkGrads(f, ref, [dataOf([2, 3], 16), dataOf([2, 3], 17), dataOf([2, 3], 18, 0.2, 1), dataOf([2, 3], 19)], { seed: 10, k: 4 * K_EW });
      }
    });

    it('clipByGlobalNorm is differentiable', async () => {
      const o = c.optim.clipByGlobalNorm(0.5);
      const ref = (g: Nd): Nd => {
        const n = Math.sqrt(g.data.reduce((a, u) => a + u * u, 0));
        return ew([g], (u) => u * Math.min(1, 0.5 / (n + 1e-6)));
      };
      // The norm sums 12 squares.
      await checkGrads((g) => o.update(g, null)[0] as Tensor, ref, [dataOf([3, 4], 20)], { seed: 11, k: 2 * (K_EW + 12), normwise: true });
    });
  });

  describe('kernel launches under a gradient', () => {
    it('a launch over a tensor being differentiated, with no VJP, throws naming the op', () => {
      const x = c.tensor([1, 2, 3]);
      expect(() => c.grad((t: Tensor) => c.sum(internal.launch('myDouble', DOUBLE, t.shape, 'float32', [t], [])))(x)).toThrow(/myDouble/);
      x.dispose();
    });

    it('a launch declared non-differentiable (internal.untracked) is a constant to the gradient', async () => {
      const x = c.tensor([1, 2, 3]);
      const g = c.grad((t: Tensor) => c.sum(c.mul(t, internal.untracked(() => internal.launch('myDouble', DOUBLE, t.shape, 'float32', [t], [])))))(x);
      // d/dt sum(t * const(2t)) = 2t.
      expect(Array.from(await g.data())).toEqual([2, 4, 6]);
      for (const t of [x, g]) t.dispose();
    });

    it('comparisons, argmax and int32 inputs carry no gradient and do not throw', async () => {
      const x = c.tensor([3, 1, 2]);
      const g = c.grad((t: Tensor) => c.add(c.sum(c.greater(t, 1.5)), c.sum(c.cast(c.argmax(t), 'float32'))))(x);
      expect(Array.from(await g.data())).toEqual([0, 0, 0]);
      const ids = c.tensor([0, 2], undefined, 'int32');
      // An int32 argument being differentiated feeds a kernel (oneHot) with no VJP: it has no gradient to lose.
      const [gx, gi] = c.grad((t: Tensor, i: Tensor) => c.sum(c.mul(c.oneHot(i, 3), t)), { argnums: [0, 1] })(x, ids);
      expect(Array.from(await gx.data())).toEqual([1, 0, 1]);
      expect(gi.shape).toEqual([2]);
      for (const t of [x, g, ids, gx, gi]) t.dispose();
    });
  });
});
