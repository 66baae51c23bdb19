/**
 * Backends: choosing the gpu.js mode kernels run on.
 * @module
 */
export { init, availableBackends, backendReasons, backend, sync } from './registry.js';
export { maxElements } from './limits.js';
export type { BackendName, BackendRequest } from './types.js';
