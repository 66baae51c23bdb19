/**
 * `sorsa compare`: the paper's comparison at small scale. SORSA, PiSSA, LoRA, AdaLoRA and full
 * fine-tuning train with the same steps, batch, schedule and targets on generated arithmetic word
 * problems; each method's learning rate is chosen by a small sweep on a validation split; every
 * method is then judged over several seeds by its held-out loss and by the exact-match accuracy of
 * its greedy answers on a test split, and the paper's ΔΣ/ΔD drift analysis is run on its weights.
 * Everything is written into one run folder with a self-contained report.
 * @module
 */
import { cp, lstat, mkdir, rm, symlink, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tree } from '@sorsajs/core';
import { savePretrained, type Model, type ParamTree } from '@sorsajs/models';
import { startBackend } from '../cli/backend.js';
import { toSequences, type Example, type Sequence } from '../cli/data.js';
import { EXIT, UsageError } from '../cli/errors.js';
import { eosIds, trainingEos } from '../cli/open.js';
import type { Progress } from '../cli/progress.js';
import { writeTextAtomic } from '../cli/run-dir.js';
import { DEFAULT_TARGETS, linearWeights, selectTargets, weightsAt } from '../cli/targets.js';
import { applyAdapter, loadAdapter, loadModel } from '../cli/tuned.js';
import { adaloraPlan, checkRankFits, finetune, heldOutLoss, type FinetuneArgs, type Method } from '../cli/commands/finetune.js';
import { driftParams } from '../drift.js';
import { version } from '../version.js';
import { exactMatch } from './accuracy.js';
import { ensureBaseModel, type BaseRecipe } from './base.js';
import { writeCompareReport, type CompareReport, type MethodResult } from './report.js';
import { generateTask, type Problem } from './task.js';

/** The sizes of a comparison. */
export interface ComparePlan {
  /** Fine-tuning steps of every run. */
  steps: number;
  /** Sequences per step. */
  batch: number;
  /** Adapter rank (AdaLoRA's target rank). */
  rank: number;
  /** Seeds per method. */
  seeds: number;
  /** Learning rates tried per method (seed 0, validation loss). */
  lrs: Record<Method, number[]>;
  /** Generated problems: training, validation (for the sweep) and test. */
  train: number;
  validation: number;
  test: number;
  /** New tokens allowed per greedy answer. */
  maxNewTokens: number;
  /** The base model's recipe (used when no --model is given). */
  base: BaseRecipe;
}

/**
 * The default plan (what `npm start` runs). Its size is set by the speed of a training step today
 * (about 0.8 s for 8 sequences of 85 tokens of this model on 2 CPU cores, wasm): 20 fine-tuning
 * runs (5 methods x 2 learning rates on seed 0, then 2 more seeds each) of 40 steps, and 16 judged
 * models. docs/guides/sorsa.md gives the measured time.
 */
export const DEFAULT_PLAN: ComparePlan = {
  steps: 40,
  batch: 8,
  rank: 8,
  seeds: 3,
  lrs: { sorsa: [2e-3, 8e-3], pissa: [2e-3, 8e-3], lora: [2e-3, 8e-3], adalora: [2e-3, 8e-3], full: [3e-4, 1e-3] },
  train: 2000,
  validation: 64,
  test: 100,
  maxNewTokens: 32,
  base: { vocabSize: 512, width: 128, layers: 2, heads: 4, context: 128, steps: 400, batch: 16, seq: 64, lr: 3e-3, bookChars: 400_000, problems: 1500, seed: 0 },
};

/** `--quick`: a smoke run of about a minute (what the tests run). */
export const QUICK_PLAN: ComparePlan = {
  steps: 8,
  batch: 4,
  rank: 4,
  seeds: 2,
  lrs: { sorsa: [5e-3], pissa: [5e-3], lora: [5e-3], adalora: [5e-3], full: [1e-3] },
  train: 64,
  validation: 16,
  test: 16,
  maxNewTokens: 12,
  base: { vocabSize: 300, width: 32, layers: 1, heads: 2, context: 160, steps: 6, batch: 4, seq: 32, lr: 3e-3, bookChars: 20_000, problems: 40, seed: 0 },
};

/** The paper's GSM8K accuracies (Llama 2 7B fine-tuned on MetaMathQA), shown beside ours for context. */
export const PAPER_GSM8K: Readonly<Record<Method, number>> = { sorsa: 56.03, pissa: 53.07, full: 49.05, adalora: 47.3, lora: 42.3 };

/** What `sorsa compare` is given. */
export interface CompareArgs {
  /** The run folder (default runs/<timestamp>); runs/latest points to it when it is under runs/. */
  out: string;
  /** Where the base model is cached. */
  baseDir: string;
  /** The user's own base checkpoint instead of the pretrained one. */
  model: string | null;
  /** The user's own JSONL data instead of the generated task (split into train, validation and test). */
  data: string | null;
  /** The methods to compare. */
  methods: Method[];
  /** The sizes. */
  plan: ComparePlan;
  /** The compute backend. */
  backend: string;
  /** The task's seed. */
  taskSeed: number;
}

const jsonl = (xs: readonly Example[]): string => xs.map((x) => JSON.stringify({ prompt: x.prompt, completion: x.completion })).join('\n') + '\n';

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs: readonly number[]): number => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

/** Test loss and accuracy of `params`. */
async function judge(model: Model, params: ParamTree, test: readonly Sequence[], problems: readonly Example[], plan: ComparePlan, progress: Progress, label: string): Promise<{ evalLoss: number; accuracy: number }> {
  const evalLoss = await heldOutLoss(model, params, test, plan.batch);
  const graded = await exactMatch(model, params, problems, {
    eos: eosIds(model.config),
    maxNewTokens: plan.maxNewTokens,
    batch: 32,
    onBatch: (d, n) => progress.phase('judge', d, n, label),
  });
  return { evalLoss, accuracy: (100 * graded.filter((g) => g.correct).length) / graded.length };
}

/**
 * Runs the comparison and resolves to the exit status. Progress goes to `progress`; the table and
 * the report's path to stdout.
 */
export async function compare(a: CompareArgs, progress: Progress, signal: { interrupted: boolean }): Promise<number> {
  const started = Date.now();
  const backend = await startBackend(a.backend);
  await mkdir(join(a.out, 'data'), { recursive: true });
  const plan = a.plan;

  // 1. The task: generated problems, or the user's records.
  let train: Example[];
  let validation: Example[];
  let test: Example[];
  let pretrainProblems: Problem[] = [];
  let task: Record<string, unknown>;
  if (a.data) {
    const { readDataset, split } = await import('../cli/data.js');
    const d = await readDataset(a.data, '--data');
    if (d.kind !== 'jsonl') throw new UsageError(`--data ${a.data}: sorsa compare needs a .jsonl file of {"prompt", "completion"} records`);
    const first = split(d.examples, 0.1, a.taskSeed);
    const second = split(first.train, 0.05, a.taskSeed + 1);
    [train, validation, test] = [second.train, second.held, first.held];
    task = { source: a.data, train: train.length, validation: validation.length, test: test.length };
  } else {
    const gen = generateTask({ seed: a.taskSeed, train: plan.train + plan.base.problems, validation: plan.validation, test: plan.test });
    train = gen.train.slice(0, plan.train);
    pretrainProblems = gen.train.slice(plan.train);
    [validation, test] = [gen.validation, gen.test];
    task = {
      source: 'generated grade-school word problems (7 templates, 1-3 steps)',
      seed: a.taskSeed,
      train: train.length,
      validation: validation.length,
      test: test.length,
      pretrainingProblems: pretrainProblems.length,
      example: { prompt: test[0].prompt, completion: test[0].completion },
    };
  }
  const files = { train: join(a.out, 'data', 'train.jsonl'), validation: join(a.out, 'data', 'validation.jsonl'), test: join(a.out, 'data', 'test.jsonl') };
  await writeTextAtomic(files.train, jsonl(train));
  await writeTextAtomic(files.validation, jsonl(validation));
  await writeTextAtomic(files.test, jsonl(test));

  // 2. The base model, pretrained here and cached, or the user's.
  let baseDir = a.model ?? a.baseDir;
  let baseInfo: Record<string, unknown> = { dir: baseDir };
  // Ctrl-C: the comparison stops where it is, writes no report and says so. Nothing is resumed
  // (each fine-tuning run starts over), so no --resume hint: the command is run again.
  const stopped = (where: string): number => {
    progress.stop();
    process.stderr.write(`sorsa compare: interrupted ${where}; the comparison is incomplete and wrote no report (${a.out} holds its data splits and finished runs); run the same command again to start it over\n`);
    return EXIT.interrupted;
  };
  if (!a.model) {
    const b = await ensureBaseModel(a.baseDir, plan.base, pretrainProblems, progress, backend as never, signal);
    if ('interruptedAt' in b) return stopped(`while pretraining the base model (step ${b.interruptedAt} of ${b.steps}; nothing was cached in ${a.baseDir}, so it is pretrained again)`);
    tree.dispose(b.model.params);
    baseInfo = { dir: a.baseDir, cached: b.cached, pretrainSeconds: b.seconds, recipe: plan.base };
    baseDir = a.baseDir;
  }
  const model = await loadModel(baseDir);
  if (!model.tokenizer) throw new UsageError(`--model ${baseDir}: the checkpoint has no tokenizer.json`);
  // The plan's rank must fit the model's adapted weights (compare has no --rank to name).
  const targets = selectTargets(model.params, DEFAULT_TARGETS[model.config.family]);
  for (const method of a.methods) {
    try {
      checkRankFits(model.params, targets, { method, rank: plan.rank, initRank: null }, method === 'adalora' ? adaloraPlan({ ...plan, initRank: null, tinit: null, tfinal: null, deltaT: null }).initRank : null);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      tree.dispose(model.params);
      const why = e.message.replace(/^--rank \d+: /, '').replace(/; use --rank .*$/, '').replace(/--rank/g, 'the rank');
      throw new UsageError(`--model ${baseDir}: too small for the comparison's adapter rank ${plan.rank} (${method}): ${why}`);
    }
  }
  const eos = trainingEos(model.config);
  let seq = 0;
  for (const ex of [...train, ...test]) seq = Math.max(seq, model.tokenizer.encode(ex.prompt + ex.completion).length + (eos === null ? 0 : 1));
  seq = Math.min(seq - 1, model.config.maxPositions);
  const testSeqs = toSequences(model.tokenizer, { kind: 'jsonl', examples: test }, seq, eos, 'test split').sequences;
  const baseScore = await judge(model, model.params, testSeqs, test, plan, progress, 'base model');
  progress.log(`base model: test loss ${baseScore.evalLoss.toFixed(4)}, accuracy ${baseScore.accuracy.toFixed(1)}%`);

  // 3. Each method: a learning-rate sweep on seed 0 (validation loss), then the other seeds.
  const results: Partial<Record<Method, MethodResult>> = {};
  const drift: Partial<Record<Method, { path: string; deltaSigma: number; deltaD: number }[]>> = {};
  const runArgs = (method: Method, seed: number, lr: number, out: string, evalData: string): FinetuneArgs => ({
    model: baseDir, data: files.train, out, method, rank: plan.rank, targets: null, steps: plan.steps, batch: plan.batch, seq,
    lr, schedule: 'cosine', warmup: 0.03, gamma: 4e-4, clip: 1, weightDecay: 0, alpha: null, seed, backend: a.backend, svd: 'auto',
    evalEvery: 0, saveEvery: plan.steps, evalSplit: null, evalData, logEvery: 1, maxBadSteps: 5, keepCheckpoints: 1,
    initRank: null, tinit: null, tfinal: null, deltaT: null, resume: false,
  });
  const runsDir = join(a.out, 'runs');
  // An early return frees the base model's weights.
  const finish = (status: number): number => {
    tree.dispose(model.params);
    return status;
  };
  for (const method of a.methods) {
    const sweep: { lr: number; validationLoss: number; dir: string; seconds: number; trainLoss: [number, number][]; trainableParams: number }[] = [];
    for (const lr of plan.lrs[method]) {
      if (signal.interrupted) return finish(stopped(`before ${method} (lr ${lr}, seed 0)`));
      const dir = join(runsDir, `${method}-lr${lr}-seed0`);
      await rm(dir, { recursive: true, force: true });
      progress.log(`${method}: lr ${lr}, seed 0`);
      const r = await finetune(runArgs(method, 0, lr, dir, files.validation), progress, signal);
      if (r.status === EXIT.interrupted) return finish(stopped(`while fine-tuning ${method} (lr ${lr}, seed 0) at step ${r.interrupted?.step ?? '?'}`));
      if (r.status !== EXIT.ok || !r.report) return finish(r.status);
      sweep.push({ lr, validationLoss: r.report.evalLoss ?? NaN, dir, seconds: r.report.seconds, trainLoss: r.report.trainLoss, trainableParams: r.report.trainableParams });
    }
    const best = sweep.reduce((x, y) => (y.validationLoss < x.validationLoss ? y : x));
    const seedRuns = [best];
    for (let s = 1; s < plan.seeds; s++) {
      if (signal.interrupted) return finish(stopped(`before ${method} (lr ${best.lr}, seed ${s})`));
      const dir = join(runsDir, `${method}-lr${best.lr}-seed${s}`);
      await rm(dir, { recursive: true, force: true });
      progress.log(`${method}: lr ${best.lr}, seed ${s}`);
      const r = await finetune(runArgs(method, s, best.lr, dir, files.validation), progress, signal);
      if (r.status === EXIT.interrupted) return finish(stopped(`while fine-tuning ${method} (lr ${best.lr}, seed ${s}) at step ${r.interrupted?.step ?? '?'}`));
      if (r.status !== EXIT.ok || !r.report) return finish(r.status);
      seedRuns.push({ lr: best.lr, validationLoss: r.report.evalLoss ?? NaN, dir, seconds: r.report.seconds, trainLoss: r.report.trainLoss, trainableParams: r.report.trainableParams });
    }
    const scores: { evalLoss: number; accuracy: number }[] = [];
    for (const [s, run] of seedRuns.entries()) {
      if (signal.interrupted) return finish(stopped(`before judging ${method} seed ${s}`));
      const adapter = await loadAdapter(run.dir);
      const params = applyAdapter(model.params, adapter);
      try {
        scores.push(await judge(model, params, testSeqs, test, plan, progress, `${method} seed ${s}`));
        if (s === 0) {
          // The paper's analysis, on the merged weights, for every adapted layer.
          const paths = linearWeights(model.params, Object.keys(adapter.trainable));
          const d = await driftParams(weightsAt(model.params, paths), weightsAt(params, paths));
          drift[method] = paths.map((p) => ({ path: p, deltaSigma: d[p].deltaSigma, deltaD: d[p].deltaD }));
          if (method === 'sorsa') {
            await savePretrained(model, params, join(a.out, 'sorsa-merged'));
            await cp(join(run.dir, 'adapter'), join(a.out, 'adapter'), { recursive: true });
          }
        }
      } finally {
        tree.dispose([params, adapter.trainable, adapter.initial]);
      }
    }
    const acc = scores.map((x) => x.accuracy);
    results[method] = {
      trainLoss: best.trainLoss.map(([, l]) => l),
      evalLoss: mean(scores.map((x) => x.evalLoss)),
      evalLossBySeed: scores.map((x) => x.evalLoss),
      accuracy: mean(acc),
      accuracySd: sd(acc),
      accuracyBySeed: acc,
      trainableParams: best.trainableParams,
      seconds: mean(seedRuns.map((r) => r.seconds)),
      lr: best.lr,
      sweep: sweep.map((x) => ({ lr: x.lr, validationLoss: x.validationLoss })),
    };
    progress.log(`${method}: test accuracy ${mean(acc).toFixed(1)}% ± ${sd(acc).toFixed(1)} over ${acc.length} seeds, test loss ${mean(scores.map((x) => x.evalLoss)).toFixed(4)} (lr ${best.lr})`);
  }
  tree.dispose(model.params);

  const report: CompareReport = {
    base: { evalLoss: baseScore.evalLoss, accuracy: baseScore.accuracy, ...baseInfo },
    methods: results,
    drift,
    task,
    plan: { steps: plan.steps, batch: plan.batch, rank: plan.rank, seeds: plan.seeds, seq, maxNewTokens: plan.maxNewTokens, lrs: plan.lrs },
    paper: { benchmark: 'GSM8K, Llama 2 7B fine-tuned on MetaMathQA (arXiv 2409.00055)', accuracy: PAPER_GSM8K },
    backend,
    versions: { sorsajs: version, node: process.version },
    seconds: (Date.now() - started) / 1000,
  };
  await writeCompareReport(a.out, report);
  await pointLatest(a.out);
  progress.stop();
  process.stdout.write(table(report));
  process.stdout.write(`\nreport: ${join(a.out, 'report.html')}\n`);
  return EXIT.ok;
}

/** runs/latest → this run, when the run folder sits in a folder named runs. */
async function pointLatest(out: string): Promise<void> {
  const parent = dirname(out);
  if (basename(parent) !== 'runs') return;
  const link = join(parent, 'latest');
  // lstat, not exists: a link whose run was deleted does not exist but must still be replaced.
  const old = await lstat(link).catch(() => null);
  if (old?.isSymbolicLink()) await unlink(link);
  else if (old) return; // a real file or folder named latest is the user's: leave it
  await symlink(basename(out), link).catch((e: Error) => process.stderr.write(`sorsa compare: could not point ${link} to the run: ${e.message}\n`));
}

/** The terminal table: one row per method, the base first, the paper's numbers beside. */
export function table(r: CompareReport): string {
  const rows: string[][] = [['method', 'test acc %', '± sd', 'test loss', 'trainable', 'lr', 'seconds', 'paper GSM8K %']];
  rows.push(['base', r.base.accuracy.toFixed(1), '', r.base.evalLoss.toFixed(4), '0', '', '', '']);
  for (const [m, x] of Object.entries(r.methods) as [Method, MethodResult][]) {
    rows.push([m, x.accuracy.toFixed(1), x.accuracySd.toFixed(1), x.evalLoss.toFixed(4), String(x.trainableParams), String(x.lr), x.seconds.toFixed(0), PAPER_GSM8K[m].toFixed(2)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n') + '\n';
}
