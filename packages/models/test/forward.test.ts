/**
 * Forward passes of tiny GPT-2 and Llama-family models against @sorsajs/testing's float64 reference, on
 * every backend; createModel's tree, shapes and initialization statistics.
 */
import { expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { createModel, isLinearWeight, parseConfig, type ForwardParams, type LinearWeight } from '@sorsajs/models';
import { forEachBackend } from '@sorsajs/testing/backends';
import { randomWeights, readWeights, transformerReference, transformerTolerance } from '@sorsajs/testing';
import { GPT2, LLAMA, QWEN2, modelFor } from './configs.js';

const clean = (x: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined));

forEachBackend('models forward', (backend) => {
  for (const [name, json] of [['gpt2', GPT2], ['llama (GQA, biases)', LLAMA], ['qwen2 (tied)', QWEN2]] as const) {
    it(`${name}: logits equal the float64 reference`, async () => {
      const model = await modelFor(backend, clean(json), c.random.key(1));
      const params = randomWeights(model.params, 3);
      c.tree.dispose(model.params);
      const ids = [
        [1, 5, 0, 7, 3, 18, 2],
        [4, 4, 9, 11, 0, 6, 1],
      ];
      const logits = model.forward(params, ids);
      expect(logits.shape).toEqual([2, 7, model.config.vocabSize]);
      const got = await logits.data();
      const want = transformerReference(model.config, await readWeights(params), ids);
      const tol = transformerTolerance(model.config, want);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      if (process.env.MODELS_VERBOSE) console.log(name, worst, tol);
      expect(worst, `worst |logit - ref| vs tol ${tol}`).toBeLessThanOrEqual(tol);
      // The comparison can fail: the logits vary by far more than the tolerance.
      expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(100 * tol);
      // Int32 tensor ids give the same logits.
      const idsT = c.tensor(ids.flat(), [2, 7], 'int32');
      const again = model.forward(params, idsT);
      expect(Array.from(await again.data())).toEqual(Array.from(got));
      c.tree.dispose([params, logits, idsT, again]);
    });
  }

  it('a LinearWeight at any linear weight path (untied lm_head included) stands in for the tensor', async () => {
    for (const json of [GPT2, LLAMA]) {
      const model = await modelFor(backend, clean(json), c.random.key(1));
      const ids = [[1, 5, 0, 7, 3]];
      const plain = await model.forward(model.params, ids).data();
      // Every rank-2 leaf but the embedding tables is a linear weight.
      const linearPaths = c.tree.leafPaths(model.params).filter((p) => !/(wte|wpe|embed_tokens)\.weight$/.test(p) && (c.tree.leaves(model.params)[c.tree.leafPaths(model.params).indexOf(p)] as c.Tensor).rank === 2);
      const called = new Set<string>();
      const fn = (path: string, W: c.Tensor): LinearWeight => ({ shape: W.shape, linear: (x, b) => (called.add(path), c.nn.linear(x, W, b)) });
      const asFunctions = c.tree.mapWithPath((path, w) => (linearPaths.includes(path) ? (fn(path, w as c.Tensor) as never) : w), model.params) as unknown as ForwardParams;
      expect(linearPaths.some((p) => p === 'lm_head.weight')).toBe(json === LLAMA);
      expect(isLinearWeight((asFunctions as { lm_head?: { weight?: unknown } }).lm_head?.weight)).toBe(json === LLAMA);
      const logits = model.forward(asFunctions, ids);
      // The same kernels on the same values: bit for bit.
      expect(Array.from(await logits.data())).toEqual(Array.from(plain));
      expect([...called].sort()).toEqual([...linearPaths].sort());
      // A function of the wrong shape, or one that answers with the wrong shape, is an Error naming the path.
      const first = linearPaths[0];
      const W = c.tree.leaves(model.params)[c.tree.leafPaths(model.params).indexOf(first)] as c.Tensor;
      const swap = (w: LinearWeight): ForwardParams => c.tree.mapWithPath((path, v) => (path === first ? (w as never) : v), model.params) as unknown as ForwardParams;
      expect(() => model.forward(swap({ shape: [W.shape[0], W.shape[1] + 1], linear: () => { throw new Error('not called'); } }), ids)).toThrow(new RegExp(`forward: "${first.replace(/\./g, '\\.')}" is a LinearWeight of shape \\[${W.shape[0]}, ${W.shape[1] + 1}\\]`));
      const wrong = c.zeros([5, W.shape[0]]);
      expect(() => model.forward(swap({ shape: W.shape, linear: () => wrong }), ids)).toThrow(new RegExp(`\\.linear returned \\[5, ${W.shape[0]}\\], expected a Tensor \\[1, 5, ${W.shape[0]}\\]`));
      expect(() => model.forward(swap({ shape: W.shape } as never), ids)).toThrow(/is not a tensor or a LinearWeight/);
      // At an embedding table (read as a tensor, and by a tied head) a LinearWeight gives its weight();
      // without one it is an Error naming the path.
      const table = json === GPT2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
      const E = c.tree.leaves(model.params)[c.tree.leafPaths(model.params).indexOf(table)] as c.Tensor;
      const at = (w: LinearWeight): ForwardParams => c.tree.mapWithPath((path, v) => (path === table ? (w as never) : v), model.params) as unknown as ForwardParams;
      const viaWeight = model.forward(at({ shape: E.shape, linear: () => { throw new Error('not called'); }, weight: () => E }), ids);
      expect(Array.from(await viaWeight.data())).toEqual(Array.from(plain));
      expect(() => model.forward(at({ shape: E.shape, linear: () => E }), ids)).toThrow(new RegExp(`"${table.replace(/\./g, '\\.')}" is a LinearWeight without weight\\(\\), but the forward reads it as a tensor`));
      viaWeight.dispose();
      c.tree.dispose([model.params, logits, wrong]);
    }
  });
});

it('createModel builds the HF key tree with [out, in] weights and transformers initialization', async () => {
  await c.init({ backend: 'cpu' }); // not a backend suite: its statistics need random.normal (webgl refuses it)
  const cfg = { model_type: 'gpt2', vocab_size: 200, n_positions: 64, n_embd: 32, n_layer: 8, n_head: 4, initializer_range: 0.1 };
  const m = createModel(cfg, c.random.key(0));
  const paths = c.tree.leafPaths(m.params);
  expect(paths.slice(0, 6)).toEqual(['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias']);
  expect(paths).not.toContain('lm_head.weight');
  const w = await readWeights(m.params);
  expect(paths.map((p) => [p, (c.tree.leaves(m.params)[paths.indexOf(p)] as c.Tensor).shape]).filter(([p]) => String(p).startsWith('transformer.h.0.'))).toEqual([
    ['transformer.h.0.ln_1.weight', [32]], ['transformer.h.0.ln_1.bias', [32]],
    ['transformer.h.0.attn.c_attn.weight', [96, 32]], ['transformer.h.0.attn.c_attn.bias', [96]],
    ['transformer.h.0.attn.c_proj.weight', [32, 32]], ['transformer.h.0.attn.c_proj.bias', [32]],
    ['transformer.h.0.ln_2.weight', [32]], ['transformer.h.0.ln_2.bias', [32]],
    ['transformer.h.0.mlp.c_fc.weight', [128, 32]], ['transformer.h.0.mlp.c_fc.bias', [128]],
    ['transformer.h.0.mlp.c_proj.weight', [32, 128]], ['transformer.h.0.mlp.c_proj.bias', [32]],
  ]);
  // Sample std of n normals is within 5 sigma of std (relative se ~ 1/sqrt(2n)).
  const std = (d: Float64Array): number => Math.sqrt(d.reduce((a, v) => a + v * v, 0) / d.length);
  const within = (d: Float64Array, s: number): void => expect(Math.abs(std(d) / s - 1)).toBeLessThan(5 / Math.sqrt(2 * d.length));
  within(w.get('transformer.wte.weight')!, 0.1);
  within(w.get('transformer.h.0.mlp.c_fc.weight')!, 0.1);
  within(w.get('transformer.h.0.attn.c_proj.weight')!, 0.1 / 4); // 0.1 / sqrt(2 * 8)
  within(w.get('transformer.h.3.mlp.c_proj.weight')!, 0.1 / 4);
  expect(Array.from(w.get('transformer.h.0.ln_1.weight')!).every((v) => v === 1)).toBe(true);
  expect(Array.from(w.get('transformer.h.0.attn.c_attn.bias')!).every((v) => v === 0)).toBe(true);
  c.tree.dispose(m.params);

  const l = createModel({ ...LLAMA, tie_word_embeddings: false }, c.random.key(0));
  const lp = c.tree.leafPaths(l.params);
  expect(lp).toContain('model.layers.1.self_attn.o_proj.bias');
  expect(lp).toContain('lm_head.weight');
  expect((l.params as never as { model: { layers: { self_attn: { k_proj: { weight: c.Tensor } } }[] } }).model.layers[0].self_attn.k_proj.weight.shape).toEqual([4, 8]);
  c.tree.dispose(l.params);
  expect(() => createModel(parseConfig(GPT2), 3 as never)).toThrow(/createModel: key must be a random.Key/);
});
