/**
 * `--targets`: which weights of a model get adapters. Patterns are module names or suffixes of
 * them on dot boundaries, as PEFT's `target_modules` (`attn.c_attn` matches
 * `transformer.h.3.attn.c_attn`), where `*` stands for any part of one name (`mlp.*`).
 * @module
 */
import { Tensor, tree } from '@sorsajs/core';
import type { ModelConfig } from '@sorsajs/models';
import { UsageError } from './errors.js';

/**
 * The default targets of each family: every linear layer of the blocks, as the paper adapts
 * (attention and MLP projections), never the embeddings or the output head.
 */
export const DEFAULT_TARGETS: Readonly<Record<ModelConfig['family'], readonly string[]>> = {
  gpt2: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};

/** Modules that are never adapted by a pattern: embeddings and the output head. */
const EXCLUDED = /(^|\.)(wte|wpe|embed_tokens|lm_head)$/;

/** A pattern as a regular expression over module paths (suffix match on dot boundaries). */
function patternRegex(pattern: string): RegExp {
  if (!/^[A-Za-z0-9_.*-]+$/.test(pattern) || pattern.startsWith('.') || pattern.endsWith('.') || pattern.includes('..')) {
    throw new UsageError(`--targets: "${pattern}" is not a module name pattern (names of letters, digits, _ and -, separated by dots, * for any part of a name)`);
  }
  const body = pattern
    .split('.')
    .map((seg) => seg.split('*').map((s) => s.replace(/[-]/g, '\\-')).join('[^.]*'))
    .join('\\.');
  return new RegExp(`(^|\\.)${body}$`);
}

/**
 * The weight paths (`<module>.weight`, 2-D) of `params` that `patterns` select, in the tree's order.
 * A pattern that matches no adaptable module is a UsageError naming it and some module names.
 *
 * @example
 * ```ts
 * selectTargets(model.params, ['attn.c_attn']); // ['transformer.h.0.attn.c_attn.weight', ...]
 * ```
 */
export function selectTargets(params: unknown, patterns: readonly string[]): string[] {
  const paths = tree.leafPaths(params);
  const leaves = tree.leaves(params);
  const modules: string[] = [];
  paths.forEach((p, i) => {
    const leaf = leaves[i];
    if (!p.endsWith('.weight') || !(leaf instanceof Tensor) || leaf.rank !== 2) return;
    const m = p.slice(0, -'.weight'.length);
    if (!EXCLUDED.test(m)) modules.push(m);
  });
  const chosen = new Set<string>();
  for (const pattern of patterns) {
    const re = patternRegex(pattern);
    const hits = modules.filter((m) => re.test(m));
    if (hits.length === 0) {
      const names = [...new Set(modules.map((m) => m.replace(/^.*?\.\d+\./, '')))];
      throw new UsageError(`--targets: "${pattern}" matches no linear module of the model (its modules: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''})`);
    }
    for (const h of hits) chosen.add(h);
  }
  return modules.filter((m) => chosen.has(m)).map((m) => `${m}.weight`);
}

/**
 * Every float32 weight of `params`, in the tree's order: what full fine-tuning trains when no
 * `--targets` are given (embeddings, norms and biases included, as a full fine-tune in PyTorch).
 *
 * @example
 * ```ts
 * allWeights(model.params).length; // every leaf of a GPT-2 checkpoint
 * ```
 */
export function allWeights(params: unknown): string[] {
  const leaves = tree.leaves(params);
  return tree.leafPaths(params).filter((_, i) => leaves[i] instanceof Tensor && (leaves[i] as Tensor).dtype === 'float32');
}

/**
 * The paths among `paths` that are linear layers' weights (2-D `<module>.weight`, not an embedding
 * or the output head): those whose singular values the paper's ΔΣ and ΔD describe.
 *
 * @example
 * ```ts
 * linearWeights(model.params, ['transformer.wte.weight', 'transformer.h.0.attn.c_attn.weight']); // the second
 * ```
 */
export function linearWeights(params: unknown, paths: readonly string[]): string[] {
  const leaves = tree.leaves(params);
  const byPath = new Map(tree.leafPaths(params).map((p, i) => [p, leaves[i]]));
  return paths.filter((p) => {
    const leaf = byPath.get(p);
    return p.endsWith('.weight') && leaf instanceof Tensor && leaf.rank === 2 && !EXCLUDED.test(p.slice(0, -'.weight'.length));
  });
}

/**
 * The tensors at `paths` of a params tree, keyed by path (handles, not copies: for reading). A path
 * that is not a tensor of the tree throws, naming it.
 *
 * @example
 * ```ts
 * const w = weightsAt(model.params, ['transformer.h.0.attn.c_attn.weight']);
 * ```
 */
export function weightsAt(params: unknown, paths: readonly string[]): Record<string, Tensor> {
  const leaves = tree.leaves(params);
  const byPath = new Map(tree.leafPaths(params).map((p, i) => [p, leaves[i]]));
  const out = Object.create(null) as Record<string, Tensor>;
  for (const p of paths) {
    const leaf = byPath.get(p);
    if (!(leaf instanceof Tensor)) throw new Error(`weightsAt: no weight "${p}" in the model`);
    out[p] = leaf;
  }
  return out;
}
