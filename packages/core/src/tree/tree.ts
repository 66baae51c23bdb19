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

/**
 * Whether `x` is an inner node of a tree: an array or a plain object (prototype `Object.prototype`
 * or null). Tensors, numbers, null and class instances are not (the first three are leaves).
 *
 * @example
 * ```ts
 * tree.isNode({ w: zeros([2]) }); // true
 * tree.isNode([1, 2]);            // true
 * tree.isNode(zeros([2]));        // false
 * ```
 */
export function isNode(x: unknown): x is Record<string, unknown> | unknown[] {
  if (Array.isArray(x)) return true;
  if (x === null || typeof x !== 'object' || x instanceof Tensor) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function checkLeaf(op: string, x: unknown, path: string): void {
  if (x === null || x === undefined || typeof x === 'number' || x instanceof Tensor) return;
  throw new Error(`${op}: the value at "${path || '<root>'}" is a ${typeof x === 'object' ? (x as object).constructor?.name ?? 'object' : typeof x}, not a tensor, number, null, array or plain object`);
}

const join = (path: string, key: string | number): string => (path ? `${path}.${key}` : String(key));

/** Paths can be long (a deep tree): error messages show their start. */
const showPath = (path: string): string => (path === '' ? '<root>' : path.length > 80 ? `${path.slice(0, 77)}...` : path);

/**
 * How deep a tree may nest. Parameter trees nest a few levels; the bound turns a runaway structure
 * into a clear Error instead of a stack overflow in these recursive walks.
 */
const MAX_DEPTH = 1000;

/**
 * Keys no tree may have. Trees are rebuilt from keys (`unflatten`, `map`) and from dotted paths read
 * from files (checkpoint interop), where assigning these names would change an object's prototype
 * or reach `Object.prototype`: they are refused everywhere rather than handled in some places.
 */
const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Refuses a reserved key, naming the function and the key's path. */
function checkKey(op: string, key: string, path: string): void {
  if (RESERVED_KEYS.has(key)) {
    throw new Error(`${op}: the key ${JSON.stringify(key)} at "${showPath(join(path, key))}" is not allowed in a tree (__proto__, constructor and prototype are reserved: assigning them would change object prototypes)`);
  }
}

/**
 * The nodes on the path from the root to the node being visited: entering one of them again is a
 * cycle, and more than MAX_DEPTH of them is too deep. Both are Errors naming `op` and the path.
 * A subtree shared by two parents (no cycle) is visited once per parent, as its leaves are.
 */
class Ancestors {
  private readonly open = new Map<object, string>();
  constructor(
    private readonly op: string,
    private readonly what: 'tree' | 'structure',
  ) {}

  enter(node: object, path: string): void {
    const seen = this.open.get(node);
    if (seen !== undefined) throw new Error(`${this.op}: the ${this.what} has a cycle at "${showPath(path)}" (it contains its ancestor at "${showPath(seen)}")`);
    if (this.open.size >= MAX_DEPTH) throw new Error(`${this.op}: the ${this.what} nests deeper than ${MAX_DEPTH} levels at "${showPath(path)}"`);
    this.open.set(node, path);
  }

  leave(node: object): void {
    this.open.delete(node);
  }
}

/** `flatten` under the name of the public function that called it, for its errors. */
function flattenAs(op: string, t: unknown): [Leaf[], TreeDef] {
  const leaves: Leaf[] = [];
  const open = new Ancestors(op, 'tree');
  const walk = (x: unknown, path: string): TreeDef => {
    if (!isNode(x)) {
      checkLeaf(op, x, path);
      leaves.push(x as Leaf);
      return { kind: 'leaf' };
    }
    open.enter(x, path);
    let def: TreeDef;
    if (Array.isArray(x)) def = { kind: 'array', children: x.map((v, i) => walk(v, join(path, i))) };
    else {
      const keys = Object.keys(x);
      const children = keys.map((k) => {
        checkKey(op, k, path);
        return walk((x as Record<string, unknown>)[k], join(path, k));
      });
      def = { kind: 'object', keys, children };
    }
    open.leave(x);
    return def;
  };
  return [leaves, walk(t, '')];
}

/**
 * The leaves in order (depth first; object keys in insertion order) and the structure to rebuild them.
 * A tree with a cycle, nested deeper than 1000 levels, or with a key `__proto__`, `constructor` or
 * `prototype` is an Error naming the path (as in every function of this module).
 *
 * @example
 * ```ts
 * const [leaves, def] = flatten({ w: ones([2]), b: [zeros([1]), 3] });
 * leaves.length; // 3
 * ```
 */
export function flatten(t: unknown): [Leaf[], TreeDef] {
  return flattenAs('tree.flatten', t);
}

/**
 * Rebuilds a tree of structure `def` from leaves in `flatten`'s order. A structure with a cycle,
 * nested deeper than 1000 levels, or with a key `__proto__`, `constructor` or `prototype` is an Error.
 *
 * @example
 * ```ts
 * const [leaves, def] = flatten(params);
 * const same = unflatten(def, leaves);
 * ```
 */
export function unflatten<T = Tree>(def: TreeDef, leaves: readonly unknown[]): T {
  const op = 'tree.unflatten';
  let k = 0;
  const open = new Ancestors(op, 'structure');
  const build = (d: TreeDef, path: string): unknown => {
    if (d === null || typeof d !== 'object' || !['leaf', 'array', 'object'].includes(d.kind)) {
      throw new Error(`${op}: the structure at "${showPath(path)}" is not a TreeDef node ({ kind: 'leaf' | 'array' | 'object', ... })`);
    }
    if (d.kind === 'leaf') {
      if (k >= leaves.length) throw new Error(`${op}: ${leaves.length} leaves are too few for the structure`);
      return leaves[k++];
    }
    open.enter(d, path);
    let out: unknown;
    if (d.kind === 'array') out = d.children.map((c, i) => build(c, join(path, i)));
    else {
      if (d.keys.length !== d.children.length) throw new Error(`${op}: the structure at "${showPath(path)}" has ${d.keys.length} keys but ${d.children.length} children`);
      const obj: Record<string, unknown> = {};
      d.keys.forEach((key, i) => {
        checkKey(op, key, path);
        obj[key] = build(d.children[i], join(path, key));
      });
      out = obj;
    }
    open.leave(d);
    return out;
  };
  const out = build(def, '') as T;
  if (k !== leaves.length) throw new Error(`${op}: ${leaves.length} leaves given, the structure has ${k}`);
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
  return flattenAs('tree.leaves', t)[0];
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
  return flattenAs('tree.structure', t)[1];
}

/**
 * Dotted paths of the leaves, in `flatten`'s order (leaves are not checked). Cycles, depth and
 * reserved keys are checked, so the other walks below may assume a finite, shallow tree.
 */
function paths(op: string, t: unknown): string[] {
  const out: string[] = [];
  const open = new Ancestors(op, 'tree');
  const walk = (x: unknown, path: string): void => {
    if (!isNode(x)) {
      out.push(path);
      return;
    }
    open.enter(x, path);
    if (Array.isArray(x)) x.forEach((v, i) => walk(v, join(path, i)));
    else {
      for (const k of Object.keys(x)) {
        checkKey(op, k, path);
        walk((x as Record<string, unknown>)[k], join(path, k));
      }
    }
    open.leave(x);
  };
  walk(t, '');
  return out;
}

/** The first path at which two trees' structures differ, or null. Both trees must have passed `paths`. */
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
  return mapLeaves('tree.map', f as (...leaves: unknown[]) => unknown, [first, ...rest], true) as MapTree<T, Tensor>;
}

/**
 * @internal `map` over trees whose leaves may be anything that is not an array or plain object
 * (label strings, mask booleans): for optimizers' label and mask trees.
 */
export function mapAny(f: (...leaves: unknown[]) => unknown, first: unknown, ...rest: unknown[]): unknown {
  return mapLeaves('tree.map', f, [first, ...rest], false);
}

function mapLeaves(op: string, f: (...leaves: unknown[]) => unknown, trees: unknown[], check: boolean): unknown {
  // Every tree is checked for cycles, depth and reserved keys before the walks below recurse into it.
  for (const t of trees) paths(op, t);
  for (let i = 1; i < trees.length; i++) {
    const d = firstDifference(trees[0], trees[i]);
    if (d) throw new Error(`${op}: tree #${i} differs from the first at ${d}`);
  }
  const walk = (xs: unknown[], path: string): unknown => {
    const x = xs[0];
    if (Array.isArray(x)) return x.map((_, i) => walk(xs.map((t) => (t as unknown[])[i]), join(path, i)));
    if (isNode(x)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x)) out[k] = walk(xs.map((t) => (t as Record<string, unknown>)[k]), join(path, k));
      return out;
    }
    if (check) for (const leaf of xs) checkLeaf(op, leaf, path);
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
  const op = 'tree.mapWithPath';
  const ps = paths(op, t);
  let k = 0;
  return mapLeaves(op, (leaf) => f(ps[k++], leaf as Leaf), [t], true) as MapTree<T, Tensor>;
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
  for (const leaf of flattenAs('tree.dispose', t)[0]) if (leaf instanceof Tensor) leaf.dispose();
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
  flattenAs('tree.leafPaths', t); // validates the leaves
  return paths('tree.leafPaths', t);
}
