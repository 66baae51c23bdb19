/**
 * The safetensors element types this library reads, and their exact conversion to the values a
 * float32 or int32 tensor holds. Host code only: decoding file bytes is not tensor computation.
 * @module
 */
import type { DType } from '../tensor/tensor.js';

/** Largest magnitude an int32 tensor holds exactly (kernels compute in float32); `tensor()` enforces the same bound. */
export const INT_LIMIT = 2 ** 24;

/**
 * Element types of the format, in its order of increasing alignment (the order Python's library
 * sorts by when writing). Those without a decoder here are known but unsupported.
 */
export const KNOWN_DTYPES = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ',
  'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
] as const;

/** One element type we can decode: its size in bytes, the tensor dtype it becomes, and its decoder. */
export interface Codec {
  readonly size: number;
  readonly into: DType;
  /**
   * Decodes `count` elements from `view` (little-endian, starting at byte 0) into float32 values.
   * Calls `outOfRange(index, value)` (which throws) for an integer an int32 tensor cannot hold exactly.
   */
  decode(view: DataView, count: number, outOfRange: (index: number, value: string) => never): Float32Array;
}

let f16Table: Float32Array | undefined;

/** The value of the IEEE 754 binary16 number with bits `h`, exactly (every binary16 value is a float32 value). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (0x400 + frac) * 2 ** (exp - 25);
}

function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) f16Table[h] = f16ToNumber(h);
  }
  return f16Table;
}

/** Whether this host stores typed arrays little-endian (as the format does), so F32 bytes can be viewed directly. */
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function ints(size: number, read: (v: DataView, at: number) => number, limit = true): Codec {
  return {
    size,
    into: 'int32',
    decode(view, count, outOfRange) {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const v = read(view, i * size);
        if (limit && (v > INT_LIMIT || v < -INT_LIMIT)) outOfRange(i, String(v));
        out[i] = v;
      }
      return out;
    },
  };
}

function int64(signed: boolean): Codec {
  return {
    size: 8,
    into: 'int32',
    decode(view, count, outOfRange) {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = view.getUint32(8 * i, true);
        const hi = signed ? view.getInt32(8 * i + 4, true) : view.getUint32(8 * i + 4, true);
        // In range iff the value is in [-2^24, 2^24]: high word 0 with a small low word, or (signed) -1 with a large one.
        if (hi === 0 && lo <= INT_LIMIT) out[i] = lo;
        else if (hi === -1 && lo >= 2 ** 32 - INT_LIMIT) out[i] = lo - 2 ** 32;
        else outOfRange(i, String(signed ? view.getBigInt64(8 * i, true) : view.getBigUint64(8 * i, true)));
      }
      return out;
    },
  };
}

/** The decoders, by safetensors dtype name. */
export const CODECS: Readonly<Record<string, Codec>> = {
  F32: {
    size: 4,
    into: 'float32',
    decode(view, count) {
      if (HOST_LE) {
        const bytes = new Uint8Array(view.buffer, view.byteOffset, count * 4);
        // A view when aligned, else an aligned copy; tensor() copies the values either way.
        return view.byteOffset % 4 === 0 ? new Float32Array(view.buffer, view.byteOffset, count) : new Float32Array(bytes.slice().buffer);
      }
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    },
  },
  F16: {
    size: 2,
    into: 'float32',
    decode(view, count) {
      const table = f16Values();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      return out;
    },
  },
  BF16: {
    size: 2,
    into: 'float32',
    decode(view, count) {
      // A bfloat16 is the high half of a float32: widening is exact, NaN payloads included.
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    },
  },
  F64: {
    size: 8,
    into: 'float32',
    decode(view, count) {
      // Rounded to the nearest float32 (ties to even); values past float32's range become ±Infinity.
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    },
  },
  BOOL: ints(1, (v, at) => (v.getUint8(at) === 0 ? 0 : 1), false),
  U8: ints(1, (v, at) => v.getUint8(at), false),
  I8: ints(1, (v, at) => v.getInt8(at), false),
  I16: ints(2, (v, at) => v.getInt16(at, true), false),
  U16: ints(2, (v, at) => v.getUint16(at, true), false),
  I32: ints(4, (v, at) => v.getInt32(at, true)),
  U32: ints(4, (v, at) => v.getUint32(at, true)),
  I64: int64(true),
  U64: int64(false),
};

/** The dtype names `CODECS` decodes, for error messages. */
export const SUPPORTED = Object.keys(CODECS).join(', ');

/** The dtype a tensor is written as. */
export const WRITE_DTYPE: Readonly<Record<DType, 'F32' | 'I32'>> = { float32: 'F32', int32: 'I32' };

/** Rank of a dtype in the format's alignment order (Python's writer puts higher ranks first). */
export function alignmentRank(dtype: string): number {
  return (KNOWN_DTYPES as readonly string[]).indexOf(dtype);
}
