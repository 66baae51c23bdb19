import type { Payload, PayloadOwner } from './types.js';

/** Live storage objects and their bytes, for `memory()`. */
export const liveStorage = { buffers: 0, bytes: 0 };

/**
 * The reference-counted storage behind one or more tensors (a reshape shares its input's storage).
 * Its value is either ready (`value`) or still being computed by a queued task (`get` waits for it).
 * A queued kernel retains the storages it reads, so disposing a tensor never breaks a pending
 * computation that still needs it; the payload is freed once the last reference is released.
 */
export class Storage {
  /** The computed payload, once ready. */
  value: Payload | undefined;
  /**
   * On webgpu, the device copy of a host-resident `value` (data from `tensor()`, a job's host
   * result): uploaded by the first kernel that reads it, then bound by every later one instead of
   * uploading it again (see `Engine.run`), and freed with the storage. `value` stays the host array,
   * so reading the storage back costs no readback.
   */
  mirror: Payload | undefined;
  /** Set when the kernel computing this storage failed; ops that read it fail with the same error. */
  error: Error | undefined;
  /** Whether a queued task is still to deliver the payload (`settle`) or its error (`fail`). */
  private computing = false;
  /**
   * Readers waiting for the payload. Made only when someone waits: a promise settled with no reader
   * would queue a microtask holding the payload, and a loop that never awaits never runs those.
   */
  private waiters: { resolve(v: Payload): void; reject(e: Error): void }[] | undefined;
  private refs = 1;

  constructor(
    readonly engine: PayloadOwner,
    /** Number of 32-bit elements. */
    readonly size: number,
  ) {
    liveStorage.buffers++;
    liveStorage.bytes += size * 4;
  }

  static ready(engine: PayloadOwner, size: number, value: Payload): Storage {
    const s = new Storage(engine, size);
    s.value = value;
    return s;
  }

  /**
   * A storage whose payload a queued task will deliver with `settle` (or `fail`). Delivery is
   * synchronous, so a task that runs now (see `Engine`) makes its result ready for the next op at once.
   */
  static pendingOn(engine: PayloadOwner, size: number): Storage {
    const s = new Storage(engine, size);
    s.computing = true;
    return s;
  }

  /** Delivers the computed payload. Freed at once when every reference was released meanwhile. */
  settle(v: Payload): void {
    if (!this.computing) throw new Error('internal: settle of a storage that is not pending');
    this.computing = false;
    if (this.refs === 0) this.engine.free(v);
    else this.value = v;
    const w = this.waiters;
    this.waiters = undefined;
    if (w) for (const x of w) x.resolve(v);
  }

  /** Delivers the error of the task that was to compute this storage; ops that read it fail with it. */
  fail(e: unknown): void {
    if (!this.computing) throw new Error('internal: fail of a storage that is not pending');
    this.computing = false;
    this.error = e instanceof Error ? e : new Error(String(e));
    const w = this.waiters;
    this.waiters = undefined;
    if (w) for (const x of w) x.reject(this.error);
  }

  get isReady(): boolean {
    return this.value !== undefined;
  }

  /** The payload, waiting for the kernel that computes it if needed. */
  async get(): Promise<Payload> {
    if (this.error) throw this.error;
    if (this.value !== undefined) return this.value;
    if (!this.computing) throw new Error('internal: read of a released storage');
    return new Promise<Payload>((resolve, reject) => (this.waiters ??= []).push({ resolve, reject }));
  }

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retain of released storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    this.refs--;
    if (this.refs > 0) return;
    liveStorage.buffers--;
    liveStorage.bytes -= this.size * 4;
    if (this.value !== undefined) {
      this.engine.free(this.value);
      this.value = undefined;
    }
    if (this.mirror !== undefined) {
      this.engine.free(this.mirror);
      this.mirror = undefined;
    }
    // A value still being computed is freed by `settle` when it arrives.
  }
}
