/**
 * What the WebGPU device wrappers (node-webgpu.ts's transfer counts, webgpu-batch.ts's batching)
 * share: the spec's flag values (Node has no GPUBufferUsage or GPUMapMode global before Dawn loads)
 * and the arithmetic of a `queue.writeBuffer` call.
 * @module
 */

/** GPUBufferUsage's flags this package reads or sets. */
export const USAGE_MAP_READ = 0x1;
export const USAGE_MAP_WRITE = 0x2;
export const USAGE_COPY_SRC = 0x4;
export const USAGE_COPY_DST = 0x8;
export const USAGE_UNIFORM = 0x40;
/** GPUMapMode's flags. */
export const MAP_READ = 0x1;
export const MAP_WRITE = 0x2;

/** `GPUQueue.writeBuffer`'s signature, over whatever buffer type the caller describes. */
export type WriteBuffer<B> = (buffer: B, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number) => void;

/**
 * The bytes a `writeBuffer(buffer, offset, data, dataOffset, size)` call writes: `dataOffset` and
 * `size` count elements of a typed array, bytes of an ArrayBuffer (WebGPU's rule).
 *
 * @example
 * ```ts
 * writtenBytes(new Float32Array(8), 2); // 24
 * ```
 */
export function writtenBytes(data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): number {
  const unit = ArrayBuffer.isView(data) ? ((data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1) : 1;
  return size !== undefined ? size * unit : data.byteLength - (dataOffset ?? 0) * unit;
}

/**
 * Calls `write` with the arguments a wrapper received, leaving out the optional ones it did not get
 * (Dawn's binding reads an explicit `undefined` differently from a missing argument).
 *
 * @example
 * ```ts
 * queue.writeBuffer = (b, o, d, dOff, n) => forwardWrite(original, b, o, d, dOff, n);
 * ```
 */
export function forwardWrite<B>(write: WriteBuffer<B>, buffer: B, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void {
  if (size !== undefined) write(buffer, offset, data, dataOffset, size);
  else if (dataOffset !== undefined) write(buffer, offset, data, dataOffset);
  else write(buffer, offset, data);
}
