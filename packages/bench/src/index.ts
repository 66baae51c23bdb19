/**
 * `@sorsajs/bench`: tinybench suites that time sorsajs against peers in the same process.
 * Run them with `npm run bench` (see cli.ts for the options). Guides:
 * [benchmarks](../../../docs/guides/benchmarks.md), [performance](../../../docs/guides/performance.md).
 *
 * @example
 * ```ts
 * import { matmulSuite, markdown } from '@sorsajs/bench';
 * console.log(markdown(await matmulSuite({ sizes: [512] }), 'tfjs-wasm'));
 * ```
 * @module
 */
export { matmulSuite, elementwiseSuite } from './suites/matmul.js';
export type { SuiteOptions } from './suites/matmul.js';
export { mlpSuite } from './suites/mlp.js';
export { gptSuite, GPT_STEP } from './suites/gpt.js';
export type { GptStepShapes } from './suites/gpt.js';
export { svdSuite, svdAccuracy, accuracyMarkdown } from './suites/svd.js';
export type { AccuracyRow } from './suites/svd.js';
export { rsvdSuite } from './suites/rsvd.js';
export { svdInitSuite, TORCH_SVD } from './suites/svd-init.js';
export { modelsSuite, GPT2_SMALL } from './suites/models.js';
export { rowsOf, markdown } from './report.js';
export { progress, runBench, setProgress } from './progress.js';
export type { Row } from './report.js';
export { tfjsWasm } from './peers/tfjs.js';
