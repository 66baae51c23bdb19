import type { Storage } from '../backend/storage.js';
import { cachedStorage, evictTo, liveStorage } from '../backend/storage.js';
import { fmt, sizeOf } from '../util/shape-math.js';

/** Element types. Both are computed as float32 inside kernels, so int32 values are exact within ±2^24. */
export type DType = 'float32' | 'int32';

/** A nested JS array of numbers, as `toArray()` returns. */
export type NestedArray = number | NestedArray[];

const live = { tensors: 0 };

/**
 * @internal The storage behind a tensor, for core's own modules. The class keeps it in a private
 * field, so it is no part of the public surface; `use(op)` gives it after a liveness check.
 */
export let storageOf: (t: Tensor) => Storage;

/**
 * @internal The open scope frames of tensor/scope.ts, innermost last. The constructor pushes every
 * tensor onto the innermost frame, so a scope can dispose what its function made. The stack lives
 * here, beside the constructor that fills it, so that scope.ts builds on this module and not the
 * other way round.
 */
export const frames: Tensor[][] = [];

/**
 * An immutable n-dimensional array whose values live on the current backend. Ops return new tensors;
 * only `data()` and `toArray()` read values back, and they are async.
 *
 * @example
 * ```ts
 * const t = tensor([[1, 2], [3, 4]]);
 * t.shape; // [2, 2]
 * await t.data(); // Float32Array [1, 2, 3, 4]
 * t.dispose();
 * ```
 */
export class Tensor {
  /** Dimensions, outermost first. A scalar has shape `[]`. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** The storage holding this tensor's values (shared by reshapes): private, see `storageOf`. */
  readonly #storage: Storage;
  private disposed = false;

  /** @internal Use `tensor()` and the ops to make tensors. */
  constructor(storage: Storage, shape: readonly number[], dtype: DType) {
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    live.tensors++;
    frames[frames.length - 1]?.push(this);
  }

  static {
    storageOf = (t) => t.#storage;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** @internal The storage, after checking this tensor is alive; `op` names the caller in the error. */
  use(op: string): Storage {
    if (this.disposed) throw new Error(`${op}: tensor of shape ${fmt(this.shape)} (${this.dtype}) was disposed`);
    return this.#storage;
  }

  /**
   * Reads the values back: a Float32Array for float32, an Int32Array for int32, in row-major order.
   *
   * @example
   * ```ts
   * await tensor([1, 2, 3]).data(); // Float32Array [1, 2, 3]
   * ```
   */
  async data(): Promise<Float32Array | Int32Array> {
    // Hold the storage while reading, so a dispose() right after data() cannot free it mid-read.
    const storage = this.use('data').retain();
    let values: Float32Array;
    try {
      values = await storage.engine.read(await storage.get());
    } finally {
      storage.release();
    }
    return this.dtype === 'int32' ? Int32Array.from(values) : values;
  }

  /**
   * Reads the values back as nested arrays (a number for a scalar).
   *
   * @example
   * ```ts
   * await tensor([[1, 2], [3, 4]]).toArray(); // [[1, 2], [3, 4]]
   * ```
   */
  async toArray(): Promise<NestedArray> {
    const flat = await this.data();
    return nest(flat, this.shape, 0, 0);
  }

  /**
   * Releases this tensor's storage (once no other tensor or pending kernel uses it). Idempotent.
   *
   * @example
   * ```ts
   * const t = ones([1024]);
   * t.dispose();
   * ```
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    live.tensors--;
    this.#storage.release();
  }

  /** A short description: shape and dtype (values need an async read). */
  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype})`;
  }
}

function nest(flat: ArrayLike<number>, shape: readonly number[], axis: number, offset: number): NestedArray {
  if (axis === shape.length) return flat[offset];
  const inner = sizeOf(shape.slice(axis + 1));
  const out: NestedArray[] = [];
  for (let i = 0; i < shape[axis]; i++) out.push(nest(flat, shape, axis + 1, offset + i * inner));
  return out;
}

/** What `memory()` reports. */
export interface MemoryInfo {
  /** Tensors created and not yet disposed. */
  tensors: number;
  /** Storage buffers still referenced (by tensors, or by queued kernels that read them), the cache's aside. */
  buffers: number;
  /** Bytes held by those buffers. */
  bytes: number;
  /**
   * Buffers and bytes of the cache of derived forms: on wasm, the packed column panels of matmul
   * operands used more than once (a model's weights), freed with their tensor or by `setCacheLimit`.
   */
  cache: CacheInfo;
}

/**
 * What the cache of derived forms holds (see `memory()` and `setCacheLimit`).
 *
 * @example
 * ```ts
 * const { buffers, bytes } = memory().cache;
 * ```
 */
export interface CacheInfo {
  /** Buffers held. */
  buffers: number;
  /** Their bytes. */
  bytes: number;
}

/**
 * What is live now: tensors not yet disposed, storage buffers (a reshape shares its input's) and their
 * bytes, and apart from them what the cache of derived forms holds.
 *
 * @example
 * ```ts
 * const before = memory().tensors;
 * const t = zeros([4]);
 * memory().tensors - before; // 1
 * ```
 */
export function memory(): MemoryInfo {
  return {
    tensors: live.tensors,
    buffers: liveStorage.buffers - cachedStorage.buffers,
    bytes: liveStorage.bytes - cachedStorage.bytes,
    cache: { buffers: cachedStorage.buffers, bytes: cachedStorage.bytes },
  };
}

/**
 * Bounds the bytes the cache of derived forms may hold (default 1 GiB), evicting least recently
 * used entries now if it holds more; 0 turns the cache off. On wasm a matmul operand B used again
 * with the same shape and strides (a weight: every step of training, every token of generation)
 * keeps its packed column panels there from its second use on, so that later products skip the
 * packing, a copy of B each time. Returns the previous bound.
 *
 * @example
 * ```ts
 * setCacheLimit(256 * 2 ** 20); // at most 256 MiB of packed weights
 * memory().cache.bytes;         // what it holds now
 * ```
 */
export function setCacheLimit(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`setCacheLimit: bytes must be a finite number >= 0, got ${String(bytes)}`);
  const prev = cachedStorage.limit;
  cachedStorage.limit = bytes;
  evictTo(bytes);
  return prev;
}
