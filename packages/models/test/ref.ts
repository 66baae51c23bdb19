/**
 * An independent float64 reference forward pass for both families, written with plain loops from
 * the architectures' definitions (transformers' modeling_gpt2.py and modeling_llama.py), plus small
 * helpers shared by the tests. It reads weights by checkpoint key from a Map, linear weights
 * `[out, in]`.
 */
import * as c from '@sorsajs/core';
import { EPS32, randomData } from '../../core/test/reference.js';

export { EPS32, randomData };

/** Weights by checkpoint key, in float64. */
export type Weights = Map<string, Float64Array>;

export interface RefConfig {
  family: 'gpt2' | 'llama';
  vocab: number;
  D: number;
  L: number;
  H: number;
  KV: number;
  hd: number;
  I: number;
  eps: number;
  theta: number;
  qkvBias: boolean;
  outBias: boolean;
  tied: boolean;
}

/** y [N, out] = x [N, in] W^T + b, and the sums of |terms| when `mag` is given. */
function linear(x: Float64Array, N: number, W: Float64Array, out: number, inp: number, b?: Float64Array): Float64Array {
  const y = new Float64Array(N * out);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inp; i++) s += x[n * inp + i] * W[o * inp + i];
      y[n * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, N: number, D: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let i = 0; i < D; i++) m += x[n * D + i];
    m /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[n * D + i] - m) ** 2;
    v /= D;
    for (let i = 0; i < D; i++) y[n * D + i] = ((x[n * D + i] - m) / Math.sqrt(v + eps)) * w[i] + b[i];
  }
  return y;
}

function rmsNorm(x: Float64Array, N: number, D: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += x[n * D + i] ** 2;
    const r = 1 / Math.sqrt(s / D + eps);
    for (let i = 0; i < D; i++) y[n * D + i] = x[n * D + i] * r * w[i];
  }
  return y;
}

const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const silu = (v: number): number => v / (1 + Math.exp(-v));

/**
 * Causal attention for one sequence: q [T, H*hd], k and v [T, KV*hd]; query head h reads kv head
 * floor(h / (H / KV)). Returns [T, H*hd].
 */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, KV: number, hd: number): Float64Array {
  const out = new Float64Array(T * H * hd);
  const rep = H / KV;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / rep);
    for (let i = 0; i < T; i++) {
      const s = new Float64Array(i + 1);
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < hd; e++) d += q[i * H * hd + h * hd + e] * k[j * KV * hd + g * hd + e];
        s[j] = d / Math.sqrt(hd);
        mx = Math.max(mx, s[j]);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += s[j] = Math.exp(s[j] - mx);
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += (s[j] / z) * v[j * KV * hd + g * hd + e];
        out[i * H * hd + h * hd + e] = acc;
      }
    }
  }
  return out;
}

/** Rotary embedding in HF's rotate_half convention, in place on x [T, heads*hd]. */
function rope(x: Float64Array, T: number, heads: number, hd: number, theta: number): void {
  const half = hd / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const o = t * heads * hd + h * hd;
      for (let j = 0; j < half; j++) {
        const ang = t / theta ** ((2 * j) / hd);
        const [x1, x2] = [x[o + j], x[o + j + half]];
        x[o + j] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
        x[o + j + half] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
      }
    }
  }
}

/** Logits [B, T, vocab] of the reference model for ids [B][T], flattened. */
export function refForward(cfg: RefConfig, W: Weights, ids: number[][]): Float64Array {
  const get = (k: string): Float64Array => {
    const w = W.get(k);
    if (!w) throw new Error(`ref: no weight ${k}`);
    return w;
  };
  const { D, I, H, KV, hd, vocab } = cfg;
  const T = ids[0].length;
  const out = new Float64Array(ids.length * T * vocab);
  ids.forEach((row, b) => {
    let x: Float64Array = new Float64Array(T * D);
    const emb = get(cfg.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');
    for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) x[t * D + i] = emb[row[t] * D + i] + (cfg.family === 'gpt2' ? get('transformer.wpe.weight')[t * D + i] : 0);
    const addInto = (y: Float64Array): void => {
      for (let i = 0; i < x.length; i++) x[i] += y[i];
    };
    for (let l = 0; l < cfg.L; l++) {
      if (cfg.family === 'gpt2') {
        const p = `transformer.h.${l}`;
        const h = layerNorm(x, T, D, get(`${p}.ln_1.weight`), get(`${p}.ln_1.bias`), cfg.eps);
        const qkv = linear(h, T, get(`${p}.attn.c_attn.weight`), 3 * D, D, get(`${p}.attn.c_attn.bias`));
        const part = (j: number): Float64Array => {
          const r = new Float64Array(T * D);
          for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) r[t * D + i] = qkv[t * 3 * D + j * D + i];
          return r;
        };
        const a = attention(part(0), part(1), part(2), T, H, H, hd);
        addInto(linear(a, T, get(`${p}.attn.c_proj.weight`), D, D, get(`${p}.attn.c_proj.bias`)));
        const h2 = layerNorm(x, T, D, get(`${p}.ln_2.weight`), get(`${p}.ln_2.bias`), cfg.eps);
        const f = linear(h2, T, get(`${p}.mlp.c_fc.weight`), I, D, get(`${p}.mlp.c_fc.bias`)).map(gelu);
        addInto(linear(f, T, get(`${p}.mlp.c_proj.weight`), D, I, get(`${p}.mlp.c_proj.bias`)));
      } else {
        const p = `model.layers.${l}`;
        const h = rmsNorm(x, T, D, get(`${p}.input_layernorm.weight`), cfg.eps);
        const bias = (name: string, on: boolean): Float64Array | undefined => (on ? get(`${p}.self_attn.${name}.bias`) : undefined);
        const q = linear(h, T, get(`${p}.self_attn.q_proj.weight`), H * hd, D, bias('q_proj', cfg.qkvBias));
        const k = linear(h, T, get(`${p}.self_attn.k_proj.weight`), KV * hd, D, bias('k_proj', cfg.qkvBias));
        const v = linear(h, T, get(`${p}.self_attn.v_proj.weight`), KV * hd, D, bias('v_proj', cfg.qkvBias));
        rope(q, T, H, hd, cfg.theta);
        rope(k, T, KV, hd, cfg.theta);
        const a = attention(q, k, v, T, H, KV, hd);
        addInto(linear(a, T, get(`${p}.self_attn.o_proj.weight`), D, H * hd, bias('o_proj', cfg.outBias)));
        const h2 = rmsNorm(x, T, D, get(`${p}.post_attention_layernorm.weight`), cfg.eps);
        const g = linear(h2, T, get(`${p}.mlp.gate_proj.weight`), I, D).map(silu);
        const u = linear(h2, T, get(`${p}.mlp.up_proj.weight`), I, D);
        addInto(linear(g.map((gv, i) => gv * u[i]), T, get(`${p}.mlp.down_proj.weight`), D, I));
      }
    }
    x = cfg.family === 'gpt2' ? layerNorm(x, T, D, get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), cfg.eps) : rmsNorm(x, T, D, get('model.norm.weight'), cfg.eps);
    const head = cfg.tied ? get(cfg.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight') : get('lm_head.weight');
    out.set(linear(x, T, head, vocab, D), b * T * vocab);
  });
  return out;
}

/** Every leaf of a params tree, by dotted path, read back as float64. */
export async function readWeights(params: unknown): Promise<Weights> {
  const paths = c.tree.leafPaths(params);
  const leaves = c.tree.leaves(params);
  const m: Weights = new Map();
  for (let i = 0; i < paths.length; i++) m.set(paths[i], Float64Array.from(await (leaves[i] as c.Tensor).data()));
  return m;
}

/** Replaces every leaf with seeded uniform values in [-a, a] (norm weights around 1), so tests exercise large activations. */
export function randomize<P>(params: P, seed: number, a = 0.5): P {
  let i = 0;
  return c.tree.mapWithPath((path, leaf) => {
    const t = leaf as c.Tensor;
    const d = randomData(t.size, seed * 1000 + i++, -a, a);
    if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(path)) for (let j = 0; j < d.length; j++) d[j] += 1;
    return c.tensor(d, t.shape);
  }, params) as P;
}
