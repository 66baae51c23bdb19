/**
 * `sorsa export`: a run's newest checkpoint as files PyTorch tools read: a PEFT adapter folder
 * (`--format peft`, any adapter method), or one safetensors file in the official SORSA
 * implementation's layout (`--format official`, SORSA runs only).
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tensor, saveSafetensors, sub, tidy, tree, zeros } from '@sorsajs/core';
import type { ParamTree } from '@sorsajs/models';
import { Option, type Command } from 'commander';
import * as adalora from '../../adalora.js';
import { loadCheckpoint } from '../../checkpoint.js';
import { merge } from '../../forward.js';
import { toOfficialStateDict } from '../../interop.js';
import { savePeftAdapter, type AdaloraSaveOptions } from '../../peft.js';
import { isSorsaAdapter, type Adapter, type SorsaAdapter, type Trainable } from '../../types.js';
import { backendOption, startBackend } from '../backend.js';
import { EXIT, UsageError } from '../errors.js';
import { listCheckpoints, readJson, runFiles } from '../run-dir.js';
import { loadModel } from '../tuned.js';
import { adaloraPlan } from './finetune.js';

/**
 * The options of `sorsa export`.
 *
 * @example
 * ```ts
 * const a: ExportArgs = { run: 'runs/x', format: 'peft', out: null, model: null, backend: 'auto' };
 * ```
 */
export interface ExportArgs {
  run: string;
  format: 'peft' | 'official';
  /** Default: `<run>/adapter` (peft) or `<run>/official.safetensors` (official). */
  out: string | null;
  /** The base model; default: run.json's `args.model`. */
  model: string | null;
  backend: string;
}

/**
 * The run's recorded arguments, checked for what export needs. `model` is the base model's folder:
 * as given to finetune when it is found from here, else run.json's absolute `paths.model`.
 */
async function runArgs(run: string): Promise<Record<string, unknown>> {
  if (!existsSync(run)) throw new UsageError(`--run ${run}: no such directory`);
  if (!statSync(run).isDirectory()) throw new UsageError(`--run ${run}: not a run folder (a file)`);
  const files = runFiles(run);
  if (!existsSync(files.run)) throw new UsageError(`--run ${run}: not a run folder of sorsa finetune (no run.json)`);
  const saved = await readJson(files.run, '--run');
  const args = saved.args;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new UsageError(`--run ${run}: ${files.run} has no "args" object`);
  const paths = saved.paths !== null && typeof saved.paths === 'object' ? (saved.paths as Record<string, unknown>) : {};
  const abs = Object.hasOwn(paths, 'model') ? paths.model : null;
  const given = Object.hasOwn(args, 'model') ? (args as Record<string, unknown>).model : null;
  if (!(typeof given === 'string' && existsSync(given)) && typeof abs === 'string' && existsSync(abs)) return { ...args, model: abs };
  return args as Record<string, unknown>;
}

/** A number field of run.json's args, or null when absent; anything else is a UsageError. */
function argNumber(args: Record<string, unknown>, k: string, file: string): number | null {
  const v = Object.hasOwn(args, k) ? args[k] : null;
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UsageError(`--run: ${file}: args.${k} is ${JSON.stringify(v)}, not a number`);
  return v;
}

/**
 * The official layout's trees: adapters keyed by module path (`<module>`, the weight path without
 * `.weight`) and a flat record of every other tensor, with each adapted module's residual
 * `W − U0 diag(S0) V0ᵀ` (the base weight less the initial principal part, as training froze it)
 * under `<module>`, so that `toOfficialStateDict` names them `<module>.weight` and
 * `<module>.sorsa_A/B/S`.
 */
function officialTrees(params: ParamTree, trainable: Trainable, initial: Trainable): { adapters: Record<string, SorsaAdapter>; frozen: Record<string, Tensor> } {
  const adapters: Record<string, SorsaAdapter> = Object.create(null) as Record<string, SorsaAdapter>;
  const frozen: Record<string, Tensor> = Object.create(null) as Record<string, Tensor>;
  const paths = tree.leafPaths(params);
  const leaves = tree.leaves(params);
  const byPath = new Map(paths.map((p, i) => [p, leaves[i]]));
  for (const [p, ad] of Object.entries(trainable)) {
    const W = byPath.get(p);
    const init = Object.hasOwn(initial, p) ? initial[p] : undefined;
    if (!p.endsWith('.weight') || !(W instanceof Tensor) || !isSorsaAdapter(ad as Adapter) || !init || !isSorsaAdapter(init as Adapter)) {
      throw new UsageError(`--run: the checkpoint's "${p}" is not a SORSA adapter of a weight of the model (is --model the run's base model?)`);
    }
    const a = ad as SorsaAdapter;
    if (a.scale !== undefined && a.scale !== 1) throw new UsageError(`--run: the adapter "${p}" has scale ${a.scale}; the official layout has no place for a scale other than 1`);
    const m = p.slice(0, -'.weight'.length);
    adapters[m] = a;
    frozen[m] = tidy(() => sub(W, merge(init as SorsaAdapter, zeros(W.shape))));
  }
  paths.forEach((p, i) => {
    const leaf = leaves[i];
    if (leaf instanceof Tensor && !Object.hasOwn(trainable, p)) frozen[p] = leaf;
  });
  return { adapters, frozen };
}

/** Each adapter of the checkpoint is for a weight of the model, of its shape, or a UsageError. */
function checkFits(params: ParamTree, trainable: Trainable): void {
  const leaves = tree.leaves(params);
  const byPath = new Map(tree.leafPaths(params).map((p, i) => [p, leaves[i]]));
  for (const [p, ad] of Object.entries(trainable)) {
    const W = byPath.get(p);
    if (!(W instanceof Tensor)) throw new UsageError(`--run: the checkpoint has an adapter for "${p}", which the model does not have (is --model the run's base model?)`);
    const x = ad as unknown as Record<string, unknown>;
    const left = (x.U ?? x.B) as Tensor | undefined;
    const right = (x.Vt ?? x.A) as Tensor | undefined;
    if (!(left instanceof Tensor) || !(right instanceof Tensor)) throw new UsageError(`--run: the checkpoint's "${p}" is not an adapter ({U, S, Vt}, {A, B} or {A, E, B})`);
    if (left.shape[0] !== W.shape[0] || right.shape[1] !== W.shape[1]) {
      throw new UsageError(`--run: the checkpoint's "${p}" is for a [${left.shape[0]},${right.shape[1]}] weight, the model's is [${W.shape}] (is --model the run's base model?)`);
    }
  }
}

/**
 * Runs `sorsa export`: writes the files and resolves to the exit status; user errors throw
 * UsageError.
 *
 * @example
 * ```ts
 * process.exitCode = await exportRun({ run: 'runs/x', format: 'official', out: null, model: null, backend: 'auto' });
 * ```
 */
export async function exportRun(a: ExportArgs): Promise<number> {
  const args = await runArgs(a.run);
  const files = runFiles(a.run);
  const method = String(args.method);
  // A full fine-tuning run first: neither format applies, and merge is what does.
  if (method === 'full') {
    throw new UsageError(`--run ${a.run}: a full fine-tuning run has no adapter to export (in either format); sorsa merge --model <its base model> --adapter ${a.run} --out <dir> writes its weights as a checkpoint`);
  }
  if (a.format === 'official' && method !== 'sorsa') {
    throw new UsageError(`--format official: the official layout is SORSA's (weight, sorsa_A, sorsa_B, sorsa_S); this run's method is ${method}: use --format peft`);
  }
  const modelDir = a.model ?? (typeof args.model === 'string' ? args.model : null);
  if (a.model !== null && !existsSync(a.model)) throw new UsageError(`--model ${a.model}: no such directory`);
  if (modelDir === null || !existsSync(modelDir)) {
    throw new UsageError(`--run ${a.run}: its base model ${JSON.stringify(modelDir)} (run.json args.model) is not found from here; pass --model DIR, the checkpoint the run was trained on`);
  }
  const out = a.out ?? (a.format === 'peft' ? files.adapter : join(a.run, 'official.safetensors'));
  if (!existsSync(dirname(out))) throw new UsageError(`--out ${out}: the folder ${dirname(out)} does not exist`);
  if (a.format === 'official' && existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is a directory; give a file name such as official.safetensors`);
  if (a.format === 'peft' && existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is a file; PEFT adapters are folders`);
  const list = await listCheckpoints(a.run);
  if (list.length === 0) throw new UsageError(`--run ${a.run}: the run has no checkpoint yet (checkpoints/ is empty)`);
  const newest = list[list.length - 1];

  await startBackend(a.backend);
  const model = await loadModel(modelDir, a.model !== null ? '--model' : '--run (its base model)');
  const ck = await loadCheckpoint(newest.file).catch((e: Error) => {
    throw new UsageError(`--run: ${e.message}`);
  });
  const trainable = ck.trees.trainable as Trainable;
  let initial: Trainable | null = null;
  try {
    if (method === 'sorsa' || method === 'pissa' || method === 'lora') {
      initial = (
        await loadCheckpoint(files.initial).catch((e: Error) => {
          throw new UsageError(`--run: ${e.message}`);
        })
      ).trees.trainable as Trainable;
    }
    checkFits(model.params, trainable);
    if (a.format === 'official') {
      const { adapters, frozen } = officialTrees(model.params, trainable, initial!);
      const record = toOfficialStateDict(adapters, frozen);
      try {
        await saveSafetensors(record, out, { format: 'pt' });
      } finally {
        // The residuals are new; the other frozen leaves are the model's, disposed below.
        tree.dispose([record, Object.keys(adapters).map((m) => frozen[m])]);
      }
      process.stdout.write(`official SORSA layout of ${a.run} (step ${newest.step}, ${Object.keys(adapters).length} adapted layers): ${out}\n`);
      return EXIT.ok;
    }
    let ada: AdaloraSaveOptions | undefined;
    if (method === 'adalora') {
      const state = ck.trees.allocator as adalora.AllocatorState | undefined;
      if (!state?.pattern) throw new UsageError(`--run: ${newest.file} holds no AdaLoRA allocator state (trees.allocator), which the rank pattern comes from`);
      const rank = argNumber(args, 'rank', files.run);
      const steps = argNumber(args, 'steps', files.run);
      if (rank === null || steps === null) throw new UsageError(`--run: ${files.run} lacks args.rank or args.steps, which AdaLoRA's config needs`);
      const plan = adaloraPlan({
        rank,
        steps,
        initRank: argNumber(args, 'initRank', files.run),
        tinit: argNumber(args, 'tinit', files.run),
        tfinal: argNumber(args, 'tfinal', files.run),
        deltaT: argNumber(args, 'deltaT', files.run),
      });
      ada = { rankPattern: await adalora.rankPattern(state), targetR: rank, tinit: plan.tinit, tfinal: plan.tfinal, totalSteps: steps, deltaT: plan.deltaT };
    }
    await savePeftAdapter(out, trainable, {
      // SORSA and PiSSA go to PEFT as LoRA on the untouched base weight (toLoRA against the
      // initial adapters); LoRA and AdaLoRA already apply to it.
      initial: method === 'sorsa' || method === 'pissa' ? (initial ?? undefined) : undefined,
      fanInFanOut: model.config.family === 'gpt2',
      baseModel: modelDir,
      adalora: ada,
    }).catch((e: Error) => {
      throw e instanceof UsageError ? e : new UsageError(`--run: ${e.message}`);
    });
    process.stdout.write(`PEFT adapter of ${a.run} (${method}, step ${newest.step}): ${out}\n`);
    return EXIT.ok;
  } finally {
    tree.dispose([ck.trees, initial, model.params]);
  }
}

/**
 * Adds `sorsa export` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa export --run DIR --format peft|official
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('export')
    .summary("a run's adapter as PEFT files, or in the official SORSA layout")
    .description(
      "Writes the newest checkpoint of a run of sorsa finetune as files PyTorch tools read:\n" +
        '  peft      a PEFT adapter folder (adapter_config.json, adapter_model.safetensors) for PeftModel.from_pretrained;\n' +
        '            SORSA and PiSSA as LoRA on the untouched base weights, AdaLoRA with its rank pattern\n' +
        "  official  the official SORSA implementation's layout, one safetensors file: per adapted layer <module>.weight\n" +
        '            (the residual), <module>.sorsa_A (Vt), <module>.sorsa_B (U), <module>.sorsa_S (S), every other\n' +
        '            weight under its own name; linear weights [out, in] (GPT-2\'s Conv1D weights too). SORSA runs only.',
    )
    .requiredOption('--run <dir>', 'the run folder of sorsa finetune')
    .addOption(new Option('--format <name>', 'what to write').choices(['peft', 'official']).makeOptionMandatory())
    .option('--out <path>', 'where (default: <run>/adapter for peft, <run>/official.safetensors for official)')
    .option('--model <dir>', "the base checkpoint (default: the run's, from run.json)")
    .addOption(backendOption())
    .addHelpText('after', '\nExample:\n  sorsa export --run runs/gpt2-sorsa --format peft --out gpt2-sorsa-peft\n  sorsa export --run runs/gpt2-sorsa --format official')
    .action(async (o: Record<string, unknown>) => {
      await run(() =>
        exportRun({
          run: o.run as string,
          format: o.format as 'peft' | 'official',
          out: (o.out as string | undefined) ?? null,
          model: (o.model as string | undefined) ?? null,
          backend: o.backend as string,
        }),
      );
    });
}
