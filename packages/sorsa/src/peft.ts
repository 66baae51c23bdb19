/**
 * Hugging Face PEFT adapter directories (`adapter_config.json` plus `adapter_model.safetensors`),
 * so that an adapter trained here is loaded in PyTorch with `PeftModel.from_pretrained` and trained
 * or served on there. Node only (it uses `fs`).
 * @module
 */
import { Tensor, loadSafetensors, reshape, saveSafetensors, take, tensor, tidy, tree } from '@sorsajs/core';
import { describe, fmtShape as fmt } from '@sorsajs/core/internal';
import { factors } from './checks.js';
import { toLoRA } from './convert.js';
import { checkKey, put } from './interop.js';
import { isAdaloraAdapter, isLoraAdapter, isSorsaAdapter, type AdaloraAdapter, type Adapter, type LoraAdapter, type Trainable } from './types.js';

/**
 * The file names PEFT reads and writes in an adapter directory.
 *
 * @example
 * ```ts
 * path.join(dir, PEFT_FILES.config); // 'dir/adapter_config.json'
 * ```
 */
export const PEFT_FILES = {
  /** The adapter's configuration (peft_type, r, lora_alpha, target_modules, ...). */
  config: 'adapter_config.json',
  /** The adapter's tensors. */
  weights: 'adapter_model.safetensors',
} as const;

/** PEFT's prefix of every adapter key: the `PeftModel` wraps the `LoraModel`, which wraps the model. */
const PREFIX = 'base_model.model.';

/**
 * The fields of `adapter_config.json` that this package writes and reads (PEFT's `LoraConfig`).
 *
 * @example
 * ```ts
 * const { config } = await loadPeftAdapter('runs/adapter');
 * config.peft_type; // 'LORA'
 * ```
 */
export interface PeftConfig {
  /** `'LORA'` (LoRA, and SORSA or PiSSA converted through `toLoRA`) or `'ADALORA'`. */
  peft_type: 'LORA' | 'ADALORA';
  /** The rank of every adapter (AdaLoRA: the initial rank, as `init_r`). */
  r: number;
  /** PEFT's scaling is `lora_alpha / r` (`/ √r` with `use_rslora`). */
  lora_alpha: number;
  /** Module names (or name suffixes) that the adapters apply to. */
  target_modules: string[];
  /** True where the base model stores weights as `[in, out]` (GPT-2's Conv1D). */
  fan_in_fan_out: boolean;
  /** Always `'CAUSAL_LM'` when written here. */
  task_type: string;
  /** `scaling = lora_alpha / √r` instead of `/ r`. Written false. */
  use_rslora?: boolean;
  /** Any further field of the file, kept as read. */
  [field: string]: unknown;
}

/**
 * Options of `savePeftAdapter`.
 *
 * @example
 * ```ts
 * await savePeftAdapter('runs/adapter', trainable, { initial, fanInFanOut: true, targetModules: ['c_attn'] });
 * ```
 */
export interface PeftSaveOptions {
  /**
   * The adapters at initialization, keyed as `adapters`: needed for SORSA and PiSSA, which are
   * saved through `toLoRA(adapter, initial[path])` as rank-2r LoRA on the untouched base weight.
   * With it every entry is converted; without it every entry must be a LoRA adapter `{ A, B }`.
   */
  initial?: Trainable;
  /** PEFT's `fan_in_fan_out`: true for GPT-2, whose Conv1D weights the file layout holds as `[in, out]`. Default false. */
  fanInFanOut?: boolean;
  /** PEFT's `target_modules`; default the module path of every adapter. */
  targetModules?: readonly string[];
  /** PEFT's `base_model_name_or_path` (e.g. `'gpt2'`); default null. */
  baseModel?: string | null;
  /** The module path of a weight path; default: the path without its final `.weight` (a path without one is an Error). */
  modulePath?: (weightPath: string) => string;
  /** AdaLoRA adapters: the rank pattern and the schedule written into the config. */
  adalora?: AdaloraSaveOptions;
}

/**
 * The AdaLoRA fields of `savePeftAdapter` (PEFT's `AdaLoraConfig`; its defaults where absent).
 *
 * @example
 * ```ts
 * await savePeftAdapter(dir, trainable, { adalora: { rankPattern: await adalora.rankPattern(state), targetR: 8, tinit: 200, tfinal: 1000, totalSteps: 5000 } });
 * ```
 */
export interface AdaloraSaveOptions {
  /**
   * PEFT's `rank_pattern` (`adalora.rankPattern(state)`): `"<module>.lora_E"` to one boolean per
   * triplet. The files then hold only the kept triplets, as PEFT saves them. Without it, all of them.
   */
  rankPattern?: Record<string, boolean[]>;
  /** `target_r` (default 8). */
  targetR?: number;
  /** `tinit` (default 0). */
  tinit?: number;
  /** `tfinal` (default 0). */
  tfinal?: number;
  /** `total_step`: required for an AdaLoRA adapter (PEFT refuses a config without a positive one). */
  totalSteps?: number;
  /** `deltaT` (default 1). */
  deltaT?: number;
  /** `beta1` (default 0.85). */
  beta1?: number;
  /** `beta2` (default 0.85). */
  beta2?: number;
  /** `orth_reg_weight` (default 0.5). */
  orthRegWeight?: number;
}

/** Checks a rank pattern from a file or a caller: own keys, safe names, `initR` booleans each. */
function checkRankPattern(fn: string, rp: unknown, initR: number): Map<string, boolean[]> {
  const out = new Map<string, boolean[]>();
  if (rp === undefined || rp === null) return out;
  if (typeof rp !== 'object' || Array.isArray(rp)) throw new Error(`${fn}: rank_pattern must be an object of boolean lists, got ${describe(rp)}`);
  for (const k of Object.keys(rp)) {
    checkKey(fn, k);
    const v = (rp as Record<string, unknown>)[k];
    if (!Array.isArray(v) || v.length !== initR || !v.every((b) => typeof b === 'boolean')) {
      throw new Error(`${fn}: rank_pattern["${k}"] must be ${initR} booleans (one per initial triplet), got ${JSON.stringify(v)?.slice(0, 80)}`);
    }
    out.set(k, v as boolean[]);
  }
  return out;
}

/** The module path of a weight path: without its final `.weight`. */
function defaultModulePath(path: string): string {
  if (!path.endsWith('.weight') || path.length <= '.weight'.length) {
    throw new Error(`savePeftAdapter: the weight path "${path}" does not end in ".weight", so it names no module; pass opts.modulePath to map it`);
  }
  return path.slice(0, -'.weight'.length);
}

type Fs = typeof import('node:fs/promises');
type PathMod = typeof import('node:path');

async function nodeModules(fn: string): Promise<{ fs: Fs; path: PathMod }> {
  try {
    const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
    return { fs, path };
  } catch (e) {
    throw new Error(`${fn}: needs Node's fs module, which is not available here (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Writes `text` to `file` atomically: a temporary file beside it, fsync, rename over `file`. On
 * any failure the temporary file is removed and an existing `file` is left as it was.
 */
async function writeTextAtomic(fs: Fs, pathMod: PathMod, file: string, text: string): Promise<void> {
  const tmp = pathMod.join(pathMod.dirname(file), `.${pathMod.basename(file)}.${process.pid}.${globalThis.crypto.randomUUID()}.tmp`);
  let handle: Awaited<ReturnType<Fs['open']>> | null = null;
  try {
    handle = await fs.open(tmp, 'wx');
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = null;
    await fs.rename(tmp, file);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Writes a PEFT LoRA adapter directory: `adapter_model.safetensors` with, for every adapter at
 * weight path `p` (module path `m`, `p` without `.weight`), `base_model.model.<m>.lora_A.weight`
 * `[r, in]` and `base_model.model.<m>.lora_B.weight` `[out, r]`; and `adapter_config.json` with
 * `peft_type: "LORA"`, `r`, `lora_alpha`, `target_modules`, `fan_in_fan_out` and
 * `task_type: "CAUSAL_LM"`. `lora_alpha = scale · r`, so PEFT's `lora_alpha / r` is the adapter's
 * scale and `W0 + lora_B lora_A · lora_alpha / r` is the merged weight (`mergeParams`).
 *
 * LoRA adapters are saved as they are. SORSA and PiSSA adapters are saved through `toLoRA` (pass
 * `opts.initial`): rank 2r on the untouched base weight, PEFT's own PiSSA-to-LoRA conversion.
 * Every adapter must have the same rank and scale (one `r` and `lora_alpha` in the config).
 *
 * AdaLoRA adapters `{ A, E, B }` are written as PEFT's `ADALORA` format: `.lora_E.weight` `[r, 1]`
 * too, `init_r`, `lora_alpha` = the scaling, the schedule of `opts.adalora` and its `rank_pattern`;
 * with a rank pattern only the kept triplets are written (A's rows, E's rows, B's columns), as
 * PEFT's own save does, and PEFT's `ranknum` stays `init_r`.
 * Both files are written atomically (temporary file, fsync, rename); `dir` is created if missing.
 * The tensors are read back, not disposed.
 *
 * @example
 * ```ts
 * const { trainable } = await adaptParams(params, { rank: 8, targets, method: 'lora', key, alpha: 16 });
 * // ... train ...
 * await savePeftAdapter('runs/adapter', trainable, { fanInFanOut: true, baseModel: 'gpt2' });
 * // PyTorch: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('gpt2'), 'runs/adapter')
 * ```
 */
export async function savePeftAdapter(dir: string, adapters: Trainable, opts: PeftSaveOptions = {}): Promise<void> {
  const fn = 'savePeftAdapter';
  if (typeof dir !== 'string' || dir === '') throw new Error(`${fn}: dir must be a non-empty string, got ${describe(dir)}`);
  if (!adapters || typeof adapters !== 'object' || Array.isArray(adapters)) throw new Error(`${fn}: adapters must be a record of adapters keyed by weight path, got ${describe(adapters)}`);
  const paths = Object.keys(adapters);
  if (paths.length === 0) throw new Error(`${fn}: adapters is empty: there is nothing to save`);
  const fanInFanOut = opts.fanInFanOut ?? false;
  if (typeof fanInFanOut !== 'boolean') throw new Error(`${fn}: fanInFanOut must be a boolean, got ${String(fanInFanOut)}`);
  const modulePath = opts.modulePath ?? defaultModulePath;
  const initial = opts.initial;
  // Check everything before writing anything.
  const modules = new Map<string, string>();
  for (const p of paths) {
    const a: unknown = adapters[p];
    if (a instanceof Tensor) throw new Error(`${fn}: the entry at "${p}" is a full weight (full fine-tuning); PEFT adapter files hold low-rank adapters only`);
    if (initial !== undefined) {
      if (isAdaloraAdapter(a)) throw new Error(`${fn}: the adapter at "${p}" is an AdaLoRA adapter { A, E, B }, which PEFT's ADALORA format holds as it is: save it without opts.initial`);
      const a0: unknown = Object.hasOwn(initial, p) ? initial[p] : undefined;
      if (a0 === undefined) throw new Error(`${fn}: opts.initial has no adapter at "${p}"`);
    } else if (isAdaloraAdapter(a)) {
      if (!isAdaloraAdapter(adapters[paths[0]])) throw new Error(`${fn}: "${p}" is an AdaLoRA adapter but "${paths[0]}" is not: one file holds one kind`);
    } else if (isSorsaAdapter(a)) {
      throw new Error(`${fn}: the adapter at "${p}" is a SORSA adapter { U, S, Vt }: pass opts.initial (the adapters at initialization) to save it through toLoRA`);
    } else if (isLoraAdapter(a) && isAdaloraAdapter(adapters[paths[0]])) {
      throw new Error(`${fn}: "${p}" is a LoRA adapter but "${paths[0]}" is an AdaLoRA adapter: one file holds one kind`);
    } else if (!isLoraAdapter(a)) {
      throw new Error(`${fn}: the entry at "${p}" must be a LoRA adapter { A, B }, got ${describe(a)}`);
    }
    const m = modulePath(p);
    if (typeof m !== 'string' || m === '') throw new Error(`${fn}: modulePath("${p}") must be a non-empty string, got ${describe(m)}`);
    checkKey(fn, m);
    for (const [other, om] of modules) if (om === m) throw new Error(`${fn}: "${p}" and "${other}" map to the same module "${m}"`);
    modules.set(p, m);
  }
  const targetModules = opts.targetModules ? [...opts.targetModules] : [...modules.values()];
  if (!targetModules.every((t) => typeof t === 'string' && t !== '')) throw new Error(`${fn}: targetModules must be non-empty strings, got ${JSON.stringify(targetModules)}`);
  const baseModel = opts.baseModel ?? null;
  const ada = initial === undefined && isAdaloraAdapter(adapters[paths[0]]);
  const initR = ada ? (adapters[paths[0]] as AdaloraAdapter).A.shape[0] : 0;
  const pattern = ada ? checkRankPattern(fn, opts.adalora?.rankPattern, initR) : new Map<string, boolean[]>();
  if (ada) {
    // PEFT's AdaLoraConfig refuses to load without a positive total_step, and needs tinit < total_step - tfinal.
    const { totalSteps, tinit = 0, tfinal = 0 } = opts.adalora ?? {};
    if (typeof totalSteps !== 'number' || !Number.isInteger(totalSteps) || totalSteps <= 0) {
      throw new Error(`${fn}: an AdaLoRA adapter needs opts.adalora.totalSteps, a positive integer (PEFT's total_step; its AdaLoraConfig refuses to load without one), got ${String(totalSteps)}`);
    }
    if (!(tinit < totalSteps - tfinal)) throw new Error(`${fn}: opts.adalora needs tinit < totalSteps - tfinal (PEFT checks it on load), got tinit ${tinit}, totalSteps ${totalSteps}, tfinal ${tfinal}`);
  }
  const byModule = new Set(modules.values());
  for (const k of pattern.keys()) if (!k.endsWith('.lora_E') || !byModule.has(k.slice(0, -'.lora_E'.length))) throw new Error(`${fn}: rank_pattern key "${k}" names no adapter module (expected "<module>.lora_E")`);
  const { fs, path: pathMod } = await nodeModules(fn);

  let rank = -1;
  let alpha = -1;
  let firstPath = '';
  const record = tidy(() => {
      const out: Record<string, Tensor> = {};
      for (const p of paths) {
        const a = adapters[p] as Adapter;
        if (ada) {
          const d = a as AdaloraAdapter;
          const f = factors(fn, d, `adapter "${p}"`);
          const scale = d.scale ?? 1;
          // PEFT: scale = scaling / (init_r + 1e-5), scaling = lora_alpha when positive.
          const scaling = Math.round(scale * (f.rank + 1e-5) * 1e6) / 1e6;
          if (!(Number.isFinite(scaling) && scaling > 0)) throw new Error(`${fn}: the adapter at "${p}" has scale ${String(scale)}; PEFT's lora_alpha needs a positive finite scale`);
          if (rank < 0) [rank, alpha, firstPath] = [f.rank, scaling, p];
          else if (f.rank !== rank || scaling !== alpha) {
            throw new Error(`${fn}: every AdaLoRA adapter must have one initial rank and scaling (PEFT's init_r and lora_alpha): "${firstPath}" has ${rank}, ${alpha}; "${p}" has ${f.rank}, ${scaling}`);
          }
          const m = modules.get(p) as string;
          const keep = pattern.get(`${m}.lora_E`);
          let [A, E, B] = [reshape(d.A, d.A.shape), reshape(d.E, d.E.shape), reshape(d.B, d.B.shape)];
          if (keep) {
            const idx = keep.flatMap((k, i) => (k ? [i] : []));
            if (idx.length === 0) throw new Error(`${fn}: rank_pattern prunes every triplet of "${m}"; saving a rank-0 module is not supported here (PEFT would write empty tensors)`);
            if (idx.length < keep.length) {
              const it = tensor(idx, [idx.length], 'int32');
              [A, E, B] = [take(d.A, it, 0), take(d.E, it, 0), take(d.B, it, 1)];
            }
          }
          // AdaLoRA's lora_A/E/B are bare nn.Parameters in PEFT, so its keys have no `.weight`
          // (PEFT strips the adapter name; LoRA's lora_A/B are nn.Linear modules, hence theirs).
          put(out, `${PREFIX}${m}.lora_A`, A);
          put(out, `${PREFIX}${m}.lora_E`, E);
          put(out, `${PREFIX}${m}.lora_B`, B);
          continue;
        }
        const l: LoraAdapter = initial !== undefined ? toLoRA(a, initial[p] as Adapter) : { A: reshape((a as LoraAdapter).A, (a as LoraAdapter).A.shape), B: reshape((a as LoraAdapter).B, (a as LoraAdapter).B.shape), scale: a.scale };
        const f = factors(fn, l, `adapter "${p}"`);
        const scale = l.scale ?? 1;
        if (!(typeof scale === 'number' && Number.isFinite(scale) && scale > 0)) throw new Error(`${fn}: the adapter at "${p}" has scale ${String(scale)}; PEFT's lora_alpha / r needs a positive finite scale`);
        const a_ = scale * f.rank;
        if (rank < 0) [rank, alpha, firstPath] = [f.rank, a_, p];
        else if (f.rank !== rank || Math.abs(a_ - alpha) > 1e-12 * Math.abs(alpha)) {
          throw new Error(`${fn}: every adapter must have one rank and scale (PEFT's r and lora_alpha): "${firstPath}" has r ${rank}, lora_alpha ${alpha}; "${p}" has r ${f.rank}, lora_alpha ${a_}`);
        }
        const m = modules.get(p) as string;
        put(out, `${PREFIX}${m}.lora_A.weight`, l.A);
        put(out, `${PREFIX}${m}.lora_B.weight`, l.B);
      }
      return out;
    });
  try {
    const o = opts.adalora ?? {};
    const adaFields = ada
      ? {
          init_r: rank,
          target_r: o.targetR ?? 8,
          tinit: o.tinit ?? 0,
          tfinal: o.tfinal ?? 0,
          deltaT: o.deltaT ?? 1,
          beta1: o.beta1 ?? 0.85,
          beta2: o.beta2 ?? 0.85,
          orth_reg_weight: o.orthRegWeight ?? 0.5,
          total_step: o.totalSteps,
          rank_pattern: pattern.size > 0 ? Object.fromEntries(pattern) : null,
        }
      : {};
    const config: PeftConfig = {
      peft_type: ada ? 'ADALORA' : 'LORA',
      task_type: 'CAUSAL_LM',
      // AdaLoRA reads init_r; PEFT warns when its (unused) r is not the default 8.
      r: ada ? 8 : rank,
      lora_alpha: alpha,
      target_modules: targetModules,
      fan_in_fan_out: fanInFanOut,
      use_rslora: false,
      lora_dropout: 0,
      bias: 'none',
      base_model_name_or_path: baseModel,
      inference_mode: true,
      modules_to_save: null,
      ...adaFields,
    };
    await fs.mkdir(dir, { recursive: true });
    await saveSafetensors(record, pathMod.join(dir, PEFT_FILES.weights), { format: 'pt' });
    await writeTextAtomic(fs, pathMod, pathMod.join(dir, PEFT_FILES.config), JSON.stringify(config, null, 2) + '\n');
  } catch (e) {
    throw new Error(`${fn}: cannot write "${dir}": ${(e as Error).message}`, { cause: e });
  } finally {
    tree.dispose(record);
  }
}

/**
 * What `loadPeftAdapter` returns.
 *
 * @example
 * ```ts
 * const { adapters, config }: PeftAdapter = await loadPeftAdapter('runs/adapter');
 * ```
 */
export interface PeftAdapter {
  /**
   * Adapters keyed by weight path (`<module>.weight`): LoRA with `scale = lora_alpha / r`, or
   * AdaLoRA `{ A, E, B }` holding the kept triplets, with `scale = scaling / (init_r + 1e-5)`.
   */
  adapters: Record<string, LoraAdapter | AdaloraAdapter>;
  /** The parsed `adapter_config.json`. */
  config: PeftConfig;
}

/** A plain JSON object's own field, never one found on a prototype. */
const field = (obj: Record<string, unknown>, k: string): unknown => (Object.hasOwn(obj, k) ? obj[k] : undefined);

/**
 * Reads a PEFT LoRA or AdaLoRA adapter directory written by `savePeftAdapter` or by PEFT itself
 * (AdaLoRA: `.lora_E.weight` `[r_m, 1]` too, r_m the kept count of `rank_pattern`, else `init_r`;
 * adapters `{ A, E, B }` with scale `scaling / (init_r + 1e-5)`). For LoRA, every key of
 * the weights file must be `base_model.model.<module>.lora_A.weight` `[r, in]` or
 * `.lora_B.weight` `[out, r]`, both present for each module, r the config's `r`. The adapters come
 * keyed by `<module>.weight` (the weight path of `adaptParams`), with `scale = lora_alpha / r`
 * (`/ √r` with `use_rslora`), so `mergeParams(adapters, base)` gives the adapted model.
 *
 * Everything in the directory is untrusted: an unsupported `peft_type`, a missing or unknown key,
 * a shape that does not fit, or a key segment `__proto__`, `constructor` or `prototype` is an Error
 * that names the key. Nothing is written onto an object prototype.
 *
 * @example
 * ```ts
 * const { adapters } = await loadPeftAdapter('runs/adapter');
 * const params = mergeParams(adapters, base);   // base: the untouched model params
 * ```
 */
export async function loadPeftAdapter(dir: string): Promise<PeftAdapter> {
  const fn = 'loadPeftAdapter';
  if (typeof dir !== 'string' || dir === '') throw new Error(`${fn}: dir must be a non-empty string, got ${describe(dir)}`);
  const { fs, path: pathMod } = await nodeModules(fn);
  const configFile = pathMod.join(dir, PEFT_FILES.config);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(configFile, 'utf8'));
  } catch (e) {
    throw new Error(`${fn}: cannot read ${JSON.stringify(configFile)}: ${(e as Error).message}`, { cause: e });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${fn}: ${PEFT_FILES.config} must hold a JSON object, got ${describe(raw)}`);
  const cfg = raw as Record<string, unknown>;
  const peftType = field(cfg, 'peft_type');
  if (peftType !== 'LORA' && peftType !== 'ADALORA') throw new Error(`${fn}: ${PEFT_FILES.config}: peft_type ${JSON.stringify(peftType)} is not supported (supported: "LORA", "ADALORA")`);
  const ada = peftType === 'ADALORA';
  // AdaLoRA builds its layers with init_r; LoRA with r.
  const rKey = ada ? 'init_r' : 'r';
  const r = field(cfg, rKey);
  const alpha = field(cfg, 'lora_alpha');
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw new Error(`${fn}: ${PEFT_FILES.config}: ${rKey} must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new Error(`${fn}: ${PEFT_FILES.config}: lora_alpha must be a finite number, got ${JSON.stringify(alpha)}`);
  for (const k of ada ? ['alpha_pattern'] : ['rank_pattern', 'alpha_pattern']) {
    const v = field(cfg, k);
    if (v !== undefined && v !== null && !(typeof v === 'object' && Object.keys(v).length === 0)) throw new Error(`${fn}: ${PEFT_FILES.config}: a non-empty ${k} is not supported (one r and lora_alpha for every module)`);
  }
  const pattern = ada ? checkRankPattern(`${fn}: ${PEFT_FILES.config}`, field(cfg, 'rank_pattern'), r) : new Map<string, boolean[]>();
  const rslora = !ada && field(cfg, 'use_rslora') === true;
  // AdaLoRA: scaling / (ranknum + 1e-5), ranknum the initial rank even where the pattern pruned.
  const scale = ada ? (alpha > 0 ? alpha : r) / (r + 1e-5) : rslora ? alpha / Math.sqrt(r) : alpha / r;

  const record = await loadSafetensors(pathMod.join(dir, PEFT_FILES.weights)).catch((e: Error) => {
    throw new Error(`${fn}: ${e.message}`, { cause: e });
  });
  try {
    const byModule = new Map<string, { A?: Tensor; B?: Tensor; E?: Tensor }>();
    const keyRe = ada ? /^base_model\.model\.(.+)\.lora_([ABE])$/ : /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;
    for (const key of Object.keys(record)) {
      checkKey(fn, key);
      const match = keyRe.exec(key);
      if (!match) throw new Error(`${fn}: unexpected key ${JSON.stringify(key)} in ${PEFT_FILES.weights} (expected base_model.model.<module>${ada ? '.lora_A, .lora_E or .lora_B (AdaLoRA: no .weight)' : '.lora_A.weight or .lora_B.weight'})`);
      const [, m, which] = match;
      const entry = byModule.get(m) ?? {};
      entry[which as 'A' | 'B' | 'E'] = record[key];
      byModule.set(m, entry);
    }
    if (byModule.size === 0) throw new Error(`${fn}: ${PEFT_FILES.weights} holds no adapter keys`);
    for (const k of pattern.keys()) if (!k.endsWith('.lora_E') || !byModule.has(k.slice(0, -'.lora_E'.length))) throw new Error(`${fn}: ${PEFT_FILES.config}: rank_pattern key "${k}" names no module of the weights file`);
    const adapters = tidy(() => {
      const out: Record<string, LoraAdapter | AdaloraAdapter> = {};
      for (const [m, { A, B, E }] of byModule) {
        const suffix = ada ? '' : '.weight';
        const kA = `${PREFIX}${m}.lora_A${suffix}`;
        const kB = `${PREFIX}${m}.lora_B${suffix}`;
        const kE = `${PREFIX}${m}.lora_E`;
        if (!A) throw new Error(`${fn}: missing key "${kA}"`);
        if (!B) throw new Error(`${fn}: missing key "${kB}"`);
        if (ada && !E) throw new Error(`${fn}: missing key "${kE}"`);
        for (const [k, t] of [[kA, A], [kB, B], [kE, E]] as const) if (t && t.dtype !== 'float32') throw new Error(`${fn}: "${k}" has dtype ${t.dtype}; adapters are float32`);
        const keep = pattern.get(`${m}.lora_E`);
        const rm = keep ? keep.filter(Boolean).length : r;
        const why = keep ? `${rm} kept in rank_pattern["${m}.lora_E"]` : `${rKey} = ${r} from the config`;
        if (A.rank !== 2 || A.shape[0] !== rm) throw new Error(`${fn}: "${kA}" has shape ${fmt(A.shape)}, expected [${rm}, in] (${why})`);
        if (B.rank !== 2 || B.shape[1] !== rm) throw new Error(`${fn}: "${kB}" has shape ${fmt(B.shape)}, expected [out, ${rm}] (${why})`);
        if (E && (E.rank !== 2 || E.shape[0] !== rm || E.shape[1] !== 1)) throw new Error(`${fn}: "${kE}" has shape ${fmt(E.shape)}, expected [${rm}, 1] (${why})`);
        // PEFT rebuilds a pruned AdaLoRA module with update_layer(rank = kept), so with lora_alpha <= 0
        // its scaling is the kept rank, while ranknum stays init_r.
        const s = ada && alpha <= 0 && keep ? rm / (r + 1e-5) : scale;
        const value = E ? { A: reshape(A, A.shape), E: reshape(E, E.shape), B: reshape(B, B.shape), scale: s } : { A: reshape(A, A.shape), B: reshape(B, B.shape), scale: s };
        put(out, `${m}.weight`, value);
      }
      return out;
    });
    return { adapters, config: cfg as PeftConfig };
  } finally {
    tree.dispose(record);
  }
}
