/**
 * `sorsa compare`: the paper's comparison at small scale (what `npm start` runs); see
 * `compare/compare.ts` for what it does.
 * @module
 */
import type { Command } from 'commander';
import { compare, DEFAULT_PLAN, QUICK_PLAN, type ComparePlan } from '../../compare/compare.js';
import { backendOption } from '../backend.js';
import { UsageError } from '../errors.js';
import { int, list } from '../options.js';
import { makeProgress } from '../progress.js';
import { METHODS, type Method } from './finetune.js';

/**
 * Adds `sorsa compare` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa compare --quick
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('compare')
    .summary("the paper's comparison at small scale: SORSA, PiSSA, LoRA, AdaLoRA and full fine-tuning")
    .description(
      'Pretrains a small GPT on Moby-Dick (cached in --base-dir), fine-tunes it with every method on generated\n' +
        "arithmetic word problems (each method's learning rate chosen on a validation split), and judges each over\n" +
        'several seeds by test loss, exact-match accuracy of greedy answers and the ΔΣ/ΔD drift of its weights.\n' +
        'Writes report.json, report.html, sorsa-merged/ and adapter/ into the run folder.',
    )
    .option('--out <dir>', 'run folder (default: runs/<date>-<time>; runs/latest points to it)')
    .option('--base-dir <dir>', 'where the pretrained base model is cached', 'runs/base')
    .option('--model <dir>', 'your own base checkpoint instead of the pretrained one')
    .option('--data <file>', 'your own prompt/completion .jsonl instead of the generated problems (split 85/5/10 into train, validation and test)')
    .option('--methods <list>', 'methods to compare', list, [...METHODS])
    .option('--quick', 'a one-minute smoke run (tiny model, few steps)', false)
    .option('--steps <n>', `fine-tuning steps (default: ${DEFAULT_PLAN.steps}; --quick ${QUICK_PLAN.steps})`, int(1))
    .option('--seeds <n>', `seeds per method (default: ${DEFAULT_PLAN.seeds})`, int(1))
    .option('--task-seed <n>', 'seed of the generated problems', int(0), 1234)
    .addOption(backendOption())
    .option('--plain', 'log lines instead of progress bars, even on a terminal', false)
    .addHelpText('after', '\nExample:\n  sorsa compare                # about 15 minutes on 2 CPU cores the first time, 8 once the base model is cached\n  sorsa compare --quick        # a one-minute smoke run')
    .action(async (o: Record<string, unknown>) => {
      const methods = o.methods as string[];
      for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new UsageError(`--methods: "${m}" is not a method (${METHODS.join(', ')})`);
      const base = o.quick ? QUICK_PLAN : DEFAULT_PLAN;
      const plan: ComparePlan = { ...base, steps: (o.steps as number | undefined) ?? base.steps, seeds: (o.seeds as number | undefined) ?? base.seeds };
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const signal = { interrupted: false };
      const onInt = (): void => {
        if (signal.interrupted) process.exit(130);
        signal.interrupted = true;
        process.stderr.write('\nsorsa compare: interrupt: stopping after this step (Ctrl-C again to quit at once)\n');
      };
      process.on('SIGINT', onInt);
      try {
        await run(() =>
          compare(
            {
              out: (o.out as string | undefined) ?? `runs/${stamp}`,
              baseDir: o.quick ? `${o.baseDir as string}-quick` : (o.baseDir as string),
              model: (o.model as string | undefined) ?? null,
              data: (o.data as string | undefined) ?? null,
              methods: methods as Method[],
              plan,
              backend: o.backend as string,
              taskSeed: o.taskSeed as number,
            },
            makeProgress({ plain: o.plain as boolean }),
            signal,
          ),
        );
      } finally {
        process.off('SIGINT', onInt);
      }
    });
}
