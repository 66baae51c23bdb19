/**
 * `sorsa drift`, driven as a subprocess on the tiny GPT-2: ΔΣ and ΔD of a run's adapted layers
 * against float64 SVDs of the base and of the float64-reference tuned weights; the same from a
 * tuned checkpoint folder (only the changed layers); the table, the JSON and the SVG chart; each
 * user error.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { loadCheckpoint } from '@sorsajs/sorsa';
import { loadPretrained, savePretrained, type ParamTree } from '@sorsajs/models';
import { svdReference } from '@sorsajs/testing';
import { additionJsonl, runCli, tempDir, tinyModel, type CliResult } from './fixture.js';
import { EPS32, expectUsageError, f32, leavesByPath, narrowGpt2, sorsaTuned } from './reference.js';

let gpt2: string;
let llama: string;
let narrow: string;
let work: string;
let run: string;
/** A checkpoint of the run's tuned weights, written here from the float64 references. */
let tunedDir: string;

/** Per adapted weight: the float64 ΔΣ and ΔD, and their tolerances. */
const want = new Map<string, { deltaSigma: number; deltaD: number; tolSigma: number; tolD: number }>();

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  [gpt2, llama, narrow] = [await tinyModel('gpt2'), await tinyModel('llama'), await narrowGpt2()];
  work = tempDir();
  const data = additionJsonl(join(work, 'train.jsonl'));
  run = join(work, 'run');
  const r = await runCli(['finetune', '--model', gpt2, '--data', data, '--steps', '6', '--seq', '24', '--lr', '1e-2', '--rank', '4', '--backend', 'wasm', '--out', run, '--plain']);
  expect(r.code, r.stderr).toBe(0);

  const base = await loadPretrained(gpt2);
  const ck = await loadCheckpoint(join(run, 'checkpoints', 'step-0000006.safetensors'));
  const init = await loadCheckpoint(join(run, 'initial.safetensors'));
  const t = ck.trees.trainable as Record<string, unknown>;
  const i0 = init.trees.trainable as Record<string, unknown>;
  const tuned = new Map<string, c.Tensor>();
  for (const [p, W] of leavesByPath(base.params)) {
    if (!Object.hasOwn(t, p)) continue;
    const [m, n] = W.shape;
    const w0 = await W.data();
    const wt = f32(await sorsaTuned(w0, m, n, t[p], i0[p]));
    tuned.set(p, c.tensor(wt, W.shape));
    // The paper's measures from float64 SVDs (rows of U and V are the singular vectors).
    const a = svdReference(w0, m, n);
    const b = svdReference(wt, m, n);
    const k = a.S.length;
    let ds = 0;
    let align = 0;
    let gap = Infinity;
    const dot = (x: number[], y: number[]): number => x.reduce((s, v, j) => s + v * y[j], 0);
    for (let i = 0; i < k; i++) {
      ds += Math.abs(b.S[i] - a.S[i]);
      align += Math.abs(dot(a.U[i], b.U[i])) + Math.abs(dot(a.V[i], b.V[i]));
      if (i > 0) gap = Math.min(gap, a.S[i - 1] - a.S[i], b.S[i - 1] - b.S[i]);
    }
    // float32 singular values are good to a few ulps of σ_max, so their mean differences to twice
    // that; singular vectors to about eps σ_max / gap, the gap the smallest distance between two
    // singular values (measured: within 1/10 of these bounds on wasm).
    want.set(p, { deltaSigma: ds / k, deltaD: 1 - (0.5 * align) / k, tolSigma: 16 * EPS32 * a.S[0], tolD: 4 * EPS32 * (a.S[0] / gap) });
  }
  tunedDir = join(work, 'tuned');
  await savePretrained(base, c.tree.mapWithPath((p, W) => tuned.get(p) ?? W, base.params) as ParamTree, tunedDir);
  c.tree.dispose([base.params, [...tuned.values()], ck.trees, init.trees]);
}, 120_000);

interface Row {
  path: string;
  deltaSigma: number;
  deltaD: number;
}

/** The rows of `--json`, checked against the float64 references. */
function expectRows(r: CliResult): { rows: Row[]; svg: string | null } {
  expect(r.code, r.stderr).toBe(0);
  const got = JSON.parse(r.stdout) as { layers: Row[]; svg: string | null };
  expect(got.layers.map((x) => x.path)).toEqual([...want.keys()]);
  for (const row of got.layers) {
    const w = want.get(row.path)!;
    expect(Math.abs(row.deltaSigma - w.deltaSigma), `${row.path} ΔΣ ${row.deltaSigma} vs ${w.deltaSigma}`).toBeLessThanOrEqual(w.tolSigma);
    expect(Math.abs(row.deltaD - w.deltaD), `${row.path} ΔD ${row.deltaD} vs ${w.deltaD}`).toBeLessThanOrEqual(w.tolD);
  }
  return { rows: got.layers, svg: got.svg };
}

/** The chart file holds the ΔΣ and the ΔD chart, each with every layer. */
function expectChart(file: string, rows: readonly Row[]): void {
  const svg = readFileSync(file, 'utf8');
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.match(/<svg /g)).toHaveLength(3);
  expect(svg).toContain('<title>ΔΣ per layer:');
  expect(svg).toContain('<title>ΔD per layer:');
  for (const r of rows) expect(svg.split(`<title>${r.path.replace(/\.weight$/, '')}</title>`)).toHaveLength(3);
}

describe('sorsa drift', () => {
  it('--run: every adapted layer, ΔΣ and ΔD against float64 SVDs; the chart in the run folder by default', async () => {
    const { rows, svg } = expectRows(await runCli(['drift', '--base', gpt2, '--run', run, '--json', '--backend', 'wasm']));
    expect(svg).toBe(join(run, 'drift.svg'));
    expectChart(join(run, 'drift.svg'), rows);
  });

  it('--run: the aligned table on stdout; --svg FILE', async () => {
    const file = join(work, 'chart.svg');
    const r = await runCli(['drift', '--base', gpt2, '--run', run, '--svg', file, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^layer\s+ΔΣ\s+ΔD$/);
    const body = lines.slice(1, 1 + want.size);
    expect(body.map((l) => l.split(/\s+/)[0])).toEqual([...want.keys()]);
    for (const l of body) expect(l).toMatch(/^\S+\s+\d\.\d{3}e[-+]\d+\s+\d\.\d{3}e[-+]\d+$/);
    // Aligned: every row as long as the header, the numbers right-aligned in their columns.
    expect(new Set(body.map((l) => [...l].length)).size).toBe(1);
    expect(lines.slice(1 + want.size)).toEqual(['', expect.stringMatching(/^mean of 8 layers\s+\S+\s+\S+$/), '', `chart: ${file}`, '']);
    expect(existsSync(file)).toBe(true);
  });

  it('--tuned DIR: exactly the weights that differ from the base, with the same measures; the chart in the working folder', async () => {
    const cwd = tempDir('sorsa-drift-cwd-');
    const { svg } = expectRows(await runCli(['drift', '--base', gpt2, '--tuned', tunedDir, '--json', '--backend', 'wasm'], { cwd }));
    expect(svg).toBe('drift.svg');
    expect(readdirSync(cwd)).toEqual(['drift.svg']);
  });

  it('--no-svg writes no chart; a tuned folder equal to the base has no layer to show', async () => {
    rmSync(join(run, 'drift.svg'), { force: true });
    const cwd = tempDir('sorsa-drift-cwd-');
    const [a, b] = await Promise.all([
      runCli(['drift', '--base', gpt2, '--run', run, '--no-svg', '--json', '--backend', 'wasm']),
      runCli(['drift', '--base', gpt2, '--tuned', gpt2, '--backend', 'wasm'], { cwd }),
    ]);
    expect(expectRows(a).svg).toBeNull();
    expect(existsSync(join(run, 'drift.svg'))).toBe(false);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe(`no layer of --tuned ${gpt2} differs from --base ${gpt2}\n`);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('sorsa drift --help', () => {
  it('shows the options with their defaults, and an example', async () => {
    const r = await runCli(['drift', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const text of ['--svg <file>', '(default: false)', 'Example:', 'sorsa drift --base']) expect(r.stdout).toContain(text);
  });
});

describe.concurrent('sorsa drift: user errors (one line naming the flag or file, status 2)', () => {
  it('unknown flag', async () => expectUsageError(await runCli(['drift', '--base', gpt2, '--run', run, '--bogus']), /unknown option '--bogus'/));
  it('both --tuned and --run', async () => expectUsageError(await runCli(['drift', '--base', gpt2, '--run', run, '--tuned', tunedDir]), /--tuned and --run: give one of them/));
  it('neither --tuned nor --run', async () => expectUsageError(await runCli(['drift', '--base', gpt2]), /--tuned and --run: give one of them/));
  it('missing --base folder', async () => expectUsageError(await runCli(['drift', '--base', join(work, 'none'), '--run', run]), /--base .*none: no such directory/));
  it('--svg in a missing folder', async () => expectUsageError(await runCli(['drift', '--base', gpt2, '--run', run, '--svg', join(work, 'no', 'd.svg')]), /--svg .*d\.svg: the folder .* does not exist/));
  it('--tuned of another family', async () =>
    expectUsageError(await runCli(['drift', '--base', gpt2, '--tuned', llama, '--backend', 'wasm']), /--tuned .*: its weight "model\.embed_tokens\.weight" is not in --base \(are they the same architecture\?\)/));
  it('--tuned of another width', async () =>
    expectUsageError(await runCli(['drift', '--base', gpt2, '--tuned', narrow, '--backend', 'wasm']), /--tuned .*: its weight "transformer\.wte\.weight" is \[257,16\], the base's \[257,32\]/));
  it('--run of the GPT-2 on a Llama base', async () =>
    expectUsageError(await runCli(['drift', '--base', llama, '--run', run, '--backend', 'wasm']), /--run: the adapter has weight "transformer\.h\.0\.attn\.c_attn\.weight", which the model does not/));
});
