/**
 * The engine of one backend: the queue that runs kernel calls, pipelines and jobs in program order
 * while ops return at once. Kernels are built and called by kernel-cache.ts.
 * @module
 */
import type { BackendName, DeviceHandle, Payload, PayloadOwner } from './types.js';
import { Storage } from './storage.js';
import { KernelCache, cells, type KernelSource, type PipelineSource } from './kernel-cache.js';
import { ArrayPool } from './pool.js';

export type { KernelSource, PipelineSource } from './kernel-cache.js';

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

/**
 * On webgpu, host arrays of at most this many elements (the constants ops make from numbers, fill
 * values, small index tables) are uploaded once per distinct value and kept on the device (see
 * `Engine.onDevice`): the `CONSTANTS_KEPT` most recently used.
 */
const CONSTANT_MAX = 4;
const CONSTANTS_KEPT = 4096;

/** A small host array's bits, as `Engine.onDevice`'s key (NaN and -0 kept apart from others). */
function constantKey(v: Float32Array): string {
  return Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length)).join(',');
}

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

/**
 * Schedules gpu.js kernel calls for one backend (its kernels are built and called by a
 * `KernelCache`) so that an op returns at once while its result may still be in flight. Work is
 * strictly ordered: a call waits for everything queued before it, which keeps the dynamic-output
 * kernels (one `setOutput` per call) safe to share and makes the engine's order the program's order.
 */
export class Engine implements PayloadOwner {
  private readonly kernels: KernelCache;
  /** Queued work in order; `tasks[head]` runs first (a head index, so that taking the first is O(1)). */
  private tasks: Task[] = [];
  private head = 0;
  /** Whether a pump (see `pump`) is scheduled or running. */
  private pumping = false;
  private idle: (() => void)[] = [];

  /** On webgpu, device copies of small host arrays by their bits (see `onDevice`). */
  private readonly constants = new Map<string, Payload>();

  /** Recycled host arrays for wasm kernel results (see pool.ts). */
  readonly pool = new ArrayPool();

  constructor(readonly name: BackendName) {
    this.kernels = new KernelCache(name, this.pool);
  }

  /** How the latest pipeline ran (gpu.js `executorKind`: 'fused-threaded', 'fused-sync', 'fused-encoder' or 'generic'), for tests and benchmarks. */
  get lastPipelineExecutor(): string {
    return this.kernels.lastPipelineExecutor;
  }

  /** Kernel builds, for tests and benchmarks that want to see caching at work. */
  get builds(): number {
    return this.kernels.builds;
  }

  /** Kernel calls so far (pipelines count as one), for benchmarks that report launches per step. */
  get launches(): number {
    return this.kernels.calls;
  }

  /** wasm kernel runs that engaged worker threads so far, for tests that check which kernels thread. */
  get workerRuns(): number {
    return this.kernels.workerRuns;
  }

  /**
   * Runs `src` over `output` (a cell count, or gpu.js `[x, y, z]` dims for 3-D kernels) and returns
   * the storage of its result. Runs at once when nothing is queued and the kernel is synchronous;
   * otherwise queues behind earlier work (see `enqueue` for how the queue stays bounded). On wasm and
   * cpu a queued call can also run at once on the calling thread when the queue drains (see `drain`).
   */
  run(src: KernelSource, output: number | readonly number[], inputs: readonly Storage[], scalars: readonly number[]): Storage {
    return this.dispatch(src, output, inputs, scalars, null)[0];
  }

  /**
   * wasm only: runs `src`, whose result holds several arrays one after another (its `store` places
   * each cell's values so), and returns one storage per array, of `sizes[i]` elements: views of the
   * one result, which goes back to the array pool when the last of them is freed (`ArrayPool.split`),
   * and whose bytes `memory()` counts until then (a part kept alone holds the whole array). What lets
   * one kernel compute an optimizer's new moments and parameter together. Runs at once or queues as
   * `run` does.
   */
  runParts(src: KernelSource, output: number | readonly number[], inputs: readonly Storage[], scalars: readonly number[], sizes: readonly number[]): Storage[] {
    if (this.name !== 'wasm') throw new Error(`internal: kernel "${src.key}": results in parts run on wasm only`);
    return this.dispatch(src, output, inputs, scalars, sizes);
  }

  /** `run` (`sizes` null: one result) and `runParts` (the result cut into `sizes`). */
  private dispatch(src: KernelSource, output: number | readonly number[], inputs: readonly Storage[], scalars: readonly number[], sizes: readonly number[] | null): Storage[] {
    for (const s of inputs) if (s.error) throw s.error;
    const dims = typeof output === 'number' ? [output] : [...output];
    const n = cells(dims);
    const outSize = n * (src.components ?? 1);
    const outSizes = sizes ?? [outSize];
    const total = outSizes.reduce((a, b) => a + b, 0);
    if (total !== outSize) throw new Error(`internal: kernel "${src.key}": parts of ${total} elements for a result of ${outSize}`);
    if (n === 0) return outSizes.map(() => Storage.ready(this, 0, new Float32Array(0)));
    if (this.queued >= DRAIN_AT) this.drain();
    const k = this.kernels;
    const split = (v: Payload): Payload[] => (sizes ? this.pool.split(v as Float32Array, sizes) : [v]);
    // Parts share one array: memory() counts its bytes until the last part is released.
    const grouped = (parts: Storage[]): Storage[] => {
      if (sizes) {
        const group = { live: parts.length, held: 0 };
        for (const p of parts) p.group = group;
      }
      return parts;
    };
    if (this.queued === 0 && !k.isAsync(src, n) && inputs.every((s) => s.isReady)) {
      const values = inputs.map((s) => s.value!);
      return grouped(split(k.call(src, dims, values, scalars, k.sizes(dims, values, inputs)) as Payload).map((v, i) => Storage.ready(this, outSizes[i], v)));
    }
    return grouped(
      this.queue(
        `kernel "${src.key}"`,
        inputs,
        outSizes,
        (values, threads) => {
          if (this.name === 'webgpu' && values.some((v) => v instanceof Float32Array && v.length > 0)) {
            const on = this.onDevice(inputs, values);
            if (!(on instanceof Promise)) return (k.call(src, dims, on, scalars, '') as Promise<Payload>).then(split);
            return on.then(async (bound) => split((await k.call(src, dims, bound, scalars, '')) as Payload));
          }
          const r = k.call(src, dims, values, scalars, k.sizes(dims, values, inputs), threads);
          return r instanceof Promise ? r.then(split) : split(r);
        },
        this.name === 'wasm' || this.name === 'cpu',
      ),
    );
  }

  /**
   * webgpu: the payloads a kernel binds for `values`, each host array replaced by a device copy, so
   * that host data crosses to the device once and not at every kernel that reads it (gpu.js writes a
   * host-array argument into the device at every call). A storage's copy is its `mirror`, freed with
   * it; small arrays (constants, made anew by every op that meets a number) share one copy per value
   * (the `CONSTANTS_KEPT` most recently used are kept). Runs inside the queue, in order, so a copy is
   * made once.
   */
  private onDevice(inputs: readonly Storage[], values: readonly Payload[]): Payload[] | Promise<Payload[]> {
    const out: Payload[] = [];
    let missing: number[] | undefined;
    for (const [i, v] of values.entries()) {
      const s = inputs[i];
      if (!(v instanceof Float32Array) || v.length === 0) out.push(v);
      else if (s.mirror) out.push(s.mirror);
      else {
        const c = v.length <= CONSTANT_MAX ? this.constant(constantKey(v)) : undefined;
        if (!c) (missing ??= []).push(i);
        out.push(c ?? v);
      }
    }
    if (!missing) return out;
    return (async () => {
      for (const i of missing) {
        const s = inputs[i];
        // Asked again: an earlier input of this call may have been this very storage or value.
        const v = values[i] as Float32Array;
        const key = v.length <= CONSTANT_MAX ? constantKey(v) : undefined;
        const had = s.mirror ?? (key !== undefined ? this.constant(key) : undefined);
        if (had) {
          out[i] = had;
          continue;
        }
        const c = await this.kernels.upload(v);
        if (key === undefined) s.mirror = c;
        else {
          // The least recently used goes (a stream of values, a schedule's, must not fill it for good).
          // Freeing it is safe: kernels bind their inputs when called, and every call that bound it was.
          if (this.constants.size >= CONSTANTS_KEPT) {
            const [oldest, h] = this.constants.entries().next().value as [string, Payload];
            this.constants.delete(oldest);
            this.free(h);
          }
          this.constants.set(key, c);
        }
        out[i] = c;
      }
      return out;
    })();
  }

  /** The device copy of a small host array by its key, marked as the most recently used. */
  private constant(key: string): Payload | undefined {
    const c = this.constants.get(key);
    if (c) {
      this.constants.delete(key);
      this.constants.set(key, c);
    }
    return c;
  }

  /**
   * Runs a pipeline (see PipelineSource) over `inputs`, each passed as a gpu.js `Input` of
   * `inputDims[i]` when it is a host array, and `scalars`; returns the storages of its results, of
   * `outSizes[i]` elements each. Always queued: gpu.js pipelines are asynchronous on every backend.
   * Throws (through the results) if gpu.js ran any part of the plan on a backend other than this one.
   */
  runPipeline(src: PipelineSource, inputs: readonly Storage[], inputDims: readonly (readonly number[])[], scalars: readonly number[], outSizes: readonly number[]): Storage[] {
    for (const s of inputs) if (s.error) throw s.error;
    return this.queue(`pipeline "${src.key}"`, inputs, outSizes, (values) => this.kernels.runPipeline(src, values, inputDims, scalars));
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
    const k = this.kernels;
    const ctx: JobContext = {
      run: async (src, output, arrays, scalars) => {
        const dims = typeof output === 'number' ? [output] : [...output];
        return await k.call(src, dims, [...arrays], scalars, k.sizes(dims, arrays));
      },
      pipeline: (src, arrays, inputDims, scalars) => k.runPipeline(src, arrays, inputDims, scalars),
      read: (p) => this.read(p),
      free: (p) => this.free(p),
    };
    return this.queue(`a job "${name}"`, inputs, outSizes, (values) => body(ctx, values));
  }

  /**
   * Queues a task that computes `outSizes.length` results from the payloads of `inputs`: makes the
   * results' pending storages, holds the inputs until the task is done, and settles (or fails) every
   * result exactly once. `exec` runs the work over the input payloads, returning the results or a
   * Promise of them; `threads` is false when it runs from a drain on the calling thread. With
   * `canRunNow` (plain kernel calls on wasm and cpu), a drain may run the task at once even while its
   * first run is still in flight on worker threads; that late result is then freed.
   */
  private queue(
    what: string,
    inputs: readonly Storage[],
    outSizes: readonly number[],
    exec: (values: Payload[], threads: boolean) => Payload[] | Promise<Payload[]>,
    canRunNow = false,
  ): Storage[] {
    this.makeRoom(what);
    const outs = outSizes.map((size) => Storage.pendingOn(this, size));
    for (const s of inputs) s.retain();
    const task: Task = { what, started: false, done: false, start: () => undefined };
    const finish = (got: Payload[] | undefined, e?: unknown): void => {
      if (task.done) {
        if (got) for (const v of got) this.free(v);
        return;
      }
      task.done = true;
      for (const s of inputs) s.release();
      if (e === undefined && got!.length !== outs.length) e = new Error(`internal: ${what} returned ${got!.length} results for ${outs.length}`);
      if (e !== undefined) for (const o of outs) o.fail(e);
      else outs.forEach((o, i) => o.settle(got![i]));
    };
    const runOn = (values: Payload[], threads: boolean): void | Promise<void> => {
      let r: Payload[] | Promise<Payload[]>;
      try {
        r = exec(values, threads);
      } catch (e) {
        return finish(undefined, e);
      }
      if (r instanceof Promise) return r.then((v) => finish(v), (e: unknown) => finish(undefined, e ?? new Error(`${what} failed`)));
      finish(r);
    };
    task.start = () => {
      const failed = inputs.find((s) => s.error);
      if (failed) return finish(undefined, failed.error);
      if (inputs.every((s) => s.isReady)) return runOn(inputs.map((s) => s.value!), true);
      return Promise.all(inputs.map((s) => s.get())).then(
        (values) => runOn(values, true),
        (e: unknown) => finish(undefined, e),
      );
    };
    if (canRunNow) {
      task.now = () => {
        const failed = inputs.find((s) => s.error);
        if (failed) {
          finish(undefined, failed.error);
          return true;
        }
        if (!inputs.every((s) => s.isReady)) return false;
        void runOn(inputs.map((s) => s.value!), false);
        return true;
      };
    }
    this.enqueue(task);
    return outs;
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

  /** Reads a payload back to the host as a fresh Float32Array. */
  async read(p: Payload): Promise<Float32Array> {
    if (p instanceof Float32Array) return p.slice();
    const arr = await p.toArray();
    return arr instanceof Float32Array ? arr : Float32Array.from(arr as ArrayLike<number>);
  }

  /** See `PayloadOwner.seal`: on wasm, the kernels skip copying a sealed array their memory holds. */
  seal(p: Payload): void {
    if (p instanceof Float32Array) this.kernels.seal(p);
  }

  /**
   * Frees a payload's device memory; a host array the pool made goes back to it for a later result,
   * unsealed first (its contents will change).
   */
  free(p: Payload): void {
    if (p instanceof Float32Array) {
      this.kernels.unseal(p);
      this.pool.give(p);
    } else (p as DeviceHandle).delete();
  }

  /** Waits until every queued kernel has finished. */
  async sync(): Promise<void> {
    while (this.queued > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Destroys the backend's kernels and the gpu.js instance. */
  destroy(): void {
    for (const c of this.constants.values()) this.free(c);
    this.constants.clear();
    this.kernels.destroy();
  }
}
