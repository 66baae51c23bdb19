/**
 * End to end on real architectures: a tiny GPT-2 and a tiny Llama from @sorsajs/models' createModel,
 * SORSA adapters on their attention and MLP weights, a few training steps on a causal LM loss
 * (cross-entropy on shifted ids, part of the labels masked with -100), then the two ways out:
 * merged weights saved with savePretrained and loaded back (logits against a float64 reference
 * forward of the merged weights), and a PEFT adapter directory whose keys, shapes and values are
 * those PEFT reads for that architecture.
 */
import { expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained, savePretrained, type Model, type ParamTree } from '@sorsajs/models';
import { adaptParams, makeTrainStep, mergeParams, savePeftAdapter, type Trainable } from '@sorsajs/sorsa';
import { forEachBackend } from '@sorsajs/testing/backends';
import { randomWeights, readWeights, transformerReference, transformerTolerance } from '@sorsajs/testing';
import { EPS32, mm } from './ref.js';

/**
 * `createModel` on the suite's backend, except on webgl, which refuses `random.normal`: there it is
 * made on cpu (its weights are replaced by `randomWeights` on webgl anyway, and disposed).
 */
async function modelFor(backend: string, json: Record<string, unknown>, key: c.random.Key): Promise<Model> {
  if (backend !== 'webgl') return createModel(json, key);
  await c.init({ backend: 'cpu' });
  try {
    return createModel(json, key);
  } finally {
    await c.init({ backend: 'webgl' });
  }
}

const FAMILIES = [
  {
    name: 'gpt2',
    config: { model_type: 'gpt2', vocab_size: 31, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2, n_inner: 24 },
    targets: /^transformer\.h\.\d+\.(attn\.(c_attn|c_proj)|mlp\.(c_fc|c_proj))\.weight$/,
    // PEFT's module names: base_model (LoraModel) . model (GPT2LMHeadModel) . <module path>.
    modules: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].flatMap((m) => [0, 1].map((l) => `transformer.h.${l}.${m}`)),
    fanInFanOut: true,
  },
  {
    name: 'llama',
    config: {
      model_type: 'llama', vocab_size: 29, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 2, max_position_embeddings: 16, rope_theta: 10000, tie_word_embeddings: false,
    },
    targets: /^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/,
    modules: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'].flatMap((m) =>
      [0, 1].map((l) => `model.layers.${l}.${m}`),
    ),
    fanInFanOut: false,
  },
] as const;

/** Token rows [B, T + 1]: inputs are [:, :T], labels [:, 1:], some labels masked with -100. */
const ROWS = [
  [1, 2, 3, 4, 5, 6, 7, 8, 9],
  [3, 1, 4, 1, 5, 9, 2, 6, 5],
];
const T = ROWS[0].length - 1;
const INPUTS = ROWS.map((r) => r.slice(0, T));
/** Row 0's first three labels and row 1's last are ignored (a prompt and a padding position). */
const LABELS = ROWS.map((r, b) => r.slice(1).map((id, t) => ((b === 0 && t < 3) || (b === 1 && t === T - 1) ? -100 : id)));

/** The masked mean cross-entropy in float64 from reference logits [B, T, V]. */
function refLoss(logits: Float64Array, V: number, labels: number[][]): number {
  let sum = 0;
  let n = 0;
  labels.forEach((row, b) =>
    row.forEach((y, t) => {
      if (y === -100) return;
      const o = (b * T + t) * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, logits[o + v]);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - m);
      sum += m + Math.log(s) - logits[o + y];
      n++;
    }),
  );
  return sum / n;
}

/** The header and F32 tensors of a safetensors file, read by the format's definition. */
function readSafetensors(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, e] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    expect(e.dtype).toBe('F32');
    const data = new Float32Array((e.data_offsets[1] - e.data_offsets[0]) / 4);
    for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(8 + len + e.data_offsets[0] + 4 * i);
    out.set(k, { shape: e.shape, data });
  }
  return out;
}

const worstDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
};

forEachBackend('SORSA on GPT-2 and Llama, end to end', (backend) => {
  for (const fam of FAMILIES) {
    it(`${fam.name}: SORSA steps lower the masked causal LM loss; merged weights save, load and give the reference logits; the PEFT adapter has PEFT's keys`, async () => {
      const made: Model = await modelFor(backend, { ...fam.config }, c.random.key(3));
      // Weights in [-0.3, 0.3] (norm weights near 1) rather than std 0.02, so the loss has something to learn.
      const base = randomWeights(made.params, 11, 0.3) as ParamTree;
      c.tree.dispose(made.params);
      const model = made;
      const V = model.config.vocabSize;
      const rank = 4;
      const { trainable: initial, frozen } = await adaptParams(base, { method: 'sorsa', rank, targets: (p) => fam.targets.test(p) });
      expect(Object.keys(initial).sort()).toEqual(fam.modules.map((m) => `${m}.weight`).sort());

      const inputs = c.tensor(INPUTS.flat(), [2, T], 'int32');
      const labels = c.tensor(LABELS.flat(), [2, T], 'int32');
      const lossOf = (p: ParamTree): c.Tensor => c.nn.crossEntropy(model.forward(p, inputs), labels, { ignoreIndex: -100 });

      // At initialization (merged = base up to rounding): the logits against the float64 reference
      // forward, then the masked loss against float64 cross-entropy of those same logits.
      const ref0 = transformerReference(model.config, await readWeights(base), INPUTS);
      const tol0 = transformerTolerance(model.config, ref0);
      const logits0 = c.tidy(() => model.forward(mergeParams(initial, frozen) as ParamTree, inputs));
      const got0 = Float64Array.from(await logits0.data());
      expect(worstDiff(got0, ref0)).toBeLessThanOrEqual(tol0);
      const first = c.tidy(() => lossOf(mergeParams(initial, frozen)));
      const firstV = (await first.data())[0];
      // float32 logsumexp and mean: a few ulps of the largest |logit| + log V per term.
      const lossTol = 64 * EPS32 * (got0.reduce((a, v) => Math.max(a, Math.abs(v)), 0) + Math.log(V) + 1);
      expect(Math.abs(firstV - refLoss(got0, V, LABELS))).toBeLessThanOrEqual(lossTol);
      // The mask matters: the loss over every label differs by far more than that.
      expect(Math.abs(firstV - refLoss(got0, V, ROWS.map((r) => r.slice(1))))).toBeGreaterThan(100 * lossTol);

      const peakLr = 1e-2;
      const { init, step } = makeTrainStep({
        loss: (t: Trainable, f: typeof frozen, _batch: null) => lossOf(mergeParams(t, f) as ParamTree),
        optimizer: c.optim.adamw({ lr: peakLr, weightDecay: 0 }),
        gamma: 4e-4,
        peakLr,
      });
      let trainable: Trainable = initial;
      let state = init(trainable);
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const out = step(trainable, state, frozen, null);
        losses.push((await out.metrics.loss.data())[0]);
        // The initial adapters are kept: the PEFT save converts against them.
        c.tree.dispose([trainable === initial ? [] : trainable, state, out.metrics]);
        ({ trainable, optState: state } = out);
      }
      const last = c.tidy(() => lossOf(mergeParams(trainable, frozen)));
      const lastV = (await last.data())[0];
      if (process.env.MODELS_VERBOSE) console.log(fam.name, backend, firstV, losses, lastV);
      expect(losses[0]).toBeCloseTo(firstV, 5);
      expect(lastV).toBeLessThan(0.9 * firstV);

      // Merged weights: savePretrained, loadPretrained, logits equal the float64 reference of the merged weights.
      const dir = mkdtempSync(join(tmpdir(), `sorsajs-e2e-${fam.name}-`));
      try {
        const merged = mergeParams(trainable, frozen) as ParamTree;
        await savePretrained(model, merged, join(dir, 'merged'));
        const back = await loadPretrained(join(dir, 'merged'));
        const logits = back.forward(back.params, INPUTS);
        const mergedW = await readWeights(merged);
        const want = transformerReference(model.config, mergedW, INPUTS);
        const tol = transformerTolerance(model.config, want);
        expect(worstDiff(await logits.data(), want)).toBeLessThanOrEqual(tol);
        // Trained: the merged model's logits are not the base model's.
        expect(worstDiff(want, ref0)).toBeGreaterThan(100 * tol);
        // The same file loaded twice, or the merged tree in memory: the same float32 logits.
        const direct = model.forward(merged, INPUTS);
        expect(worstDiff(await logits.data(), await direct.data())).toBeLessThanOrEqual(tol);

        // PEFT: SORSA is saved through toLoRA as rank-2r LoRA on the untouched base weight.
        const peftDir = join(dir, 'adapter');
        await savePeftAdapter(peftDir, trainable, { initial, fanInFanOut: fam.fanInFanOut, baseModel: fam.name });
        const cfg = JSON.parse(readFileSync(join(peftDir, 'adapter_config.json'), 'utf8'));
        expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2 * rank, lora_alpha: 2 * rank, fan_in_fan_out: fam.fanInFanOut });
        expect([...cfg.target_modules].sort()).toEqual([...fam.modules].sort());
        const st = readSafetensors(join(peftDir, 'adapter_model.safetensors'));
        expect([...st.keys()].sort()).toEqual(fam.modules.flatMap((m) => [`base_model.model.${m}.lora_A.weight`, `base_model.model.${m}.lora_B.weight`]).sort());
        // Each module: lora_A [2r, in], lora_B [out, 2r], and W0 + B A (lora_alpha / r = 1) is the merged weight.
        const baseW = await readWeights(base);
        const shapes = new Map(c.tree.leafPaths(base).map((p, i) => [p, (c.tree.leaves(base) as c.Tensor[])[i].shape]));
        for (const m of fam.modules) {
          const [out, inp] = shapes.get(`${m}.weight`)!;
          const A = st.get(`base_model.model.${m}.lora_A.weight`)!;
          const B = st.get(`base_model.model.${m}.lora_B.weight`)!;
          expect([A.shape, B.shape], m).toEqual([[2 * rank, inp], [out, 2 * rank]]);
          const BA = mm(B.data, A.data, out, 2 * rank, inp);
          const W0 = baseW.get(`${m}.weight`)!;
          const W = mergedW.get(`${m}.weight`)!;
          // float32 rounding of the residual W0 - U0 S0 V0ᵀ, of the rank-r products and of their sums.
          let bound = 0;
          for (let i = 0; i < W0.length; i++) bound = Math.max(bound, Math.abs(W0[i]) + Math.abs(BA[i]) + Math.abs(W[i]));
          for (let i = 0; i < W0.length; i++) expect(Math.abs(W0[i] + BA[i] - W[i]), `${m}[${i}]`).toBeLessThanOrEqual(16 * (2 * rank + 2) * EPS32 * bound);
        }
        c.tree.dispose([merged, back.params, logits, direct]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        c.tree.dispose([base, initial, frozen, trainable, state, inputs, labels, logits0, first, last]);
      }
    });
  }
});
