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

/**
 * What a storage needs of the engine that made it: the backend's name, and reading back and freeing
 * its payloads. `Engine` implements it; storage.ts names this interface rather than the class so that
 * it need not import engine.ts, which makes storages.
 */
export interface PayloadOwner {
  readonly name: BackendName;
  /** Reads a payload back to the host as a fresh Float32Array. */
  read(p: Payload): Promise<Float32Array>;
  /**
   * Marks a computed payload as unchanging until it is freed (a storage's value is immutable), so
   * that kernels which read it again need not copy it in again (on wasm; a no-op elsewhere).
   */
  seal(p: Payload): void;
  /** Frees a payload's device memory. */
  free(p: Payload): void;
}
