/**
 * `init()`'s look at the WebGPU adapter under Node, in a child process, so that a program that ends
 * up on wasm never loads Dawn: Dawn writes warnings straight to the process's stderr when it opens
 * some Vulkan drivers (Mesa's lavapipe: "maxDynamicUniformBuffersPerPipelineLayout artificially
 * reduced ..."), below JavaScript, where they cannot be caught or silenced.
 * @module
 */
import { IN_NODE } from '../util/env.js';
import { describeAdapter } from './node-webgpu.js';

type Described = Awaited<ReturnType<typeof describeAdapter>>;

let looked: Promise<Described> | undefined;

/**
 * `describeAdapter()`, run where its output cannot reach this process's stderr: under Node, before
 * anything has set up `navigator.gpu`, a child Node process loads `node-webgpu.js` (this module's
 * sibling in `dist`), describes the adapter and prints the result as JSON; its stderr is discarded.
 * Elsewhere (a browser, WebGPU already set up), or when the child cannot run (sources run by vitest
 * from `src/`, a bundle, a runtime whose executable is not Node), it is `describeAdapter()` in this
 * process. Once per process. The child takes ~0.2 s, about what loading Dawn here takes.
 */
export function describeAdapterQuietly(): Promise<Described> {
  looked ??= (async () => {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!IN_NODE || g.navigator?.gpu) return describeAdapter();
    return (await inChild()) ?? describeAdapter();
  })();
  return looked;
}

/** The child's answer, or undefined when it could not give one. */
async function inChild(): Promise<Described | undefined> {
  try {
    const sibling = new URL('./node-webgpu.js', import.meta.url);
    if (sibling.protocol !== 'file:') return undefined;
    const { execFile } = await import('node:child_process');
    const { existsSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    if (!existsSync(fileURLToPath(sibling))) return undefined;
    const script = 'const m = await import(process.argv[1]); process.stdout.write(JSON.stringify(await m.describeAdapter()));';
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script, sibling.href],
        { timeout: 60_000, encoding: 'utf8', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } },
        (err, out) => (err ? reject(err) : resolve(out)),
      );
    });
    const got: unknown = JSON.parse(stdout);
    if (typeof got === 'string') return got;
    if (got && typeof got === 'object' && typeof (got as { description?: unknown }).description === 'string' && typeof (got as { software?: unknown }).software === 'boolean') {
      return got as Described;
    }
    return undefined;
  } catch {
    return undefined;
  }
}
