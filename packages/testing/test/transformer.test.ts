/**
 * transformerReference on cases whose answer is known without it: GPT-2 blocks with zero weights
 * pass the embedding through (logits = LayerNorm(wte + wpe) · wteᵀ, computed here); causality;
 * grouped KV heads equal full heads with their K/V projections repeated; a tied head equals an
 * untied copy of the embedding. Also its refusals, transformerTolerance's formula, and
 * readWeights/randomWeights on a small tree.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { EPS32, randomData, randomWeights, readWeights, transformerReference, transformerTolerance, type TransformerConfig } from '@sorsajs/testing';

beforeAll(async () => {
  await c.init({ backend: 'cpu' });
});

const GPT2: TransformerConfig = {
  family: 'gpt2', vocabSize: 7, hiddenSize: 4, numLayers: 2, numHeads: 2, numKvHeads: 2, headDim: 2, intermediateSize: 6, maxPositions: 8,
  normEps: 1e-5, ropeTheta: 0, qkvBias: true, outBias: true, tieWordEmbeddings: true,
};
const LLAMA: TransformerConfig = {
  family: 'llama', vocabSize: 9, hiddenSize: 8, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 2, intermediateSize: 10, maxPositions: 16,
  normEps: 1e-5, ropeTheta: 10, qkvBias: true, outBias: false, tieWordEmbeddings: false,
};

/** Every weight of the config's checkpoint with its length, filled by `fill(key, length)`. */
function weightsOf(cfg: TransformerConfig, fill: (key: string, n: number) => ArrayLike<number>): Map<string, Float64Array> {
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: hd, vocabSize: V } = cfg;
  const sizes: [string, number][] = [];
  if (cfg.family === 'gpt2') {
    sizes.push(['transformer.wte.weight', V * D], ['transformer.wpe.weight', cfg.maxPositions * D], ['transformer.ln_f.weight', D], ['transformer.ln_f.bias', D]);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `transformer.h.${l}`;
      sizes.push([`${p}.ln_1.weight`, D], [`${p}.ln_1.bias`, D], [`${p}.attn.c_attn.weight`, 3 * D * D], [`${p}.attn.c_attn.bias`, 3 * D], [`${p}.attn.c_proj.weight`, D * D], [`${p}.attn.c_proj.bias`, D]);
      sizes.push([`${p}.ln_2.weight`, D], [`${p}.ln_2.bias`, D], [`${p}.mlp.c_fc.weight`, I * D], [`${p}.mlp.c_fc.bias`, I], [`${p}.mlp.c_proj.weight`, D * I], [`${p}.mlp.c_proj.bias`, D]);
    }
  } else {
    sizes.push(['model.embed_tokens.weight', V * D], ['model.norm.weight', D]);
    if (!cfg.tieWordEmbeddings) sizes.push(['lm_head.weight', V * D]);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}`;
      sizes.push([`${p}.input_layernorm.weight`, D], [`${p}.post_attention_layernorm.weight`, D]);
      sizes.push([`${p}.self_attn.q_proj.weight`, H * hd * D], [`${p}.self_attn.k_proj.weight`, KV * hd * D], [`${p}.self_attn.v_proj.weight`, KV * hd * D], [`${p}.self_attn.o_proj.weight`, D * H * hd]);
      if (cfg.qkvBias) sizes.push([`${p}.self_attn.q_proj.bias`, H * hd], [`${p}.self_attn.k_proj.bias`, KV * hd], [`${p}.self_attn.v_proj.bias`, KV * hd]);
      if (cfg.outBias) sizes.push([`${p}.self_attn.o_proj.bias`, D]);
      sizes.push([`${p}.mlp.gate_proj.weight`, I * D], [`${p}.mlp.up_proj.weight`, I * D], [`${p}.mlp.down_proj.weight`, D * I]);
    }
  }
  return new Map(sizes.map(([k, n]) => [k, Float64Array.from(fill(k, n))]));
}

let seed = 0;
const random = (key: string, n: number): Float32Array => {
  const d = randomData(n, ++seed, -0.5, 0.5);
  if (/norm\.weight$|ln_\w+\.weight$/.test(key)) for (let i = 0; i < n; i++) d[i] += 1;
  return d;
};

const IDS = [
  [1, 5, 0, 6, 3],
  [4, 4, 2, 0, 1],
];

describe('transformerReference', () => {
  it('GPT-2 with zero block weights: logits are LayerNorm(wte + wpe) · wteᵀ', () => {
    const W = weightsOf(GPT2, (k, n) => (/^transformer\.h\./.test(k) ? new Float64Array(n) : random(k, n)));
    const got = transformerReference(GPT2, W, IDS);
    const { hiddenSize: D, vocabSize: V } = GPT2;
    const [wte, wpe, g, b] = ['wte', 'wpe', 'ln_f.weight', 'ln_f.bias'].map((k) => W.get(k.includes('.') ? `transformer.${k}` : `transformer.${k}.weight`)!);
    IDS.forEach((row, r) =>
      row.forEach((id, t) => {
        const x = Array.from({ length: D }, (_, i) => wte[id * D + i] + wpe[t * D + i]);
        const mean = x.reduce((s, v) => s + v, 0) / D;
        const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
        const y = x.map((v, i) => ((v - mean) / Math.sqrt(variance + GPT2.normEps)) * g[i] + b[i]);
        for (let o = 0; o < V; o++) {
          const want = y.reduce((s, v, i) => s + v * wte[o * D + i], 0);
          expect(Math.abs(got[(r * row.length + t) * V + o] - want)).toBeLessThan(1e-12);
        }
      }),
    );
  });

  for (const cfg of [GPT2, LLAMA]) {
    it(`${cfg.family}: causal (a position's logits ignore later ids and depend on earlier ones)`, () => {
      const W = weightsOf(cfg, random);
      const V = cfg.vocabSize;
      const a = transformerReference(cfg, W, [IDS[0]]);
      const later = transformerReference(cfg, W, [[...IDS[0].slice(0, 4), 2]]);
      const earlier = transformerReference(cfg, W, [[2, ...IDS[0].slice(1)]]);
      expect(Array.from(later.subarray(0, 4 * V))).toEqual(Array.from(a.subarray(0, 4 * V)));
      expect(Math.max(...Array.from(later.subarray(4 * V), (v, i) => Math.abs(v - a[4 * V + i])))).toBeGreaterThan(1e-3);
      expect(Math.max(...Array.from(earlier.subarray(4 * V), (v, i) => Math.abs(v - a[4 * V + i])))).toBeGreaterThan(1e-3);
      // Rows are independent: a batch is its rows' logits side by side.
      const both = transformerReference(cfg, W, IDS);
      expect(Array.from(both.subarray(0, 5 * V))).toEqual(Array.from(a));
    });
  }

  it('llama: grouped KV heads equal full heads whose K and V projections repeat each group', () => {
    const W = weightsOf(LLAMA, random);
    const full: TransformerConfig = { ...LLAMA, numKvHeads: LLAMA.numHeads };
    const { hiddenSize: D, headDim: hd, numHeads: H, numKvHeads: KV } = LLAMA;
    const Wf = new Map(W);
    for (let l = 0; l < LLAMA.numLayers; l++) {
      for (const m of ['k_proj', 'v_proj']) {
        const w = W.get(`model.layers.${l}.self_attn.${m}.weight`)!;
        const bias = W.get(`model.layers.${l}.self_attn.${m}.bias`)!;
        const wf = new Float64Array(H * hd * D);
        const bf = new Float64Array(H * hd);
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / KV));
          wf.set(w.subarray(g * hd * D, (g + 1) * hd * D), h * hd * D);
          bf.set(bias.subarray(g * hd, (g + 1) * hd), h * hd);
        }
        Wf.set(`model.layers.${l}.self_attn.${m}.weight`, wf);
        Wf.set(`model.layers.${l}.self_attn.${m}.bias`, bf);
      }
    }
    const a = transformerReference(LLAMA, W, IDS);
    const b = transformerReference(full, Wf, IDS);
    a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-12));
  });

  it('llama: a tied head is the untied head holding a copy of the embedding', () => {
    const W = weightsOf(LLAMA, random);
    W.set('lm_head.weight', Float64Array.from(W.get('model.embed_tokens.weight')!));
    const untied = transformerReference(LLAMA, W, IDS);
    W.delete('lm_head.weight');
    expect(Array.from(transformerReference({ ...LLAMA, tieWordEmbeddings: true }, W, IDS))).toEqual(Array.from(untied));
  });

  it('refuses what it does not model, and names a missing weight', () => {
    const W = weightsOf(LLAMA, random);
    expect(() => transformerReference({ ...LLAMA, mlpBias: true }, W, IDS)).toThrow('transformerReference: MLP biases (mlp_bias) are not modelled');
    expect(() => transformerReference({ ...LLAMA, slidingWindow: 4 }, W, IDS)).toThrow(/5 positions exceed the sliding window 4/);
    expect(() => transformerReference(LLAMA, W, [[1, 2], [3]])).toThrow(/same length/);
    W.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => transformerReference(LLAMA, W, IDS)).toThrow('transformerReference: no weight model.layers.1.mlp.up_proj.weight');
  });
});

it('transformerTolerance: 4 · EPS32 · max(D, I, maxPositions) · 6 · (L + 1) · (max |ref| + 1)', () => {
  expect(transformerTolerance(GPT2, [0.5, -3, 2])).toBe(4 * EPS32 * 8 * 6 * 3 * 4);
  expect(transformerTolerance({ ...LLAMA, maxPositions: 4 }, [])).toBe(4 * EPS32 * 10 * 6 * 3);
});

it('randomWeights draws seeded values in [-a, a] (norm weights around 1) on the tree; readWeights reads it back in float64 by path', async () => {
  const params = { transformer: { ln_f: { weight: c.zeros([3]) }, h: [{ mlp: { c_fc: { weight: c.zeros([2, 3]) } } }] }, model: { norm: { weight: c.zeros([2]) } } };
  const r = randomWeights(params, 4, 0.25);
  const again = randomWeights(params, 4, 0.25);
  const w = await readWeights(r);
  expect([...w.keys()]).toEqual(c.tree.leafPaths(r));
  expect((c.tree.leaves(r) as c.Tensor[]).map((t) => t.shape)).toEqual([[3], [2, 3], [2]]);
  expect(Array.from(w.get('transformer.h.0.mlp.c_fc.weight')!)).toEqual(Array.from(randomData(6, 4001, -0.25, 0.25)));
  for (const [k, v] of w) {
    const centre = /norm|ln_f/.test(k) ? 1 : 0;
    for (const x of v) expect(Math.abs(x - centre)).toBeLessThanOrEqual(0.25);
  }
  expect(await readWeights(again)).toEqual(w);
  expect(w.get('model.norm.weight')).toBeInstanceOf(Float64Array);
  c.tree.dispose([params, r, again]);
});
