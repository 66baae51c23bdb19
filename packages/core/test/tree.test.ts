/**
 * Parameter trees (src/tree): map over one or several trees, paths, flatten/unflatten round trips
 * (fast-check generated trees), leaves, structure, dispose and invalid leaves. Tree functions run on
 * the host; the suite still runs per backend so tensor leaves live in each backend's storage.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { forEachBackend } from './backends.js';

const { tree } = c;

const RUNS = Number(process.env.FC_RUNS ?? 50);
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({
  numRuns,
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
});

/** A small transformer-like parameter tree with an optimizer-style step count and a null. */
function model(): { embed: Tensor; blocks: { attn: { wq: Tensor; wk: Tensor }; mlp: Tensor[] }[]; step: number; head: null } {
  const t = (v: number): Tensor => c.tensor([v, v + 0.5]);
  return {
    embed: t(1),
    blocks: [
      { attn: { wq: t(2), wk: t(3) }, mlp: [t(4), t(5)] },
      { attn: { wq: t(6), wk: t(7) }, mlp: [t(8)] },
    ],
    step: 3,
    head: null,
  };
}

const PATHS = ['embed', 'blocks.0.attn.wq', 'blocks.0.attn.wk', 'blocks.0.mlp.0', 'blocks.0.mlp.1', 'blocks.1.attn.wq', 'blocks.1.attn.wk', 'blocks.1.mlp.0', 'step', 'head'];

/** Generated trees: objects and arrays (possibly empty) of numbers, null and tensor placeholders. */
type GenTree = number | null | { t: number } | GenTree[] | { [k: string]: GenTree };
const genTree: fc.Arbitrary<GenTree> = fc.letrec<{ node: GenTree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constant(null), fc.record({ t: fc.integer({ min: 0, max: 99 }) })),
    fc.array(tie('node'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'wq', 'bias', 'x1', '0'), tie('node'), { maxKeys: 3 }),
  ),
})).node;

/** Replaces the `{ t: v }` placeholders by tensors holding v (and collects them). */
function materialize(g: GenTree, made: Tensor[]): unknown {
  if (g === null || typeof g === 'number') return g;
  if (Array.isArray(g)) return g.map((x) => materialize(x, made));
  if ('t' in g && typeof g.t === 'number' && Object.keys(g).length === 1) {
    const t = c.tensor([g.t]);
    made.push(t);
    return t;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(g)) out[k] = materialize(v as GenTree, made);
  return out;
}

/** Paths and leaves in depth-first order, computed independently of src/tree. */
function refLeaves(x: unknown, path = '', out: [string, unknown][] = []): [string, unknown][] {
  const join = (k: string | number): string => (path ? `${path}.${k}` : String(k));
  if (Array.isArray(x)) x.forEach((v, i) => refLeaves(v, join(i), out));
  else if (x !== null && typeof x === 'object' && !(x instanceof c.Tensor)) for (const [k, v] of Object.entries(x)) refLeaves(v, join(k), out);
  else out.push([path, x]);
  return out;
}

class Adapter {
  constructor(readonly w: Tensor) {}
}

forEachBackend('tree', () => {
  describe('map', () => {
    it('maps one tree leafwise, keeping its structure and non-tensor leaves as f returns them', async () => {
      const m = model();
      const seen: unknown[] = [];
      const doubled = tree.map((x) => {
        seen.push(x);
        return x instanceof c.Tensor ? c.mul(x, 2) : x;
      }, m);
      expect(seen).toEqual(refLeaves(m).map(([, v]) => v));
      expect(tree.structure(doubled)).toEqual(tree.structure(m));
      expect(doubled.step).toBe(3);
      expect(doubled.head).toBeNull();
      expect(Array.from(await (doubled.blocks[1].attn.wq as Tensor).data())).toEqual([12, 13]);
      tree.dispose([m, doubled]);
    });

    it('maps several trees, matching object keys by name (not order)', async () => {
      const a = { w: c.tensor([1, 2]), b: [c.tensor([3]), 4] };
      const b = { b: [c.tensor([30]), 40], w: c.tensor([10, 20]) };
      const sum = tree.map((x, y) => (x instanceof c.Tensor ? c.add(x, y as Tensor) : (x as number) + (y as number)), a, b);
      expect(Object.keys(sum)).toEqual(['w', 'b']);
      expect(Array.from(await (sum.w as Tensor).data())).toEqual([11, 22]);
      expect(Array.from(await (sum.b[0] as Tensor).data())).toEqual([33]);
      expect(sum.b[1]).toBe(44);
      // Three trees at once.
      const three = tree.map((x, y, z) => (x as number) + (y as number) + (z as number), [1, [2]], [10, [20]], [100, [200]]);
      expect(three).toEqual([111, [222]]);
      tree.dispose([a, b, sum]);
    });

    it('structure mismatches name the first differing path', () => {
      const p = { blocks: [{ wq: 1, wk: 2 }, { wq: 3, wk: 4 }] };
      const cases: [unknown, RegExp][] = [
        [{ blocks: [{ wq: 1, wk: 2 }, { wk: 4 }] }, /tree #1 differs from the first at blocks\.1\.wq \(missing in the other tree\)/],
        [{ blocks: [{ wq: 1, wk: 2 }, { wq: 3, wk: 4, wv: 5 }] }, /at blocks\.1\.wv \(missing in the first tree\)/],
        [{ blocks: [{ wq: 1, wk: 2 }, { wq: [3], wk: 4 }] }, /at blocks\.1\.wq \(a leaf vs a node\)/],
        [{ blocks: [{ wq: 1, wk: 2 }] }, /at blocks \(length 2 vs 1\)/],
        [{ blocks: { 0: { wq: 1, wk: 2 }, 1: { wq: 3, wk: 4 } } }, /at blocks \(array vs object\)/],
        [[1], /at <root> \(array vs object\)/],
        [5, /at <root> \(a node vs a leaf\)/],
      ];
      for (const [other, msg] of cases) expect(() => tree.map((x) => x, p, other)).toThrow(msg);
      // The second of several trees is named by its position.
      expect(() => tree.map((x) => x, p, p, { blocks: [] })).toThrow(/tree #2 differs from the first at blocks \(length 2 vs 0\)/);
      // Leaves of different kinds (tensor, number, null) match: only nodes are structure.
      expect(() => tree.map((x) => x, { a: 1 }, { a: null })).not.toThrow();
    });

    it('mapWithPath gives dotted paths like blocks.0.attn.wq', () => {
      const m = model();
      const paths: string[] = [];
      const out = tree.mapWithPath((path, x) => {
        paths.push(path);
        return path.endsWith('wk') ? null : x;
      }, m);
      expect(paths).toEqual(PATHS);
      expect(out.blocks[0].attn.wk).toBeNull();
      expect(out.blocks[0].attn.wq).toBe(m.blocks[0].attn.wq);
      expect(tree.leafPaths(m)).toEqual(PATHS);
      // A leaf at the root has the empty path.
      expect(tree.mapWithPath((path) => (path === '' ? 1 : 0), 5)).toBe(1);
      tree.dispose(m);
    });
  });

  describe('flatten, unflatten, leaves, structure', () => {
    it('round trips generated trees, with leaves in depth-first order and object key order', async () => {
      await fc.assert(
        fc.property(genTree, (g) => {
          const made: Tensor[] = [];
          const t = materialize(g, made);
          try {
            const [ls, def] = tree.flatten(t);
            const ref = refLeaves(t);
            expect(ls).toHaveLength(ref.length);
            ls.forEach((l, i) => expect(l).toBe(ref[i][1]));
            expect(tree.leaves(t)).toEqual(ls);
            expect(tree.leafPaths(t)).toEqual(ref.map(([p]) => p));
            expect(tree.structure(t)).toEqual(def);
            const back = tree.unflatten(def, ls);
            expect(back).toEqual(t);
            ls.forEach((l, i) => expect(tree.leaves(back)[i]).toBe(l));
            // Same structure with other leaves: the structure survives, the leaves are the new ones.
            const renamed = tree.unflatten(def, ls.map((_, i) => i));
            expect(tree.structure(renamed)).toEqual(def);
            expect(tree.leaves(renamed)).toEqual(ls.map((_, i) => i));
            // map with the identity rebuilds an equal tree.
            expect(tree.map((x) => x, t)).toEqual(t);
          } finally {
            made.forEach((x) => x.dispose());
          }
        }),
        params(),
      );
    });

    it('unflatten rejects the wrong number of leaves', () => {
      const [ls, def] = tree.flatten({ a: [1, 2], b: 3 });
      expect(() => tree.unflatten(def, ls.slice(1))).toThrow(/tree\.unflatten: 2 leaves are too few/);
      expect(() => tree.unflatten(def, [...ls, 4])).toThrow(/tree\.unflatten: 4 leaves given, the structure has 3/);
    });

    it('empty nodes have structure and no leaves; null-prototype objects are nodes', () => {
      const t = { a: [], b: {}, c: [null, 3] };
      expect(tree.leaves(t)).toEqual([null, 3]);
      expect(tree.structure(t)).toEqual({
        kind: 'object',
        keys: ['a', 'b', 'c'],
        children: [
          { kind: 'array', children: [] },
          { kind: 'object', keys: [], children: [] },
          { kind: 'array', children: [{ kind: 'leaf' }, { kind: 'leaf' }] },
        ],
      });
      const bare = Object.assign(Object.create(null) as Record<string, unknown>, { q: 1, r: [2] });
      expect(tree.leafPaths({ bare })).toEqual(['bare.q', 'bare.r.0']);
    });
  });

  describe('dispose', () => {
    it('disposes every tensor leaf and ignores numbers (an optimizer step count) and null', async () => {
      await c.sync();
      const before = c.memory().tensors;
      const m = model();
      const state = { params: m, opt: { step: 12, mu: [c.zeros([2]), null] } };
      expect(c.memory().tensors - before).toBe(9);
      tree.dispose(state);
      expect(c.memory().tensors).toBe(before);
      expect(m.blocks[1].mlp[0].isDisposed).toBe(true);
      expect(state.opt.step).toBe(12);
      // Disposing again is harmless.
      tree.dispose(state);
      expect(c.memory().tensors).toBe(before);
    });
  });

  describe('cycles, depth and untrusted key names', () => {
    const fns = { flatten: tree.flatten, leaves: tree.leaves, structure: tree.structure, leafPaths: tree.leafPaths, dispose: tree.dispose };

    it('a cyclic tree is an Error naming the function and the path of the cycle, not a stack overflow', () => {
      const obj: Record<string, unknown> = { w: 1, b: { x: [2] } };
      (obj.b as Record<string, unknown>).c = obj;
      const arr: unknown[] = [1, { y: 2 }];
      (arr[1] as Record<string, unknown>).z = [arr];
      for (const [name, fn] of Object.entries(fns)) {
        expect(() => fn(obj)).toThrow(new RegExp(`^tree\\.${name}: the tree has a cycle at "b\\.c" \\(it contains its ancestor at "<root>"\\)`));
        expect(() => fn(arr)).toThrow(new RegExp(`^tree\\.${name}: the tree has a cycle at "1\\.z\\.0"`));
      }
      expect(() => tree.map((x) => x, obj)).toThrow(/^tree\.map: the tree has a cycle at "b\.c"/);
      expect(() => tree.mapWithPath((_p, x) => x, obj)).toThrow(/^tree\.mapWithPath: the tree has a cycle at "b\.c"/);
      // Two cyclic trees of the same shape: the structure comparison must not loop either.
      const other: Record<string, unknown> = { w: 3, b: { x: [4] } };
      (other.b as Record<string, unknown>).c = other;
      expect(() => tree.map((x) => x, obj, other)).toThrow(/^tree\.map: the tree has a cycle at "b\.c"/);
      const def = { kind: 'object', keys: ['a'], children: [] as unknown[] };
      def.children.push(def);
      expect(() => tree.unflatten(def as never, [1])).toThrow(/^tree\.unflatten: the structure has a cycle at "a"/);
    });

    it('a shared (acyclic) subtree is not a cycle', () => {
      const shared = { p: 1, q: [2] };
      expect(tree.leaves({ a: shared, b: [shared, shared] })).toEqual([1, 2, 1, 2, 1, 2]);
      expect(tree.leafPaths({ a: shared, b: shared })).toEqual(['a.p', 'a.q.0', 'b.p', 'b.q.0']);
    });

    it('a tree nested deeper than the limit is a clear Error, not a stack overflow', () => {
      let deep: unknown = 1;
      for (let i = 0; i < 20_000; i++) deep = [deep];
      for (const [name, fn] of Object.entries(fns)) expect(() => fn(deep)).toThrow(new RegExp(`^tree\\.${name}: the tree nests deeper than 1000 levels at "0\\.0\\.0`));
      expect(() => tree.map((x) => x, deep)).toThrow(/^tree\.map: the tree nests deeper than 1000 levels/);
      let def: unknown = { kind: 'leaf' };
      for (let i = 0; i < 20_000; i++) def = { kind: 'array', children: [def] };
      expect(() => tree.unflatten(def as never, [1])).toThrow(/^tree\.unflatten: the structure nests deeper than 1000 levels/);
      let ok: unknown = 1;
      for (let i = 0; i < 1000; i++) ok = { k: ok };
      expect(tree.leaves(ok)).toEqual([1]);
    });

    it('the keys __proto__, constructor and prototype are refused with an Error naming the function and path; Object.prototype stays clean', () => {
      const proto = JSON.parse('{"blocks":[{"__proto__":{"isAdmin":1}}]}') as unknown;
      const ctor = { a: { constructor: { prototype: { polluted: 1 } } } };
      const prot = { prototype: { polluted: 1 } };
      for (const [name, fn] of Object.entries(fns)) {
        expect(() => fn(proto)).toThrow(new RegExp(`^tree\\.${name}: the key "__proto__" at "blocks\\.0\\.__proto__" is not allowed`));
        expect(() => fn(ctor)).toThrow(new RegExp(`^tree\\.${name}: the key "constructor" at "a\\.constructor" is not allowed`));
        expect(() => fn(prot)).toThrow(new RegExp(`^tree\\.${name}: the key "prototype" at "prototype" is not allowed`));
      }
      expect(() => tree.map((x) => x, proto)).toThrow(/^tree\.map: the key "__proto__" at "blocks\.0\.__proto__" is not allowed/);
      expect(() => tree.mapWithPath((_p, x) => x, ctor)).toThrow(/^tree\.mapWithPath: the key "constructor" at "a\.constructor"/);
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        const def = { kind: 'object', keys: ['x', key], children: [{ kind: 'leaf' }, { kind: 'object', keys: ['isAdmin', 'polluted'], children: [{ kind: 'leaf' }, { kind: 'leaf' }] }] };
        expect(() => tree.unflatten(def as never, [1, 2, 3])).toThrow(new RegExp(`^tree\\.unflatten: the key "${key}" at "${key}" is not allowed`));
      }
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('toString, hasOwnProperty and valueOf are ordinary keys', async () => {
      const a = c.tensor([1]);
      const b = c.tensor([2]);
      const t = { toString: a, hasOwnProperty: { valueOf: b, n: 3 } };
      expect(tree.leafPaths(t)).toEqual(['toString', 'hasOwnProperty.valueOf', 'hasOwnProperty.n']);
      const [ls, def] = tree.flatten(t);
      expect(ls).toEqual([a, b, 3]);
      const back = tree.unflatten<typeof t>(def, ['x', 'y', 'z']);
      expect(Object.keys(back)).toEqual(['toString', 'hasOwnProperty']);
      expect(Object.getOwnPropertyDescriptor(back, 'toString')?.value).toBe('x');
      expect(Object.getOwnPropertyDescriptor(back.hasOwnProperty, 'valueOf')?.value).toBe('y');
      const paths: string[] = [];
      const doubled = tree.mapWithPath((p, x) => (paths.push(p), c.mul(x as Tensor, 2)), { toString: a, valueOf: [b] });
      expect(paths).toEqual(['toString', 'valueOf.0']);
      expect(Array.from(await (doubled.toString as unknown as Tensor).data())).toEqual([2]);
      expect(Array.from(await (doubled.valueOf[0] as Tensor).data())).toEqual([4]);
      // Matching trees by key: a key missing from one tree is not found on Object.prototype.
      expect(() => tree.map((x) => x, { toString: 1 }, { other: 1 })).toThrow(/^tree\.map: tree #1 differs from the first at toString \(missing in the other tree\)/);
      tree.dispose([a, b, doubled]);
    });
  });

  describe('invalid leaves', () => {
    const bad: [string, unknown, RegExp][] = [
      ['a string', { blocks: [{ wq: 'w' }] }, /"blocks\.0\.wq" is a string/],
      ['a Map', { blocks: [{}, { wq: new Map() }] }, /"blocks\.1\.wq" is a Map/],
      ['a class instance', { adapters: [new Adapter(null as unknown as Tensor)] }, /"adapters\.0" is a Adapter/],
      ['a typed array', { w: new Float32Array(2) }, /"w" is a Float32Array/],
      ['a function', [1, () => 1], /"1" is a function/],
      ['a string at the root', 'w', /"<root>" is a string/],
    ];
    for (const [what, t, msg] of bad) {
      it(`${what} is an Error naming its path in flatten, leaves, structure, leafPaths and dispose`, () => {
        for (const fn of [tree.flatten, tree.leaves, tree.structure, tree.leafPaths, tree.dispose]) {
          expect(() => fn(t)).toThrow(msg);
        }
      });
    }

    it('map and mapWithPath reject invalid leaves too, naming the path', () => {
      expect(() => tree.map((x) => x, { blocks: [{ wq: 'w' }] } as never)).toThrow(/"blocks\.0\.wq" is a string/);
      expect(() => tree.mapWithPath((_p, x) => x, { a: [new Map()] } as never)).toThrow(/"a\.0" is a Map/);
    });

    it('grad rejects a class instance argument instead of returning null for it', () => {
      const w = c.tensor([1, 2]);
      try {
        expect(() => c.grad((a: Adapter) => c.sum(c.mul(a.w, a.w)))(new Adapter(w))).toThrow(/Adapter/);
      } finally {
        w.dispose();
      }
    });
  });
});
