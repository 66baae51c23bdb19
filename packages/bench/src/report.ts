/**
 * Turning tinybench tasks into rows: median time, a rate, and the ratio to the peer timed beside us.
 * @module
 */
import type { Bench } from 'tinybench';

/** One measured task. */
export interface Row {
  /** Suite-specific case name, e.g. `matmul 512`. */
  case: string;
  /** Who was timed: `sorsajs (wasm)`, `tfjs-wasm`, ... */
  impl: string;
  /** Median time per call, milliseconds. */
  medianMs: number;
  /** Samples taken. */
  samples: number;
  /** Work per second at the median time, when the suite defines the work. */
  rate?: number;
  /** Unit of `rate`: GFLOP/s, GB/s. */
  unit?: string;
  /** Suite-specific values beside the time (the gpt suite: each implementation's step-0 loss and check). */
  detail?: Record<string, number | string>;
}

/**
 * Median latency of every completed task in `bench`, as rows. Task names are `case | impl`.
 *
 * @example
 * ```ts
 * const rows = rowsOf(bench, (c) => ({ unit: 'GFLOP/s', work: 2 * 512 ** 3 / 1e9 }));
 * ```
 */
export function rowsOf(bench: Bench, rate?: (caseName: string) => { unit: string; work: number } | undefined): Row[] {
  const rows: Row[] = [];
  for (const task of bench.tasks) {
    const [caseName, impl] = task.name.split(' | ');
    const r = task.result;
    if (!r || r.state !== 'completed') {
      const why = r && 'error' in r ? String((r as { error?: unknown }).error) : r?.state;
      throw new Error(`bench: task "${task.name}" did not complete (${why})`);
    }
    const medianMs = r.latency.p50;
    const row: Row = { case: caseName, impl, medianMs, samples: r.latency.samplesCount };
    const w = rate?.(caseName);
    if (w) {
      row.rate = w.work / (medianMs / 1000);
      row.unit = w.unit;
    }
    rows.push(row);
  }
  return rows;
}

/**
 * A markdown table of rows, with each case's time relative to the row named `peer`
 * (ratio > 1: slower than the peer).
 *
 * @example
 * ```ts
 * console.log(markdown(rows, 'tfjs-wasm'));
 * ```
 */
export function markdown(rows: readonly Row[], peer: string): string {
  const lines = ['| case | impl | median ms | rate | time / ' + peer + ' |', '| --- | --- | --- | --- | --- |'];
  for (const row of rows) {
    const ref = rows.find((r) => r.case === row.case && r.impl === peer);
    const ratio = ref ? (row.medianMs / ref.medianMs).toFixed(2) : '-';
    const rate = row.rate !== undefined ? `${row.rate.toFixed(2)} ${row.unit}` : '-';
    lines.push(`| ${row.case} | ${row.impl} | ${row.medianMs.toFixed(3)} | ${rate} | ${ratio} |`);
  }
  return lines.join('\n');
}
