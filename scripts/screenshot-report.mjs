#!/usr/bin/env node
/* global console, process */
/**
 * Takes the README's picture of a comparison report: opens a report.html in Debian's headless
 * Chromium (puppeteer-core, no browser download) and saves a PNG of its top part.
 *
 *   node scripts/screenshot-report.mjs runs/latest/report.html docs/images/compare-report.png [height]
 *
 * $SORSA_CHROMIUM overrides the browser's path (default /usr/bin/chromium).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

const [input, output, height = '1700'] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/screenshot-report.mjs <report.html> <out.png> [height in px]');
  process.exit(2);
}
if (!existsSync(input)) {
  console.error(`screenshot-report: ${input} does not exist`);
  process.exit(2);
}
const chromium = process.env.SORSA_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  console.error(`screenshot-report: no Chromium at ${chromium} (apt-get install chromium, or set $SORSA_CHROMIUM)`);
  process.exit(2);
}
const browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: Number(height), deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(resolve(input)).href, { waitUntil: 'load' });
  await page.screenshot({ path: output, type: 'png', clip: { x: 0, y: 0, width: 1100, height: Number(height) } });
  console.log(`screenshot-report: wrote ${output}`);
} finally {
  await browser.close();
}
