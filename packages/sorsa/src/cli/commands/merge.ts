/**
 * `sorsa merge`: a checkpoint with an adapter folded into its weights, written in the base model's
 * own layout (config.json, model.safetensors, tokenizer.json), so that `loadPretrained` here and
 * `from_pretrained` in transformers load it as a plain model.
 * @module
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { savePretrained } from '@sorsajs/models';
import type { Command } from 'commander';
import { backendOption } from '../backend.js';
import { EXIT, UsageError } from '../errors.js';
import { openModel } from '../open.js';

/**
 * The options of `sorsa merge`.
 *
 * @example
 * ```ts
 * const a: MergeArgs = { model: 'checkpoints/gpt2', adapter: 'runs/x', out: 'checkpoints/gpt2-x', backend: 'auto' };
 * ```
 */
export interface MergeArgs {
  model: string;
  adapter: string;
  out: string;
  backend: string;
}

/** Refuses an `--out` that holds files already (a checkpoint is never overwritten by a merge). */
function checkOutDir(out: string, model: string): void {
  if (resolve(out) === resolve(model)) throw new UsageError(`--out ${out}: is the --model folder; write the merged model to another folder`);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is a file, not a folder`);
  if (readdirSync(out).length > 0) throw new UsageError(`--out ${out}: the folder is not empty; choose a new folder`);
}

/**
 * Runs `sorsa merge`: writes the merged checkpoint and resolves to the exit status; user errors
 * (a non-empty --out, a mismatched adapter) throw UsageError before anything is written.
 *
 * @example
 * ```ts
 * process.exitCode = await mergeCommand(args);
 * ```
 */
export async function mergeCommand(a: MergeArgs): Promise<number> {
  checkOutDir(a.out, a.model);
  const o = await openModel({ model: a.model, adapter: a.adapter, backend: a.backend });
  try {
    await savePretrained(o.model, o.params, a.out);
    const what = o.adapter?.step !== null && o.adapter?.step !== undefined ? `${o.adapter.method} step ${o.adapter.step}` : (o.adapter?.method ?? '');
    process.stdout.write(`merged ${a.adapter} (${what}) into ${a.model}: ${a.out}\n`);
    return EXIT.ok;
  } finally {
    o.dispose();
  }
}

/**
 * Adds `sorsa merge` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa merge --model DIR --adapter PATH --out DIR
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('merge')
    .summary('fold an adapter into the weights: a plain checkpoint in the base layout')
    .description(
      'Applies an adapter to a checkpoint and writes the tuned weights as a checkpoint in the base model\'s own layout\n' +
        '(config.json, model.safetensors, tokenizer.json): loadable with loadPretrained, or with transformers\'\n' +
        'AutoModelForCausalLM.from_pretrained, with no adapter code and no extra latency.',
    )
    .requiredOption('--model <dir>', 'the base checkpoint folder the adapter was trained on')
    .requiredOption('--adapter <path>', 'a run folder of sorsa finetune, one of its checkpoint files, or a PEFT adapter folder')
    .requiredOption('--out <dir>', 'the merged checkpoint folder (new, or empty)')
    .addOption(backendOption())
    .addHelpText('after', '\nExample:\n  sorsa merge --model checkpoints/gpt2 --adapter runs/gpt2-sorsa --out checkpoints/gpt2-sorsa-merged')
    .action(async (o: Record<string, unknown>) => {
      await run(() => mergeCommand({ model: o.model as string, adapter: o.adapter as string, out: o.out as string, backend: o.backend as string }));
    });
}
