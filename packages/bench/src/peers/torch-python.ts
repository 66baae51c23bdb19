/**
 * The Python that runs the PyTorch peers (gpt_step.py, svd_init.py): finding one that imports
 * torch, and the environment it runs in.
 * @module
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The environment of the Python child: this one without `OPENBLAS_CORETYPE` and
 * `OPENBLAS_L2_SIZE`, which the machine sets for its own uses and which would pin OpenBLAS's
 * kernels and blocking to values it did not pick for this CPU, and with `OMP_WAIT_POLICY=PASSIVE`
 * unless it is set: torch's OpenMP threads otherwise spin while they wait, and on a 2-core machine
 * shared with another job two spinning threads starve each other (measured here under a load of
 * 5-6: the step 738-756 ms spinning, 102 ms passive, 95-168 ms on one thread).
 *
 * @example
 * ```ts
 * await run('/usr/bin/python3', [script, dir], { env: torchEnv() });
 * ```
 */
export function torchEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  env.OMP_WAIT_POLICY ??= 'PASSIVE';
  return env;
}

/**
 * The first Python that imports torch: `$PYTHON`, then `python3` on the PATH, then Debian's
 * `/usr/bin/python3` (where `apt-get install python3-torch` puts it, and which a pyenv or venv
 * `python3` earlier on the PATH hides). Resolves to the interpreter, or to why none would do.
 *
 * @example
 * ```ts
 * const found = await findTorchPython();
 * if ('skipped' in found) console.log(found.skipped);
 * ```
 */
export async function findTorchPython(): Promise<{ python: string } | { skipped: string }> {
  const tried: string[] = [];
  for (const python of [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))]) {
    try {
      await run(python, ['-c', 'import torch'], { env: torchEnv(), timeout: 60_000 });
      return { python };
    } catch (e) {
      const err = e as { code?: string; stderr?: string };
      const why = err.code === 'ENOENT' ? 'not found' : (err.stderr ?? String(e)).trim().split('\n').pop();
      tried.push(`${python}: ${why}`);
    }
  }
  return { skipped: `no Python here imports torch (${tried.join('; ')}); on Debian: apt-get install -y python3-torch libopenblas0-pthread` };
}

