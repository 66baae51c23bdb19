import gpujs from 'gpu.js';
import { Engine } from './engine.js';
import { describeAdapter, ensureWebGPU } from './node-webgpu.js';
import { describeAdapterQuietly } from './adapter-probe.js';
import type { BackendName, BackendRequest } from './types.js';
import { Storage } from './storage.js';
import { IN_NODE } from '../util/env.js';

const ALL: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];
const engines = new Map<BackendName, Engine>();
let current: Engine | undefined;

const PROBE = { key: 'probe', arrays: ['a'], scalars: [], body: 'return a[this.thread.x] * 2 + 1;' };

/**
 * A second probe with what real ops need: a loop whose bound is an argument, over an input far
 * larger than the output, after the kernel was first built for other sizes. gpu.js's GL kernels
 * have been seen to pass the small probe and fail this one; such a backend is reported unavailable.
 */
const PROBE_LOOP = {
  key: 'probe:loop',
  arrays: ['a'],
  scalars: ['L'],
  body: `let acc = 0;
for (let l = 0; l < L; l++) { acc += a[this.thread.x * L + l]; }
return acc;`,
};

/** Runs PROBE_LOOP at two sizes and checks the sums; null or what went wrong. */
async function probeLoop(engine: Engine): Promise<string | null> {
  for (const [rows, L] of [
    [2, 3],
    [4, 500],
  ]) {
    const data = Float32Array.from({ length: rows * L }, (_, i) => (i % 5) - 1);
    const input = Storage.ready(engine, rows * L, data);
    const out = engine.run(PROBE_LOOP, rows, [input], [L]);
    const got = await engine.read(await out.get());
    out.release();
    input.release();
    for (let r = 0; r < rows; r++) {
      let want = 0;
      for (let l = 0; l < L; l++) want += data[r * L + l];
      if (got[r] !== want) return `a loop kernel over ${rows}x${L} values returned ${got[r]} for row ${r}, expected ${want} (kernels give wrong results here)`;
    }
  }
  return null;
}

/** Runs one small kernel on `name` and checks what comes back; resolves to null or the reason it cannot run. */
async function probe(name: BackendName): Promise<string | null> {
  if (name === 'webgpu') {
    const adapter = await describeAdapter();
    if (typeof adapter === 'string') return adapter;
  } else if (name === 'webgl') {
    if (IN_NODE && !gpujs.GPU.isHeadlessGLSupported) {
      const { createRequire } = await import('node:module');
      let installed = true;
      try {
        createRequire(import.meta.url)('gl');
      } catch {
        installed = false;
      }
      return installed
        ? 'headless-gl is installed but cannot create a context: it needs an X display (run under xvfb-run -a)'
        : 'headless-gl is not installed (the optional "gl" package needs libxi-dev libx11-dev libxext-dev libglu1-mesa-dev libglew-dev pkg-config to build, and an X display such as xvfb-run)';
    }
  } else if (name === 'wasm' && !gpujs.GPU.isWebAssemblySupported) {
    return 'WebAssembly is not supported here';
  }
  let engine: Engine | undefined;
  try {
    engine = engines.get(name) ?? new Engine(name);
    const input = Storage.ready(engine, 3, new Float32Array([1, 2, 3]));
    const out = engine.run(PROBE, 3, [input], []);
    const got = await engine.read(await out.get());
    out.release();
    input.release();
    if (got[0] !== 3 || got[1] !== 5 || got[2] !== 7) return `probe kernel returned [${Array.from(got).join(', ')}], expected [3, 5, 7]`;
    const loop = (await probeLoop(engine)) ?? (name === 'wasm' ? await probeWide(engine) : null);
    if (loop) {
      engine.destroy();
      return loop;
    }
    engines.set(name, engine);
    return null;
  } catch (e) {
    if (engine && !engines.has(name)) {
      try {
        engine.destroy();
      } catch {
        /* the probe already failed; nothing more to report */
      }
    }
    return `${name} kernel failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

/**
 * wasm only: a kernel returning Array(16) per cell, what the wasm matmul's 4 x 16 tiles return. Only
 * gpu.js with this project's patch (patches/gpu.js+2.24.1.patch) builds it; upstream gpu.js's wasm
 * code generator refuses wide returns, so without the patch matmul would fail at its first call.
 */
const PROBE_WIDE = {
  key: 'probe:wide',
  arrays: ['a'],
  scalars: [],
  components: 16 as const,
  body: `const v = a[this.thread.x];
return [${Array.from({ length: 16 }, (_, k) => (k === 0 ? 'v' : `v + ${k}`)).join(', ')}];`,
};

/**
 * @internal Why `engine` (wasm) cannot run the wide-return kernels its matmul needs, or null: part
 * of the wasm probe, so that `init` refuses an unpatched gpu.js with the remedy instead of matmul
 * failing later with gpu.js's own message.
 *
 * @example
 * ```ts
 * await probeWide(engine()); // null with the patch
 * ```
 */
export async function probeWide(engine: Engine): Promise<string | null> {
  const input = Storage.ready(engine, 2, new Float32Array([10, 20]));
  try {
    const out = engine.run(PROBE_WIDE, 2, [input], []);
    const got = await engine.read(await out.get());
    out.release();
    for (let c = 0; c < 2; c++) {
      for (let k = 0; k < 16; k++) {
        if (got[c * 16 + k] !== 10 * (c + 1) + k) return `a kernel returning Array(16) gave ${got[c * 16 + k]} at cell ${c}, component ${k}, expected ${10 * (c + 1) + k} (kernels give wrong results here)`;
      }
    }
    return null;
  } catch (e) {
    const first = (e as Error).message.split('\n')[0];
    // Upstream gpu.js's own refusal of a wide return: the patch is missing. Anything else is reported as it is.
    if (!/does not yet support returning Array\(16\)/.test(first)) return `a kernel returning Array(16) failed: ${first}`;
    return `gpu.js is not patched: its wasm kernels cannot return Array(16), which matmul needs (${first}). Install gpu.js with this project's patches/gpu.js+2.24.1.patch (the repository's npm install applies it through patch-package), or use init({ backend: 'cpu' })`;
  } finally {
    input.release();
  }
}

const probes = new Map<BackendName, Promise<string | null>>();
function probeOnce(name: BackendName): Promise<string | null> {
  let p = probes.get(name);
  if (!p) {
    p = probe(name);
    probes.set(name, p);
  }
  return p;
}

/**
 * Selects the backend every later op runs on and resolves to its name.
 *
 * `'auto'` (the default) picks a hardware WebGPU adapter when there is one, else `wasm`. A software
 * WebGPU adapter (Mesa lavapipe) is only used when asked for by name. Under Node, `'auto'` looks at
 * the adapter from a child process, so that a program that ends on wasm never loads Dawn here and
 * prints nothing (Dawn writes warnings to stderr on lavapipe); `'webgpu'`, `availableBackends` and
 * `backendReasons` load it in this process. Asking for a backend that cannot run here rejects with
 * the reason.
 *
 * @example
 * ```ts
 * import { init, tensor, add } from '@sorsajs/core';
 * const name = await init({ backend: 'wasm' }); // 'wasm'
 * const y = add(tensor([1, 2]), 1);
 * ```
 */
export async function init(opts: { backend?: BackendRequest } = {}): Promise<BackendName> {
  const want = opts.backend ?? 'auto';
  if (want === 'auto') {
    const adapter = await describeAdapterQuietly();
    if (typeof adapter !== 'string' && !adapter.software && (await probeOnce('webgpu')) === null) {
      return use('webgpu');
    }
    return init({ backend: 'wasm' });
  }
  if (!ALL.includes(want)) throw new Error(`init: unknown backend "${String(want)}" (expected one of auto, ${ALL.join(', ')})`);
  const reason = await probeOnce(want);
  if (reason) throw new Error(`init: backend "${want}" cannot run here: ${reason}`);
  return use(want);
}

function use(name: BackendName): BackendName {
  current = engines.get(name)!;
  return name;
}

/**
 * Lists the backends that actually run a kernel on this machine (each is probed once).
 *
 * @example
 * ```ts
 * const names = await availableBackends(); // e.g. ['wasm', 'cpu']
 * ```
 */
export async function availableBackends(): Promise<BackendName[]> {
  const reasons = await Promise.all(ALL.map((n) => probeOnce(n)));
  return ALL.filter((_, i) => reasons[i] === null);
}

/**
 * Why each unavailable backend cannot run here (null for those that can). Test suites print this
 * when they skip. `only` limits the probing to those backends (the others read 'not probed'), so
 * that a program that never uses webgpu does not load Dawn to ask.
 *
 * @example
 * ```ts
 * const why = await backendReasons(); // { webgpu: 'no WebGPU adapter: ...', wasm: null, ... }
 * const cpuOnly = await backendReasons(['wasm', 'cpu']); // webgpu, webgl: 'not probed'
 * ```
 */
export async function backendReasons(only: readonly BackendName[] = ALL): Promise<Record<BackendName, string | null>> {
  for (const n of only) if (!ALL.includes(n)) throw new Error(`backendReasons: unknown backend ${JSON.stringify(n)} (expected one of ${ALL.join(', ')})`);
  const reasons = await Promise.all(ALL.map((n) => (only.includes(n) ? probeOnce(n) : 'not probed')));
  return Object.fromEntries(ALL.map((n, i) => [n, reasons[i]])) as Record<BackendName, string | null>;
}

/**
 * The name of the backend ops run on now. Before any `init`, ops run on `wasm`.
 *
 * @example
 * ```ts
 * await init({ backend: 'cpu' });
 * backend(); // 'cpu'
 * ```
 */
export function backend(): BackendName {
  return engine().name;
}

/** The engine ops run on; before `init`, a wasm engine is created synchronously (WebAssembly is always there under Node). */
export function engine(): Engine {
  if (!current) {
    let e = engines.get('wasm');
    if (!e) {
      e = new Engine('wasm');
      engines.set('wasm', e);
    }
    current = e;
  }
  return current;
}

/**
 * Waits until every kernel queued on the current backend has run.
 *
 * @example
 * ```ts
 * const y = exp(x);
 * await sync(); // y is computed; y.data() would not wait
 * ```
 */
export function sync(): Promise<void> {
  return engine().sync();
}

/** Keeps `ensureWebGPU` reachable for tools that set up WebGPU without choosing it. */
export { ensureWebGPU };
