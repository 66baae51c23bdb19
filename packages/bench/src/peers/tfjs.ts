/**
 * TensorFlow.js on its WebAssembly backend (XNNPACK), the peer most of our suites time beside us.
 * @module
 */
// The full @tensorflow/tfjs bundle, not tfjs-core alone: only it registers the gradient functions
// that training steps need (tfjs-core's own ESM build cannot be imported piecemeal under Node).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

let ready: Promise<typeof tf> | undefined;

/**
 * Loads tfjs-core with the wasm backend selected, once.
 *
 * @example
 * ```ts
 * const tf = await tfjsWasm();
 * tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dataSync();
 * ```
 */
export function tfjsWasm(): Promise<typeof tf> {
  ready ??= (async () => {
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('bench: tfjs could not start its wasm backend');
    await tf.ready();
    return tf;
  })();
  return ready;
}
