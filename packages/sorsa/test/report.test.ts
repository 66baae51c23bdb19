/**
 * The report builders' output, checked as text: the SVG is well-formed XML, untrusted names are
 * escaped, ticks are nice numbers that cover the data, non-finite points break lines, bars and
 * points sit where the axis labels say, and the page references nothing outside itself. The
 * rendering itself is checked in a real browser by report-browser.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { barChart, escapeXml, formatNumber, lineChart, linearScale, logScale, renderReport } from '../src/report/index.js';
import { assertWellFormedXml } from './report-xml.js';

const EVIL = `<script>alert("x")</script> & 'q' </svg><img src=x onerror=alert(1)>`;
const SVG_NS = 'xmlns="http://www.w3.org/2000/svg"';

/** External references of any kind, once the SVG namespace name (an identifier, never fetched) is removed. */
function externalRefs(doc: string): string[] {
  const s = doc.split(SVG_NS).join('');
  return [/[a-z][a-z0-9+.-]*:\/\//gi, /\b(?:src|href|xlink:href)\s*=\s*"(?!data:)/gi, /url\(/gi, /@import/gi, /<script/gi, /<iframe|<object|<embed|<link(?![^>]*href="data:)/gi]
    .flatMap((re) => s.match(re) ?? []);
}

/** Attribute `name` of every element matching `tag` and `cls`, as parsed from the markup. */
function elements(svg: string, tag: string, cls: string): Record<string, string>[] {
  const re = new RegExp(`<${tag} class="${cls}"([^>]*)>`, 'g');
  return [...svg.matchAll(re)].map((m) => Object.fromEntries([...m[1].matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
}

/** The y axis as drawn: label value → y coordinate, read from the tick texts. */
function yTicks(svg: string): [number, number][] {
  const axis = /<g class="sorsa-axis-y">(.*?)<\/g>/.exec(svg)![1];
  return [...axis.matchAll(/<text x="[^"]*" y="([^"]*)" dy="0.32em"[^>]*>([^<]*)<\/text>/g)].map((m) => [Number(m[2]), Number(m[1])]);
}

/** The x axis as drawn: label value → x coordinate. */
function xTicks(svg: string): [number, number][] {
  const axis = /<g class="sorsa-axis-x">(.*?)<\/g>/.exec(svg)![1];
  return [...axis.matchAll(/<text x="([^"]*)" y="[^"]*" text-anchor="middle"[^>]*>([^<]*)<\/text>/g)]
    .map((m): [number, number] => [Number(m[2]), Number(m[1])])
    .filter((t) => Number.isFinite(t[0])); // not the axis title
}

/** Maps a coordinate back to a value by linear interpolation between the first and last labelled tick. */
function invert(ticks: [number, number][], coord: number, log = false): number {
  const f = (v: number): number => (log ? Math.log10(v) : v);
  const [[v0, c0], [v1, c1]] = [ticks[0], ticks[ticks.length - 1]];
  const t = f(v0) + ((coord - c0) / (c1 - c0)) * (f(v1) - f(v0));
  return log ? 10 ** t : t;
}

function pathPoints(d: string): { subpaths: number; pts: [number, number][] } {
  const cmds = [...d.matchAll(/([ML])(-?[\d.]+) (-?[\d.]+)/g)];
  expect(cmds.map((m) => m[0]).join('')).toBe(d); // nothing else in the path (no NaN, no stray text)
  return { subpaths: cmds.filter((m) => m[1] === 'M').length, pts: cmds.map((m) => [Number(m[2]), Number(m[3])]) };
}

describe('escapeXml', () => {
  it('escapes the five XML specials and replaces characters XML cannot hold', () => {
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    expect(escapeXml('a\u0000b\u001Fc\uFFFEd')).toBe('a\uFFFDb\uFFFDc\uFFFDd');
    expect(escapeXml('lone \uD800 high, lone \uDC00 low')).toBe('lone \uFFFD high, lone \uFFFD low');
    expect(escapeXml('tab\tnl\n ΔΣ 🙂')).toBe('tab\tnl\n ΔΣ 🙂'); // allowed characters and surrogate pairs stay
  });
});

describe('formatNumber', () => {
  it('prints short, exact-looking numbers', () => {
    expect(formatNumber(0.1 + 0.2)).toBe('0.3');
    expect(formatNumber(2 / 3)).toBe('0.6667');
    expect(formatNumber(12345.678)).toBe('12346');
    expect(formatNumber(9999.7)).toBe('10000');
    expect(formatNumber(1234567)).toBe('1234567');
    expect(formatNumber(0.000012)).toBe('1.2e-5');
    expect(formatNumber(-0)).toBe('0');
    expect(formatNumber(1e20)).toBe('1e20');
    expect([NaN, Infinity, -Infinity].map((x) => formatNumber(x))).toEqual(['NaN', '∞', '−∞']);
    expect(formatNumber(Math.PI, 2)).toBe('3.1');
    expect(() => formatNumber(1, 0)).toThrow(/formatNumber: digits .* got 0/);
  });

  it('keeps 4 significant digits: the printed value is within half a unit of the 4th digit', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e12, max: 1e12, noNaN: true }), (x) => {
        const s = formatNumber(x);
        expect(s).toMatch(/^-?\d+(\.\d+)?(e-?\d+)?$/);
        expect(s.replace(/^-?0\.0*|^-|\.|e.*$/g, '').replace(/^0+/, '').length).toBeLessThanOrEqual(Math.max(4, String(Math.round(Math.abs(x))).length));
        const abs = Math.abs(x);
        // Half a unit in the 4th significant digit, or 0.5 where big numbers are rounded to integers.
        const tol = abs === 0 ? 0 : Math.max(abs >= 1e4 ? 0.5 : 0, 0.5 * 10 ** (Math.floor(Math.log10(abs)) - 3)) * (1 + 1e-12);
        expect(Math.abs(Number(s) - x)).toBeLessThanOrEqual(tol);
      }),
      { seed: 13, numRuns: 2000 },
    );
  });
});

describe('scales', () => {
  const isNiceStep = (step: number): boolean => {
    const e = Math.floor(Math.log10(step) + 1e-9);
    const f = step / 10 ** e;
    return [1, 2, 5, 10].some((n) => Math.abs(f - n) < 1e-6);
  };

  it('linear: a few nice, evenly spaced ticks covering the range, labelled exactly', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e7, max: 1e7, noNaN: true }), fc.double({ min: 1e-6, max: 1e7, noNaN: true }), (lo, width) => {
        // Narrower than 1e-6 of its magnitude, a range's tick spacing drowns in double rounding.
        fc.pre(width >= Math.abs(lo) * 1e-6);
        const hi = lo + width;
        const s = linearScale(lo, hi, 5);
        // Covering, up to a data point within float noise of a tick (which then takes no extra tick).
        const step0 = s.ticks[1] - s.ticks[0];
        expect(s.min).toBeLessThanOrEqual(lo + step0 * 1e-9);
        expect(s.max).toBeGreaterThanOrEqual(hi - step0 * 1e-9);
        expect(s.ticks.length).toBeGreaterThanOrEqual(3);
        expect(s.ticks.length).toBeLessThanOrEqual(12);
        const step = s.ticks[1] - s.ticks[0];
        expect(isNiceStep(step)).toBe(true);
        // Even spacing, up to the rounding of each tick to the nearest double.
        const tol = (t: number): number => step * 1e-9 + Math.abs(t) * 4 * Number.EPSILON;
        for (let k = 1; k < s.ticks.length; k++) expect(Math.abs(s.ticks[k] - s.ticks[k - 1] - step)).toBeLessThanOrEqual(tol(s.ticks[k]));
        // Labels parse back to their ticks, and none carries float noise such as 0.30000000000000004.
        s.labels.forEach((l, k) => {
          expect(Math.abs(Number(l) - s.ticks[k])).toBeLessThanOrEqual(tol(s.ticks[k]));
          expect(l.replace(/e.*$/, '').length).toBeLessThanOrEqual(12);
        });
        // The range fills most of the axis: no more than one step of slack on each side.
        expect(lo - s.min).toBeLessThanOrEqual(step * (1 + 1e-9));
        expect(s.max - hi).toBeLessThanOrEqual(step * (1 + 1e-9));
      }),
      { seed: 14, numRuns: 1000 },
    );
  });

  it('linear: examples a reader would expect', () => {
    expect(linearScale(0.13, 0.92).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(linearScale(-0.3, 0.1).labels).toEqual(['-0.3', '-0.2', '-0.1', '0', '0.1']);
    expect(linearScale(0, 300, 7).labels).toEqual(['0', '50', '100', '150', '200', '250', '300']);
    expect(linearScale(1e-7, 5e-7).labels).toEqual(['1e-7', '2e-7', '3e-7', '4e-7', '5e-7']);
    expect(linearScale(5, 5).ticks[0]).toBeLessThan(5); // a flat series gets a visible range
    expect(() => linearScale(NaN, 1)).toThrow(/linearScale: need finite lo <= hi, got \[NaN, 1\]/);
  });

  it('log: ticks 1-2-5 within a few decades, powers of ten over many, domain covering the data', () => {
    expect(logScale(1.2, 4.5).ticks).toEqual([1, 2, 5]);
    expect(logScale(0.25, 3).ticks).toEqual([0.2, 0.5, 1, 2, 5]);
    expect(logScale(3e-4, 20).labels).toEqual(['1e-4', '0.001', '0.01', '0.1', '1', '10', '100']);
    expect(logScale(1, 1e7).labels).toEqual(['1', '10', '100', '1000', '10000', '1e5', '1e6', '1e7']);
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 1e12, noNaN: true }), fc.double({ min: 1, max: 1e6, noNaN: true }), (lo, ratio) => {
        const s = logScale(lo, lo * ratio);
        expect(s.min).toBeLessThanOrEqual(lo * (1 + 1e-12));
        expect(s.max).toBeGreaterThanOrEqual(lo * ratio * (1 - 1e-12));
        expect(s.ticks.length).toBeGreaterThanOrEqual(2);
        expect(s.ticks.length).toBeLessThanOrEqual(12);
        s.ticks.forEach((t, k) => expect(Number(s.labels[k])).toBe(t));
      }),
      { seed: 15, numRuns: 500 },
    );
    expect(() => logScale(0, 1)).toThrow(/logScale: need 0 < lo/);
  });
});

describe('lineChart', () => {
  const series = [
    { name: 'sorsa', points: [[0, 2], [10, 1.5], [20, 1.2], [30, 1]] as [number, number][] },
    { name: 'lora', points: [[0, 2], [10, 1.8], [15, NaN], [20, 1.6], [25, Infinity], [30, 1.4]] as [number, number][] },
  ];

  it('is well-formed XML with one path per series, placed where its axes say', () => {
    const svg = lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'loss', series });
    assertWellFormedXml(svg);
    expect(svg).toMatch(/^<svg [^>]*viewBox="0 0 \d+ \d+" width="100%"/);
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    const paths = elements(svg, 'path', 'sorsa-line');
    expect(paths.length).toBe(2);
    expect(new Set(paths.map((p) => p.stroke)).size).toBe(2);
    const xs = xTicks(svg);
    const ys = yTicks(svg);
    const { subpaths, pts } = pathPoints(paths[0].d);
    expect(subpaths).toBe(1);
    pts.forEach(([px, py], k) => {
      const [x, y] = series[0].points[k];
      expect(Math.abs(invert(xs, px) - x)).toBeLessThan(0.05);
      expect(Math.abs(invert(ys, py) - y)).toBeLessThan(0.005);
    });
    // Tooltips name the series and value.
    expect(svg).toContain('<title>sorsa: step = 10, loss = 1.5</title>');
  });

  it('NaN and Infinity break the line instead of corrupting the path or the axes', () => {
    const svg = lineChart({ title: 'Training loss', xLabel: 'step', yLabel: 'loss', series });
    const { subpaths, pts } = pathPoints(elements(svg, 'path', 'sorsa-line')[1].d);
    expect(subpaths).toBe(3); // [0, 10] | [20] | [30]
    expect(pts.length).toBe(4);
    // The two isolated points (one-point runs draw no line) get visible markers.
    expect(elements(svg, 'circle', 'sorsa-point').filter((c) => c.r === '3.5').length).toBe(2);
    expect(Math.max(...yTicks(svg).map((t) => t[0]))).toBeLessThanOrEqual(2.5);
  });

  it('log scale: ticks are powers of ten or 1-2-5, points with y <= 0 break the line', () => {
    const svg = lineChart({ title: 'L', xLabel: 'step', yLabel: 'loss', logY: true, series: [{ name: 'a', points: [[0, 100], [1, 10], [2, 0], [3, 1], [4, 0.01]] }] });
    assertWellFormedXml(svg);
    expect(svg).toContain('loss (log scale)');
    const ys = yTicks(svg);
    expect(ys.map((t) => t[0])).toEqual([0.01, 0.1, 1, 10, 100]);
    const { subpaths, pts } = pathPoints(elements(svg, 'path', 'sorsa-line')[0].d);
    expect(subpaths).toBe(2);
    [100, 10, 1, 0.01].forEach((y, k) => expect(Math.abs(Math.log10(invert(ys, pts[k][1], true) / y))).toBeLessThan(0.005));
  });

  it('says "no data" for no series, only non-finite points, or nothing positive on a log scale', () => {
    for (const [opts, why] of [
      [{ series: [] }, 'no series'],
      [{ series: [{ name: 'a', points: [[0, NaN], [1, Infinity]] }] }, 'no finite values'],
      [{ series: [{ name: 'a', points: [[0, 0], [1, -1]] }], logY: true }, 'no finite positive values for a log scale'],
    ] as const) {
      const svg = lineChart({ title: 'T', xLabel: 'x', yLabel: 'y', ...opts });
      assertWellFormedXml(svg);
      expect(svg).toContain(`no data: ${why}`);
      expect(svg).not.toContain('sorsa-line');
    }
    // A series with nothing to draw beside one that has: named in the legend as such.
    expect(lineChart({ title: 'T', xLabel: 'x', yLabel: 'y', series: [...series, { name: 'dead', points: [[0, NaN]] }] })).toContain('dead (no finite points)');
  });

  it('escapes every name, label and title: nothing injects markup', () => {
    const svg = lineChart({ title: EVIL, xLabel: EVIL, yLabel: EVIL, series: [{ name: EVIL, points: [[0, 1], [1, 2]] }] });
    assertWellFormedXml(svg);
    expect(svg).not.toMatch(/<script|<img|onerror=alert\(1\)>/);
    expect(svg).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;');
    expect(externalRefs(svg)).toEqual([]);
  });

  it('draws long runs: 5 × 60 000 points (more than Math.min(...v) takes), a NaN every 1000 steps', () => {
    const series = Array.from({ length: 5 }, (_, m) => ({
      name: `m${m}`,
      points: Array.from({ length: 60_000 }, (_, i) => [i, i % 1000 === 999 ? NaN : 1 + m + 1 / (i + 1)] as [number, number]),
    }));
    const t0 = performance.now();
    const svg = lineChart({ title: 'T', xLabel: 'step', yLabel: 'loss', series });
    expect(performance.now() - t0).toBeLessThan(5000); // under 1 s here, on a shared 2-core machine
    const paths = elements(svg, 'path', 'sorsa-line');
    expect(paths.length).toBe(5);
    expect(paths[0].d.split('M').length - 1).toBe(60);
  });

  it('a single point draws its marker on a padded axis', () => {
    const svg = lineChart({ title: 'T', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[3, 0.5]] }] });
    assertWellFormedXml(svg);
    expect(elements(svg, 'circle', 'sorsa-point').map((c) => c.r)).toEqual(['3.5']);
    const ys = yTicks(svg).map((t) => t[0]);
    expect(ys[0]).toBeLessThan(0.5);
    expect(ys[ys.length - 1]).toBeGreaterThan(0.5);
  });

  it('thins markers on long series but keeps the last point', () => {
    const points = Array.from({ length: 1000 }, (_, i) => [i, 1 / (i + 1)] as [number, number]);
    const svg = lineChart({ title: 'T', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points }] });
    const circles = elements(svg, 'circle', 'sorsa-point');
    expect(circles.length).toBeLessThanOrEqual(61);
    expect(circles.length).toBeGreaterThanOrEqual(40);
    expect(svg).toContain('<title>a: x = 999, y = 0.001</title>');
    expect(pathPoints(elements(svg, 'path', 'sorsa-line')[0].d).pts.length).toBe(1000);
  });
});

describe('barChart', () => {
  it('bars start at zero with heights in proportion to the values, error bars ± the given spread', () => {
    const svg = barChart({
      title: 'Accuracy', yLabel: 'accuracy (%)', categories: ['sorsa', 'pissa', 'lora'],
      series: [{ name: 'mean', values: [31.2, 29.5, 24.1], errors: [1.1, 2, 1.4] }, { name: 'best', values: [33, -4, 25], errors: [NaN, 0, 0.5] }],
    });
    assertWellFormedXml(svg);
    const ys = yTicks(svg);
    expect(ys[0][0]).toBeLessThanOrEqual(-4);
    expect(ys[ys.length - 1][0]).toBeGreaterThanOrEqual(33);
    const bars = elements(svg, 'rect', 'sorsa-bar');
    expect(bars.length).toBe(6);
    const zero = ys.find((t) => t[0] === 0)![1];
    const values = [31.2, 29.5, 24.1, 33, -4, 25];
    bars.forEach((b, k) => {
      const top = Number(b.y);
      const bottom = top + Number(b.height);
      const v = values[k];
      // One edge on the zero line, the other where the axis puts the value.
      expect(Math.abs((v >= 0 ? bottom : top) - zero)).toBeLessThan(0.02);
      expect(Math.abs(invert(ys, v >= 0 ? top : bottom) - v)).toBeLessThan(0.05);
    });
    // Error bars for finite, non-zero errors only: 3 + 1.
    const errs = [...svg.matchAll(/<g class="sorsa-error"[^>]*><title>[^<]*<\/title><line x1="[^"]*" y1="([^"]*)" x2="[^"]*" y2="([^"]*)"\/>/g)];
    expect(errs.length).toBe(4);
    [[31.2, 1.1], [29.5, 2], [24.1, 1.4], [25, 0.5]].forEach(([v, e], k) => {
      expect(Math.abs(invert(ys, Number(errs[k][1])) - (v - e))).toBeLessThan(0.05);
      expect(Math.abs(invert(ys, Number(errs[k][2])) - (v + e))).toBeLessThan(0.05);
    });
    expect(svg).toContain('<title>mean, pissa: 29.5 ± 2</title>');
  });

  it('non-finite values draw an n/a mark, not a bar; no finite value at all is "no data"', () => {
    const svg = barChart({ title: 'T', yLabel: 'y', categories: ['a', 'b'], series: [{ name: 's', values: [1, NaN] }] });
    expect(elements(svg, 'rect', 'sorsa-bar').length).toBe(1);
    expect(svg).toContain('>n/a</text>');
    expect(svg).not.toMatch(/"NaN"|"Infinity"/);
    expect(barChart({ title: 'T', yLabel: 'y', categories: ['a'], series: [{ name: 's', values: [NaN] }] })).toContain('no data: no finite values');
    expect(barChart({ title: 'T', yLabel: 'y', categories: [], series: [] })).toContain('no data: no categories');
    expect(barChart({ title: 'T', yLabel: 'y', categories: ['a'], series: [] })).toContain('no data: no series');
  });

  it('many long layer names: labels rotate, are clipped with the full name as a tooltip, and stay on the canvas', () => {
    const layers = Array.from({ length: 24 }, (_, i) => `model.transformer.h.${i}.attn.c_attn.very.long.suffix`);
    const svg = barChart({ title: 'ΔΣ per layer', yLabel: 'ΔΣ', categories: layers, series: ['sorsa', 'lora', 'full'].map((name, m) => ({ name, values: layers.map((_, i) => (m + 1) * 1e-3 * (i + 1)) })) });
    assertWellFormedXml(svg);
    expect(svg).toContain('rotate(-35');
    expect(svg).toContain(`<title>${layers[23]}</title>`);
    expect(svg).toContain('model.transformer.h.23.attn.c_a…');
    const [, w] = /viewBox="0 0 (\d+) (\d+)"/.exec(svg)!.map(Number);
    const bars = elements(svg, 'rect', 'sorsa-bar');
    expect(bars.length).toBe(72);
    for (const b of bars) expect(Number(b.width)).toBeGreaterThanOrEqual(9); // the viewBox widens rather than squeeze bars
    expect(Math.max(...bars.map((b) => Number(b.x) + Number(b.width)))).toBeLessThanOrEqual(w);
  });

  it('rejects mismatched lengths and negative error bars, naming the series', () => {
    expect(() => barChart({ title: 'T', yLabel: 'y', categories: ['a', 'b'], series: [{ name: 'lora', values: [1] }] })).toThrow('barChart: series 0 ("lora") has 1 values for 2 categories');
    expect(() => barChart({ title: 'T', yLabel: 'y', categories: ['a'], series: [{ name: 'x', values: [1], errors: [1, 2] }] })).toThrow('barChart: series 0 ("x") has 2 errors for 1 categories');
    expect(() => barChart({ title: 'T', yLabel: 'y', categories: ['a'], series: [{ name: 'x', values: [1], errors: [-1] }] })).toThrow(/error bar 0 \("a"\) is negative: -1/);
  });

  it('escapes category and series names', () => {
    const svg = barChart({ title: EVIL, yLabel: EVIL, categories: [EVIL, 'b'], series: [{ name: EVIL, values: [1, 2], errors: [0.1, 0.2] }] });
    assertWellFormedXml(svg);
    expect(svg).not.toMatch(/<script|<img/);
    expect(externalRefs(svg)).toEqual([]);
  });
});

describe('renderReport', () => {
  const chart = lineChart({ title: 'Loss', xLabel: 'step', yLabel: 'loss', series: [{ name: 'sorsa', points: [[0, 1], [1, 0.5]] }] });

  it('is one self-contained page: inline CSS, a CSP forbidding all loads and scripts, no external reference', () => {
    const html = renderReport({
      title: 'Run', subtitle: 'runs/x',
      sections: [
        { heading: 'Loss', text: 'First.\n\nSecond.', svg: chart },
        { heading: 'Table', table: { columns: ['method', 'accuracy', 'note'], rows: [['sorsa', 0.1 + 0.2, 'ok'], ['lora', 2 / 3, 5]] } },
      ],
    });
    expect(html.startsWith('<!DOCTYPE html>\n<html lang="en">')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
    expect(html).toContain('<style>');
    expect(html).toContain('<p>First.</p>');
    expect(html).toContain('<p>Second.</p>');
    expect(html).toContain(chart);
    expect(externalRefs(html)).toEqual([]);
    expect(html).not.toContain('0.30000000000000004');
    expect(html).toContain('<td class="num">0.3</td>');
    expect(html).toContain('<td class="num">0.6667</td>');
    // A numeric column right-aligns its header; a mixed one only its number cells.
    expect(html).toContain('<th scope="col" class="num">accuracy</th>');
    expect(html).toContain('<th scope="col">note</th>');
    expect(html).toContain('<td class="num">5</td>');
  });

  it('escapes title, subtitle, headings, text and cells', () => {
    const html = renderReport({ title: EVIL, subtitle: EVIL, sections: [{ heading: EVIL, text: EVIL, table: { columns: [EVIL], rows: [[EVIL]] } }] });
    expect(html).not.toMatch(/<script|<img/);
    expect(html.split('&lt;script&gt;').length - 1).toBe(7); // <title>, <h1>, subtitle, <h2>, <p>, <th>, <td>
  });

  it('rejects anything but one chart where a chart goes, and ragged tables, naming the section', () => {
    expect(() => renderReport({ title: 'T', sections: [{ heading: 'Loss', svg: '<script>alert(1)</script>' }] })).toThrow('renderReport: section 0 ("Loss"): svg must be one <svg>…</svg> element');
    expect(() => renderReport({ title: 'T', sections: [{ heading: 'R', table: { columns: ['a', 'b'], rows: [['x']] } }] })).toThrow('renderReport: section 0 ("R"): table row 0 has 1 cells for 2 columns');
  });
});
