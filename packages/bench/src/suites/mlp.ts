/**
 * One Adam training step of a 784-256-10 MLP (ReLU, softmax cross-entropy, batch 128): sorsajs's
 * valueAndGrad + optim.adam + applyUpdates beside tfjs-wasm's variableGrads + train.adam.
 * @module
 */
import { Bench } from 'tinybench';
import { randomData } from '@sorsajs/testing';
import * as sj from '@sorsajs/core';
import { tfjsWasm } from '../peers/tfjs.js';
import { rowsOf, type Row } from '../report.js';
import { runBench } from '../progress.js';
import type { SuiteOptions } from './matmul.js';

/** Values in [-scale, scale) from the testing kit's seeded generator: the same inputs every run. */
const uniform = (n: number, seed: number, scale: number): Float32Array => randomData(n, seed, -scale, scale);

/**
 * Times one training step, from parameters to updated parameters (the step waits for the last
 * updated parameter to be computed).
 *
 * @example
 * ```ts
 * const rows = await mlpSuite();
 * ```
 */
export async function mlpSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const tf = await tfjsWasm();
  const [B, I, H, O] = [128, 784, 256, 10];
  const w1 = uniform(H * I, 1, Math.sqrt(6 / (I + H)));
  const w2 = uniform(O * H, 2, Math.sqrt(6 / (H + O)));
  const x = uniform(B * I, 3, 1);
  const labels = Int32Array.from({ length: B }, (_, i) => (i * 7) % O);

  // sorsajs: PyTorch layout weights [out, in].
  const X = sj.tensor(x, [B, I]);
  const Y = sj.tensor(labels);
  let params: Record<string, sj.Tensor> = {
    w1: sj.tensor(w1, [H, I]),
    b1: sj.zeros([H]),
    w2: sj.tensor(w2, [O, H]),
    b2: sj.zeros([O]),
  };
  const opt = sj.optim.adam({ lr: 1e-3 });
  let state = opt.init(params);
  const loss = (p: typeof params): sj.Tensor =>
    sj.nn.crossEntropy(sj.nn.linear(sj.relu(sj.nn.linear(X, p.w1, p.b1)), p.w2, p.b2), Y);
  const step = async (): Promise<void> => {
    const [value, grads] = sj.valueAndGrad(loss)(params);
    const [updates, next] = opt.update(grads, state);
    const p2 = sj.optim.applyUpdates(params, updates);
    sj.tree.dispose([value, grads, updates, state, params]);
    params = p2;
    state = next;
    await p2.b2.data();
  };

  // tfjs: the same network with its own Adam.
  const tx = tf.tensor2d(x, [B, I]);
  const ty = tf.oneHot(tf.tensor1d(labels, 'int32'), O);
  const tw1 = tf.variable(tf.tensor2d(w1, [H, I]));
  const tb1 = tf.variable(tf.zeros([H]));
  const tw2 = tf.variable(tf.tensor2d(w2, [O, H]));
  const tb2 = tf.variable(tf.zeros([O]));
  const topt = tf.train.adam(1e-3);
  const tstep = (): void => {
    const cost = topt.minimize(() => {
      const h = tf.relu(tf.add(tf.matMul(tx, tw1, false, true), tb1));
      const logits = tf.add(tf.matMul(h, tw2, false, true), tb2);
      return tf.losses.softmaxCrossEntropy(ty, logits) as never;
    }, true);
    cost?.dispose();
    tb2.dataSync();
  };

  const ours = `sorsajs (${sj.backend()})`;
  const bench = new Bench({ time: opts.time ?? 3000, warmupTime: 500 });
  bench.add(`adam step 784-256-10 b128 | ${ours}`, step);
  bench.add(`adam step 784-256-10 b128 | tfjs-wasm`, tstep);
  await runBench(bench);
  sj.tree.dispose([params, state, X, Y]);
  return rowsOf(bench);
}
