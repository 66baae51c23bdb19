/**
 * Gradients of the logits (contracted with a fixed random weight, as checkGrads does) with respect to
 * a few weights of tiny models, against float64 central differences of the reference forward.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { forEachBackend } from '@sorsajs/testing/backends';
import { checkGrads, randomWeights, readWeights, transformerReference, type CheckGradsReport, type Nd } from '@sorsajs/testing';
import { GPT2, LLAMA, modelFor } from './configs.js';

const IDS = [
  [3, 1, 4, 1, 5],
  [9, 2, 6, 5, 3],
];

/**
 * GRADCHECK_VERBOSE=1 prints a check's worst error as a fraction of its tolerance, as core's
 * gradient tests do, for calibrating k.
 */
function report({ worst }: CheckGradsReport, k: number): void {
  if (process.env.GRADCHECK_VERBOSE) console.log(`gradcheck worst ${worst.toFixed(4)} of tol (k=${k}) ${expect.getState().currentTestName}`);
}

forEachBackend('models gradients', (backend) => {
  for (const [name, json, keys] of [
    ['gpt2', GPT2, ['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.mlp.c_proj.weight', 'transformer.wpe.weight']],
    ['llama', LLAMA, ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.1.mlp.gate_proj.weight']],
  ] as const) {
    it(`${name}: d logits / d (${keys.join(', ')}) match float64 differences`, async () => {
      const model = await modelFor(backend, json, c.random.key(2));
      const params = randomWeights(model.params, 5);
      c.tree.dispose(model.params);
      const weights = await readWeights(params);
      const paths = c.tree.leafPaths(params);
      const leaves = c.tree.leaves(params) as c.Tensor[];
      const args = keys.map((k) => c.tensor(Float32Array.from(weights.get(k)!), leaves[paths.indexOf(k)].shape));
      const f = (...ws: c.Tensor[]): c.Tensor => {
        const p = c.tree.mapWithPath((path, leaf) => {
          const j = (keys as readonly string[]).indexOf(path);
          return j >= 0 ? ws[j] : leaf;
        }, params);
        return model.forward(p, IDS);
      };
      const fRef = (...ws: Nd[]): Nd => {
        const w = new Map(weights);
        keys.forEach((k, j) => w.set(k, Float64Array.from(ws[j].data)));
        return { shape: [IDS.length, IDS[0].length, model.config.vocabSize], data: transformerReference(model.config, w, IDS) };
      };
      // Depth: ~6 ops per layer over 2 layers plus the head, sums of up to 12 terms: 4 * 6 * 3 * 12 eps
      // per unit of the norm-wise scale.
      const k = 4 * 6 * 3 * 12;
      report(await checkGrads(f, args, { reference: fRef, seed: 7, k, normwise: true }), k);
      c.tree.dispose([params, args]);
    });
  }
});
