/**
 * Shared pieces of the tests of `sorsa eval`, `generate`, `merge`, `export` and `drift`: the
 * user-error assertion, float64 references of tuned weights (plain loops over values read back,
 * nothing from src/), reading leaves, a GPT-2 of another width, and the byte tokenizer's ids.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import * as c from '@sorsajs/core';
import { createModel, savePretrained } from '@sorsajs/models';
import { EPS32, mm, mmAbs, scaleCols } from '../ref.js';
import { byteTokenizer, tempDir, TINY, type CliResult } from './fixture.js';

export { EPS32 };

/** A user error: status 2, one line on stderr that matches `what`, no stack trace. */
export function expectUsageError(r: CliResult, what: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

/** The tensor leaves of a tree by dotted path. */
export function leavesByPath(t: unknown): Map<string, c.Tensor> {
  const leaves = c.tree.leaves(t);
  const out = new Map<string, c.Tensor>();
  c.tree.leafPaths(t).forEach((p, i) => {
    const l = leaves[i];
    if (l instanceof c.Tensor) out.set(p, l);
  });
  return out;
}

/** A leaf's values, or a failed expectation naming the path. */
export async function values(t: unknown, path: string): Promise<Float32Array> {
  const l = leavesByPath(t).get(path);
  expect(l, `no tensor at ${path}`).toBeInstanceOf(c.Tensor);
  return (await l!.data()) as Float32Array;
}

/** A float64 value with the magnitude its float32 rounding error scales with. */
export interface Ref {
  value: Float64Array;
  /** Per entry: the sum of the magnitudes of the terms that make it. */
  scale: Float64Array;
}

/** W + Σ_k scale_k · left_k diag(mid_k) right_k in float64, for `[m, n]` W and rank-r_k terms. */
export function lowRankSum(W: ArrayLike<number>, m: number, n: number, terms: { left: ArrayLike<number>; mid: ArrayLike<number> | null; right: ArrayLike<number>; r: number; scale: number }[]): Ref {
  const value = Float64Array.from(W);
  const scale = Float64Array.from(W, Math.abs);
  for (const t of terms) {
    const left = t.mid ? scaleCols(t.left, t.mid, m, t.r) : t.left;
    const p = mm(left, t.right, m, t.r, n);
    const a = mmAbs(left, t.right, m, t.r, n);
    for (let i = 0; i < m * n; i++) {
      value[i] += t.scale * p[i];
      scale[i] += Math.abs(t.scale) * a[i];
    }
  }
  return { value, scale };
}

/**
 * Asserts every entry of `got` is within `k · EPS32 · scale` of the float64 reference (k: the
 * number of roundings on the way, a small multiple of the rank), naming the first bad entries.
 */
export function expectClose(got: ArrayLike<number>, ref: Ref, k: number, what: string): void {
  expect(got.length, what).toBe(ref.value.length);
  const bad: string[] = [];
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    const tol = k * EPS32 * ref.scale[i] + 1e-30;
    if (!(Math.abs(got[i] - ref.value[i]) <= tol)) bad.push(`${what}[${i}]: got ${got[i]}, want ${ref.value[i]}, tolerance ${tol.toExponential(2)}`);
  }
  expect(bad, bad.join('\n')).toEqual([]);
}

/** A SORSA adapter's values read back: U [m, r], S [r], Vt [r, n]. */
export async function sorsaValues(ad: unknown): Promise<{ U: Float32Array; S: Float32Array; Vt: Float32Array; r: number; scale: number }> {
  const a = ad as { U: c.Tensor; S: c.Tensor; Vt: c.Tensor; scale?: number };
  return { U: (await a.U.data()) as Float32Array, S: (await a.S.data()) as Float32Array, Vt: (await a.Vt.data()) as Float32Array, r: a.S.shape[0], scale: a.scale ?? 1 };
}

/** The SORSA-tuned weight W + U diag(S) Vt − U0 diag(S0) V0t in float64 (W: the base weight, [m, n]). */
export async function sorsaTuned(W: ArrayLike<number>, m: number, n: number, ad: unknown, init: unknown): Promise<Ref> {
  const a = await sorsaValues(ad);
  const a0 = await sorsaValues(init);
  return lowRankSum(W, m, n, [
    { left: a.U, mid: a.S, right: a.Vt, r: a.r, scale: a.scale },
    { left: a0.U, mid: a0.S, right: a0.Vt, r: a0.r, scale: -a0.scale },
  ]);
}

/** A float32 array of a float64 reference (what a checkpoint of it would hold). */
export const f32 = (r: Ref): Float32Array => Float32Array.from(r.value);

/** Writes a tiny GPT-2 of width 16 (not the fixture's 32) with the byte tokenizer: for mismatches. */
export async function narrowGpt2(): Promise<string> {
  const dir = tempDir('sorsa-model-narrow-');
  const m = createModel({ ...TINY.gpt2, n_embd: 16 }, c.random.key(7));
  await savePretrained(m, m.params, dir);
  c.tree.dispose(m.params);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizer()));
  return dir;
}

/** The byte tokenizer's ids of a text (its ids are the UTF-8 bytes; 256 is end-of-text). */
export const byteIds = (text: string): number[] => Array.from(Buffer.from(text, 'utf8'));

/** The end-of-text id of the tiny models. */
export const EOS = 256;
