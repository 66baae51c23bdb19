import gpujs from 'gpu.js';
import fs from 'node:fs';
const body = fs.readFileSync(process.argv[2], 'utf8');
const scalars = (process.argv[3] ?? 'k0,k1').split(',');
const n = +(process.argv[4] ?? 8);
for (const mode of ['webasm', 'cpu']) {
const gpu = new gpujs.GPU({ mode });
const fn = new Function(...scalars, body);
const argumentTypes = {}; for (const s of scalars) argumentTypes[s] = 'Integer';
const k = gpu.createKernel(fn, { output: [n], argumentTypes, dynamicOutput: true, dynamicArguments: true, pipeline: true, immutable: true, precision: 'single', tactic: 'precision' });
const r = k(...scalars.map(() => 3));
console.log(mode, k.kernel.constructor.mode, r);
}
