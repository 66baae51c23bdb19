/**
 * `sorsa generate`: continues a prompt with a model, or a model with an adapter, and prints the
 * continuation: greedy by default, sampled with `--temperature` (and `--top-k`) from `--seed`.
 * @module
 */
import { random } from '@sorsajs/core';
import { generate } from '@sorsajs/models';
import type { Command } from 'commander';
import { backendOption } from '../backend.js';
import { EXIT, UsageError } from '../errors.js';
import { eosIds, openModel } from '../open.js';
import { int, num } from '../options.js';

/**
 * The options of `sorsa generate`, resolved from its flags.
 *
 * @example
 * ```ts
 * const a: GenerateArgs = { model: 'gpt2', adapter: null, prompt: 'Q: 2+3=', maxNewTokens: 16, maxNewTokensGiven: true, temperature: 0, topK: null, seed: 0, backend: 'auto' };
 * ```
 */
export interface GenerateArgs {
  model: string;
  adapter: string | null;
  prompt: string;
  maxNewTokens: number;
  /** Whether --max-new-tokens was given (else the default, which shrinks to fit the context). */
  maxNewTokensGiven: boolean;
  temperature: number;
  topK: number | null;
  seed: number;
  backend: string;
}

/**
 * Runs `sorsa generate`: writes the continuation (without the prompt) and a newline to stdout, and
 * resolves to the exit status; user errors throw UsageError.
 *
 * @example
 * ```ts
 * process.exitCode = await generateText(args);
 * ```
 */
export async function generateText(a: GenerateArgs): Promise<number> {
  if (a.prompt === '') throw new UsageError('--prompt: empty; give the text to continue');
  if (a.topK !== null && a.temperature === 0) throw new UsageError('--top-k: only with --temperature above 0 (temperature 0 is greedy)');
  const o = await openModel({ model: a.model, adapter: a.adapter, backend: a.backend });
  try {
    const tok = o.model.tokenizer;
    if (!tok) throw new UsageError(`--model ${a.model}: the checkpoint has no tokenizer.json, which sorsa generate needs to read --prompt`);
    const ids = tok.encode(a.prompt);
    const max = o.model.config.maxPositions;
    if (ids.length >= max) throw new UsageError(`--prompt: its ${ids.length} tokens fill the model's ${max} positions; nothing can follow`);
    // The default stops where the context ends; an explicit --max-new-tokens that does not fit is an error.
    const maxNewTokens = a.maxNewTokensGiven ? a.maxNewTokens : Math.min(a.maxNewTokens, Math.max(0, max - ids.length));
    if (ids.length + maxNewTokens > max) {
      throw new UsageError(`--max-new-tokens ${a.maxNewTokens}: the prompt's ${ids.length} tokens plus ${a.maxNewTokens} new ones exceed the model's ${max} positions; use at most ${Math.max(0, max - ids.length)}`);
    }
    const stops = eosIds(o.model.config);
    const [row] = await generate(o.model, o.params, [ids], {
      maxNewTokens,
      temperature: a.temperature,
      topK: a.topK ?? undefined,
      key: a.temperature > 0 ? random.key(a.seed) : undefined,
      eosTokenId: stops,
    });
    const fresh = row.slice(ids.length);
    if (fresh.length > 0 && stops.includes(fresh[fresh.length - 1])) fresh.pop();
    process.stdout.write(`${tok.decode(fresh)}\n`);
    return EXIT.ok;
  } finally {
    o.dispose();
  }
}

/**
 * Adds `sorsa generate` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa generate --model DIR --prompt TEXT
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('generate')
    .summary('continue a prompt with a model or an adapter')
    .description(
      'Continues --prompt with a checkpoint, or a checkpoint with an adapter, and prints the continuation (not the prompt)\n' +
        'up to --max-new-tokens or the end-of-text token. Greedy at --temperature 0; above 0, sampled (from the --top-k most\n' +
        'likely tokens when given) with the PRNG of --seed, so a seed gives the same text every time.',
    )
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, model.safetensors, tokenizer.json)')
    .option('--adapter <path>', 'a run folder of sorsa finetune, one of its checkpoint files, or a PEFT adapter folder')
    .requiredOption('--prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', "tokens to add at most; when not given, fewer if the model's context ends first (a value given that does not fit is an error)", int(0), 64)
    .option('--temperature <x>', 'softmax temperature (0: greedy)', num(0), 0)
    .option('--top-k <n>', 'sample among the k most likely tokens only', int(1))
    .option('--seed <n>', 'seed of sampling', int(0, 2 ** 32 - 1), 0)
    .addOption(backendOption())
    .addHelpText('after', '\nExample:\n  sorsa generate --model checkpoints/gpt2 --adapter runs/gpt2-sorsa --prompt "Q: 3+4=" --max-new-tokens 16')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      await run(() =>
        generateText({
          model: o.model as string,
          adapter: (o.adapter as string | undefined) ?? null,
          prompt: o.prompt as string,
          maxNewTokens: o.maxNewTokens as number,
          maxNewTokensGiven: cmd.getOptionValueSource('maxNewTokens') === 'cli',
          temperature: o.temperature as number,
          topK: (o.topK as number | undefined) ?? null,
          seed: o.seed as number,
          backend: o.backend as string,
        }),
      );
    });
}
