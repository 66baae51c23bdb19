/**
 * The run folder of `sorsa finetune --out runs/NAME`: `run.json` (arguments and versions),
 * `metrics.jsonl`, `initial.safetensors` (the adapters at initialization, which exports and merges
 * need), `checkpoints/step-NNNNNNN.safetensors`, `adapter/` (PEFT files), `report.json`, `report.html`.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError } from './errors.js';

/** The paths of a run folder's files. */
export function runFiles(dir: string): { run: string; metrics: string; initial: string; checkpoints: string; adapter: string; reportJson: string; reportHtml: string } {
  return {
    run: join(dir, 'run.json'),
    metrics: join(dir, 'metrics.jsonl'),
    initial: join(dir, 'initial.safetensors'),
    checkpoints: join(dir, 'checkpoints'),
    adapter: join(dir, 'adapter'),
    reportJson: join(dir, 'report.json'),
    reportHtml: join(dir, 'report.html'),
  };
}

/** The checkpoint file of `step`: names sort in step order. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}.safetensors`;
}

/** The run's checkpoints, oldest first: `{ step, file }`. */
export async function listCheckpoints(dir: string): Promise<{ step: number; file: string }[]> {
  const cdir = runFiles(dir).checkpoints;
  if (!existsSync(cdir)) return [];
  return (await readdir(cdir))
    .map((f) => /^step-(\d{7,})\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), file: join(cdir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Writes `text` to `file` atomically: a temporary file in the same folder, fsync'd, renamed over it. */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  const handle = await open(tmp, 'wx');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Reads and parses a JSON file, or a UsageError naming the flag and file. */
export async function readJson(file: string, flag: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${flag}: ${file} must hold a JSON object`);
  return v as Record<string, unknown>;
}
