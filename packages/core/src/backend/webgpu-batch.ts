/**
 * Many kernel launches in one WebGPU command buffer. gpu.js encodes every launch in a command
 * encoder of its own and submits it at once; measured on an NVIDIA H200 through Dawn (Vulkan), that
 * costs ~100-150 µs of host time a launch, most of it in `finish()` and `submit()`, so a training
 * step of 325 small launches took ~47 ms on that machine. Here the device hands gpu.js one shared
 * encoder: each launch's `finish()` returns a placeholder, its `submit()` only counts, and the
 * encoder is finished and submitted as one command buffer when something must see its results (a
 * buffer mapped for reading, `onSubmittedWorkDone`), after 256 launches, or when the host is next
 * idle. The same step took ~28 ms there, timed alternately with the unbatched code
 * (docs/guides/performance.md, "Launches batched into shared command buffers on webgpu").
 *
 * The queue's order is kept exactly. `queue.writeBuffer` would otherwise land before launches
 * encoded earlier but not yet submitted (a kernel's parameter block, written before each launch,
 * would overwrite the one its previous launch still has to read): while launches are pending, a
 * write goes into a fresh slot of an upload ring and the encoder copies it into place, in order.
 * Writes over 1 MiB, past their buffer's end (so that their error stays theirs), or beyond 4 MiB
 * staged since the last submit, and anything else that is not a launch, submit the pending launches
 * first. A buffer destroyed while launches that may use it are pending is destroyed after they are
 * submitted. One invalid command invalidates its whole batch: a read in that batch rejects, naming
 * the error, and a batch no read waits on prints it, as WebGPU prints an uncaptured error. Installed
 * in Node only (node-webgpu.ts).
 * @module
 */

import { forwardWrite, USAGE_COPY_DST, USAGE_COPY_SRC, USAGE_MAP_READ, USAGE_MAP_WRITE, writtenBytes, type WriteBuffer } from './webgpu-calls.js';

/** Encoders gpu.js finished (launches, readback copies) and the command buffers they went out in (see `internal.webgpuBatches`). */
export const webgpuBatches = { launches: 0, submits: 0 };

/** Most launches in one command buffer: bounds the work a single submit holds back. */
const MAX_LAUNCHES = 256;
/** Largest write staged through the ring; a bigger one submits the pending launches and is written directly. */
const MAX_STAGED = 1 << 20;
/** Most bytes staged between two submits; past it the pending launches are submitted and the ring starts over. */
const RING_CAP = 4 << 20;

interface EncoderLike {
  finish(desc?: unknown): unknown;
  copyBufferToBuffer(src: BufferLike, srcOffset: number, dst: BufferLike, dstOffset: number, size: number): void;
}
interface BufferLike {
  size: number;
  destroy(): void;
  unmap(): void;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
}
type Write = WriteBuffer<BufferLike>;
interface QueueLike {
  submit(buffers: unknown[]): void;
  writeBuffer: Write;
  onSubmittedWorkDone?: () => Promise<void>;
  writeTexture?: (...args: unknown[]) => void;
  copyExternalImageToTexture?: (...args: unknown[]) => void;
}
interface GPUErrorLike {
  message: string;
}
interface DeviceLike {
  queue: QueueLike;
  pushErrorScope(filter: 'validation' | 'out-of-memory'): void;
  popErrorScope(): Promise<GPUErrorLike | null>;
  createCommandEncoder(desc?: unknown): EncoderLike;
  createBuffer(desc: { size: number; usage: number; mappedAtCreation?: boolean }): BufferLike;
  __sorsaBatched?: boolean;
}

/** Runs `f` once the host is idle: after the current task and its promise callbacks. */
const later: (f: () => void) => void = typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

/**
 * Makes `device` batch kernel launches into shared command buffers (see the module's comment).
 * Install it before anything else wraps the device's queue, so that wrappers installed later (the
 * transfer counts) see each logical write once.
 *
 * @example
 * ```ts
 * const device = await adapter.requestDevice();
 * batchLaunches(device);
 * ```
 */
export function batchLaunches(device: DeviceLike): void {
  if (device.__sorsaBatched) return;
  device.__sorsaBatched = true;
  const queue = device.queue;
  const submit = queue.submit.bind(queue);
  const write: Write = queue.writeBuffer.bind(queue);
  const createEncoder = device.createCommandEncoder.bind(device);
  const createBuffer = device.createBuffer.bind(device);
  /** Stands for a launch's command buffer, which lives on in the shared encoder. */
  const PLACEHOLDER = Object.freeze({ sorsajsBatchedLaunch: true });

  let encoder: EncoderLike | null = null;
  let pending = 0;
  let scheduled = false;
  let ring: BufferLike | null = null;
  let ringOffset = 0;
  /** Bytes written into rings since the last submit, the retired ones included. */
  let staged = 0;
  let retired: BufferLike[] = [];
  let doomed: (() => void)[] = [];

  /**
   * Submits the pending launches as one command buffer; then the ring starts over and deferred
   * destroys run. `error` resolves to the batch's error (null without one, or when nothing was
   * pending): one invalid command invalidates its whole command buffer, the copy a read waits on
   * included. A read that `claim`s it reports it; otherwise it is printed, as WebGPU prints an
   * uncaptured error.
   */
  const flush = (): { error: Promise<GPUErrorLike | null>; claim(): void } => {
    let error: Promise<GPUErrorLike | null> = Promise.resolve(null);
    let claimed = false;
    if (encoder) {
      const e = encoder;
      const launches = pending;
      encoder = null;
      pending = 0;
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      submit([e.finish()]);
      const oom = device.popErrorScope();
      const invalid = device.popErrorScope();
      error = Promise.all([oom, invalid]).then(([a, b]) => a ?? b);
      void error.then((err) => {
        if (err && !claimed) console.error(`webgpu: a batch of ${launches} kernel launches failed: ${err.message}`);
      });
      webgpuBatches.submits++;
    }
    // Writes into the ring from here on are ordered after the submit above: its copies have read their slots.
    ringOffset = 0;
    staged = 0;
    for (const b of retired) b.destroy();
    retired = [];
    const d = doomed;
    doomed = [];
    for (const f of d) f();
    return {
      error,
      claim: () => {
        claimed = true;
      },
    };
  };

  device.createCommandEncoder = (desc?: unknown) => {
    encoder ??= createEncoder(desc);
    const shared = encoder;
    // The shared encoder, except that finishing it only ends this launch's part.
    return new Proxy(shared, {
      get(target, key) {
        if (key === 'finish') return () => PLACEHOLDER;
        const v = (target as unknown as Record<string | symbol, unknown>)[key];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };

  queue.submit = (buffers: unknown[]) => {
    for (const b of buffers) {
      if (b !== PLACEHOLDER) {
        // A command buffer encoded elsewhere: after everything pending, in order.
        flush();
        submit([b]);
        continue;
      }
      webgpuBatches.launches++;
      if (++pending >= MAX_LAUNCHES) flush();
      else if (!scheduled) {
        scheduled = true;
        later(() => {
          scheduled = false;
          flush();
        });
      }
    }
  };

  queue.writeBuffer = (buffer, offset, data, dataOffset, size) => {
    const direct = (): void => forwardWrite(write, buffer, offset, data, dataOffset, size);
    if (!encoder) return direct();
    const view = ArrayBuffer.isView(data);
    const bytes = writtenBytes(data, dataOffset, size);
    // Where the written bytes begin in data's buffer: dataOffset counts elements, as size does.
    const start = (view ? data.byteOffset : 0) + writtenBytes(data, 0, dataOffset ?? 0);
    // copyBufferToBuffer moves whole 4-byte words; writeBuffer asks the same of its callers. A write
    // past the buffer's end goes to writeBuffer too, whose error is its own: as a copy it would
    // invalidate every pending launch.
    if (bytes > MAX_STAGED || bytes % 4 !== 0 || offset % 4 !== 0 || offset + bytes > buffer.size) {
      flush();
      return direct();
    }
    if (staged + bytes > RING_CAP) {
      // Enough held back: submit what is pending (the ring starts over); this write then waits for nothing.
      flush();
      return direct();
    }
    staged += bytes;
    if (!ring || ringOffset + bytes > ring.size) {
      // Pending copies may still read the old ring: it is destroyed after the next submit.
      if (ring) retired.push(ring);
      ring = createBuffer({ size: Math.min(RING_CAP, Math.max(1 << 16, 2 * (ring?.size ?? 0), bytes)), usage: USAGE_COPY_SRC | USAGE_COPY_DST });
      ringOffset = 0;
    }
    write(ring, ringOffset, new Uint8Array(view ? data.buffer : data, start, bytes));
    encoder.copyBufferToBuffer(ring, ringOffset, buffer, offset, bytes);
    ringOffset += bytes;
  };

  // Everything else that touches the queue, or waits on it, sees the pending launches first.
  if (queue.onSubmittedWorkDone) {
    const done = queue.onSubmittedWorkDone.bind(queue);
    queue.onSubmittedWorkDone = () => {
      flush();
      return done();
    };
  }
  for (const name of ['writeTexture', 'copyExternalImageToTexture'] as const) {
    const f = queue[name]?.bind(queue);
    if (f)
      queue[name] = (...args: unknown[]) => {
        flush();
        f(...args);
      };
  }
  device.createBuffer = (desc) => {
    const buffer = createBuffer(desc);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      if (encoder) doomed.push(destroy);
      else destroy();
    };
    // Only buffers made for mapping can be mapped (WebGPU validates it): leave the others alone.
    if (desc.usage & (USAGE_MAP_READ | USAGE_MAP_WRITE)) {
      const mapAsync = buffer.mapAsync.bind(buffer);
      buffer.mapAsync = async (...args: Parameters<BufferLike['mapAsync']>) => {
        // gpu.js submits a read's copy and maps its staging buffer in one go, so the copy is in the
        // batch this flush submits: if that batch failed, the read rejects rather than return what
        // the staging buffer held before.
        const batch = flush();
        batch.claim();
        await mapAsync(...args);
        const error = await batch.error;
        if (error) {
          buffer.unmap();
          throw new Error(`webgpu: a batch of kernel launches failed, so this read has no result: ${error.message}`);
        }
      };
    }
    return buffer;
  };
}
