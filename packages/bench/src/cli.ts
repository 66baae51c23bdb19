#!/usr/bin/env node
/**
 * `npm run bench -- [suite...] [--backend NAME] [--time MS] [--sizes 256,512]`
 *
 * Runs the named suites (default: all) on one backend, prints a markdown table per suite with
 * each case's time relative to the peer, and writes the rows as JSON under bench-results/.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as sj from '@sorsajs/core';
import type { BackendRequest } from '@sorsajs/core';
import { elementwiseSuite, matmulSuite } from './suites/matmul.js';
import { mlpSuite } from './suites/mlp.js';
import { svdSuite } from './suites/svd.js';
import { rsvdSuite } from './suites/rsvd.js';
import { markdown, type Row } from './report.js';

const SUITES: Record<string, (o: { time?: number; sizes?: number[] }) => Promise<Row[]>> = {
  matmul: matmulSuite,
  elementwise: elementwiseSuite,
  mlp: mlpSuite,
  svd: svdSuite,
  rsvd: rsvdSuite,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { backend: { type: 'string', default: 'wasm' }, time: { type: 'string' }, sizes: { type: 'string' } },
});
const names = positionals.length ? positionals : Object.keys(SUITES);
for (const n of names) if (!SUITES[n]) throw new Error(`bench: unknown suite "${n}" (have: ${Object.keys(SUITES).join(', ')})`);

const chosen = await sj.init({ backend: values.backend as BackendRequest });
const opts = {
  time: values.time ? Number(values.time) : undefined,
  sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
};
await mkdir('bench-results', { recursive: true });
for (const name of names) {
  const rows = await SUITES[name](opts);
  console.log(`\n## ${name} (sorsajs on ${chosen}, Node ${process.version})\n`);
  // Each suite's peer: tfjs-wasm, ml-matrix for the Jacobi SVD; rsvd runs alone (an absolute target).
  console.log(markdown(rows, name === 'svd' ? 'ml-matrix' : name === 'rsvd' ? '-' : 'tfjs-wasm'));
  const file = `bench-results/${name}-${chosen}.json`;
  await writeFile(file, JSON.stringify({ suite: name, backend: chosen, node: process.version, date: new Date().toISOString(), rows }, null, 2));
}
process.exit(0);
