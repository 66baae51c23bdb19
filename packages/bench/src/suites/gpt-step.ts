/**
 * The sorsajs side of a SORSA fine-tuning step of a GPT-2 at given shapes, shared by the gpt suite
 * (issue #17's small model, beside tfjs-wasm, jax-js and PyTorch) and the models suite (GPT-2 small,
 * beside PyTorch): the model (createModel, seed 0), rank-r SORSA adapters on every linear layer of
 * the blocks, `makeTrainStep` with AdamW, clipping and the regularizer, the batch, the host copy of
 * all of it that the peers start from, and the probe (step-0 loss and task-gradient norm, the loss
 * after one step) that a peer's step must match before its times count.
 * @module
 */
import * as sj from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { createModel, type ParamTree } from '@sorsajs/models';
import { adaptParams, factoredParams, makeTrainStep, mergeParams, type SorsaAdapter, type Trainable } from '@sorsajs/sorsa';
import { GPT_HYPER, type GptProbe, type GptStepData, type GptStepShapes, type HostAdapter, type HostArray } from '../peers/gpt-data.js';

/** How far a peer's step-0 loss may be from sorsajs's, relative: float32 rounding, not a different step. */
const LOSS_TOL = 1e-5;
/**
 * The task-gradient norm, relative: a backward pass sums in its own order. Past this the gradients
 * differ, whatever the loss says.
 */
const NORM_TOL = 1e-4;
/**
 * The loss after one update, relative, reported and not enforced: at the SVD's initial factors
 * UᵀU − I is float32 rounding noise, and the regularizer's gradient (0.4 · that noise's direction,
 * of the size of the clipped task gradient) differs between implementations, as does Adam's first
 * step, which is ±lr per entry whatever the gradient's size.
 */
const LOSS1_TOL = 1e-3;

/** The header of the probe table that {@link judge}'s lines fill. */
export const PROBE_HEADER = `step-0 check (loss to ${LOSS_TOL}, task-gradient norm to ${NORM_TOL}, relative to sorsajs; the step-1 loss is reported only)`;
/** The probe table's column titles, in markdown. */
export const PROBE_COLUMNS = '| impl | step-0 loss | rel. diff | grad norm | rel. diff | step-1 loss | rel. diff | check |\n| --- | --- | --- | --- | --- | --- | --- | --- |';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

async function host(t: sj.Tensor): Promise<HostArray> {
  return { shape: [...t.shape], data: Float32Array.from(await t.data()) };
}

/**
 * How a peer's probe compares with sorsajs's: the relative differences, whether it passes, a row of
 * the probe table and the values for a bench row's `detail`.
 *
 * @example
 * ```ts
 * const j = judge('PyTorch', r.probe, run.probe);
 * if (!j.ok) console.log(`PyTorch FAILED the step-0 check`);
 * ```
 */
export function judge(impl: string, p: GptProbe, ref: GptProbe): { ok: boolean; line: string; detail: Record<string, number | string> } {
  const d = { loss0: rel(p.loss0, ref.loss0), gradNorm0: rel(p.gradNorm0, ref.gradNorm0), loss1: rel(p.loss1, ref.loss1) };
  const ok = d.loss0 <= LOSS_TOL && d.gradNorm0 <= NORM_TOL;
  const warn = d.loss1 > LOSS1_TOL ? ' (step-1 loss further off than expected)' : '';
  const e = (x: number) => x.toExponential(1);
  const line = `| ${impl} | ${p.loss0.toFixed(7)} | ${e(d.loss0)} | ${p.gradNorm0.toFixed(6)} | ${e(d.gradNorm0)} | ${p.loss1.toFixed(7)} | ${e(d.loss1)} | ${ok ? 'ok' : 'FAIL'}${warn} |`;
  return { ok, line, detail: { loss0: p.loss0, gradNorm0: p.gradNorm0, loss1: p.loss1, check: ok ? 'ok' : 'FAIL' } };
}

/**
 * A prepared sorsajs GPT-2 SORSA step: call `step` to advance it (the loss read back, as a
 * training loop does), `forward` for one forward pass of the merged weights at the initial
 * adapters (logits read back), and `dispose` at the end.
 */
export interface GptStepRun {
  /** The data every peer starts from: shapes, hyperparameters, weights, adapters and batch. */
  readonly data: GptStepData;
  /** sorsajs's step-0 loss, task-gradient norm and step-1 loss. */
  readonly probe: GptProbe;
  /** Kernel launches of one step, all of them finished. */
  readonly launchesPerStep: number;
  /**
   * Host <-> device transfers of that step (`internal.transfers()` differences), on webgpu where
   * they are counted; undefined on the backends that compute in host memory.
   */
  readonly transfersPerStep?: { readonly reads: number; readonly readBytes: number; readonly uploads: number; readonly uploadBytes: number };
  /** One training step, until the loss is on the host. */
  step(): Promise<void>;
  /** One forward pass of the model with the merged initial adapters, until the logits are on the host. */
  forward(): Promise<void>;
  /** Frees every tensor the run holds. */
  dispose(): void;
}

/**
 * Builds the sorsajs step at shapes `s`: createModel's GPT-2 (seed 0; `n_positions` is
 * `s.positions ?? s.seq`), rank-`s.rank` SORSA adapters (the default SVD) on every `c_attn`,
 * `c_proj` and `c_fc` weight, a batch of `s.batch` sequences of `s.seq` tokens, and makeTrainStep
 * with GPT_HYPER; runs the probe's two steps and one more to count its launches.
 *
 * @example
 * ```ts
 * const run = await prepareGptStep(GPT_STEP);
 * await run.step();
 * run.dispose();
 * ```
 */
export async function prepareGptStep(s: GptStepShapes): Promise<GptStepRun> {
  const h = GPT_HYPER;
  const model = createModel(
    { model_type: 'gpt2', vocab_size: s.vocab, n_embd: s.width, n_head: s.heads, n_layer: s.layers, n_positions: s.positions ?? s.seq, bos_token_id: 0, eos_token_id: 0 },
    sj.random.key(0),
  );
  if (model.config.normEps !== h.normEps) throw new Error(`gpt: the model's layer_norm_epsilon ${model.config.normEps} is not the peers' ${h.normEps}`);
  const targets = sj.tree.leafPaths(model.params).filter((p) => /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(p));
  const { trainable, frozen } = await adaptParams(model.params, { rank: s.rank, targets });
  // `frozen` holds its own handles on the untouched leaves' storage: the adapted weights' go now.
  sj.tree.dispose(model.params);
  const ids = Int32Array.from({ length: s.batch * s.seq }, (_, i) => (i * 7 + 3) % s.vocab);
  const labels = Int32Array.from(ids, (v) => (v + 1) % s.vocab);
  const x = sj.tensor(ids, [s.batch, s.seq], 'int32');
  const y = sj.tensor(labels, [s.batch, s.seq], 'int32');

  // The peers' inputs: these very weights and this batch, on the host.
  const frozenHost: Record<string, HostArray> = {};
  const fPaths = sj.tree.leafPaths(frozen);
  const fLeaves = sj.tree.leaves(frozen);
  for (const [i, p] of fPaths.entries()) frozenHost[p] = await host(fLeaves[i] as sj.Tensor);
  const adaptersHost: Record<string, HostAdapter> = {};
  for (const p of targets) {
    const a = trainable[p] as SorsaAdapter;
    adaptersHost[p] = { U: await host(a.U), S: await host(a.S), Vt: await host(a.Vt) };
  }
  const data: GptStepData = { shapes: s, hyper: h, frozen: frozenHost, adapters: adaptersHost, ids, labels };

  const ts = makeTrainStep({
    loss: (t: Trainable, f: ParamTree, b: { x: sj.Tensor; y: sj.Tensor }) => sj.nn.crossEntropy(model.forward(s.factored ? factoredParams(t, f) : mergeParams(t, f), b.x), b.y),
    optimizer: sj.optim.adamw({ lr: h.lr, weightDecay: h.weightDecay }),
    gamma: h.gamma,
    peakLr: h.peakLr,
    maxGradNorm: h.maxGradNorm,
  });
  let t = trainable;
  let state = ts.init(t);
  /** One step; reads the loss back, and the task-gradient norm when asked (the probe). */
  const advance = async (withNorm = false): Promise<{ loss: number; gradNorm: number }> => {
    const out = ts.step(t, state, frozen, { x, y });
    sj.tree.dispose([t === trainable ? null : t, state]);
    t = out.trainable;
    state = out.optState;
    const loss = (await out.metrics.loss.data())[0];
    const gradNorm = withNorm ? (await out.metrics.gradNorm.data())[0] : NaN;
    sj.tree.dispose(out.metrics);
    return { loss, gradNorm };
  };
  const first = await advance(true);
  const probe: GptProbe = { loss0: first.loss, gradNorm0: first.gradNorm, loss1: (await advance()).loss };
  const merged = mergeParams(trainable, frozen);
  await sj.sync();
  const launched = internal.launches();
  const moved = internal.transfers();
  await advance();
  await sj.sync();
  const launchesPerStep = internal.launches() - launched;
  const after = internal.transfers();
  const transfersPerStep = after.counted
    ? { reads: after.reads - moved.reads, readBytes: after.readBytes - moved.readBytes, uploads: after.uploads - moved.uploads, uploadBytes: after.uploadBytes - moved.uploadBytes }
    : undefined;
  return {
    data,
    probe,
    launchesPerStep,
    transfersPerStep,
    step: async () => {
      await advance();
    },
    forward: async () => {
      const logits = model.forward(merged, x);
      await logits.data();
      logits.dispose();
    },
    dispose: () => sj.tree.dispose([t, state, trainable, frozen, merged, x, y]),
  };
}
