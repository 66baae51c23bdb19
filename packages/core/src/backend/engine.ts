import gpujs from 'gpu.js';
import type { BackendName, DeviceHandle, Payload, PayloadOwner } from './types.js';
import { Storage } from './storage.js';
import { IN_NODE } from '../util/env.js';

type GpuInstance = InstanceType<typeof gpujs.GPU>;
type KernelFn = ((...args: unknown[]) => unknown) & {
  setOutput(o: number[]): void;
  destroy?(): void;
  /** The backend kernel gpu.js actually runs (it may switch it, for example to degrade to cpu). */
  kernel?: { constructor: { mode?: string }; fallbackReason?: string | null; moduleCacheLimit?: number; _shapeOutput?: unknown };
};


/**
 * The `mode` gpu.js reports for a kernel that really ran on each backend: its GL kernels (headless,
 * WebGL, WebGL2) report the family name 'gpu'. A cpu kernel on any other backend is a fallback.
 */
const RAN_AS: Record<BackendName, string[]> = { webgpu: ['webgpu'], webgl: ['gpu', 'headlessgl', 'webgl', 'webgl2'], wasm: ['webasm'], cpu: ['cpu'] };

/** gpu.js mode for each backend: webgl is headless-gl under Node and WebGL2 in browsers. */
const MODES: Record<BackendName, string> = { webgpu: 'webgpu', webgl: IN_NODE ? 'headlessgl' : 'webgl2', wasm: 'webasm', cpu: 'cpu' };

/** webasm compiles one module per combination of argument and output sizes and keeps 8 by default; a training loop sees more shapes than that, so keep more. */
const WASM_MODULE_CACHE = 256;

/** Kernels with at least this many output cells run on worker threads on wasm (measured: below it, the ~170 us worker dispatch costs more than it saves). */
const THREAD_MIN_CELLS = 4096;

/**
 * Queued work finishes only when the program yields to the event loop (an `await`), so a loop that
 * never awaits would queue without end. At this many queued calls, an op first runs the queue's
 * plain kernel calls at once on the calling thread (wasm, cpu: a threaded kernel then runs
 * unthreaded), which bounds the queue of such a loop. Large enough that a program issuing a whole
 * training step before it awaits keeps the worker threads.
 */
const DRAIN_AT = 4096;

/**
 * At this many queued calls, behind work that cannot run without an await (a job, a pipeline, any
 * webgpu kernel), a further op is refused with an Error that says to await: the alternative is
 * memory growing with every op until the process dies.
 */
const QUEUE_LIMIT = 1 << 16;

/** On webgpu the pump yields to the event loop after this many calls (see `Engine.pump`). */
const YIELD_EVERY = 1024;

/** One unit of queued work (see `Engine.enqueue`). */
interface Task {
  /** What it runs, for the error of a full queue. */
  readonly what: string;
  /** Runs it once everything before it has run: returns when done, or a Promise when it finishes later. Never throws: failures go to its results. */
  start(): void | Promise<void>;
  /**
   * For a plain kernel call on wasm and cpu: runs it to the end now, on the calling thread, even
   * when `start` already has it in flight on worker threads (that late result is then dropped).
   * false when it cannot (an input is not ready).
   */
  now?: () => boolean;
  started: boolean;
  done: boolean;
}

/**
 * One kernel's source: a body over `this.thread.x` (a flat output index) with array parameters
 * first and scalar parameters after. `key` must identify the source uniquely; kernels are built
 * once per engine and key, with dynamic output and argument sizes so one build serves every shape.
 */
export interface KernelSource {
  key: string;
  arrays: readonly string[];
  scalars: readonly string[];
  body: string;
  /** Scalars passed as float32; the others are integers (sizes, strides, offsets). */
  floats?: readonly string[];
  /** Heavy kernels (matmul) may run on worker threads on wasm. */
  threaded?: boolean;
  /**
   * 4 for kernels returning `Array(4)` per cell: their payload is the flat cell-major buffer
   * (4 values per cell). Only wasm and cpu take these; gpu.js cannot pass such results on webgpu.
   */
  components?: 4;
  /**
   * For 2-D and 3-D outputs on wasm: return gpu.js's flat buffer (x fastest) instead of nested rows,
   * so the result is one array like every other payload. wasm only (cpu returns nested arrays).
   */
  flat?: boolean;
}

/**
 * A multi-kernel plan compiled with gpu.js `createPipeline`: on wasm the whole plan runs as one fused
 * dispatch over one shared WebAssembly memory (on worker threads when it is big enough), on webgpu
 * as one command encoder where the inputs are host arrays; elsewhere gpu.js walks the plan kernel by
 * kernel (still all kernels). `key` must identify the plan (its kernels, step count and sizes).
 */
export interface PipelineSource {
  key: string;
  /** Number of pipeline arguments: the input arrays, then the scalars. */
  arity: number;
  /** The kernels the plan calls, by name. Their scalars are typed from the values passed. */
  kernels: Readonly<Record<string, Omit<KernelSource, 'key' | 'threaded' | 'components' | 'floats'>>>;
  /**
   * Records the plan, once, at build time: `call(name, output, args)` stands for one kernel call over
   * gpu.js output dims and returns a handle a later call may take as an array argument. `args` holds
   * handles for the pipeline's arguments: the input arrays (`Input`s of the given dims) then the
   * scalars. Returns the handles of the results, which must come from 1-D kernels.
   */
  plan(call: (name: string, output: readonly number[], args: readonly unknown[]) => unknown, args: readonly unknown[]): unknown[];
  /**
   * false: on wasm, run the fused plan on the calling thread even when it is big enough for the
   * worker threads (gpu.js `threads: false`). Plans of many small steps gain: a worker barrier per
   * step cost more than the steps (measured on the Jacobi SVD's inner sweeps).
   */
  threads?: boolean;
}

/**
 * What a job's body (see `Engine.job`) runs its work through. Calls run at once, in order, on the
 * engine's backend; payloads are host arrays or device handles exactly as kernels return them.
 */
export interface JobContext {
  /** Runs one kernel over gpu.js output dims (or a cell count) and returns its result. */
  run(src: KernelSource, output: number | readonly number[], inputs: readonly Payload[], scalars: readonly number[]): Promise<Payload>;
  /** Runs a pipeline; host-array inputs reach it as gpu.js Inputs of `inputDims[i]`. Its results come back to the host. */
  pipeline(src: PipelineSource, inputs: readonly Payload[], inputDims: readonly (readonly number[])[], scalars: readonly number[]): Promise<Float32Array[]>;
  /** Reads a payload to the host (a fresh array). */
  read(p: Payload): Promise<Float32Array>;
  /** Frees an intermediate payload's device memory. */
  free(p: Payload): void;
}

type PipelineFn = ((...a: unknown[]) => Promise<unknown>) & { executorKind: string; backend: string; fallbackReason: string | null; destroy(): unknown };

/**
 * Runs gpu.js kernels for one backend: builds and caches them, and schedules calls so that an op
 * returns at once while its result may still be in flight. Work is strictly ordered: a call waits
 * for everything queued before it, which keeps the dynamic-output kernels (one `setOutput` per call)
 * safe to share and makes the engine's order the program's order.
 */
export class Engine implements PayloadOwner {
  private readonly gpu: GpuInstance;
  private readonly kernels = new Map<string, KernelFn>();
  private readonly pipelines = new Map<string, PipelineFn>();
  /** How the latest pipeline ran (gpu.js `executorKind`: 'fused-threaded', 'fused-sync', 'fused-encoder' or 'generic'), for tests and benchmarks. */
  lastPipelineExecutor = '';
  /** Queued work in order; `tasks[head]` runs first (a head index, so that taking the first is O(1)). */
  private tasks: Task[] = [];
  private head = 0;
  /** Whether a pump (see `pump`) is scheduled or running. */
  private pumping = false;
  private idle: (() => void)[] = [];
  /** Kernel builds, for tests and benchmarks that want to see caching at work. */
  builds = 0;

  constructor(readonly name: BackendName) {
    this.gpu = new gpujs.GPU({ mode: MODES[name] } as never);
  }

  /** Whether kernel calls on this backend return Promises (webgpu always; wasm when threaded). */
  private isAsync(src: KernelSource, outSize: number): boolean {
    if (this.name === 'webgpu') return true;
    return this.name === 'wasm' && !!src.threaded && outSize >= THREAD_MIN_CELLS;
  }

  private kernel(src: KernelSource, threaded: boolean, sizes: string): KernelFn {
    const key = this.cacheKey(src, threaded, sizes);
    let k = this.kernels.get(key);
    if (!k) {
      const fn = new Function(...src.arrays, ...src.scalars, src.body) as (...a: unknown[]) => number;
      // Declared argument types: gpu.js otherwise freezes each argument's type at the first call,
      // and on webgpu a device buffer first then a host array fails (seen on lavapipe).
      const argumentTypes: Record<string, string> = {};
      for (const a of src.arrays) argumentTypes[a] = 'Array';
      for (const a of src.scalars) argumentTypes[a] = src.floats?.includes(a) ? 'Float' : 'Integer';
      k = this.build(fn, {
        argumentTypes,
        ...(src.components ? { returnType: 'Array(4)' } : {}),
        ...(threaded ? { asyncMode: true } : {}),
      });
      // Array(4) and flat results: take gpu.js's flat buffer as it is instead of one subarray per cell or row.
      if ((src.components || src.flat) && k.kernel) k.kernel._shapeOutput = (d: Float32Array) => d;
      this.kernels.set(key, k);
      this.builds++;
    }
    return k;
  }

  /** The sizes part of webgl's cache key (see `cacheKey`); other backends key by source alone and skip building it. */
  private sizes(dims: readonly number[], values: readonly Payload[], inputs?: readonly { readonly size: number }[]): string {
    if (this.name !== 'webgl') return '';
    return sizesOf(dims, inputs ?? values.map((v) => ({ size: payloadSize(v) })), values);
  }

  /**
   * The cache key of a kernel. On webgl it includes the argument and output sizes: gpu.js's GL
   * kernels keep reading arguments with the texture sizes and kinds of their first call (seen as
   * wrong reductions, concats and matmuls once one kernel met several shapes, and as failures when a
   * texture came where a host array came first), so each combination gets its own kernel.
   */
  private cacheKey(src: KernelSource, threaded: boolean, sizes: string): string {
    const base = threaded ? `${src.key}|threads` : src.key;
    return this.name === 'webgl' ? `${base}|${sizes}` : base;
  }

  private call(src: KernelSource, output: number[], arrays: Payload[], scalars: readonly number[], sizes: string, threads = true): Payload | Promise<Payload> {
    const threaded = threads && this.isAsync(src, cells(output)) && this.name === 'wasm';
    const fail = (e: unknown): never => {
      // A kernel that failed to build stays broken inside gpu.js: drop it so a later call rebuilds.
      this.kernels.delete(this.cacheKey(src, threaded, sizes));
      throw new Error(`kernel "${src.key}" failed on ${this.name}: ${(e as Error)?.message ?? String(e)}`);
    };
    const check = (k: KernelFn, r: Payload): Payload => {
      // No silent fallback: gpu.js may degrade a kernel it cannot compile to its cpu mode.
      const mode = k.kernel?.constructor.mode;
      if (mode && !RAN_AS[this.name].includes(mode)) {
        throw new Error(`gpu.js ran it in mode "${mode}" instead of "${MODES[this.name]}" (${k.kernel?.fallbackReason ?? 'no reason given'})`);
      }
      if ((src.components || src.flat) && !(r instanceof Float32Array)) throw new Error('a kernel asked for a flat result did not return its flat buffer');
      return r;
    };
    try {
      const k = this.kernel(src, threaded, sizes);
      k.setOutput(output);
      const r = k(...arrays, ...scalars) as Payload | Promise<Payload>;
      return r instanceof Promise ? r.then((v) => check(k, v)).catch(fail) : check(k, r);
    } catch (e) {
      return fail(e);
    }
  }

  /**
   * Runs `src` over `output` (a cell count, or gpu.js `[x, y, z]` dims for 3-D kernels) and returns
   * the storage of its result. Runs at once when nothing is queued and the kernel is synchronous;
   * otherwise queues behind earlier work (see `enqueue` for how the queue stays bounded).
   */
  run(src: KernelSource, output: number | readonly number[], inputs: readonly Storage[], scalars: readonly number[]): Storage {
    for (const s of inputs) if (s.error) throw s.error;
    const dims = typeof output === 'number' ? [output] : [...output];
    const n = cells(dims);
    const outSize = n * (src.components ?? 1);
    if (n === 0) return Storage.ready(this, 0, new Float32Array(0));
    if (this.queued >= DRAIN_AT) this.drain();
    if (this.queued === 0 && !this.isAsync(src, n) && inputs.every((s) => s.isReady)) {
      const values = inputs.map((s) => s.value!);
      return Storage.ready(this, outSize, this.call(src, dims, values, scalars, this.sizes(dims, values, inputs)) as Payload);
    }
    this.makeRoom(`kernel "${src.key}"`);
    const out = Storage.pendingOn(this, outSize);
    for (const s of inputs) s.retain();
    const task: Task = { what: `kernel "${src.key}"`, started: false, done: false, start: () => undefined };
    const finish = (v: Payload | undefined, e?: unknown): void => {
      if (task.done) {
        // Already run by `now` while this call was in flight on worker threads: drop the late result.
        if (v !== undefined) this.free(v);
        return;
      }
      task.done = true;
      for (const s of inputs) s.release();
      if (e !== undefined) out.fail(e);
      else out.settle(v!);
    };
    const exec = (threads: boolean, values: Payload[]): void | Promise<void> => {
      let r: Payload | Promise<Payload>;
      try {
        r = this.call(src, dims, values, scalars, this.sizes(dims, values, inputs), threads);
      } catch (e) {
        return finish(undefined, e);
      }
      if (r instanceof Promise) return r.then((v) => finish(v), (e: unknown) => finish(undefined, e ?? new Error(`kernel "${src.key}" failed`)));
      finish(r);
    };
    task.start = () => {
      const failed = inputs.find((s) => s.error);
      if (failed) return finish(undefined, failed.error);
      if (inputs.every((s) => s.isReady)) return exec(true, inputs.map((s) => s.value!));
      return Promise.all(inputs.map((s) => s.get())).then(
        (values) => exec(true, values),
        (e: unknown) => finish(undefined, e),
      );
    };
    if (this.name === 'wasm' || this.name === 'cpu') {
      task.now = () => {
        const failed = inputs.find((s) => s.error);
        if (failed) {
          finish(undefined, failed.error);
          return true;
        }
        if (!inputs.every((s) => s.isReady)) return false;
        void exec(false, inputs.map((s) => s.value!));
        return true;
      };
    }
    this.enqueue(task);
    return out;
  }

  /** Queued calls not yet finished. */
  get queued(): number {
    return this.tasks.length - this.head;
  }

  /**
   * Appends a task and makes sure a pump runs the queue. Work queued here finishes only when the
   * program yields to the event loop; `run` drains plain kernel calls when the queue is long (see
   * `DRAIN_AT`), and `makeRoom` refuses an op past `QUEUE_LIMIT`.
   */
  private enqueue(task: Task): void {
    this.tasks.push(task);
    if (!this.pumping) {
      this.pumping = true;
      queueMicrotask(() => void this.pump());
    }
  }

  /** Throws, naming the op, when the queue is full and cannot drain without an await. */
  private makeRoom(what: string): void {
    if (this.queued >= DRAIN_AT) this.drain();
    if (this.queued < QUEUE_LIMIT) return;
    const first = this.tasks[this.head];
    throw new Error(
      `${what} on ${this.name}: ${this.queued} calls are already queued behind ${first.what}, which can only finish when the program ` +
        `awaits (a job or pipeline, or any webgpu kernel, completes in the event loop). A loop that never awaits would grow memory without end: ` +
        `await sync() (or read a value, await t.data()) every few steps.`,
    );
  }

  /** Drops finished tasks from the front of the queue. */
  private popDone(): void {
    while (this.head < this.tasks.length && this.tasks[this.head].done) this.head++;
    if (this.head === this.tasks.length) {
      this.tasks = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.tasks.length) {
      this.tasks = this.tasks.slice(this.head);
      this.head = 0;
    }
  }

  /** Runs queued plain kernel calls at once, in order, until the queue is empty or its first task needs an await. */
  private drain(): void {
    for (;;) {
      this.popDone();
      const t = this.tasks[this.head];
      if (!t || !t.now || !t.now()) break;
    }
    if (this.queued === 0) this.wake();
  }

  /** Runs the queue in order; only one pump runs at a time. A task that finishes later is awaited before the next starts. */
  private async pump(): Promise<void> {
    for (let ran = 1; ; ran++) {
      this.popDone();
      const t = this.tasks[this.head];
      if (!t) break;
      // webgpu: a finished kernel call resolves at once, so the pump could submit tens of thousands of
      // calls in one turn of the event loop, and the device never processes its completions in
      // between (lavapipe crashed the process with 65,000 queued). Give the event loop a turn now and then.
      if (this.name === 'webgpu' && ran % YIELD_EVERY === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      if (!t.started) {
        t.started = true;
        const r = t.start();
        if (r) await r;
      }
      // A drain may have finished it (and more) while it was in flight.
      if (!t.done) throw new Error(`internal: ${t.what} returned without finishing`);
    }
    this.pumping = false;
    this.wake();
  }

  private wake(): void {
    const waiting = this.idle;
    this.idle = [];
    for (const w of waiting) w();
  }

  /**
   * Creates a gpu.js kernel with the settings every sorsajs kernel shares: dynamic sizes (one build
   * serves every shape), device-resident immutable results, single precision, and no silent loop cap.
   */
  private build(fn: (...a: unknown[]) => number, extra: Record<string, unknown>): KernelFn {
    const k = this.gpu.createKernel(fn, {
      output: [1],
      dynamicOutput: true,
      dynamicArguments: true,
      pipeline: true,
      immutable: true,
      // gpu.js caps loops at loopMaxIterations (default 1000), silently: lift the cap.
      loopMaxIterations: 1 << 30,
      tactic: 'precision',
      precision: 'single',
      ...extra,
    } as never) as unknown as KernelFn;
    if (k.kernel && this.name === 'wasm') k.kernel.moduleCacheLimit = WASM_MODULE_CACHE;
    return k;
  }

  private pipeline(src: PipelineSource): PipelineFn {
    let p = this.pipelines.get(src.key);
    if (!p) {
      const kernels: Record<string, KernelFn> = {};
      for (const [name, k] of Object.entries(src.kernels)) {
        const fn = new Function(...k.arrays, ...k.scalars, k.body) as (...a: unknown[]) => number;
        // No declared argument types: step outputs reach the next kernel as gpu.js Inputs of their
        // dims, and the fused executors type each step from the values it binds.
        kernels[name] = this.build(fn, {});
      }
      const call = (name: string, output: readonly number[], args: readonly unknown[]): unknown => {
        const k = kernels[name];
        if (!k) throw new Error(`pipeline "${src.key}": no kernel named "${name}"`);
        k.setOutput([...output]);
        return k(...args);
      };
      // gpu.js reads the orchestration's arity (fn.length) to know how many argument handles to make.
      const names = Array.from({ length: src.arity }, (_, i) => `a${i}`);
      const orchestrate = new Function('plan', 'call', `return function (${names.join(', ')}) { return plan(call, [${names.join(', ')}]); };`)(src.plan, call);
      const settings = src.threads === false ? { threads: false } : undefined;
      p = (this.gpu as unknown as { createPipeline(f: unknown, s?: unknown): PipelineFn }).createPipeline(orchestrate, settings);
      this.pipelines.set(src.key, p);
      this.builds++;
    }
    return p;
  }

  /**
   * Runs a pipeline (see PipelineSource) over `inputs`, each passed as a gpu.js `Input` of
   * `inputDims[i]` when it is a host array, and `scalars`; returns the storages of its results, of
   * `outSizes[i]` elements each. Always queued: gpu.js pipelines are asynchronous on every backend.
   * Throws (through the results) if gpu.js ran any part of the plan on a backend other than this one.
   */
  runPipeline(src: PipelineSource, inputs: readonly Storage[], inputDims: readonly (readonly number[])[], scalars: readonly number[], outSizes: readonly number[]): Storage[] {
    for (const s of inputs) if (s.error) throw s.error;
    return this.queueAsync(`pipeline "${src.key}"`, inputs, outSizes, (values) => this.execPipeline(src, values, inputDims, scalars));
  }

  /** Queues work that only finishes asynchronously (a pipeline, a job): its results are settled when it is done. */
  private queueAsync(what: string, inputs: readonly Storage[], outSizes: readonly number[], body: (values: Payload[]) => Promise<Payload[]>): Storage[] {
    this.makeRoom(what);
    const outs = outSizes.map((size) => Storage.pendingOn(this, size));
    for (const s of inputs) s.retain();
    const task: Task = {
      what,
      started: false,
      done: false,
      start: async () => {
        try {
          const values = await Promise.all(inputs.map((s) => s.get()));
          const got = await body(values);
          if (got.length !== outs.length) throw new Error(`internal: ${what} returned ${got.length} results for ${outs.length} sizes`);
          outs.forEach((o, i) => o.settle(got[i]));
        } catch (e) {
          for (const o of outs) o.fail(e);
        } finally {
          task.done = true;
          for (const s of inputs) s.release();
        }
      },
    };
    this.enqueue(task);
    return outs;
  }

  /** Runs a pipeline over payloads at once (the caller holds the queue); host arrays go in as gpu.js Inputs of `inputDims[i]`. */
  private async execPipeline(src: PipelineSource, values: readonly Payload[], inputDims: readonly (readonly number[])[], scalars: readonly number[]): Promise<Float32Array[]> {
    const args = values.map((v, i) => (v instanceof Float32Array ? new gpujs.Input(v as never, [...inputDims[i]] as never) : v));
    const p = this.pipeline(src);
    let out: unknown;
    try {
      out = await p(...args, ...scalars);
    } catch (e) {
      throw new Error(`pipeline "${src.key}" failed on ${this.name}: ${(e as Error)?.message ?? String(e)}`);
    }
    this.lastPipelineExecutor = p.executorKind;
    if (p.backend && !RAN_AS[this.name].includes(p.backend)) {
      throw new Error(`pipeline "${src.key}": gpu.js ran it on "${p.backend}" instead of "${MODES[this.name]}" (${p.fallbackReason ?? 'no reason given'})`);
    }
    const list = out as unknown[];
    return list.map((v) => (v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>)));
  }

  /**
   * Runs an asynchronous multi-kernel job in the engine's order: `body` gets the inputs' payloads and
   * a context whose calls run kernels and pipelines at once (the job holds the queue, so nothing else
   * interleaves) and may read values back between them, which is how an iteration decides on the
   * host whether to go on (a sweep loop that stops at convergence) while the API stays synchronous.
   * Returns the storages of `body`'s results, of `outSizes[i]` elements each; later work queues behind
   * the job. The body frees the intermediate payloads it made (`ctx.free`); its inputs are not its own.
   * `name` (the op) names the job in errors.
   */
  job(inputs: readonly Storage[], outSizes: readonly number[], body: (ctx: JobContext, inputs: Payload[]) => Promise<Payload[]>, name = 'job'): Storage[] {
    for (const s of inputs) if (s.error) throw s.error;
    const ctx: JobContext = {
      run: async (src, output, arrays, scalars) => {
        const dims = typeof output === 'number' ? [output] : [...output];
        return await this.call(src, dims, [...arrays], scalars, this.sizes(dims, arrays));
      },
      pipeline: (src, arrays, inputDims, scalars) => this.execPipeline(src, arrays, inputDims, scalars),
      read: (p) => this.read(p),
      free: (p) => this.free(p),
    };
    return this.queueAsync(`a job "${name}"`, inputs, outSizes, (values) => body(ctx, values));
  }

  /** Reads a payload back to the host as a fresh Float32Array. */
  async read(p: Payload): Promise<Float32Array> {
    if (p instanceof Float32Array) return p.slice();
    const arr = await p.toArray();
    return arr instanceof Float32Array ? arr : Float32Array.from(arr as ArrayLike<number>);
  }

  /** Frees a payload's device memory (host arrays are left to the garbage collector). */
  free(p: Payload): void {
    if (!(p instanceof Float32Array)) (p as DeviceHandle).delete();
  }

  /** Waits until every queued kernel has finished. */
  async sync(): Promise<void> {
    while (this.queued > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Destroys every kernel and the gpu.js instance. */
  destroy(): void {
    for (const k of this.kernels.values()) k.destroy?.();
    this.kernels.clear();
    for (const p of this.pipelines.values()) p.destroy();
    this.pipelines.clear();
    (this.gpu as unknown as { destroy(): unknown }).destroy();
  }
}

function cells(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Output dims, and each input's size and kind (h: host array, d: device handle), for a cache key. */
function sizesOf(dims: readonly number[], inputs: readonly { readonly size: number }[], values: readonly Payload[]): string {
  return `${dims.join('x')}:${inputs.map((s, i) => `${values[i] instanceof Float32Array ? 'h' : 'd'}${s.size}`).join(',')}`;
}

/** A payload's element count, for webgl's cache key (device handles report their own size). */
function payloadSize(p: Payload): number {
  if (p instanceof Float32Array) return p.length;
  const o = p as unknown as { size?: number | number[]; output?: number[] };
  const dims = Array.isArray(o.output) ? o.output : Array.isArray(o.size) ? o.size : [Number(o.size ?? 0)];
  return cells(dims);
}
