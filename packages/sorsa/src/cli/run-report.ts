/**
 * A fine-tuning run's report: `report.json` (the numbers) and `report.html` (one self-contained
 * page: the loss curves as SVG, the summary and the settings), written at the end of `sorsa finetune`.
 * @module
 */
import { lineChart, renderReport } from '../report/index.js';
import { writeTextAtomic } from './run-dir.js';

/** What report.json holds for one run. */
export interface RunReport {
  /** The method. */
  method: string;
  /** The base checkpoint folder. */
  model: string;
  /** Steps done. */
  steps: number;
  /** `[step, loss]` of every logged step (skipped steps excluded). */
  trainLoss: [number, number][];
  /** The held-out loss at the end, or null without held-out data. */
  evalLoss: number | null;
  /** `[step, held-out loss]` of every evaluation. */
  evalHistory: [number, number][];
  /** Trainable parameters. */
  trainableParams: number;
  /** Steps skipped for a non-finite loss or gradient. */
  skippedSteps: number;
  /** Wall time of the training loop in seconds (this process only, when resumed). */
  seconds: number;
  /** The compute backend. */
  backend: string;
  /** The run's settings. */
  args: Record<string, unknown>;
}

/** Writes report.json and report.html into the run folder (each atomically). */
export async function writeRunReport(files: { reportJson: string; reportHtml: string }, r: RunReport): Promise<void> {
  await writeTextAtomic(files.reportJson, `${JSON.stringify(r, null, 2)}\n`);
  const series = [{ name: 'training loss', points: r.trainLoss }];
  if (r.evalHistory.length > 0) series.push({ name: 'held-out loss', points: r.evalHistory });
  const html = renderReport({
    title: `sorsa finetune: ${r.method}`,
    subtitle: `${r.model}, ${r.steps} steps on ${r.backend}`,
    sections: [
      {
        heading: 'Loss',
        text: 'The cross-entropy of every logged training step and of each held-out evaluation (completion tokens only for prompt/completion data).',
        svg: lineChart({ title: 'Loss', xLabel: 'step', yLabel: 'cross-entropy', series }),
      },
      {
        heading: 'Summary',
        table: {
          columns: ['measure', 'value'],
          rows: [
            ['method', r.method],
            ['steps', r.steps],
            ['final training loss', r.trainLoss.length > 0 ? r.trainLoss[r.trainLoss.length - 1][1] : 'none'],
            ['held-out loss', r.evalLoss ?? 'none'],
            ['trainable parameters', r.trainableParams],
            ['skipped steps', r.skippedSteps],
            ['seconds', r.seconds],
            ['backend', r.backend],
          ],
        },
      },
      {
        heading: 'Settings',
        table: { columns: ['option', 'value'], rows: Object.entries(r.args).map(([k, v]) => [k, v === null ? 'default' : Array.isArray(v) ? v.join(',') : String(v)]) },
      },
    ],
  });
  await writeTextAtomic(files.reportHtml, html);
}
