/**
 * The published entry points as a user's program loads them: `@sorsajs/core`, its
 * `@sorsajs/core/internal` subpath, `@sorsajs/linalg`, `@sorsajs/models`, `@sorsajs/sorsa` and
 * `@sorsajs/testing`, resolved through node_modules to the built packages (dist: `npm test` builds
 * first) by `import` and by `require` in a child process. `require` of an ES module needs Node 20.19
 * or newer; older versions skip that test, saying so. `@sorsajs/testing/backends` awaits at load
 * (it probes the backends), so only `import` can load it.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** Runs `code` with node from the repository root (so node_modules/@sorsajs/* resolve) and returns its stdout. */
function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

const [major, minor] = process.versions.node.split('.').map(Number);
const requiresEsm = major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);
const why = `Node ${process.versions.node} cannot require() an ES module (20.19+ or 22.12+ can)`;
if (!requiresEsm) console.warn(`exports.test.ts: skipping the require() test: ${why}`);

describe('package entry points', () => {
  it('import() loads the root, the internal subpath and linalg, and they compute', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import * as c from '@sorsajs/core'; import * as i from '@sorsajs/core/internal'; import { qr } from '@sorsajs/linalg';
       const y = c.add(c.tensor([1, 2]), 1);
       console.log(JSON.stringify([Array.from(await y.data()), 'internal' in c, typeof i.launch, typeof qr]));`,
    ]);
    expect(JSON.parse(out)).toEqual([[2, 3], false, 'function', 'function']);
  });

  it.skipIf(!requiresEsm)(`require() loads every package's root and the testing kit's vitest subpath${requiresEsm ? '' : ` (skipped: ${why})`}`, () => {
    const out = node([
      '-e',
      `const names = ['@sorsajs/linalg', '@sorsajs/models', '@sorsajs/sorsa', '@sorsajs/testing', '@sorsajs/testing/vitest'];
       console.log(JSON.stringify([typeof require('@sorsajs/sorsa').adaptParams, typeof require('@sorsajs/models').loadPretrained, typeof require('@sorsajs/testing').assertAllClose, names.every((n) => typeof require(n) === 'object')]));`,
    ]);
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', true]);
  });

  it.skipIf(!requiresEsm)(`require() loads them too${requiresEsm ? '' : ` (skipped: ${why})`}`, () => {
    const out = node([
      '-e',
      `const c = require('@sorsajs/core'); const i = require('@sorsajs/core/internal'); const { qr } = require('@sorsajs/linalg');
       c.add(c.tensor([1, 2]), 1).data().then((d) => console.log(JSON.stringify([Array.from(d), typeof i.launch, typeof qr])));`,
    ]);
    expect(JSON.parse(out)).toEqual([[2, 3], 'function', 'function']);
  });
});
