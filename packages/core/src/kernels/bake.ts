import type { KernelSource } from '../backend/engine.js';

/**
 * `src` with the named scalars written into its body as literals and dropped from its scalar list;
 * the key gains the values. webasm compiles one module per shape anyway, so sizes baked in cost no
 * extra compiles, and gpu.js then folds the index arithmetic (matmul measured ~8-10% at 512).
 *
 * @example
 * ```ts
 * const k = bakeScalars(MATMUL, { M: 512, N: 512, K: 512 });
 * ```
 */
export function bakeScalars(src: KernelSource, values: Readonly<Record<string, number>>): KernelSource {
  const names = src.scalars.filter((n) => n in values);
  let body = src.body;
  for (const name of names) body = body.replace(new RegExp(`\\b${name}\\b`, 'g'), String(values[name]));
  return { ...src, key: `${src.key}:${names.map((n) => values[n]).join(',')}`, scalars: src.scalars.filter((n) => !(n in values)), body };
}
