/**
 * The parts every chart shares: palette, text sizing, the outer `<svg>`, title, legend, axes and
 * the "no data" placeholder. Internal to the report folder: `svg.ts` composes them.
 * @module
 */
import { escapeXml } from './escape.js';
import { position, type Scale } from './ticks.js';

/**
 * Okabe and Ito's palette, which readers with any common colour-vision deficiency can tell apart,
 * ordered for a white background (its yellow, the faintest, last).
 * @example `PALETTE[0] // '#0072B2' (blue)`
 */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'] as const;
/** Dash patterns cycled with the colours, so lines differ in print and in greyscale too. @example `DASHES[1] // '7 4'` */
export const DASHES = ['', '7 4', '2 3', '9 3 2 3', '4 4'] as const;
/** Series `i`'s colour. @example `colour(0) // '#0072B2'` */
export const colour = (i: number): string => PALETTE[i % PALETTE.length];
/** Series `i`'s dash pattern (`''` is solid). @example `dash(1) // '7 4'` */
export const dash = (i: number): string => DASHES[i % DASHES.length];

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
/** Font size of tick labels and legend, in viewBox units. @example `textWidth('loss', FONT_SIZE)` */
export const FONT_SIZE = 12;

/**
 * A coordinate with two decimals, which is finer than a pixel at any sensible zoom and keeps paths short.
 * @example `num(1.23456) // '1.23'`
 */
export const num = (v: number): string => String(Math.round(v * 100) / 100);

/**
 * An estimate of `text`'s width at `size`: SVG text cannot be measured without a browser, and an
 * average glyph of a sans-serif face is about 0.6 em wide.
 * @example `textWidth('loss', 12) // 28.8`
 */
export const textWidth = (text: string, size = FONT_SIZE): number => [...text].length * size * 0.6;

/**
 * `text` cut to `max` characters with an ellipsis, so a long layer path cannot push the chart apart.
 * @example `clip('transformer.h.11.attn.c_attn', 12) // 'transformer…'`
 */
export function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * Opens a chart: the `<svg>` with a fixed viewBox and a width that follows its container, an
 * accessible name and tooltip, a white background and the title.
 * @example `open(720, 400, 'Loss')`
 */
export function open(width: number, height: number, title: string): string {
  const t = escapeXml(title);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="sorsa-chart" viewBox="0 0 ${width} ${height}" width="100%" ` +
    `style="max-width:${width}px;height:auto" role="img" aria-label="${t}" font-family="${FONT}" font-size="${FONT_SIZE}">` +
    `<title>${t}</title><rect width="${width}" height="${height}" fill="#ffffff"/>` +
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="16" font-weight="600" fill="#111111">${escapeXml(clip(title, Math.floor((width - 32) / textWidth('x', 16))))}</text>`
  );
}

/** One legend entry: its name and how its swatch looks. @example `{ name: 'lora', colour: colour(2), dash: dash(2), shape: 'line' }` */
export interface LegendItem {
  name: string;
  colour: string;
  dash?: string;
  shape: 'line' | 'box';
}

/**
 * A legend laid out in rows under the title, wrapping at `width`; returns the markup and the
 * height it takes.
 * @example `legend([{ name: 'sorsa', colour: '#0072B2', shape: 'line' }], 40, 720)`
 */
export function legend(items: readonly LegendItem[], top: number, width: number): { svg: string; height: number } {
  const row = 20;
  const parts: string[] = [];
  let x = 16;
  let y = top;
  for (const it of items) {
    const label = clip(it.name, 40);
    const w = 28 + textWidth(label) + 18;
    if (x > 16 && x + w > width - 16) {
      x = 16;
      y += row;
    }
    const swatch =
      it.shape === 'line'
        ? `<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${it.colour}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`
        : `<rect x="${x + 4}" y="${y - 6}" width="14" height="12" fill="${it.colour}"/>`;
    parts.push(`<g class="sorsa-legend-item">${swatch}<text x="${x + 28}" y="${y + 4}" fill="#222222"><title>${escapeXml(it.name)}</title>${escapeXml(label)}</text></g>`);
    x += w;
  }
  return { svg: `<g class="sorsa-legend">${parts.join('')}</g>`, height: items.length ? y - top + row : 0 };
}

/** The plotting area in viewBox units. @example `{ left: 60, top: 70, right: 696, bottom: 368 }` */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/**
 * Maps a value on `scale` to a y coordinate in `box` (the top of the box is the scale's max).
 * @example `yOf(linearScale(0, 1), { left: 0, top: 0, right: 100, bottom: 100 }, 0.25) // 75`
 */
export const yOf = (scale: Scale, box: Box, v: number): number => box.bottom - position(scale, v) * (box.bottom - box.top);

/**
 * Horizontal grid lines and labelled ticks of the y axis, its title (rotated, left of the tick labels) and
 * the axis line.
 * @example `yAxis(linearScale(0, 1), box, 'loss')`
 */
export function yAxis(scale: Scale, box: Box, label: string): string {
  const parts = scale.ticks.map((t, i) => {
    const y = num(yOf(scale, box, t));
    return (
      `<line x1="${box.left}" y1="${y}" x2="${box.right}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>` +
      `<text x="${box.left - 6}" y="${y}" dy="0.32em" text-anchor="end" fill="#333333">${escapeXml(scale.labels[i])}</text>`
    );
  });
  const mid = num((box.top + box.bottom) / 2);
  // Beside the tick labels, not at the canvas edge: a bar chart widens its left margin for rotated names.
  const x = num(box.left - 6 - Math.max(...scale.labels.map((l) => textWidth(l))) - 12);
  return (
    `<g class="sorsa-axis-y">${parts.join('')}` +
    `<line x1="${box.left}" y1="${box.top}" x2="${box.left}" y2="${box.bottom}" stroke="#555555" stroke-width="1"/>` +
    `<text transform="translate(${x} ${mid}) rotate(-90)" text-anchor="middle" fill="#111111">${escapeXml(label)}</text></g>`
  );
}

/**
 * The width the y axis's tick labels and title need left of the plot.
 * @example `yAxisWidth(linearScale(0, 1000)) // 66.8`
 */
export const yAxisWidth = (scale: Scale): number => 38 + Math.max(...scale.labels.map((l) => textWidth(l)));

/**
 * A chart that says there is nothing to draw (and why, if `reason` is given), rather than an empty
 * frame or an exception: a run with no finite loss still gets a report.
 * @example `noData('Loss', 'no finite values')`
 */
export function noData(title: string, reason?: string): string {
  const w = 720;
  const h = 240;
  return (
    open(w, h, title) +
    `<rect x="16" y="44" width="${w - 32}" height="${h - 60}" fill="none" stroke="#cccccc" stroke-dasharray="4 4"/>` +
    `<text class="sorsa-empty" x="${w / 2}" y="${h / 2 + 8}" text-anchor="middle" font-size="16" fill="#555555">no data${reason ? `: ${escapeXml(reason)}` : ''}</text></svg>`
  );
}
