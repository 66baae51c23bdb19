/**
 * What TypeScript infers for makeTrainStep's loss (checked by `tsc -p tsconfig.test.json` in
 * `npm run lint`): the trees' types come from explicit type parameters or from the loss's own
 * annotations; the guides show the first form. Only the construction runs (no step).
 */
import { expectTypeOf, it } from 'vitest';
import { nn, optim, type Tensor } from '@sorsajs/core';
import { makeTrainStep, mergeParams, type StepResult, type Trainable } from '@sorsajs/sorsa';

type Frozen = { w: Tensor; b: Tensor };
type Batch = [Tensor, Tensor];

it("makeTrainStep's loss parameters take their types from makeTrainStep's type parameters or their annotations", () => {
  // Explicit trees: the loss needs no annotation, the optimizer state is unknown.
  const explicit = makeTrainStep<Trainable, Frozen, Batch>({
    loss: (t, f, [x, y]) => {
      expectTypeOf(t).toEqualTypeOf<Trainable>();
      expectTypeOf(f).toEqualTypeOf<Frozen>();
      const p = mergeParams(t, f);
      return nn.mse(nn.linear(x, p.w, p.b), y);
    },
    optimizer: optim.adamw({ lr: 1e-3, weightDecay: 0 }),
    gamma: 0,
  });
  expectTypeOf(explicit.step).parameters.toEqualTypeOf<[Trainable, unknown, Frozen, Batch]>();

  // An annotated loss: every type parameter is inferred, the optimizer state's included.
  const annotated = makeTrainStep({
    loss: (t: Trainable, f: Frozen, [x, y]: Batch) => nn.mse(nn.linear(x, mergeParams(t, f).w), y),
    optimizer: optim.sgd({ lr: 1e-2 }),
    gamma: 0,
  });
  expectTypeOf(annotated.step).returns.toEqualTypeOf<StepResult<Trainable, optim.SgdState>>();

  // Neither: TypeScript has nothing to infer the trees from (they are not makeTrainStep's
  // arguments), so the loss's parameters are unknown.
  makeTrainStep({
    // @ts-expect-error t is unknown without a type parameter or an annotation
    loss: (t, f, batch: Batch) => nn.mse(mergeParams(t, f).w, batch[1]),
    optimizer: optim.sgd({ lr: 1e-2 }),
    gamma: 0,
  });
});
