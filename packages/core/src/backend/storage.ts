import type { Payload, PayloadOwner } from './types.js';

/** Live storage objects and their bytes, for `memory()`. */
export const liveStorage = { buffers: 0, bytes: 0 };

/**
 * Of the live storages, those held by the derived-forms cache (see `Storage.derive`), for `memory()`,
 * and the cache's bound in bytes (`setCacheLimit`).
 *
 * @example
 * ```ts
 * cachedStorage.bytes <= cachedStorage.limit; // true
 * ```
 */
export const cachedStorage = { buffers: 0, bytes: 0, limit: 1 << 30 };

/**
 * The derived-forms cache in least recently used order: each entry is a source storage and the key
 * of one of its derived forms. A Map keeps insertion order; a hit moves its entry to the end.
 */
const lru = new Map<Storage, Set<string>>();

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
  /**
   * Forms derived from this storage's values and kept for reuse (the wasm matmul's packed panels of
   * a weight), by key; freed with this storage or when the cache needs room. See `derive`.
   */
  private derived: Map<string, Storage> | undefined;
  /** Keys of forms derived once without keeping them: a second derivation keeps it (see `derive`). */
  private derivedOnce: Set<string> | undefined;
  /** Whether the cache holds this storage (as some storage's derived form). */
  private cached = false;
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
  /**
   * Set on the parts of one kernel result (`Engine.runParts`): they share one array, which lives
   * until the last part is released, so a released part's bytes stay counted in `liveStorage`
   * until then (`memory()` reports what is held, not only what tensors reference).
   */
  group: { live: number; held: number } | undefined;

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
    engine.seal(value);
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
    else {
      this.value = v;
      this.engine.seal(v);
    }
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

  /**
   * A form derived from this storage's values: `make()` computes it (a new storage, owned by the
   * caller); the result is a reference the caller releases. Tensors are immutable, so a derived form
   * stays valid as long as its source lives. The first derivation under a key is not kept (most
   * operands are used once: activations); from the second on the form is kept, within
   * `cachedStorage.limit` bytes, least recently used evicted first, and later calls get it without
   * computing. Freed with this storage.
   */
  derive(key: string, make: () => Storage): Storage {
    if (cachedStorage.limit === 0) return make();
    const hit = this.derived?.get(key);
    if (hit) {
      const keys = lru.get(this);
      lru.delete(this);
      if (keys) lru.set(this, keys);
      return hit.retain();
    }
    const made = make();
    if (!this.derivedOnce?.has(key)) {
      (this.derivedOnce ??= new Set()).add(key);
      return made;
    }
    if (made.size * 4 > cachedStorage.limit) return made;
    made.retain();
    made.cached = true;
    cachedStorage.buffers++;
    cachedStorage.bytes += made.size * 4;
    (this.derived ??= new Map()).set(key, made);
    const keys = lru.get(this) ?? new Set<string>();
    lru.delete(this);
    lru.set(this, keys.add(key));
    evictTo(cachedStorage.limit);
    return made;
  }

  /**
   * Whether a derivation under `key` would be served from the cache or kept (it is cached, or was
   * derived or noted once); with `note`, records a use under `key` that computed nothing (the caller
   * took another way this time), so that the next `derive` keeps its form. Always false while the
   * cache is off (`setCacheLimit(0)`).
   */
  wouldKeep(key: string, note = false): boolean {
    if (cachedStorage.limit === 0) return false;
    const yes = !!this.derived?.has(key) || !!this.derivedOnce?.has(key);
    if (!yes && note) (this.derivedOnce ??= new Set()).add(key);
    return yes;
  }

  /** Drops the derived form under `key` from the cache (releasing the cache's reference). */
  dropDerived(key: string): void {
    const d = this.derived?.get(key);
    if (!d) return;
    this.derived!.delete(key);
    const keys = lru.get(this);
    keys?.delete(key);
    if (keys && keys.size === 0) lru.delete(this);
    d.uncache();
    d.release();
  }

  private uncache(): void {
    if (!this.cached) return;
    this.cached = false;
    cachedStorage.buffers--;
    cachedStorage.bytes -= this.size * 4;
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
    if (this.group) {
      // A part of a shared result: its bytes are freed with the last part.
      this.group.held += this.size * 4;
      if (--this.group.live === 0) liveStorage.bytes -= this.group.held;
    } else liveStorage.bytes -= this.size * 4;
    if (this.value !== undefined) {
      this.engine.free(this.value);
      this.value = undefined;
    }
    if (this.mirror !== undefined) {
      this.engine.free(this.mirror);
      this.mirror = undefined;
    }
    if (this.derived) for (const key of [...this.derived.keys()]) this.dropDerived(key);
    this.derivedOnce = undefined;
    this.uncache();
    // A value still being computed is freed by `settle` when it arrives.
  }
}

/**
 * Evicts derived forms, least recently used first, until the cache holds at most `bytes`.
 * `cachedStorage.limit` is the bound `derive` keeps; a smaller `bytes` frees room now.
 *
 * @example
 * ```ts
 * evictTo(0); // empties the cache (what setCacheLimit(0) does)
 * ```
 */
export function evictTo(bytes: number): void {
  for (const [source, keys] of lru) {
    if (cachedStorage.bytes <= bytes) return;
    for (const key of [...keys]) {
      source.dropDerived(key);
      if (cachedStorage.bytes <= bytes) return;
    }
  }
}
