/**
 * The gpt suite's SORSA step written in jax-js (`@jax-js/jax`, a devDependency of this package) on
 * its wasm device (or its webgpu device, beside sorsajs on webgpu), the whole step under one `jit`: the same GPT-2, adapters, clipping, regularizer
 * and AdamW as sorsajs's `makeTrainStep`, from the same initial weights and batch (gpt-data.ts).
 *
 * jax-js's quirks on Node 20, which shape this file: `init()` without a device crashes, so it is
 * `init('wasm')`; `np.einsum` and `nn.dotProductAttention` need Node 22's iterator helpers, so
 * attention is written with matmul and softmax; `@jax-js/optax` is not published, so AdamW and the
 * clipping are written here; a transposed view fed to a jitted matmul is ~25x slower than a
 * contiguous array, so the weights are handed over already in the layout each product reads
 * (`[in, out]`, the tied head as `[width, vocab]`). Its wasm device runs one thread in Node (it
 * needs a global `Worker`, which Node lacks). Every array is reference-counted: a function
 * consumes its arguments, and `.ref` keeps one for another use.
 * @module
 */
import type * as jaxns from '@jax-js/jax';
import { adaptedLayers, mergedWeight, type GptPeer, type GptProbe, type GptStepData, type HostArray } from './gpt-data.js';

type Jax = typeof jaxns;
type A = jaxns.Array;
type Factors = { U: A; S: A; Vt: A };
type Params = Record<string, Factors>;
type Frozen = Record<string, A>;
type Batch = { ids: A; onehot: A; mask: A };

/** The jax-js devices the peer runs on: wasm beside sorsajs's CPU backends, webgpu beside its webgpu. */
export type JaxDevice = 'wasm' | 'webgpu';

const loaded = new Map<JaxDevice, Promise<Jax>>();

/**
 * Loads jax-js and starts `device`, once per device, and makes it jax-js's default. Rejects when
 * the package is not installed (it is a devDependency: a published `@sorsajs/bench` runs the
 * suite without it) or the device does not start. webgpu reuses the `navigator.gpu` (Dawn) that
 * `sj.init({ backend: 'webgpu' })` installed, so start sorsajs first.
 *
 * @example
 * ```ts
 * const jax = await jaxOn('wasm');
 * jax.numpy.ones([2]).dataSync();
 * ```
 */
export function jaxOn(device: JaxDevice): Promise<Jax> {
  let p = loaded.get(device);
  if (!p) {
    p = (async () => {
      const jax = await import('@jax-js/jax');
      // init() with no argument tries every device and crashes on Node 20: name the one we time.
      const got = await jax.init(device);
      if (!got.includes(device)) throw new Error(`jax-js started ${got.join(', ')}, not ${device}`);
      jax.defaultDevice(device);
      return jax;
    })();
    loaded.set(device, p);
  }
  return p;
}

/** Row-major transpose of a 2-D host array (the layouts jitted products read fastest). */
function transposed(a: HostArray): HostArray {
  const [r, c] = a.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a.data[i * c + j];
  return { shape: [c, r], data: out };
}

/**
 * Builds the jax-js peer on `device` (the step and the forward pass each one `jit`) and runs its
 * first two steps (the probe; the first also compiles).
 *
 * @example
 * ```ts
 * const peer = await jaxGpt(data, 'wasm');
 * peer.probe.loss0;   // the step-0 loss, to compare with sorsajs's
 * await peer.step();  // one more step, loss read back
 * peer.dispose();
 * ```
 */
export async function jaxGpt(data: GptStepData, device: JaxDevice = 'wasm'): Promise<GptPeer> {
  const jax = await jaxOn(device);
  const { numpy: np, nn, jit, valueAndGrad, grad, tree } = jax;
  const s = data.shapes;
  const h = data.hyper;
  const BT = s.batch * s.seq;
  const D = s.width;
  const hd = D / s.heads;
  const layers = adaptedLayers(data);
  const arr = (a: HostArray): A => np.array(a.data).reshape([...a.shape]);

  // Frozen inputs: norms, biases, embeddings, and each adapted residual as [in, out].
  const frozen: Frozen = {};
  for (const [path, a] of Object.entries(data.frozen)) {
    if (path in data.adapters) frozen[path] = arr(transposed(a));
    else if (path === 'transformer.wpe.weight') frozen[path] = arr({ shape: [s.seq, D], data: a.data.subarray(0, s.seq * D) });
    else frozen[path] = arr(a);
  }
  frozen['lm_head.T'] = arr(transposed(data.frozen['transformer.wte.weight']));
  const maskRows = new Float32Array(s.seq * s.seq);
  for (let i = 0; i < s.seq; i++) for (let j = i + 1; j < s.seq; j++) maskRows[i * s.seq + j] = -1e30;
  const onehot = new Float32Array(BT * s.vocab);
  data.labels.forEach((l, i) => (onehot[i * s.vocab + l] = 1));
  const batch: Batch = {
    ids: np.array(data.ids, { dtype: np.int32 }),
    onehot: np.array(onehot).reshape([BT, s.vocab]),
    // Added to the scores: exp of a masked score underflows to exactly 0, as sorsajs's where(-FLT_MAX).
    mask: np.array(maskRows).reshape([s.seq, s.seq]),
  };

  /**
   * `x` unchanged, but its cotangent is written to memory once. jax-js 0.1.25's jit fuses an
   * elementwise cotangent into the products that read it, recomputing it for every multiply-add
   * (its dot's transpose rule broadcasts the cotangent to the product's full shape, which defeats
   * the check that keeps a reused operand in memory): the gradient through a GELU or a softmax
   * between two matmuls took ~1 s instead of ~15 ms at these shapes. A pad's input is always
   * materialized, and the transpose of a slice is a pad, so padding one column and slicing it off
   * puts one pad in the backward pass right where the cotangent enters this op. Forward, both
   * are views.
   */
  const barrier = (x: A): A => {
    const last = x.ndim - 1;
    const n = x.shape[last];
    return np.pad(x, x.shape.map((_, i): [number, number] => (i === last ? [0, 1] : [0, 0]))).slice(...x.shape.map((_, i): [number, number] | [] => (i === last ? [0, n] : [])));
  };

  /**
   * The logits [BT, vocab]. `weightT(path, f)` gives an adapted layer's weight as [in, out],
   * consuming what it reads; every other leaf of `f` is consumed exactly once here.
   */
  const logitsOf = (f: Frozen, b: Batch, weightT: (path: string) => A): A => {
    const ln = (x: A, p: string): A => {
      x = barrier(x);
      const xc = x.ref.sub(np.mean(x, -1, { keepdims: true }));
      const variance = np.mean(np.square(xc.ref), -1, { keepdims: true });
      return xc.div(np.sqrt(variance.add(h.normEps))).mul(f[`${p}.weight`]).add(f[`${p}.bias`]);
    };
    const linear = (x: A, p: string): A => np.matmul(x, weightT(`${p}.weight`)).add(f[`${p}.bias`]);
    let x = np.take(f['transformer.wte.weight'], b.ids, 0).reshape([s.batch, s.seq, D]).add(f['transformer.wpe.weight']).reshape([BT, D]);
    for (let l = 0; l < s.layers; l++) {
      const p = `transformer.h.${l}`;
      const qkv = linear(ln(x.ref, `${p}.ln_1`), `${p}.attn.c_attn`).reshape([s.batch, s.seq, 3, s.heads, hd]);
      const q = qkv.ref.slice([], [], 0).transpose([0, 2, 1, 3]);
      const kT = qkv.ref.slice([], [], 1).transpose([0, 2, 3, 1]);
      const v = qkv.slice([], [], 2).transpose([0, 2, 1, 3]);
      const scores = np.matmul(q, kT).mul(1 / Math.sqrt(hd)).add(b.mask.ref);
      const a = np.matmul(nn.softmax(barrier(scores), -1), v).transpose([0, 2, 1, 3]).reshape([BT, D]);
      x = x.add(linear(a, `${p}.attn.c_proj`));
      x = x.ref.add(linear(nn.gelu(barrier(linear(ln(x, `${p}.ln_2`), `${p}.mlp.c_fc`))), `${p}.mlp.c_proj`));
    }
    b.mask.dispose();
    return np.matmul(ln(x, 'transformer.ln_f'), f['lm_head.T']);
  };
  const crossEntropy = (logits: A, onehot: A): A => nn.logSoftmax(barrier(logits), -1).mul(onehot).sum().mul(-1 / BT);

  const taskLoss = (t: Params, f: Frozen, b: Batch): A =>
    crossEntropy(
      logitsOf(f, b, (path) => {
        const { U, S, Vt } = t[path];
        // The merged weight, transposed: Wᵀ = Wresᵀ + (Vtᵀ diag S) Uᵀ.
        return f[path].add(np.matmul(Vt.transpose().mul(S), U.transpose()));
      }),
      b.onehot,
    );
  // sorsajs's orthoRegularizer: the mean over the 2L factors of ‖UᵀU − I‖_F and ‖Vt Vtᵀ − I‖_F.
  const regularizer = (uv: Record<string, { U: A; Vt: A }>): A => {
    const eye = np.eye(s.rank);
    const fro = (m: A): A => np.sqrt(np.sum(np.square(m.sub(eye.ref))));
    let total: A | null = null;
    for (const { U, Vt } of Object.values(uv)) {
      const both = fro(np.matmul(U.ref.transpose(), U)).add(fro(np.matmul(Vt.ref, Vt.transpose())));
      total = total ? total.add(both) : both;
    }
    eye.dispose();
    return (total as A).mul(1 / (2 * layers.length));
  };
  const regWeight = h.gamma / h.peakLr;

  const stepFn = (params: Params, mu: Params, nu: Params, sc: { stepSize: A; bc2: A }, f: Frozen, b: Batch) => {
    const [loss, g] = valueAndGrad(taskLoss)(tree.ref(params), f, b);
    let sq: A | null = null;
    for (const x of tree.leaves(g) as A[]) {
      const t = np.sum(np.square(x.ref));
      sq = sq ? sq.add(t) : t;
    }
    const norm = np.sqrt(sq as A);
    const coef = np.minimum(np.reciprocal(norm.ref.add(1e-6)).mul(h.maxGradNorm), 1);
    const uv = Object.fromEntries(layers.map(({ path }) => [path, { U: params[path].U.ref, Vt: params[path].Vt.ref }]));
    const rg = grad(regularizer)(uv);
    const next: { params: Params; mu: Params; nu: Params } = { params: {}, mu: {}, nu: {} };
    for (const { path } of layers) {
      const out = { params: {} as Record<string, A>, mu: {} as Record<string, A>, nu: {} as Record<string, A> };
      for (const k of ['U', 'S', 'Vt'] as const) {
        let G = g[path][k].mul(coef.ref);
        if (k !== 'S') G = G.add(rg[path][k].mul(regWeight));
        const m = mu[path][k].mul(h.b1).add(G.ref.mul(1 - h.b1));
        const v = nu[path][k].mul(h.b2).add(np.square(G).mul(1 - h.b2));
        // PyTorch's AdamW (weight decay 0): p - lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps).
        const upd = m.ref.mul(sc.stepSize.ref).div(np.sqrt(v.ref).div(sc.bc2.ref).add(h.eps));
        out.params[k] = params[path][k].sub(upd);
        out.mu[k] = m;
        out.nu[k] = v;
      }
      next.params[path] = out.params as Factors;
      next.mu[path] = out.mu as Factors;
      next.nu[path] = out.nu as Factors;
    }
    coef.dispose();
    sc.stepSize.dispose();
    sc.bc2.dispose();
    return { ...next, loss, norm };
  };
  const jitStep = jit(stepFn);

  let params: Params = Object.fromEntries(layers.map(({ path }) => {
    const a = data.adapters[path];
    return [path, { U: arr(a.U), S: arr(a.S), Vt: arr(a.Vt) }];
  }));
  let mu = tree.map((x: A) => np.zerosLike(x.ref), params) as Params;
  let nu = tree.map((x: A) => np.zerosLike(x.ref), params) as Params;
  let count = 0;
  const run = (): { loss: A; norm: A } => {
    count++;
    const sc = { stepSize: np.full([], h.lr / (1 - h.b1 ** count)), bc2: np.full([], Math.sqrt(1 - h.b2 ** count)) };
    const out = jitStep(params, mu, nu, sc, tree.ref(frozen), tree.ref(batch));
    ({ params, mu, nu } = out);
    return out;
  };
  const first = run();
  const loss0 = (await first.loss.data())[0];
  const gradNorm0 = (await first.norm.data())[0];
  const second = run();
  const probe: GptProbe = { loss0, gradNorm0, loss1: (await second.loss.data())[0] };
  second.norm.dispose();

  // The forward case reads the merged weights (as sorsajs's forward reads mergeParams' output).
  const merged: Frozen = { ...tree.ref(frozen) };
  for (const { path } of layers) {
    merged[path].dispose();
    merged[path] = arr(transposed(mergedWeight(data, path)));
  }
  const jitForward = jit((f: Frozen, b: Batch) => {
    b.onehot.dispose();
    return logitsOf(f, b, (path) => f[path]);
  });
  return {
    impl: `jax-js (${device}, jit)`,
    probe,
    step: async () => {
      const { loss, norm } = run();
      norm.dispose();
      await loss.data();
    },
    forward: async () => {
      await jitForward(tree.ref(merged), tree.ref(batch)).data();
    },
    dispose: () => {
      tree.dispose([params, mu, nu, frozen, batch, merged]);
      jitStep.dispose();
      jitForward.dispose();
    },
  };
}
