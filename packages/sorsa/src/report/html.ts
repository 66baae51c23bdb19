/**
 * One self-contained HTML page from titled sections of text, charts and tables.
 * @module
 */
import { escapeXml } from './escape.js';
import { formatNumber } from './format.js';

/**
 * A table: a header row and rows of strings or numbers, one cell per column.
 * @example `{ columns: ['method', 'accuracy'], rows: [['sorsa', 31.25], ['lora', 24.5]] }`
 */
export interface ReportTable {
  /** Column headings. */
  columns: readonly string[];
  /** Rows of exactly `columns.length` cells; numbers are formatted by `formatNumber`. */
  rows: readonly (readonly (string | number)[])[];
}

/**
 * One part of a report, rendered in this order: heading, text, chart, table.
 * @example `{ heading: 'Training loss', text: 'Smoothed over 10 steps.', svg: lineChart(options) }`
 */
export interface ReportSection {
  /** The section's `<h2>`. */
  heading: string;
  /** Plain text (not HTML: it is escaped); a blank line starts a new paragraph. */
  text?: string;
  /** A chart from `lineChart` or `barChart`, inserted as it is (it must be markup those built). */
  svg?: string;
  /** A table of results. */
  table?: ReportTable;
}

/**
 * What `renderReport` renders.
 * @example `{ title: 'runs/demo', subtitle: '2026-01-01', sections: [{ heading: 'Results', table }] }`
 */
export interface ReportOptions {
  /** The page's `<title>` and `<h1>`. */
  title: string;
  /** A line under the title (the run folder, a date). */
  subtitle?: string;
  /** The body, in order. */
  sections: readonly ReportSection[];
}

// No script, font, image or stylesheet from anywhere: the page must read the same from file://,
// offline, years later. The policy makes browsers enforce that (and that no script runs) even if
// a chart were built by hand with a URL in it; styles are inline, hence 'unsafe-inline'.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 960px; padding: 24px 20px 48px; font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; color: #1a1a1a; background: #ffffff; }
header { border-bottom: 2px solid #0072B2; margin-bottom: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
.subtitle { color: #555555; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 32px 0 8px; }
section p { margin: 0 0 10px; max-width: 75ch; }
figure { margin: 12px 0; }
figure svg { display: block; width: 100%; height: auto; }
.table-wrap { overflow-x: auto; margin: 12px 0; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #dddddd; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #888888; background: #f5f7fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) td { background: #fafafa; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  section, figure, table { break-inside: avoid; }
  h2 { break-after: avoid; }
  .table-wrap { overflow: visible; }
}
@page { margin: 15mm; }
`;

/**
 * A complete, self-contained HTML document: inline CSS only, no script, no external URL of any
 * kind (a Content-Security-Policy forbids them), so it opens from file:// and prints cleanly. All
 * text is escaped; numbers in tables are shown with four significant digits (`formatNumber`) and
 * right-aligned. Pure: it returns the page, and the caller writes it.
 *
 * @example
 * ```ts
 * const html = renderReport({
 *   title: 'SORSA vs LoRA', subtitle: 'runs/2026-01-01T00-00-00',
 *   sections: [
 *     { heading: 'Training loss', svg: lineChart({ title: 'Loss', xLabel: 'step', yLabel: 'loss', series }) },
 *     { heading: 'Results', table: { columns: ['method', 'accuracy'], rows: [['sorsa', 31.25], ['lora', 24.5]] } },
 *   ],
 * });
 * ```
 */
export function renderReport(options: ReportOptions): string {
  const { title, subtitle, sections } = options;
  if (!Array.isArray(sections)) throw new Error(`renderReport: sections must be an array, got ${typeof sections}`);
  const body = sections.map((s, i) => section(s, i)).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeXml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${escapeXml(title)}</h1>${subtitle ? `<p class="subtitle">${escapeXml(subtitle)}</p>` : ''}</header>
<main>
${body}
</main>
</body>
</html>
`;
}

function section(s: ReportSection, i: number): string {
  const where = `renderReport: section ${i} (${JSON.stringify(s?.heading)})`;
  if (typeof s?.heading !== 'string') throw new Error(`${where} needs a string heading`);
  const parts = [`<h2>${escapeXml(s.heading)}</h2>`];
  if (s.text !== undefined) {
    for (const para of s.text.split(/\n\s*\n/)) if (para.trim()) parts.push(`<p>${escapeXml(para.trim())}</p>`);
  }
  if (s.svg !== undefined) {
    // A cheap guard against passing arbitrary HTML where a chart goes; the charts' own text is escaped.
    if (!/^<svg[\s>]/.test(s.svg) || !s.svg.endsWith('</svg>')) throw new Error(`${where}: svg must be one <svg>…</svg> element from lineChart or barChart`);
    parts.push(`<figure>${s.svg}</figure>`);
  }
  if (s.table !== undefined) parts.push(table(s.table, where));
  return `<section>${parts.join('\n')}</section>`;
}

function table(t: ReportTable, where: string): string {
  const { columns, rows } = t;
  if (!Array.isArray(columns) || !Array.isArray(rows)) throw new Error(`${where}: table needs columns and rows arrays`);
  rows.forEach((r, k) => {
    if (!Array.isArray(r) || r.length !== columns.length) {
      throw new Error(`${where}: table row ${k} has ${Array.isArray(r) ? r.length : 'no'} cells for ${columns.length} columns`);
    }
  });
  // A column whose cells are all numbers is right-aligned, header included.
  const numeric = columns.map((_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number'));
  const cls = (c: number): string => (numeric[c] ? ' class="num"' : '');
  const head = columns.map((c, k) => `<th scope="col"${cls(k)}>${escapeXml(c)}</th>`).join('');
  const cell = (v: string | number, k: number): string =>
    `<td${typeof v === 'number' ? ' class="num"' : cls(k)}>${escapeXml(typeof v === 'number' ? formatNumber(v) : String(v))}</td>`;
  const body = rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('\n');
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}
