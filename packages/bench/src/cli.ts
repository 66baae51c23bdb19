#!/usr/bin/env node
/**
 * `npm run bench -- [suite...] [--backend NAME] [--time MS] [--sizes 256,512]`
 * `npm run bench -- svd --accuracy [--backend NAME] [--sizes 32,64]`
 * `npm run bench -- --help`
 *
 * Runs the named suites (default: all) on one backend, prints a markdown table per suite with
 * each case's time relative to the peer, and writes the rows as JSON under bench-results/.
 * `--accuracy` measures the Jacobi SVD's accuracy and sweeps instead of its time (svdAccuracy).
 * Lines on stderr say when each suite and each of its cases starts, and how long a suite took; a
 * command-line mistake prints what was wrong and exits 2, without a stack trace.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as sj from '@sorsajs/core';
import type { BackendRequest } from '@sorsajs/core';
import { elementwiseSuite, matmulSuite } from './suites/matmul.js';
import { mlpSuite } from './suites/mlp.js';
import { gptSuite } from './suites/gpt.js';
import { accuracyMarkdown, svdAccuracy, svdSuite } from './suites/svd.js';
import { rsvdSuite } from './suites/rsvd.js';
import { svdInitSuite, TORCH_SVD } from './suites/svd-init.js';
import { modelsSuite } from './suites/models.js';
import { markdown, type Row } from './report.js';
import { progress, setProgress } from './progress.js';

const SUITES: Record<string, (o: { time?: number; sizes?: number[] }) => Promise<Row[]>> = {
  matmul: matmulSuite,
  elementwise: elementwiseSuite,
  mlp: mlpSuite,
  gpt: gptSuite,
  svd: svdSuite,
  rsvd: rsvdSuite,
  'svd-init': svdInitSuite,
  models: modelsSuite,
};

const HELP = `Usage: npm run bench -- [suite...] [options]

Times sorsajs against its peers and prints a markdown table per suite; the rows are also written
as JSON to bench-results/<suite>-<backend>.json. Progress goes to stderr: a line as each suite
and each of its cases starts.

Suites (default: all, in this order):
  ${Object.keys(SUITES).join(', ')}

Options:
  --backend NAME   wasm (default), webgpu, webgl, cpu or auto
  --time MS        tinybench time per case, in milliseconds
  --sizes A,B,...  the sizes a suite runs (its own defaults otherwise)
  --accuracy       with the svd suite alone: the Jacobi SVD's accuracy and sweeps instead of its time
  -h, --help       this text

Examples:
  npm run bench -- matmul --backend webgpu
  npm run bench -- matmul --sizes 256,512 --time 2000
  npm run bench -- svd --accuracy --sizes 32,64

See docs/guides/benchmarks.md.`;

/** Prints a usage error and the way to --help, then exits 2 (no stack trace: the mistake is the command line's). */
function usage(message: string): never {
  console.error(`bench: ${message}\nRun \`npm run bench -- --help\` for the suites and options.`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: 'wasm' },
      time: { type: 'string' },
      sizes: { type: 'string' },
      accuracy: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  usage((e as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const names = positionals.length ? positionals : Object.keys(SUITES);
for (const n of names) if (!SUITES[n]) usage(`unknown suite "${n}" (have: ${Object.keys(SUITES).join(', ')})`);
if (values.time !== undefined && !(Number(values.time) > 0)) usage(`--time must be a positive number of milliseconds, got "${values.time}"`);
if (values.sizes !== undefined && !values.sizes.split(',').every((x) => Number.isInteger(Number(x)) && Number(x) > 0)) {
  usage(`--sizes must be positive integers separated by commas, got "${values.sizes}"`);
}
if (values.accuracy && positionals.some((n) => n !== 'svd')) usage(`--accuracy applies to the svd suite alone, got ${positionals.join(', ')}`);
const backends = ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'];
if (!backends.includes(values.backend)) usage(`--backend must be one of ${backends.join(', ')}, got "${values.backend}"`);

let chosen: string;
try {
  chosen = await sj.init({ backend: values.backend as BackendRequest });
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
}
const opts = {
  time: values.time ? Number(values.time) : undefined,
  sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
};
await mkdir('bench-results', { recursive: true });

// Progress lines on stderr, so that stdout keeps only the tables: one as each suite starts and ends,
// and, from the suites (runBench), one as each case starts.
setProgress((line) => process.stderr.write(`bench: ${line}\n`));
function seconds(t0: number): string {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}
if (values.accuracy) {
  progress(`svd accuracy on ${chosen} ...`);
  const t0 = performance.now();
  const rows = await svdAccuracy(opts);
  progress(`svd accuracy done in ${seconds(t0)}`);
  console.log(`\n## svd accuracy (jacobiSvd on ${chosen}, LAPACK ratios against ml-matrix's float64 SVD; the tests' bound is 50)\n`);
  console.log(accuracyMarkdown(rows));
  await writeFile(`bench-results/svd-accuracy-${chosen}.json`, JSON.stringify({ suite: 'svd-accuracy', backend: chosen, node: process.version, date: new Date().toISOString(), rows }, null, 2));
  process.exit(0);
}
for (const [i, name] of names.entries()) {
  progress(`[${i + 1}/${names.length}] ${name} on ${chosen} ...`);
  const t0 = performance.now();
  const rows = await SUITES[name](opts);
  progress(`[${i + 1}/${names.length}] ${name} done in ${seconds(t0)} (${rows.length} rows)`);
  console.log(`\n## ${name} (sorsajs on ${chosen}, Node ${process.version})\n`);
  // Each suite's peer: tfjs-wasm, ml-matrix for the Jacobi SVD, PyTorch's full SVD for svd-init; rsvd runs alone (an absolute target). gpt has
  // three peers, so its ratios are each one's time over sorsajs's (below 1: the peer is faster).
  // models: GPT-2 small beside a plain PyTorch GPT-2, the ratio each one's time over sorsajs's, as for gpt.
  const peer = name === 'svd' ? 'ml-matrix' : name === 'rsvd' ? '-' : name === 'gpt' || name === 'models' ? `sorsajs (${chosen})` : name === 'svd-init' ? TORCH_SVD : 'tfjs-wasm';
  console.log(markdown(rows, peer));
  const file = `bench-results/${name}-${chosen}.json`;
  await writeFile(file, JSON.stringify({ suite: name, backend: chosen, node: process.version, date: new Date().toISOString(), rows }, null, 2));
}
process.exit(0);
