/**
 * File access for the io functions, through Node's `fs`, imported only when a path is used, so the
 * byte-level functions keep working in browsers. Writes are atomic: a temporary file in the target's
 * directory, fsync, rename over the target; on any failure the temporary file is removed and the
 * target is left as it was.
 * @module
 */
import type { Fail } from './header.js';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');

async function node(fail: Fail): Promise<{ fs: Fs; path: Path }> {
  try {
    const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
    return { fs, path };
  } catch (e) {
    throw fail(`file paths need Node's fs module, which is not available here (${(e as Error).message}); pass the file's bytes instead`, e);
  }
}

const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Reads a whole file. */
export async function readBytes(file: string, fail: Fail): Promise<Uint8Array> {
  const { fs } = await node(fail);
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw fail(`cannot read the file: ${reason(e)}`, e);
  }
}

/** Receives the file's contents chunk by chunk. */
export type Sink = (chunk: Uint8Array) => Promise<void>;

/**
 * Writes `file` atomically with the chunks that `produce` passes to its sink: into a uniquely
 * named temporary file beside it, fsync'd, then renamed over `file` (keeping an existing file's
 * permission bits). If anything fails, including `produce` itself, the temporary file is removed,
 * `file` is untouched, and the error says so.
 */
export async function writeAtomic(file: string, fail: Fail, produce: (sink: Sink) => Promise<void>): Promise<void> {
  const { fs, path } = await node(fail);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${globalThis.crypto.randomUUID()}.tmp`);
  let mode: number | undefined;
  try {
    const st = await fs.stat(file);
    if (st.isFile()) mode = st.mode & 0o7777;
  } catch {
    /* no file there yet: the temporary file gets the default mode */
  }
  let handle: Awaited<ReturnType<Fs['open']>> | undefined;
  try {
    handle = await fs.open(tmp, 'wx');
  } catch (e) {
    throw fail(`cannot create a temporary file in ${JSON.stringify(dir)}: ${reason(e)}`, e);
  }
  let stage = 'writing';
  try {
    const h = handle;
    if (mode !== undefined) await h.chmod(mode);
    await produce(async (chunk) => {
      for (let at = 0; at < chunk.length; ) {
        const { bytesWritten } = await h.write(chunk, at, chunk.length - at);
        at += bytesWritten;
      }
    });
    stage = 'flushing to disk';
    await h.sync();
    await h.close();
    handle = undefined;
    stage = 'replacing the file';
    await fs.rename(tmp, file);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw fail(`${stage} failed: ${reason(e)}; the file was left as it was`, e);
  }
  // Make the rename itself durable where directories can be fsync'd (not on Windows); best effort.
  try {
    const d = await fs.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* the data is written and renamed; only the directory entry's durability is unconfirmed */
  }
}
