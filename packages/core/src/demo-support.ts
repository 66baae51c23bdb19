/**
 * What the demo uses: the public API, plus a softmax written from core ops (nn.softmax comes with
 * the functional-core work).
 * @module
 */
import { exp, sub, max, sum, div, type Tensor } from './index.js';
export { availableBackends, backendReasons, init, matmul, memory, tensor } from './index.js';

/** Row softmax from core ops: exp(x - max) / sum. */
export function softmaxDemo(x: Tensor): Tensor {
  const m = max(x, -1, true);
  const shifted = sub(x, m);
  const e = exp(shifted);
  const z = sum(e, -1, true);
  const out = div(e, z);
  for (const t of [m, shifted, e, z]) t.dispose();
  return out;
}
