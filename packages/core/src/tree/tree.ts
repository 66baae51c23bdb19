/**
 * Parameter trees (JAX pytrees): plain objects and arrays are nodes; tensors, numbers, null and
 * undefined are leaves. Paths are dotted: `blocks.0.attn.wq`.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';

/** A leaf of a tree. */
export type Leaf = Tensor | number | null | undefined;

/** A tree: a leaf, or arrays and plain objects of trees. */
export type Tree = Leaf | readonly Tree[] | { readonly [key: string]: Tree };

/** A tree of the same shape as `T` with every tensor leaf replaced by `L`. */
export type MapTree<T, L> = T extends Tensor
  ? L
  : T extends number | null | undefined
    ? T
    : T extends readonly unknown[]
      ? { [K in keyof T]: MapTree<T[K], L> }
      : T extends object
        ? { [K in keyof T]: MapTree<T[K], L> }
        : T;

/** The structure of a tree without its leaves: what `unflatten` needs to rebuild it. */
export type TreeDef = TreeLeafDef | TreeArrayDef | TreeObjectDef;

/** A leaf position in a TreeDef. */
export interface TreeLeafDef {
  /** Discriminant. */
  kind: 'leaf';
}

/** An array node in a TreeDef. */
export interface TreeArrayDef {
  /** Discriminant. */
  kind: 'array';
  /** One structure per element. */
  children: TreeDef[];
}

/** A plain-object node in a TreeDef. */
export interface TreeObjectDef {
  /** Discriminant. */
  kind: 'object';
  /** Keys in insertion order. */
  keys: string[];
  /** One structure per key. */
  children: TreeDef[];
}

function isNode(x: unknown): x is readonly unknown[] | Record<string, unknown> {
  if (Array.isArray(x)) return true;
  if (x === null || typeof x !== 'object' || x instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function checkLeaf(x: unknown, path: string): void {
  if (x === null || x === undefined || typeof x === 'number' || x instanceof Tensor) return;
  throw new Error(`tree: the value at "${path || '<root>'}" is a ${typeof x === 'object' ? (x as object).constructor?.name ?? 'object' : typeof x}, not a tensor, number, null, array or plain object`);
}

const join = (path: string, key: string | number): string => (path ? `${path}.${key}` : String(key));

/**
 * The leaves in order (depth first; object keys in insertion order) and the structure to rebuild them.
 *
 * @example
 * ```ts
 * const [leaves, def] = flatten({ w: ones([2]), b: [zeros([1]), 3] });
 * leaves.length; // 3
 * ```
 */
export function flatten(t: unknown): [Leaf[], TreeDef] {
  const leaves: Leaf[] = [];
  const walk = (x: unknown, path: string): TreeDef => {
    if (Array.isArray(x)) return { kind: 'array', children: x.map((v, i) => walk(v, join(path, i))) };
    if (isNode(x)) {
      const keys = Object.keys(x);
      return { kind: 'object', keys, children: keys.map((k) => walk((x as Record<string, unknown>)[k], join(path, k))) };
    }
    checkLeaf(x, path);
    leaves.push(x as Leaf);
    return { kind: 'leaf' };
  };
  return [leaves, walk(t, '')];
}

/**
 * Rebuilds a tree of structure `def` from leaves in `flatten`'s order.
 *
 * @example
 * ```ts
 * const [leaves, def] = flatten(params);
 * const same = unflatten(def, leaves);
 * ```
 */
export function unflatten<T = Tree>(def: TreeDef, leaves: readonly unknown[]): T {
  let k = 0;
  const build = (d: TreeDef): unknown => {
    if (d.kind === 'leaf') {
      if (k >= leaves.length) throw new Error(`tree.unflatten: ${leaves.length} leaves are too few for the structure`);
      return leaves[k++];
    }
    if (d.kind === 'array') return d.children.map(build);
    const out: Record<string, unknown> = {};
    d.keys.forEach((key, i) => (out[key] = build(d.children[i])));
    return out;
  };
  const out = build(def) as T;
  if (k !== leaves.length) throw new Error(`tree.unflatten: ${leaves.length} leaves given, the structure has ${k}`);
  return out;
}

/**
 * The leaves in order.
 *
 * @example
 * ```ts
 * leaves({ a: ones([2]), b: [zeros([3])] }).length; // 2
 * ```
 */
export function leaves(t: unknown): Leaf[] {
  return flatten(t)[0];
}

/**
 * The tree's structure (no leaves).
 *
 * @example
 * ```ts
 * structure({ a: ones([2]), b: [1, 2] }); // { kind: 'object', keys: ['a', 'b'], ... }
 * ```
 */
export function structure(t: unknown): TreeDef {
  return flatten(t)[1];
}

/** Dotted paths of the leaves, in `flatten`'s order. */
function paths(t: unknown): string[] {
  const out: string[] = [];
  const walk = (x: unknown, path: string): void => {
    if (Array.isArray(x)) x.forEach((v, i) => walk(v, join(path, i)));
    else if (isNode(x)) for (const k of Object.keys(x)) walk((x as Record<string, unknown>)[k], join(path, k));
    else out.push(path);
  };
  walk(t, '');
  return out;
}

/** The first path at which two trees' structures differ, or null. */
function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  const na = isNode(a);
  const nb = isNode(b);
  if (!na && !nb) return null;
  const where = path || '<root>';
  if (na !== nb) return `${where} (${na ? 'a node' : 'a leaf'} vs ${nb ? 'a node' : 'a leaf'})`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${where} (array vs object)`;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return `${where} (length ${a.length} vs ${bb.length})`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], bb[i], join(path, i));
      if (d) return d;
    }
    return null;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  for (const k of ka) if (!kb.includes(k)) return `${join(path, k)} (missing in the other tree)`;
  for (const k of kb) if (!ka.includes(k)) return `${join(path, k)} (missing in the first tree)`;
  for (const k of ka) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], join(path, k));
    if (d) return d;
  }
  return null;
}

/**
 * Applies `f` leafwise over one or more trees of the same structure (an Error names the first path
 * where they differ). The result has the first tree's structure. Leaves are visited in the first
 * tree's key order; other trees are matched by key.
 *
 * @example
 * ```ts
 * const doubled = map((w) => mul(w as Tensor, 2), params);
 * const summed = map((a, b) => add(a as Tensor, b as Tensor), grads1, grads2);
 * ```
 */
export function map<T>(f: (...leaves: Leaf[]) => Leaf, first: T, ...rest: unknown[]): MapTree<T, Tensor> {
  return mapLeaves(f as (...leaves: unknown[]) => unknown, [first, ...rest], true) as MapTree<T, Tensor>;
}

/**
 * @internal `map` over trees whose leaves may be anything that is not an array or plain object
 * (label strings, mask booleans): for optimizers' label and mask trees.
 */
export function mapAny(f: (...leaves: unknown[]) => unknown, first: unknown, ...rest: unknown[]): unknown {
  return mapLeaves(f, [first, ...rest], false);
}

function mapLeaves(f: (...leaves: unknown[]) => unknown, trees: unknown[], check: boolean): unknown {
  for (let i = 1; i < trees.length; i++) {
    const d = firstDifference(trees[0], trees[i]);
    if (d) throw new Error(`tree.map: tree #${i} differs from the first at ${d}`);
  }
  const walk = (xs: unknown[], path: string): unknown => {
    const x = xs[0];
    if (Array.isArray(x)) return x.map((_, i) => walk(xs.map((t) => (t as unknown[])[i]), join(path, i)));
    if (isNode(x)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x)) out[k] = walk(xs.map((t) => (t as Record<string, unknown>)[k]), join(path, k));
      return out;
    }
    if (check) for (const leaf of xs) checkLeaf(leaf, path);
    return f(...xs);
  };
  return walk(trees, '');
}

/**
 * Like `map` over one tree, with each leaf's dotted path.
 *
 * @example
 * ```ts
 * mapWithPath((path, w) => (path.endsWith('bias') ? null : w), params);
 * ```
 */
export function mapWithPath<T>(f: (path: string, leaf: Leaf) => Leaf, t: T): MapTree<T, Tensor> {
  const ps = paths(t);
  let k = 0;
  return map((leaf) => f(ps[k++], leaf), t);
}

/**
 * Disposes every tensor leaf; other leaves (step counts, null) are ignored.
 *
 * @example
 * ```ts
 * dispose({ params, opt: { step: 3, mu } });
 * ```
 */
export function dispose(t: unknown): void {
  for (const leaf of leaves(t)) if (leaf instanceof Tensor) leaf.dispose();
}

/**
 * Leaf paths of a tree in `flatten`'s order.
 *
 * @example
 * ```ts
 * leafPaths({ blocks: [{ wq: w }] }); // ['blocks.0.wq']
 * ```
 */
export function leafPaths(t: unknown): string[] {
  flatten(t); // validates the leaves
  return paths(t);
}
