import type { Payload } from './types.js';
import type { Engine } from './engine.js';

/** Live storage objects and their bytes, for `memory()`. */
export const liveStorage = { buffers: 0, bytes: 0 };

/**
 * The reference-counted storage behind one or more tensors (a reshape shares its input's storage).
 * Its value is either ready (`value`) or still being computed by a queued kernel (`pending`).
 * A queued kernel retains the storages it reads, so disposing a tensor never breaks a pending
 * computation that still needs it; the payload is freed once the last reference is released.
 */
export class Storage {
  /** The computed payload, once ready. */
  value: Payload | undefined;
  /** Resolves to the payload while a queued kernel computes it. */
  pending: Promise<Payload> | undefined;
  /** Set when the kernel computing this storage failed; ops that read it fail with the same error. */
  error: Error | undefined;
  private refs = 1;

  constructor(
    readonly engine: Engine,
    /** Number of 32-bit elements. */
    readonly size: number,
  ) {
    liveStorage.buffers++;
    liveStorage.bytes += size * 4;
  }

  static ready(engine: Engine, size: number, value: Payload): Storage {
    const s = new Storage(engine, size);
    s.value = value;
    return s;
  }

  static later(engine: Engine, size: number, pending: Promise<Payload>): Storage {
    const s = new Storage(engine, size);
    s.pending = pending.then(
      (v) => {
        s.value = v;
        s.pending = undefined;
        if (s.refs === 0) engine.free(v);
        return v;
      },
      (e: unknown) => {
        s.error = e instanceof Error ? e : new Error(String(e));
        s.pending = undefined;
        throw s.error;
      },
    );
    // A failure is reported where the value is used (data(), a later op), not as an unhandled rejection.
    s.pending.catch(() => undefined);
    return s;
  }

  get isReady(): boolean {
    return this.value !== undefined;
  }

  /** The payload, waiting for the kernel that computes it if needed. */
  async get(): Promise<Payload> {
    if (this.error) throw this.error;
    if (this.value !== undefined) return this.value;
    return this.pending!;
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
    // A pending value is freed by the continuation in `later` once it arrives.
  }
}
