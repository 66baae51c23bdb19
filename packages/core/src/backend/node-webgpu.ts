/**
 * WebGPU under Node: the `webgpu` npm package (Dawn) provides `navigator.gpu`. Browsers bring their own.
 * @module
 */
import { IN_NODE } from '../util/env.js';

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
      return device;
    };
    return adapter;
  };
  gpu.__sorsaWrapped = true;
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
