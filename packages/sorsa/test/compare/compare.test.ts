/**
 * `sorsa compare --quick`, run once as the real binary (its run folder under a folder named `runs`),
 * then checked from the outside: the data splits, the merged checkpoint and the PEFT adapter (read
 * with a safetensors parser of our own; the merged weights rebuilt from the adapter in float64),
 * report.json against the schema (trainable parameters counted from the base's shapes), report.html
 * in headless Chromium, the batched exact-match grader against one-by-one greedy decoding, and a
 * bad --methods.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as c from '@sorsajs/core';
import { createModel, loadPretrained } from '@sorsajs/models';
import { exactMatch } from '../../src/compare/accuracy.js';
import { QUICK_PLAN } from '../../src/compare/compare.js';
import { runCli, tempDir, type CliResult } from '../cli/fixture.js';
import { expectClose, expectUsageError, lowRankSum } from '../cli/reference.js';
import { tr } from '../ref.js';

const CHROMIUM = [process.env.SORSA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const SKIP_REASON = 'SKIPPED: no Chromium at $SORSA_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser (apt-get install chromium, as .ci/run does)';
if (!CHROMIUM) console.warn(`compare.test.ts: ${SKIP_REASON}: the comparison's report.html is not checked in a real browser`);

const METHODS = ['sorsa', 'pissa', 'lora', 'adalora', 'full'] as const;
/** GPT-2's adapted modules by default: every linear layer of the blocks (the paper's targets). */
const TARGET = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

let root: string;
let out: string;
let baseDir: string;
let cli: CliResult;

beforeAll(async () => {
  await c.init({ backend: 'wasm' });
  root = tempDir('sorsa-compare-');
  mkdirSync(join(root, 'runs'));
  out = join(root, 'runs', 'quick');
  baseDir = `${join(root, 'base')}-quick`;
  cli = await runCli(['compare', '--quick', '--backend', 'wasm', '--plain', '--out', out, '--base-dir', join(root, 'base')], { cwd: root });
  expect(cli.code, cli.stderr).toBe(0);
}, 240_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

interface StTensor {
  shape: number[];
  data: Float32Array;
  bytes: Buffer;
}

/** A float32 safetensors file parsed by hand: 8-byte header length, JSON header, packed data. */
function readSafetensors(file: string): Map<string, StTensor> {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, StTensor>();
  let covered = 0;
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    expect(v.dtype, k).toBe('F32');
    const [s, e] = v.data_offsets;
    expect(e - s, k).toBe(4 * v.shape.reduce((p, d) => p * d, 1));
    expect(8 + n + e, k).toBeLessThanOrEqual(b.length);
    covered += e - s;
    const bytes = b.subarray(8 + n + s, 8 + n + e);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    out.set(k, { shape: v.shape, data, bytes });
  }
  expect(covered, `${file}: the tensors fill the data section`).toBe(b.length - 8 - n);
  return out;
}

const readJsonl = (file: string): { prompt: unknown; completion: unknown }[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { prompt: unknown; completion: unknown });

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

interface MethodJson {
  trainLoss: number[];
  evalLoss: number;
  accuracy: number;
  accuracyBySeed: number[];
  trainableParams: number;
  seconds: number;
  lr: number;
}
interface ReportJson {
  base: { evalLoss: number; accuracy: number; dir?: string };
  methods: Record<string, MethodJson>;
  drift: Record<string, { path: string; deltaSigma: number; deltaD: number }[]>;
  task: Record<string, unknown>;
  backend: string;
  versions: Record<string, string>;
}

const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);

describe('sorsa compare --quick: the run folder', () => {
  it('logs no dropped or truncated record, and prints the table and the report path', () => {
    expect(cli.stderr).not.toMatch(/dropped|truncat/i);
    for (const m of ['base', ...METHODS]) expect(cli.stdout).toMatch(new RegExp(`^${m} `, 'm'));
    expect(cli.stdout).toContain(join(out, 'report.html'));
  });

  it('data/: three JSONL splits of prompt/completion records ending "The answer is N.", sharing no prompt', () => {
    const splits = { train: QUICK_PLAN.train, validation: QUICK_PLAN.validation, test: QUICK_PLAN.test };
    const prompts: Set<string>[] = [];
    for (const [name, n] of Object.entries(splits)) {
      const recs = readJsonl(join(out, 'data', `${name}.jsonl`));
      expect(recs.length, name).toBe(n);
      for (const r of recs) {
        expect(typeof r.prompt, name).toBe('string');
        expect(typeof r.completion, name).toBe('string');
        expect(r.completion as string).toMatch(/ The answer is \d+\.$/);
      }
      const set = new Set(recs.map((r) => r.prompt as string));
      expect(set.size, `${name}: distinct prompts`).toBe(n);
      prompts.push(set);
    }
    for (const [i, a] of prompts.entries()) for (const b of prompts.slice(i + 1)) for (const p of a) expect(b.has(p), p).toBe(false);
  });

  it('runs/latest is a symlink to the run folder; runs/<method>-lr<lr>-seed<s>/ for the sweep and the seeds', () => {
    const latest = join(root, 'runs', 'latest');
    expect(lstatSync(latest).isSymbolicLink()).toBe(true);
    expect(realpathSync(latest)).toBe(realpathSync(out));
    const r = readJson<ReportJson>(join(out, 'report.json'));
    const want = new Set<string>();
    for (const m of METHODS) {
      for (const lr of QUICK_PLAN.lrs[m]) want.add(`${m}-lr${lr}-seed0`);
      for (let s = 1; s < QUICK_PLAN.seeds; s++) want.add(`${m}-lr${r.methods[m].lr}-seed${s}`);
    }
    expect(new Set(readdirSync(join(out, 'runs')))).toEqual(want);
  });

  it('sorsa-merged/ loads with the base config, runs forward to finite [1,T,vocab] logits', async () => {
    expect(existsSync(join(baseDir, 'config.json'))).toBe(true);
    expect(readJson(join(out, 'sorsa-merged', 'config.json'))).toEqual(readJson(join(baseDir, 'config.json')));
    const base = await loadPretrained(baseDir);
    const merged = await loadPretrained(join(out, 'sorsa-merged'));
    try {
      expect(merged.config).toEqual(base.config);
      expect(merged.tokenizer).toBeDefined();
      const ids = merged.tokenizer!.encode('Question: Tim has 2 candles. How many?\nAnswer:');
      expect(ids.length).toBeGreaterThan(3);
      const logits = merged.forward(merged.params, [ids]);
      expect(logits.shape).toEqual([1, ids.length, base.config.vocabSize]);
      const v = await logits.data();
      logits.dispose();
      expect(v.every((x) => Number.isFinite(x))).toBe(true);
    } finally {
      c.tree.dispose([base.params, merged.params]);
    }
  });

  it('the merged weights moved on every adapted layer, nowhere else, and equal base + the PEFT adapter (float64)', () => {
    const base = readSafetensors(join(baseDir, 'model.safetensors'));
    const merged = readSafetensors(join(out, 'sorsa-merged', 'model.safetensors'));
    expect([...merged.keys()].sort()).toEqual([...base.keys()].sort());
    const targets = [...base.keys()].filter((k) => TARGET.test(k));
    expect(targets.length).toBe(4 * (readJson<{ n_layer: number }>(join(baseDir, 'config.json')).n_layer));
    expect(base.has('transformer.wte.weight')).toBe(true);
    for (const [k, b] of base) {
      const m = merged.get(k)!;
      expect(m.shape, k).toEqual(b.shape);
      if (TARGET.test(k)) expect(m.bytes.equals(b.bytes), `${k} is adapted: it must change`).toBe(false);
      else expect(m.bytes.equals(b.bytes), `${k} is not adapted: it must not change`).toBe(true);
    }

    // adapter/: SORSA is saved as LoRA of rank 2r (its tuned part minus its initial part, peft.ts).
    const cfg = readJson<{ peft_type: string; r: number; lora_alpha: number; target_modules: string[]; fan_in_fan_out: boolean }>(join(out, 'adapter', 'adapter_config.json'));
    expect(cfg.peft_type).toBe('LORA');
    expect(cfg.r).toBe(2 * QUICK_PLAN.rank);
    expect(cfg.fan_in_fan_out).toBe(true);
    expect([...cfg.target_modules].sort()).toEqual(targets.map((k) => k.replace(/\.weight$/, '')).sort());
    const ad = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
    expect(ad.size).toBe(2 * targets.length);
    const R = cfg.r;
    for (const k of targets) {
      const mod = `base_model.model.${k.replace(/\.weight$/, '')}`;
      const A = ad.get(`${mod}.lora_A.weight`);
      const B = ad.get(`${mod}.lora_B.weight`);
      expect(A, mod).toBeDefined();
      expect(B, mod).toBeDefined();
      // GPT-2's Conv1D stores W as [in, out]; PEFT's A is [r, in], B [out, r]; ΔW[in, out] = (B A)ᵀ.
      const [nIn, nOut] = base.get(k)!.shape;
      expect(A!.shape).toEqual([R, nIn]);
      expect(B!.shape).toEqual([nOut, R]);
      const ref = lowRankSum(base.get(k)!.data, nIn, nOut, [{ left: tr(A!.data, R, nIn), mid: null, right: tr(B!.data, nOut, R), r: R, scale: cfg.lora_alpha / cfg.r }]);
      expectClose(merged.get(k)!.data, ref, 8 * R, k);
    }
  });
});

describe('sorsa compare --quick: report.json', () => {
  let r: ReportJson;
  /** The adapted weights and their HF shapes [in, out], from the base checkpoint. */
  let shapes: [string, number, number][];
  beforeAll(() => {
    r = readJson<ReportJson>(join(out, 'report.json'));
    shapes = [...readSafetensors(join(baseDir, 'model.safetensors'))].filter(([k]) => TARGET.test(k)).map(([k, t]) => [k, t.shape[0], t.shape[1]]);
  });

  it('base, task, backend, versions', () => {
    expect(finite(r.base.evalLoss) && r.base.evalLoss > 0).toBe(true);
    expect(r.base.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.base.accuracy).toBeLessThanOrEqual(100);
    expect(typeof r.task).toBe('object');
    expect(r.task).not.toBeNull();
    expect(r.backend).toBe('wasm');
    expect(typeof r.versions.sorsajs).toBe('string');
    expect(r.versions.node).toBe(process.version);
  });

  it('every method: loss curve, test loss, accuracy (a mean of k/testCount per seed), seconds, a planned lr', () => {
    expect(Object.keys(r.methods).sort()).toEqual([...METHODS].sort());
    for (const m of METHODS) {
      const x = r.methods[m];
      expect(x.trainLoss, m).toHaveLength(QUICK_PLAN.steps);
      expect(x.trainLoss.every(finite), m).toBe(true);
      expect(finite(x.evalLoss) && x.evalLoss > 0, m).toBe(true);
      expect(x.accuracyBySeed, m).toHaveLength(QUICK_PLAN.seeds);
      for (const a of x.accuracyBySeed) {
        const k = (a * QUICK_PLAN.test) / 100;
        expect(Math.abs(k - Math.round(k)), `${m}: ${a}% of ${QUICK_PLAN.test}`).toBeLessThan(1e-9);
        expect(a).toBeGreaterThanOrEqual(0);
        expect(a).toBeLessThanOrEqual(100);
      }
      expect(x.accuracy, m).toBeCloseTo(x.accuracyBySeed.reduce((s, a) => s + a, 0) / x.accuracyBySeed.length, 10);
      expect(x.seconds, m).toBeGreaterThan(0);
      expect(QUICK_PLAN.lrs[m], m).toContain(x.lr);
    }
    // Every method starts from the base model, so step 1 sees the same loss (AdaLoRA's reported
    // loss adds PEFT's orthogonal regularizer, so it is left out).
    for (const m of ['pissa', 'lora', 'full'] as const) expect(Math.abs(r.methods[m].trainLoss[0] - r.methods.sorsa.trainLoss[0]), m).toBeLessThan(1e-4);
  });

  it('trainable parameters, counted from the base weights: rank r on [in, out] trains r(in+out) (+r for SORSA\'s S)', () => {
    const rk = QUICK_PLAN.rank;
    let lora = 0;
    let full = 0;
    let sum = 0;
    for (const [, nIn, nOut] of shapes) {
      lora += rk * (nIn + nOut);
      full += nIn * nOut;
      sum += nIn + nOut;
    }
    const sorsa = lora + rk * shapes.length;
    for (const m of METHODS) expect(Number.isInteger(r.methods[m].trainableParams) && r.methods[m].trainableParams > 0, m).toBe(true);
    expect(r.methods.sorsa.trainableParams).toBe(sorsa);
    expect(r.methods.pissa.trainableParams).toBe(lora);
    expect(r.methods.lora.trainableParams).toBe(lora);
    // Full fine-tuning trains every weight of the checkpoint: the linear layers, embeddings, norms and biases.
    let everything = 0;
    for (const [, t] of readSafetensors(join(baseDir, 'model.safetensors'))) everything += t.shape.reduce((a, b) => a * b, 1);
    expect(everything).toBeGreaterThan(full);
    expect(r.methods.full.trainableParams).toBe(everything);
    expect(full).toBeGreaterThan(sorsa);
    // AdaLoRA: P [r0, in], Λ [r0], Q [out, r0] at some initial rank r0 ≥ r.
    const r0 = r.methods.adalora.trainableParams / (sum + shapes.length);
    expect(Number.isInteger(r0) && r0 >= rk, `AdaLoRA's initial rank ${r0}`).toBe(true);
  });

  it('drift: ΔΣ and ΔD, finite and non-negative, for exactly the adapted weights of every method', () => {
    const paths = shapes.map(([k]) => k).sort();
    expect(Object.keys(r.drift).sort()).toEqual([...METHODS].sort());
    for (const m of METHODS) {
      expect(r.drift[m].map((d) => d.path).sort(), m).toEqual(paths);
      for (const d of r.drift[m]) {
        expect(finite(d.deltaSigma) && d.deltaSigma >= 0, `${m} ${d.path}`).toBe(true);
        expect(finite(d.deltaD) && d.deltaD >= 0, `${m} ${d.path}`).toBe(true);
      }
    }
  });
});

describe('sorsa compare --quick: report.html', () => {
  let html: string;
  beforeAll(() => {
    html = readFileSync(join(out, 'report.html'), 'utf8');
  });

  it('is one self-contained file: no script, nothing loaded from elsewhere', () => {
    expect(html).not.toMatch(/<script/i);
    for (const m of html.matchAll(/\b(?:src|href)\s*=\s*["']?([^"'\s>]*)/gi)) expect(m[1], m[0]).toMatch(/^(#|data:)/);
    expect(html).not.toMatch(/url\(\s*["']?(?!data:|#)/i);
    expect(html).not.toMatch(/@import/i);
  });

  describe.skipIf(!CHROMIUM)(`in headless Chromium${CHROMIUM ? '' : ` (${SKIP_REASON})`}`, () => {
    let browser: Browser;
    let page: Page;
    const problems: string[] = [];
    const requests: string[] = [];
    let url: string;

    beforeAll(async () => {
      const puppeteer = (await import('puppeteer-core')).default;
      browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
      page = await browser.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
      page.on('request', (q) => requests.push(q.url()));
      page.on('requestfailed', (q) => problems.push(`request failed: ${q.url()}`));
      await page.setViewport({ width: 1000, height: 800 });
      url = pathToFileURL(join(out, 'report.html')).href;
      await page.goto(url, { waitUntil: 'load' });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    it('loads with no request but the page itself and no console error', () => {
      expect(requests).toEqual([url]);
      expect(problems).toEqual([]);
    });

    it('at least 4 charts, each laid out with a non-zero box', async () => {
      const boxes = await page.evaluate(() => Array.from(document.querySelectorAll('svg')).map((s) => [s.getBoundingClientRect().width, s.getBoundingClientRect().height]));
      expect(boxes.length).toBeGreaterThanOrEqual(4);
      for (const [w, h] of boxes) {
        expect(w).toBeGreaterThan(0);
        expect(h).toBeGreaterThan(0);
      }
    });

    it('the loss chart has one curve of non-zero length per method', async () => {
      const lengths = await page.evaluate(() => {
        const chart = Array.from(document.querySelectorAll('svg')).find((s) => s.querySelector('polyline, path.sorsa-line'));
        if (!chart) return [];
        return Array.from(chart.querySelectorAll('polyline, path.sorsa-line')).map((p) => (p as SVGGeometryElement).getTotalLength());
      });
      expect(lengths).toHaveLength(METHODS.length);
      for (const l of lengths) expect(l).toBeGreaterThan(0);
    });

    it("the table names every method", async () => {
      const text = await page.evaluate(() => Array.from(document.querySelectorAll('table')).map((t) => t.textContent ?? '').join('\n'));
      for (const m of METHODS) expect(text).toContain(m);
    });

    it("a fine-tuning run's own report.html (sorsa finetune's) loads cleanly and draws its loss curve", async () => {
      const runDir = readdirSync(join(out, 'runs')).find((d) => d.startsWith('sorsa-'));
      expect(runDir).toBeDefined();
      const other = await browser.newPage();
      const errors: string[] = [];
      const asked: string[] = [];
      other.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warn') errors.push(`console.${m.type()}: ${m.text()}`);
      });
      other.on('pageerror', (e) => errors.push(`page error: ${String(e)}`));
      other.on('request', (q) => asked.push(q.url()));
      const runUrl = pathToFileURL(join(out, 'runs', runDir!, 'report.html')).href;
      await other.goto(runUrl, { waitUntil: 'load' });
      const lengths = await other.evaluate(() => Array.from(document.querySelectorAll('polyline, path.sorsa-line')).map((p) => (p as SVGGeometryElement).getTotalLength()));
      await other.close();
      expect(asked).toEqual([runUrl]);
      expect(errors).toEqual([]);
      // The training loss is a curve of non-zero length; the held-out loss, measured once at the
      // end, is a single point.
      expect(lengths.length).toBeGreaterThan(0);
      expect(lengths[0]).toBeGreaterThan(0);
    });
  });
});

describe('exactMatch (compare/accuracy.ts)', () => {
  const tests = (): { prompt: string; completion: string }[] => readJsonl(join(out, 'data', 'test.jsonl')) as { prompt: string; completion: string }[];
  const eos = (): number[] => [readJson<{ eos_token_id: number }>(join(baseDir, 'config.json')).eos_token_id];

  it('batched greedy answers equal one-by-one answers and a plain argmax loop, on prompts of several token lengths', async () => {
    // A random model of the base's shape and tokenizer, weights scaled up so that its greedy
    // answers differ from prompt to prompt (the quick base answers "tttt..." to everything).
    const cfg = readJson<Record<string, unknown>>(join(baseDir, 'config.json'));
    const model = createModel(cfg, c.random.key(3), { tokenizer: readJson<object>(join(baseDir, 'tokenizer.json')) });
    const params = c.tree.map((t) => c.mul(t as c.Tensor, 20), model.params) as typeof model.params;
    c.tree.dispose(model.params);
    try {
      const tok = model.tokenizer!;
      // From all three splits, the two token lengths most prompts share, four prompts of each: the
      // batched grader runs each length as one batch of four.
      const pool = ['train', 'validation', 'test'].flatMap((n) => readJsonl(join(out, 'data', `${n}.jsonl`)) as { prompt: string; completion: string }[]);
      const byLength = new Map<number, number[]>();
      pool.forEach((ex, i) => {
        const n = tok.encode(ex.prompt).length;
        byLength.set(n, [...(byLength.get(n) ?? []), i]);
      });
      const groups = [...byLength.values()].sort((a, b) => b.length - a.length).slice(0, 2);
      for (const g of groups) expect(g.length, 'four prompts of one length').toBeGreaterThanOrEqual(4);
      const test = groups.flatMap((g) => g.slice(0, 4)).map((i) => pool[i]);
      const lens = test.map((ex) => tok.encode(ex.prompt).length);
      expect(new Set(lens).size).toBe(2);
      const opts = { eos: eos(), maxNewTokens: QUICK_PLAN.maxNewTokens };
      const batched = await exactMatch(model, params, test, { ...opts, batch: 32 });
      const single = await exactMatch(model, params, test, { ...opts, batch: 1 });
      expect(batched).toEqual(single);
      expect(new Set(batched.map((g) => g.generated)).size, 'answers differ across prompts').toBeGreaterThan(test.length / 2);
      for (const [i, g] of batched.entries()) {
        expect(g.prompt).toBe(test[i].prompt);
        expect(g.expected).toBe(Number(/The answer is (\d+)\.$/.exec(test[i].completion)![1]));
      }

      // A plain greedy loop (a full forward per token, argmax of the last position) on a prompt of
      // each length.
      const V = model.config.vocabSize;
      for (const i of [0, 4]) {
        const ids = tok.encode(test[i].prompt);
        const fresh: number[] = [];
        for (let s = 0; s < opts.maxNewTokens && ids.length < model.config.maxPositions; s++) {
          const logits = model.forward(params, [ids]);
          const v = await logits.data();
          logits.dispose();
          let best = 0;
          for (let k = 1; k < V; k++) if (v[(ids.length - 1) * V + k] > v[(ids.length - 1) * V + best]) best = k;
          if (opts.eos.includes(best)) break;
          fresh.push(best);
          ids.push(best);
        }
        expect(batched[i].generated, test[i].prompt).toBe(tok.decode(fresh));
      }
    } finally {
      c.tree.dispose(params);
    }
  });

  it("the report's base accuracy is the share of the base model's answers graded right", async () => {
    const model = await loadPretrained(baseDir);
    try {
      const test = tests();
      const graded = await exactMatch(model, model.params, test, { eos: eos(), maxNewTokens: QUICK_PLAN.maxNewTokens, batch: 32 });
      const report = readJson<ReportJson>(join(out, 'report.json'));
      expect(report.base.accuracy).toBeCloseTo((100 * graded.filter((g) => g.correct).length) / test.length, 10);
    } finally {
      c.tree.dispose(model.params);
    }
  });
});

describe('sorsa compare: user errors', () => {
  it('--methods with an unknown method: status 2, one line naming --methods and it, nothing written', async () => {
    const cwd = tempDir('sorsa-compare-bad-');
    try {
      expectUsageError(await runCli(['compare', '--quick', '--methods', 'sorsa,bogus', '--backend', 'wasm'], { cwd }), /--methods.*bogus/);
      expect(readdirSync(cwd)).toEqual([]);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
