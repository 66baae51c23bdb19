/**
 * report.html in a real browser: Debian's headless Chromium opens a written report from file://
 * and the test asserts that the charts render, not only that their markup exists. Every chart has
 * a laid-out box, every loss curve a non-zero length, every bar a height in proportion to its
 * value, the series' colours are painted (counted in a screenshot), the page loads nothing and
 * logs no error, a hostile method name stays text, and each chart also renders as a standalone
 * .svg file (as `sorsa drift` writes it), where Chromium parses it as strict XML.
 *
 * Driven by puppeteer-core, which downloads no browser: it is pointed at the system's Chromium
 * (`apt-get install chromium`, as .ci/run does; or $SORSA_CHROMIUM). Without one the suite skips,
 * saying so.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { barChart, lineChart, renderReport } from '../src/report/index.js';

const CHROMIUM = [process.env.SORSA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const SKIP_REASON = 'SKIPPED: no Chromium at $SORSA_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install chromium, as .ci/run does)';
if (process.env.SORSA_CHROMIUM && CHROMIUM !== process.env.SORSA_CHROMIUM) console.warn(`report-browser.test.ts: $SORSA_CHROMIUM=${process.env.SORSA_CHROMIUM} does not exist; using ${CHROMIUM ?? 'none'}`);
if (!CHROMIUM) console.warn(`report-browser.test.ts: ${SKIP_REASON}: report.html is not checked in a real browser`);

const EVIL = `<script>alert("x")</script> & 'q'`;
const METHODS = ['sorsa', 'pissa', 'lora', 'adalora', EVIL];
const LAYERS = Array.from({ length: 6 }, (_, i) => `transformer.h.${i}.attn.c_attn`);
// The palette the charts use (Okabe–Ito): the screenshot must show each series' colour.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00'];
const ACCURACY = [31.2, 29.5, 24.1, 26, 0.5];

/** The report a `sorsa compare` run would write, with a NaN in one loss curve and a hostile name. */
function buildReport(): { html: string; charts: string[] } {
  const series = METHODS.map((name, m) => ({
    name,
    points: Array.from({ length: 200 }, (_, s) => [s * 5, 2.5 * Math.exp(-s / (40 + 10 * m)) + 0.3 + 0.03 * Math.sin(s / 3 + m)] as [number, number]),
  }));
  series[2].points[90] = [450, NaN];
  const charts = [
    lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'loss', series }),
    lineChart({ title: 'Training loss (log)', xLabel: 'step', yLabel: 'loss', series, logY: true }),
    barChart({ title: 'Exact-match accuracy', yLabel: 'accuracy (%)', categories: METHODS, series: [{ name: 'mean ± sd over 3 seeds', values: ACCURACY, errors: [1.1, 2, 1.4, 0.5, 0.2] }] }),
    barChart({ title: 'ΔΣ per layer', yLabel: 'ΔΣ', categories: LAYERS, series: METHODS.map((name, m) => ({ name, values: LAYERS.map((_, i) => 0.01 * (m + 1) * (1 + i / 6)) })) }),
    barChart({ title: 'ΔD per layer', yLabel: 'ΔD', categories: LAYERS, series: METHODS.map((name, m) => ({ name, values: LAYERS.map((_, i) => 1e-4 * (5 - m) * (1 + i)) })) }),
  ];
  const html = renderReport({
    title: `Comparison ${EVIL}`,
    subtitle: 'runs/test',
    sections: [
      ...charts.map((svg, i) => ({ heading: `Chart ${i}`, text: 'What this shows.', svg })),
      { heading: 'Empty', svg: lineChart({ title: 'No eval metric', xLabel: 'step', yLabel: 'accuracy', series: [] }) },
      { heading: 'Table', table: { columns: ['method', 'accuracy'], rows: METHODS.map((m, i) => [m, ACCURACY[i]]) } },
    ],
  });
  return { html, charts };
}

/** A PNG as RGB(A) bytes: enough of the format for Chromium's screenshots (8-bit RGB/RGBA, not interlaced). */
function decodePng(png: Uint8Array): { width: number; height: number; channels: number; data: Uint8Array } {
  const buf = Buffer.from(png);
  const idat: Buffer[] = [];
  let [width, height, depth, type, interlace] = [0, 0, 0, 0, 0];
  for (let off = 8; off < buf.length; ) {
    const len = buf.readUInt32BE(off);
    const kind = buf.toString('ascii', off + 4, off + 8);
    const chunk = buf.subarray(off + 8, off + 8 + len);
    if (kind === 'IHDR') [width, height, depth, type, interlace] = [chunk.readUInt32BE(0), chunk.readUInt32BE(4), chunk[8], chunk[9], chunk[12]];
    if (kind === 'IDAT') idat.push(chunk);
    off += 12 + len;
  }
  if (depth !== 8 || (type !== 2 && type !== 6) || interlace) throw new Error(`decodePng: unsupported PNG (bit depth ${depth}, colour type ${type}, interlace ${interlace})`);
  const channels = type === 6 ? 4 : 3;
  const stride = width * channels;
  const raw = inflateSync(Buffer.concat(idat));
  const data = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? data[y * stride + x - channels] : 0;
      const b = y ? data[(y - 1) * stride + x] : 0;
      const c = x >= channels && y ? data[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      data[y * stride + x] = (v + [0, a, b, (a + b) >> 1, paeth][filter]) & 255;
    }
  }
  return { width, height, channels, data };
}

/** How many pixels of a screenshot are within `tol` of `hex` in every channel. */
function countColour(img: ReturnType<typeof decodePng>, hex: string, tol = 12): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < img.data.length; i += img.channels) {
    if (Math.abs(img.data[i] - r) <= tol && Math.abs(img.data[i + 1] - g) <= tol && Math.abs(img.data[i + 2] - b) <= tol) n++;
  }
  return n;
}

describe.skipIf(!CHROMIUM)(`report.html in headless Chromium${CHROMIUM ? '' : ` (${SKIP_REASON})`}`, () => {
  let browser: Browser;
  let page: Page;
  let dir: string;
  const { html, charts } = buildReport();
  const problems: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    const puppeteer = (await import('puppeteer-core')).default;
    dir = mkdtempSync(join(tmpdir(), 'sorsa-report-'));
    writeFileSync(join(dir, 'report.html'), html);
    charts.forEach((svg, i) => writeFileSync(join(dir, `chart${i}.svg`), svg));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      // Chromium's sandbox needs user namespaces, which containers (and root) often lack; the page
      // is our own local file.
      args: ['--no-sandbox', '--disable-gpu'],
    });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => requests.push(r.url()));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.setViewport({ width: 1000, height: 800 });
    await page.goto(pathToFileURL(join(dir, 'report.html')).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads from file:// with no request but the page itself, no console error, no script, no dialog', async () => {
    expect(requests).toEqual([pathToFileURL(join(dir, 'report.html')).href]);
    expect(problems).toEqual([]);
    const scripts = await page.evaluate(() => document.scripts.length);
    expect(scripts).toBe(0);
    // The hostile name is text in the legend, the table and the title.
    const texts = await page.evaluate(() => [document.title, document.querySelector('h1')!.textContent, document.querySelector('td')?.textContent]);
    expect(texts[0]).toContain('<script>alert("x")</script>');
    expect(texts[1]).toContain('<script>alert("x")</script>');
  });

  it('every chart is laid out with a non-zero box that fits the page, and shrinks with it', async () => {
    const boxes = await page.evaluate(() =>
      Array.from(document.querySelectorAll('svg.sorsa-chart')).map((s) => {
        const r = s.getBoundingClientRect();
        return { w: r.width, h: r.height, body: document.body.clientWidth };
      }),
    );
    expect(boxes.length).toBe(6);
    for (const b of boxes) {
      expect(b.w).toBeGreaterThan(300);
      expect(b.h).toBeGreaterThan(150);
      expect(b.w).toBeLessThanOrEqual(b.body);
    }
    await page.setViewport({ width: 420, height: 800 });
    const narrow = await page.evaluate(() => Array.from(document.querySelectorAll('svg.sorsa-chart')).map((s) => s.getBoundingClientRect().width));
    await page.setViewport({ width: 1000, height: 800 });
    for (const w of narrow) expect(w).toBeLessThanOrEqual(420);
    for (const w of narrow) expect(w).toBeGreaterThan(300);
  });

  it('loss curves have length and extent; the NaN step splits one curve into two pieces', async () => {
    const lines = await page.evaluate(() =>
      Array.from(document.querySelectorAll('path.sorsa-line')).map((p) => {
        const path = p as SVGPathElement;
        const box = path.getBBox();
        return { len: path.getTotalLength(), w: box.width, h: box.height, moves: (path.getAttribute('d')!.match(/M/g) ?? []).length, stroke: getComputedStyle(path).stroke };
      }),
    );
    expect(lines.length).toBe(10); // 5 methods × 2 charts
    for (const l of lines) {
      expect(l.len).toBeGreaterThan(200);
      expect(l.w).toBeGreaterThan(300);
      expect(l.h).toBeGreaterThan(50);
      expect(l.stroke).not.toBe('none');
    }
    expect(lines.map((l) => l.moves)).toEqual([1, 1, 2, 1, 1, 1, 1, 2, 1, 1]);
  });

  it('bars have positive rendered heights in proportion to their values, and are what is hit inside them', async () => {
    const bars = await page.evaluate(() =>
      Array.from(document.querySelectorAll('svg.sorsa-chart')).map((svg) =>
        Array.from(svg.querySelectorAll('rect.sorsa-bar')).map((b) => {
          // Hit testing only sees the viewport; a fifth of the way across misses the error bar's line.
          b.scrollIntoView({ block: 'center' });
          const r = b.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 5, r.top + r.height / 2);
          return { h: r.height, w: r.width, hit: hit === b || hit?.parentElement === b };
        }),
      ),
    );
    expect(bars.map((c) => c.length)).toEqual([0, 0, 5, 30, 30, 0]);
    const acc = bars[2];
    for (const [i, b] of acc.entries()) {
      expect(b.h).toBeGreaterThan(0);
      expect(b.w).toBeGreaterThan(5);
      // Heights from a common zero line: their ratios are the values' ratios (to a pixel's rounding).
      expect(Math.abs(b.h / acc[0].h - ACCURACY[i] / ACCURACY[0])).toBeLessThan(1.5 / acc[0].h + 1e-3);
    }
    for (const b of [...acc, ...bars[3], ...bars[4]]) expect(b.hit).toBe(true);
  });

  it("each series' colour is painted: counted in a screenshot of every chart", async () => {
    const handles = await page.$$('svg.sorsa-chart');
    for (const [k, handle] of handles.slice(0, 5).entries()) {
      await handle.scrollIntoView();
      const img = decodePng(await handle.screenshot({ type: 'png' }));
      expect(img.width).toBeGreaterThan(300);
      const nColours = k === 2 ? 1 : 5;
      for (const c of COLOURS.slice(0, nColours)) expect(countColour(img, c), `chart ${k}, colour ${c}`).toBeGreaterThan(k < 2 ? 150 : 400);
    }
    // The "no data" chart paints none of them.
    const empty = decodePng(await handles[5].screenshot({ type: 'png' }));
    for (const c of COLOURS) expect(countColour(empty, c)).toBe(0);
  });

  it('each chart is strict XML and renders as a standalone .svg file', async () => {
    const parsed = await page.evaluate(
      (list: string[]) => list.map((s) => new DOMParser().parseFromString(s, 'image/svg+xml').getElementsByTagName('parsererror').length),
      charts,
    );
    expect(parsed).toEqual(charts.map(() => 0));
    const file = await browser.newPage();
    try {
      const errors: string[] = [];
      file.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      for (const i of charts.keys()) {
        await file.goto(pathToFileURL(join(dir, `chart${i}.svg`)).href, { waitUntil: 'load' });
        const box = await file.evaluate(() => {
          const root = document.documentElement;
          const r = root.getBoundingClientRect();
          return { tag: root.tagName, w: r.width, h: r.height, parseErrors: document.getElementsByTagName('parsererror').length };
        });
        expect(box).toMatchObject({ tag: 'svg', parseErrors: 0 });
        expect(box.w).toBeGreaterThan(300);
        expect(box.h).toBeGreaterThan(150);
      }
      expect(errors).toEqual([]);
    } finally {
      await file.close();
    }
  });

  it('prints: in print media every chart keeps its box inside the page', async () => {
    await page.emulateMediaType('print');
    const boxes = await page.evaluate(() => Array.from(document.querySelectorAll('svg.sorsa-chart')).map((s) => [s.getBoundingClientRect().width, document.body.clientWidth]));
    await page.emulateMediaType('screen');
    for (const [w, body] of boxes) {
      expect(w).toBeGreaterThan(300);
      expect(w).toBeLessThanOrEqual(body);
    }
    const pdf = await page.pdf({ format: 'A4' });
    expect(Buffer.from(pdf).subarray(0, 5).toString()).toBe('%PDF-');
  });
});
