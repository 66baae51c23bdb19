/**
 * Matmul and elementwise kernels, sorsajs beside tfjs-wasm in one process.
 * @module
 */
import { Bench } from 'tinybench';
import { randomData } from '@sorsajs/testing';
import * as sj from '@sorsajs/core';
import { tfjsWasm } from '../peers/tfjs.js';
import { rowsOf, type Row } from '../report.js';
import { runBench } from '../progress.js';

/** Options shared by suites. */
export interface SuiteOptions {
  /** Milliseconds each task runs for (tinybench `time`). */
  time?: number;
  /** Square sizes for matmul. */
  sizes?: number[];
}

/** Values in [-0.5, 0.5) from the testing kit's seeded generator: the same inputs every run, so runs compare. */
const randomFloats = (n: number, seed: number): Float32Array => randomData(n, seed, -0.5, 0.5);

/**
 * Square matmul at each size, with the result read back (as a training step would): sorsajs on the
 * current backend and tfjs-wasm. Rates are GFLOP/s (2 n^3 flops).
 *
 * @example
 * ```ts
 * await sj.init({ backend: 'wasm' });
 * const rows = await matmulSuite({ sizes: [256, 512] });
 * ```
 */
export async function matmulSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const tf = await tfjsWasm();
  const bench = new Bench({ time: opts.time ?? 1500, warmupTime: 300 });
  const ours = `sorsajs (${sj.backend()})`;
  const cleanup: (() => void)[] = [];
  for (const n of opts.sizes ?? [256, 512, 1024]) {
    const a = randomFloats(n * n, 1);
    const b = randomFloats(n * n, 2);
    const sa = sj.tensor(a, [n, n]);
    const sb = sj.tensor(b, [n, n]);
    const ta = tf.tensor2d(a, [n, n]);
    const tb = tf.tensor2d(b, [n, n]);
    cleanup.push(() => {
      sa.dispose();
      sb.dispose();
      ta.dispose();
      tb.dispose();
    });
    bench.add(`matmul ${n} | ${ours}`, async () => {
      const c = sj.matmul(sa, sb);
      await c.data();
      c.dispose();
    });
    bench.add(`matmul ${n} | tfjs-wasm`, () => {
      const c = tf.matMul(ta, tb);
      c.dataSync();
      c.dispose();
    });
  }
  await runBench(bench);
  cleanup.forEach((f) => f());
  return rowsOf(bench, (name) => {
    const n = Number(name.split(' ')[1]);
    return { unit: 'GFLOP/s', work: (2 * n ** 3) / 1e9 };
  });
}

/**
 * Elementwise add, exp, log, tanh, sigmoid and gelu over 65536 and 1M elements, and row sums, result read
 * back. Rates are GB/s moved.
 *
 * @example
 * ```ts
 * const rows = await elementwiseSuite();
 * ```
 */
export async function elementwiseSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const tf = await tfjsWasm();
  const bench = new Bench({ time: opts.time ?? 1000, warmupTime: 200 });
  const ours = `sorsajs (${sj.backend()})`;
  const cleanup: (() => void)[] = [];
  const bytes: Record<string, number> = {};
  for (const n of [65536, 1 << 20]) {
    const a = randomFloats(n, 3);
    const b = randomFloats(n, 4);
    const sa = sj.tensor(a);
    const sb = sj.tensor(b);
    const ta = tf.tensor1d(a);
    const tb = tf.tensor1d(b);
    // log's input: positive, spread over (0.5, 1.5) so neither side takes a NaN or -Inf path.
    const pos = Float32Array.from(a, (v) => v + 1);
    const sp = sj.tensor(pos);
    const tp = tf.tensor1d(pos);
    cleanup.push(() => [sa, sb, ta, tb, sp, tp].forEach((t) => t.dispose()));
    bytes[`add ${n}`] = 12 * n;
    bench.add(`add ${n} | ${ours}`, async () => {
      const c = sj.add(sa, sb);
      await c.data();
      c.dispose();
    });
    bench.add(`add ${n} | tfjs-wasm`, () => {
      const c = tf.add(ta, tb);
      c.dataSync();
      c.dispose();
    });
    // Transcendentals (issue #17): exp, log, tanh and sigmoid are single tfjs-wasm kernels; tfjs has
    // no gelu, so its row is GELU's tanh formula composed of tfjs ops (7 kernels), an upper bound for
    // a peer. log reads the positive inputs.
    for (const [op, ours_, theirs, s, t] of [
      ['exp', sj.exp, (x: typeof ta) => tf.exp(x), sa, ta],
      ['log', sj.log, (x: typeof ta) => tf.log(x), sp, tp],
      ['tanh', sj.tanh, (x: typeof ta) => tf.tanh(x), sa, ta],
      ['sigmoid', sj.sigmoid, (x: typeof ta) => tf.sigmoid(x), sa, ta],
      ['gelu', sj.gelu, (x: typeof ta) => tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), 0.7978845608028654))))), sa, ta],
    ] as const) {
      bytes[`${op} ${n}`] = 8 * n;
      bench.add(`${op} ${n} | ${ours}`, async () => {
        const c = ours_(s);
        await c.data();
        c.dispose();
      });
      bench.add(`${op} ${n} | tfjs-wasm`, () => {
        const c = theirs(t);
        c.dataSync();
        c.dispose();
      });
    }
  }
  // Reductions: row sums of a matrix and the sum of a long vector.
  for (const [rows, cols] of [[512, 512], [1, 1 << 20]]) {
    const a = randomFloats(rows * cols, 5);
    const sa = sj.tensor(a, [rows, cols]);
    const ta = tf.tensor2d(a, [rows, cols]);
    cleanup.push(() => [sa, ta].forEach((t) => t.dispose()));
    const name = `sum rows ${rows}x${cols}`;
    bytes[name] = 4 * rows * cols;
    bench.add(`${name} | ${ours}`, async () => {
      const c = sj.sum(sa, 1);
      await c.data();
      c.dispose();
    });
    bench.add(`${name} | tfjs-wasm`, () => {
      const c = tf.sum(ta, 1);
      c.dataSync();
      c.dispose();
    });
  }
  await runBench(bench);
  cleanup.forEach((f) => f());
  return rowsOf(bench, (name) => ({ unit: 'GB/s', work: bytes[name] / 1e9 }));
}
