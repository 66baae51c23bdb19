/**
 * `sorsa eval`: the held-out loss of a model (or of a model with an adapter) on a data file, and
 * with `--metric exact-match` the accuracy of its greedy answers as GSM8K scores them (the final
 * number of the generation equals the completion's).
 * @module
 */
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import { exactMatch } from '../../compare/accuracy.js';
import { backendOption } from '../backend.js';
import { readDataset, toSequences, type Dataset } from '../data.js';
import { EXIT, UsageError } from '../errors.js';
import { eosIds, openModel, trainingEos } from '../open.js';
import { int } from '../options.js';
import { makeProgress } from '../progress.js';
import { writeTextAtomic } from '../run-dir.js';
import { defaultSeq, heldOutLoss } from './finetune.js';

/**
 * The options of `sorsa eval`, resolved from its flags.
 *
 * @example
 * ```ts
 * const a: EvalArgs = { model: 'gpt2', adapter: 'runs/x', data: 'test.jsonl', seq: null, batch: 8, metric: 'exact-match', maxNewTokens: 64, limit: 100, backend: 'auto', json: false, out: null };
 * ```
 */
export interface EvalArgs {
  model: string;
  adapter: string | null;
  data: string;
  /** Tokens per sequence of the loss; null: as `sorsa finetune` chooses it. */
  seq: number | null;
  batch: number;
  metric: 'loss' | 'exact-match';
  maxNewTokens: number;
  /** Only the first `limit` records (or text sequences); null: all. */
  limit: number | null;
  backend: string;
  json: boolean;
  out: string | null;
}

/**
 * One graded generation of `--metric exact-match`.
 *
 * @example
 * ```ts
 * const p: Prediction = { prompt: 'Q: 2+3=', reference: ' The answer is 5.', generated: ' 5', expected: 5, got: 5, correct: true };
 * ```
 */
export interface Prediction {
  prompt: string;
  /** The completion of the data file. */
  reference: string;
  /** The text generated after the prompt (greedy, up to the end-of-text token). */
  generated: string;
  /** The final number of `reference`, and of `generated` (null: none). */
  expected: number | null;
  got: number | null;
  correct: boolean;
}

/**
 * What `sorsa eval` reports (printed with `--json`, written with `--out`).
 *
 * @example
 * ```ts
 * const r = JSON.parse(readFileSync('eval.json', 'utf8')) as EvalResult;
 * r.exactMatch?.accuracy; // 0.31
 * ```
 */
export interface EvalResult {
  model: string;
  adapter: string | null;
  data: string;
  backend: string;
  /** Records (JSONL) or sequences (text) evaluated. */
  records: number;
  /** Records dropped from the loss because their prompt fills the `seq` window. */
  dropped: number;
  seq: number;
  /** Token-weighted mean cross-entropy over the completion tokens (all tokens for text). */
  loss: number;
  /** Tokens the loss is taken over. */
  tokens: number;
  /** With `--metric exact-match`. */
  exactMatch?: { correct: number; total: number; accuracy: number; maxNewTokens: number; predictions: Prediction[] };
}

/** `--limit`: the first `n` records of a JSONL dataset; text is limited after tokenizing. */
function limitRecords(d: Dataset, n: number | null): Dataset {
  return n === null || d.kind === 'text' ? d : { kind: 'jsonl', examples: d.examples.slice(0, n) };
}

/** Checks `--out FILE` before any work: its folder must exist, and it must not be a folder. */
function checkOutFile(out: string | null): void {
  if (out === null) return;
  if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) throw new UsageError(`--out ${out}: the folder ${dirname(out)} does not exist`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`--out ${out}: is a directory; give a file name such as eval.json`);
}

/**
 * Runs `sorsa eval`: prints the result and resolves to the exit status; user errors throw UsageError.
 *
 * @example
 * ```ts
 * process.exitCode = await evaluate({ ...args, metric: 'loss' });
 * ```
 */
export async function evaluate(a: EvalArgs): Promise<number> {
  if (!existsSync(a.data)) throw new UsageError(`--data ${a.data}: no such file`);
  checkOutFile(a.out);
  const dataset = limitRecords(await readDataset(a.data, '--data'), a.limit);
  if (a.metric === 'exact-match' && dataset.kind !== 'jsonl') {
    throw new UsageError(`--metric exact-match: --data ${a.data} must be a .jsonl file of {"prompt", "completion"} records (it is read as plain text)`);
  }
  const o = await openModel({ model: a.model, adapter: a.adapter, backend: a.backend });
  try {
    const tok = o.model.tokenizer;
    if (!tok) throw new UsageError(`--model ${a.model}: the checkpoint has no tokenizer.json, which sorsa eval needs to read --data`);
    const max = o.model.config.maxPositions;
    if (a.seq !== null && a.seq > max) throw new UsageError(`--seq ${a.seq}: the model takes at most ${max} positions`);
    const eos = trainingEos(o.model.config);
    const seq = a.seq ?? defaultSeq(tok, dataset, eos, max);
    const data = toSequences(tok, dataset, seq, eos, `--data ${a.data}`);
    const sequences = a.limit !== null && dataset.kind === 'text' ? data.sequences.slice(0, a.limit) : data.sequences;
    let tokens = 0;
    for (const s of sequences) for (const l of s.labels) if (l >= 0) tokens++;
    const loss = await heldOutLoss(o.model, o.params, sequences, a.batch);
    const result: EvalResult = {
      model: a.model,
      adapter: a.adapter,
      data: a.data,
      backend: o.backend,
      records: dataset.kind === 'jsonl' ? dataset.examples.length : sequences.length,
      dropped: data.dropped,
      seq,
      loss,
      tokens,
    };
    if (a.metric === 'exact-match' && dataset.kind === 'jsonl') {
      const progress = makeProgress();
      const stops = eosIds(o.model.config);
      const examples = dataset.examples;
      const graded = await exactMatch(o.model, o.params, examples, {
        eos: stops,
        maxNewTokens: a.maxNewTokens,
        batch: a.batch,
        onBatch: (done, total, right) => progress.phase('generate', done, total, `${right} correct`),
      });
      const predictions: Prediction[] = graded.map((g, i) => ({ prompt: g.prompt, reference: examples[i].completion, generated: g.generated, expected: g.expected, got: g.got, correct: g.correct }));
      progress.stop();
      const correct = predictions.filter((p) => p.correct).length;
      result.exactMatch = { correct, total: predictions.length, accuracy: correct / predictions.length, maxNewTokens: a.maxNewTokens, predictions };
    }
    const text = `${JSON.stringify(result, null, 2)}\n`;
    if (a.out !== null) await writeTextAtomic(a.out, text);
    if (a.json) process.stdout.write(text);
    else {
      const em = result.exactMatch;
      process.stdout.write(
        `loss ${loss.toFixed(4)} on ${result.records} ${dataset.kind === 'jsonl' ? 'records' : 'sequences'} (${tokens} tokens, seq ${seq})` +
          `${em ? `; exact match ${em.correct}/${em.total} = ${(100 * em.accuracy).toFixed(1)}%` : ''}${result.dropped > 0 ? `; ${result.dropped} records dropped from the loss (prompt fills --seq)` : ''}\n`,
      );
    }
    return EXIT.ok;
  } finally {
    o.dispose();
  }
}

/**
 * Adds `sorsa eval` to the program.
 *
 * @example
 * ```ts
 * register(program, run); // sorsa eval --model DIR --data FILE.jsonl
 * ```
 */
export function register(program: Command, run: (work: () => Promise<number>) => Promise<void>): void {
  program
    .command('eval')
    .summary('held-out loss and exact-match accuracy of a model or an adapter')
    .description(
      'Evaluates a checkpoint, or a checkpoint with an adapter, on a data file: the token-weighted mean cross-entropy on the\n' +
        'completion tokens of {"prompt", "completion"} JSONL records (every token of a plain-text file), and with\n' +
        '--metric exact-match the share of greedy generations whose final number equals the completion\'s (GSM8K\'s rule:\n' +
        'the last number in the text, commas removed). Prints one line, or a JSON object with --json.',
    )
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, model.safetensors, tokenizer.json)')
    .option('--adapter <path>', 'a run folder of sorsa finetune, one of its checkpoint files, or a PEFT adapter folder')
    .requiredOption('--data <file>', 'evaluation data: .jsonl records (or plain text, for the loss only)')
    .option('--seq <n>', "tokens per sequence of the loss (default: the longest record's, or 256 for text; at most the model's context)", int(2))
    .option('--batch <n>', 'sequences per forward pass of the loss, and prompts generated together', int(1), 8)
    .addOption(new Option('--metric <name>', 'loss only, or loss and exact-match accuracy of greedy generations').choices(['loss', 'exact-match']).default('loss'))
    .option('--max-new-tokens <n>', "tokens generated per record at most (also at most the model's context)", int(1), 64)
    .option('--limit <n>', 'only the first n records (text: sequences)', int(1))
    .addOption(backendOption())
    .option('--json', 'print the result as a JSON object (with every graded generation)', false)
    .option('--out <file>', 'also write the JSON result to this file')
    .addHelpText('after', '\nExample:\n  sorsa eval --model checkpoints/gpt2 --adapter runs/gpt2-sorsa --data test.jsonl --metric exact-match --limit 200')
    .action(async (o: Record<string, unknown>) => {
      await run(() =>
        evaluate({
          model: o.model as string,
          adapter: (o.adapter as string | undefined) ?? null,
          data: o.data as string,
          seq: (o.seq as number | undefined) ?? null,
          batch: o.batch as number,
          metric: o.metric as 'loss' | 'exact-match',
          maxNewTokens: o.maxNewTokens as number,
          limit: (o.limit as number | undefined) ?? null,
          backend: o.backend as string,
          json: o.json as boolean,
          out: (o.out as string | undefined) ?? null,
        }),
      );
    });
}
