/**
 * `npm start`: a short tour of @sorsajs/core on this machine, until the sorsa command line replaces it.
 * Picks a backend, lists the others, runs a few ops, and times a matmul.
 * @module
 */
import { availableBackends, backendReasons, init, matmul, memory, softmaxDemo, tensor } from './demo-support.js';

const chosen = await init({ backend: (process.env.SORSA_BACKEND as never) ?? 'auto' });
console.log(`sorsajs core demo — backend: ${chosen} (Node ${process.version})`);
const reasons = await backendReasons();
for (const name of await availableBackends()) console.log(`  available: ${name}`);
for (const [name, why] of Object.entries(reasons)) if (why) console.log(`  unavailable: ${name} — ${why}`);

const x = tensor([
  [1, 2, 3],
  [4, 5, 6],
]);
const probs = softmaxDemo(x);
console.log('softmax over rows of [[1,2,3],[4,5,6]]:', await probs.toArray());
x.dispose();
probs.dispose();

for (const n of [256, 512]) {
  const a = tensor(Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), [n, n]);
  const b = tensor(Float32Array.from({ length: n * n }, (_, i) => Math.cos(i)), [n, n]);
  const warm = matmul(a, b); // the first call compiles the kernel for this shape
  await warm.data();
  warm.dispose();
  const runs = 5;
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) {
    const c = matmul(a, b);
    await c.data();
    c.dispose();
  }
  const ms = (performance.now() - t0) / runs;
  console.log(`matmul ${n}x${n}: ${ms.toFixed(1)} ms, ${((2 * n ** 3) / ms / 1e6).toFixed(2)} GFLOP/s`);
  a.dispose();
  b.dispose();
}
console.log('live memory:', memory());
process.exit(0);
