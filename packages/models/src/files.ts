/**
 * Small file helpers of the checkpoint readers and writers (Node only): existence, JSON reading
 * with Errors that name the file, and atomic text writes.
 * @module
 */
import { open, readFile, rename, rm, stat } from 'node:fs/promises';

/** Whether `file` is a regular file. */
export async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The parsed JSON of `file`; a missing file or bad JSON is an Error naming `op` and the file. */
export async function readJson(op: string, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(`${op}: ${file}: ${code === 'ENOENT' ? 'not found' : `cannot be read (${(e as Error).message})`}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${op}: ${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** Writes `text` to `file` atomically: a temporary file beside it, fsync'd, then renamed over it. */
export async function writeTextAtomic(op: string, file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const h = await open(tmp, 'wx');
    try {
      await h.writeFile(text, 'utf8');
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new Error(`${op}: cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}
