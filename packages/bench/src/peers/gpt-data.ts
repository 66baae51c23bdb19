/**
 * What the gpt suite hands its peers: the step's shapes and hyperparameters, sorsajs's initial
 * weights and the batch as host arrays, so that every peer computes the same step from the same
 * numbers. A step timed from other weights or another batch would not be a comparison.
 * @module
 */

/** The shapes of the step the gpt suite times. */
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
  /** `n_positions`, the learned position table's rows (default: `seq`). */
  readonly positions?: number;
  /**
   * Each adapted layer computed factored, `x W_rᵀ + b + ((x Vtᵀ) S) Uᵀ` (sorsajs's `factoredParams`,
   * PEFT's layer), instead of through the merged weight `W_r + U diag(S) Vt` (default).
   */
  readonly factored?: boolean;
}

/**
 * The step's hyperparameters, as sorsajs's `makeTrainStep` and `optim.adamw` apply them.
 *
 * @example
 * ```ts
 * const h: GptHyper = GPT_HYPER;
 * h.gamma / h.peakLr; // 0.4, the weight of the regularizer's gradient
 * ```
 */
export interface GptHyper {
  /** AdamW's learning rate (constant). */
  readonly lr: number;
  /** Adam's first-moment decay. */
  readonly b1: number;
  /** Adam's second-moment decay. */
  readonly b2: number;
  /** Adam's epsilon, added after the bias-corrected square root (PyTorch's placement). */
  readonly eps: number;
  /** Decoupled weight decay (0 here). */
  readonly weightDecay: number;
  /** The task gradients are clipped to this global norm, `g · min(1, max / (norm + 1e-6))`. */
  readonly maxGradNorm: number;
  /** SORSA's regularizer weight γ. */
  readonly gamma: number;
  /** The peak learning rate: the regularizer's gradient is scaled by `gamma / peakLr`, not clipped. */
  readonly peakLr: number;
  /** LayerNorm's epsilon (GPT-2's `layer_norm_epsilon`). */
  readonly normEps: number;
}

/**
 * Issue #17's hyperparameters: AdamW (0.9, 0.999, 1e-8) at 1e-3 without decay, clipping at 1,
 * γ = 4e-4 at a peak learning rate of 1e-3.
 *
 * @example
 * ```ts
 * optim.adamw({ lr: GPT_HYPER.lr, weightDecay: GPT_HYPER.weightDecay });
 * ```
 */
export const GPT_HYPER: GptHyper = { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1, gamma: 4e-4, peakLr: 1e-3, normEps: 1e-5 };

/**
 * A float32 array on the host with its shape (row-major).
 *
 * @example
 * ```ts
 * const a: HostArray = { shape: [2, 3], data: new Float32Array(6) };
 * ```
 */
export interface HostArray {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** The values, row-major. */
  readonly data: Float32Array;
}

/**
 * One SORSA adapter on the host: the adapted weight `[out, in]` is `residual + U diag(S) Vt`.
 *
 * @example
 * ```ts
 * const a: HostAdapter = data.adapters['transformer.h.0.attn.c_attn.weight'];
 * a.U.shape; // [384, 8]
 * ```
 */
export interface HostAdapter {
  /** Left singular vectors `[out, r]`. */
  readonly U: HostArray;
  /** Singular values `[r]`. */
  readonly S: HostArray;
  /** Right singular vectors, transposed, `[r, in]`. */
  readonly Vt: HostArray;
}

/**
 * The step's inputs for a peer: GPT-2's frozen tree (every adapted weight replaced by its
 * residual, Hugging Face's names and PyTorch's `[out, in]` layout; the lm head is tied to
 * `transformer.wte.weight`), the adapters keyed by the path of the weight they adapt, and the
 * batch: `ids` `[batch, seq]` and the next-token `labels` of the same shape.
 *
 * @example
 * ```ts
 * const wte = data.frozen['transformer.wte.weight']; // { shape: [96, 128], data }
 * Object.keys(data.adapters).length;                  // 4 per block
 * ```
 */
export interface GptStepData {
  /** The model's and the batch's sizes. */
  readonly shapes: GptStepShapes;
  /** The optimizer's and regularizer's settings. */
  readonly hyper: GptHyper;
  /** Every frozen leaf by dotted path. */
  readonly frozen: Readonly<Record<string, HostArray>>;
  /** Every adapter by the dotted path of its weight, in the model's leaf order. */
  readonly adapters: Readonly<Record<string, HostAdapter>>;
  /** Token ids, `[batch, seq]` row-major. */
  readonly ids: Int32Array;
  /** The label of each token, `[batch, seq]` row-major. */
  readonly labels: Int32Array;
}

/**
 * What a peer's first two steps gave: its loss and task-gradient norm at the initial weights, and
 * its loss after one update. The suite compares them with sorsajs's before it trusts the peer's
 * timings.
 *
 * @example
 * ```ts
 * const p: GptProbe = { loss0: 4.56, gradNorm0: 0.8, loss1: 4.55 };
 * ```
 */
export interface GptProbe {
  /** Cross-entropy at the initial weights (the first step's loss). */
  readonly loss0: number;
  /** Global norm of the task-loss gradients at the initial weights, before clipping. */
  readonly gradNorm0: number;
  /** Cross-entropy after one step (the second step's loss). */
  readonly loss1: number;
}

/**
 * A peer made ready to be timed: `step` runs one training step from its current adapters and
 * optimizer state to the next and reads the loss back; `forward` runs the forward pass of the
 * initial merged weights and reads the logits back. `probe` is what its first two steps gave.
 *
 * @example
 * ```ts
 * const peer: GptPeer = await tfjsGpt(data);
 * bench.add(`SORSA step | ${peer.impl}`, peer.step);
 * ```
 */
export interface GptPeer {
  /** The name its rows carry: `tfjs-wasm`, `jax-js (wasm, jit)`. */
  readonly impl: string;
  /** The first two steps' values. */
  readonly probe: GptProbe;
  /** One training step, until the loss is on the host. */
  step(): void | Promise<void>;
  /** One forward pass, until the logits are on the host. */
  forward(): void | Promise<void>;
  /** Frees what the peer holds. */
  dispose(): void;
}

/**
 * The adapted paths in leaf order with their block index and layer name (`attn.c_attn`, ...).
 *
 * @example
 * ```ts
 * adaptedLayers(data)[0]; // { path: 'transformer.h.0.attn.c_attn.weight', block: 0, name: 'attn.c_attn' }
 * ```
 */
export function adaptedLayers(data: GptStepData): { path: string; block: number; name: string }[] {
  return Object.keys(data.adapters).map((path) => {
    const m = /^transformer\.h\.(\d+)\.(.+)\.weight$/.exec(path);
    if (!m) throw new Error(`gpt: adapter path "${path}" is not a block's linear weight`);
    return { path, block: Number(m[1]), name: m[2] };
  });
}

/**
 * The merged weight `residual + U diag(S) Vt` `[out, in]` of one adapted layer, in float64 on the
 * host and rounded once: what each peer's forward pass reads (the forward case times the model,
 * not the merge).
 *
 * @example
 * ```ts
 * const W = mergedWeight(data, 'transformer.h.0.mlp.c_fc.weight'); // shape [512, 128]
 * ```
 */
export function mergedWeight(data: GptStepData, path: string): HostArray {
  const res = data.frozen[path];
  const { U, S, Vt } = data.adapters[path];
  const [out, inp] = res.shape;
  const r = S.shape[0];
  const W = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      let acc = res.data[o * inp + i];
      for (let k = 0; k < r; k++) acc += U.data[o * r + k] * S.data[k] * Vt.data[k * inp + i];
      W[o * inp + i] = acc;
    }
  }
  return { shape: [out, inp], data: W };
}
