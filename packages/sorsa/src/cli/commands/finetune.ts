/**
 * `sorsa finetune`: fine-tunes a checkpoint with SORSA, PiSSA, LoRA, AdaLoRA or full fine-tuning,
 * composing the library's pure pieces (adaptParams, makeTrainStep, the AdaLoRA allocator,
 * checkpoints, PEFT files) with data loading, progress, checkpointing and resumption.
 * @module
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Tensor, add, init as initBackend, isfinite, mul, nn, optim, random, reshape, sub, sum, sync, tensor, tidy, tree, zeros } from '@sorsajs/core';
import type { Model, ParamTree, TextTokenizer } from '@sorsajs/models';
import { Option, type Command } from 'commander';
import * as adalora from '../../adalora.js';
import { loadCheckpoint, saveCheckpoint } from '../../checkpoint.js';
import { merge } from '../../forward.js';
import { adaptParams, factoredParams, mergeParams } from '../../params.js';
import { savePeftAdapter } from '../../peft.js';
import { makeTrainStep } from '../../train.js';
import type { Adapter, AdaloraAdapter, Trainable } from '../../types.js';
import { version } from '../../version.js';
import { Batcher, IGNORE, encodeExample, readDataset, split, toSequences, type DataPosition, type Dataset, type Sequence } from '../data.js';
import { EXIT, UsageError } from '../errors.js';
import { int, list, num } from '../options.js';
import { makeProgress, type Progress } from '../progress.js';
import { checkpointName, listCheckpoints, readJson, runFiles, writeTextAtomic } from '../run-dir.js';
import { writeRunReport, type RunReport } from '../run-report.js';
import { DEFAULT_TARGETS, allWeights, selectTargets } from '../targets.js';
import { loadModel } from '../tuned.js';

/** The methods of `--method`. */
export const METHODS = ['sorsa', 'pissa', 'lora', 'adalora', 'full'] as const;
/** A fine-tuning method. */
export type Method = (typeof METHODS)[number];

/** The resolved options of a run (what run.json stores as `args`). */
export interface FinetuneArgs {
  model: string;
  data: string;
  out: string;
  method: Method;
  rank: number;
  targets: string[] | null;
  steps: number;
  batch: number;
  /** Tokens per sequence; null: the longest record (JSONL) or 256 (text), at most the model's context. */
  seq: number | null;
  lr: number;
  schedule: 'cosine' | 'constant';
  warmup: number;
  gamma: number;
  clip: number;
  weightDecay: number;
  alpha: number | null;
  seed: number;
  backend: string;
  svd: 'auto' | 'jacobi' | 'randomized';
  evalEvery: number;
  saveEvery: number;
  evalSplit: number | null;
  evalData: string | null;
  logEvery: number;
  maxBadSteps: number;
  keepCheckpoints: number;
  initRank: number | null;
  tinit: number | null;
  tfinal: number | null;
  deltaT: number | null;
  resume: boolean;
}

/** Options that a resumed run must keep (everything that shapes the loss curve). */
const FIXED: readonly (keyof FinetuneArgs)[] = [
  'model', 'data', 'method', 'rank', 'targets', 'steps', 'batch', 'seq', 'lr', 'schedule', 'warmup', 'gamma', 'clip', 'weightDecay',
  'alpha', 'seed', 'svd', 'evalSplit', 'evalData', 'initRank', 'tinit', 'tfinal', 'deltaT',
];

/** The command-line flag of an option: `weightDecay` → `weight-decay`. */
const flagName = (k: string): string => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The absolute path of a run's file option (`model`, `data`, `evalData`) from its run.json: its
 * `paths` entry, or (a run.json written before `paths` existed) the option resolved from here.
 */
function savedPath(saved: Record<string, unknown>, k: (typeof PATH_ARGS)[number]): string | null {
  const paths = saved.paths;
  if (paths !== null && typeof paths === 'object' && Object.hasOwn(paths, k)) {
    const v = (paths as Record<string, unknown>)[k];
    if (v === null || typeof v === 'string') return v;
  }
  const args = (saved.args ?? {}) as Record<string, unknown>;
  const v = Object.hasOwn(args, k) ? args[k] : null;
  return typeof v === 'string' ? resolve(v) : null;
}

/**
 * `--resume` without the run's options: each option not given on the command line (`given`) is
 * taken from `<out>/run.json`, so that `sorsa finetune --resume --out DIR` continues the run as it
 * was started. A file option is taken as written when it still names the same file from here, else
 * as its absolute path. Resolves to `a` unchanged when the folder holds no run.json.
 *
 * @example
 * ```ts
 * const args = await withRunDefaults(parsed, new Set(['out', 'resume']));
 * ```
 */
export async function withRunDefaults(a: Omit<FinetuneArgs, 'model' | 'data'> & { model: string | null; data: string | null }, given: ReadonlySet<string>): Promise<typeof a> {
  const file = runFiles(a.out).run;
  if (!existsSync(file)) return a;
  const saved = await readJson(file, '--resume');
  const old = saved.args !== null && typeof saved.args === 'object' ? (saved.args as Record<string, unknown>) : {};
  const out: Record<string, unknown> = { ...a };
  for (const k of Object.keys(a)) {
    if (k === 'out' || k === 'resume' || given.has(k) || !Object.hasOwn(old, k)) continue;
    if ((PATH_ARGS as readonly string[]).includes(k)) {
      const abs = savedPath(saved, k as (typeof PATH_ARGS)[number]);
      const v = old[k];
      out[k] = abs === null ? null : typeof v === 'string' && resolve(v) === abs ? v : abs;
    } else {
      // run.json is a file on disk: a value of another type than the option's is refused here.
      const v = old[k];
      const d = (a as Record<string, unknown>)[k];
      if (v !== null && d !== null && typeof v !== typeof d) throw new UsageError(`--resume: ${file}: args.${k} is ${JSON.stringify(v)}, not a ${typeof d}; give --${flagName(k)}`);
      out[k] = v;
    }
  }
  return out as typeof a;
}

/** The trainable parameter count of a trainable tree. */
export function countParams(t: Trainable): number {
  return tree.leaves(t).reduce((s: number, l) => s + (l instanceof Tensor ? l.size : 0), 0);
}

/**
 * The learning-rate schedule: linear warmup from 0 to `lr`, then cosine decay to 0 or constant. A
 * cosine schedule whose warmup takes every step leaves nothing to decay: a UsageError naming
 * `--warmup` and `--steps`.
 */
export function schedule(a: Pick<FinetuneArgs, 'lr' | 'schedule' | 'warmup' | 'steps'>): optim.Schedule {
  const warmupSteps = warmupStepsOf(a);
  if (a.schedule === 'cosine' && warmupSteps >= a.steps) {
    const what = a.warmup < 1 ? `${a.warmup} x ${a.steps} steps rounds to ${warmupSteps}` : `${warmupSteps} steps`;
    throw new UsageError(
      `--warmup ${a.warmup} and --steps ${a.steps}: the warmup (${what}) must be shorter than the run, leaving steps for the cosine decay; lower --warmup to at most ${a.steps - 1} steps (or a fraction below ${((a.steps - 0.5) / a.steps).toFixed(3)}), raise --steps, or use --schedule constant`,
    );
  }
  if (a.schedule === 'constant') return warmupSteps > 0 ? optim.linearWarmup({ init: 0, peak: a.lr, warmupSteps }) : optim.constant(a.lr);
  return optim.warmupCosineDecay({ init: 0, peak: a.lr, warmupSteps, decaySteps: a.steps, end: 0 });
}

/** `--warmup` below 1 is a fraction of the steps, else a step count. */
function warmupStepsOf(a: Pick<FinetuneArgs, 'warmup' | 'steps'>): number {
  return a.warmup < 1 ? Math.round(a.warmup * a.steps) : Math.min(Math.round(a.warmup), a.steps);
}

/**
 * AdaLoRA's schedule from the options, with defaults relative to the step count (`sorsa export`
 * recomputes it from run.json's args).
 *
 * @example
 * ```ts
 * adaloraPlan({ ...args, rank: 8, steps: 1000 }); // { initRank: 12, tinit: 100, tfinal: 200, deltaT: 20 }
 * ```
 */
export function adaloraPlan(a: Pick<FinetuneArgs, 'rank' | 'steps' | 'initRank' | 'tinit' | 'tfinal' | 'deltaT'>): { initRank: number; tinit: number; tfinal: number; deltaT: number } {
  const initRank = a.initRank ?? Math.max(a.rank, Math.round(1.5 * a.rank));
  const tinit = a.tinit ?? Math.floor(0.1 * a.steps);
  const tfinal = a.tfinal ?? Math.floor(0.2 * a.steps);
  const deltaT = a.deltaT ?? Math.max(1, Math.floor(a.steps / 50));
  if (initRank < a.rank) throw new UsageError(`--init-rank ${initRank}: AdaLoRA's initial rank must be at least --rank ${a.rank} (its target rank)`);
  if (tinit >= a.steps - tfinal) throw new UsageError(`--tinit ${tinit} and --tfinal ${tfinal}: AdaLoRA needs tinit < steps - tfinal (${a.steps} - ${tfinal}), or the budget phase is empty`);
  return { initRank, tinit, tfinal, deltaT };
}

/**
 * Checks that the adapter rank fits every target: a rank above a target's smaller side is a
 * UsageError naming the flag (`--rank`, or `--init-rank` for AdaLoRA's starting rank), its value,
 * the allowed range and the smallest target.
 */
export function checkRankFits(params: ParamTree, targets: readonly string[], a: Pick<FinetuneArgs, 'method' | 'rank' | 'initRank'>, initRank: number | null): void {
  if (a.method === 'full' || targets.length === 0) return;
  const byPath = new Map(tree.leafPaths(params).map((p, i) => [p, tree.leaves(params)[i]]));
  let smallest: { path: string; shape: readonly number[]; side: number } | null = null;
  for (const p of targets) {
    const W = byPath.get(p);
    if (!(W instanceof Tensor) || W.rank !== 2) continue;
    const side = Math.min(W.shape[0], W.shape[1]);
    if (!smallest || side < smallest.side) smallest = { path: p, shape: W.shape, side };
  }
  if (!smallest) return;
  const { path, shape, side } = smallest;
  const where = `the smaller side of the smallest target, ${path} [${shape.join(', ')}]`;
  const start = initRank ?? a.rank;
  if (start <= side) return;
  if (a.method === 'adalora' && a.initRank !== null) throw new UsageError(`--init-rank ${a.initRank}: AdaLoRA's initial rank must be in [1, ${side}], ${where}`);
  if (a.method === 'adalora' && start !== a.rank) {
    let most = 1;
    while (Math.max(most + 1, Math.round(1.5 * (most + 1))) <= side) most++;
    throw new UsageError(`--rank ${a.rank}: AdaLoRA starts at 1.5 x --rank = ${start}, which must be at most ${side}, ${where}; use --rank in [1, ${most}] or set --init-rank`);
  }
  throw new UsageError(`--rank ${a.rank}: the adapter rank must be in [1, ${side}], ${where}`);
}

/** The frozen tree of a resumed run: each adapted weight's residual, as initialization made it. */
function frozenFrom(params: ParamTree, method: Method, initial: Trainable | null): ParamTree {
  return tidy(() =>
    tree.mapWithPath((path, W) => {
      if (!(W instanceof Tensor)) return W;
      const a = initial && Object.hasOwn(initial, path) ? (initial[path] as Adapter) : undefined;
      // LoRA and AdaLoRA start at W (B = 0, E = 0); SORSA and PiSSA subtract their principal part,
      // computed by the same kernels as at initialization, so the residual is the same bits.
      if (!a || method === 'lora' || method === 'adalora' || method === 'full') return reshape(W, W.shape);
      return sub(W, merge(a, zeros(W.shape)));
    }, params),
  ) as ParamTree;
}

/** A scalar tensor's value (read back and disposed). */
async function scalar(t: Tensor): Promise<number> {
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

/** Token-weighted mean loss over `held` (forward only). */
export async function heldOutLoss(model: Model, params: ParamTree, held: readonly Sequence[], batch: number): Promise<number> {
  let total = 0;
  let count = 0;
  const seq = held[0].ids.length;
  for (let s = 0; s < held.length; s += batch) {
    const rows = held.slice(s, s + batch);
    const ids = new Int32Array(rows.length * seq);
    const labels = new Int32Array(rows.length * seq);
    rows.forEach((r, i) => {
      ids.set(r.ids, i * seq);
      labels.set(r.labels, i * seq);
    });
    for (const l of labels) if (l !== IGNORE) count++;
    total += await scalar(
      tidy(() => {
        const logits = model.forward(params, tensor(ids, [rows.length, seq], 'int32'));
        return nn.crossEntropy(logits, tensor(labels, [rows.length, seq], 'int32'), { ignoreIndex: IGNORE, reduction: 'sum' });
      }),
    );
  }
  return total / count;
}

/** Whether every value of every tensor of a tree is finite (one read-back; a norm would overflow). */
async function allFinite(t: unknown): Promise<boolean> {
  const leaves = tree.leaves(t).filter((l): l is Tensor => l instanceof Tensor);
  if (leaves.length === 0) return true;
  // The count of non-finite values: exact in float32 up to 2^24 of them, and zero is what matters.
  return (await scalar(tidy(() => leaves.map((l) => sum(sub(1, isfinite(l)))).reduce((x, y) => add(x, y))))) === 0;
}

/** The options that name files: run.json also stores them as absolute paths (`paths`). */
const PATH_ARGS = ['model', 'data', 'evalData'] as const;

/** The run's record of its arguments (as given, and its files as absolute paths) and versions. */
function runRecord(a: FinetuneArgs, backendName: string): Record<string, unknown> {
  return {
    command: 'finetune',
    args: a,
    paths: Object.fromEntries(PATH_ARGS.map((k) => [k, a[k] === null ? null : resolve(a[k])])),
    versions: { sorsajs: version, node: process.version },
    backend: backendName,
    started: new Date().toISOString(),
  };
}

/**
 * Runs `sorsa finetune` and resolves to the exit status (0, 3 after too many non-finite steps,
 * 130 after Ctrl-C). User errors throw UsageError.
 */
export async function finetune(a: FinetuneArgs, progress: Progress, signal: { interrupted: boolean }): Promise<FinetuneResult> {
  const files = runFiles(a.out);
  let resumeFrom: { step: number; file: string } | null = null;
  if (existsSync(files.run)) {
    const saved = await readJson(files.run, '--out');
    const old = (saved.args ?? {}) as Record<string, unknown>;
    if (!a.resume) throw new UsageError(`--out ${a.out}: the folder already holds a run (run.json); pass --resume to continue it, or choose another --out`);
    for (const k of FIXED) {
      // Files are compared as the paths they resolve to: tiny/, ./tiny and tiny are one folder.
      const isPath = (PATH_ARGS as readonly string[]).includes(k);
      const same = isPath ? (a[k] === null ? null : resolve(a[k] as string)) === savedPath(saved, k as (typeof PATH_ARGS)[number]) : JSON.stringify(old[k] ?? null) === JSON.stringify(a[k] ?? null);
      if (!same) {
        const was = isPath ? savedPath(saved, k as (typeof PATH_ARGS)[number]) : old[k];
        throw new UsageError(`--resume: --${flagName(k)} ${JSON.stringify(a[k])} differs from the run's ${JSON.stringify(was)} (${files.run}); a resumed run keeps its settings`);
      }
    }
    const list = await listCheckpoints(a.out);
    resumeFrom = list.length > 0 ? list[list.length - 1] : null;
    if (!resumeFrom) throw new UsageError(`--resume: ${a.out} has no checkpoint to resume from (checkpoints/ is empty)`);
    // A run that finished every step and wrote its report has nothing left to do: change nothing.
    if (resumeFrom.step >= a.steps && existsSync(files.reportJson)) {
      const report = (await readJson(files.reportJson, '--resume')) as unknown as RunReport;
      return { status: EXIT.ok, report, alreadyComplete: true };
    }
  } else if (a.resume) {
    throw new UsageError(`--resume: ${a.out} holds no run (no run.json) to resume`);
  }

  // Cheap checks first: a missing file or a bad schedule should not wait for a backend to start.
  schedule(a);
  if (a.method === 'adalora') adaloraPlan(a);
  if (!existsSync(a.model)) throw new UsageError(`--model ${a.model}: no such directory`);
  for (const [flag, f] of [['--data', a.data], ['--eval-data', a.evalData]] as const) if (f !== null && !existsSync(f)) throw new UsageError(`${flag} ${f}: no such file`);
  const backendName = await initBackend({ backend: a.backend as never }).catch((e: Error) => {
    throw new UsageError(`--backend ${a.backend}: ${e.message.replace(/^init: /, '')}`);
  });
  const model = await loadModel(a.model);
  if (!model.tokenizer) throw new UsageError(`--model ${a.model}: the checkpoint has no tokenizer.json, which sorsa finetune needs to read --data`);
  const eosRaw = model.config.json.eos_token_id;
  const eos = typeof eosRaw === 'number' && Number.isInteger(eosRaw) && eosRaw >= 0 && eosRaw < model.config.vocabSize ? eosRaw : null;
  if (a.seq !== null && a.seq > model.config.maxPositions) throw new UsageError(`--seq ${a.seq}: the model takes at most ${model.config.maxPositions} positions`);

  // Data: the training file, and a held-out split of it or a separate file.
  const dataset = await readDataset(a.data, '--data');
  const seq = a.seq ?? defaultSeq(model.tokenizer, dataset, eos, model.config.maxPositions);
  const data = toSequences(model.tokenizer, dataset, seq, eos, `--data ${a.data}`);
  if (data.dropped > 0) progress.log(`data: ${data.dropped} records dropped (their prompt fills the --seq ${seq} window)`);
  let train: Sequence[] = data.sequences;
  let held: Sequence[] = [];
  if (a.evalData) held = toSequences(model.tokenizer, await readDataset(a.evalData, '--eval-data'), seq, eos, `--eval-data ${a.evalData}`).sequences;
  else {
    // By default a tenth is held out, when there is enough data for a tenth to mean something.
    const fraction = a.evalSplit ?? (data.sequences.length >= 10 ? 0.1 : 0);
    if (fraction > 0) ({ train, held } = split(data.sequences, fraction, a.seed));
    else if (a.evalSplit === null) progress.log(`no held-out loss: --data has ${data.sequences.length} sequences (fewer than 10); pass --eval-data or --eval-split`);
  }

  // Full fine-tuning trains every weight unless --targets narrows it; the adapters, the linear layers.
  const targets = a.method === 'full' && a.targets === null ? allWeights(model.params) : selectTargets(model.params, a.targets ?? [...DEFAULT_TARGETS[model.config.family]]);
  const key = random.key(a.seed);
  const plan = a.method === 'adalora' ? adaloraPlan(a) : null;
  checkRankFits(model.params, targets, a, plan ? plan.initRank : null);
  const svd = a.svd;

  let trainable: Trainable;
  let frozen: ParamTree;
  let initial: Trainable | null = null;
  let optState: ReturnType<typeof ts.init>;
  let allocState: adalora.AllocatorState | null = null;
  let step = 0;
  let position: DataPosition = { epoch: 0, cursor: 0 };
  let skippedTotal = 0;
  // Seconds of training before this process (a resumed run carries them over).
  let priorSeconds = 0;
  let smoothed = NaN;

  const alpha = a.alpha ?? (a.method === 'lora' ? a.rank : a.method === 'adalora' ? plan!.initRank : undefined);
  const lrSchedule = schedule(a);
  const ts = makeTrainStep({
    loss: (t: Trainable, f: ParamTree, b: { ids: Tensor; labels: Tensor }) => {
      const l = nn.crossEntropy(model.forward(factoredParams(t, f), b.ids), b.labels, { ignoreIndex: IGNORE });
      // AdaLoRA's orthogonal regularizer enters the loss, as PEFT adds it (orth_reg_weight 0.5).
      return a.method === 'adalora' ? add(l, mul(adalora.orthRegularizer(t), adalora.DEFAULTS.orthRegWeight)) : l;
    },
    optimizer: optim.adamw({ lr: lrSchedule, weightDecay: a.weightDecay }),
    gamma: a.method === 'sorsa' ? a.gamma : 0,
    peakLr: a.lr,
    maxGradNorm: a.clip > 0 ? a.clip : undefined,
    skipNonFinite: true,
    returnGrads: a.method === 'adalora',
  });
  const alloc = plan ? adalora.allocator({ targetR: a.rank, tinit: plan.tinit, tfinal: plan.tfinal, totalSteps: a.steps, deltaT: plan.deltaT }) : null;

  if (resumeFrom) {
    const ck = await loadCheckpoint(resumeFrom.file);
    trainable = ck.trees.trainable as Trainable;
    optState = ck.trees.optState as typeof optState;
    allocState = (ck.trees.allocator as adalora.AllocatorState | undefined) ?? null;
    step = Number(ck.info.step);
    position = ck.info.data as DataPosition;
    skippedTotal = Number(ck.info.skipped ?? 0);
    if (a.method !== 'full') {
      initial = (await loadCheckpoint(files.initial)).trees.trainable as Trainable;
    }
    frozen = frozenFrom(model.params, a.method, initial);
    // The metrics of steps after the checkpoint are redone: drop their records. A run resumed at
    // its last step redoes the final evaluation, which is written after the last checkpoint.
    const kept = existsSync(files.metrics)
      ? (await readFile(files.metrics, 'utf8')).split('\n').filter((l) => {
          if (l.trim() === '') return false;
          const r = JSON.parse(l) as { step: number; evalLoss?: number };
          return r.step < step || (r.step === step && (step < a.steps || r.evalLoss === undefined));
        })
      : [];
    await writeTextAtomic(files.metrics, kept.map((l) => `${l}\n`).join(''));
    // The elapsed time and the smoothed loss go on from where they were.
    const records = kept.map((l) => JSON.parse(l) as Record<string, number>);
    const lastSeconds = records.filter((r) => typeof r.seconds === 'number').pop()?.seconds;
    priorSeconds = typeof ck.info.seconds === 'number' ? ck.info.seconds : (lastSeconds ?? 0);
    for (const r of records) if (typeof r.loss === 'number' && r.skipped !== 1) smoothed = Number.isNaN(smoothed) ? r.loss : 0.9 * smoothed + 0.1 * r.loss;
    progress.log(`resuming ${a.out} at step ${step} (${resumeFrom.file})`);
  } else {
    await mkdir(files.checkpoints, { recursive: true });
    const t0 = Date.now();
    const adapted = await adaptParams(model.params, {
      method: a.method,
      rank: plan ? plan.initRank : a.rank,
      targets,
      svd,
      key: random.foldIn(key, 0),
      alpha,
      onProgress: (done, total, path) => progress.phase('init', done, total, `${path} (${((Date.now() - t0) / 1000).toFixed(1)} s)`),
    });
    trainable = adapted.trainable;
    frozen = adapted.frozen;
    if (a.method !== 'full') {
      initial = tree.map((x) => (x instanceof Tensor ? reshape(x, x.shape) : x), trainable) as Trainable;
      await saveCheckpoint(files.initial, { trees: { trainable: initial }, info: { method: a.method } });
    }
    optState = ts.init(trainable);
    if (alloc) allocState = alloc.init(trainable as Record<string, AdaloraAdapter>);
    await writeTextAtomic(files.run, `${JSON.stringify(runRecord(a, backendName), null, 2)}\n`);
    await writeTextAtomic(files.metrics, '');
  }
  const trainableParams = countParams(trainable);
  progress.log(
    `${a.method}: ${targets.length} target weights, ${trainableParams} trainable parameters; ${train.length} training and ${held.length} held-out sequences of ${seq} tokens; backend ${backendName}${a.method === 'sorsa' || a.method === 'pissa' ? `; ${svd} SVD` : ''}`,
  );

  const batcher = new Batcher(train, a.batch, a.seed, position);
  const started = Date.now();
  const elapsedSeconds = (): number => priorSeconds + (Date.now() - started) / 1000;
  const save = async (): Promise<boolean> => {
    // A checkpoint holding a NaN or an infinity would not be a good one to resume from.
    if (!(await allFinite(trainable))) {
      progress.log(`step ${step}: the trainable values are not finite; no checkpoint written (the last good one is kept)`);
      return false;
    }
    const trees: Record<string, unknown> = { trainable, optState };
    if (allocState) trees.allocator = allocState;
    await saveCheckpoint(`${files.checkpoints}/${checkpointName(step)}`, {
      trees,
      info: { step, key: random.keyData(key), data: batcher.position, skipped: skippedTotal, seconds: Number(elapsedSeconds().toFixed(3)), method: a.method, version, config: a },
    });
    // Keep the newest few; older ones go only after the new one is safely written.
    const list = await listCheckpoints(a.out);
    for (const old of list.slice(0, Math.max(0, list.length - a.keepCheckpoints))) await rm(old.file, { force: true });
    return true;
  };

  let badInARow = 0;
  let lastLog = { time: Date.now(), step };
  const record = async (r: Record<string, unknown>): Promise<void> => appendFile(files.metrics, `${JSON.stringify(r)}\n`);

  while (step < a.steps) {
    const b = batcher.next();
    const ids = tensor(b.ids, [a.batch, seq], 'int32');
    const labels = tensor(b.labels, [a.batch, seq], 'int32');
    const lr = lrSchedule(step);
    // AdaLoRA's orthogonal penalty is not makeTrainStep's regularizer (SORSA's, 0 here): logged as
    // `regularizer`, unscaled, at the step's input values (the loss includes 0.5 x it).
    const penalty = a.method === 'adalora' ? tidy(() => adalora.orthRegularizer(trainable)) : null;
    const out = ts.step(trainable, optState, frozen, { ids, labels });
    tree.dispose([ids, labels, trainable, optState]);
    trainable = out.trainable;
    optState = out.optState;
    if (alloc && allocState) {
      const u = alloc.update(trainable as Record<string, AdaloraAdapter>, out.grads, allocState, step);
      tree.dispose([trainable, allocState, out.grads]);
      trainable = u.trainable as Trainable;
      allocState = u.state;
    }
    const [loss, skipped, gradNorm, sorsaReg, adaloraPenalty] = await Promise.all([
      scalar(out.metrics.loss),
      scalar(out.metrics.skipped as Tensor),
      scalar(out.metrics.gradNorm),
      scalar(out.metrics.regularizer),
      penalty ? scalar(penalty) : null,
    ]);
    const reg = adaloraPenalty ?? sorsaReg;
    step++;
    if (skipped) {
      skippedTotal++;
      badInARow++;
    } else {
      badInARow = 0;
      smoothed = Number.isNaN(smoothed) ? loss : 0.9 * smoothed + 0.1 * loss;
    }
    if (step % a.logEvery === 0 || step === a.steps || skipped) {
      const now = Date.now();
      const tokensPerSecond = ((step - lastLog.step) * a.batch * seq) / Math.max(1e-3, (now - lastLog.time) / 1000);
      lastLog = { time: now, step };
      const here = (now - started) / 1000;
      await record({ step, loss, lr, gradNorm, regularizer: reg, skipped: skipped ? 1 : 0, tokensPerSecond: Math.round(tokensPerSecond), seconds: Number((priorSeconds + here).toFixed(3)) });
      progress.step({ step, total: a.steps, loss: smoothed, lr, tokensPerSecond, eta: (here / Math.max(1, step - (resumeFrom?.step ?? 0))) * (a.steps - step) });
    }
    if (badInARow >= a.maxBadSteps) {
      progress.stop();
      const last = (await listCheckpoints(a.out)).pop();
      process.stderr.write(
        `sorsa finetune: stopped at step ${step}: ${badInARow} steps in a row had a non-finite loss or gradient (try a lower --lr or --clip); ${last ? `the last good checkpoint is ${last.file}` : 'no checkpoint was written'}\n`,
      );
      return { status: EXIT.diverged, report: null };
    }
    if (held.length > 0 && a.evalEvery > 0 && step % a.evalEvery === 0 && step < a.steps) {
      const evalLoss = await evaluate(model, trainable, frozen, held, a.batch);
      await record({ step, evalLoss });
      progress.log(`step ${step}: held-out loss ${evalLoss.toFixed(4)}`);
    }
    // A turn of the event loop, so that the SIGINT handler runs even when nothing above did I/O.
    await new Promise((r) => setImmediate(r));
    if (signal.interrupted) {
      progress.stop();
      const saved = await save();
      return { status: EXIT.interrupted, report: null, interrupted: { step, saved } };
    }
    // No periodic checkpoint inside a streak of skipped steps: if the streak ends the run, the
    // newest checkpoint on disk predates it.
    if (step % a.saveEvery === 0 && step < a.steps && badInARow === 0) await save();
  }

  await save();
  const evalLoss = held.length > 0 ? await evaluate(model, trainable, frozen, held, a.batch) : null;
  if (evalLoss !== null) await record({ step, evalLoss });
  progress.stop();
  if (a.method !== 'full') {
    await savePeftAdapter(files.adapter, trainable, {
      // SORSA and PiSSA go to PEFT as LoRA on the untouched base weight (toLoRA against the
      // initial adapters); LoRA and AdaLoRA already apply to it.
      initial: a.method === 'sorsa' || a.method === 'pissa' ? (initial ?? undefined) : undefined,
      fanInFanOut: model.config.family === 'gpt2',
      baseModel: a.model,
      adalora: plan && allocState ? { rankPattern: await adalora.rankPattern(allocState), targetR: a.rank, tinit: plan.tinit, tfinal: plan.tfinal, totalSteps: a.steps, deltaT: plan.deltaT } : undefined,
    });
  }
  const metrics = (await readFile(files.metrics, 'utf8')).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, number>);
  const report: RunReport = {
    method: a.method,
    model: a.model,
    steps: step,
    trainLoss: metrics.filter((m) => typeof m.loss === 'number' && m.skipped !== 1).map((m): [number, number] => [m.step, m.loss]),
    evalLoss,
    evalHistory: metrics.filter((m) => typeof m.evalLoss === 'number').map((m): [number, number] => [m.step, m.evalLoss]),
    trainableParams,
    skippedSteps: skippedTotal,
    seconds: elapsedSeconds(),
    backend: backendName,
    args: { ...a },
  };
  await writeRunReport(files, report);
  tree.dispose([trainable, optState, frozen, initial, allocState]);
  await sync();
  return { status: EXIT.ok, report, finalLoss: smoothed };
}

/** What a finished `finetune` gives: the exit status and, for a completed run, its report. */
export interface FinetuneResult {
  /** 0, or EXIT.diverged / EXIT.interrupted. */
  status: number;
  /** The run's report (what report.json holds), when it completed. */
  report: RunReport | null;
  /** The smoothed training loss at the end, when it completed. */
  finalLoss?: number;
  /** True when `--resume` found the run already complete and changed nothing. */
  alreadyComplete?: boolean;
  /** After Ctrl-C: the step it stopped at, and whether a checkpoint of it was written. */
  interrupted?: { step: number; saved: boolean };
}

/** A path as a shell word: quoted when it holds anything but safe characters. */
const shellWord = (p: string): string => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);

/** Held-out loss of the current trainable values. */
async function evaluate(model: Model, trainable: Trainable, frozen: ParamTree, held: readonly Sequence[], batch: number): Promise<number> {
  const params = mergeParams(trainable, frozen);
  try {
    return await heldOutLoss(model, params, held, batch);
  } finally {
    tree.dispose(params);
  }
}

/**
 * `--seq` by default: the longest record plus one (JSONL) or 256 (text), at most the model's context
 * (`sorsa eval` uses it too).
 *
 * @example
 * ```ts
 * defaultSeq(model.tokenizer, dataset, eos, model.config.maxPositions); // e.g. 23
 * ```
 */
export function defaultSeq(tok: TextTokenizer, data: Dataset, eos: number | null, max: number): number {
  if (data.kind === 'text') return Math.min(256, max);
  let longest = 0;
  for (const ex of data.examples) longest = Math.max(longest, encodeExample(tok, ex, eos).ids.length);
  return Math.max(2, Math.min(longest - 1, max));
}

/** Adds `sorsa finetune` to the program. */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('finetune')
    .summary('fine-tune a checkpoint on text or prompt/completion JSONL')
    .description(
      'Fine-tunes a Hugging Face checkpoint (GPT-2 or Llama family, with tokenizer.json) with SORSA, PiSSA, LoRA, AdaLoRA or full\n' +
        'fine-tuning. Writes the run folder: run.json, metrics.jsonl, checkpoints/, adapter/ (PEFT files), report.json.\n' +
        'Data: a .jsonl file of {"prompt", "completion"} records (loss on completion tokens only), or any other file as plain text.',
    )
    .option('--model <dir>', "checkpoint folder (config.json, model.safetensors, tokenizer.json); required, except with --resume (the run's)")
    .option('--data <file>', "training data: .jsonl records or plain text; required, except with --resume (the run's)")
    .option('--out <dir>', 'run folder (default: runs/<method>-<date>-<time>)')
    .addOption(new Option('--method <name>', 'adapter method').choices([...METHODS]).default('sorsa'))
    .option('--rank <n>', 'adapter rank (AdaLoRA: the target rank)', int(1), 8)
    .option('--targets <list>', 'module name patterns, comma-separated, * for any part of a name (default: every attention and MLP projection; with --method full, every weight)', list)
    .option('--steps <n>', 'optimizer steps', int(1), 100)
    .option('--batch <n>', 'sequences per step', int(1), 4)
    .option('--seq <n>', "tokens per sequence (default: the longest record's, or 256 for text; at most the model's context)", int(2))
    .option('--lr <x>', 'peak learning rate', num(0, { exclusive: true }), 2e-4)
    .addOption(new Option('--schedule <name>', 'learning-rate schedule after warmup').choices(['cosine', 'constant']).default('cosine'))
    .option('--warmup <x>', 'warmup: a fraction of --steps if below 1, else a step count', num(0), 0.03)
    .option('--gamma <x>', "SORSA's orthonormal regularizer weight", num(0), 4e-4)
    .option('--clip <x>', 'clip gradients to this global norm (0: no clipping)', num(0), 1)
    .option('--weight-decay <x>', 'AdamW weight decay', num(0), 0)
    .option('--alpha <x>', 'LoRA/AdaLoRA lora_alpha (default: the rank, a scale of 1)', num(0, { exclusive: true }))
    .option('--seed <n>', 'seed of initialization and data order', int(0, 2 ** 32 - 1), 0)
    .addOption(new Option('--backend <name>', 'compute backend').choices(['auto', 'webgpu', 'webgl', 'wasm', 'cpu']).default('auto'))
    .addOption(new Option('--svd <name>', 'SVD of SORSA/PiSSA initialization (auto: randomized, iterated until accurate to 1e-3, for a rank below a tenth of the weight\'s smaller side when that is at least 256; else exact Jacobi)').choices(['auto', 'jacobi', 'randomized']).default('auto'))
    .option('--eval-every <n>', 'held-out loss every n steps (0: only at the end)', int(0), 0)
    .option('--save-every <n>', 'checkpoint every n steps (and at the end)', int(1), 100)
    .option('--eval-split <x>', 'fraction of --data held out for evaluation (default: 0.1 when there are at least 10 sequences)', num(0, { max: 0.9 }))
    .option('--eval-data <file>', 'held-out data file instead of a split')
    .option('--log-every <n>', 'log a metrics record every n steps', int(1), 1)
    .option('--max-bad-steps <n>', 'stop after this many non-finite steps in a row', int(1), 5)
    .option('--keep-checkpoints <n>', 'checkpoints kept (the newest)', int(1), 2)
    .option('--init-rank <n>', "AdaLoRA's initial rank (default: 1.5 x --rank)", int(1))
    .option('--tinit <n>', "AdaLoRA's warmup steps before pruning (default: 10% of --steps)", int(0))
    .option('--tfinal <n>', "AdaLoRA's final steps with the rank pattern fixed (default: 20% of --steps)", int(0))
    .option('--delta-t <n>', "AdaLoRA's steps between two maskings (default: --steps / 50)", int(1))
    .option('--resume', "continue the run in --out from its newest checkpoint; options not given are the run's (run.json)", false)
    .option('--plain', 'log lines instead of a progress bar, even on a terminal', false)
    .addHelpText('after', '\nExample:\n  sorsa finetune --model checkpoints/gpt2 --data train.jsonl --method sorsa --rank 8 --steps 500 --out runs/gpt2-sorsa\n  sorsa finetune --resume --out runs/gpt2-sorsa')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const parsed: Omit<FinetuneArgs, 'model' | 'data'> & { model: string | null; data: string | null } = {
        model: (o.model as string | undefined) ?? null,
        data: (o.data as string | undefined) ?? null,
        out: (o.out as string | undefined) ?? `runs/${o.method as Method}-${stamp}`,
        method: o.method as Method,
        rank: o.rank as number,
        targets: (o.targets as string[] | undefined) ?? null,
        steps: o.steps as number,
        batch: o.batch as number,
        seq: (o.seq as number | undefined) ?? null,
        lr: o.lr as number,
        schedule: o.schedule as 'cosine' | 'constant',
        warmup: o.warmup as number,
        gamma: o.gamma as number,
        clip: o.clip as number,
        weightDecay: o.weightDecay as number,
        alpha: (o.alpha as number | undefined) ?? null,
        seed: o.seed as number,
        backend: o.backend as string,
        svd: o.svd as 'auto' | 'jacobi' | 'randomized',
        evalEvery: o.evalEvery as number,
        saveEvery: o.saveEvery as number,
        evalSplit: (o.evalSplit as number | undefined) ?? null,
        evalData: (o.evalData as string | undefined) ?? null,
        logEvery: o.logEvery as number,
        maxBadSteps: o.maxBadSteps as number,
        keepCheckpoints: o.keepCheckpoints as number,
        initRank: (o.initRank as number | undefined) ?? null,
        tinit: (o.tinit as number | undefined) ?? null,
        tfinal: (o.tfinal as number | undefined) ?? null,
        deltaT: (o.deltaT as number | undefined) ?? null,
        resume: o.resume as boolean,
      };
      // With --resume, what is not given on the command line is the run's.
      const given = new Set(Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
      const full = parsed.resume ? await withRunDefaults(parsed, given) : parsed;
      for (const k of ['model', 'data'] as const) {
        if (full[k] !== null) continue;
        const flag = k === 'model' ? '--model <dir>' : '--data <file>';
        if (parsed.resume) throw new UsageError(`--resume: ${parsed.out} holds no run (no run.json) to take ${flag.split(' ')[0]} from; give --out of an existing run, or ${flag.split(' ')[0]}`);
        throw new UsageError(`required option '${flag}' not specified`);
      }
      const args: FinetuneArgs = { ...full, model: full.model!, data: full.data! };
      const method = args.method;
      if (method !== 'adalora') {
        for (const k of ['initRank', 'tinit', 'tfinal', 'deltaT'] as const) {
          if (args[k] !== null) throw new UsageError(`--${flagName(k)}: only for --method adalora (got --method ${method})`);
        }
      }
      if (args.evalData !== null && args.evalSplit !== null) throw new UsageError('--eval-split and --eval-data: give one of them, not both');
      const signal = { interrupted: false };
      const onInt = (): void => {
        if (signal.interrupted) process.exit(EXIT.interrupted);
        signal.interrupted = true;
        process.stderr.write('\nsorsa finetune: interrupt: finishing this step, then writing a checkpoint (Ctrl-C again to quit at once)\n');
      };
      process.on('SIGINT', onInt);
      try {
        await run(async () => {
          const r = await finetune(args, makeProgress({ plain: o.plain as boolean }), signal);
          if (r.alreadyComplete && r.report) {
            process.stdout.write(`${args.out}: the run is already complete (${r.report.steps} of ${args.steps} steps); nothing to do (its report: ${runFiles(args.out).reportJson})\n`);
          } else if (r.interrupted) {
            const { step, saved } = r.interrupted;
            process.stderr.write(`sorsa finetune: interrupted at step ${step}; ${saved ? `checkpoint written; continue with sorsa finetune --resume --out ${shellWord(args.out)}` : 'no checkpoint written'}\n`);
          } else if (r.report) {
            const rep = r.report;
            process.stdout.write(`${rep.method}: ${rep.steps} steps, final loss ${(r.finalLoss ?? NaN).toFixed(4)}${rep.evalLoss !== null ? `, held-out loss ${rep.evalLoss.toFixed(4)}` : ''}; run folder ${args.out}\n`);
          }
          return r.status;
        });
      } finally {
        process.off('SIGINT', onInt);
      }
    });
}
