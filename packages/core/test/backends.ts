/**
 * Backend-parametrized suites: `forEachBackend('ops', (name) => { ... })` runs the body once per
 * backend that works on this machine. A backend that cannot run is skipped loudly, with the reason,
 * both on the console and in the suite's name. SORSA_BACKENDS=wasm,cpu restricts the list.
 */
import { describe, beforeAll } from 'vitest';
import { backendReasons, init, type BackendName } from '@sorsajs/core';

const reasons = await backendReasons();
const only = process.env.SORSA_BACKENDS?.split(',').map((s) => s.trim()) as BackendName[] | undefined;
const printed = new Set<string>();

export function forEachBackend(suite: string, body: (name: BackendName) => void): void {
  for (const name of ['webgpu', 'webgl', 'wasm', 'cpu'] as BackendName[]) {
    const reason = only && !only.includes(name) ? `not in SORSA_BACKENDS=${process.env.SORSA_BACKENDS}` : reasons[name];
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
