/**
 * Backend-parametrized vitest suites: `forEachBackend('ops', (name) => { ... })` runs the body once
 * per backend that works on this machine, each suite starting with `init({ backend: name })`. A
 * backend that cannot run is skipped loudly, with the reason, both on the console and in the suite's
 * name, so a machine without a GPU never passes silently. The environment variable
 * `SORSA_BACKENDS=wasm,cpu` restricts the list.
 *
 * Importing this module probes the backends once (it awaits `backendReasons()` at load), which is
 * why it is separate from `@sorsajs/testing/vitest`.
 *
 * @example
 * ```ts
 * import { forEachBackend } from '@sorsajs/testing/backends';
 * forEachBackend('matmul', () => {
 *   it('multiplies', async () => { ... });
 * });
 * ```
 * @module
 */
import { beforeAll, describe } from 'vitest';
import { backendReasons, init, type BackendName } from '@sorsajs/core';

/** The backends `SORSA_BACKENDS` allows (all when unset): only those are probed, so a wasm-only run loads no Dawn. */
const allowed = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim());
const reasons = await backendReasons(['webgpu', 'webgl', 'wasm', 'cpu'].filter((n): n is BackendName => !allowed || allowed.includes(n)));
const printed = new Set<string>();

/**
 * The backends suites run on, in order: the most capable first.
 *
 * @example
 * ```ts
 * for (const name of BACKENDS) console.log(name);
 * ```
 */
export const BACKENDS: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/**
 * Why each backend cannot run here (absent when it can), or that `SORSA_BACKENDS` leaves it out.
 *
 * @example
 * ```ts
 * const why = skipReason('webgpu'); // undefined when webgpu works here
 * ```
 */
export function skipReason(name: BackendName): string | undefined {
  if (allowed && !allowed.includes(name)) return `not in SORSA_BACKENDS=${process.env.SORSA_BACKENDS}`;
  return reasons[name] ?? undefined;
}

/**
 * Declares `describe(\`${suite} on ${name}\`)` for every backend, running `body(name)` inside it after
 * `init({ backend: name })`; a backend that cannot run gets a skipped suite whose name says why.
 *
 * @example
 * ```ts
 * forEachBackend('qr', (name) => {
 *   it(`is orthonormal on ${name}`, async () => { ... });
 * });
 * ```
 */
export function forEachBackend(suite: string, body: (name: BackendName) => void): void {
  for (const name of BACKENDS) {
    const reason = skipReason(name);
    if (reason) {
      if (!printed.has(name)) {
        console.warn(`[sorsajs tests] SKIPPING backend ${name}: ${reason}`);
        printed.add(name);
      }
      describe.skip(`${suite} on ${name} — SKIPPED: ${reason}`, () => body(name));
      continue;
    }
    describe(`${suite} on ${name}`, () => {
      beforeAll(async () => {
        await init({ backend: name });
      });
      body(name);
    });
  }
}
