/**
 * Self-contained report pages: SVG charts and one HTML document, as pure functions from data to
 * strings (no file system, no DOM), so the `sorsa` command line and a browser can both use them.
 *
 * @example
 * ```ts
 * import { report } from '@sorsajs/sorsa';
 * const svg = report.lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'loss', series: [{ name: 'sorsa', points: [[0, 2.3], [1, 1.9]] }] });
 * const html = report.renderReport({ title: 'Run', sections: [{ heading: 'Loss', svg }] });
 * ```
 * @module
 */
export { lineChart, barChart } from './svg.js';
export type { LineChartOptions, LineSeries, BarChartOptions, BarSeries } from './svg.js';
export { renderReport } from './html.js';
export type { ReportOptions, ReportSection, ReportTable } from './html.js';
export { formatNumber } from './format.js';
export { escapeXml } from './escape.js';
export { linearScale, logScale } from './ticks.js';
export type { Scale } from './ticks.js';
