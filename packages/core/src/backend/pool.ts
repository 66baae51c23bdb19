/**
 * Recycled host arrays for wasm kernel results.
 *
 * A wasm kernel's result is copied out of its WebAssembly memory into a host array. A fresh array
 * costs more than the copy: the allocation is zero-filled and its pages faulted in on first write,
 * and the garbage collector then walks and frees it (measured on this project's 2-core machine, a
 * 1 MB result: 150-200 us into a fresh array, ~55 us into a recycled one; in a GPT fine-tuning step
 * the garbage collector took ~10% of the time). Arrays of disposed tensors come back here and serve
 * later results of the same length.
 *
 * Only arrays this pool made are recycled: an array a user handed to `tensor()`, or one read back
 * with `data()` (a copy), is never reused behind anyone's back.
 * @module
 */

/** Arrays below this many elements are not pooled: they are cheap to make (nor sealed: see `KernelCache.seal`). */
export const MIN_LENGTH = 1024;

/**
 * A pool of Float32Arrays by length, holding at most `maxBytes` of idle arrays.
 *
 * @example
 * ```ts
 * const pool = new ArrayPool();
 * const a = pool.take(4096); // fresh, or a recycled array of that length (stale contents)
 * pool.give(a);              // back for the next take(4096)
 * ```
 */
export class ArrayPool {
  private readonly idle = new Map<number, Float32Array[]>();
  private readonly made = new WeakSet<Float32Array>();
  /** The idle arrays, so that one given back twice is pooled once (two results must never share one). */
  private readonly idleSet = new Set<Float32Array>();
  /**
   * Views handed out by `split`: each view's parent and the count of its parent's views still out
   * (shared by the siblings). The parent comes back to the pool when the last view does.
   */
  private readonly views = new WeakMap<Float32Array, { parent: Float32Array; out: { n: number } }>();
  private idleBytes = 0;
  /** Takes served by a recycled array, for tests and benchmarks. */
  reused = 0;

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  /** An array of `length` elements whose contents are stale, or null below the pooled size. */
  take(length: number): Float32Array | null {
    if (length < MIN_LENGTH) return null;
    const a = this.idle.get(length)?.pop();
    if (a) {
      this.reused++;
      this.idleSet.delete(a);
      this.idleBytes -= a.byteLength;
      return a;
    }
    const fresh = new Float32Array(length);
    this.made.add(fresh);
    return fresh;
  }

  /**
   * `a` cut into consecutive views of `sizes` elements (one kernel's several results, each a
   * tensor of its own). An array the pool made comes back to the pool only when every view has been
   * given back, so no part of it serves another result while a sibling is alive.
   *
   * @example
   * ```ts
   * const [m, v] = pool.split(pool.take(8192)!, [4096, 4096]);
   * pool.give(m); // nothing yet: v still reads the array
   * pool.give(v); // the 8192-element array is back
   * ```
   */
  split(a: Float32Array, sizes: readonly number[]): Float32Array[] {
    const out = { n: sizes.length };
    let at = 0;
    return sizes.map((n) => {
      const v = a.subarray(at, at + n);
      at += n;
      if (this.made.has(a)) this.views.set(v, { parent: a, out });
      return v;
    });
  }

  /** Takes back an array nothing reads any more; arrays the pool did not make are ignored. */
  give(a: Float32Array): void {
    const view = this.views.get(a);
    if (view) {
      this.views.delete(a);
      if (--view.out.n === 0) this.give(view.parent);
      return;
    }
    if (!this.made.has(a) || this.idleSet.has(a) || this.idleBytes + a.byteLength > this.maxBytes) return;
    let list = this.idle.get(a.length);
    if (!list) this.idle.set(a.length, (list = []));
    list.push(a);
    this.idleSet.add(a);
    this.idleBytes += a.byteLength;
  }

  /** Bytes held by idle arrays. */
  get bytes(): number {
    return this.idleBytes;
  }

  /** Drops every idle array (to the garbage collector). */
  clear(): void {
    this.idle.clear();
    this.idleSet.clear();
    this.idleBytes = 0;
  }
}
