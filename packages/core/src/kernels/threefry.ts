/**
 * Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
 * the counter-based generator JAX uses: twice here, once as plain JS for key derivation on the host,
 * once as kernel source for the values tensors hold.
 *
 * Why the kernel form works on 16-bit halves: gpu.js computes bitwise operators (`& | ^ << >> >>>`)
 * in real 32-bit integers on every backend, but a kernel *variable* holding an integer is a float32
 * on `webgl` (and on `webasm` and `webgpu` under an unpatched gpu.js; the patch makes integer locals
 * i32 there), so a variable cannot be relied on to hold a 32-bit word. Every word is therefore kept as two variables of 16 bits, values below
 * 2^24 are exact in float32, and each expression computes in exact integers (every intermediate
 * stays below 2^31, so `cpu`, which computes in float64, gives the same integers without wrapping).
 * @module
 */

/** Rotation distances of Threefry-2x32, one per round modulo 8. */
const ROT = [13, 15, 26, 6, 17, 29, 16, 24] as const;

/** Threefry's key-schedule parity constant (C240 of Skein, 32-bit). */
const PARITY = 0x1bd11bda;

/** One Threefry-2x32-20 block on the host: key words `(k0, k1)`, counter words `(c0, c1)`, all uint32. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ PARITY) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let r = 0; r < 20; r++) {
    const d = ROT[r % 8];
    x0 = (x0 + x1) >>> 0;
    x1 = ((x1 << d) | (x1 >>> (32 - d))) >>> 0;
    x1 = (x1 ^ x0) >>> 0;
    if (r % 4 === 3) {
      const s = (r + 1) / 4;
      x0 = (x0 + ks[s % 3]) >>> 0;
      x1 = (x1 + ks[(s + 1) % 3] + s) >>> 0;
    }
  }
  return [x0, x1];
}

/**
 * Scalar parameters every Threefry kernel takes, in order: the key words and the base counter, each
 * as high and low 16-bit halves (`Integer` scalars). Element `i` of a kernel uses counter
 * `(c0, c1) + i`, as a 64-bit number with `c0` the high word.
 */
export const THREEFRY_SCALARS = ['k0h', 'k0l', 'k1h', 'k1l', 'c0h', 'c0l', 'c1h', 'c1l'] as const;

/** Scalar values for {@link THREEFRY_SCALARS}: key words `k` and base counter words `c` (uint32). */
export function threefryArgs(k: readonly [number, number], c: readonly [number, number] = [0, 0]): number[] {
  return [...k, ...c].flatMap((w) => [(w >>> 16) & 0xffff, w & 0xffff]);
}

/**
 * Kernel lines that leave the Threefry output block for counter `(c0, c1) + index` in the variables
 * `x0h, x0l, x1h, x1l` (16-bit halves). `index` is an integer kernel expression: exact below 2^31
 * where integer locals are i32 (wasm, webgpu with the patch; cpu), below 2^24 on webgl (whose
 * tensors are capped there).
 */
export function threefryLines(index: string): string[] {
  const L: string[] = [];
  // Words as [high, low] variable names; `add` adds `b` (plus a small constant) into `a`, carrying.
  type Word = readonly [string, string];
  const add = (a: Word, b: Word, plus = 0): void => {
    const low = `${a[1]} + ${b[1]}${plus ? ` + ${plus}` : ''}`;
    L.push(`${a[0]} = (${a[0]} + ${b[0]} + ((${low}) >> 16)) & 65535;`);
    L.push(`${a[1]} = (${low}) & 65535;`);
  };
  const x0: Word = ['x0h', 'x0l'];
  const x1: Word = ['x1h', 'x1l'];
  const ks: Word[] = [['k0h', 'k0l'], ['k1h', 'k1l'], ['k2h', 'k2l']];
  L.push(`const k2h = k0h ^ k1h ^ ${PARITY >>> 16};`);
  L.push(`const k2l = k0l ^ k1l ^ ${PARITY & 0xffff};`);
  // Counter (c0, c1) + index, carrying through both words; index < 2^31 has two halves.
  L.push(`const ix = ${index};`);
  L.push('let x1l = c1l + (ix & 65535);');
  L.push('let x1h = c1h + (ix >> 16) + (x1l >> 16);');
  L.push('x1l = x1l & 65535;');
  L.push('let x0l = c0l + (x1h >> 16);');
  L.push('x1h = x1h & 65535;');
  L.push('let x0h = (c0h + (x0l >> 16)) & 65535;');
  L.push('x0l = x0l & 65535;');
  add(x0, ks[0]);
  add(x1, ks[1]);
  L.push('let ta = 0;', 'let tb = 0;');
  for (let r = 0; r < 20; r++) {
    add(x0, x1);
    // Rotate x1 left by d: by s = d mod 16 across the halves, after swapping them when d >= 16.
    const d = ROT[r % 8];
    const s = d % 16;
    L.push(d >= 16 ? 'ta = x1l;' : 'ta = x1h;', d >= 16 ? 'tb = x1h;' : 'tb = x1l;');
    if (s === 0) {
      L.push('x1h = ta;', 'x1l = tb;');
    } else {
      L.push(`x1h = ((ta << ${s}) | (tb >> ${16 - s})) & 65535;`);
      L.push(`x1l = ((tb << ${s}) | (ta >> ${16 - s})) & 65535;`);
    }
    L.push('x1h = x1h ^ x0h;', 'x1l = x1l ^ x0l;');
    if (r % 4 === 3) {
      const inj = (r + 1) / 4;
      add(x0, ks[inj % 3]);
      add(x1, ks[(inj + 1) % 3], inj);
    }
  }
  return L;
}
