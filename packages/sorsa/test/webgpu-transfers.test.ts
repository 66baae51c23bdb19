/**
 * Issue #17: a training step on webgpu reads nothing back to the host and keeps its buffers on the
 * device between kernels; the loss is the only value read back, after the step. Checked on the
 * WebGPU device (Mesa's lavapipe where there is no GPU) by counting host reads and uploads
 * (`internal.transfers()`, counted on the device below gpu.js) over whole SORSA steps of a small
 * GPT-2 (`makeTrainStep`: AdamW, clipping, the regularizer), after a few warm-up steps: the batch is
 * made on the host before them and uploaded once. Per step: no read and no upload while the step
 * runs, exactly one read of 4 bytes for the loss after it, and no host write but the one parameter
 * block (dims and scalars) of each kernel launch. Skipped, saying why, where there is no WebGPU.
 */
import { describe, expect, it } from 'vitest';
import * as sj from '@sorsajs/core';
import * as internal from '@sorsajs/core/internal';
import { createModel, type ParamTree } from '@sorsajs/models';
import { adaptParams, makeTrainStep, mergeParams, type Trainable, type TrainStepOptions } from '@sorsajs/sorsa';
import { skipReason } from '@sorsajs/testing/backends';

const reason = skipReason('webgpu');
if (reason) console.warn(`[sorsajs tests] SKIPPING the webgpu training step's transfer counts: ${reason}`);
const suite = reason ? describe.skip : describe;

/** The gpt suite's model (packages/bench/src/suites/gpt.ts), smaller: lavapipe runs WGSL on the CPU. */
const S = { vocab: 96, width: 32, heads: 4, layers: 2, seq: 16, batch: 2, rank: 4 };
const WARMUP = 3;
const MEASURED = 3;

type Batch = { x: sj.Tensor; y: sj.Tensor };
type Delta = { reads: number; readBytes: number; uploads: number; uploadBytes: number; params: number; launches: number };

function delta(a: ReturnType<typeof internal.transfers>, b: ReturnType<typeof internal.transfers>, launches: number): Delta {
  return { reads: b.reads - a.reads, readBytes: b.readBytes - a.readBytes, uploads: b.uploads - a.uploads, uploadBytes: b.uploadBytes - a.uploadBytes, params: b.params - a.params, launches };
}

/** Every tensor leaf of a tree is device-resident (no host array behind it). */
function onDevice(t: unknown): boolean {
  return sj.tree.leaves(t).every((x) => !(x instanceof sj.Tensor) || internal.hostValues(x) === undefined);
}

suite(`a SORSA training step on webgpu${reason ? ` — SKIPPED: ${reason}` : ''}`, () => {
  /**
   * Runs WARMUP then MEASURED steps of `makeTrainStep(opts)` and returns, per measured step, the
   * transfers while the step runs (issued and finished) and those of reading its loss.
   */
  async function measure(optimizer: TrainStepOptions<Trainable, ParamTree, Batch, unknown>['optimizer'], extra: { skipNonFinite?: boolean } = {}) {
    await sj.init({ backend: 'webgpu' });
    await sj.sync();
    const before = sj.memory();
    const model = createModel(
      { model_type: 'gpt2', vocab_size: S.vocab, n_embd: S.width, n_head: S.heads, n_layer: S.layers, n_positions: S.seq, bos_token_id: 0, eos_token_id: 0 },
      sj.random.key(0),
    );
    const targets = sj.tree.leafPaths(model.params).filter((p) => /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(p));
    const { trainable, frozen } = await adaptParams(model.params, { rank: S.rank, targets });
    const ids = Int32Array.from({ length: S.batch * S.seq }, (_, i) => (i * 7 + 3) % S.vocab);
    // The batch, made on the host once (uploaded by the first step that reads it).
    const batch: Batch = { x: sj.tensor(ids, [S.batch, S.seq], 'int32'), y: sj.tensor(Int32Array.from(ids, (v) => (v + 1) % S.vocab), [S.batch, S.seq], 'int32') };
    const ts = makeTrainStep({
      loss: (t: Trainable, f: ParamTree, b: Batch) => sj.nn.crossEntropy(model.forward(mergeParams(t, f), b.x), b.y),
      optimizer,
      gamma: 4e-4,
      peakLr: 1e-3,
      maxGradNorm: 1,
      ...extra,
    });
    let t = trainable;
    let state = ts.init(t);
    const steps: { step: Delta; lossRead: Delta; loss: number; resident: boolean }[] = [];
    for (let i = 0; i < WARMUP + MEASURED; i++) {
      await sj.sync();
      const t0 = internal.transfers();
      const l0 = internal.launches();
      const out = ts.step(t, state, frozen, batch);
      sj.tree.dispose([t === trainable ? null : t, state]);
      t = out.trainable;
      state = out.optState;
      await sj.sync();
      const t1 = internal.transfers();
      const l1 = internal.launches();
      const loss = (await out.metrics.loss.data())[0];
      const t2 = internal.transfers();
      const resident = onDevice([t, state, out.metrics]);
      sj.tree.dispose(out.metrics);
      if (i >= WARMUP) steps.push({ step: delta(t0, t1, l1 - l0), lossRead: delta(t1, t2, internal.launches() - l1), loss, resident });
    }
    // The counters see a read and an upload in this very setting (a zero above is not a blind spot).
    const probe = await (async () => {
      await sj.sync();
      const a = internal.transfers();
      const h = sj.tensor([1, 2, 3, 4, 5, 6, 7, 8]);
      const e = sj.exp(h);
      const y = sj.mul(h, e);
      await y.data();
      const b = internal.transfers();
      sj.tree.dispose([h, e, y]);
      return delta(a, b, 0);
    })();
    sj.tree.dispose([t, state, trainable, frozen, batch, model.params]);
    await sj.sync();
    expect(sj.memory()).toEqual(before);
    return { steps, probe };
  }

  function check(result: Awaited<ReturnType<typeof measure>>): void {
    console.log(
      `[webgpu transfers] per step: ${result.steps
        .map((s) => `step {reads ${s.step.reads}, uploads ${s.step.uploads} (${s.step.uploadBytes} B), params ${s.step.params} (launches ${s.step.launches})}, loss read {reads ${s.lossRead.reads} (${s.lossRead.readBytes} B), uploads ${s.lossRead.uploads}}`)
        .join('; ')}`,
    );
    for (const s of result.steps) {
      expect(Number.isFinite(s.loss)).toBe(true);
      // Nothing crosses while the step runs...
      expect(s.step.reads, 'host reads during the step').toBe(0);
      expect(s.step.uploads, 'uploads during the step').toBe(0);
      expect(s.step.uploadBytes).toBe(0);
      // ...but each launch's parameter block (its dims and scalar arguments).
      expect(s.step.params).toBe(s.step.launches);
      expect(s.step.launches).toBeGreaterThan(50);
      // After it, the loss and nothing else: one read of one float.
      expect(s.lossRead).toEqual({ reads: 1, readBytes: 4, uploads: 0, uploadBytes: 0, params: 0, launches: 0 });
      // The new parameters, optimizer state and metrics are device buffers.
      expect(s.resident).toBe(true);
    }
    expect(result.probe.uploads).toBeGreaterThanOrEqual(1);
    expect(result.probe.uploadBytes).toBeGreaterThanOrEqual(32);
    expect(result.probe.reads).toBe(1);
    expect(result.probe.readBytes).toBe(32);
  }

  it('AdamW, clipping and the regularizer (the bench gpt step): the loss is the only read, nothing is uploaded', async () => {
    check(await measure(sj.optim.adamw({ lr: 1e-3, weightDecay: 0.01 })));
  });

  it('with a learning-rate schedule and skipNonFinite: still nothing but the loss read, nothing uploaded', async () => {
    const lr = sj.optim.warmupCosineDecay({ init: 0, peak: 1e-3, warmupSteps: 2, decaySteps: 100 });
    check(await measure(sj.optim.adamw({ lr, weightDecay: 0.01 }), { skipNonFinite: true }));
  });
});
