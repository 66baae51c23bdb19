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
  // One MultiBar: its log() prints lines above the bars without breaking them.
  let multi: cliProgress.MultiBar | null = null;
  let bar: cliProgress.SingleBar | null = null;
  let kind = '';
  const ensure = (name: string, total: number, format: string, payload: object): cliProgress.SingleBar => {
    if (bar && kind === name) return bar;
    multi ??= new cliProgress.MultiBar({ stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20, autopadding: true, barsize: 16 }, cliProgress.Presets.shades_classic);
    kind = name;
    bar = multi.create(total, 0, payload, { format });
    return bar;
  };
  return {
    phase: (name, done, total, detail) => ensure(name, total, `${name.padEnd(5)} {bar} {value}/{total} {detail}`, { detail }).update(done, { detail }),
    step: (r) => {
      // Compact enough for an 80-column terminal (cli-progress cuts lines at the terminal's width).
      const payload = { loss: r.loss.toFixed(4), lr: r.lr.toExponential(1), tps: Math.round(r.tokensPerSecond), etaText: clock(r.eta) };
      ensure('train', r.total, 'train {bar} {value}/{total} loss {loss} lr {lr} {tps} tok/s ETA {etaText}', payload).update(r.step, payload);
    },
    log: (line) => {
      if (multi) multi.log(`${line}\n`);
      else process.stderr.write(`${line}\n`);
    },
    stop: () => {
      multi?.stop();
      multi = null;
      bar = null;
      kind = '';
    },
  };
}
