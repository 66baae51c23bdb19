/**
 * The gpt suite's SORSA step written in TensorFlow.js on its wasm backend (XNNPACK, one thread in
 * Node): the same GPT-2, adapters, clipping, regularizer and AdamW as sorsajs's `makeTrainStep`,
 * from the same initial weights and batch (see gpt-data.ts).
 * @module
 */
import type * as tfns from '@tensorflow/tfjs';
import { tfjsWasm } from './tfjs.js';
import { adaptedLayers, mergedWeight, type GptPeer, type GptProbe, type GptStepData, type HostArray } from './gpt-data.js';

type T = tfns.Tensor;

/**
 * Builds the tfjs-wasm peer and runs its first two steps (the probe). Every product is a plain
 * `matMul` of operands transposed by `tf.transpose`, the backward passes' too (a custom gradient):
 * tfjs-wasm's `matMul` with a transpose flag set runs 6-20x slower than the transpose and the plain
 * product (512 x 128 by 128 x 384: 66 ms against 9 ms here), and its own matMul gradient sets them.
 *
 * @example
 * ```ts
 * const peer = await tfjsGpt(data);
 * peer.probe.loss0; // the step-0 loss, to compare with sorsajs's
 * peer.step();      // one more step, loss read back
 * peer.dispose();
 * ```
 */
export async function tfjsGpt(data: GptStepData): Promise<GptPeer> {
  const tf = await tfjsWasm();
  const s = data.shapes;
  const h = data.hyper;
  const BT = s.batch * s.seq;
  const D = s.width;
  const hd = D / s.heads;
  const layers = adaptedLayers(data);
  const held: T[] = [];
  const hold = <X extends T>(x: X): X => {
    held.push(x);
    return x;
  };
  const host = (a: HostArray): T => hold(tf.tensor(a.data, [...a.shape]));
  // Every frozen leaf made here, outside any tidy (one made inside a step's tidy would be freed with it).
  const frozenAll = new Map(Object.keys(data.frozen).map((p) => [p, host(data.frozen[p])]));
  const frozenT = (path: string): T => frozenAll.get(path) as T;
  /** Swaps the last two axes (a real copy: tfjs has no strided views). */
  const tr = (x: T): T => tf.transpose(x, [...x.shape.keys()].map((i, _, a) => (i < a.length - 2 ? i : 2 * a.length - 3 - i)));
  // a @ b and its gradient, each product plain: d a = dy @ bᵀ, d b = aᵀ @ dy.
  const mm = tf.customGrad((a, b, save) => {
    (save as tfns.GradSaveFunc)([a as T, b as T]);
    return { value: tf.matMul(a as T, b as T), gradFunc: (dy: T, [sa, sb]: T[]) => [tf.matMul(dy, tr(sb)), tf.matMul(tr(sa), dy)] };
  }) as (a: T, b: T) => T;
  // The same for a constant right operand (the tied lm head): its gradient is never needed.
  const mmConst = tf.customGrad((a, b, save) => {
    (save as tfns.GradSaveFunc)([b as T]);
    return { value: tf.matMul(a as T, b as T), gradFunc: (dy: T, [sb]: T[]) => [tf.matMul(dy, tr(sb)), tf.zerosLike(sb)] };
  }) as (a: T, b: T) => T;

  // Constants: embeddings, norms, biases, residuals transposed to [in, out] once (y = x @ Wᵀ + b
  // becomes x @ Wt + b with no transpose of x's side), the tied head as [D, vocab], the mask.
  const wte = frozenT('transformer.wte.weight');
  const headT = hold(tf.transpose(wte));
  const wpe = hold(tf.slice(frozenT('transformer.wpe.weight'), [0, 0], [s.seq, D]));
  const resT = new Map(layers.map((l) => [l.path, hold(tf.transpose(frozenT(l.path)))]));
  const ids = hold(tf.tensor1d(data.ids, 'int32'));
  const onehot = hold(tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(data.labels, 'int32'), s.vocab), 'float32')));
  const maskRows = new Float32Array(s.seq * s.seq);
  for (let i = 0; i < s.seq; i++) for (let j = i + 1; j < s.seq; j++) maskRows[i * s.seq + j] = -1e30;
  // Added to the scores: exp of a masked score underflows to exactly 0, as sorsajs's where(-FLT_MAX).
  const mask = hold(tf.tensor2d(maskRows, [s.seq, s.seq]));

  /** The logits `[BT, vocab]` given each adapted layer's weight as [in, out]. */
  const logitsOf = (weightT: (path: string) => T): T => {
    const ln = (x: T, p: string): T => {
      const mean = tf.mean(x, -1, true);
      const xc = tf.sub(x, mean);
      const variance = tf.mean(tf.square(xc), -1, true);
      return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, h.normEps))), frozenT(`${p}.weight`)), frozenT(`${p}.bias`));
    };
    const linear = (x: T, p: string): T => tf.add(mm(x, weightT(`${p}.weight`)), frozenT(`${p}.bias`));
    const gelu = (x: T): T => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), 0.7978845608028654))));
    let x = tf.reshape(tf.add(tf.reshape(tf.gather(wte, ids), [s.batch, s.seq, D]), wpe), [BT, D]);
    for (let b = 0; b < s.layers; b++) {
      const p = `transformer.h.${b}`;
      const qkv = linear(ln(x, `${p}.ln_1`), `${p}.attn.c_attn`);
      // Column slices of the 2-D qkv: tf.split along an inner axis of [B, T, 3, H, hd] takes ~170 ms on wasm.
      const [q, k, v] = [0, 1, 2].map((j) => tf.reshape(tf.slice(qkv, [0, j * D], [BT, D]), [s.batch, s.seq, s.heads, hd]));
      const scores = tf.add(tf.mul(mm(tf.transpose(q, [0, 2, 1, 3]), tf.transpose(k, [0, 2, 3, 1])), 1 / Math.sqrt(hd)), mask);
      const a = mm(tf.softmax(scores, -1), tf.transpose(v, [0, 2, 1, 3]));
      x = tf.add(x, linear(tf.reshape(tf.transpose(a, [0, 2, 1, 3]), [BT, D]), `${p}.attn.c_proj`));
      x = tf.add(x, linear(gelu(linear(ln(x, `${p}.ln_2`), `${p}.mlp.c_fc`)), `${p}.mlp.c_proj`));
    }
    return mmConst(ln(x, 'transformer.ln_f'), headT);
  };
  const crossEntropy = (logits: T): T => tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits, -1), onehot))), BT);

  // Trainable: [U, S, Vt] per adapted layer, flat (tf.valueAndGrads takes a list).
  let params: T[] = layers.flatMap(({ path }) => ['U', 'S', 'Vt'].map((k) => tf.tensor(data.adapters[path][k as 'U'].data, [...data.adapters[path][k as 'U'].shape])));
  let mu = params.map((p) => tf.zerosLike(p));
  let nu = params.map((p) => tf.zerosLike(p));
  let count = 0;
  const eye = hold(tf.eye(s.rank));
  const taskGrad = tf.valueAndGrads((...ps: T[]) => {
    const byPath = new Map(layers.map((l, i) => [l.path, ps.slice(3 * i, 3 * i + 3)]));
    // The merged weight, transposed: Wᵀ = Wresᵀ + (Vtᵀ diag S) Uᵀ (the small factors transposed).
    return crossEntropy(
      logitsOf((path) => {
        const [U, S, Vt] = byPath.get(path) as T[];
        return tf.add(resT.get(path) as T, mm(tf.mul(tf.transpose(Vt), S), tf.transpose(U)));
      }),
    ) as tfns.Scalar;
  });
  // sorsajs's orthoRegularizer: the mean over the 2L factors of ‖UᵀU − I‖_F and ‖Vt Vtᵀ − I‖_F.
  // Over [U, Vt] of each layer only: tfjs refuses the gradient of an input the value does not read.
  const regGrad = tf.valueAndGrads((...uv: T[]) => {
    let total: T = tf.scalar(0);
    for (let i = 0; i < layers.length; i++) {
      const [U, Vt] = uv.slice(2 * i, 2 * i + 2);
      const fro = (m: T): T => tf.sqrt(tf.sum(tf.square(tf.sub(m, eye))));
      total = tf.add(total, tf.add(fro(mm(tf.transpose(U), U)), fro(mm(Vt, tf.transpose(Vt)))));
    }
    return tf.div(total, 2 * layers.length) as tfns.Scalar;
  });
  const regWeight = h.gamma / h.peakLr;

  /** One step; returns the loss and the task-gradient norm (still on the device). */
  const run = (): [T, T] => {
    count++;
    const stepSize = h.lr / (1 - h.b1 ** count);
    const bc2 = Math.sqrt(1 - h.b2 ** count);
    const out = tf.tidy(() => {
      const { value, grads } = taskGrad(params);
      const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
      const coef = tf.minimum(tf.div(h.maxGradNorm, tf.add(norm, 1e-6)), 1);
      const { grads: rg } = regGrad(params.filter((_, i) => i % 3 !== 1));
      const next = params.map((p, i) => {
        // params are [U, S, Vt] per layer, rg [U, Vt]: S has no regularizer gradient.
        const clipped = tf.mul(grads[i], coef);
        const g = i % 3 === 1 ? clipped : tf.add(clipped, tf.mul(rg[2 * Math.floor(i / 3) + (i % 3 === 2 ? 1 : 0)], regWeight));
        const m = tf.add(tf.mul(mu[i], h.b1), tf.mul(g, 1 - h.b1));
        const v = tf.add(tf.mul(nu[i], h.b2), tf.mul(tf.square(g), 1 - h.b2));
        // PyTorch's AdamW (weight decay 0): p - lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps).
        const upd = tf.div(tf.mul(m, stepSize), tf.add(tf.div(tf.sqrt(v), bc2), h.eps));
        return [tf.sub(p, upd), m, v];
      });
      return { value, norm, next };
    });
    tf.dispose([...params, ...mu, ...nu]);
    params = out.next.map((x) => x[0]);
    mu = out.next.map((x) => x[1]);
    nu = out.next.map((x) => x[2]);
    return [out.value, out.norm];
  };
  const read = (t: T): number => {
    const v = (t.dataSync() as Float32Array)[0];
    t.dispose();
    return v;
  };
  const [l0, n0] = run();
  const [l1, n1] = run();
  const probe: GptProbe = { loss0: read(l0), gradNorm0: read(n0), loss1: read(l1) };
  n1.dispose();

  const mergedT = new Map(layers.map((l) => [l.path, hold(tf.transpose(host(mergedWeight(data, l.path))))]));
  return {
    impl: 'tfjs-wasm',
    probe,
    step: () => {
      const [loss, norm] = run();
      norm.dispose();
      read(loss);
    },
    forward: () => {
      const logits = tf.tidy(() => logitsOf((path) => mergedT.get(path) as T));
      logits.dataSync();
      logits.dispose();
    },
    dispose: () => tf.dispose([...held, ...params, ...mu, ...nu]),
  };
}
