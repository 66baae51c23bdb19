/**
 * The parameters of an architecture as a list: each tensor's checkpoint key, its shape in the
 * tree, how `createModel` initializes it, and whether the checkpoint stores it as GPT-2's Conv1D.
 * Building, loading and saving all read this one list.
 * @module
 */
import type { Tensor } from '@sorsajs/core';
import type { ModelConfig } from './config.js';

/** One parameter of an architecture. */
export interface ParamSpec {
  /** Its checkpoint key, which is also its dotted path in the tree: `transformer.h.0.attn.c_attn.weight`. */
  readonly key: string;
  /** Its shape in the tree (linear weights `[out, in]`). */
  readonly shape: readonly number[];
  /** `createModel`'s initialization: normal with the given std, zeros or ones. */
  readonly init: { readonly kind: 'normal'; readonly std: number } | { readonly kind: 'zeros' | 'ones' };
  /** Stored in the checkpoint as GPT-2's Conv1D, `[in, out]`: transposed on load and on save. */
  readonly conv1d: boolean;
}

/** Every parameter of the configured architecture, in the checkpoint's order. */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const out: ParamSpec[] = [];
  const normal = { kind: 'normal', std: c.initializerRange } as const;
  const add = (key: string, shape: number[], init: ParamSpec['init'], conv1d = false): void => {
    out.push({ key, shape, init, conv1d });
  };
  const D = c.hiddenSize;
  if (c.family === 'gpt2') {
    // GPT-2 scales the residual projections' std by 1/sqrt(2 n_layer) (transformers' _init_weights).
    const proj = { kind: 'normal', std: c.initializerRange / Math.sqrt(2 * c.numLayers) } as const;
    add('transformer.wte.weight', [c.vocabSize, D], normal);
    add('transformer.wpe.weight', [c.maxPositions, D], normal);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      add(`${p}.ln_1.weight`, [D], { kind: 'ones' });
      add(`${p}.ln_1.bias`, [D], { kind: 'zeros' });
      add(`${p}.attn.c_attn.weight`, [3 * D, D], normal, true);
      add(`${p}.attn.c_attn.bias`, [3 * D], { kind: 'zeros' });
      add(`${p}.attn.c_proj.weight`, [D, D], proj, true);
      add(`${p}.attn.c_proj.bias`, [D], { kind: 'zeros' });
      add(`${p}.ln_2.weight`, [D], { kind: 'ones' });
      add(`${p}.ln_2.bias`, [D], { kind: 'zeros' });
      add(`${p}.mlp.c_fc.weight`, [c.intermediateSize, D], normal, true);
      add(`${p}.mlp.c_fc.bias`, [c.intermediateSize], { kind: 'zeros' });
      add(`${p}.mlp.c_proj.weight`, [D, c.intermediateSize], proj, true);
      add(`${p}.mlp.c_proj.bias`, [D], { kind: 'zeros' });
    }
    add('transformer.ln_f.weight', [D], { kind: 'ones' });
    add('transformer.ln_f.bias', [D], { kind: 'zeros' });
  } else {
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    add('model.embed_tokens.weight', [c.vocabSize, D], normal);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      add(`${p}.input_layernorm.weight`, [D], { kind: 'ones' });
      for (const [name, rows, cols, bias] of [
        ['q_proj', q, D, c.qkvBias],
        ['k_proj', kv, D, c.qkvBias],
        ['v_proj', kv, D, c.qkvBias],
        ['o_proj', D, q, c.outBias],
      ] as const) {
        add(`${p}.self_attn.${name}.weight`, [rows, cols], normal);
        if (bias) add(`${p}.self_attn.${name}.bias`, [rows], { kind: 'zeros' });
      }
      add(`${p}.post_attention_layernorm.weight`, [D], { kind: 'ones' });
      for (const [name, rows, cols] of [
        ['gate_proj', c.intermediateSize, D],
        ['up_proj', c.intermediateSize, D],
        ['down_proj', D, c.intermediateSize],
      ] as const) {
        add(`${p}.mlp.${name}.weight`, [rows, cols], normal);
        if (c.mlpBias) add(`${p}.mlp.${name}.bias`, [rows], { kind: 'zeros' });
      }
    }
    add('model.norm.weight', [D], { kind: 'ones' });
  }
  if (!c.tieWordEmbeddings) add('lm_head.weight', [c.vocabSize, D], normal);
  return out;
}

/** The key of the token embedding, which a tied head reuses. */
export const embeddingKey = (c: ModelConfig): string => (c.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');

/**
 * A parameter tree: nested plain objects and arrays (blocks `h` / `layers` are arrays) whose leaf
 * paths are the checkpoint keys.
 *
 * @example
 * ```ts
 * const w: Tensor = (params as any).transformer.h[0].attn.c_attn.weight;
 * ```
 */
export interface ParamTree {
  readonly [key: string]: ParamTree | readonly ParamTree[] | Tensor;
}

/**
 * Builds the nested tree from tensors keyed by the spec's keys (trusted: they come from
 * paramSpecs, never from a file). A numeric segment makes an array.
 */
export function buildTree(entries: readonly (readonly [string, Tensor])[]): ParamTree {
  const root: Record<string, unknown> = {};
  for (const [key, t] of entries) {
    const segs = key.split('.');
    let node: Record<string, unknown> | unknown[] = root;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i];
      const last = i === segs.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(segs[i + 1]);
      const slot = Array.isArray(node) ? Number(seg) : seg;
      const holder = node as Record<string | number, unknown>;
      if (last) holder[slot] = t;
      else {
        if (holder[slot] === undefined) holder[slot] = nextIsIndex ? [] : {};
        node = holder[slot] as Record<string, unknown> | unknown[];
      }
    }
  }
  return root as ParamTree;
}

/**
 * The tensor at a dotted path of a tree, read with own-property checks only; an Error naming `op`
 * and the path when it is missing or not a tensor.
 */
export function leafAt(op: string, params: unknown, path: string, isTensor: (x: unknown) => x is Tensor, what = 'a tensor'): Tensor {
  let node: unknown = params;
  for (const seg of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, seg)) throw new Error(`${op}: params has no "${path}"`);
    node = (node as Record<string, unknown>)[seg];
  }
  if (!isTensor(node)) throw new Error(`${op}: params "${path}" is not ${what}`);
  return node;
}
