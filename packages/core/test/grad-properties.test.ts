/**
 * Laws of reverse-mode autodiff as fast-check properties, on every backend available here:
 * linearity of grad, the chain rule on random compositions of unary ops (against float64 derivative
 * formulas), and the argnums / hasAux contract over random arities. Values come from the seeded
 * generator in reference.ts (the seed is part of each property's input, so failures reproduce from
 * fast-check's report). FC_SEED replays a run, FC_RUNS searches longer.
 */
import { expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';
import { EPS32, randomData } from './reference.js';

const RUNS = Number(process.env.FC_RUNS ?? 25);
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({
  numRuns,
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
});

const SHAPE = [3, 4];
const N = 12;
const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

/**
 * Unary ops with float64 references: value, derivative, the sum of |terms| of the derivative as the
 * library computes it (where cancellation makes it larger than |f'|), and the domain on which the op
 * is taken (keeping away from kinks, overflow and poles).
 */
interface UnaryOp {
  name: string;
  f: (v: number) => number;
  df: (v: number) => number;
  terms: (v: number) => number;
  ok: (v: number) => boolean;
}
const sig = (v: number): number => 1 / (1 + Math.exp(-v));
const GC = Math.sqrt(2 / Math.PI);
const GA = 0.044715;
const OPS: UnaryOp[] = [
  { name: 'neg', f: (v) => -v, df: () => -1, terms: () => 1, ok: () => true },
  { name: 'square', f: (v) => v * v, df: (v) => 2 * v, terms: (v) => 2 * Math.abs(v), ok: (v) => Math.abs(v) <= 3 },
  { name: 'exp', f: Math.exp, df: Math.exp, terms: Math.exp, ok: (v) => v <= 2 },
  { name: 'log', f: Math.log, df: (v) => 1 / v, terms: (v) => 1 / v, ok: (v) => v >= 0.2 },
  { name: 'log1p', f: Math.log1p, df: (v) => 1 / (1 + v), terms: (v) => 1 / (1 + v), ok: (v) => v >= -0.5 },
  { name: 'sqrt', f: Math.sqrt, df: (v) => 0.5 / Math.sqrt(v), terms: (v) => 0.5 / Math.sqrt(v), ok: (v) => v >= 0.2 },
  { name: 'rsqrt', f: (v) => 1 / Math.sqrt(v), df: (v) => -0.5 * v ** -1.5, terms: (v) => 0.5 * v ** -1.5, ok: (v) => v >= 0.2 },
  { name: 'tanh', f: Math.tanh, df: (v) => 1 - Math.tanh(v) ** 2, terms: (v) => 1 + Math.tanh(v) ** 2, ok: (v) => Math.abs(v) <= 4 },
  { name: 'sigmoid', f: sig, df: (v) => sig(v) * (1 - sig(v)), terms: (v) => sig(v) * (1 + sig(v)), ok: (v) => Math.abs(v) <= 6 },
  { name: 'relu', f: (v) => Math.max(v, 0), df: (v) => (v > 0 ? 1 : 0), terms: () => 1, ok: (v) => Math.abs(v) >= 0.05 },
  { name: 'abs', f: Math.abs, df: Math.sign, terms: () => 1, ok: (v) => Math.abs(v) >= 0.05 },
  {
    name: 'gelu',
    f: (v) => 0.5 * v * (1 + Math.tanh(GC * (v + GA * v ** 3))),
    df: (v) => {
      const t = Math.tanh(GC * (v + GA * v ** 3));
      return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GC * (1 + 3 * GA * v * v);
    },
    terms: (v) => {
      const t = Math.tanh(GC * (v + GA * v ** 3));
      return 0.5 * (1 + Math.abs(t)) + 0.5 * Math.abs(v) * (1 + t * t) * GC * (1 + 3 * GA * v * v);
    },
    ok: (v) => Math.abs(v) <= 4,
  },
  {
    name: 'silu',
    f: (v) => v * sig(v),
    df: (v) => sig(v) * (1 + v * (1 - sig(v))),
    terms: (v) => sig(v) * (1 + Math.abs(v) * (1 + sig(v))),
    ok: (v) => Math.abs(v) <= 6,
  },
  // sin and cos are accurate to a few eps absolute (not relative) for these arguments.
  { name: 'sin', f: Math.sin, df: Math.cos, terms: () => 1, ok: (v) => Math.abs(v) <= 6 },
  { name: 'cos', f: Math.cos, df: (v) => -Math.sin(v), terms: () => 1, ok: (v) => Math.abs(v) <= 6 },
];
const opFn = (name: string): ((x: Tensor) => Tensor) => (c as unknown as Record<string, (x: Tensor) => Tensor>)[name];

/**
 * A chain of 2-4 ops valid on the given values: each choice indexes the ops whose domain holds for
 * every current value (so log follows exp, not sin), which keeps every draw usable.
 */
function buildChain(x0: Float32Array, choices: number[]): UnaryOp[] {
  let vals = Float64Array.from(x0);
  const chain: UnaryOp[] = [];
  for (const ch of choices) {
    const valid = OPS.filter((o) => vals.every(o.ok));
    const op = valid[ch % valid.length];
    chain.push(op);
    vals = vals.map(op.f);
  }
  return chain;
}

const apply = (chain: UnaryOp[], x: Tensor): Tensor => chain.reduce((t, op) => opFn(op.name)(t), x);

forEachBackend('grad properties', () => {
  it('chain rule: grad of sum(f_n(...f_1(x))) is the product of the float64 derivatives', async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.array(fc.nat(), { minLength: 2, maxLength: 4 }), async (seed, choices) => {
        const x0 = randomData(N, seed, -1.5, 1.5);
        const chain = buildChain(x0, choices);
        const x = c.tensor(x0, SHAPE);
        const g = c.grad((t: Tensor) => c.sum(apply(chain, t)))(x);
        const got = await g.data();
        x.dispose();
        g.dispose();
        // First-order error analysis in float64. E bounds the error of the float32 value entering op
        // i (each forward op adds <= 8 eps of max(|in|, |out|, 1), as ops.test.ts checks, and passes
        // on E times |f'|); the float32 factor d_i is then off by |f''| E + 16 eps * terms (formula
        // rounding); the product of the factors is off by the sum of each error times the others,
        // plus one rounding per factor. The test allows twice that.
        for (let i = 0; i < N; i++) {
          let u = x0[i];
          let E = 0;
          const ds: number[] = [];
          const errs: number[] = [];
          for (const op of chain) {
            const d = op.df(u);
            const dd = (op.df(u + 1e-5) - op.df(u - 1e-5)) / 2e-5;
            ds.push(d);
            errs.push(Math.abs(dd) * E + 16 * EPS32 * op.terms(u));
            const next = op.f(u);
            E = Math.abs(d) * E + 8 * EPS32 * Math.max(Math.abs(u), Math.abs(next), 1);
            u = next;
          }
          const want = ds.reduce((a, b) => a * b, 1);
          let bound = chain.length * EPS32 * Math.abs(want);
          errs.forEach((e, k) => (bound += e * ds.reduce((a, b, j) => (j === k ? a : a * Math.abs(b)), 1)));
          const err = Math.abs(got[i] - want);
          expect(err, `${chain.map((o) => o.name).join(' -> ')} at x = ${x0[i]}: got ${got[i]}, want ${want}`).toBeLessThanOrEqual(2 * bound);
        }
      }),
      params(),
    );
  });

  it('linearity: grad(a f + b g) = a grad f + b grad g', async () => {
    // f and g: a chain of 1-3 ops, then one of four scalar heads.
    const heads: [string, (t: Tensor, w: Tensor) => Tensor][] = [
      ['sum(w * .)', (t, w) => c.sum(c.mul(t, w))],
      ['mean', (t) => c.mean(t)],
      ['sum(logsumexp(., 1))', (t) => c.sum(c.logsumexp(t, 1))],
      ['sum(max(., 0))', (t) => c.sum(c.max(t, 0))],
    ];
    const part = fc.record({ choices: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), head: fc.nat({ max: heads.length - 1 }) });
    // Coefficients in [-2, 2], float32, and 0 or at least 1e-3 in size (subnormal products flush to
    // zero on some backends, which is float32's business, not autodiff's).
    const coef = fc.double({ min: -2, max: 2, noNaN: true }).map((v) => (Math.abs(v) < 1e-3 ? 0 : Math.fround(v)));
    await fc.assert(
      fc.asyncProperty(seedArb, part, part, coef, coef, async (seed, pf, pg, a, b) => {
        const x0 = randomData(N, seed, -1.5, 1.5);
        const cf = buildChain(x0, pf.choices);
        const cg = buildChain(x0, pg.choices);
        const x = c.tensor(x0, SHAPE);
        const w = c.tensor(randomData(N, seed + 1), SHAPE);
        const F = (t: Tensor): Tensor => heads[pf.head][1](apply(cf, t), w);
        const G = (t: Tensor): Tensor => heads[pg.head][1](apply(cg, t), w);
        const both = c.grad((t: Tensor) => c.add(c.mul(F(t), a), c.mul(G(t), b)))(x);
        const gf = c.grad(F)(x);
        const gg = c.grad(G)(x);
        const [l, rf, rg] = await Promise.all([both.data(), gf.data(), gg.data()]);
        c.tree.dispose([x, w, both, gf, gg]);
        // Both sides run the same kernels on the same values; only where the seeds a and b enter the
        // products differs, moving each of the <= 3 ops per link (and the head's) by one rounding.
        const k = 4 * (Math.max(cf.length, cg.length) + 2);
        for (let i = 0; i < N; i++) {
          const want = a * rf[i] + b * rg[i];
          const tol = k * EPS32 * (Math.abs(a * rf[i]) + Math.abs(b * rg[i]));
          expect(Math.abs(l[i] - want), `f = ${heads[pf.head][0]} of ${cf.map((o) => o.name)}, g = ${heads[pg.head][0]} of ${cg.map((o) => o.name)}, a = ${a}, b = ${b}, element ${i}`).toBeLessThanOrEqual(tol);
        }
      }),
      params(),
    );
  });

  it('argnums and hasAux: the result has one tree per selected argument, in argnums order', async () => {
    const spec = fc.integer({ min: 1, max: 3 }).chain((arity) =>
      fc.record({
        arity: fc.constant(arity),
        argnums: fc.oneof(
          fc.nat({ max: arity - 1 }),
          fc.shuffledSubarray(
            Array.from({ length: arity }, (_, i) => i),
            { minLength: 1 },
          ),
        ),
        hasAux: fc.boolean(),
        withValue: fc.boolean(),
        coefs: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: arity, maxLength: arity }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(spec, async ({ arity, argnums, hasAux, withValue, coefs }) => {
        // Argument i is a tensor of i + 1 small integers; f = sum_i coef_i * sum(x_i²), so
        // d f / d x_i = 2 coef_i x_i, exactly.
        const vals = Array.from({ length: arity }, (_, i) => Array.from({ length: i + 1 }, (_, j) => j - i + 1));
        const xs = vals.map((v) => c.tensor(v));
        const aux = { tag: Symbol('aux') };
        const seen: unknown[][] = [];
        const f = (...ts: Tensor[]): Tensor => {
          seen.push(ts);
          return ts.reduce<Tensor>((acc, t, i) => c.add(acc, c.mul(c.sum(c.square(t)), coefs[i])), c.tensor(0));
        };
        const fAux = (...ts: Tensor[]): [Tensor, typeof aux] => [f(...ts), aux];
        const opts = { argnums };
        let grads: unknown;
        let value: Tensor | undefined;
        if (withValue) {
          const out = hasAux ? c.valueAndGrad(fAux, { ...opts, hasAux: true })(...xs) : c.valueAndGrad(f, opts)(...xs);
          grads = out[1];
          if (hasAux) {
            const [v, a] = out[0] as [Tensor, typeof aux];
            expect(a).toBe(aux);
            value = v;
          } else value = out[0] as Tensor;
        } else {
          const out = hasAux ? c.grad(fAux, { ...opts, hasAux: true })(...xs) : c.grad(f, opts)(...xs);
          if (hasAux) {
            const [g, a] = out as [unknown, typeof aux];
            expect(a).toBe(aux);
            grads = g;
          } else grads = out;
        }
        const nums = typeof argnums === 'number' ? [argnums] : argnums;
        const list = (typeof argnums === 'number' ? [grads] : grads) as Tensor[];
        expect(Array.isArray(grads)).toBe(typeof argnums !== 'number');
        expect(list).toHaveLength(nums.length);
        for (const [k, i] of nums.entries()) {
          expect(list[k]).toBeInstanceOf(c.Tensor);
          expect(Array.from(await list[k].data(), (v) => v + 0)).toEqual(vals[i].map((v) => 2 * coefs[i] * v + 0));
        }
        // Arguments outside argnums reach f as the very same objects.
        for (let i = 0; i < arity; i++) if (!nums.includes(i)) expect(seen[0][i]).toBe(xs[i]);
        if (value) {
          const want = vals.reduce((acc, v, i) => acc + coefs[i] * v.reduce((s, u) => s + u * u, 0), 0);
          expect((await value.data())[0]).toBe(want);
        }
        c.tree.dispose([xs, list, value ?? null]);
      }),
      params(),
    );
  });
});
