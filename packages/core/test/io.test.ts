/**
 * safetensors I/O. Expected files are built by hand in this file from the format description
 * (8-byte little-endian header length, UTF-8 JSON header padded with spaces to 8 bytes, data
 * section), never with the library's own writer; F16/BF16 references are computed from the bit
 * fields with plain arithmetic. Corrupt inputs are the faults Python's `safetensors` rejects.
 *
 * SORSA_SAFETENSORS_PYTHON=/path/to/python (an interpreter with safetensors and numpy installed)
 * additionally checks files against Python's library itself.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as c from '@sorsajs/core';
import type { Tensor } from '@sorsajs/core';
import { loadSafetensors, loadSafetensorsWithMetadata, saveSafetensors, serializeSafetensors } from '../src/io/index.js';
import { forEachBackend } from './backends.js';

// ---------------------------------------------------------------------------------------------
// Hand-built files

type Kind = 'f32' | 'f64' | 'i32' | 'u32' | 'i16' | 'u16' | 'f16bits' | 'i8' | 'u8';

/** Little-endian bytes of `values` as `kind` (f16bits: raw 16-bit patterns). */
function le(kind: Kind, values: readonly number[]): number[] {
  const size = { f32: 4, f64: 8, i32: 4, u32: 4, i16: 2, u16: 2, f16bits: 2, i8: 1, u8: 1 }[kind];
  const v = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((x, i) => {
    if (kind === 'f32') v.setFloat32(i * 4, x, true);
    else if (kind === 'f64') v.setFloat64(i * 8, x, true);
    else if (kind === 'i32') v.setInt32(i * 4, x, true);
    else if (kind === 'u32') v.setUint32(i * 4, x, true);
    else if (kind === 'i16') v.setInt16(i * 2, x, true);
    else if (kind === 'u16' || kind === 'f16bits') v.setUint16(i * 2, x, true);
    else if (kind === 'i8') v.setInt8(i, x);
    else v.setUint8(i, x);
  });
  return Array.from(new Uint8Array(v.buffer));
}

/** Little-endian bytes of 64-bit integers. */
function le64(values: readonly bigint[], signed = true): number[] {
  const v = new DataView(new ArrayBuffer(values.length * 8));
  values.forEach((x, i) => (signed ? v.setBigInt64(i * 8, x, true) : v.setBigUint64(i * 8, x, true)));
  return Array.from(new Uint8Array(v.buffer));
}

/**
 * A file from the spec: u64 LE header length N, N bytes of header (the JSON text, padded with spaces
 * to a multiple of 8 unless `pad` is false), then the data bytes. `length` overrides the stored N.
 */
function build(json: string, data: readonly number[] = [], opts: { pad?: boolean; length?: bigint } = {}): Uint8Array {
  const text = new TextEncoder().encode(json);
  const n = opts.pad === false ? text.length : Math.ceil(text.length / 8) * 8;
  const out = new Uint8Array(8 + n + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.length ?? BigInt(n), true);
  out.set(text, 8);
  out.fill(0x20, 8 + text.length, 8 + n);
  out.set(data, 8 + n);
  return out;
}

/** The JSON of one tensor entry, fields in the order the format's writer uses. */
const entry = (dtype: string, shape: number[], begin: number, end: number): string =>
  `{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${begin},${end}]}`;

// ---------------------------------------------------------------------------------------------
// A writer in another process, to be killed mid-save

let writerScript: string | undefined;

/**
 * Starts a Node process that runs src/io/file.ts's atomic write (transpiled on the fly; it has no
 * runtime imports) for each target, writes a few bytes into each temporary file, and then waits
 * forever. Resolves once every temporary file has bytes in it. `stop()` kills it with SIGKILL, so
 * none of its cleanup runs, as when a machine or a job scheduler kills a training run.
 */
async function startWriter(targets: string[]): Promise<{ pid: number; stop: () => Promise<void> }> {
  if (!writerScript) {
    const ts = (await import('typescript')).default;
    const source = await readFile(new URL('../src/io/file.ts', import.meta.url), 'utf8');
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const d = await mkdtemp(join(tmpdir(), 'sorsa-writer-'));
    await writeFile(join(d, 'file.mjs'), js);
    writerScript = join(d, 'writer.mjs');
    await writeFile(
      writerScript,
      `import { writeAtomic } from './file.mjs';
const targets = JSON.parse(process.argv[2]);
setInterval(() => undefined, 1 << 30);
let ready = 0;
for (const t of targets) {
  writeAtomic(t, (m) => new Error(m), async (sink) => {
    await sink(new Uint8Array([1, 2, 3]));
    if (++ready === targets.length) process.stdout.write('ready\\n');
    await new Promise(() => undefined);
  }).catch((e) => { process.stderr.write(String(e)); process.exit(3); });
}
`,
    );
  }
  const child = spawn(process.execPath, [writerScript, JSON.stringify(targets)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer process not ready after 30 s: ${err}`)), 30_000);
    child.stdout.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`writer process exited (${code}) before it was ready: ${err}`));
    });
  });
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Independent references for the 16-bit float formats

/** IEEE binary16 from its bit fields: (-1)^s · 2^(e-15) · (1 + m/1024), subnormals 2^-14 · m/1024. */
function f16Ref(h: number): number {
  const s = h >>> 15;
  const e = (h >>> 10) & 31;
  const m = h & 1023;
  const sign = s ? -1 : 1;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * Math.pow(2, -14) * (m / 1024);
  return sign * Math.pow(2, e - 15) * (1 + m / 1024);
}

/** bfloat16 from its bit fields: (-1)^s · 2^(e-127) · (1 + m/128), subnormals 2^-126 · m/128. */
function bf16Ref(h: number): number {
  const s = h >>> 15;
  const e = (h >>> 7) & 255;
  const m = h & 127;
  const sign = s ? -1 : 1;
  if (e === 255) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * Math.pow(2, -126) * (m / 128);
  return sign * Math.pow(2, e - 127) * (1 + m / 128);
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Same numbers, telling -0 from 0 and matching NaN with NaN. */
function expectSame(got: readonly number[], want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  const bad = got.findIndex((g, i) => !Object.is(g, want[i]));
  expect(bad, bad < 0 ? '' : `index ${bad}: got ${got[bad]}, want ${want[bad]}`).toBe(-1);
}

function disposeAll(rec: Record<string, Tensor>): void {
  for (const t of Object.values(rec)) t.dispose();
}

/** Runs `load` expecting an Error whose message matches every pattern. */
async function expectLoadError(source: Uint8Array | string, ...patterns: RegExp[]): Promise<string> {
  const before = c.memory();
  let message = '';
  try {
    const got = await loadSafetensors(source);
    disposeAll(got);
    throw new Error(`expected loadSafetensors to fail, it returned ${Object.keys(got).length} tensors`);
  } catch (e) {
    message = (e as Error).message;
  }
  for (const p of patterns) expect(message).toMatch(p);
  expect(c.memory()).toEqual(before); // nothing made, nothing leaked
  return message;
}

const BYTES = /^loadSafetensors: <bytes>: /;
const PY = process.env.SORSA_SAFETENSORS_PYTHON;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sorsa-io-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
let fileNo = 0;
/** A fresh subdirectory, so listings show exactly what a test left. */
async function freshDir(): Promise<string> {
  const d = join(dir, `case-${++fileNo}`);
  await mkdir(d);
  return d;
}

forEachBackend('safetensors', () => {
  describe('round trips', () => {
    it('float32 and int32 tensors, scalars, empty shapes and metadata survive save then load exactly', async () => {
      const d = await freshDir();
      const file = join(d, 'model.safetensors');
      const specials = [NaN, Infinity, -Infinity, -0, 2 ** -149, 3.4028234663852886e38, 0.1];
      const rec: Record<string, Tensor> = {
        'blocks.0.w': c.tensor([[1, 2, 3], [4, 5, 6]]),
        'blocks.0.b': c.tensor([0.5, -0.25]),
        specials: c.tensor(specials),
        ids: c.tensor([0, -1, 16777216, -16777216, 12345], undefined, 'int32'),
        step: c.tensor(7, [], 'int32'),
        lr: c.tensor(0.003),
        empty: c.tensor([], [0]),
        emptyInts: c.tensor([], [2, 0, 3], 'int32'),
        ['__proto__']: c.tensor([9]),
      };
      const meta = { format: 'pt', step: '1000', 'ünïcødé 😀': 'line\nbreak "quoted"' };
      await saveSafetensors(rec, file, meta);
      const { tensors, metadata } = await loadSafetensorsWithMetadata(file);
      expect(metadata).toEqual(meta);
      expect(Object.keys(tensors).sort()).toEqual(Object.keys(rec).sort());
      expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
      for (const [name, t] of Object.entries(rec)) {
        const got = tensors[name];
        expect(got.shape, name).toEqual(t.shape);
        expect(got.dtype, name).toBe(t.dtype);
        expectSame(await values(got), await values(t));
      }
      expectSame(await values(tensors.specials), Array.from(Float32Array.from(specials)));
      disposeAll(tensors);
      disposeAll(rec);
    });

    it('serializeSafetensors bytes load back, also from an ArrayBuffer and from an unaligned subarray', async () => {
      const rec = { a: c.tensor([1.5, -2, 3.25]), b: c.tensor([[4, 5]], undefined, 'int32') };
      const bytes = await serializeSafetensors(rec);
      const shifted = new Uint8Array(bytes.length + 3);
      shifted.set(bytes, 3);
      const sources = [bytes, bytes.slice().buffer, shifted.subarray(3)];
      for (const src of sources) {
        const got = await loadSafetensors(src);
        expect(Object.keys(got)).toEqual(['a', 'b']);
        expectSame(await values(got.a), [1.5, -2, 3.25]);
        expect(got.b.dtype).toBe('int32');
        expect(got.b.shape).toEqual([1, 2]);
        expectSame(await values(got.b), [4, 5]);
        disposeAll(got);
      }
      disposeAll(rec);
    });

    it('an empty record with no metadata loads as nothing; metadata defaults to {}', async () => {
      const got = await loadSafetensorsWithMetadata(await serializeSafetensors({}));
      expect(got).toEqual({ tensors: {}, metadata: {} });
    });
  });

  describe('bytes written match the spec', () => {
    it('header JSON, F32 before I32, names sorted, space padding to 8 bytes and contiguous data, in file and in memory', async () => {
      const d = await freshDir();
      const file = join(d, 'layout.safetensors');
      const rec = {
        b: c.tensor([1.5, -2]),
        a: c.tensor([1, 2, -3], undefined, 'int32'),
        c: c.tensor(7),
      };
      await saveSafetensors(rec, file, { format: 'pt' });
      const json =
        `{"__metadata__":{"format":"pt"},"b":${entry('F32', [2], 0, 8)},"c":${entry('F32', [], 8, 12)},` +
        `"a":${entry('I32', [3], 12, 24)}}`;
      const expected = build(json, [...le('f32', [1.5, -2]), ...le('f32', [7]), ...le('i32', [1, 2, -3])]);
      expect(Array.from(await readFile(file))).toEqual(Array.from(expected));
      expect(Array.from(await serializeSafetensors(rec, { format: 'pt' }))).toEqual(Array.from(expected));
      disposeAll(rec);
    });

    it('the upstream serializer test vectors: one F32 tensor, forced alignment, empty, empty with metadata', async () => {
      // From huggingface/safetensors' own tests (tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty).
      const data = c.tensor([0, 1, 2, 3, 4, 5], [1, 2, 3]);
      const f32 = [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64];
      const one = await serializeSafetensors({ 'attn.0': data });
      expect(Array.from(one)).toEqual([64, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(`{"attn.0":${entry('F32', [1, 2, 3], 0, 24)}}`), ...f32]);
      const data4 = c.reshape(data, [1, 1, 2, 3]);
      const aligned = await serializeSafetensors({ attn0: data4 });
      const text = new TextEncoder().encode(`{"attn0":${entry('F32', [1, 1, 2, 3], 0, 24)}}`);
      expect(text.length).toBe(65);
      expect(Array.from(aligned)).toEqual([72, 0, 0, 0, 0, 0, 0, 0, ...text, 32, 32, 32, 32, 32, 32, 32, ...f32]);
      expect(Array.from(await serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
      expect(Array.from(await serializeSafetensors({}, { framework: 'pt' }))).toEqual([
        40, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode('{"__metadata__":{"framework":"pt"}}'), 32, 32, 32, 32, 32,
      ]);
      data4.dispose();
      data.dispose();
    });

    it('names sort by UTF-8 bytes as Rust orders strings, and integer-like names keep that order in the JSON', async () => {
      // UTF-16 order would put U+1D4B3 (a surrogate pair, D835 ...) before U+FF01; UTF-8 order puts F0 ... after EF ....
      const names = ['𝒳', '！', 'é', 'z', '9', '10', 'A'];
      const rec = Object.fromEntries(names.map((n, i) => [n, c.tensor([i])]));
      const bytes = await serializeSafetensors(rec);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      const order = ['10', '9', 'A', 'z', 'é', '！', '𝒳'];
      const json = `{${order.map((k, i) => `${JSON.stringify(k)}:${entry('F32', [1], 4 * i, 4 * i + 4)}`).join(',')}}`;
      expect(header.trimEnd()).toBe(json);
      expect(Array.from(bytes.subarray(8 + n))).toEqual(le('f32', order.map((k) => names.indexOf(k))));
      disposeAll(rec);
    });

    it('names with quotes, backslashes and control characters are escaped as JSON', async () => {
      const rec = { 'a"b\\c\n\u0001': c.tensor([1]) };
      const bytes = await serializeSafetensors(rec);
      expect(Array.from(bytes)).toEqual(Array.from(build(`{"a\\"b\\\\c\\n\\u0001":${entry('F32', [1], 0, 4)}}`, le('f32', [1]))));
      const back = await loadSafetensors(bytes);
      expect(Object.keys(back)).toEqual(Object.keys(rec));
      disposeAll(back);
      disposeAll(rec);
    });
  });

  describe('decoding other dtypes', () => {
    it('F16 hand-computed values: 1, -2, max, smallest subnormal, ±inf, nan, -0, 1/3', async () => {
      const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555, 0x03ff, 0x0400];
      const want = [1, -2, 65504, 2 ** -24, Infinity, -Infinity, NaN, -0, 0.333251953125, 1023 * 2 ** -24, 2 ** -14];
      const got = await loadSafetensors(build(`{"h":${entry('F16', [11], 0, 22)}}`, le('f16bits', bits)));
      expect(got.h.dtype).toBe('float32');
      expectSame(await values(got.h), want);
      disposeAll(got);
    });

    it('F16: all 65536 bit patterns decode exactly', async () => {
      const bits = Array.from({ length: 65536 }, (_, i) => i);
      const got = await loadSafetensors(build(`{"all":${entry('F16', [256, 256], 0, 131072)}}`, le('f16bits', bits)));
      expect(got.all.shape).toEqual([256, 256]);
      expectSame(await values(got.all), bits.map(f16Ref));
      disposeAll(got);
    });

    it('BF16 hand-computed values: 1, -3, pi, max, smallest subnormal, ±inf, nan, -0; and all 65536 patterns', async () => {
      const bits = [0x3f80, 0xc040, 0x4049, 0x7f7f, 0x0001, 0x7f80, 0xff80, 0x7fc0, 0x8000];
      const want = [1, -3, 3.140625, (2 - 2 ** -7) * 2 ** 127, 2 ** -133, Infinity, -Infinity, NaN, -0];
      const got = await loadSafetensors(build(`{"b":${entry('BF16', [9], 0, 18)}}`, le('f16bits', bits)));
      expectSame(await values(got.b), want);
      disposeAll(got);
      const all = Array.from({ length: 65536 }, (_, i) => i);
      const every = await loadSafetensors(build(`{"all":${entry('BF16', [65536], 0, 131072)}}`, le('f16bits', all)));
      expectSame(await values(every.all), all.map(bf16Ref));
      disposeAll(every);
    });

    it('F64 rounds to the nearest float32 (overflow to inf, underflow to ±0)', async () => {
      const v = [0.1, 1e300, -1e-50, 2 ** -149, 1 + 2 ** -24, -2.5];
      const got = await loadSafetensors(build(`{"d":${entry('F64', [2, 3], 0, 48)}}`, le('f64', v)));
      expect(got.d.dtype).toBe('float32');
      expectSame(await values(got.d), [Math.fround(0.1), Infinity, -0, 2 ** -149, 1, -2.5]);
      disposeAll(got);
    });

    it('I8, U8, I16, U16, BOOL, U32, U64 and I32 load as int32 (data laid out in header order here)', async () => {
      const parts: [string, string, number[], number[]][] = [
        ['i8', 'I8', le('i8', [-128, 127, 0]), [-128, 127, 0]],
        ['u8', 'U8', le('u8', [0, 255]), [0, 255]],
        ['i16', 'I16', le('i16', [-32768, 32767]), [-32768, 32767]],
        ['u16', 'U16', le('u16', [65535]), [65535]],
        ['flag', 'BOOL', [1, 0, 1], [1, 0, 1]],
        ['u32', 'U32', le('u32', [16777216, 5]), [16777216, 5]],
        ['u64', 'U64', le64([16777216n, 0n], false), [16777216, 0]],
        ['i32', 'I32', le('i32', [-16777216, 42]), [-16777216, 42]],
      ];
      let at = 0;
      const fields: string[] = [];
      const data: number[] = [];
      for (const [name, dtype, bytes, want] of parts) {
        fields.push(`"${name}":${entry(dtype, [want.length], at, at + bytes.length)}`);
        data.push(...bytes);
        at += bytes.length;
      }
      const got = await loadSafetensors(build(`{${fields.join(',')}}`, data));
      for (const [name, , , want] of parts) {
        expect(got[name].dtype, name).toBe('int32');
        expectSame(await values(got[name]), want);
      }
      disposeAll(got);
    });

    it('I64 within ±2^24 loads as int32 exactly', async () => {
      const v = [0n, -1n, 16777216n, -16777216n, 123456n, -7n];
      const got = await loadSafetensors(build(`{"ids":${entry('I64', [3, 2], 0, 48)}}`, le64(v)));
      expect(got.ids.dtype).toBe('int32');
      expect(got.ids.shape).toEqual([3, 2]);
      expectSame(await values(got.ids), v.map(Number));
      disposeAll(got);
    });

    it('I64, U64 and I32 values outside ±2^24 are errors naming the file, tensor, index and exact value', async () => {
      const ok = le('f32', [1]);
      const cases: [string, number[], string, number][] = [
        ['I64', le64([0n, 16777217n]), '16777217', 1],
        ['I64', le64([-16777217n, 0n]), '-16777217', 0],
        ['I64', le64([0n, 2n ** 40n]), '1099511627776', 1],
        ['I64', le64([-(2n ** 63n), 0n]), '-9223372036854775808', 0],
        ['U64', le64([0n, 2n ** 64n - 1n], false), '18446744073709551615', 1],
        ['I32', le('i32', [0, 2147483647]), '2147483647', 1],
        ['I32', le('i32', [16777217, 0]), '16777217', 0],
        ['I32', le('i32', [0, -16777217]), '-16777217', 1],
        ['U32', le('u32', [0, 16777217]), '16777217', 1],
        ['U32', le('u32', [4294967295, 0]), '4294967295', 0],
      ];
      for (const [dtype, bytes, value, index] of cases) {
        // A valid tensor first: the error must come before any tensor exists (expectLoadError checks memory()).
        const file = build(`{"a":${entry('F32', [1], 0, 4)},"ids":${entry(dtype, [2], 4, 4 + bytes.length)}}`, [...ok, ...bytes]);
        await expectLoadError(file, BYTES, /tensor "ids"/, new RegExp(`value ${value} at flat index ${index}\\b`), /2\^24/);
      }
      const d = await freshDir();
      const path = join(d, 'big-ids.safetensors');
      await writeFile(path, build(`{"ids":${entry('I64', [1], 0, 8)}}`, le64([2n ** 31n])));
      await expectLoadError(path, new RegExp(`^loadSafetensors: "${path.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}": tensor "ids".*2147483648`));
    });

    it('unknown and unsupported dtypes are errors naming the dtype', async () => {
      await expectLoadError(build(`{"q":${entry('Q4', [1], 0, 1)}}`, [0]), BYTES, /tensor "q"/, /unknown dtype "Q4"/, /supported: .*F16.*BF16/);
      await expectLoadError(build(`{"q":${entry('F8_E4M3', [1], 0, 1)}}`, [0]), BYTES, /tensor "q"/, /unsupported dtype "F8_E4M3"/);
      await expectLoadError(build(`{"q":${entry('constructor', [1], 0, 1)}}`, [0]), BYTES, /unknown dtype "constructor"/);
    });
  });

  describe('files that are accepted although unusual', () => {
    it('unpadded header (unaligned data), entries out of offset order, extra fields, null metadata, zero-size tensors sharing an offset', async () => {
      const json =
        `{"z":${entry('F32', [2], 4, 12)},"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"note":"xy"},` +
        `"e1":${entry('F32', [0], 12, 12)},"e2":${entry('I64', [0, 5], 12, 12)},"h":${entry('F16', [1], 12, 14)}}`;
      const bytes = build(json, [...le('f32', [1, 2, 3]), ...le('f16bits', [0x3c00])], { pad: false });
      expect((8 + new TextEncoder().encode(json).length) % 4).not.toBe(0);
      const { tensors, metadata } = await loadSafetensorsWithMetadata(bytes);
      expect(metadata).toEqual({});
      expect(Object.keys(tensors)).toEqual(['a', 'z', 'e1', 'e2', 'h']); // data order
      expectSame(await values(tensors.a), [1]);
      expectSame(await values(tensors.z), [2, 3]);
      expect(tensors.e2.shape).toEqual([0, 5]);
      expect(tensors.e2.dtype).toBe('int32');
      expectSame(await values(tensors.h), [1]);
      disposeAll(tensors);
    });
  });

  describe('corrupt files are errors naming the file and the fault', () => {
    const f1 = entry('F32', [1], 0, 4);
    const one = le('f32', [1]);

    it('shorter than the 8-byte length prefix (bytes and path)', async () => {
      await expectLoadError(new Uint8Array(5), BYTES, /5 bytes long/, /too short/, /8-byte header length/);
      const d = await freshDir();
      const path = join(d, 'empty.safetensors');
      await writeFile(path, new Uint8Array(0));
      await expectLoadError(path, /^loadSafetensors: ".*empty\.safetensors": the file is 0 bytes long: too short/);
    });

    it('a missing file names the path and the system error', async () => {
      await expectLoadError(join(dir, 'nope.safetensors'), /^loadSafetensors: ".*nope\.safetensors": cannot read the file: ENOENT/);
    });

    it('header length past the end of the file, or over the 100 MB limit', async () => {
      await expectLoadError(build('{}', [], { length: 64n }), BYTES, /header length 64 runs past the end of the file \(16 bytes: 8 after/);
      await expectLoadError(build('{}', [], { length: 100_000_001n }), BYTES, /header length 100000001 is larger than the 100000000-byte limit/);
      await expectLoadError(build('{}', [], { length: 2n ** 64n - 1n }), BYTES, /header length 18446744073709551615 is larger/);
    });

    it('a header that is not UTF-8, not JSON, or not a JSON object', async () => {
      const bad = build('{}      ');
      bad[9] = 0xff;
      await expectLoadError(bad, BYTES, /header is not valid UTF-8/);
      await expectLoadError(build(`{"a":${f1}`, one), BYTES, /header is not valid JSON/);
      await expectLoadError(build('[1,2]'), BYTES, /header is not a JSON object: got an array \[1,2\]/);
      await expectLoadError(build('null'), BYTES, /header is not a JSON object: got null/);
      await expectLoadError(build('"x"'), BYTES, /header is not a JSON object: got string "x"/);
    });

    it('entries missing dtype, shape or data_offsets, or with wrong types', async () => {
      await expectLoadError(build('{"a":3}'), BYTES, /tensor "a": entry must be an object/);
      await expectLoadError(build('{"a":{"shape":[1],"data_offsets":[0,4]}}', one), BYTES, /tensor "a": entry is missing "dtype" \(it has "shape", "data_offsets"\)/);
      await expectLoadError(build('{"a":{"dtype":"F32","data_offsets":[0,4]}}', one), BYTES, /tensor "a": entry is missing "shape"/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1]}}', one), BYTES, /tensor "a": entry is missing "data_offsets"/);
      await expectLoadError(build('{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}', one), BYTES, /tensor "a": "dtype" must be a string, got number 3/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', one), BYTES, /tensor "a": "shape" must be an array of non-negative integers, got string "1"/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}}', one), BYTES, /"shape" must be .*got an array \[2,-1\]/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', one), BYTES, /"shape" must be .*\[1\.5\]/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', one), BYTES, /tensor "a": "data_offsets" must be two non-negative integers \[begin, end\], got an array \[0\]/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}', one), BYTES, /"data_offsets" must be .*\[0,"4"\]/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', one), BYTES, /"data_offsets" must be .*\[-4,0\]/);
      await expectLoadError(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', one), BYTES, /tensor "a": data_offsets \[4,0\] end before they begin/);
    });

    it('a shape whose element count times the dtype size differs from the byte count', async () => {
      await expectLoadError(build(`{"w":${entry('F32', [2, 3], 0, 20)}}`, new Array(20).fill(0)), BYTES, /tensor "w": shape \[2,3\] of F32 needs 6 × 4 = 24 bytes, but data_offsets \[0,20\] hold 20/);
      await expectLoadError(build(`{"w":${entry('F16', [], 0, 4)}}`, new Array(4).fill(0)), BYTES, /shape \[\] of F16 needs 1 × 2 = 2 bytes/);
    });

    it('overlapping ranges', async () => {
      const json = `{"a":${entry('F32', [2], 0, 8)},"b":${entry('F32', [2], 4, 12)}}`;
      await expectLoadError(build(json, new Array(12).fill(0)), BYTES, /tensors "a" \(data_offsets \[0,8\]\) and "b" \(data_offsets \[4,12\]\) overlap/);
      const same = `{"a":${entry('F32', [1], 0, 4)},"b":${entry('F32', [1], 0, 4)}}`;
      await expectLoadError(build(same, one), BYTES, /overlap/);
    });

    it('ranges past the end of the data section', async () => {
      await expectLoadError(build(`{"a":${entry('F32', [2], 0, 8)}}`, one), BYTES, /tensor "a": data_offsets \[0,8\] run past the end of the data section \(4 bytes\)/);
    });

    it('holes between, before or after the tensors (the ranges must cover the data section exactly)', async () => {
      const gap = `{"a":${entry('F32', [1], 0, 4)},"b":${entry('F32', [1], 8, 12)}}`;
      await expectLoadError(build(gap, new Array(12).fill(0)), BYTES, /bytes 4\.\.8 of the data section belong to no tensor \(a hole after "a", before "b"/);
      await expectLoadError(build(`{"a":${entry('F32', [1], 4, 8)}}`, new Array(8).fill(0)), BYTES, /bytes 0\.\.4 of the data section belong to no tensor \(a hole before "a"/);
      await expectLoadError(build(`{"a":${f1}}`, new Array(8).fill(0)), BYTES, /bytes 4\.\.8 at the end of the data section belong to no tensor/);
      await expectLoadError(build('{}', [1, 2, 3]), BYTES, /bytes 0\.\.3 at the end of the data section belong to no tensor/);
      const d = await freshDir();
      const path = join(d, 'trailing.safetensors');
      await writeFile(path, build(`{"a":${f1}}`, new Array(8).fill(0)));
      await expectLoadError(path, /^loadSafetensors: ".*trailing\.safetensors": bytes 4\.\.8/);
    });

    it('metadata that is not an object of strings', async () => {
      await expectLoadError(build(`{"__metadata__":{"epoch":3},"a":${f1}}`, one), BYTES, /"__metadata__" value for "epoch" must be a string, got number 3/);
      await expectLoadError(build(`{"__metadata__":["x"],"a":${f1}}`, one), BYTES, /"__metadata__" must be an object of strings, got an array/);
      await expectLoadError(build(`{"__metadata__":"x"}`), BYTES, /"__metadata__" must be an object of strings, got string/);
    });

    it('duplicate keys, at the top level, in an entry or in the metadata, escaped or not, are refused (the last one does not silently win)', async () => {
      const a0 = entry('F32', [1], 0, 4);
      const a1 = entry('F32', [1], 4, 8);
      const two = le('f32', [1, 2]);
      await expectLoadError(build(`{"a":${a0},"a":${a1}}`, two), BYTES, /the header has the key "a" twice \(in the top-level object\)/);
      // The same name spelled with JSON escapes is the same key.
      await expectLoadError(build(`{"a":${a0},"\\u0061":${a1}}`, two), BYTES, /the key "a" twice/);
      await expectLoadError(build(`{"x\\"y":${a0},"x\\u0022y":${a1}}`, two), BYTES, /the key "x\\"y" twice/);
      await expectLoadError(build(`{"\\\\":${a0},"\\u005c":${a1}}`, two), BYTES, /the key "\\\\" twice/);
      await expectLoadError(build(`{"a":{"dtype":"I32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, one), BYTES, /the key "dtype" twice \(in "a"\)/);
      await expectLoadError(build(`{"__metadata__":{"k":"1","k":"2"},"a":${a0}}`, one), BYTES, /the key "k" twice \(in "__metadata__"\)/);
      await expectLoadError(build(`{"__metadata__":{},"a":${a0},"__metadata__":{"k":"v"}}`, one), BYTES, /the key "__metadata__" twice \(in the top-level object\)/);
      const d = await freshDir();
      const path = join(d, 'dup.safetensors');
      await writeFile(path, build(`{"a":${a0},"a":${a0}}`, one));
      await expectLoadError(path, /^loadSafetensors: ".*dup\.safetensors": the header has the key "a" twice/);
      // Not duplicates: keys differing in case or by an escape's meaning, the same field name in two
      // entries, a value equal to a key, and braces or quotes inside strings.
      const json =
        `{"__metadata__":{"a":"a","b":"{\\"a\\":1,\\"a\\":2}","\\\\\\"":"x"},"a":${a0},"A":${a1},` +
        `"a\\u0062":${entry('F32', [0], 8, 8)},"a\\\\u0062":${entry('F32', [0], 8, 8)}}`;
      const { tensors, metadata } = await loadSafetensorsWithMetadata(build(json, two));
      expect(Object.keys(tensors).sort()).toEqual(['A', 'a', 'a\\u0062', 'ab'].sort());
      expect(metadata).toEqual({ a: 'a', b: '{"a":1,"a":2}', '\\"': 'x' });
      disposeAll(tensors);
    });

    it('a header nested 5,000 deep is a clear Error naming the file, not a stack overflow', async () => {
      const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
      await expectLoadError(build(`{"a":{"dtype":"F32","shape":${deep(5000)},"data_offsets":[0,4]}}`, one), BYTES, /the header nests deeper than 128 levels/);
      await expectLoadError(build(`{"__metadata__":${'{"k":'.repeat(5000)}"v"${'}'.repeat(5000)}}`), BYTES, /nests deeper than 128 levels/);
      await expectLoadError(build(deep(100_000)), BYTES, /nests deeper than 128 levels/);
      const d = await freshDir();
      const path = join(d, 'deep.safetensors');
      await writeFile(path, build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${deep(5000)}}}`, one));
      await expectLoadError(path, /^loadSafetensors: ".*deep\.safetensors": the header nests deeper than 128 levels/);
      // Unknown extra fields nested within the limit are still accepted.
      const ok = await loadSafetensors(build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${deep(100)}}}`, one));
      expectSame(await values(ok.a), [1]);
      disposeAll(ok);
    });

    it('tensor names such as __proto__.isAdmin, constructor and toString load as ordinary names without touching Object.prototype', async () => {
      const names = ['__proto__', '__proto__.isAdmin', 'constructor', 'constructor.prototype.polluted', 'toString', 'hasOwnProperty'];
      const json = `{${names.map((n, i) => `"${n}":${entry('F32', [1], 4 * i, 4 * i + 4)}`).join(',')}}`;
      const got = await loadSafetensors(build(json, le('f32', [0, 1, 2, 3, 4, 5])));
      expect(Object.keys(got)).toEqual(names);
      for (const [i, n] of names.entries()) expectSame(await values(Object.getOwnPropertyDescriptor(got, n)!.value as Tensor), [i]);
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
      disposeAll(got);
    });

    it('loadSafetensorsWithMetadata names itself; a bad argument is an error', async () => {
      await expect(loadSafetensorsWithMetadata(new Uint8Array(3))).rejects.toThrow(/^loadSafetensorsWithMetadata: <bytes>: the file is 3 bytes long/);
      await expect(loadSafetensors(42 as never)).rejects.toThrow(/^loadSafetensors: expected a file path, a Uint8Array or an ArrayBuffer, got number 42/);
    });
  });

  describe('saving', () => {
    it('bad records and metadata are errors naming the op, the file and the culprit', async () => {
      const t = c.tensor([1]);
      const p = join(dir, 'never-written.safetensors');
      const q = /"[^"]*never-written\.safetensors"/.source;
      await expect(saveSafetensors({ a: 3 as never }, p)).rejects.toThrow(new RegExp(`^saveSafetensors: ${q}: tensor "a" is not a Tensor: got number 3`));
      await expect(saveSafetensors({ __metadata__: t }, p)).rejects.toThrow(/tensor "__metadata__": the name "__metadata__" is reserved/);
      await expect(saveSafetensors({ ['bad\uD800']: t }, p)).rejects.toThrow(/unpaired UTF-16 surrogate/);
      await expect(saveSafetensors({ a: t }, p, { epoch: 3 as never })).rejects.toThrow(/metadata value for "epoch" must be a string, got number 3/);
      await expect(saveSafetensors({ a: t }, p, [] as never)).rejects.toThrow(/metadata must be an object of strings, got an array/);
      await expect(saveSafetensors([t] as never, p)).rejects.toThrow(/expected an object mapping names to tensors, got an array/);
      await expect(saveSafetensors({ a: t }, '')).rejects.toThrow(/^saveSafetensors: expected a file path/);
      await expect(serializeSafetensors({ a: 'x' as never })).rejects.toThrow(/^serializeSafetensors: tensor "a" is not a Tensor: got string x/);
      await expect(stat(p)).rejects.toThrow(/ENOENT/);
      t.dispose();
    });

    it('a disposed tensor fails the save and leaves the old file byte-identical, with no temporary file', async () => {
      const d = await freshDir();
      const path = join(d, 'ckpt.safetensors');
      const old = build(`{"old":${entry('F32', [1], 0, 4)}}`, le('f32', [42]));
      await writeFile(path, old);
      const good = c.tensor([1, 2]);
      const gone = c.tensor([3]);
      gone.dispose();
      await expect(saveSafetensors({ good, gone }, path)).rejects.toThrow(/^saveSafetensors: ".*ckpt\.safetensors": tensor "gone" \(shape \[1\], float32\) was disposed/);
      expect(Array.from(await readFile(path))).toEqual(Array.from(old));
      expect(await readdir(d)).toEqual(['ckpt.safetensors']);
      good.dispose();
    });

    it('a write that fails midway (disk full after the header) removes the temporary file and keeps the old file', async () => {
      const d = await freshDir();
      const path = join(d, 'ckpt.safetensors');
      const old = build(`{"old":${entry('F32', [1], 0, 4)}}`, le('f32', [42]));
      await writeFile(path, old);
      const probe = await open(join(d, 'probe'), 'w');
      const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
      await probe.close();
      await rm(join(d, 'probe'));
      const real = proto.write;
      let calls = 0;
      let sawTemp: string[] = [];
      const spy = vi.spyOn(proto, 'write').mockImplementation(async function (this: unknown, ...args: unknown[]) {
        if (++calls === 2) {
          sawTemp = await readdir(d);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }
        return real.apply(this, args);
      });
      const rec = { a: c.tensor([1, 2, 3]), b: c.tensor([4], undefined, 'int32') };
      try {
        await expect(saveSafetensors(rec, path)).rejects.toThrow(/^saveSafetensors: ".*ckpt\.safetensors": writing failed: ENOSPC.*left as it was/);
      } finally {
        spy.mockRestore();
      }
      expect(calls).toBe(2);
      expect(sawTemp.length).toBe(2); // the temporary file existed beside the target while writing
      expect(sawTemp.find((f) => f !== 'ckpt.safetensors')).toMatch(/^\.ckpt\.safetensors\..*\.tmp$/);
      expect(Array.from(await readFile(path))).toEqual(Array.from(old));
      expect(await readdir(d)).toEqual(['ckpt.safetensors']);
      disposeAll(rec);
    });

    it('a failing fsync, or a rename onto a directory, also leaves no temporary file behind', async () => {
      const d = await freshDir();
      const path = join(d, 'ckpt.safetensors');
      const old = build(`{"old":${entry('F32', [1], 0, 4)}}`, le('f32', [42]));
      await writeFile(path, old);
      const probe = await open(join(d, 'probe'), 'w');
      const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
      await probe.close();
      await rm(join(d, 'probe'));
      const spy = vi.spyOn(proto, 'sync').mockRejectedValueOnce(new Error('EIO: i/o error, fsync'));
      const rec = { a: c.tensor([1, 2, 3]) };
      try {
        await expect(saveSafetensors(rec, path)).rejects.toThrow(/^saveSafetensors: ".*ckpt\.safetensors": flushing to disk failed: EIO/);
      } finally {
        spy.mockRestore();
      }
      expect(Array.from(await readFile(path))).toEqual(Array.from(old));
      expect(await readdir(d)).toEqual(['ckpt.safetensors']);

      const target = join(d, 'is-a-dir');
      await mkdir(target);
      await writeFile(join(target, 'inside'), 'x');
      await expect(saveSafetensors(rec, target)).rejects.toThrow(/^saveSafetensors: ".*is-a-dir": replacing the file failed: .*left as it was/);
      expect((await readdir(d)).sort()).toEqual(['ckpt.safetensors', 'is-a-dir']);
      expect(await readdir(target)).toEqual(['inside']);
      await expect(saveSafetensors(rec, join(d, 'missing', 'x.safetensors'))).rejects.toThrow(/^saveSafetensors: ".*x\.safetensors": cannot create a temporary file in ".*missing": ENOENT/);
      disposeAll(rec);
    });

    it('temporary files of a writer killed mid-save are removed by the next save of the same file; nothing else is', async () => {
      const d = await freshDir();
      const target = join(d, 'ckpt.safetensors');
      const other = join(d, 'other.safetensors');
      await writeFile(target, 'old');
      const decoys = ['.ckpt.safetensors.tmp', '.ckpt.safetensors.backup.tmp', 'ckpt.safetensors.tmp', '.ckpt.safetensors.12.abc.tmp', '.xckpt.safetensors.1.tmp', 'notes.txt'];
      for (const f of decoys) await writeFile(join(d, f), 'keep');
      const list = async (): Promise<string[]> => (await readdir(d)).sort();
      const added = async (before: string[]): Promise<string[]> => (await list()).filter((f) => !before.includes(f));

      // A process killed (SIGKILL: no cleanup runs) while writing two targets leaves one temporary file per target.
      let before = await list();
      const killed = await startWriter([target, other]);
      await killed.stop();
      const leftovers = await added(before);
      expect(leftovers.length).toBe(2);
      const stale = leftovers.find((f) => f.startsWith('.ckpt.safetensors.'))!;
      const staleOther = leftovers.find((f) => f.startsWith('.other.safetensors.'))!;
      expect(stale).toMatch(new RegExp(`\\.${killed.pid}\\..*\\.tmp$`));
      expect(staleOther).toBeDefined();
      // The same name with this process's pid: a restarted process (say pid 1 in a container) can reuse a dead writer's pid.
      const reused = stale.replace(`.${killed.pid}.`, `.${process.pid}.`);
      await writeFile(join(d, reused), 'partial');
      // A writer that is still running, in another process, keeps its temporary file.
      before = await list();
      const live = await startWriter([target]);
      const [liveTemp] = await added(before);
      expect(liveTemp).toMatch(/^\.ckpt\.safetensors\..*\.tmp$/);

      const rec = { a: c.tensor([1, 2]) };
      try {
        await saveSafetensors(rec, target);
        expect(await list()).toEqual(['ckpt.safetensors', ...decoys, staleOther, liveTemp].sort());
        const back = await loadSafetensors(target);
        expectSame(await values(back.a), [1, 2]);
        disposeAll(back);
        // Saving the other target removes only its own leftover; once the live writer is gone, so is its file.
        await saveSafetensors(rec, other);
        expect(await list()).toEqual(['ckpt.safetensors', 'other.safetensors', ...decoys, liveTemp].sort());
        await live.stop();
        await saveSafetensors(rec, target);
        expect(await list()).toEqual(['ckpt.safetensors', 'other.safetensors', ...decoys].sort());
      } finally {
        await live.stop();
        disposeAll(rec);
      }
    });

    it('two saves of one file in flight in this process do not remove each other\'s temporary file', async () => {
      const d = await freshDir();
      const path = join(d, 'ckpt.safetensors');
      const probe = await open(join(d, 'probe'), 'w');
      const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
      await probe.close();
      await rm(join(d, 'probe'));
      const real = proto.write;
      let release = (): void => undefined;
      const gate = new Promise<void>((r) => (release = r));
      let signal = (): void => undefined;
      const firstWriting = new Promise<void>((r) => (signal = r));
      let calls = 0;
      const spy = vi.spyOn(proto, 'write').mockImplementation(async function (this: unknown, ...args: unknown[]) {
        if (++calls === 1) {
          signal();
          await gate;
        }
        return real.apply(this, args);
      });
      const first = { a: c.tensor([1]) };
      const second = { a: c.tensor([2]) };
      try {
        const saving = saveSafetensors(first, path);
        await firstWriting;
        expect((await readdir(d)).length).toBe(1); // the first save's temporary file
        await saveSafetensors(second, path);
        release();
        await saving;
      } finally {
        release();
        spy.mockRestore();
      }
      expect(await readdir(d)).toEqual(['ckpt.safetensors']);
      const back = await loadSafetensors(path);
      expectSame(await values(back.a), [1]); // the first save renamed last
      disposeAll(back);
      disposeAll(first);
      disposeAll(second);
    });

    it('replacing a file keeps its permission bits', async () => {
      if (process.platform === 'win32') return;
      const d = await freshDir();
      const path = join(d, 'ckpt.safetensors');
      await writeFile(path, 'old');
      await chmod(path, 0o640);
      const rec = { a: c.tensor([1]) };
      await saveSafetensors(rec, path);
      expect((await stat(path)).mode & 0o777).toBe(0o640);
      disposeAll(rec);
    });

    it('tensors disposed right after the call are still written (their storage is held until read)', async () => {
      const d = await freshDir();
      const path = join(d, 'x.safetensors');
      const before = c.memory();
      const rec = { a: c.tensor([1, 2]), b: c.tensor([3], undefined, 'int32') };
      const saving = saveSafetensors(rec, path, { k: 'v' });
      const serializing = serializeSafetensors(rec, { k: 'v' });
      disposeAll(rec);
      await saving;
      const bytes = await serializing;
      const file = await readFile(path);
      expect(Array.from(file)).toEqual(Array.from(bytes));
      expect(c.memory()).toEqual(before);
      const back = await loadSafetensors(bytes);
      expectSame(await values(back.a), [1, 2]);
      expectSame(await values(back.b), [3]);
      disposeAll(back);
    });
  });

  describe('memory', () => {
    it('load then dispose returns memory() to its baseline; so do failed loads and saves', async () => {
      const d = await freshDir();
      const path = join(d, 'm.safetensors');
      const rec = { w: c.tensor(new Float32Array(1000), [10, 100]), ids: c.tensor([1, 2, 3], undefined, 'int32'), s: c.tensor(1) };
      await saveSafetensors(rec, path);
      disposeAll(rec);
      await c.sync();
      const base = c.memory();
      for (let i = 0; i < 3; i++) {
        const got = await loadSafetensors(path);
        expect(c.memory().tensors - base.tensors).toBe(3);
        expect(c.memory().bytes - base.bytes).toBe(4 * 1004);
        disposeAll(got);
        expect(c.memory()).toEqual(base);
      }
      // A file whose second tensor fails late (value range) makes nothing.
      const late = build(`{"a":${entry('F32', [1], 0, 4)},"b":${entry('I64', [1], 4, 12)}}`, [...le('f32', [1]), ...le64([2n ** 40n])]);
      await expect(loadSafetensors(late)).rejects.toThrow(/value 1099511627776/);
      const bad = c.tensor([1]);
      bad.dispose();
      await expect(saveSafetensors({ bad }, path)).rejects.toThrow(/disposed/);
      await expect(serializeSafetensors({ bad })).rejects.toThrow(/disposed/);
      expect(c.memory()).toEqual(base);
    });
  });

  describe('compatibility with Python safetensors (set SORSA_SAFETENSORS_PYTHON to run)', () => {
    if (!PY) {
      console.warn('[sorsajs tests] SKIPPING the Python safetensors interop check: set SORSA_SAFETENSORS_PYTHON to a python with the safetensors package (PyPI is not reachable from CI)');
    }
    const run = async (script: string, ...args: string[]): Promise<string> =>
      (await promisify(execFile)(PY!, ['-c', script, ...args], { encoding: 'utf8' })).stdout;

    it.skipIf(!PY)('Python loads our files and re-saves them byte-identically; we load what Python writes', async () => {
      const d = await freshDir();
      const ours = join(d, 'ours.safetensors');
      const rec = {
        'b.w': c.tensor([[1, 2, 3], [4, 5, 6]]),
        'a.b': c.tensor([0.5]),
        ids: c.tensor([1, -2, 16777216], undefined, 'int32'),
        n: c.tensor(3, [], 'int32'),
        e: c.tensor([], [0]),
        '𝒳': c.tensor([1]),
        '！': c.tensor([2]),
      };
      await saveSafetensors(rec, ours, { format: 'pt' });
      const same = await run(
        [
          'import sys',
          'from safetensors.numpy import load_file, save',
          'from safetensors import safe_open',
          't = load_file(sys.argv[1])',
          "with safe_open(sys.argv[1], 'np') as f: m = f.metadata()",
          "print(open(sys.argv[1], 'rb').read() == save(t, metadata=m))",
        ].join('\n'),
        ours,
      );
      expect(same.trim()).toBe('True');
      disposeAll(rec);

      const theirs = join(d, 'theirs.safetensors');
      await run(
        [
          'import sys, numpy as np',
          'from safetensors.numpy import save_file',
          "save_file({'h': np.array([1, -2, 65504, 2**-24], np.float16), 'd': np.array([0.1], np.float64),",
          "  'i': np.array([[1, -16777216]], np.int64), 'f': np.arange(6, dtype=np.float32).reshape(2, 3)}, sys.argv[1], metadata={'k': 'v'})",
        ].join('\n'),
        theirs,
      );
      const { tensors, metadata } = await loadSafetensorsWithMetadata(theirs);
      expect(metadata).toEqual({ k: 'v' });
      expectSame(await values(tensors.h), [1, -2, 65504, 2 ** -24]);
      expectSame(await values(tensors.d), [Math.fround(0.1)]);
      expectSame(await values(tensors.i), [1, -16777216]);
      expect(tensors.f.shape).toEqual([2, 3]);
      disposeAll(tensors);
    });
  });
});
