/**
 * `--backend` of the commands that compute (eval, generate, merge, export, drift): the option, and
 * starting the chosen backend with its failure as a one-line UsageError naming the flag.
 * @module
 */
import { init } from '@sorsajs/core';
import { Option } from 'commander';
import { UsageError } from './errors.js';

/** The backends `--backend` accepts (`auto`: webgpu where it works, else wasm). */
export const BACKENDS = ['auto', 'webgpu', 'webgl', 'wasm', 'cpu'] as const;

/**
 * The `--backend <name>` option, default `auto`.
 *
 * @example
 * ```ts
 * program.command('eval').addOption(backendOption());
 * ```
 */
export function backendOption(): Option {
  return new Option('--backend <name>', 'compute backend').choices([...BACKENDS]).default('auto');
}

/**
 * Starts `name` and resolves to the backend in use; a backend that cannot start is a UsageError.
 *
 * @example
 * ```ts
 * const used = await startBackend('wasm'); // 'wasm'
 * ```
 */
export async function startBackend(name: string): Promise<string> {
  return init({ backend: name as (typeof BACKENDS)[number] }).catch((e: Error) => {
    throw new UsageError(`--backend ${name}: ${e.message.replace(/^init: /, '')}`);
  });
}
