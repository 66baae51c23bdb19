import gpujs from 'gpu.js';
const run = (mode, body) => {
  const gpu = new gpujs.GPU({ mode });
  const k = gpu.createKernel(new Function('k0', 'k1', body), { output: [4], argumentTypes: { k0: 'Integer', k1: 'Integer' }, precision: 'single', tactic: 'precision' });
  return Array.from(k(3, 5)).join(',');
};
const P = 'let x0 = 0; x0++; let x1 = 0; x1++;\n';
for (const b of [
  'x1 = (x1 << 28) | (x1 >>> 4); x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 << 28) | (x1 >>> 4); return (x1 ^ x0) & 65535;',
  'x1 = (x1 << 28) | (x1 >>> 4); x1 = x1 ^ 1; return x1 & 65535;',
  'x1 = (x1 << 28) | (x1 >>> 4); x1 = x1 + 1; return x1 & 65535;',
  'x1 = (x1 << 28); x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 << 28) | 0; x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 << 28) | x0; x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 << 28) | (x1 >> 4); x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 >>> 4); x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 >>> 0); x1 = x1 ^ x0; return x1 & 65535;',
  'x1 = (x1 >>> 0); x1 = x1 ^ x0; return x1;',
  'x1 = (x1 >>> 0); x1 = x1 + 3; return x1;',
  'x1 = (x1 >>> 0); x1 = x1 | 0; return x1;',
  'x1 = (x1 >>> 0); return x1;',
  'x1 = (x1 >>> 0) | 0; x1 = x1 ^ x0; return x1;',
]) console.log(b.padEnd(70), run('webasm', P + b), run('cpu', P + b));
