/**
 * WebGPU under Node: the `webgpu` npm package (Dawn) provides `navigator.gpu`. Browsers bring their own.
 * Dawn's two "maxDynamic...BuffersPerPipelineLayout artificially reduced" warnings are printed by its
 * native code inside `requestAdapter()`, before the device limits asked for here matter, and no
 * `create()` option or toggle silences them (docs/guides/backends.md says more).
 * @module
 */
import { IN_NODE } from '../util/env.js';
import { batchLaunches } from './webgpu-batch.js';
import { forwardWrite, MAP_READ, MAP_WRITE, USAGE_MAP_READ, USAGE_MAP_WRITE, USAGE_UNIFORM, writtenBytes, type WriteBuffer } from './webgpu-calls.js';

let setup: Promise<string | null> | undefined;

/**
 * Makes `navigator.gpu` available under Node from the `webgpu` package, once. Resolves to null when
 * WebGPU is there, or to the reason it is not (the package failed to load, say).
 *
 * It also lifts the storage-buffer limit: gpu.js asks for the default device limits, which allow only
 * 8 storage buffers per shader stage, while adapters usually offer more (lavapipe offers 16).
 */
export function ensureWebGPU(): Promise<string | null> {
  setup ??= (async () => {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) {
      if (!IN_NODE) return 'this environment has no navigator.gpu';
      let mod: { create(opts: string[]): unknown; globals: Record<string, unknown> };
      try {
        mod = (await import('webgpu')) as never;
      } catch (e) {
        return `the "webgpu" package (Dawn) failed to load: ${(e as Error).message.split('\n')[0]}`;
      }
      Object.assign(globalThis, mod.globals);
      const gpu = mod.create([]);
      if (!g.navigator) {
        Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
      } else {
        Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
      }
    }
    liftStorageBufferLimit(g.navigator!.gpu as GPULike);
    return null;
  })();
  return setup;
}

interface AdapterLike {
  limits: Record<string, number>;
  requestDevice(desc?: { requiredLimits?: Record<string, number> }): Promise<unknown>;
}
interface GPULike {
  requestAdapter(opts?: unknown): Promise<AdapterLike | null>;
  __sorsaWrapped?: boolean;
}

/**
 * The largest storage-buffer binding, in bytes, of the WebGPU device gpu.js got (WebGPU's default,
 * 128 MiB, until a device asked through the wrapper below reports its own): one tensor is one
 * binding, so it bounds a tensor's size on webgpu.
 */
export let webgpuStorageBindingBytes = 134217728;

/**
 * Makes every device gpu.js requests ask for what the adapter offers instead of WebGPU's defaults:
 * 8 storage buffers per shader stage (fused kernels need more) and 128 MiB per binding (a 50257 x 768
 * embedding table is 154 MB; GPUs offer gigabytes, Mesa's lavapipe 128 MiB).
 */
function liftStorageBufferLimit(gpu: GPULike): void {
  if (gpu.__sorsaWrapped) return;
  const request = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (opts?: unknown) => {
    const adapter = await request(opts);
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = async (desc = {}) => {
      const device = (await requestDevice({
        ...desc,
        requiredLimits: {
          ...desc.requiredLimits,
          maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
          maxBufferSize: adapter.limits.maxBufferSize,
        },
      })) as { limits?: Record<string, number> } | null;
      const granted = device?.limits?.maxStorageBufferBindingSize;
      if (typeof granted === 'number' && granted > 0) webgpuStorageBindingBytes = granted;
      if (device) {
        // Batching first: the counts, wrapped around it, see each logical write once. Node only: it
        // was measured there, and a browser throttles the idle flush's timer in background tabs.
        if (IN_NODE) batchLaunches(device as never);
        countTransfers(device as unknown as DeviceLike);
      }
      return device;
    };
    return adapter;
  };
  gpu.__sorsaWrapped = true;
}

/**
 * Host <-> device transfers on every WebGPU device gpu.js has asked for, since the process started:
 * `reads` (device -> host: a buffer mapped for reading, which is how gpu.js reads any result back)
 * and `uploads` (host -> device: `queue.writeBuffer` into a storage buffer, a buffer created mapped
 * with data, a buffer mapped for writing), with their bytes. `params` counts the writes of kernels'
 * uniform parameter blocks (output dims, argument dims, scalar arguments: one small write per kernel
 * launch, the launch's own arguments, not tensor data). Counted on the device and its queue, below
 * gpu.js, so that no path is missed.
 */
export const webgpuTransfers = { reads: 0, readBytes: 0, uploads: 0, uploadBytes: 0, params: 0, paramBytes: 0 };

interface BufferLike {
  size: number;
  usage: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
}
interface DeviceLike {
  queue: { writeBuffer: WriteBuffer<BufferLike>; __sorsaCounted?: boolean };
  createBuffer(desc: { size: number; usage: number; mappedAtCreation?: boolean }): BufferLike;
  __sorsaCounted?: boolean;
}

/** Wraps a device's `createBuffer`, its queue's `writeBuffer` and its buffers' `mapAsync` to count transfers (see `webgpuTransfers`). */
function countTransfers(device: DeviceLike): void {
  if (device.__sorsaCounted) return;
  device.__sorsaCounted = true;
  const t = webgpuTransfers;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (desc) => {
    const buffer = create(desc);
    if (desc.mappedAtCreation && !(desc.usage & USAGE_MAP_READ)) {
      t.uploads++;
      t.uploadBytes += desc.size;
    }
    // Only buffers made for mapping can be mapped (WebGPU validates it): leave the others alone.
    if (!(desc.usage & (USAGE_MAP_READ | USAGE_MAP_WRITE))) return buffer;
    const mapAsync = buffer.mapAsync.bind(buffer);
    buffer.mapAsync = (mode, offset = 0, size?: number) => {
      const bytes = size ?? buffer.size - offset;
      if (mode & MAP_READ) {
        t.reads++;
        t.readBytes += bytes;
      } else if (mode & MAP_WRITE) {
        t.uploads++;
        t.uploadBytes += bytes;
      }
      return size === undefined ? mapAsync(mode, offset) : mapAsync(mode, offset, size);
    };
    return buffer;
  };
  const queue = device.queue;
  if (queue.__sorsaCounted) return;
  queue.__sorsaCounted = true;
  const write = queue.writeBuffer.bind(queue);
  queue.writeBuffer = (buffer, offset, data, dataOffset, size) => {
    const bytes = writtenBytes(data, dataOffset, size);
    if (buffer.usage & USAGE_UNIFORM) {
      t.params++;
      t.paramBytes += bytes;
    } else {
      t.uploads++;
      t.uploadBytes += bytes;
    }
    forwardWrite(write, buffer, offset, data, dataOffset, size);
  };
}

/** What the adapter says of itself, and whether it is a software rasterizer (Mesa lavapipe, SwiftShader). */
export async function describeAdapter(): Promise<{ description: string; software: boolean } | string> {
  const reason = await ensureWebGPU();
  if (reason) return reason;
  const gpu = (globalThis as unknown as { navigator: { gpu: GPULike } }).navigator.gpu;
  type Described = AdapterLike & { info?: Record<string, string>; isFallbackAdapter?: boolean };
  let adapter: Described | null;
  try {
    adapter = (await gpu.requestAdapter()) as Described | null;
  } catch (e) {
    return `no WebGPU adapter: requestAdapter failed: ${(e as Error).message}`;
  }
  if (!adapter) return 'no WebGPU adapter: navigator.gpu.requestAdapter() returned null (no Vulkan/Metal/D3D12 driver, or none Dawn accepts)';
  const info = adapter.info ?? {};
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  const software = !!adapter.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(description);
  return { description, software };
}
