/**
 * `npm start`: the main job. A character-level MLP language model is pretrained for a few seconds on
 * the first part of Moby-Dick, then fine-tuned on the book's last chapters with SORSA, PiSSA and
 * LoRA at the same rank and step count; a table of losses follows, and the SORSA adapter is saved in
 * the official PyTorch layout.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { backend, gelu, init, nn, optim, random, reshape, saveSafetensors, tensor, tidy, tree, valueAndGrad, Tensor } from '@sorsajs/core';
import { adaptParams, makeTrainStep, mergeParams, toOfficialStateDict, type Trainable } from '../index.js';
import { batches, mobyDick, vocabulary } from './text.js';

const CONTEXT = 6;
const EMBED = 16;
const HIDDEN = 128;
const BATCH = 128;
const PRETRAIN_STEPS = Number(process.env.SORSA_PRETRAIN_STEPS ?? 300);
const FINETUNE_STEPS = Number(process.env.SORSA_FINETUNE_STEPS ?? 120);
const RANK = 8;

interface Params {
  emb: Tensor;
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/** Logits for a batch of contexts: embed, concatenate, one GELU hidden layer. */
function forward(p: Params, x: Tensor): Tensor {
  const e = reshape(nn.embedding(p.emb, x), [x.shape[0], CONTEXT * EMBED]);
  return nn.linear(gelu(nn.linear(e, p.w1, p.b1)), p.w2, p.b2);
}

const lossOf = (p: Params, batch: { x: Tensor; y: Tensor }): Tensor => nn.crossEntropy(forward(p, batch.x), batch.y);

async function scalar(t: Tensor): Promise<number> {
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

/** Mean loss over a fixed set of held-out batches. */
async function evaluate(p: Params, data: { x: Tensor; y: Tensor }[]): Promise<number> {
  let total = 0;
  for (const b of data) total += await scalar(tidy(() => lossOf(p, b)));
  return total / data.length;
}

function toTensors(b: { x: Int32Array; y: Int32Array }): { x: Tensor; y: Tensor } {
  return { x: tensor(b.x, [BATCH, CONTEXT], 'int32'), y: tensor(b.y, [BATCH], 'int32') };
}

async function main(): Promise<void> {
  const chosen = await init({ backend: (process.env.SORSA_BACKEND as never) ?? 'auto' });
  const text = mobyDick();
  const vocab = vocabulary(text);
  const ids = Int32Array.from(text, (ch) => vocab.id(ch));
  // Pretrain on the first 70% of the book; fine-tune on the last 30% (the chase), holding out its end.
  const cut = Math.floor(ids.length * 0.7);
  const pre = ids.subarray(0, cut);
  const tune = ids.subarray(cut, ids.length - 40_000);
  const held = ids.subarray(ids.length - 40_000);
  console.log(`sorsajs main job on ${chosen}: Moby-Dick (${text.length.toLocaleString()} characters, vocabulary ${vocab.chars.length})`);

  const V = vocab.chars.length;
  const [k1, k2, k3] = random.split(random.key(0), 3);
  let params: Params = {
    emb: nn.glorotUniform(k1, [V, EMBED]),
    w1: nn.glorotUniform(k2, [HIDDEN, CONTEXT * EMBED]),
    b1: tensor(new Float32Array(HIDDEN)),
    w2: nn.glorotUniform(k3, [V, HIDDEN]),
    b2: tensor(new Float32Array(V)),
  };

  // Pretraining: plain Adam on every parameter.
  const t0 = performance.now();
  const opt = optim.adam({ lr: 3e-3 });
  let state = opt.init(params);
  const nextPre = batches(pre, CONTEXT, BATCH, 1);
  let last = 0;
  for (let s = 0; s < PRETRAIN_STEPS; s++) {
    const batch = toTensors(nextPre());
    const [value, grads] = valueAndGrad(lossOf)(params, batch);
    const [updates, next] = opt.update(grads, state, params);
    const p2 = optim.applyUpdates(params, updates);
    if (s === PRETRAIN_STEPS - 1) last = (await value.data())[0];
    tree.dispose([value, grads, updates, state, params, batch]);
    params = p2;
    state = next;
  }
  tree.dispose(state);
  console.log(`pretrained ${PRETRAIN_STEPS} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s; last training loss ${last.toFixed(3)}`);

  const nextHeld = batches(held, CONTEXT, BATCH, 7);
  const heldOut = Array.from({ length: 8 }, () => toTensors(nextHeld()));
  const base = await evaluate(params, heldOut);

  const rows: string[] = [];
  for (const method of ['sorsa', 'pissa', 'lora'] as const) {
    const t1 = performance.now();
    const { trainable, frozen } = await adaptParams(params, { rank: RANK, targets: ['w1', 'w2'], method, key: random.key(5) });
    const peakLr = 3e-3;
    const schedule = optim.warmupCosineDecay({ init: 0, peak: peakLr, warmupSteps: Math.ceil(FINETUNE_STEPS * 0.03), decaySteps: FINETUNE_STEPS, end: 0 });
    const trainStep = makeTrainStep({
      loss: (t: Trainable, f: Params, b: { x: Tensor; y: Tensor }) => lossOf(mergeParams(t, f), b),
      optimizer: optim.adamw({ lr: schedule, weightDecay: 0 }),
      gamma: method === 'sorsa' ? 4e-4 : 0,
      peakLr,
      maxGradNorm: 1.0,
    });
    let t = trainable;
    let st = trainStep.init(t);
    const nextTune = batches(tune, CONTEXT, BATCH, 3);
    let first = 0;
    let lastLoss = 0;
    let reg = 0;
    for (let s = 0; s < FINETUNE_STEPS; s++) {
      const batch = toTensors(nextTune());
      const r = trainStep.step(t, st, frozen, batch);
      if (s === 0) first = (await r.metrics.loss.data())[0];
      if (s === FINETUNE_STEPS - 1) {
        lastLoss = (await r.metrics.loss.data())[0];
        reg = (await r.metrics.regularizer.data())[0];
      }
      tree.dispose([t, st, r.metrics, batch]);
      t = r.trainable;
      st = r.optState;
    }
    const merged = mergeParams(t, frozen);
    const after = await evaluate(merged as Params, heldOut);
    const count = tree.leaves(t).reduce<number>((n, l) => n + (l instanceof Tensor ? l.size : 0), 0);
    rows.push(
      `| ${method} | ${count} | ${first.toFixed(3)} | ${lastLoss.toFixed(3)} | ${base.toFixed(3)} | ${after.toFixed(3)} | ${method === 'sorsa' ? reg.toExponential(2) : '-'} | ${((performance.now() - t1) / 1000).toFixed(1)} s |`,
    );
    if (method === 'sorsa') {
      mkdirSync('runs', { recursive: true });
      const record = toOfficialStateDict(t as Trainable, frozen);
      await saveSafetensors(record, 'runs/sorsa-adapter.safetensors', { format: 'pt', rank: String(RANK) });
      tree.dispose(record);
    }
    tree.dispose([t, st, frozen, merged]);
  }
  console.log(`\nfine-tuning on the last chapters: rank ${RANK} on w1 and w2, ${FINETUNE_STEPS} steps each, AdamW with warmup + cosine, clip 1.0\n`);
  console.log('| method | trainable | first loss | last loss | held-out before | held-out after | regularizer | time |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
  console.log(`\nSORSA adapter saved to runs/sorsa-adapter.safetensors (official layout). Backend: ${backend()}.`);
  tree.dispose([params, heldOut]);
}

await main();
process.exit(0);
