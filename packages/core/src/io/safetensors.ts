/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors), checked as
 * strictly as Python's `safetensors` library and laid out as it lays files out.
 * @module
 */
import type { Storage } from '../backend/storage.js';
import { elementsLimitReason, maxElements } from '../backend/limits.js';
import { engine } from '../backend/registry.js';
import { tensor } from '../tensor/from-data.js';
import { Tensor, storageOf, type DType } from '../tensor/tensor.js';
import { fmt } from '../util/shape-math.js';
import { HOST_LE, INT_LIMIT, WRITE_DTYPE } from './dtypes.js';
import { readBytes, writeAtomic } from './file.js';
import { MAX_HEADER_BYTES, METADATA_KEY, encodeHeader, layout, parseHeader, put, type Fail, type PlannedEntry } from './header.js';

/** Where to load a safetensors file from: a file path (Node only), or the file's bytes. */
export type SafetensorsSource = string | Uint8Array | ArrayBuffer;

/** A loaded safetensors file: its tensors and the string metadata of its header. */
export interface SafetensorsContents {
  /** The tensors by name, in the order their data lies in the file. */
  tensors: Record<string, Tensor>;
  /** The header's `__metadata__` entries; `{}` when the file has none. */
  metadata: Record<string, string>;
}

function failer(op: string, label?: string): Fail {
  const prefix = label === undefined ? `${op}: ` : `${op}: ${label}: `;
  return (fault, cause) => new Error(prefix + fault, cause === undefined ? undefined : { cause });
}

const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Matches a UTF-16 surrogate that is not half of a pair: such a string has no UTF-8 form. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Loads every tensor of a safetensors file. F32, F16, BF16 and F64 become float32 tensors (F16 and
 * BF16 exactly, subnormals, infinities and NaN included; F64 rounded to the nearest float32). I64,
 * I32, I16, I8, U64, U32, U16, U8 and BOOL become int32 tensors; an integer outside ±2^24, the range
 * int32 tensors hold exactly (kernels compute in float32), is an error naming the tensor, the index
 * and the value. Other dtypes (F8_*, C64, ...) are an error.
 *
 * The whole file is checked before any tensor is made (header, dtypes, shapes, byte ranges, values),
 * so a corrupt file raises an Error naming the file (or `<bytes>`) and the fault, and never yields
 * some of its tensors. Use {@link loadSafetensorsWithMetadata} for the header's `__metadata__`.
 *
 * @param source - A file path (read with Node's fs), or the file's bytes (works in browsers too).
 * @returns The tensors by name, in the order their data lies in the file. Dispose them when done.
 *
 * @example
 * ```ts
 * const weights = await loadSafetensors('model.safetensors');
 * weights['lm_head.weight'].shape; // [32000, 4096]
 * const fromFetch = await loadSafetensors(await (await fetch(url)).arrayBuffer());
 * ```
 */
export async function loadSafetensors(source: SafetensorsSource): Promise<Record<string, Tensor>> {
  return (await load('loadSafetensors', source)).tensors;
}

/**
 * Loads a safetensors file like {@link loadSafetensors}, and also returns the string-to-string
 * metadata stored under `__metadata__` in its header (`{}` when there is none).
 *
 * @param source - A file path (read with Node's fs), or the file's bytes.
 *
 * @example
 * ```ts
 * const { tensors, metadata } = await loadSafetensorsWithMetadata('adapter.safetensors');
 * metadata.format; // 'pt'
 * Object.keys(tensors); // ['blocks.0.attn.wq.U', ...]
 * ```
 */
export async function loadSafetensorsWithMetadata(source: SafetensorsSource): Promise<SafetensorsContents> {
  return load('loadSafetensorsWithMetadata', source);
}

async function load(op: string, source: SafetensorsSource): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  let fail: Fail;
  if (typeof source === 'string') {
    fail = failer(op, JSON.stringify(source));
    bytes = await readBytes(source, fail);
  } else if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    fail = failer(op, '<bytes>');
    bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  } else {
    throw new Error(`${op}: expected a file path, a Uint8Array or an ArrayBuffer, got ${describe(source)}`);
  }
  const { entries, metadata, dataStart } = parseHeader(bytes, fail);
  // A tensor the backend cannot address is refused before anything is decoded.
  const max = maxElements(engine().name);
  for (const e of entries) {
    const n = (e.end - e.begin) / e.codec.size;
    if (n > max) throw fail(`tensor ${JSON.stringify(e.name)} (shape ${fmt(e.shape)}) has ${n} elements, more than the ${max} a tensor may hold on the ${engine().name} backend (${elementsLimitReason(engine().name)})`);
  }
  // Decode everything (range checks included) before making any tensor.
  const decoded = entries.map((e) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin);
    const values = e.codec.decode(view, (e.end - e.begin) / e.codec.size, (index, value) => {
      throw fail(
        `tensor ${JSON.stringify(e.name)} (${e.dtype}, shape ${fmt(e.shape)}): value ${value} at flat index ${index} is outside ` +
          `±2^24 = ±${INT_LIMIT}, the range int32 tensors hold exactly (kernels compute in float32)`,
      );
    });
    return { e, values };
  });
  const tensors: Record<string, Tensor> = {};
  const made: Tensor[] = [];
  try {
    for (const { e, values } of decoded) {
      const t = tensor(values, e.shape, e.codec.into);
      made.push(t);
      put(tensors, e.name, t);
    }
  } catch (err) {
    for (const t of made) t.dispose();
    throw fail(`making the tensors failed: ${reason(err)}`, err);
  }
  return { tensors, metadata };
}

/** Tensors checked and retained for writing, in file order, with the header that describes them. */
interface Prepared {
  header: Uint8Array;
  items: { entry: PlannedEntry; storage: Storage; dtype: DType; size: number }[];
  total: number;
  release(): void;
}

/**
 * Checks a record and its metadata, lays the tensors out and retains their storages, all before the
 * caller's first await: a tensor disposed after the call is still written, one disposed before is an error.
 */
function prepare(fail: Fail, record: Record<string, Tensor>, metadata: Record<string, string> | undefined): Prepared {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw fail(`expected an object mapping names to tensors, got ${describe(record)}`);
  }
  const specs: { name: string; dtype: 'F32' | 'I32'; shape: readonly number[]; bytes: number }[] = [];
  const byName = new Map<string, Tensor>();
  for (const [name, t] of Object.entries(record)) {
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) throw fail(`${where}: the name "${METADATA_KEY}" is reserved for the header's metadata`);
    if (LONE_SURROGATE.test(name)) throw fail(`${where}: the name has an unpaired UTF-16 surrogate, which UTF-8 cannot encode`);
    if (!(t instanceof Tensor)) throw fail(`${where} is not a Tensor: got ${describe(t)}`);
    if (t.isDisposed) throw fail(`${where} (shape ${fmt(t.shape)}, ${t.dtype}) was disposed`);
    specs.push({ name, dtype: WRITE_DTYPE[t.dtype], shape: t.shape, bytes: t.size * 4 });
    byName.set(name, t);
  }
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw fail(`metadata must be an object of strings, got ${describe(metadata)}`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw fail(`metadata value for ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
      if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
        throw fail(`metadata entry ${JSON.stringify(k)} has an unpaired UTF-16 surrogate, which UTF-8 cannot encode`);
      }
    }
  }
  const { entries, dataBytes } = layout(specs);
  const header = encodeHeader(entries, metadata);
  if (header.length - 8 > MAX_HEADER_BYTES) {
    throw fail(`the header would be ${header.length - 8} bytes, over the format's ${MAX_HEADER_BYTES}-byte limit`);
  }
  const items = entries.map((entry) => {
    const t = byName.get(entry.name)!;
    return { entry, storage: storageOf(t).retain(), dtype: t.dtype, size: t.size };
  });
  let released = false;
  return {
    header,
    items,
    total: header.length + dataBytes,
    release() {
      if (released) return;
      released = true;
      for (const it of items) it.storage.release();
    },
  };
}

/** Reads one retained tensor back and returns its little-endian bytes as written to the file. */
async function bytesOf(fail: Fail, item: Prepared['items'][number]): Promise<Uint8Array> {
  let values: Float32Array;
  try {
    values = await item.storage.engine.read(await item.storage.get());
  } catch (e) {
    throw fail(`reading tensor ${JSON.stringify(item.entry.name)} failed: ${reason(e)}`, e);
  }
  if (values.length !== item.size) {
    throw fail(`internal: tensor ${JSON.stringify(item.entry.name)} read back ${values.length} values for ${item.size} elements`);
  }
  const typed = item.dtype === 'int32' ? Int32Array.from(values) : values;
  if (HOST_LE) return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  const out = new Uint8Array(typed.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < typed.length; i++) {
    if (typed instanceof Int32Array) view.setInt32(4 * i, typed[i], true);
    else view.setFloat32(4 * i, typed[i], true);
  }
  return out;
}

/**
 * The safetensors bytes of a record of tensors: float32 tensors as F32, int32 tensors as I32, laid
 * out exactly as Python's `safetensors` lays them out (sorted by dtype alignment, then by name;
 * header padded with spaces to an 8-byte boundary), with `metadata` stored under `__metadata__`
 * (omitted when not given). Tensors are read back one at a time; they may be disposed right after
 * the call.
 *
 * @param record - Tensors by name. The name `__metadata__` is reserved.
 * @param metadata - Optional string-to-string metadata, written in its key order.
 *
 * @example
 * ```ts
 * const bytes = await serializeSafetensors({ w: tensor([[1, 2], [3, 4]]) }, { format: 'pt' });
 * const back = await loadSafetensors(bytes); // { w: Tensor([2,2], float32) }
 * ```
 */
export async function serializeSafetensors(record: Record<string, Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  const fail = failer('serializeSafetensors');
  const prepared = prepare(fail, record, metadata);
  try {
    const out = new Uint8Array(prepared.total);
    out.set(prepared.header);
    for (const item of prepared.items) out.set(await bytesOf(fail, item), prepared.header.length + item.entry.begin);
    return out;
  } finally {
    prepared.release();
  }
}

/**
 * Saves a record of tensors as a safetensors file (the layout of {@link serializeSafetensors}),
 * atomically: the bytes go to a uniquely named temporary file in the same directory, are fsync'd,
 * and the temporary file is renamed over `path`. On any failure the temporary file is removed and an
 * existing file at `path` is left byte-for-byte as it was. Temporary files of `path` that a process
 * killed mid-save left behind (hidden `.<name>.<host>.<pid>.<uuid>.tmp` files whose writer no longer
 * runs) are removed first; no other file is touched. A replaced file keeps its permission bits;
 * a symbolic link at `path` is replaced by a regular file. Tensors are read back and written one at
 * a time; they may be disposed right after the call. Node only (it uses `fs`).
 *
 * @param record - Tensors by name. The name `__metadata__` is reserved.
 * @param path - The file to write (replaced if it exists).
 * @param metadata - Optional string-to-string metadata, stored under `__metadata__`.
 *
 * @example
 * ```ts
 * await saveSafetensors({ 'layer.w': w, 'layer.b': b }, 'checkpoint.safetensors', { step: '1000' });
 * ```
 */
export async function saveSafetensors(record: Record<string, Tensor>, path: string, metadata?: Record<string, string>): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new Error(`saveSafetensors: expected a file path (a non-empty string), got ${describe(path)}`);
  const fail = failer('saveSafetensors', JSON.stringify(path));
  const prepared = prepare(fail, record, metadata);
  try {
    await writeAtomic(path, fail, async (sink) => {
      await sink(prepared.header);
      for (const item of prepared.items) await sink(await bytesOf((fault, cause) => new Error(fault, { cause }), item));
    });
  } finally {
    prepared.release();
  }
}
