/** The gpu.js backends sorsajs can run on. */
export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** What `init` accepts: a backend by name, or `'auto'` to let sorsajs choose. */
export type BackendRequest = BackendName | 'auto';

/**
 * A device-resident result of a gpu.js kernel run with `pipeline: true`: a WebGPU buffer handle or a
 * WebGL texture. Host-resident values are plain `Float32Array`s.
 */
export interface DeviceHandle {
  toArray(): Float32Array | number[] | Promise<Float32Array | number[]>;
  delete(): void;
}

/** The storage of one tensor once computed: on the host (cpu, wasm, uploaded data) or on a device. */
export type Payload = Float32Array | DeviceHandle;
