#!/usr/bin/env node
/**
 * The `sorsa` command line: `sorsa --help` lists the commands, `sorsa <command> --help` shows a
 * command's options with their defaults and an example. User errors (bad flags, missing files,
 * mismatches) print one line and exit with status 2; see `EXIT` for the others.
 * @module
 */
import { Command, CommanderError } from 'commander';
import { version } from '../version.js';
import { register as registerFinetune } from './commands/finetune.js';
import { register as registerEval } from './commands/eval.js';
import { register as registerGenerate } from './commands/generate.js';
import { register as registerMerge } from './commands/merge.js';
import { register as registerExport } from './commands/export.js';
import { register as registerDrift } from './commands/drift.js';
import { register as registerCompare } from './commands/compare.js';
import { EXIT, UsageError } from './errors.js';

/** Runs a command's work and sets the exit status from its result or its error. */
async function run(work: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await work();
  } catch (e) {
    fail(e);
  }
}

/** Prints an error on one line (with the stack only under SORSA_DEBUG=1) and sets the status. */
function fail(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  const usage = err instanceof UsageError;
  process.stderr.write(`sorsa: error: ${err.message.split('\n')[0]}\n`);
  if (process.env.SORSA_DEBUG === '1' && err.stack) process.stderr.write(`${err.stack}\n`);
  else if (!usage) process.stderr.write('sorsa: (an unexpected error: run again with SORSA_DEBUG=1 for its stack trace, and please report it)\n');
  process.exitCode = usage ? EXIT.usage : EXIT.failure;
}

/** The program, with every command registered. */
export function program(): Command {
  const p = new Command('sorsa')
    .description('Fine-tune language models with SORSA, PiSSA, LoRA, AdaLoRA or full fine-tuning, and carry the results to PyTorch.')
    .version(version)
    .exitOverride()
    .showSuggestionAfterError(true)
    // One line per error: commander puts its "(Did you mean --x?)" suggestion on a line of its own.
    .configureOutput({ outputError: (text, write) => write(`${text.trimEnd().replace(/\n+/g, ' ')}\n`) })
    .addHelpText('after', '\nExample:\n  sorsa finetune --model checkpoints/gpt2 --data train.jsonl --out runs/gpt2-sorsa\n\nRun "sorsa <command> --help" for a command\'s options.');
  registerFinetune(p, run);
  registerEval(p, run);
  registerGenerate(p, run);
  registerMerge(p, run);
  registerExport(p, run);
  registerDrift(p, run);
  registerCompare(p, run);
  return p;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed its message (unknown option, bad value, missing option) already.
      process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    fail(e);
  }
}

await main(process.argv);
