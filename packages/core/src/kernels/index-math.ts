/**
 * Index arithmetic emitted into kernels. gpu.js divides in float32 on every backend, and WGSL allows
 * division 2.5 ulp off, so `floor(i / n)` can land one off at exact multiples on a GPU. The two
 * corrections below make the quotient and remainder exact for every index below 2^24.
 * @module
 */

/** Kernel lines declaring `q = floor(num / den)` and `r = num - q * den`, corrected to be exact. */
export function divmod(q: string, r: string, num: string, den: string): string {
  const n = `(${num})`;
  const d = `(${den})`;
  return [
    `let ${q} = Math.floor(${n} / ${d});`,
    `let ${r} = ${n} - ${q} * ${d};`,
    `if (${r} < 0) { ${q} = ${q} - 1; ${r} = ${r} + ${d}; }`,
    `if (${r} >= ${d}) { ${q} = ${q} + 1; ${r} = ${r} - ${d}; }`,
  ].join('\n');
}
