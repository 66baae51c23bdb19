/**
 * Every kernel source in core and linalg divides indices through `divmod` (kernels/index-math.ts):
 * a bare `Math.floor(a / b)` is off by one at exact multiples on GPUs and by more past 2^24. The
 * exported KernelSource objects are walked (pipelines and form tables included), and every exported
 * generator is called with representative arguments; a generator missing from GENERATORS fails the
 * test, so a new one must be added here. The random module's kernels are private: its source text
 * must hold no `Math.floor` at all (it never divides, see kernels/random.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as mapK from '../src/kernels/map.js';
import * as matmulK from '../src/kernels/matmul.js';
import * as reduceK from '../src/kernels/reduce.js';
import * as shapeK from '../src/kernels/layout.js';
import * as bakeK from '../src/kernels/bake.js';
import * as indexK from '../src/kernels/index-math.js';
import * as optimK from '../src/kernels/optim.js';
import * as jacobiK from '../../linalg/src/jacobi-kernels.js';
import * as innerK from '../../linalg/src/jacobi-inner.js';
import * as qrK from '../../linalg/src/qr-kernels.js';
import * as solveK from '../../linalg/src/jacobi-solve.js';

const REDUCTIONS = ['sum', 'mean', 'max', 'min', 'argmax', 'argmin', 'logsumexp', 'norm'];

/** Representative calls of each exported function, returning kernel sources (or host data: []). */
const GENERATORS: Record<string, (f: (...a: never[]) => unknown) => unknown[]> = {
  mapKernel: (f) => [
    (f as typeof mapK.mapKernel)('t', 'v0 + v1', [2, 3, 4], [
      [12, 4, 1],
      [0, 1, 0],
    ]).src,
    (f as typeof mapK.mapKernel)('t', 'v0', [5, 7], [[1, 5]], [3]).src,
  ],
  // Batched (the batch divided by divmod), transposed B (packed), N not a multiple of 4 (the cell unpack).
  wasmMatmulPlan: (f) => {
    const plan = (f as typeof matmulK.wasmMatmulPlan)({ M: 8, N: 12, K: 16, sa0: 16, sa1: 1, sb0: 1, sb1: 16, bsa: 128, bsb: 192, nb: 3 });
    const odd = (f as typeof matmulK.wasmMatmulPlan)({ M: 5, N: 7, K: 3, sa0: 3, sa1: 1, sb0: 7, sb1: 1, bsa: 15, bsb: 0, nb: 2 });
    const minus = (f as typeof matmulK.wasmMatmulPlan)({ M: 8, N: 32, K: 16, sa0: 16, sa1: 1, sb0: 1, sb1: 16, bsa: 0, bsb: 0, nb: 1, minus: true });
    return [plan.pack, plan.main, plan.unpack, odd.main, odd.unpack, minus.main].map((step) => step?.src);
  },
  reduceKernel: (f) => REDUCTIONS.map((op) => (f as typeof reduceK.reduceKernel)(op)),
  reduceContiguousKernel: (f) => REDUCTIONS.filter(reduceK.hasContiguous).map((op) => (f as typeof reduceK.reduceContiguousKernel)(op)),
  padKernel: (f) => [1, 2, 3, 4].map((r) => (f as typeof shapeK.padKernel)(r)),
  bakeScalars: (f) => [(f as typeof bakeK.bakeScalars)(matmulK.MATMUL, { K: 20 })],
  divmod: (f) => [{ key: 'divmod', body: (f as typeof indexK.divmod)('q', 'r', 'this.thread.x', 'n') }],
  normsKernel: (f) => [1, 7].flatMap((k) => [false, true].map((joint) => (f as typeof optimK.normsKernel)(k, joint))),
  adamMomentKernel: (f) => (['mu', 'nu'] as const).map((w) => (f as typeof optimK.adamMomentKernel)(w, ['tensor', 'number'], true)),
  adamParamKernel: (f) => [(f as typeof optimK.adamParamKernel)(true, true)],
  adamLeafKernel: (f) => [(f as typeof optimK.adamLeafKernel)(['tensor', 'number'], true, true, 4096)],
  innerPipeline: (f) => ['full', 'cross'].map((kind) => (f as typeof innerK.innerPipeline)(8, 4, kind)),
  irot4: (f) => [(f as typeof innerK.irot4)(32, 24)],
  iparams2: (f) => [(f as typeof innerK.iparams2)(32, 24)],
  vHat: (f) => [{ key: 'vhat', body: (f as typeof qrK.vHat)('X', 'i', 'cols') }],
  // Host planning and predicates, no kernel text.
  hasContiguous: () => [],
  circleSources: () => [],
  innerSchedule: () => [],
  // Job steps (they run jacobi-solve's exported kernels, walked above), not generators.
  mayBeWellConditioned: () => [],
  lowerSolveInJob: () => [],
  solveVInJob: () => [],
};

/** `name: body` for every kernel body reachable from `value`. */
function bodies(name: string, value: unknown, out: [string, string][], depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  const v = value as Record<string, unknown>;
  if (typeof v.body === 'string') out.push([name, v.body]);
  for (const [k, sub] of Object.entries(v)) if (k !== 'body' && typeof sub === 'object') bodies(`${name}.${k}`, sub, out, depth + 1);
}

/** The text inside the parentheses that open at `open`. */
function argument(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

/** The floor divisions of `body` that divmod did not write. */
export function bareDivisions(body: string): string[] {
  const own = [/^\s*const (\w+)_0 = Math\.floor\(.*\) \| 0;$/, /^\s*const (\w+)_1 = \1_0 \+ \(Math\.floor\(\w+_0 \/ .*\) \| 0\);$/];
  const found: string[] = [];
  for (const line of body.split('\n')) {
    if (own.some((re) => re.test(line))) continue;
    for (let at = line.indexOf('Math.floor('); at >= 0; at = line.indexOf('Math.floor(', at + 1)) {
      const arg = argument(line, at + 'Math.floor'.length);
      if (arg.includes('/')) found.push(line.trim());
    }
  }
  return found;
}

const MODULES: Record<string, Record<string, unknown>> = { map: mapK, matmul: matmulK, reduce: reduceK, shape: shapeK, bake: bakeK, indexMath: indexK, optim: optimK, jacobi: jacobiK, inner: innerK, qr: qrK, solve: solveK };

describe('kernel sources', () => {
  const all: [string, string][] = [];
  const unknown: string[] = [];
  for (const [mod, exports] of Object.entries(MODULES)) {
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value === 'function') {
        const gen = GENERATORS[name];
        if (!gen) unknown.push(`${mod}.${name}`);
        else gen(value as (...a: never[]) => unknown).forEach((s, k) => bodies(`${mod}.${name}#${k}`, s, all));
      } else {
        bodies(`${mod}.${name}`, value, all);
      }
    }
  }

  it('every exported generator is known to this test', () => {
    expect(unknown).toEqual([]);
  });

  it('walks the kernels it should (sanity: the TAKE, MATMUL, UVECS and pipeline bodies are among them)', () => {
    const names = all.map(([n]) => n);
    for (const want of ['shape.TAKE', 'matmul.MATMUL', 'jacobi.UVECS', 'inner.innerPipeline#0.kernels.hinit']) expect(names).toContain(want);
    expect(all.length).toBeGreaterThan(40);
  });

  it('no kernel divides an index with a bare Math.floor(a / b)', () => {
    const bad = all.flatMap(([name, body]) => bareDivisions(body).map((line) => `${name}: ${line}`));
    expect(bad).toEqual([]);
  });

  it('the check itself finds a bare division and passes divmod', () => {
    expect(bareDivisions('const i = this.thread.x;\nconst r = Math.floor(i / n);')).toEqual(['const r = Math.floor(i / n);']);
    expect(bareDivisions(indexK.divmod('q', 'r', 'i', 'n'))).toEqual([]);
  });

  it('the random kernels never divide', () => {
    for (const file of ['../src/kernels/random.ts', '../src/kernels/threefry.ts']) {
      const text = readFileSync(new URL(file, import.meta.url), 'utf8');
      expect(text.includes('Math.floor(')).toBe(false);
    }
  });
});
