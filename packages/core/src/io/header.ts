/**
 * The safetensors layout, checked as strictly as Python's `safetensors` library checks it:
 * an 8-byte little-endian header length N (at most 100,000,000), N bytes of UTF-8 JSON mapping
 * names to `{ dtype, shape, data_offsets }` plus an optional `__metadata__` of strings, then a data
 * section that the tensors' `[begin, end)` byte ranges cover exactly: no holes, no overlaps, nothing
 * past its end, and each range as long as its shape and dtype need. Also builds headers for writing.
 * @module
 */
import { fmt } from '../util/shape-math.js';
import { CODECS, KNOWN_DTYPES, SUPPORTED, alignmentRank, type Codec } from './dtypes.js';

/** Headers longer than this are rejected, as Python's library does (HeaderTooLarge). */
export const MAX_HEADER_BYTES = 100_000_000;

/** The key under which the header keeps its string-to-string metadata. */
export const METADATA_KEY = '__metadata__';

/** One tensor of a parsed header. `begin` and `end` are relative to the start of the data section. */
export interface HeaderEntry {
  readonly name: string;
  readonly dtype: string;
  readonly codec: Codec;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

/** A checked header: its tensors in data order, its metadata, and where the data section starts. */
export interface ParsedHeader {
  readonly entries: HeaderEntry[];
  readonly metadata: Record<string, string>;
  readonly dataStart: number;
}

/** Makes the errors of one call: `op: label: fault`, with the error that caused it, if any. */
export type Fail = (fault: string, cause?: unknown) => Error;

/** Sets `obj[key] = value` as an own property, so a key such as `__proto__` stays an ordinary key. */
export function put<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A short description of a JSON value for error messages. */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `an array ${clip(JSON.stringify(v))}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object ${clip(JSON.stringify(v))}`;
  return `${typeof v} ${clip(JSON.stringify(v))}`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const quote = (name: string): string => JSON.stringify(name);

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * How deeply a header may nest: serde_json's default recursion limit, which the format's reference
 * parser runs under. A valid header nests 3 levels (object, entry, shape); the bound keeps a hostile
 * header from overflowing the stack of the code that reads or describes it.
 */
export const MAX_HEADER_DEPTH = 128;

/**
 * Checks the nesting depth of header JSON that `JSON.parse` accepted, and refuses an object with the
 * same key twice at any level, as the reference parser does (`JSON.parse` would keep the last one
 * silently). Keys are compared after decoding their escapes, so `"a"` and `"\u0061"` are the same.
 * Iterative, so any depth is safe to scan.
 */
function checkStructure(text: string, fail: Fail): void {
  // One frame per open object (its keys so far, and where it is) or array (keys: null).
  const stack: { keys: Set<string> | null; where: string }[] = [];
  let lastKey = '';
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const top = stack[stack.length - 1];
        if (top.keys!.has(key)) throw fail(`the header has the key ${quote(key)} twice (in ${top.where}); the reference parser refuses duplicate keys`);
        top.keys!.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      if (stack.length >= MAX_HEADER_DEPTH) {
        throw fail(`the header nests deeper than ${MAX_HEADER_DEPTH} levels (at character ${i} of ${text.length}; a valid header nests 3)`);
      }
      const parent = stack[stack.length - 1];
      const where = !parent ? 'the top-level object' : parent.keys ? (stack.length === 1 ? quote(lastKey) : `${parent.where} > ${quote(lastKey)}`) : `${parent.where} > [...]`;
      stack.push({ keys: ch === '{' ? new Set() : null, where });
      expectKey = ch === '{';
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectKey = false;
    } else if (ch === ',') {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
}

/**
 * Parses and checks the header of a whole safetensors file held in `bytes`. Throws `fail(...)` with
 * the first fault found; returns only when every tensor can be decoded from its byte range.
 */
export function parseHeader(bytes: Uint8Array, fail: Fail): ParsedHeader {
  const total = bytes.length;
  if (total < 8) throw fail(`the file is ${total} bytes long: too short for the 8-byte header length that starts every safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw fail(`header length ${n64} is larger than the ${MAX_HEADER_BYTES}-byte limit of the format (a corrupt or non-safetensors file?)`);
  }
  const n = Number(n64);
  if (8 + n > total) {
    throw fail(`header length ${n} runs past the end of the file (${total} bytes: ${total - 8} after the 8-byte length)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw fail(`the ${n}-byte header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`the ${n}-byte header is not valid JSON: ${(e as Error).message}`);
  }
  checkStructure(text, fail);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fail(`the header is not a JSON object: got ${show(json)}`);
  }
  const header = json as Record<string, unknown>;
  const dataStart = 8 + n;
  const dataLength = total - dataStart;

  const metadata: Record<string, string> = {};
  const rawMeta = header[METADATA_KEY];
  if (Object.prototype.hasOwnProperty.call(header, METADATA_KEY) && rawMeta !== null) {
    if (typeof rawMeta !== 'object' || Array.isArray(rawMeta)) {
      throw fail(`"${METADATA_KEY}" must be an object of strings, got ${show(rawMeta)}`);
    }
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') throw fail(`"${METADATA_KEY}" value for ${quote(k)} must be a string, got ${show(v)}`);
      put(metadata, k, v);
    }
  }

  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const where = `tensor ${quote(name)}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(`${where}: entry must be an object { dtype, shape, data_offsets }, got ${show(raw)}`);
    const info = raw as Record<string, unknown>;
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!Object.prototype.hasOwnProperty.call(info, key)) {
        const has = Object.keys(info).map(quote).join(', ');
        throw fail(`${where}: entry is missing "${key}" (it has ${has || 'no fields'})`);
      }
    }
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') throw fail(`${where}: "dtype" must be a string, got ${show(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw fail(`${where}: "shape" must be an array of non-negative integers, got ${show(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      throw fail(`${where}: "data_offsets" must be two non-negative integers [begin, end], got ${show(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw fail(`${where}: data_offsets [${begin},${end}] end before they begin`);
    const codec = Object.prototype.hasOwnProperty.call(CODECS, dtype) ? CODECS[dtype] : undefined;
    if (!codec) {
      const known = (KNOWN_DTYPES as readonly string[]).includes(dtype);
      throw fail(`${where}: ${known ? 'unsupported' : 'unknown'} dtype ${quote(dtype)} (supported: ${SUPPORTED})`);
    }
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const need = count * codec.size;
    if (!Number.isSafeInteger(need) || need !== end - begin) {
      throw fail(`${where}: shape ${fmt(shape as number[])} of ${dtype} needs ${count} × ${codec.size} = ${need} bytes, but data_offsets [${begin},${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype, codec, shape: shape as number[], begin, end });
  }

  // The ranges, in data order, must tile [0, dataLength) exactly (Python: InvalidOffset, MetadataIncompleteBuffer).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: HeaderEntry | undefined;
  for (const e of entries) {
    const range = `data_offsets [${e.begin},${e.end}]`;
    if (e.end > dataLength) {
      throw fail(`tensor ${quote(e.name)}: ${range} run past the end of the data section (${dataLength} bytes)`);
    }
    if (e.begin < cursor) {
      throw fail(`tensors ${quote(prev!.name)} (data_offsets [${prev!.begin},${prev!.end}]) and ${quote(e.name)} (${range}) overlap`);
    }
    if (e.begin > cursor) {
      const after = prev ? `after ${quote(prev.name)}, ` : '';
      throw fail(`bytes ${cursor}..${e.begin} of the data section belong to no tensor (a hole ${after}before ${quote(e.name)} at ${range})`);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLength) {
    throw fail(`bytes ${cursor}..${dataLength} at the end of the data section belong to no tensor (the tensors cover ${cursor} of its ${dataLength} bytes)`);
  }
  return { entries, metadata, dataStart };
}

/** One tensor as it will be written: name, file dtype, shape and byte range. */
export interface PlannedEntry {
  readonly name: string;
  readonly dtype: 'F32' | 'I32';
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

const utf8 = new TextEncoder();

/** Compares strings by their UTF-8 bytes, which is how Rust orders `String`s. */
function compareUtf8(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * Lays tensors out as Python's library does: sorted by descending dtype alignment, then by name
 * (UTF-8 byte order), contiguous from offset 0. Returns the entries in that order and the data size.
 */
export function layout(tensors: { name: string; dtype: 'F32' | 'I32'; shape: readonly number[]; bytes: number }[]): { entries: PlannedEntry[]; dataBytes: number } {
  const keyed = tensors.map((t) => ({ t, key: utf8.encode(t.name) }));
  keyed.sort((a, b) => alignmentRank(b.t.dtype) - alignmentRank(a.t.dtype) || compareUtf8(a.key, b.key));
  let offset = 0;
  const entries = keyed.map(({ t }) => {
    const e = { name: t.name, dtype: t.dtype, shape: t.shape, begin: offset, end: offset + t.bytes };
    offset += t.bytes;
    return e;
  });
  return { entries, dataBytes: offset };
}

/**
 * The header bytes to write, length prefix included: compact JSON as serde_json writes it (metadata
 * first, then tensors in layout order, fields dtype, shape, data_offsets), padded with spaces so the
 * data section starts on an 8-byte boundary.
 */
export function encodeHeader(entries: readonly PlannedEntry[], metadata: Record<string, string> | undefined): Uint8Array {
  const parts: string[] = [];
  if (metadata) {
    const pairs = Object.keys(metadata).map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${pairs.join(',')}}`);
  }
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]}`);
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return out;
}
