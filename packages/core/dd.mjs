import gpujs from 'gpu.js';
import fs from 'node:fs';
let lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
const run = (mode, body) => {
  try {
  const gpu = new gpujs.GPU({ mode });
  const k = gpu.createKernel(new Function('k0', 'k1', body), { output: [8], argumentTypes: { k0: 'Integer', k1: 'Integer' }, precision: 'single', tactic: 'precision' });
  return Array.from(k(3, 5)).join(',');
  } catch (e) { return 'ERR'; }
};
const fails = (ls) => { const b = ls.join('\n'); const a = run('webasm', b), c = run('cpu', b); return a !== 'ERR' && c !== 'ERR' && a !== c; };
console.log('fails initially', fails(lines));
let changed = true;
while (changed) { changed = false;
  for (let i = 0; i < lines.length - 1; i++) { if (lines[i].includes("++") || lines[i].startsWith("let")) continue; const t = lines.slice(0, i).concat(lines.slice(i + 1)); if (fails(t)) { lines = t; changed = true; i--; } }
}
console.log(lines.join('\n'));
const b = lines.join('\n'); console.log(run('webasm', b)); console.log(run('cpu', b));
