/**
 * Progress of a bench run on stderr, so that stdout keeps only the tables: the command line sets
 * where lines go ({@link setProgress}); suites run their tinybench cases through {@link runBench},
 * which says which case is running, and may report steps of their own (a peer's run) with
 * {@link progress}. Without a sink (a suite called from a program) nothing is printed.
 * @module
 */
import type { Bench } from 'tinybench';

let sink: ((line: string) => void) | undefined;

/**
 * Sends progress lines to `write` (undefined: nowhere).
 *
 * @example
 * ```ts
 * setProgress((line) => process.stderr.write(`bench: ${line}\n`));
 * ```
 */
export function setProgress(write: ((line: string) => void) | undefined): void {
  sink = write;
}

/**
 * One progress line, when a sink is set.
 *
 * @example
 * ```ts
 * progress('  PyTorch peer (a Python child) ...');
 * ```
 */
export function progress(line: string): void {
  sink?.(line);
}

/**
 * Runs a tinybench `bench` (as `bench.run()`), with a progress line as each case starts: its
 * number, the count, its name (`case | impl`) and the seconds since the run began. tinybench warms
 * every case up before it times the first one, so a bench with warmup prints each case twice,
 * `warmup` then `case`.
 *
 * @example
 * ```ts
 * await runBench(bench); // bench:   case 2/6 (0.8 s): matmul 256 | tfjs-wasm
 * ```
 */
export async function runBench(bench: Bench): Promise<void> {
  const tasks = bench.tasks;
  const t0 = performance.now();
  const listeners = tasks.map((task, k) => {
    const line = (phase: string) => (): void => {
      progress(`  ${phase} ${k + 1}/${tasks.length} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${task.name}`);
    };
    const on = { warmup: line('warmup'), start: line('case') };
    task.addEventListener('warmup', on.warmup);
    task.addEventListener('start', on.start);
    return on;
  });
  try {
    await bench.run();
  } finally {
    tasks.forEach((task, k) => {
      task.removeEventListener('warmup', listeners[k].warmup);
      task.removeEventListener('start', listeners[k].start);
    });
  }
}
