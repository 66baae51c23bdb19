/**
 * Fixtures of the command-line tests: a tiny checkpoint folder (GPT-2 or Llama family, with a
 * byte-level tokenizer.json) and data files written by the test, and a runner of the real binary
 * as a subprocess.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, random, tree } from '@sorsajs/core';
import { createModel, savePretrained } from '@sorsajs/models';

/** The built binary (npm test builds before it tests). */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

/** A fresh temporary folder. */
export function tempDir(prefix = 'sorsa-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** GPT-2's bytes_to_unicode: each byte as a printable character. */
function byteChars(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return out;
}

/** A byte-level tokenizer.json without merges: ids 0-255 are bytes, 256 is `<|endoftext|>`. */
export function byteTokenizer(): object {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, i) => (vocab[c] = i));
  vocab['<|endoftext|>'] = 256;
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: bl,
    post_processor: bl,
    decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

/** Configs of the tiny models (vocab 257: bytes and an end-of-text token). */
export const TINY = {
  gpt2: { model_type: 'gpt2', n_layer: 2, n_head: 2, n_embd: 32, vocab_size: 257, n_positions: 64, eos_token_id: 256, bos_token_id: 256 },
  llama: {
    model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    vocab_size: 257, max_position_embeddings: 64, eos_token_id: 256, bos_token_id: 256,
  },
} as const;

/** Writes a tiny random checkpoint of `family` with its tokenizer.json into a new folder. */
export async function tinyModel(family: keyof typeof TINY = 'gpt2', seed = 0): Promise<string> {
  await init({ backend: 'wasm' });
  const dir = tempDir(`sorsa-model-${family}-`);
  const m = createModel(TINY[family], random.key(seed));
  await savePretrained(m, m.params, dir);
  tree.dispose(m.params);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizer()));
  return dir;
}

/** Addition problems as prompt/completion JSONL (`n` records), written to `file`. */
export function additionJsonl(file: string, n = 60, offset = 0): string {
  const lines: string[] = [];
  for (let i = offset; i < offset + n; i++) {
    const a = i % 7;
    const b = (i * 3) % 5;
    lines.push(JSON.stringify({ prompt: `Q: ${a}+${b}=`, completion: ` The answer is ${a + b}.` }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** What a finished run of the binary gave. */
export interface CliResult {
  /** The exit status (null when killed by a signal). */
  code: number | null;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/**
 * Runs `sorsa ...args` as a subprocess (stdio pipes: no terminal, so progress prints plain lines).
 * `onStderr` sees stderr as it arrives (e.g. to send SIGINT at a step).
 */
export function runCli(args: readonly string[], opts: { cwd?: string; onStderr?: (text: string, child: ReturnType<typeof spawn>) => void; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
