/**
 * Dependency-free SVG charts for reports: loss curves (`lineChart`) and grouped bars with error
 * bars (`barChart`). Strings in, a string out, so they work in Node and in a browser alike; every
 * name and title is escaped, so a method called `<script>` stays text.
 * @module
 */
import { escapeXml } from './escape.js';
import { formatNumber } from './format.js';
import { clip, colour, dash, FONT_SIZE, legend, noData, num, open, textWidth, yAxis, yAxisWidth, yOf, type Box } from './frame.js';
import { linearScale, logScale, position } from './ticks.js';

/**
 * One line of a line chart: `[x, y]` points in order. Non-finite points break the line.
 * @example `{ name: 'sorsa', points: [[0, 2.31], [10, 1.87], [20, 1.52]] }`
 */
export interface LineSeries {
  /** The legend and tooltip name (any text: it is escaped). */
  name: string;
  /** `[x, y]` pairs, drawn in this order. */
  points: readonly (readonly [number, number])[];
}

/**
 * What `lineChart` draws.
 * @example `{ title: 'Training loss', xLabel: 'step', yLabel: 'loss', series, logY: true }`
 */
export interface LineChartOptions {
  /** Shown above the chart, and its accessible name. */
  title: string;
  /** The x axis title. */
  xLabel: string;
  /** The y axis title. */
  yLabel: string;
  /** The lines, coloured in order from a colour-blind-safe palette. */
  series: readonly LineSeries[];
  /** A base-10 logarithmic y axis; points with y <= 0 cannot be placed on it and break the line. */
  logY?: boolean;
}

// A loop, not Math.min(...v): a long run's loss curve has more points than a call has room for arguments.
function extent(points: readonly (readonly [number, number])[], axis: 0 | 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of points) {
    if (p[axis] < lo) lo = p[axis];
    if (p[axis] > hi) hi = p[axis];
  }
  return [lo, hi];
}

// A type guard would narrow readonly number[] to any[]: validation only needs the boolean.
const isList = (x: unknown): boolean => Array.isArray(x);

/** Most markers (with tooltips) drawn per line; a longer series gets one on every k-th point. */
const MAX_MARKERS = 60;

/**
 * Several series as lines on one chart, such as the training loss of every method: nice ticks on
 * both axes, horizontal grid lines, a legend with each series' colour and dash, and a tooltip on
 * every marker (`name: x = …, y = …`). A point with a NaN or infinite coordinate (or y <= 0 with
 * `logY`) is left out and breaks its line in two, so it can neither corrupt the path nor stretch
 * the axes. With no drawable point at all the chart says "no data".
 *
 * @example
 * ```ts
 * const svg = lineChart({
 *   title: 'Training loss', xLabel: 'step', yLabel: 'loss',
 *   series: [
 *     { name: 'sorsa', points: [[0, 2.3], [10, 1.7], [20, 1.2]] },
 *     { name: 'lora', points: [[0, 2.3], [10, 1.9], [20, NaN], [30, 1.5]] },
 *   ],
 * });
 * ```
 */
export function lineChart(options: LineChartOptions): string {
  const { title, xLabel, yLabel, series, logY = false } = options;
  if (!isList(series)) throw new Error(`lineChart: series must be an array, got ${typeof series}`);
  const drawable = (x: number, y: number): boolean => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  // Runs of consecutive drawable points; each becomes one subpath.
  const runs = series.map((s, i) => {
    if (!isList(s?.points)) throw new Error(`lineChart: series ${i} (${JSON.stringify(s?.name)}) needs a points array`);
    const out: [number, number][][] = [];
    let cur: [number, number][] = [];
    for (const [x, y] of s.points) {
      if (drawable(x, y)) cur.push([x, y]);
      else if (cur.length) {
        out.push(cur);
        cur = [];
      }
    }
    if (cur.length) out.push(cur);
    return out;
  });
  const all = runs.flat(2);
  if (!all.length) return noData(title, series.length === 0 ? 'no series' : logY ? 'no finite positive values for a log scale' : 'no finite values');

  const W = 720;
  const H = 420;
  const [x0, x1] = extent(all, 0);
  const [y0, y1] = extent(all, 1);
  const ySc = logY ? logScale(y0, y1) : linearScale(y0, y1, 6);
  const xSc = linearScale(x0, x1, 7);
  const leg = legend(
    series.map((s, i) => ({ name: runs[i].length ? s.name : `${s.name} (no finite points)`, colour: colour(i), dash: dash(i), shape: 'line' as const })),
    48,
    W,
  );
  const box: Box = { left: yAxisWidth(ySc) + 8, top: 48 + leg.height + 8, right: W - 24, bottom: H - 52 };
  const xOf = (v: number): number => box.left + position(xSc, v) * (box.right - box.left);

  const xTicks = xSc.ticks
    .map((t, i) => {
      const x = num(xOf(t));
      return (
        `<line x1="${x}" y1="${box.bottom}" x2="${x}" y2="${box.bottom + 5}" stroke="#555555"/>` +
        `<text x="${x}" y="${box.bottom + 8 + FONT_SIZE}" text-anchor="middle" fill="#333333">${escapeXml(xSc.labels[i])}</text>`
      );
    })
    .join('');
  const xAxis =
    `<g class="sorsa-axis-x">${xTicks}<line x1="${box.left}" y1="${box.bottom}" x2="${box.right}" y2="${box.bottom}" stroke="#555555"/>` +
    `<text x="${num((box.left + box.right) / 2)}" y="${H - 12}" text-anchor="middle" fill="#111111">${escapeXml(xLabel)}</text></g>`;

  const lines = series
    .map((s, i) => {
      if (!runs[i].length) return '';
      const name = escapeXml(s.name);
      const d = runs[i].map((run) => run.map(([x, y], k) => `${k ? 'L' : 'M'}${num(xOf(x))} ${num(yOf(ySc, box, y))}`).join('')).join('');
      const dashAttr = dash(i) ? ` stroke-dasharray="${dash(i)}"` : '';
      const pts = runs[i].flat();
      const isolated = new Set(runs[i].filter((r) => r.length === 1).map((r) => r[0]));
      const every = Math.ceil(pts.length / MAX_MARKERS);
      const markers = pts
        .map(([x, y], k) => {
          // Every k-th point, the last, and isolated points (a one-point run draws no line).
          const alone = isolated.has(pts[k]);
          if (k % every && k !== pts.length - 1 && !alone) return '';
          return `<circle class="sorsa-point" cx="${num(xOf(x))}" cy="${num(yOf(ySc, box, y))}" r="${alone ? 3.5 : 2.5}" fill="${colour(i)}"><title>${name}: ${escapeXml(xLabel)} = ${formatNumber(x, 6)}, ${escapeXml(yLabel)} = ${formatNumber(y)}</title></circle>`;
        })
        .join('');
      return (
        `<g class="sorsa-series"><path class="sorsa-line" d="${d}" fill="none" stroke="${colour(i)}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"${dashAttr}><title>${name}</title></path>` +
        `${markers}</g>`
      );
    })
    .join('');

  return `${open(W, H, title)}${leg.svg}${yAxis(ySc, box, logY ? `${yLabel} (log scale)` : yLabel)}${xAxis}${lines}</svg>`;
}

/**
 * One group member of a bar chart: a value per category, with optional ± error bars.
 * @example `{ name: 'sorsa', values: [0.012, 0.009], errors: [0.001, 0.002] }`
 */
export interface BarSeries {
  /** The legend and tooltip name (any text: it is escaped). */
  name: string;
  /** One value per category; a non-finite one draws "n/a" instead of a bar. */
  values: readonly number[];
  /** Half-widths of the error bars (a standard deviation over seeds, say); non-finite ones are not drawn. */
  errors?: readonly number[];
}

/**
 * What `barChart` draws.
 * @example `{ title: 'ΔΣ per layer', yLabel: 'ΔΣ', categories: ['h.0.attn.c_attn', 'h.1.attn.c_attn'], series }`
 */
export interface BarChartOptions {
  /** Shown above the chart, and its accessible name. */
  title: string;
  /** The y axis title. */
  yLabel: string;
  /** The groups along the x axis (methods, layer paths), in order. */
  categories: readonly string[];
  /** The bars within each group, coloured in order from a colour-blind-safe palette. */
  series: readonly BarSeries[];
}

/**
 * Grouped bars: one group per category, one bar per series, from zero (negative values go down),
 * with optional error bars of ± `errors[i]`. Long category names (layer paths) are rotated and
 * clipped, with the full name as a tooltip; every bar's tooltip gives its value. A non-finite value
 * draws no bar but an "n/a" mark. With no categories, series or finite values the chart says "no data".
 *
 * @example
 * ```ts
 * const svg = barChart({
 *   title: 'Exact-match accuracy', yLabel: 'accuracy (%)',
 *   categories: ['sorsa', 'pissa', 'lora'],
 *   series: [{ name: 'mean over 3 seeds', values: [31.2, 29.5, 24.1], errors: [1.1, 2.0, 1.4] }],
 * });
 * ```
 */
export function barChart(options: BarChartOptions): string {
  const { title, yLabel, categories, series } = options;
  if (!isList(categories)) throw new Error(`barChart: categories must be an array, got ${typeof categories}`);
  if (!isList(series)) throw new Error(`barChart: series must be an array, got ${typeof series}`);
  series.forEach((s, i) => {
    const what = `barChart: series ${i} (${JSON.stringify(s?.name)})`;
    if (!isList(s?.values) || s.values.length !== categories.length) {
      throw new Error(`${what} has ${isList(s?.values) ? s.values.length : 'no'} values for ${categories.length} categories`);
    }
    if (s.errors !== undefined && (!isList(s.errors) || s.errors.length !== categories.length)) {
      throw new Error(`${what} has ${isList(s.errors) ? s.errors.length : 'non-array'} errors for ${categories.length} categories`);
    }
    s.errors?.forEach((e, j) => {
      if (e < 0) throw new Error(`${what}: error bar ${j} (${JSON.stringify(categories[j])}) is negative: ${e}`);
    });
  });
  const errOf = (s: BarSeries, j: number): number => (s.errors && Number.isFinite(s.errors[j]) ? s.errors[j] : 0);
  const extents: number[] = [];
  for (const s of series) {
    s.values.forEach((v, j) => {
      if (Number.isFinite(v)) extents.push(v - errOf(s, j), v + errOf(s, j));
    });
  }
  if (!categories.length || !series.length || !extents.length) {
    return noData(title, !categories.length ? 'no categories' : !series.length ? 'no series' : 'no finite values');
  }

  const nC = categories.length;
  const nS = series.length;
  const ySc = linearScale(Math.min(0, ...extents), Math.max(0, ...extents), 6);
  // Wide enough for every bar to be at least 12 units, at least 720; the width follows the page anyway.
  const W = Math.max(720, Math.ceil(yAxisWidth(ySc) + 40 + nC * (nS * 12 + 10)));
  const right = W - 24;
  const labels = categories.map((c) => clip(c, 32));
  const longest = Math.max(...labels.map((l) => textWidth(l)));
  let left = yAxisWidth(ySc) + 8;
  let slot = (right - left) / nC;
  const rotate = longest > slot * 0.95;
  if (rotate) {
    // The first rotated label reaches w·cos 35° left of its group's centre: keep it on the canvas.
    left = Math.max(left, longest * Math.cos((35 * Math.PI) / 180) + 8 - slot / 2);
    slot = (right - left) / nC;
  }
  // Rotated by 35°, a label of width w reaches w·sin 35° below the axis.
  const labelDepth = rotate ? longest * Math.sin((35 * Math.PI) / 180) + FONT_SIZE + 10 : FONT_SIZE + 12;
  const H = Math.ceil(380 + labelDepth);
  const leg = legend(series.map((s, i) => ({ name: s.name, colour: colour(i), shape: 'box' as const })), 48, W);
  const box: Box = { left, top: 48 + leg.height + 8, right, bottom: H - labelDepth - 8 };
  const y0 = yOf(ySc, box, 0);
  const groupW = slot * 0.8;
  const barW = groupW / nS;

  const xLabels = categories
    .map((c, j) => {
      const cx = num(left + slot * (j + 0.5));
      const y = num(box.bottom + FONT_SIZE + 6);
      const attrs = rotate ? `transform="rotate(-35 ${cx} ${y})" text-anchor="end"` : 'text-anchor="middle"';
      return `<text x="${cx}" y="${y}" ${attrs} fill="#333333"><title>${escapeXml(c)}</title>${escapeXml(labels[j])}</text>`;
    })
    .join('');

  const bars = series
    .map((s, i) => {
      const name = escapeXml(s.name);
      const body = s.values
        .map((v, j) => {
          const x = left + slot * j + (slot - groupW) / 2 + barW * i;
          const cat = escapeXml(categories[j]);
          if (!Number.isFinite(v)) {
            return `<text class="sorsa-na" x="${num(x + barW / 2)}" y="${num(y0 - 4)}" text-anchor="middle" font-size="9" fill="#777777"><title>${name}, ${cat}: ${formatNumber(v)}</title>n/a</text>`;
          }
          const yv = yOf(ySc, box, v);
          const e = errOf(s, j);
          const tip = `${name}, ${cat}: ${formatNumber(v)}${e ? ` ± ${formatNumber(e)}` : ''}`;
          let out = `<rect class="sorsa-bar" x="${num(x + barW * 0.06)}" y="${num(Math.min(y0, yv))}" width="${num(barW * 0.88)}" height="${num(Math.abs(y0 - yv))}" fill="${colour(i)}"><title>${tip}</title></rect>`;
          if (e) {
            const cx = num(x + barW / 2);
            const cap = Math.min(barW * 0.3, 6);
            const [lo, hi] = [yOf(ySc, box, v - e), yOf(ySc, box, v + e)].map(num);
            out +=
              `<g class="sorsa-error" stroke="#222222" stroke-width="1.2"><title>${tip}</title>` +
              `<line x1="${cx}" y1="${lo}" x2="${cx}" y2="${hi}"/>` +
              `<line x1="${num(x + barW / 2 - cap)}" y1="${lo}" x2="${num(x + barW / 2 + cap)}" y2="${lo}"/>` +
              `<line x1="${num(x + barW / 2 - cap)}" y1="${hi}" x2="${num(x + barW / 2 + cap)}" y2="${hi}"/></g>`;
          }
          return out;
        })
        .join('');
      return `<g class="sorsa-series">${body}</g>`;
    })
    .join('');

  const axes =
    `${yAxis(ySc, box, yLabel)}<g class="sorsa-axis-x">${xLabels}` +
    `<line x1="${box.left}" y1="${num(y0)}" x2="${box.right}" y2="${num(y0)}" stroke="#555555"/></g>`;
  return `${open(W, H, title)}${leg.svg}${axes}${bars}</svg>`;
}
