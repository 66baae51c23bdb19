import gpujs from 'gpu.js';
import { createRequire } from 'node:module';
const require = createRequire('/tmp/wabt/');
const wabt = await require('/tmp/wabt/node_modules/wabt')();
const bodies = [];
const OrigModule = WebAssembly.Module;
const origCompile = WebAssembly.compile; const origInst = WebAssembly.instantiate;
globalThis.__bytes = [];
WebAssembly.Module = function (b) { __bytes.push(b); return new OrigModule(b); };
WebAssembly.Module.prototype = OrigModule.prototype;
const gpu = new gpujs.GPU({ mode: 'webasm' });
const body = process.argv[2];
const k = gpu.createKernel(new Function('k0', 'k1', body), { output: [4], argumentTypes: { k0: 'Integer', k1: 'Integer' }, precision: 'single', tactic: 'precision' });
console.log(k(3, 5), __bytes.length, WebAssembly.Module === OrigModule);
for (const b of __bytes) { const m = wabt.readWasm(new Uint8Array(b), { readDebugNames: true }); m.generateNames(); m.applyNames(); const t = m.toText({}); console.log(t.slice(0, 6000)); }
