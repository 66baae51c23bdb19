/**
 * `sorsa drift`: the SORSA paper's analysis of how tuning moved each adapted weight, ΔΣ (the mean
 * change of the singular values) and ΔD (one less the mean alignment of the singular vectors),
 * between a base checkpoint and a tuned one or a run of `sorsa finetune`.
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tensor, abs, max, sub, tidy, tree } from '@sorsajs/core';
import type { Model, ParamTree } from '@sorsajs/models';
import type { Command } from 'commander';
import { driftParams } from '../../drift.js';
import { barChart } from '../../report/svg.js';
import { backendOption, startBackend } from '../backend.js';
import { EXIT, UsageError } from '../errors.js';
import { writeTextAtomic } from '../run-dir.js';
import { linearWeights, weightsAt } from '../targets.js';
import { applyAdapter, loadModel, loadRunAdapter, type LoadedAdapter } from '../tuned.js';

/**
 * The options of `sorsa drift`.
 *
 * @example
 * ```ts
 * const a: DriftArgs = { base: 'checkpoints/gpt2', tuned: null, run: 'runs/x', json: false, svg: null, backend: 'auto' };
 * ```
 */
export interface DriftArgs {
  base: string;
  tuned: string | null;
  run: string | null;
  json: boolean;
  /** The chart's file; null: the default (drift.svg in the run folder, or in the working folder); false: none. */
  svg: string | null | false;
  backend: string;
}

/**
 * One row of the analysis.
 *
 * @example
 * ```ts
 * const row: LayerDrift = { path: 'transformer.h.0.attn.c_attn.weight', deltaSigma: 1.3e-4, deltaD: 4e-5 };
 * ```
 */
export interface LayerDrift {
  /** The weight's path, `<module>.weight`. */
  path: string;
  deltaSigma: number;
  deltaD: number;
}


/** The leaves of a tree by path. */
function byPath(t: unknown): Map<string, unknown> {
  const leaves = tree.leaves(t);
  return new Map(tree.leafPaths(t).map((p, i) => [p, leaves[i]]));
}

/**
 * The 2-D block weights of `tuned` that differ from `base` (both of one architecture: the same
 * paths and shapes, or a UsageError naming `--tuned`).
 */
async function changedWeights(base: ParamTree, tuned: ParamTree, flag: string): Promise<string[]> {
  const b = byPath(base);
  const t = byPath(tuned);
  for (const [p, x] of t) {
    const y = b.get(p);
    if (!(y instanceof Tensor) || !(x instanceof Tensor) || x.shape.join() !== y.shape.join()) {
      throw new UsageError(`${flag}: its weight "${p}" ${y instanceof Tensor && x instanceof Tensor ? `is [${x.shape}], the base's [${y.shape}]` : 'is not in --base'} (are they the same architecture?)`);
    }
  }
  if (t.size !== b.size) throw new UsageError(`${flag}: it has ${t.size} weights, --base ${b.size} (are they the same architecture?)`);
  const out: string[] = [];
  for (const p of linearWeights(tuned, [...t.keys()])) {
    const x = t.get(p) as Tensor;
    const d = tidy(() => max(abs(sub(x, b.get(p) as Tensor))));
    const v = (await d.data())[0];
    d.dispose();
    // NaN counts as changed: its ΔΣ will say so.
    if (!(v === 0)) out.push(p);
  }
  return out;
}

/**
 * The rows as an aligned table, with the means as a last line.
 *
 * @example
 * ```ts
 * driftTable([{ path: 'h.0.attn.c_attn.weight', deltaSigma: 1.3e-4, deltaD: 4e-5 }]);
 * // layer                   ΔΣ        ΔD ...
 * ```
 */
export function driftTable(rows: readonly LayerDrift[]): string {
  const fmt = (x: number): string => (Number.isFinite(x) ? x.toExponential(3) : String(x));
  const head = ['layer', 'ΔΣ', 'ΔD'];
  const body = rows.map((r) => [r.path, fmt(r.deltaSigma), fmt(r.deltaD)]);
  const mean = (k: 'deltaSigma' | 'deltaD'): number => rows.reduce((s, r) => s + r[k], 0) / rows.length;
  const all = [head, ...body, [`mean of ${rows.length} layers`, fmt(mean('deltaSigma')), fmt(mean('deltaD'))]];
  const w = [0, 1, 2].map((j) => Math.max(...all.map((r) => [...r[j]].length)));
  const line = (r: string[]): string => `${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}`.trimEnd();
  return [line(head), ...body.map(line), '', line(all[all.length - 1])].join('\n');
}

/**
 * The chart file: the paper's two figures, ΔΣ and ΔD per layer (bar charts of the report module),
 * one above the other in one SVG document. Each chart keeps its own drawing and attributes; its
 * outer `<svg>` is only given a place (x, y, width, height) in the document.
 *
 * @example
 * ```ts
 * await writeTextAtomic('drift.svg', driftSvg(rows, 'runs/gpt2-sorsa'));
 * ```
 */
export function driftSvg(rows: readonly LayerDrift[], title: string): string {
  const categories = rows.map((r) => r.path.replace(/\.weight$/, ''));
  const charts = [
    barChart({ title: `ΔΣ per layer: ${title}`, yLabel: 'ΔΣ (mean |σᵢ(Wt) − σᵢ(W0)|)', categories, series: [{ name: 'ΔΣ', values: rows.map((r) => r.deltaSigma) }] }),
    barChart({ title: `ΔD per layer: ${title}`, yLabel: 'ΔD (1 − mean alignment of uᵢ, vᵢ)', categories, series: [{ name: 'ΔD', values: rows.map((r) => r.deltaD) }] }),
  ];
  let y = 0;
  let width = 0;
  const placed = charts.map((svg) => {
    const m = /^<svg [^>]*viewBox="0 0 ([\d.]+) ([\d.]+)"[^>]*>/.exec(svg);
    if (!m) throw new Error('drift: a chart of the report module does not start with <svg ... viewBox="0 0 W H">');
    const [w, h] = [Number(m[1]), Number(m[2])];
    // The chart's own attributes (viewBox, fonts, accessible name) stay; its page-following width and style go.
    const attrs = m[0].slice('<svg '.length, -1).replace(/\s(width|style)="[^"]*"/g, '');
    const out = `<svg x="0" y="${y}" width="${w}" height="${h}" ${attrs}>${svg.slice(m[0].length)}`;
    y += h;
    width = Math.max(width, w);
    return out;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${y}" width="${width}" height="${y}">${placed.join('')}</svg>\n`;
}

/**
 * Runs `sorsa drift`: prints the table (or JSON), writes the chart, resolves to the exit status;
 * user errors throw UsageError.
 *
 * @example
 * ```ts
 * process.exitCode = await driftCommand({ base: 'checkpoints/gpt2', tuned: null, run: 'runs/x', json: true, svg: false, backend: 'auto' });
 * ```
 */
export async function driftCommand(a: DriftArgs): Promise<number> {
  if ((a.tuned === null) === (a.run === null)) throw new UsageError('--tuned and --run: give one of them (a tuned checkpoint folder, or a run folder of sorsa finetune)');
  if (!existsSync(a.base)) throw new UsageError(`--base ${a.base}: no such directory`);
  if (a.tuned !== null && !existsSync(a.tuned)) throw new UsageError(`--tuned ${a.tuned}: no such directory`);
  if (a.run !== null && !existsSync(a.run)) throw new UsageError(`--run ${a.run}: no such directory`);
  const svgFile = a.svg === false ? null : (a.svg ?? (a.run !== null ? join(statSync(a.run).isDirectory() ? a.run : dirname(dirname(a.run)), 'drift.svg') : 'drift.svg'));
  if (svgFile !== null && !existsSync(dirname(svgFile))) throw new UsageError(`--svg ${svgFile}: the folder ${dirname(svgFile)} does not exist`);
  await startBackend(a.backend);
  const base = await loadModel(a.base, '--base');
  let other: Model | null = null;
  let adapter: LoadedAdapter | null = null;
  let tuned: ParamTree | null = null;
  try {
    let paths: string[];
    if (a.run !== null) {
      adapter = await loadRunAdapter(a.run, '--run');
      tuned = applyAdapter(base.params, adapter, '--run');
      // The linear layers a run trained (a full fine-tune also trains embeddings, norms and biases).
      paths = linearWeights(base.params, Object.keys(adapter.trainable));
    } else {
      other = await loadModel(a.tuned!, '--tuned');
      tuned = other.params;
      paths = await changedWeights(base.params, tuned, `--tuned ${a.tuned}`);
    }
    const d = await driftParams(weightsAt(base.params, paths), weightsAt(tuned, paths));
    const rows: LayerDrift[] = paths.map((p) => ({ path: p, deltaSigma: d[p].deltaSigma, deltaD: d[p].deltaD }));
    const chart = svgFile !== null && rows.length > 0 ? svgFile : null;
    if (chart !== null) await writeTextAtomic(chart, driftSvg(rows, a.run ?? a.tuned!));
    if (a.json) {
      process.stdout.write(`${JSON.stringify({ base: a.base, tuned: a.tuned, run: a.run, svg: chart, layers: rows }, null, 2)}\n`);
    } else if (rows.length === 0) {
      process.stdout.write(`no layer of --tuned ${a.tuned} differs from --base ${a.base}\n`);
    } else {
      process.stdout.write(`${driftTable(rows)}\n${chart !== null ? `\nchart: ${chart}\n` : ''}`);
    }
    return EXIT.ok;
  } finally {
    tree.dispose([base.params, other?.params, adapter?.trainable, adapter?.initial, a.run !== null ? tuned : null]);
  }
}

/**
 * Adds `sorsa drift` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa drift --base DIR (--tuned DIR | --run DIR)
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('drift')
    .summary("the paper's ΔΣ and ΔD of every adapted layer")
    .description(
      "The SORSA paper's analysis of parameter variation, per adapted layer: ΔΣ = mean |σ_i(W_t) − σ_i(W_0)|, the change of\n" +
        'the singular values, and ΔD = 1 − ½ mean(|⟨u_i(W_t), u_i(W_0)⟩| + |⟨v_i(W_t), v_i(W_0)⟩|), the turn of the singular\n' +
        'vectors, from full SVDs of the base weight W_0 and the tuned W_t. With --run: the layers the run adapted, tuned by its\n' +
        'newest checkpoint; with --tuned: every 2-D weight of the blocks that differs from the base. Prints a table (or JSON) and\n' +
        'writes the two measures as bar charts in one SVG file.',
    )
    .requiredOption('--base <dir>', 'the base checkpoint folder')
    .option('--tuned <dir>', 'a tuned checkpoint folder of the same architecture (e.g. from sorsa merge)')
    .option('--run <dir>', 'a run folder of sorsa finetune, trained on --base')
    .option('--svg <file>', 'the chart of ΔΣ and ΔD per layer (default: drift.svg in the --run folder, or in the working folder)')
    .option('--no-svg', 'write no chart')
    .option('--json', 'print the rows as a JSON object instead of the table', false)
    .addOption(backendOption())
    .addHelpText('after', '\nExample:\n  sorsa drift --base checkpoints/gpt2 --run runs/gpt2-sorsa\n  sorsa drift --base checkpoints/gpt2 --tuned checkpoints/gpt2-full --json')
    .action(async (o: Record<string, unknown>) => {
      await run(() =>
        driftCommand({
          base: o.base as string,
          tuned: (o.tuned as string | undefined) ?? null,
          run: (o.run as string | undefined) ?? null,
          json: o.json as boolean,
          svg: o.svg === false ? false : ((o.svg as string | undefined) ?? null),
          backend: o.backend as string,
        }),
      );
    });
}
