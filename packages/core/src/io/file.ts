/**
 * File access for the io functions, through Node's `fs`, imported only when a path is used, so the
 * byte-level functions keep working in browsers. Writes are atomic: a temporary file in the target's
 * directory, fsync, rename over the target; on any failure the temporary file is removed and the
 * target is left as it was. A process killed mid-write cannot remove its temporary file, so each
 * write first removes those of earlier writers of the same target that are no longer running.
 * @module
 */
import type { Fail } from './header.js';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');
type Os = typeof import('node:os');

async function node(fail: Fail): Promise<{ fs: Fs; path: Path; os: Os }> {
  try {
    const [fs, path, os] = await Promise.all([import('node:fs/promises'), import('node:path'), import('node:os')]);
    return { fs, path, os };
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

/**
 * Temporary files this process is writing now. Their names carry this process's id, which a later
 * process can reuse (in a container, every run may be pid 1): a file with our pid that is not in
 * this set was left by a dead process, one in it is a write in flight.
 */
const writing = new Set<string>();

/** This machine's name as it appears in temporary file names: letters, digits and '-' only. */
function hostTag(os: Os): string {
  let name = '';
  try {
    name = os.hostname();
  } catch {
    /* no host name: the tag below */
  }
  return name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'host';
}

const escapeRegExp = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

/** The temporary file name for `base`: `.<base>.<host>.<pid>.<uuid>.tmp`, hidden, beside the target. */
function tempName(base: string, host: string): string {
  return `.${base}.${host}.${process.pid}.${globalThis.crypto.randomUUID()}.tmp`;
}

/** Whether a process with this id runs on this machine (EPERM: it runs, as another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that writers killed mid-write left for `base` in `dir`: only names of
 * exactly `tempName`'s form for this target and this host, only regular files, only when their
 * writer's pid no longer runs (or is ours, and the write is not in flight). Files of other targets,
 * of other machines (a shared directory), of live writers, and everything else are left alone.
 * Best effort: a failure here never fails the save.
 */
async function removeStale(fs: Fs, path: Path, dir: string, base: string, host: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  const ours = new RegExp(`^\\.${escapeRegExp(base)}\\.${escapeRegExp(host)}\\.([1-9][0-9]{0,9})\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.tmp$`);
  for (const name of names) {
    const m = ours.exec(name);
    if (!m) continue;
    const full = path.join(dir, name);
    const pid = Number(m[1]);
    if (writing.has(full) || (pid !== process.pid && running(pid))) continue;
    try {
      if ((await fs.lstat(full)).isFile()) await fs.rm(full);
    } catch {
      /* already gone, or not ours to remove: leave it */
    }
  }
}

/** Receives the file's contents chunk by chunk. */
export type Sink = (chunk: Uint8Array) => Promise<void>;

/**
 * Writes `file` atomically with the chunks that `produce` passes to its sink: into a uniquely
 * named temporary file beside it, fsync'd, then renamed over `file` (keeping an existing file's
 * permission bits). If anything fails, including `produce` itself, the temporary file is removed,
 * `file` is untouched, and the error says so. Temporary files of `file` left by writers that were
 * killed (see `removeStale`) are removed first.
 */
export async function writeAtomic(file: string, fail: Fail, produce: (sink: Sink) => Promise<void>): Promise<void> {
  const { fs, path, os } = await node(fail);
  const dir = path.dirname(file);
  const base = path.basename(file);
  const host = hostTag(os);
  await removeStale(fs, path, dir, base, host);
  const tmp = path.join(dir, tempName(base, host));
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
  writing.add(tmp);
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
  } finally {
    writing.delete(tmp);
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
