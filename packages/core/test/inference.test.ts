/**
 * What TypeScript infers for the transformations over parameter trees (checked by
 * `tsc -p tsconfig.test.json` in `npm run lint`; the runtime assertions are the same facts, by value).
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { grad, init, matmul, mean, square, sub, sum, tensor, tree, valueAndGrad, type Tensor } from '@sorsajs/core';

interface Params {
  w: Tensor;
  b: Tensor;
  layers: { scale: Tensor; eps: number }[];
}

describe('grad and valueAndGrad infer gradient trees from the function they differentiate', () => {
  it('grad(f)(params) mirrors the tree f takes: tensors for tensor leaves, null for number leaves', async () => {
    await init({ backend: 'wasm' });
    const params: Params = { w: tensor([[1], [2]]), b: tensor([0.5]), layers: [{ scale: tensor([2]), eps: 1e-5 }] };
    const x = tensor([[1, 1]]);
    const y = tensor([[1]]);
    const loss = (p: Params, xb: Tensor, yb: Tensor): Tensor => mean(square(sub(matmul(xb, p.w), yb)));
    const g = grad(loss)(params, x, y);
    expectTypeOf(g).toEqualTypeOf<{ w: Tensor; b: Tensor; layers: { scale: Tensor; eps: null }[] }>();
    expect(g.layers[0].eps).toBeNull();

    // argnums as a list gives a tuple of trees; valueAndGrad returns the value beside them.
    const [value, [gp, gx]] = valueAndGrad(loss, { argnums: [0, 1] })(params, x, y);
    expectTypeOf(gp.w).toEqualTypeOf<Tensor>();
    expectTypeOf(gx).toEqualTypeOf<Tensor>();
    expectTypeOf(value).toEqualTypeOf<Tensor>();

    // An inline function needs its parameter type: from an annotation, or from grad's first type
    // parameter (the argument list), since grad has no argument to infer it from.
    const gi = grad<[Params]>((p) => sum(p.w))(params);
    expectTypeOf(gi.b).toEqualTypeOf<Tensor>();
    tree.dispose([params, x, y, g, value, gp, gx, gi]);
  });
});
