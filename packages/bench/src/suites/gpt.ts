/**
 * One SORSA fine-tuning step of a small GPT-2, and its forward pass, at the shapes issue #17
 * measured against PyTorch, tfjs-wasm and jax-js: vocab 96, width 128, 4 heads, 2 blocks (MLP 512),
 * GELU, pre-LayerNorm, causal attention, 8 sequences of 64 tokens, rank-8 SORSA adapters on every
 * linear layer of the blocks, AdamW, clipping at 1 and the regularizer (gamma 4e-4). The step is
 * `makeTrainStep`'s, from adapters to updated adapters, and it is timed until the loss is read back
 * (the one value a training loop reads). The peers' figures of that issue were measured by hand on
 * the same machine; this suite times sorsajs alone until they are added beside it.
 * @module
 */
import { Bench } from 'tinybench';
import * as sj from '@sorsajs/core';
import { createModel, type ParamTree } from '@sorsajs/models';
import { adaptParams, makeTrainStep, mergeParams, type Trainable } from '@sorsajs/sorsa';
import { rowsOf, type Row } from '../report.js';
import type { SuiteOptions } from './matmul.js';

/** The shapes of the step {@link gptSuite} times. */
export interface GptStepShapes {
  /** Vocabulary size. */
  readonly vocab: number;
  /** Width (`n_embd`); the MLP is 4x. */
  readonly width: number;
  /** Attention heads. */
  readonly heads: number;
  /** Blocks. */
  readonly layers: number;
  /** Tokens per sequence. */
  readonly seq: number;
  /** Sequences per step. */
  readonly batch: number;
  /** SORSA rank on every linear layer of the blocks. */
  readonly rank: number;
}

/**
 * Issue #17's shapes.
 *
 * @example
 * ```ts
 * GPT_STEP.batch * GPT_STEP.seq; // 512 tokens a step
 * ```
 */
export const GPT_STEP: GptStepShapes = { vocab: 96, width: 128, heads: 4, layers: 2, seq: 64, batch: 8, rank: 8 };

/**
 * Times the SORSA step and the forward pass of the small GPT-2.
 *
 * @example
 * ```ts
 * const rows = await gptSuite({ time: 5000 });
 * ```
 */
export async function gptSuite(opts: SuiteOptions = {}): Promise<Row[]> {
  const s = GPT_STEP;
  const model = createModel(
    { model_type: 'gpt2', vocab_size: s.vocab, n_embd: s.width, n_head: s.heads, n_layer: s.layers, n_positions: s.seq, bos_token_id: 0, eos_token_id: 0 },
    sj.random.key(0),
  );
  const targets = sj.tree
    .leafPaths(model.params)
    .filter((p) => /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(p));
  const { trainable, frozen } = await adaptParams(model.params, { rank: s.rank, targets });
  const ids = Int32Array.from({ length: s.batch * s.seq }, (_, i) => (i * 7 + 3) % s.vocab);
  const x = sj.tensor(ids, [s.batch, s.seq], 'int32');
  const y = sj.tensor(Int32Array.from(ids, (v) => (v + 1) % s.vocab), [s.batch, s.seq], 'int32');
  const peakLr = 1e-3;
  const ts = makeTrainStep({
    loss: (t: Trainable, f: ParamTree, b: { x: sj.Tensor; y: sj.Tensor }) => sj.nn.crossEntropy(model.forward(mergeParams(t, f), b.x), b.y),
    optimizer: sj.optim.adamw({ lr: peakLr, weightDecay: 0 }),
    gamma: 4e-4,
    peakLr,
    maxGradNorm: 1,
  });
  let t = trainable;
  let state = ts.init(t);
  const step = async (): Promise<void> => {
    const out = ts.step(t, state, frozen, { x, y });
    sj.tree.dispose([t === trainable ? null : t, state]);
    t = out.trainable;
    state = out.optState;
    await out.metrics.loss.data();
    sj.tree.dispose(out.metrics);
  };
  const merged = mergeParams(trainable, frozen);
  const forward = async (): Promise<void> => {
    const logits = model.forward(merged, x);
    await logits.data();
    logits.dispose();
  };
  const ours = `sorsajs (${sj.backend()})`;
  const bench = new Bench({ time: opts.time ?? 5000, warmupTime: 1000 });
  bench.add(`SORSA step gpt2 d128 L2 b8x64 r8 | ${ours}`, step);
  bench.add(`forward gpt2 d128 L2 b8x64 | ${ours}`, forward);
  await bench.run();
  sj.tree.dispose([t, state, trainable, frozen, merged, model.params, x, y]);
  return rowsOf(bench);
}
