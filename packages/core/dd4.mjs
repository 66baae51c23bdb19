import gpujs from 'gpu.js';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { WebAssemblyFunctionNode } = require('gpu.js/src/backend/web-assembly/function-node.js');
const orig = WebAssemblyFunctionNode.prototype.stmtVariableDeclaration;
WebAssemblyFunctionNode.prototype.stmtVariableDeclaration = function (n) {
  for (const d of n.declarations) { const info = this.getDeclaration(d.id); console.log(d.id.name, info && info.suggestedType, this.getType(d.init)); }
  return orig.call(this, n);
};
const gpu = new gpujs.GPU({ mode: 'webasm' });
const k = gpu.createKernel(new Function('k0', 'k1', process.argv[2]), { output: [4], argumentTypes: { k0: 'Integer', k1: 'Integer' }, precision: 'single', tactic: 'precision' });
console.log(k(3, 5));
