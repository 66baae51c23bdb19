/**
 * The kit in a user's project with vitest's defaults: a fresh directory with one test file and no
 * vitest config, resolving `@sorsajs/testing` (and `/vitest`) through node_modules to the built
 * package (dist: `npm test` builds first), run by vitest in a child process; and the matchers
 * registered by one import in a setup file, the config naming only that file.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

const userTest = `
import { it, expect } from 'vitest';
import fc from 'fast-check';
import '@sorsajs/testing/vitest';
import { arb, checkGrads } from '@sorsajs/testing';
import { init, mul, sin, tensor, customVjp } from '@sorsajs/core';

it('matchers, arbitraries and checkGrads work with no config', async () => {
  await init({ backend: 'cpu' });
  await expect(tensor([1, 2])).toBeAllClose([1, 2]);
  await fc.assert(fc.asyncProperty(arb.orthonormal(5, 2), async (Q) => { await expect(Q).toBeOrthonormal(); Q.dispose(); }), { numRuns: 5 });
  const x = tensor([0.3, -0.7, 1.1]);
  await checkGrads((t) => mul(sin(t), t), [x]);
  const wrong = customVjp((t) => [mul(t, t), t], (t, g) => [mul(g, t)]); // d(t²) is 2t, not t
  await expect(checkGrads(wrong, [x])).rejects.toThrow('checkGrads: argument #0');
});
`;

/** A user's project in a fresh directory outside the repository, with `files` written into it; vitest's output. */
function runUserProject(files: Record<string, string>): string {
  if (!existsSync(join(pkg, 'dist', 'vitest.js'))) throw new Error('packages/testing/dist is missing: run `npm run build` (npm test does) first');
  // Outside the repository, so vitest finds no config above it; node_modules links to the
  // workspace packages and the peers, as an install would place them.
  const dir = mkdtempSync(join(tmpdir(), 'sorsajs-user-project-'));
  try {
    mkdirSync(join(dir, 'node_modules', '@sorsajs'), { recursive: true });
    symlinkSync(join(root, 'packages', 'core'), join(dir, 'node_modules', '@sorsajs', 'core'), 'dir');
    symlinkSync(pkg, join(dir, 'node_modules', '@sorsajs', 'testing'), 'dir');
    for (const peer of ['fast-check', 'vitest']) symlinkSync(join(root, 'node_modules', peer), join(dir, 'node_modules', peer), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return execFileSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir, '--reporter=verbose'], {
      cwd: dir,
      encoding: 'utf8',
      // The child must not inherit this run's vitest settings.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|TEST$|NODE_OPTIONS$|FORCE_COLOR$)/.test(k))), NO_COLOR: '1' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it("a user's project runs the kit with vitest's defaults", () => {
  const out = runUserProject({ 'kit.test.js': userTest });
  expect(out).toMatch(/✓ .*matchers, arbitraries and checkGrads work with no config/);
  expect(out).toMatch(/1 passed/);
});

it('the matchers registered by one import in a setup file (a config naming only setupFiles)', () => {
  const out = runUserProject({
    'setup.js': "import '@sorsajs/testing/vitest';\n",
    'vitest.config.js': "export default { test: { setupFiles: ['./setup.js'] } };\n",
    'matchers.test.js': `
import { it, expect } from 'vitest';
import { init, tensor } from '@sorsajs/core';

it('toBeAllClose and toBeOrthonormal without importing the kit here', async () => {
  await init({ backend: 'cpu' });
  await expect(tensor([1, 2])).toBeAllClose([1, 2]);
  await expect(tensor([0.6, 0.8, -0.8, 0.6], [2, 2])).toBeOrthonormal();
  await expect(expect(tensor([1, 2])).toBeAllClose([1, 2.5])).rejects.toThrow('assertAllClose: at (root) index 1');
});
`,
  });
  expect(out).toMatch(/✓ .*toBeAllClose and toBeOrthonormal without importing the kit here/);
  expect(out).toMatch(/1 passed/);
});
