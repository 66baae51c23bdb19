/**
 * The comparison's report: `report.json` (the schema below) and `report.html`, one self-contained
 * page with the paper's figures at small scale: the loss curves of every method on one chart
 * (Figure 1), the accuracy with its spread over seeds, ΔΣ and ΔD per layer (Figures 2 and 3), and
 * the table beside the paper's GSM8K numbers.
 * @module
 */
import { join } from 'node:path';
import type { Method } from '../cli/commands/finetune.js';
import { writeTextAtomic } from '../cli/run-dir.js';
import { barChart, lineChart, renderReport } from '../report/index.js';

/** One method's results. */
export interface MethodResult {
  /** The training loss of every step (seed 0, chosen learning rate). */
  trainLoss: number[];
  /** Test loss, mean over seeds. */
  evalLoss: number;
  /** Test loss per seed. */
  evalLossBySeed: number[];
  /** Exact-match accuracy on the test split in percent, mean over seeds. */
  accuracy: number;
  /** Its sample standard deviation over seeds. */
  accuracySd: number;
  /** Accuracy per seed. */
  accuracyBySeed: number[];
  /** Trainable parameters. */
  trainableParams: number;
  /** Wall seconds of one fine-tuning run, mean over seeds. */
  seconds: number;
  /** The learning rate the sweep chose. */
  lr: number;
  /** The sweep: validation loss of each learning rate tried (seed 0). */
  sweep: { lr: number; validationLoss: number }[];
}

/** report.json. */
export interface CompareReport {
  /** The base model before fine-tuning, and where it came from. */
  base: { evalLoss: number; accuracy: number; [k: string]: unknown };
  /** Results per method. */
  methods: Partial<Record<Method, MethodResult>>;
  /** ΔΣ and ΔD of every adapted layer (seed 0), on the merged weights against the base. */
  drift: Partial<Record<Method, { path: string; deltaSigma: number; deltaD: number }[]>>;
  /** The task: its source and split sizes. */
  task: Record<string, unknown>;
  /** The sizes used. */
  plan: Record<string, unknown>;
  /** The paper's numbers, for context. */
  paper: { benchmark: string; accuracy: Readonly<Record<Method, number>> };
  /** The compute backend. */
  backend: string;
  /** Versions. */
  versions: Record<string, string>;
  /** Wall seconds of the whole comparison. */
  seconds: number;
}

/** A layer path shortened for a chart's axis: the block number and module (`h.3.attn.c_attn`). */
const short = (path: string): string => path.replace(/^(transformer|model)\./, '').replace(/\.weight$/, '');

/** Writes report.json and report.html into `dir`. */
export async function writeCompareReport(dir: string, r: CompareReport): Promise<void> {
  await writeTextAtomic(join(dir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  const methods = Object.keys(r.methods) as Method[];
  const res = (m: Method): MethodResult => r.methods[m] as MethodResult;
  const layers = [...new Set(methods.flatMap((m) => (r.drift[m] ?? []).map((d) => d.path)))];
  const driftOf = (m: Method, key: 'deltaSigma' | 'deltaD'): number[] => layers.map((p) => (r.drift[m] ?? []).find((d) => d.path === p)?.[key] ?? NaN);
  const seeds = methods.length > 0 ? res(methods[0]).accuracyBySeed.length : 0;
  const ranking = [...methods].sort((x, y) => res(y).accuracy - res(x).accuracy);
  const html = renderReport({
    title: 'SORSA, PiSSA, LoRA, AdaLoRA and full fine-tuning, at small scale',
    subtitle: `${String(r.task.source)}; ${seeds} seeds; backend ${r.backend}; ${Math.round(r.seconds)} s`,
    sections: [
      {
        heading: 'Result',
        text:
          `Ranking by mean test accuracy: ${ranking.map((m) => `${m} ${res(m).accuracy.toFixed(1)}% (± ${res(m).accuracySd.toFixed(1)})`).join(', ')}; ` +
          `the base model before fine-tuning: ${r.base.accuracy.toFixed(1)}%.\n\n` +
          `For context, the paper's GSM8K accuracies (${r.paper.benchmark}): ${Object.entries(r.paper.accuracy).map(([m, v]) => `${m} ${v}`).join(', ')}. ` +
          'The scale here is many orders of magnitude smaller; differences within a standard deviation over seeds are not a ranking.',
        table: {
          columns: ['method', 'test accuracy (%)', 'sd over seeds', 'accuracy by seed', 'test loss', 'trainable params', 'lr (chosen)', 'seconds per run', 'paper GSM8K (%)'],
          rows: [
            ['base model', r.base.accuracy, '', '', r.base.evalLoss, 0, '', '', ''],
            ...methods.map((m) => [m, res(m).accuracy, res(m).accuracySd, res(m).accuracyBySeed.map((a) => a.toFixed(1)).join(' / '), res(m).evalLoss, res(m).trainableParams, res(m).lr, res(m).seconds, r.paper.accuracy[m]]),
          ],
        },
      },
      {
        heading: 'Training loss (the paper\'s Figure 1)',
        text:
          'The training loss of every step, seed 0, at each method\'s chosen learning rate: the cross-entropy of the completions. ' +
          'AdaLoRA\'s curve includes its orthogonality penalty (0.5 × the regularizer), as PEFT adds it to the loss it trains and logs, so it starts higher than the others. ' +
          '"full" trains every weight of the model; the adapters train on every linear layer of the blocks.',
        svg: lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'cross-entropy', series: methods.map((m) => ({ name: m, points: res(m).trainLoss.map((l, i) => [i + 1, l] as [number, number]) })) }),
      },
      {
        heading: 'Exact-match accuracy',
        text: 'Greedy answers to the test problems, scored as GSM8K is (the final number must equal the reference\'s). Bars: mean over seeds; whiskers: one standard deviation.',
        svg: barChart({
          title: 'Test accuracy',
          yLabel: 'accuracy (%)',
          categories: ['base', ...methods],
          series: [{ name: `mean ± sd over ${seeds} seeds`, values: [r.base.accuracy, ...methods.map((m) => res(m).accuracy)], errors: [0, ...methods.map((m) => res(m).accuracySd)] }],
        }),
      },
      {
        heading: 'ΔΣ per layer (the paper\'s Figure 2)',
        text: 'ΔΣ = mean |σᵢ(W_tuned) − σᵢ(W_base)| of each adapted layer: how far the singular values moved.',
        svg: barChart({ title: 'ΔΣ per layer', yLabel: 'ΔΣ', categories: layers.map(short), series: methods.map((m) => ({ name: m, values: driftOf(m, 'deltaSigma') })) }),
      },
      {
        heading: 'ΔD per layer (the paper\'s Figure 3)',
        text: 'ΔD = 1 − ½ mean(|⟨uᵢ, uᵢ⁰⟩| + |⟨vᵢ, vᵢ⁰⟩|) of each adapted layer: how far the singular vectors turned.',
        svg: barChart({ title: 'ΔD per layer', yLabel: 'ΔD', categories: layers.map(short), series: methods.map((m) => ({ name: m, values: driftOf(m, 'deltaD') })) }),
      },
      {
        heading: 'Learning-rate sweep',
        text: 'Validation loss (a split carved from the training problems, not the test split) of each learning rate tried, seed 0.',
        table: { columns: ['method', 'lr', 'validation loss'], rows: methods.flatMap((m) => res(m).sweep.map((s) => [m, s.lr, s.validationLoss])) },
      },
      {
        heading: 'Setup',
        table: { columns: ['setting', 'value'], rows: [...Object.entries(r.plan), ...Object.entries(r.task)].map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]) },
      },
    ],
  });
  await writeTextAtomic(join(dir, 'report.html'), html);
}
