/**
 * A program that never asks for webgpu prints nothing on stderr: `init()` ('auto') looks at the
 * WebGPU adapter from a child process, so Dawn, which writes warnings straight to stderr when it
 * opens Mesa's lavapipe, is never loaded into a program that ends on wasm. Run on the built packages
 * (dist: `npm test` builds first) in a child process, as a user's program runs: the README's first
 * example, and a program that never calls `init`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function run(code: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
  return { stdout: r.stdout.trim(), stderr: r.stderr, status: r.status };
}

describe('stderr of a program that never asks for webgpu', () => {
  it("the README's first example: init() ('auto') prints nothing unless it picks webgpu", () => {
    const r = run(`import { init, tensor, matmul, sum } from '@sorsajs/core';
      const name = await init();
      const x = tensor([[1, 2], [3, 4]]);
      const y = sum(matmul(x, x), 1);
      console.log(JSON.stringify([name, Array.from(await y.data())]));`);
    expect(r.status, r.stderr).toBe(0);
    const [name, values] = JSON.parse(r.stdout) as [string, number[]];
    expect(values).toEqual([17, 37]);
    // On a hardware adapter Dawn is loaded and may speak; on wasm nothing may.
    if (name === 'wasm') expect(r.stderr).toBe('');
  });

  it('a program without init runs on wasm and prints nothing', () => {
    const r = run(`import { add, tensor, backend } from '@sorsajs/core';
      console.log(JSON.stringify([backend(), Array.from(await add(tensor([1, 2]), 1).data())]));`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['wasm', [2, 3]]);
    expect(r.stderr).toBe('');
  });

  it('backendReasons(only) probes only the backends named, so asking about wasm and cpu loads no Dawn', () => {
    const r = run(`import { backendReasons } from '@sorsajs/core';
      console.log(JSON.stringify(await backendReasons(['wasm', 'cpu'])));`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ webgpu: 'not probed', webgl: 'not probed', wasm: null, cpu: null });
    expect(r.stderr).toBe('');
    const bad = run(`import { backendReasons } from '@sorsajs/core';
      await backendReasons(['wasm', 'webgpu2']);`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/backendReasons: unknown backend "webgpu2" \(expected one of webgpu, webgl, wasm, cpu\)/);
  });
});
