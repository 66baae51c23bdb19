/**
 * The kernel cache of one backend: builds gpu.js kernels and pipelines from their sources, once per
 * source (and, on webgl, per argument sizes), calls them, and checks that gpu.js really ran them on
 * this backend. What runs when is the engine's business (engine.ts); this module only makes and calls.
 * @module
 */
import gpujs from 'gpu.js';
import type { BackendName, Payload } from './types.js';
import { IN_NODE } from '../util/env.js';
import { MIN_LENGTH as SEAL_MIN, type ArrayPool } from './pool.js';

type GpuInstance = InstanceType<typeof gpujs.GPU>;
type KernelFn = ((...args: unknown[]) => unknown) & {
  setOutput(o: number[]): void;
  destroy?(): void;
  /** The backend kernel gpu.js actually runs (it may switch it, for example to degrade to cpu). */
  kernel?: {
    constructor: { mode?: string };
    fallbackReason?: string | null;
    /** The declared argument types the instance was built for. */
    argumentTypes?: readonly string[];
    moduleCacheLimit?: number;
    _shapeOutput?: unknown;
    outputTarget?: Float32Array | null;
    /** The gpu.js patch's entry slot for the next call (see `KernelCache.slotFor`). */
    entrySlot?: number;
    outputStore?: KernelSource['store'];
    threadMinCells?: number;
    /** The gpu.js patch's worker pool of a threaded wasm kernel (made at its first threaded run). */
    _pool?: { dispatchCount: number } | null;
  };
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

/** Arguments from this many elements (1 MiB) get an entry slot of their own (`KernelCache.slotFor`). */
const SLOT_MIN = 1 << 18;

/** Entry slots per kernel and size: two, for A and Aᵀ of a power iteration. */
const SLOTS = 2;

/** The gpu.js patch's seal registry of wasm kernel arguments (see `KernelCache.seal`). */
const WASM_SEAL = (gpujs as unknown as { WebAssemblyKernel: { sealArray(a: Float32Array): void; unsealArray(a: Float32Array): void; isSealed(a: Float32Array): boolean } }).WebAssemblyKernel;

/** Copies a host array into a device buffer of its own (`KernelCache.upload`). */
const UPLOAD = { key: 'upload', arrays: ['a'], scalars: [], body: 'return a[this.thread.x];' } as const;

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
   * With `threaded`: threads engage from this many output cells (default 4096, gpu.js's own
   * threshold). Below 4096 (cells that each do much work, such as a matmul tile over a long k) it
   * is also the least number of cells a thread takes (the gpu.js patch's `threadMinCells`).
   */
  threadFrom?: number;
  /**
   * n for kernels returning `Array(n)` per cell: their payload is the flat cell-major buffer
   * (n values per cell). Only wasm and cpu take `Array(4)`; gpu.js cannot pass such results on
   * webgpu. 16 (the wasm matmul's tile) is wasm only: the gpu.js patch's wide returns. 3 is wasm
   * only, with a `store` (Adam's moments and parameter of one leaf, as three arrays); so is 2 (the
   * Jacobi SVD's rotation cosine and sine of one column, into two halves of one array).
   */
  components?: 2 | 3 | 4 | 16;
  /**
   * For 2-D and 3-D outputs on wasm: return gpu.js's flat buffer (x fastest) instead of nested rows,
   * so the result is one array like every other payload. wasm only (cpu returns nested arrays).
   */
  flat?: boolean;
  /**
   * wasm only, with `components`: where each cell's values go. Value c of cell (x, y, z) is stored
   * at `x * strides[0] + y * strides[1] + z * strides[2] + offsets[c]` of the flat result instead
   * of cell-major (the gpu.js patch's `outputStore`; strides[0] must be 1, so a SIMD quad stores
   * each value of its 4 lanes as one vector). The addresses must cover the result exactly once.
   * The wasm matmul writes its 4 x 16 tiles straight into row-major C this way.
   */
  store?: { strides: readonly [1, number, number]; offsets: readonly number[] };
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
  kernels: Readonly<Record<string, Omit<KernelSource, 'key' | 'threaded' | 'threadFrom' | 'components' | 'floats' | 'store'>>>;
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

type PipelineFn = ((...a: unknown[]) => Promise<unknown>) & { executorKind: string; backend: string; fallbackReason: string | null; destroy(): unknown };

/**
 * The kernels and pipelines built for one backend, by source key. Every build shares the settings of
 * `build`; a call that gpu.js ran in another mode (its silent cpu fallback) is an error.
 */
export class KernelCache {
  private readonly gpu: GpuInstance;
  private readonly kernels = new Map<string, KernelFn>();
  private readonly pipelines = new Map<string, PipelineFn>();
  /**
   * The backend kernel instances `kernel` built and configured. gpu.js replaces an instance with a
   * new one when the arguments of a call do not fit the declared types (its kernel switch); the new
   * one lacks what was set on the old (`outputStore`, `threadMinCells`, the flat `_shapeOutput`,
   * `moduleCacheLimit`), and some of those change where values land. On wasm, where those settings
   * live, `call` refuses such a run (the GL backends switch for textures by design).
   */
  private readonly configured = new WeakSet<object>();
  /** wasm: per kernel, the big argument each entry slot last held and when it was last used (see `slotFor`). */
  private readonly slots = new WeakMap<KernelFn, { held: (WeakRef<Float32Array> | undefined)[]; order: number[] }>();
  /** How the latest pipeline ran (gpu.js `executorKind`: 'fused-threaded', 'fused-sync', 'fused-encoder' or 'generic'), for tests and benchmarks. */
  lastPipelineExecutor = '';
  /** Kernel builds, for tests and benchmarks that want to see caching at work. */
  builds = 0;
  /** Kernel calls (launches), for benchmarks that report launches per step. */
  calls = 0;
  /** wasm runs that handed cells to worker threads (the patch's pool dispatched), for tests that run kernels one at a time. */
  workerRuns = 0;

  constructor(
    readonly name: BackendName,
    /** Where wasm results are written (recycled arrays; see pool.ts). */
    private readonly pool?: ArrayPool,
  ) {
    this.gpu = new gpujs.GPU({ mode: MODES[name] } as never);
  }

  /** Whether kernel calls on this backend return Promises (webgpu always; wasm when threaded). */
  isAsync(src: KernelSource, outSize: number): boolean {
    if (this.name === 'webgpu') return true;
    return this.name === 'wasm' && !!src.threaded && outSize >= (src.threadFrom ?? THREAD_MIN_CELLS);
  }

  /** The sizes part of webgl's cache key (see `cacheKey`); other backends key by source alone and skip building it. */
  sizes(dims: readonly number[], values: readonly Payload[], inputs?: readonly { readonly size: number }[]): string {
    if (this.name !== 'webgl') return '';
    return sizesOf(dims, inputs ?? values.map((v) => ({ size: payloadSize(v) })), values);
  }

  /**
   * Calls kernel `src` over gpu.js output dims `output` now, building it first if needed; returns its
   * payload, or a Promise of it (see `isAsync`). `threads: false` keeps a wasm kernel on the calling
   * thread. Throws, naming the kernel, when it fails or ran in another mode than this backend's.
   */
  call(src: KernelSource, output: number[], arrays: Payload[], scalars: readonly number[], sizes: string, threads = true): Payload | Promise<Payload> {
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
      if (this.name === 'wasm' && k.kernel && !this.configured.has(k.kernel)) {
        throw new Error(
          `gpu.js switched it to a new kernel instance for argument types [${(k.kernel.argumentTypes ?? []).join(', ')}], which lacks sorsajs's settings for it (the call's arguments did not fit the declared types)`,
        );
      }
      if ((src.components || src.flat) && !(r instanceof Float32Array)) throw new Error('a kernel asked for a flat result did not return its flat buffer');
      return r;
    };
    try {
      const k = this.kernel(src, threaded, sizes);
      this.calls++;
      k.setOutput(output);
      // A wasm result that comes back as gpu.js's flat buffer is copied into a recycled array
      // (the gpu.js patch's `outputTarget`), not a fresh one.
      if (this.name === 'wasm' && this.pool && k.kernel && (output.length === 1 || src.flat || src.components)) {
        k.kernel.outputTarget = this.pool.take(cells(output) * (src.components ?? 1));
      }
      if (this.name === 'wasm' && k.kernel) k.kernel.entrySlot = this.slotFor(k, arrays);
      const dispatched = k.kernel?._pool?.dispatchCount ?? 0;
      const r = k(...arrays, ...scalars) as Payload | Promise<Payload>;
      if (!(r instanceof Promise)) return check(k, r);
      return r
        .then((v) => {
          // The pool dispatches when the run's turn comes; exact for runs awaited one at a time.
          if ((k.kernel?._pool?.dispatchCount ?? 0) > dispatched) this.workerRuns++;
          return check(k, v);
        })
        .catch(fail);
    } catch (e) {
      return fail(e);
    }
  }

  /**
   * wasm: promises gpu.js that `a` stays as it is until `unseal(a)` (the gpu.js patch's
   * `sealArray`), so that a kernel whose WebAssembly memory already holds it does not copy it in
   * again: a weight read by the same matmul at every step, the matrix of a power iteration. Arrays
   * below the pool's `MIN_LENGTH` are left alone (their copy costs less than the bookkeeping). A no-op on
   * other backends, whose kernels do not copy host arrays into a memory of their own.
   */
  seal(a: Float32Array): void {
    if (this.name === 'wasm' && a.length >= SEAL_MIN) WASM_SEAL.sealArray(a);
  }

  /** Ends `seal`'s promise: `a` goes back to the pool and will be written. */
  unseal(a: Float32Array): void {
    if (this.name === 'wasm' && a.length >= SEAL_MIN) WASM_SEAL.unsealArray(a);
  }

  /**
   * wasm: the entry slot (the gpu.js patch's `entrySlot`: an instance of the kernel's module with a
   * WebAssembly memory of its own) for a call on `arrays`. A kernel copies its arguments into its
   * memory at every call unless a sealed argument is already there (see `seal`); a power iteration
   * alternates A and Aᵀ through one matmul, so each would evict the other and both be copied every
   * time (10 ms of a 768 x 768 randomized SVD). The first argument of at least `SLOT_MIN` elements
   * and sealed picks the slot that last held it, else the least recently used of `SLOTS`; other
   * calls use slot 0 (a small copy costs less than another module's memory, and an unsealed
   * argument is copied whatever the slot).
   */
  private slotFor(k: KernelFn, arrays: readonly Payload[]): number {
    const big = arrays.find((a): a is Float32Array => a instanceof Float32Array && a.length >= SLOT_MIN && WASM_SEAL.isSealed(a));
    if (!big) return 0;
    let slots = this.slots.get(k);
    // `order`: the slots, least recently used first.
    if (!slots) this.slots.set(k, (slots = { held: [], order: Array.from({ length: SLOTS }, (_, i) => i) }));
    let pick = slots.held.findIndex((r) => r?.deref() === big);
    if (pick < 0) {
      pick = slots.order[0];
      slots.held[pick] = new WeakRef(big);
    }
    slots.order = [...slots.order.filter((i) => i !== pick), pick];
    return pick;
  }

  /**
   * webgpu: a device copy of a host array, made by a copy kernel (gpu.js has no other way to make a
   * buffer handle). Not counted as a launch: it is the upload gpu.js otherwise makes inside every
   * kernel call that gets a host array, and `launches()` counts computing kernels.
   */
  upload(v: Float32Array): Promise<Payload> {
    const calls = this.calls;
    try {
      return Promise.resolve(this.call(UPLOAD, [v.length], [v], [], ''));
    } finally {
      this.calls = calls;
    }
  }

  /** Runs a pipeline over payloads now (the caller holds the queue); host arrays go in as gpu.js Inputs of `inputDims[i]`. */
  async runPipeline(src: PipelineSource, values: readonly Payload[], inputDims: readonly (readonly number[])[], scalars: readonly number[]): Promise<Float32Array[]> {
    const args = values.map((v, i) => (v instanceof Float32Array ? new gpujs.Input(v as never, [...inputDims[i]] as never) : v));
    const p = this.pipeline(src);
    this.calls++;
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
        ...(src.components ? { returnType: `Array(${src.components})` } : {}),
        ...(threaded ? { asyncMode: true } : {}),
      });
      // gpu.js's own gate is 4096 cells, and as many cells a participating thread; a kernel with
      // fewer, longer cells lowers both.
      if (threaded && src.threadFrom !== undefined && src.threadFrom < THREAD_MIN_CELLS && k.kernel) k.kernel.threadMinCells = src.threadFrom;
      if (src.store && k.kernel) {
        if (this.name !== 'wasm') throw new Error(`kernel "${src.key}": a store placement runs on wasm only`);
        k.kernel.outputStore = src.store;
      }
      // Array(4) and flat results: take gpu.js's flat buffer as it is instead of one subarray per cell or row.
      if ((src.components || src.flat) && k.kernel) k.kernel._shapeOutput = (d: Float32Array) => d;
      else if (this.name === 'wasm' && k.kernel) {
        // A 1-D result as the buffer itself, not a whole-length subarray view of it: the pool knows
        // its arrays by identity (see pool.ts).
        const inner = k.kernel;
        const shape = inner._shapeOutput as (d: Float32Array, output: number[], components: number) => unknown;
        inner._shapeOutput = (d: Float32Array, output: number[], components: number) => (output.length === 1 && components === 1 ? d : shape.call(inner, d, output, components));
      }
      if (k.kernel) this.configured.add(k.kernel);
      this.kernels.set(key, k);
      this.builds++;
    }
    return k;
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

  /** Destroys every kernel and pipeline and the gpu.js instance. */
  destroy(): void {
    for (const k of this.kernels.values()) k.destroy?.();
    this.kernels.clear();
    for (const p of this.pipelines.values()) p.destroy();
    this.pipelines.clear();
    (this.gpu as unknown as { destroy(): unknown }).destroy();
  }
}

/** The number of cells of gpu.js output dims. */
export function cells(dims: readonly number[]): number {
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

