#!/usr/bin/env node
/**
 * `npm run bench -- [suite...] [--backend NAME] [--time MS] [--sizes 256,512]`
 * `npm run bench -- svd --accuracy [--backend NAME] [--sizes 32,64]`
 *
 * Runs the named suites (default: all) on one backend, prints a markdown table per suite with
 * each case's time relative to the peer, and writes the rows as JSON under bench-results/.
 * `--accuracy` measures the Jacobi SVD's accuracy and sweeps instead of its time (svdAccuracy).
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
import { markdown, type Row } from './report.js';

const SUITES: Record<string, (o: { time?: number; sizes?: number[] }) => Promise<Row[]>> = {
  matmul: matmulSuite,
  elementwise: elementwiseSuite,
  mlp: mlpSuite,
  gpt: gptSuite,
  svd: svdSuite,
  rsvd: rsvdSuite,
  'svd-init': svdInitSuite,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { backend: { type: 'string', default: 'wasm' }, time: { type: 'string' }, sizes: { type: 'string' }, accuracy: { type: 'boolean', default: false } },
});
const names = positionals.length ? positionals : Object.keys(SUITES);
for (const n of names) if (!SUITES[n]) throw new Error(`bench: unknown suite "${n}" (have: ${Object.keys(SUITES).join(', ')})`);

const chosen = await sj.init({ backend: values.backend as BackendRequest });
const opts = {
  time: values.time ? Number(values.time) : undefined,
  sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
};
await mkdir('bench-results', { recursive: true });
if (values.accuracy) {
  if (positionals.some((n) => n !== 'svd')) throw new Error(`bench: --accuracy applies to the svd suite alone, got ${positionals.join(', ')}`);
  const rows = await svdAccuracy(opts);
  console.log(`\n## svd accuracy (jacobiSvd on ${chosen}, LAPACK ratios against ml-matrix's float64 SVD; the tests' bound is 50)\n`);
  console.log(accuracyMarkdown(rows));
  await writeFile(`bench-results/svd-accuracy-${chosen}.json`, JSON.stringify({ suite: 'svd-accuracy', backend: chosen, node: process.version, date: new Date().toISOString(), rows }, null, 2));
  process.exit(0);
}
for (const name of names) {
  const rows = await SUITES[name](opts);
  console.log(`\n## ${name} (sorsajs on ${chosen}, Node ${process.version})\n`);
  // Each suite's peer: tfjs-wasm, ml-matrix for the Jacobi SVD, PyTorch's full SVD for svd-init; rsvd runs alone (an absolute target). gpt has
  // three peers, so its ratios are each one's time over sorsajs's (below 1: the peer is faster).
  const peer = name === 'svd' ? 'ml-matrix' : name === 'rsvd' ? '-' : name === 'gpt' ? `sorsajs (${chosen})` : name === 'svd-init' ? TORCH_SVD : 'tfjs-wasm';
  console.log(markdown(rows, peer));
  const file = `bench-results/${name}-${chosen}.json`;
  await writeFile(file, JSON.stringify({ suite: name, backend: chosen, node: process.version, date: new Date().toISOString(), rows }, null, 2));
}
process.exit(0);
