/**
 * Progress of a long command: a cli-progress bar on a terminal, plain log lines (one per logged
 * step) when stderr is not one (CI, pipes, files). Both go to stderr, so stdout keeps only results.
 * @module
 */
import cliProgress from 'cli-progress';

/** What a training step reports. */
export interface StepReport {
  /** Steps done. */
  step: number;
  /** Steps in all. */
  total: number;
  /** The loss, smoothed (an exponential moving average). */
  loss: number;
  /** The learning rate of the step. */
  lr: number;
  /** Input tokens per second, over the steps since the last report. */
  tokensPerSecond: number;
  /** Estimated seconds left. */
  eta: number;
}

/** Seconds as `h:mm:ss` or `m:ss`. */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** A progress display: phases (`init 3/12 ...`), steps, and messages that do not break the bar. */
export interface Progress {
  /** Starts or advances a phase with a count (SVD initialization of each layer). */
  phase(name: string, done: number, total: number, detail: string): void;
  /** Reports a training step. */
  step(r: StepReport): void;
  /** A line of text (evaluation results, warnings). */
  log(line: string): void;
  /** Ends the display. */
  stop(): void;
}

/**
 * The progress display for this process: a bar when stderr is a terminal (unless `plain`), lines
 * otherwise.
 */
export function makeProgress(opts: { plain?: boolean } = {}): Progress {
  const tty = process.stderr.isTTY === true && !opts.plain;
  if (!tty) {
    return {
      phase: (name, done, total, detail) => process.stderr.write(`${name} ${done}/${total} ${detail}\n`),
      step: (r) =>
        process.stderr.write(
          `step ${r.step}/${r.total} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} tok/s ${Math.round(r.tokensPerSecond)} eta ${clock(r.eta)}\n`,
        ),
      log: (line) => process.stderr.write(`${line}\n`),
      stop: () => undefined,
    };
  }
  let bar: cliProgress.SingleBar | null = null;
  let kind = '';
  const ensure = (name: string, total: number, format: string): cliProgress.SingleBar => {
    if (bar && kind === name) return bar;
    bar?.stop();
    kind = name;
    bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return bar;
  };
  return {
    phase: (name, done, total, detail) => ensure(name, total, `${name} {bar} {value}/{total} {detail}`).update(done, { detail }),
    step: (r) =>
      ensure('train', r.total, 'train {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {etaText}').update(r.step, {
        loss: r.loss.toFixed(4),
        lr: r.lr.toExponential(2),
        tps: Math.round(r.tokensPerSecond),
        etaText: clock(r.eta),
      }),
    log: (line) => {
      if (bar) bar.stop();
      bar = null;
      kind = '';
      process.stderr.write(`${line}\n`);
    },
    stop: () => {
      bar?.stop();
      bar = null;
    },
  };
}
