/**
 * `@sorsajs/core/internal`: kernel-level access for the sibling packages (`@sorsajs/linalg`,
 * `@sorsajs/sorsa`): launching custom kernels, gpu.js pipelines and jobs over tensors, and the
 * argument checks every package shares (`tensor/checks.ts`). A subpath of its own, so that the
 * package root exports only the public API; not part of that API, and free to change with any
 * release.
 * @internal
 * @module
 */
import type { JobContext, PipelineSource } from './backend/engine.js';
import type { Payload } from './backend/types.js';
import { engine } from './backend/registry.js';
import { webgpuTransfers } from './backend/node-webgpu.js';
import { webgpuBatches as batches } from './backend/webgpu-batch.js';
import { Tensor, storageOf } from './tensor/tensor.js';

export type { JobContext, KernelSource, PipelineSource } from './backend/engine.js';
export type { Payload } from './backend/types.js';
import { storagesOf } from './ops/operand.js';
import { checkLaunch } from './autodiff/tape.js';

export { launch, launchDims, launchParts } from './ops/operand.js';
export { recording, untracked } from './autodiff/tape.js';
export { engine as currentEngine, probeWide } from './backend/registry.js';
export { divmod } from './kernels/index-math.js';
export { bakeScalars } from './kernels/bake.js';
export { matmulInJob, rowMajor, type JobMatmulDims } from './ops/matmul-job.js';
export {
  checkFiniteNumber,
  checkFiniteValues,
  checkInteger,
  checkMatrix,
  checkPositiveNumber,
  checkTensor,
  describe,
  firstNonFinite,
  hostValues,
  mustBe,
  type IntegerRange,
  type MatrixCheck,
} from './tensor/checks.js';
export { fmt as fmtShape } from './util/shape-math.js';

/**
 * Runs a pipeline over tensor inputs (each seen by the plan as a gpu.js Input of `inputDims[i]`) and
 * scalars; returns one float32 tensor per result, of `outShapes[i]`. Like `launch`, it throws when an
 * input is being differentiated outside a recorded op or `untracked` (no silent zero gradient).
 */
export function launchPipeline(
  op: string,
  src: PipelineSource,
  inputs: readonly Tensor[],
  inputDims: readonly (readonly number[])[],
  scalars: readonly number[],
  outShapes: readonly (readonly number[])[],
): Tensor[] {
  const eng = engine();
  const storages = storagesOf(op, inputs);
  checkLaunch(op, inputs);
  const sizes = outShapes.map((sh) => sh.reduce((a, b) => a * b, 1));
  return eng.runPipeline(src, storages, inputDims, scalars, sizes).map((s, i) => new Tensor(s, outShapes[i], 'float32'));
}

/**
 * Runs an asynchronous multi-kernel job (core's `Engine.job`) over tensor inputs and returns one
 * float32 tensor per result, of `outShapes[i]`, at once; their values arrive when the job is done.
 * The body runs kernels through `ctx` and may read values back between them to decide what to run
 * next (an iteration that stops at convergence), which a fixed pipeline cannot. Like `launch`, it
 * throws when an input is being differentiated outside a recorded op or `untracked`.
 */
export function launchJob(
  op: string,
  inputs: readonly Tensor[],
  outShapes: readonly (readonly number[])[],
  body: (ctx: JobContext, inputs: Payload[]) => Promise<Payload[]>,
): Tensor[] {
  const eng = engine();
  const storages = storagesOf(op, inputs);
  checkLaunch(op, inputs);
  const sizes = outShapes.map((sh) => sh.reduce((a, b) => a * b, 1));
  return eng.job(storages, sizes, body, op).map((s, i) => new Tensor(s, outShapes[i], 'float32'));
}

/** How the latest pipeline ran on the current backend (gpu.js `executorKind`). */
export function lastPipelineExecutor(): string {
  return engine().lastPipelineExecutor;
}

/**
 * Whether a tensor's value is computed: false while the kernel (or job) making it is still queued or
 * in flight. For tests that check work really is asynchronous.
 */
export function isComputed(t: Tensor): boolean {
  return storageOf(t).isReady;
}

/**
 * The recycled host arrays of the current backend (wasm results; see backend/pool.ts): bytes held
 * idle and how many results were written into a recycled array, for tests that check recycling.
 *
 * @example
 * ```ts
 * const { reused } = poolStats();
 * ```
 */
export function poolStats(): { bytes: number; reused: number } {
  const p = engine().pool;
  return { bytes: p.bytes, reused: p.reused };
}

/**
 * Kernel launches on the current backend since it was initialized (jobs' kernels included, a
 * pipeline counting as one), for benchmarks that report launches per step.
 *
 * @example
 * ```ts
 * const before = launches();
 * step();
 * await sync();
 * console.log(launches() - before); // launches per step
 * ```
 */
export function launches(): number {
  return engine().launches;
}

/**
 * wasm kernel runs that handed cells to worker threads since the backend was initialized (0 on
 * other backends, and on wasm without threads), for tests that check which kernels run threaded;
 * exact when runs are awaited one at a time (kernels queued together may share a count).
 *
 * @example
 * ```ts
 * const before = workerRuns();
 * await matmul(a, b).data();
 * console.log(workerRuns() - before); // 1 when the product ran on the workers
 * ```
 */
export function workerRuns(): number {
  return engine().workerRuns;
}

/**
 * Host <-> device transfers so far, for tests and benchmarks that check a loop keeps its values on
 * the device. On webgpu they are counted on the device and its queue, below gpu.js, for the whole
 * process (every WebGPU device gpu.js asked for): `reads` (device -> host readbacks: `data()`,
 * pipeline and job results, any buffer mapped for reading) and `uploads` (host -> device: a host
 * array passed to a kernel, a constant, any data written into a storage buffer), with their bytes;
 * `params` and `paramBytes` count the kernels' uniform parameter blocks (dims and scalar arguments,
 * written once per launch, as a launch's own arguments). `counted` is false on the other backends,
 * whose counts stay 0: cpu and wasm compute in host memory, and webgl's textures are not counted.
 *
 * @example
 * ```ts
 * const before = transfers();
 * step();
 * await sync();
 * const after = transfers();
 * console.log(after.reads - before.reads, after.uploads - before.uploads); // per step
 * ```
 */
export function transfers(): { counted: boolean; reads: number; readBytes: number; uploads: number; uploadBytes: number; params: number; paramBytes: number } {
  return { counted: engine().name === 'webgpu', ...webgpuTransfers };
}

/**
 * WebGPU command encoders gpu.js has finished so far (`launches`: its kernel launches, and the
 * copies of its readbacks) and the command buffers they were submitted in (`submits`), for the whole
 * process: in Node they are encoded into one shared command buffer until something reads a result,
 * 256 have gathered, or the host is idle (backend/webgpu-batch.ts). Both stay 0 on the other
 * backends and in browsers.
 *
 * @example
 * ```ts
 * const before = webgpuBatches();
 * await step();
 * const after = webgpuBatches();
 * console.log((after.launches - before.launches) / (after.submits - before.submits)); // launches a submit
 * ```
 */
export function webgpuBatches(): { launches: number; submits: number } {
  return { ...batches };
}
