/**
 * Index arithmetic emitted into kernels. Every index division in a kernel goes through `divmod`:
 * kernels have no integer division (gpu.js divides in float32 on every backend, and WGSL allows a
 * division 2.5 ulp off), so `Math.floor(i / n)` is off by one at exact multiples on a GPU, and by
 * up to ~2^-22 of the quotient once `i` passes 2^24 (float32 no longer holds every integer).
 * `divmod` makes the quotient and remainder exact for every `0 <= num < 2^31` and `1 <= den < 2^31`.
 *
 * It relies on integer locals: on wasm and webgpu, a local initialized from an integer expression
 * (`this.thread.x`, integer scalars, `| 0`) is an i32 (`patches/gpu.js+2.24.1.patch`; upstream
 * gpu.js makes it float32), so sums and products of indices are exact i32 arithmetic. On cpu they
 * are JavaScript doubles (exact). webgl keeps float32 locals, so it refuses tensors of 2^24 elements
 * or more (engine `maxElements`), and below that everything here is exact in float32 too.
 * @module
 */

/**
 * Kernel lines declaring `q = floor(num / den)` and `r = num - q * den` (consts), exact for
 * `0 <= num < 2^31` and `1 <= den < 2^31`. A float estimate `q0` is within ~2^-21 of the quotient
 * (at most ~1025 off), so `num - q0 * den` is exact in i32 (wrapping products still give the
 * true difference, which fits); a second float division of that small remainder lands within one
 * of the rest, and a last comparison fixes that one. `q`, `r` name the results; the helper names
 * `q_0`, `q_1`, `r_0`, `r_1` are derived from them (gpu.js declares every local in one scope).
 *
 * @example
 * ```ts
 * const body = `const i = this.thread.x;\n${divmod('row', 'col', 'i', 'n')}\nreturn x[col * m + row];`;
 * ```
 */
export function divmod(q: string, r: string, num: string, den: string): string {
  const n = `(${num})`;
  const d = `(${den})`;
  return [
    `const ${q}_0 = Math.floor(${n} / ${d}) | 0;`,
    `const ${r}_0 = ${n} - ${q}_0 * ${d};`,
    `const ${q}_1 = ${q}_0 + (Math.floor(${r}_0 / ${d}) | 0);`,
    `const ${r}_1 = ${n} - ${q}_1 * ${d};`,
    `const ${q} = ${r}_1 < 0 ? ${q}_1 - 1 : (${r}_1 >= ${d} ? ${q}_1 + 1 : ${q}_1);`,
    `const ${r} = ${n} - ${q} * ${d};`,
  ].join('\n');
}
